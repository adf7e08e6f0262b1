"""Training of a CIFAR ResNet with Deep Augmentation at one layer.

``objective="contrastive"`` (the paper's setting): SimCLR, NT-Xent over two augmented views per image.
``objective="supervised"`` (the supervised counterpart): cross-entropy on the labels, one augmented
view per image, the head's output (layer 6) being the class logits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from deepaug.engine import training as T
from deepaug.domains.vision.augmentations import TwoViews, simclr_transform
from deepaug.domains.vision.batched_augment import BatchedSimCLRAugment
from deepaug.domains.vision.data import load_prepared
from deepaug.workflow.io import load_torch, save_torch, write_jsonl
from deepaug.core.layers import target_module
from deepaug.core.losses import check_loss, contrastive_loss
from deepaug.domains.vision.models import build_vision_model
from deepaug.engine.provenance import provenance
from deepaug.core.settings import RunSettings

# train.loss: supcon (SupContrast's scale, the paper's) or nt_xent; the schema's enum (tests/core/test_losses.py)
LOSSES = ("supcon", "nt_xent")


@dataclass
class VisionPretrainSettings(RunSettings):
    arch: str = "resnet18"
    width: int = 64
    proj_dim: int = 128
    epochs: int = 1000
    batch_size: int = 1024
    lr: float = 0.5
    momentum: float = 0.9
    weight_decay: float = 1e-4
    temperature: float = 0.5
    # supcon: SupContrast's SupConLoss, NT-Xent x temperature / 0.07 (the paper's vision code followed
    # SupContrast); nt_xent: plain NT-Xent. See deepaug.core.losses.supcon_loss.
    loss: str = "supcon"
    warmup_epochs: int = 10
    channels_last: bool = True
    compile: bool = False
    compile_backend: str = "inductor"  # torch.compile backend (the CPU falls back to aot_eager)
    augment_backend: str = "batched"
    num_workers: int = 0
    checkpoint_every: int = 10  # epochs

    def validate(self) -> None:
        super().validate()
        if self.augment_backend not in ("batched", "reference"):
            raise ValueError(f"augment_backend must be 'batched' or 'reference', got {self.augment_backend!r}")
        check_loss(self.loss, LOSSES)


def pretrain(s: VisionPretrainSettings, data_path: str | Path, out_dir: str | Path, ckpt_dir: str | Path) -> dict:
    """Train, checkpointing to ``ckpt_dir`` (resumed if present); write model, metrics, provenance to ``out_dir``."""
    t_start = time.time()
    ckpt = T.open_run(s, ckpt_dir, {"data": data_path})
    if (done := ckpt.reuse(out_dir, s.reuse_finished)) is not None:
        return done
    device = T.prepare(s)
    data = load_prepared(data_path)
    x_train = data["x_train"]

    supervised = s.objective == "supervised"
    out_dim = int(data["y_train"].max()) + 1 if supervised else s.proj_dim  # supervised: the head gives logits
    model = build_vision_model(s.arch, s.width, x_train.shape[-1], out_dim).to(device)
    if s.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    aug = s.build_augment()
    if aug is not None:
        aug.attach(target_module(model, s.layer))
        T.log(f"{s.run}: Deep Augmentation {aug.extra_repr()} at layer {s.layer}")

    forward = model
    if s.compile:  # off by default: start-up cost vs short runs
        backend = s.compile_backend
        if device.type == "cpu" and backend == "inductor":
            # torch 2.14's CPU inductor aborts in convolution_backward when the ResNet graph is split
            # (the op's random draws run outside the graph); aot_eager gives the same numbers.
            backend = "aot_eager"
            T.log(f"{s.run}: torch.compile on the CPU uses the aot_eager backend (inductor is for GPUs)")
        forward = torch.compile(model, backend=backend)
    opt_kwargs = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, **opt_kwargs)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and s.precision == "fp16")

    n = x_train.shape[0]
    batch = min(s.batch_size, n)
    if batch < s.batch_size:
        T.log(f"WARNING: batch_size {s.batch_size} > {n} training images; using {batch}")
    steps_per_epoch = n // batch
    total_steps = steps_per_epoch * s.epochs
    warmup_steps = steps_per_epoch * s.warmup_epochs
    batches = _batch_source(s, x_train, data["y_train"], data["mean"], data["std"], batch, steps_per_epoch, device)
    history, start_epoch, elapsed_before = T.resume_epochs(ckpt, model=model, optimizer=optimizer, scaler=scaler)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_time = elapsed_before
    step = start_epoch * steps_per_epoch
    from tqdm.auto import tqdm

    for epoch in tqdm(range(start_epoch, s.epochs), desc=s.run, initial=start_epoch, total=s.epochs, mininterval=10):
        t0 = time.time()
        # Each epoch is a pure function of (weights, optimiser, seed, epoch): resuming replays it exactly.
        T.seed_everything(T.epoch_seed(s.seed, epoch))
        if aug is not None:
            aug.reseed(T.epoch_seed(s.seed, epoch, stream=1))
        model.train()
        loss_sum = torch.zeros((), device=device)
        for x, y in batches(T.epoch_seed(s.seed, epoch, stream=2)):
            lr = T.cosine_with_warmup(step, total_steps, warmup_steps, s.lr)
            with T.autocast_context(device, s.precision):
                z = forward(x)
            loss = F.cross_entropy(z.float(), y) if supervised else contrastive_loss(s.loss, z, s.temperature)
            T.optimizer_step(optimizer, scaler, loss, lr, s.max_grad_norm)
            loss_sum += loss.detach()
            step += 1
        mean_loss = T.check_finite(loss_sum, s.run, step) / steps_per_epoch
        dt = time.time() - t0
        train_time += dt
        history.append({
            "epoch": epoch, "step": step, "loss": mean_loss, "lr": lr,
            "epoch_time_s": round(dt, 4), "images_per_s": round((1 if supervised else 2) * steps_per_epoch * batch / dt, 1),
        })
        last = epoch == s.epochs - 1
        if last or (epoch + 1) % s.checkpoint_every == 0:
            ckpt.save(T.snapshot(model=model, optimizer=optimizer, scaler=scaler, epoch=epoch, history=history,
                                 train_time_s=train_time), progress=epoch + 1)
            write_jsonl(out_dir / "train_metrics.jsonl", history)

    # The loss is checked before each update; the last update itself can still diverge.
    T.check_finite_state(model.state_dict(), s.run)
    meta = {"arch": s.arch, "width": s.width, "in_channels": int(x_train.shape[-1]), "proj_dim": out_dim}
    save_torch({"model": model.state_dict(), "meta": meta, "objective": s.objective}, out_dir / "model.pt")
    write_jsonl(out_dir / "train_metrics.jsonl", history)
    prov = provenance(ckpt.settings, device, time.time() - t_start, {
        "train_time_s": round(train_time, 3), "final_loss": history[-1]["loss"] if history else None,
        "data": str(data_path), "steps": step, "fingerprint": ckpt.fingerprint, "segments": ckpt.all_segments(),
    })
    return ckpt.complete(out_dir, prov)


def _batch_source(s, x_train, y_train, mean, std, batch: int, steps: int, device: torch.device):
    """``epoch_batches(seed)`` yields the epoch's ``(x, labels)`` on ``device``: both views
    concatenated (contrastive) or one view (supervised).

    ``batched``: the uint8 dataset lives on the device and each batch is augmented there at once.
    ``reference``: per-image torchvision v2 transforms in DataLoader workers (the SupContrast way).
    """
    n = x_train.shape[0]
    memory_format = torch.channels_last if (s.channels_last and device.type == "cuda") else torch.contiguous_format
    two_views = s.objective == "contrastive"
    labels = torch.from_numpy(y_train).to(device)

    if s.augment_backend == "batched":
        images = torch.from_numpy(x_train).to(device).permute(0, 3, 1, 2).contiguous()
        augment = BatchedSimCLRAugment(x_train.shape[1], mean, std)

        def epoch_batches(seed: int):
            g = torch.Generator(device=device).manual_seed(seed)
            order = torch.randperm(n, generator=g, device=device)[: steps * batch].view(steps, batch)
            for idx in order:
                views = images[idx]
                x = torch.cat([augment(views, g), augment(views, g)]) if two_views else augment(views, g)
                yield x.contiguous(memory_format=memory_format), labels[idx]

        return epoch_batches

    dataset = TwoViews(x_train, simclr_transform(x_train.shape[1], mean, std))

    def epoch_batches(seed: int):
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=g)[: steps * batch].view(steps, batch).tolist()
        loader = DataLoader(dataset, batch_sampler=order, num_workers=s.num_workers, generator=g,
                            pin_memory=device.type == "cuda")
        for idx, (v1, v2) in zip(order, loader):
            x = (torch.cat([v1, v2]) if two_views else v1).to(device, non_blocking=True)
            yield x.contiguous(memory_format=memory_format), labels[idx]

    return epoch_batches


def load_encoder(model_path: str | Path, device: torch.device):
    state = load_torch(model_path, "trained vision model")
    model = build_vision_model(**state["meta"])
    model.load_state_dict(state["model"])
    model.objective = state.get("objective", "contrastive")
    return model.to(device).eval()

