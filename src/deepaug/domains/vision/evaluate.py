"""Frozen-feature evaluation of a pre-trained encoder (no Deep Augmentation): linear probe and kNN.

Three disjoint image sets (see :mod:`deepaug.domains.vision.data`): the probe and the kNN memory bank use the
training images (``x_train``), every choice is made on the held-out dev images (``x_dev``: the probe's
epoch here, the best setting in :mod:`deepaug.analysis.summary`), and the test images are only reported.
SupContrast's linear evaluation (HobbitLong/SupContrast ``main_linear.py``, ``main()``) reports the best
*test* epoch instead: ``best_acc`` is the maximum over epochs of ``validate(val_loader, ...)``, and
``set_loader`` builds ``val_loader`` from the CIFAR test split. Choosing that epoch on dev is the same
choice without looking at test.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from deepaug.engine import training as T
from deepaug.domains.vision.augmentations import eval_transform
from deepaug.domains.vision.data import load_prepared
from deepaug.errors import NonFiniteError
from deepaug.workflow.io import read_json, write_json
from deepaug.domains.vision.train import load_encoder


@dataclass
class VisionEvalSettings:
    linear_epochs: int = 100
    linear_batch_size: int = 512
    linear_lr: float = 0.1
    linear_weight_decay: float = 0.0
    knn_k: int = 200
    knn_temperature: float = 0.1
    batch_size: int = 1024
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        """Impossible values, named (the CLI turns these into one line and exit status 2)."""
        for name in ("linear_epochs", "linear_batch_size", "knn_k", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("linear_lr", "knn_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(self.device)):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


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
        raise NonFiniteError(f"run {run}: {bad} of {features.shape[0]} {split} feature vectors are not finite "
                             f"(NaN/inf); the model diverged, so it is not evaluated")


@torch.no_grad()
def extract_features(model, images, mean, std, batch_size: int, device: torch.device) -> torch.Tensor:
    """Pooled encoder features (layer 5) for uint8 N x H x W x C images, in eval mode."""
    model.eval()
    tf = eval_transform(mean, std)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    out = []
    for i in range(0, x.shape[0], batch_size):
        out.append(model.encode(tf(x[i : i + batch_size]).to(device)).float().cpu())
    return torch.cat(out)


@dataclass(frozen=True)
class ProbeResult:
    dev_top1: float  # fractions in [0, 1]
    test_top1: float
    epoch: int  # the epoch (1-based) whose weights were kept: the best on dev (the latest of ties)


def _accuracy(clf: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (clf(x).argmax(1) == y).float().mean().item()


def linear_probe(train_x, train_y, dev_x, dev_y, test_x, test_y, epochs: int = 100, batch_size: int = 512,
                 lr: float = 0.1, weight_decay: float = 0.0, seed: int = 0) -> ProbeResult:
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
    best_dev, best_epoch, best_state = -1.0, 0, None
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(clf(train_x[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        dev = _accuracy(clf, dev_x, dev_y)
        if dev >= best_dev:
            best_dev, best_epoch = dev, epoch
            best_state = {k: v.detach().clone() for k, v in clf.state_dict().items()}
    clf.load_state_dict(best_state)
    return ProbeResult(dev_top1=best_dev, test_top1=_accuracy(clf, test_x, test_y), epoch=best_epoch)


@torch.no_grad()
def classifier_top1(model, images, labels, mean, std, batch_size: int, device) -> float:
    """Accuracy of a supervised model's own head (its logits) on ``images``."""
    model.eval()
    tf = eval_transform(mean, std)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        pred = model(tf(x[i : i + batch_size]).to(device)).argmax(1).cpu()
        correct += (pred == labels[i : i + batch_size]).sum().item()
    return correct / x.shape[0]


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
    models) and the same scores on dev (``dev_...``), the numbers every selection is made on."""
    t0 = time.time()
    device = T.resolve_device(s.device)
    T.seed_everything(s.seed)
    data = load_prepared(data_path)
    model = load_encoder(model_path, device)
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
            result[key] = 100 * classifier_top1(model, data[f"x_{split}"], labels[split], data["mean"], data["std"],
                                                s.batch_size, device)
    probe = linear_probe(feats["train"], labels["train"], feats["dev"], labels["dev"], feats["test"], labels["test"],
                         s.linear_epochs, s.linear_batch_size, s.linear_lr, s.linear_weight_decay, s.seed)
    result |= {
        "linear_top1": 100 * probe.test_top1,
        "dev_linear_top1": 100 * probe.dev_top1,
        "linear_epoch": probe.epoch,
        "knn_top1": 100 * knn_top1(feats["train"], labels["train"], feats["test"], labels["test"], s.knn_k,
                                   s.knn_temperature),
        "dev_knn_top1": 100 * knn_top1(feats["train"], labels["train"], feats["dev"], labels["dev"], s.knn_k,
                                       s.knn_temperature),
        "eval_time_s": round(time.time() - t0, 3),
    }
    prov_path = Path(model_path).with_name("provenance.json")
    if prov_path.exists():
        result["train_time_s"] = read_json(prov_path).get("train_time_s")
    write_json(out, result)
    return result
