"""Training of a CIFAR ResNet with Deep Augmentation at one layer (or several at once).

``objective="contrastive"`` (the paper's setting): SimCLR, NT-Xent over two augmented views per image.
``objective="supervised"`` (the supervised counterpart): cross-entropy on the labels, one augmented
view per image, the head's output (layer 6) being the class logits. Any objective registered in
:mod:`deepaug.core.objectives` trains here; the order of the training is :func:`deepaug.engine.loop.train`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from deepaug.core.layers import target_module
from deepaug.core.losses import check_loss
from deepaug.core.objectives import trained_parameters
from deepaug.core.schema_defaults import domain_schema, schema_defaults
from deepaug.core.settings import RunSettings
from deepaug.domains.vision.augmentations import TwoViews, simclr_transform
from deepaug.domains.vision.batched_augment import BatchedSimCLRAugment
from deepaug.domains.vision.data import load_prepared
from deepaug.domains.vision.models import build_vision_model
from deepaug.engine import training as T
from deepaug.engine.lars import LARS
from deepaug.engine.loop import DataFileTask, PeriodEnd, Progress, train
from deepaug.io import load_torch

# train.loss: supcon (SupContrast's scale, the paper's) or nt_xent; the schema's enum (tests/core/test_losses.py)
LOSSES = ("supcon", "nt_xent")
OPTIMIZERS = ("sgd", "lars")
LOADERS = ("pack", "dali", "torchvision")


# The defaults of these settings, from the config schema (each written once there; deepaug.core.schema_defaults)
_SETTINGS = schema_defaults(domain_schema(__file__), "model", "train")


@dataclass
class VisionPretrainSettings(RunSettings):
    arch: str = _SETTINGS["arch"]
    width: int = _SETTINGS["width"]
    proj_dim: int = _SETTINGS["proj_dim"]
    stem: str = _SETTINGS["stem"]  # cifar | imagenet (deepaug.domains.vision.models)
    proj_hidden_dim: int = _SETTINGS["proj_hidden_dim"]  # 0: the features' width
    epochs: int = _SETTINGS["epochs"]
    batch_size: int = _SETTINGS["batch_size"]
    lr: float = _SETTINGS["lr"]
    momentum: float = _SETTINGS["momentum"]
    optimizer: str = _SETTINGS["optimizer"]  # sgd | lars
    lars_eta: float = _SETTINGS["lars_eta"]
    crop_size: int = _SETTINGS["crop_size"]  # 0: the images' side
    crop_min_scale: float = _SETTINGS["crop_min_scale"]
    color_jitter: str = _SETTINGS["color_jitter"]  # "brightness,contrast,saturation,hue"
    blur_prob: float = _SETTINGS["blur_prob"]
    solarize_prob: float = _SETTINGS["solarize_prob"]
    loader: str = _SETTINGS["loader"]  # image folders: pack | dali | torchvision
    weight_decay: float = _SETTINGS["weight_decay"]
    temperature: float = _SETTINGS["temperature"]
    # supcon: SupContrast's SupConLoss, NT-Xent x temperature / 0.07 (the paper's vision code followed
    # SupContrast); nt_xent: plain NT-Xent. See deepaug.core.losses.supcon_loss.
    loss: str = _SETTINGS["loss"]
    warmup_epochs: int = _SETTINGS["warmup_epochs"]
    # the SSL method of a contrastive run (deepaug.core.ssl); the settings only some methods have are None unless
    # given, and then filled from the method's recipe (recipes.py SSL_RECIPES) by :meth:`resolved`
    ssl_method: str = _SETTINGS["ssl_method"]
    knn_monitor: int = _SETTINGS["knn_monitor"]  # epochs between two kNN checks on dev (0: none)
    pred_hidden_dim: int | None = _SETTINGS["pred_hidden_dim"]
    tau_base: float | None = _SETTINGS["tau_base"]
    tau_final: float | None = _SETTINGS["tau_final"]
    target_augment: bool | None = _SETTINGS["target_augment"]
    vicreg_sim_weight: float | None = _SETTINGS["vicreg_sim_weight"]
    vicreg_var_weight: float | None = _SETTINGS["vicreg_var_weight"]
    vicreg_cov_weight: float | None = _SETTINGS["vicreg_cov_weight"]
    barlow_lambda: float | None = _SETTINGS["barlow_lambda"]
    barlow_scale: float | None = _SETTINGS["barlow_scale"]
    channels_last: bool = _SETTINGS["channels_last"]
    compile: bool = _SETTINGS["compile"]
    compile_backend: str = _SETTINGS["compile_backend"]  # torch.compile backend (the CPU falls back to aot_eager)
    augment_backend: str = _SETTINGS["augment_backend"]
    num_workers: int = _SETTINGS["num_workers"]
    checkpoint_every: int = _SETTINGS["checkpoint_every"]  # epochs
    max_grad_norm: float = _SETTINGS["max_grad_norm"]  # declared in RunSettings; the default is this domain's
    precision: str = _SETTINGS["precision"]  # declared in RunSettings; the default is this domain's
    deterministic: bool = _SETTINGS["deterministic"]  # declared in RunSettings; the default is this domain's

    def validate(self) -> None:
        super().validate()
        if self.augment_backend not in ("batched", "reference"):
            raise ValueError(f"augment_backend must be 'batched' or 'reference', got {self.augment_backend!r}")
        if self.loader not in LOADERS:
            raise ValueError(f"loader must be one of {LOADERS}, got {self.loader!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        self.jitter()
        check_loss(self.loss, LOSSES)
        from deepaug.core.ssl import SSL_METHODS, check_own_settings

        if self.ssl_method not in SSL_METHODS:
            raise ValueError(f"ssl_method must be one of {SSL_METHODS}, got {self.ssl_method!r}")
        if self.objective == "contrastive":  # the supervised counterpart ignores the SSL method and its settings
            check_own_settings(self.ssl_method, vars(self))
            if self.ssl_method != "simclr" and self.batch_size < 4:
                raise ValueError(f"batch_size must be at least 4 for ssl_method {self.ssl_method} (its batch norms "
                                 f"and batch statistics), got {self.batch_size}")  # fmt: skip
            tau = (self.tau_base, self.tau_final)
            if None not in tau and tau[0] > tau[1]:
                raise ValueError(f"tau_base {tau[0]} must be at most tau_final {tau[1]} (BYOL's momentum grows)")

    def resolved(self) -> VisionPretrainSettings:
        """These settings with the SSL method's own settings that are None filled from its recipe
        (recipes.py SSL_RECIPES): what a direct call of the trainer with just ``--ssl-method`` trains."""
        from dataclasses import replace

        from deepaug.core.ssl import METHODS
        from deepaug.domains.vision.recipes import method_setting

        if self.objective != "contrastive" or self.ssl_method not in METHODS:
            return self
        own = METHODS[self.ssl_method].settings
        return replace(self, **{k: method_setting(self.ssl_method, k) for k in own if getattr(self, k) is None})

    def head(self) -> str:
        """The model's projection head: the SSL method's projector (simclr: SimCLR's; supervised: the classifier)."""
        return self.ssl_method if self.objective == "contrastive" else "simclr"

    def jitter(self) -> tuple[float, float, float, float]:
        """``color_jitter`` as (brightness, contrast, saturation, hue)."""
        try:
            values = tuple(float(v) for v in self.color_jitter.split(","))
        except ValueError:
            values = ()
        if len(values) != 4 or not all(v >= 0 for v in values) or values[3] > 0.5:
            raise ValueError(
                f"color_jitter must be four numbers >= 0 (brightness, contrast, saturation, hue <= 0.5), "
                f"e.g. '0.4,0.4,0.4,0.1'; got {self.color_jitter!r}"
            )
        return values  # type: ignore[return-value]


def pretrain(s: VisionPretrainSettings, data_path: str | Path, out_dir: str | Path, ckpt_dir: str | Path) -> dict:
    """Train, checkpointing to ``ckpt_dir`` (resumed if present); write model, metrics, provenance to ``out_dir``."""
    return train(VisionTask(s, data_path), out_dir, ckpt_dir)


class VisionTask(DataFileTask):
    """SimCLR-style pre-training of a CIFAR ResNet, one period per epoch (see :class:`deepaug.engine.loop.Task`);
    the objective (:mod:`deepaug.core.objectives`) gives the views per image, the head's width and the loss; a
    contrastive run's ``ssl_method`` (:mod:`deepaug.core.ssl`) picks the method's objective and projector."""

    def __init__(self, s, data_path) -> None:
        s = s.resolved()
        super().__init__(s, data_path)
        if s.objective == "contrastive":
            from deepaug.core.ssl import method_objective

            self.objective = method_objective(s.ssl_method)

    def build(self, device: torch.device) -> None:
        s = self.s
        data = load_prepared(self.data_path)
        x_train = data["x_train"]
        # with labels, the head gives the class logits
        self.out_dim = int(data["y_train"].max()) + 1 if self.objective.labels else s.proj_dim
        self.in_channels = int(x_train.shape[-1])
        self.input_size = s.crop_size or int(x_train.shape[1])
        model = build_vision_model(s.arch, s.width, self.in_channels, self.out_dim, s.stem, s.proj_hidden_dim, s.head())
        model = model.to(device)
        if s.channels_last and device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.aug = s.attach_augment(lambda layer: target_module(model, layer))
        if self.aug is not None:
            T.log(f"{s.run}: Deep Augmentation {self.aug.extra_repr()} at {s.where()}")
        self.extras = self.objective.extras(model, s, device)
        self.forward_fn = _compiled(s, model, device)

        self.monitor = None
        if s.knn_monitor:
            if "x_dev" in data and "pack" not in data:
                bank = slice(0, min(MONITOR_BANK, x_train.shape[0]))
                self.monitor = (x_train[bank], data["y_train"][bank], data["x_dev"], data["y_dev"], data["mean"],
                                data["std"], device)  # fmt: skip
            else:
                T.log(f"{s.run}: knn_monitor: no in-memory dev split in {self.data_path}; no kNN monitor")
        n = x_train.shape[0]
        self.batch = min(s.batch_size, n)
        if self.batch < s.batch_size:
            T.log(f"WARNING: batch_size {s.batch_size} > {n} training images; using {self.batch}")
        self.steps_per_epoch = n // self.batch
        if self.extras is not None and hasattr(self.extras, "total_steps"):  # e.g. BYOL's momentum schedule
            self.extras.total_steps = self.steps_per_epoch * s.epochs
        source = _packed_batch_source if "pack" in data else _batch_source
        self.epoch_batches = source(
            s,
            x_train,
            data["y_train"],
            data["mean"],
            data["std"],
            self.batch,
            self.steps_per_epoch,
            device,
            self.objective.views,
        )

    def optimizer(self, device: torch.device) -> torch.optim.Optimizer:
        s = self.s
        if s.optimizer == "lars":  # solo-learn's ImageNet-100 SimCLR (deepaug/engine/lars.py)
            params = trained_parameters(self.model, self.extras)
            return LARS(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, eta=s.lars_eta)
        opt_kwargs = {"fused": True} if device.type == "cuda" else {}
        return torch.optim.SGD(
            trained_parameters(self.model, self.extras),
            lr=s.lr,
            momentum=s.momentum,
            weight_decay=s.weight_decay,
            **opt_kwargs,
        )

    def parts(self) -> dict:
        return {"model": self.model} if self.extras is None else {"model": self.model, "extras": self.extras}

    def finished(self, p: Progress) -> bool:
        return p.period >= self.s.epochs

    def total_steps(self) -> int:
        return self.steps_per_epoch * self.s.epochs

    def batches(self, p: Progress, seed: int):
        return self.epoch_batches(seed)

    def lr(self, step: int) -> float:
        s = self.s
        return T.cosine_with_warmup(step, self.steps_per_epoch * s.epochs, self.steps_per_epoch * s.warmup_epochs, s.lr)

    def forward(self, batch):
        return self.forward_fn(batch[0])

    def loss(self, out, batch) -> torch.Tensor:
        x, labels = batch
        return self.objective.loss(out, labels, self.s, self.extras, lambda net: net(x))

    def after_step(self, step: int) -> None:
        self.objective.step_done(self.model, self.extras, self.s, step)

    def record(self, p: Progress, end: PeriodEnd) -> dict:
        images = self.objective.views * self.steps_per_epoch * self.batch
        row = {
            "epoch": p.period - 1,
            "step": p.step,
            "loss": end.loss,
            "lr": end.lr,
            "epoch_time_s": round(end.seconds, 4),
            "images_per_s": round(images / end.seconds, 1),
        }
        if self.monitor is not None and (p.period % self.s.knn_monitor == 0 or self.finished(p)):
            row["knn_dev_top1"] = knn_monitor(self.model, *self.monitor)
        return row

    def final_weights(self, best: dict | None) -> dict:
        return {"the final weights": self.model.state_dict()}

    def payload(self, best: dict | None) -> dict:
        s = self.s
        meta = {
            "arch": s.arch,
            "width": s.width,
            "in_channels": self.in_channels,
            "proj_dim": self.out_dim,
            "stem": s.stem,
            "proj_hidden_dim": s.proj_hidden_dim,
        }
        if s.head() != "simclr":
            meta["head"] = s.head()
        return {
            "model": self.model.state_dict(),
            "meta": meta,
            "objective": s.objective,
            "input_size": self.input_size,
        }

    def provenance(self, p: Progress, best: dict | None) -> dict:
        return {"data": str(self.data_path)}


MONITOR_BANK = 5000  # training images of the kNN monitor's bank


def knn_monitor(model, bank_x, bank_y, dev_x, dev_y, mean, std, device) -> float:
    """kNN top-1 (%, k 20, T 0.1) of the dev images on the bank's pooled features, in eval mode (no randomness and
    no batch-norm update: the weights and the rest of the run are as without it). The next period's start puts
    the model back in training mode."""
    from deepaug.domains.vision.evaluate import extract_features, knn_top1

    bank = extract_features(model, bank_x, mean, std, 512, device)
    dev = extract_features(model, dev_x, mean, std, 512, device)
    y_bank, y_dev = torch.from_numpy(bank_y).long(), torch.from_numpy(dev_y).long()
    return round(100 * knn_top1(bank, y_bank, dev, y_dev, k=20, temperature=0.1), 2)


def _compiled(s: VisionPretrainSettings, model, device: torch.device):
    """The model's forward, through ``torch.compile`` when asked (off by default: start-up cost vs short runs)."""
    if not s.compile:
        return model
    backend = s.compile_backend
    if device.type == "cpu" and backend == "inductor":
        # torch 2.14's CPU inductor aborts in convolution_backward when the ResNet graph is split
        # (the op's random draws run outside the graph); aot_eager gives the same numbers.
        backend = "aot_eager"
        T.log(f"{s.run}: torch.compile on the CPU uses the aot_eager backend (inductor is for GPUs)")
    return torch.compile(model, backend=backend)


def _batch_source(s, x_train, y_train, mean, std, batch: int, steps: int, device: torch.device, n_views: int):
    """``epoch_batches(seed)`` yields the epoch's ``(x, labels)`` on ``device``: both views
    concatenated (``n_views`` 2) or one view (``n_views`` 1), as the objective asks.

    ``batched``: the uint8 dataset lives on the device and each batch is augmented there at once.
    ``reference``: per-image torchvision v2 transforms in DataLoader workers (the SupContrast way).
    """
    n = x_train.shape[0]
    memory_format = torch.channels_last if (s.channels_last and device.type == "cuda") else torch.contiguous_format
    two_views = n_views == 2
    labels = torch.from_numpy(y_train).to(device)

    if s.blur_prob or s.solarize_prob:
        raise ValueError(
            f"run {s.run}: blur_prob and solarize_prob are applied to image-folder datasets only (the CIFAR recipe "
            f"has neither); set them to 0 for an in-memory dataset such as this one"
        )
    size, scale, jitter = s.crop_size or x_train.shape[1], (s.crop_min_scale, 1.0), s.jitter()
    if s.augment_backend == "batched":
        images = torch.from_numpy(x_train).to(device).permute(0, 3, 1, 2).contiguous()
        augment = BatchedSimCLRAugment(size, mean, std, scale=scale, jitter=jitter)

        def epoch_batches(seed: int):
            g = torch.Generator(device=device).manual_seed(seed)
            order = torch.randperm(n, generator=g, device=device)[: steps * batch].view(steps, batch)
            for idx in order:
                views = images[idx]
                x = torch.cat([augment(views, g), augment(views, g)]) if two_views else augment(views, g)
                yield x.contiguous(memory_format=memory_format), labels[idx]

        return epoch_batches

    dataset = TwoViews(x_train, simclr_transform(size, mean, std, scale, jitter))

    def epoch_batches(seed: int):
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=g)[: steps * batch].view(steps, batch).tolist()
        loader = DataLoader(
            dataset, batch_sampler=order, num_workers=s.num_workers, generator=g, pin_memory=device.type == "cuda"
        )
        for idx, (v1, v2) in zip(order, loader):
            x = (torch.cat([v1, v2]) if two_views else v1).to(device, non_blocking=True)
            yield x.contiguous(memory_format=memory_format), labels[idx]

    return epoch_batches


