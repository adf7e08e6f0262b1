"""Frozen-feature evaluation of a pre-trained encoder (no Deep Augmentation): linear probe and kNN.

Three disjoint image sets (see :mod:`deepaug.domains.vision.data`): the probe and the kNN memory bank use the
training images (``x_train``), every choice is made on the held-out dev images (``x_dev``: the probe's
epoch here, the best setting in :mod:`deepaug.analysis.summary`), and the test images are only reported.
SupContrast's linear evaluation (HobbitLong/SupContrast ``main_linear.py``, ``main()``) reports the best
*test* epoch instead: ``best_acc`` is the maximum over epochs of ``validate(val_loader, ...)``, and
``set_loader`` builds ``val_loader`` from the CIFAR test split. Choosing that epoch on dev is the same
choice without looking at test.

Two linear probes (``VisionEvalSettings.probe``; eval.json records which one made the numbers):

* ``features`` (default, fast): the encoder's features of the un-augmented training images, computed
  once and standardised, then a linear classifier (SGD, cosine lr) on them (:func:`linear_probe`);
* ``supcon``: SupContrast's linear evaluation (HobbitLong/SupContrast ``main_linear.py``): every epoch
  the training images go through RandomResizedCrop(0.2-1) + flip and the frozen encoder (eval mode, no
  gradient) into a linear layer trained by SGD (momentum 0.9, lr 1 at batch 512 for SimCLR per its
  README, no weight decay) with the lr stepped x0.2 after epochs 60, 75 and 90 of 100
  (:func:`supcon_linear_probe`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepaug.core.schema_defaults import domain_schema, schema_defaults
from deepaug.core.vocabulary import check_device
from deepaug.domains.vision.augmentations import eval_transform
from deepaug.domains.vision.batched_augment import BatchedCropFlip
from deepaug.domains.vision.data import load_prepared
from deepaug.domains.vision.train import load_encoder
from deepaug.engine import training as T
from deepaug.errors import NonFiniteError
from deepaug.io import read_json, write_json

PROBES = ("features", "supcon")


# The defaults of these settings, from the config schema (each written once there; deepaug.core.schema_defaults)
_EVAL = schema_defaults(domain_schema(__file__), "eval")


@dataclass
class VisionEvalSettings:
    probe: str = _EVAL["probe"]  # features | supcon (see the module docstring)
    linear_epochs: int = _EVAL["linear_epochs"]
    linear_batch_size: int = _EVAL["linear_batch_size"]
    linear_lr: float = _EVAL["linear_lr"]  # SupContrast's SimCLR linear eval: 1.0 (README, "Linear evaluation stage")
    linear_weight_decay: float = _EVAL["linear_weight_decay"]
    # probe supcon only: lr x decay_rate after each of these epochs (SupContrast main_linear.py:41-44)
    linear_lr_decay_epochs: str = _EVAL["linear_lr_decay_epochs"]
    linear_lr_decay_rate: float = _EVAL["linear_lr_decay_rate"]
    knn_k: int = _EVAL["knn_k"]
    knn_temperature: float = _EVAL["knn_temperature"]
    batch_size: int = 1024
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        """Impossible values, named (the CLI turns these into one line and exit status 2)."""
        for name in ("linear_epochs", "linear_batch_size", "knn_k", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("linear_lr", "knn_temperature", "linear_lr_decay_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        check_device(self.device)
        if self.probe not in PROBES:
            raise ValueError(f"probe must be one of {', '.join(PROBES)}, got {self.probe!r}")
        milestones = parse_decay_epochs(self.linear_lr_decay_epochs)
        late = [m for m in milestones if m >= self.linear_epochs]
        if self.probe == "supcon" and late:
            raise ValueError(
                f"linear_lr_decay_epochs {self.linear_lr_decay_epochs!r}: epoch(s) {late} are not before the "
                f"last of linear_epochs={self.linear_epochs}, so the lr would never decay there; give "
                f"epochs below {self.linear_epochs} (SupContrast: 60,75,90 of 100) or '' for a constant lr"
            )


def parse_decay_epochs(text) -> list[int]:
    """``"60,75,90"`` -> ``[60, 75, 90]`` (SupContrast main_linear.py:69-72 splits the same string); ``""``: none.
    A list or tuple of whole numbers is taken as it is, and so is its text (``"[60, 75, 90]"``, what a YAML
    list becomes on the command line)."""
    if isinstance(text, (list, tuple)):
        text = ",".join(map(str, text))
    parts = [p.strip() for p in str(text).strip().strip("[]()").split(",") if p.strip()]
    try:
        epochs = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"linear_lr_decay_epochs must be comma-separated whole numbers, got {text!r}") from None
    if any(e < 1 for e in epochs) or epochs != sorted(set(epochs)):
        raise ValueError(f"linear_lr_decay_epochs must be increasing whole numbers >= 1, got {text!r}")
    return epochs


def step_lr(base_lr: float, epoch: int, decay_epochs, decay_rate: float) -> float:
    """SupContrast's step schedule (``util.py:53-65``, ``adjust_learning_rate`` without ``--cosine``), set at the
    start of each 1-based ``epoch``: ``base_lr * decay_rate ** (number of decay epochs strictly below epoch)``,
    so with 60,75,90: lr for epochs 1-60, x0.2 for 61-75, x0.04 for 76-90, x0.008 for 91-100."""
    return base_lr * decay_rate ** sum(epoch > m for m in decay_epochs)


def run_name(model_path: str | Path) -> str:
    """The run a model belongs to (from its provenance.json), for error messages."""
    prov = Path(model_path).with_name("provenance.json")
    try:
        return read_json(prov)["settings"]["run"]
    except Exception:
        return str(Path(model_path).parent)


def check_finite_features(features: torch.Tensor, run: str, split: str) -> None:
    """A diverged model gives NaN/inf features, which a probe would still turn into a plausible
    chance-level accuracy: fail instead, naming the run."""
    bad = (~torch.isfinite(features)).any(dim=1).sum().item()
    if bad:
        raise NonFiniteError(
            f"run {run}: {bad} of {features.shape[0]} {split} feature vectors are not finite "
            f"(NaN/inf); the model diverged, so it is not evaluated"
        )


@torch.no_grad()
def extract_features(model, images, mean, std, batch_size: int, device: torch.device) -> torch.Tensor:
    """Pooled encoder features (layer 5) for uint8 N x H x W x C images, in eval mode."""
    model.eval()
    tf = eval_transform(mean, std)
    out = []
    for i in range(0, len(images), batch_size):  # a slice at a time (a packed folder decodes only that many)
        x = torch.from_numpy(np.asarray(images[i : i + batch_size])).permute(0, 3, 1, 2)
        out.append(model.encode(tf(x).to(device)).float().cpu())
    return torch.cat(out)


@dataclass(frozen=True)
class ProbeResult:
    dev_top1: float  # fractions in [0, 1]
    test_top1: float
    epoch: int  # the epoch (1-based) whose weights were kept: the best on dev (the latest of ties)
    test_top5: float = float("nan")  # the true class among the 5 highest logits (NaN with fewer than 5 classes)


def _accuracy(clf: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (clf(x).argmax(1) == y).float().mean().item()


def _top5(clf: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-5 accuracy (ImageNet's second number), NaN where there are 5 classes or fewer."""
    with torch.no_grad():
        logits = clf(x)
        if logits.shape[1] <= 5:
            return float("nan")
        return (logits.topk(5, dim=1).indices == y[:, None]).any(1).float().mean().item()