def _packed_batch_source(s, x_train, y_train, mean, std, batch: int, steps: int, device, n_views: int):
    """``epoch_batches(seed)`` for a packed image folder (``x_train`` its :class:`CenterCrops` view): two random
    resized crops per image decoded in ``num_workers`` DataLoader workers, then flip, colour jitter, grayscale,
    blur and solarisation on the device, a batch at a time (:mod:`deepaug.domains.vision.fast_loader`). The
    crops depend only on (the epoch's seed, the image), never on the workers."""
    from deepaug.domains.vision.fast_loader import AugmentParams, TwoViewBatchAugment, packed_loader

    params = AugmentParams(
        size=s.crop_size or 224,
        scale=(s.crop_min_scale, 1.0),
        jitter=s.jitter(),
        p_blur=(s.blur_prob, s.blur_prob),
        p_solarize=(s.solarize_prob, s.solarize_prob),
    )
    augment = TwoViewBatchAugment(params, tuple(map(float, mean)), tuple(map(float, std)))
    memory_format = torch.channels_last if (s.channels_last and device.type == "cuda") else torch.contiguous_format
    pack = x_train.images.pack

    # On a CPU with workers, the workers also run the colour half, each view with its image's own generator
    # (measured: 4.7x torchvision's images/s on 2 cores, against 0.7-3.9x with it batched in the main process,
    # deepaug bench data); on an accelerator it runs batched on the device.
    in_workers = device.type == "cpu" and s.num_workers > 0 and s.loader == "pack"
    if s.loader == "dali":
        from deepaug.domains.vision.dali_loader import dali_epoch, require_dali

        require_dali()  # before the run starts, in one line

        def dali_batches(seed: int):
            g = torch.Generator(device=device).manual_seed(seed)
            for v1, v2, labels in dali_epoch(x_train.images, params, batch, steps, seed, device, max(1, s.num_workers)):
                x1, x2 = augment(v1, v2, g)
                x = torch.cat([x1, x2]) if n_views == 2 else x1
                yield x.contiguous(memory_format=memory_format), labels

        return dali_batches
    if s.loader == "torchvision":
        return _torchvision_batch_source(s, x_train, params, mean, std, batch, steps, device, n_views, memory_format)

    def epoch_batches(seed: int):
        loader = packed_loader(
            pack, "train", params=params, batch_size=batch, workers=s.num_workers, seed=seed,
            pin_memory=device.type == "cuda", persistent_workers=False,
            augment_in_workers=augment if in_workers else None,
        )  # fmt: skip
        g = torch.Generator(device=device).manual_seed(seed)
        for step, (v1, v2, labels) in enumerate(loader):
            if step == steps:
                break
            if in_workers:
                x1, x2 = v1, v2
            else:
                x1, x2 = augment(v1.to(device, non_blocking=True), v2.to(device, non_blocking=True), g)
            x = torch.cat([x1, x2]) if n_views == 2 else x1
            yield x.contiguous(memory_format=memory_format), labels.to(device)

    return epoch_batches