class _DevBest:
    """The classifier weights of the epoch with the best dev accuracy (ties: the later epoch); test is
    scored once, with them (both probes)."""

    def __init__(self) -> None:
        self.dev, self.epoch, self.state = -1.0, 0, None

    def update(self, clf: torch.nn.Module, dev: float, epoch: int) -> None:
        if dev >= self.dev:
            self.dev, self.epoch = dev, epoch
            self.state = {k: v.detach().clone() for k, v in clf.state_dict().items()}

    def result(self, clf: torch.nn.Module, test_x, test_y) -> ProbeResult:
        clf.load_state_dict(self.state)
        top1, top5 = _accuracy(clf, test_x, test_y), _top5(clf, test_x, test_y)
        return ProbeResult(dev_top1=self.dev, test_top1=top1, epoch=self.epoch, test_top5=top5)


def linear_probe(
    train_x,
    train_y,
    dev_x,
    dev_y,
    test_x,
    test_y,
    epochs: int = 100,
    batch_size: int = 512,
    lr: float = 0.1,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> ProbeResult:
    """A linear classifier on standardised frozen features (SGD, cosine lr), trained on ``train``;
    after every epoch it is scored on ``dev`` and the dev-best weights are kept (ties: the later
    epoch, the full schedule's end being the default). Test is scored once, with the kept weights."""
    g = torch.Generator().manual_seed(seed)
    mu, sd = train_x.mean(0, keepdim=True), train_x.std(0, keepdim=True).clamp_min(1e-6)
    train_x, dev_x, test_x = (train_x - mu) / sd, (dev_x - mu) / sd, (test_x - mu) / sd
    n_classes = int(max(train_y.max(), dev_y.max(), test_y.max())) + 1
    clf = torch.nn.Linear(train_x.shape[1], n_classes)
    with torch.no_grad():
        clf.weight.normal_(0, 0.01, generator=g)
        clf.bias.zero_()
    opt = torch.optim.SGD(clf.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    n = train_x.shape[0]
    steps = epochs * max(1, -(-n // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    best = _DevBest()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(clf(train_x[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        best.update(clf, _accuracy(clf, dev_x, dev_y), epoch)
    return best.result(clf, test_x, test_y)


def supcon_linear_probe(
    model,
    images,
    labels,
    dev_x,
    dev_y,
    test_x,
    test_y,
    mean,
    std,
    device,
    epochs: int = 100,
    batch_size: int = 512,
    lr: float = 1.0,
    weight_decay: float = 0.0,
    decay_epochs=(60, 75, 90),
    decay_rate: float = 0.2,
    seed: int = 0,
) -> ProbeResult:
    """SupContrast's linear evaluation (HobbitLong/SupContrast ``main_linear.py``, ``util.py``), choosing on dev.

    ``images``/``labels``: the uint8 training images (N x H x W x C) and their labels; ``dev_x``/``test_x``:
    the encoder's features of the un-augmented dev/test images (SupContrast's ``val_transform`` is
    ToTensor + Normalize, ``main_ce.py:137-140``; the frozen encoder in eval mode makes them the same every
    epoch, so they are computed once). As in SupContrast:

    * the classifier is one ``nn.Linear(feature_dim, classes)`` with PyTorch's default init
      (``LinearClassifier``, ``networks/resnet_big.py:201-209``) on the raw encoder output (no standardisation);
    * each epoch the training set is shuffled (``main_ce.py:160-162``, ``shuffle=True``, the last short batch
      kept), each batch is RandomResizedCrop(size, scale=(0.2, 1)) + RandomHorizontalFlip + Normalize
      (``main_ce.py:130-135``; here batched on the device, :class:`BatchedCropFlip`, pixel-equal to
      torchvision's resized crop) and encoded by the frozen encoder in eval mode without gradient
      (``main_linear.py:135,155-157``);
    * SGD with momentum 0.9 and ``weight_decay`` (default 0, ``main_linear.py:45-48``; ``util.py:78-83``);
      the lr is NOT scaled with the batch size (``set_optimizer`` uses ``--learning_rate`` as given; the
      README's SimCLR recipe is lr 1 at batch 512); :func:`step_lr` sets it at the start of every epoch
      (``main_linear.py:243-244``); no warm-up (``--warm`` is off in the README's commands).

    The one departure: SupContrast keeps the best *test* accuracy over epochs (``main_linear.py:255-257``);
    here the classifier is scored on dev after every epoch, the dev-best weights are kept (the later epoch
    of ties, as :func:`linear_probe`) and test is scored once with them.
    """
    model.eval()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)  # uint8, stays on the device
    y = torch.as_tensor(labels).to(device)
    dev_x, dev_y, test_x, test_y = (t.to(device) for t in (dev_x, dev_y, test_x, test_y))
    n_classes = int(max(y.max(), dev_y.max(), test_y.max())) + 1
    augment = BatchedCropFlip(x.shape[-1], mean, std, scale=(0.2, 1.0))
    with torch.random.fork_rng(devices=[]):  # the classifier's init from ``seed``, the global RNG untouched
        torch.manual_seed(seed)
        clf = torch.nn.Linear(dev_x.shape[1], n_classes)
    clf = clf.to(device)
    opt = torch.optim.SGD(clf.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    g = torch.Generator(device=x.device).manual_seed(seed)
    n = x.shape[0]
    best = _DevBest()
    for epoch in range(1, epochs + 1):
        for group in opt.param_groups:
            group["lr"] = step_lr(lr, epoch, decay_epochs, decay_rate)
        clf.train()
        perm = torch.randperm(n, generator=g, device=x.device)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            with torch.no_grad():
                features = model.encode(augment(x[idx], g)).float()
            loss = F.cross_entropy(clf(features), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        clf.eval()
        best.update(clf, _accuracy(clf, dev_x, dev_y), epoch)
    return best.result(clf, test_x, test_y)


@torch.no_grad()
def classifier_top1(model, images, labels, mean, std, batch_size: int, device) -> float:
    """Accuracy of a supervised model's own head (its logits) on ``images``."""
    model.eval()
    tf = eval_transform(mean, std)
    correct = 0
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.asarray(images[i : i + batch_size])).permute(0, 3, 1, 2)
        pred = model(tf(x).to(device)).argmax(1).cpu()
        correct += (pred == labels[i : i + batch_size]).sum().item()
    return correct / len(images)


def knn_top1(train_x, train_y, test_x, test_y, k: int = 200, temperature: float = 0.1, batch_size: int = 1024) -> float:
    """Weighted kNN on cosine similarity (votes exp(sim / T)), as in InstDisc/SimCLR evaluations."""
    train_x, test_x = F.normalize(train_x, dim=1), F.normalize(test_x, dim=1)
    k = min(k, train_x.shape[0])
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    correct = 0
    for i in range(0, test_x.shape[0], batch_size):
        sim = test_x[i : i + batch_size] @ train_x.T
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], n_classes).scatter_add_(1, train_y[top_idx], (top_sim / temperature).exp())
        correct += (votes.argmax(1) == test_y[i : i + batch_size]).sum().item()
    return correct / test_x.shape[0]


def evaluate(s: VisionEvalSettings, model_path: str | Path, data_path: str | Path, out: str | Path) -> dict:
    """eval.json: test scores (``linear_top1``, ``knn_top1``; ``classifier_top1`` for supervised
    models), the same scores on dev (``dev_...``), the numbers every selection is made on, and
    ``probe``, the linear-probe protocol that made ``linear_top1`` (``features`` or ``supcon``)."""
    t0 = time.time()
    device = T.resolve_device(s.device)
    T.seed_everything(s.seed)
    model = load_encoder(model_path, device)
    data = load_prepared(data_path, size=model.input_size)  # a packed folder: centre crops of the trained size
    if "pack" in data and s.probe == "supcon":
        raise ValueError(
            f"probe: supcon trains on augmented images held in memory; {data_path} is a packed image folder: "
            f"use probe: features (the linear classifier on the centre crops' features)"
        )
    run = run_name(model_path)
    T.check_finite_state(model.state_dict(), run, f"the weights in {model_path}")
    feats, labels = {}, {}
    for split, what in (("train", "training"), ("dev", "dev"), ("test", "test")):
        feats[split] = extract_features(model, data[f"x_{split}"], data["mean"], data["std"], s.batch_size, device)
        check_finite_features(feats[split], run, what)
        labels[split] = torch.from_numpy(data[f"y_{split}"])
    result = {}
    if model.objective == "supervised":
        for split, key in (("dev", "dev_classifier_top1"), ("test", "classifier_top1")):
            result[key] = 100 * classifier_top1(
                model, data[f"x_{split}"], labels[split], data["mean"], data["std"], s.batch_size, device
            )
    if s.probe == "supcon":
        probe = supcon_linear_probe(
            model,
            data["x_train"],
            labels["train"],
            feats["dev"],
            labels["dev"],
            feats["test"],
            labels["test"],
            data["mean"],
            data["std"],
            device,
            s.linear_epochs,
            s.linear_batch_size,
            s.linear_lr,
            s.linear_weight_decay,
            parse_decay_epochs(s.linear_lr_decay_epochs),
            s.linear_lr_decay_rate,
            s.seed,
        )
    else:
        probe = linear_probe(
            feats["train"],
            labels["train"],
            feats["dev"],
            labels["dev"],
            feats["test"],
            labels["test"],
            s.linear_epochs,
            s.linear_batch_size,
            s.linear_lr,
            s.linear_weight_decay,
            s.seed,
        )
    result |= {
        "probe": s.probe,
        "linear_top1": 100 * probe.test_top1,
        "dev_linear_top1": 100 * probe.dev_top1,
        "linear_epoch": probe.epoch,
        "knn_top1": 100
        * knn_top1(feats["train"], labels["train"], feats["test"], labels["test"], s.knn_k, s.knn_temperature),
        "dev_knn_top1": 100
        * knn_top1(feats["train"], labels["train"], feats["dev"], labels["dev"], s.knn_k, s.knn_temperature),
        "eval_time_s": round(time.time() - t0, 3),
    }
    if probe.test_top5 == probe.test_top5:  # top-5 where there are more than 5 classes (never a NaN score)
        result["linear_top5"] = 100 * probe.test_top5
    # chance level of each test score (the majority-class rate of the test labels, %): the inversion check
    # (deepaug.analysis.summary.baseline_check) does not compare against a baseline at chance level
    chance = 100 * int(torch.bincount(labels["test"]).max()) / len(labels["test"])
    result |= {f"chance_{key}": chance for key in ("linear_top1", "knn_top1", "classifier_top1") if key in result}
    prov_path = Path(model_path).with_name("provenance.json")
    if prov_path.exists():
        result["train_time_s"] = read_json(prov_path).get("train_time_s")
    write_json(out, result)
    return result