def _torchvision_batch_source(s, x_train, params, mean, std, batch, steps, device, n_views, memory_format):
    """The reference loader of a pack: each image decoded with PIL and both views made by torchvision's v2
    transforms in DataLoader workers (:class:`~deepaug.domains.vision.fast_loader.TorchvisionTwoViews`, the same
    numbers as the fast path); the epoch's order and the workers' seeds follow the epoch's seed."""
    from torch.utils.data import DataLoader

    from deepaug.domains.vision.fast_loader import TorchvisionTwoViews
    from deepaug.domains.vision.packed import PackedPIL

    dataset = PackedPIL(x_train.images, TorchvisionTwoViews(params, tuple(map(float, mean)), tuple(map(float, std))))

    def epoch_batches(seed: int):
        g = torch.Generator().manual_seed(seed)
        loader = DataLoader(
            dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=s.num_workers, generator=g,
            pin_memory=device.type == "cuda",
        )  # fmt: skip
        for step, ((v1, v2), labels) in enumerate(loader):
            if step == steps:
                break
            x = torch.cat([v1, v2]) if n_views == 2 else v1
            yield x.to(device, non_blocking=True).contiguous(memory_format=memory_format), labels.to(device)

    return epoch_batches


def load_encoder(model_path: str | Path, device: torch.device):
    state = load_torch(model_path, "trained vision model")
    model = build_vision_model(**state["meta"])
    model.load_state_dict(state["model"])
    model.objective = state.get("objective", "contrastive")
    model.input_size = int(state.get("input_size", 224))  # the side of the training crops
    return model.to(device).eval()
