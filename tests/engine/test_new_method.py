"""A new method in one file plus one registration line: a toy shaped like BYOL, trained by the vision trainer.

BYOL's shape (Grill et al. 2020) is what the loop must carry for a method beside SimCLR: a module of the
method's own (a predictor on the online projection), a target network that is not trained by the optimiser
but follows the online network after each step (an exponential moving average), both kept in the checkpoint,
and a loss that runs the target on the batch. Everything the toy needs is in this file; the one line that
plugs it in is the registration in :func:`registered` (``OBJECTIVES[...] = ...``, here scoped to the test).
It is a toy: the target runs in eval mode (its batch norms use running statistics, and the Deep Augmentation
hook, active only in training mode, leaves it alone), the momentum is constant.
"""

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from interrupt import killed_after_checkpoint
from torch import nn

from deepaug.core.objectives import OBJECTIVES, Objective
from deepaug.domains.vision.train import VisionPretrainSettings, pretrain

MOMENTUM = 0.9


class ToyByolParts(nn.Module):
    """The method's own modules: a predictor (trained) and a target copy of the model (EMA, no gradients)."""

    def __init__(self, model: nn.Module, dim: int) -> None:
        super().__init__()
        self.predictor = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.target = copy.deepcopy(model).requires_grad_(False)

    def train(self, mode: bool = True) -> "ToyByolParts":
        super().train(mode)
        self.target.eval()  # the toy's target: running statistics, no Deep Augmentation
        return self


def toy_byol_build(model, s) -> nn.Module:
    return ToyByolParts(model, s.proj_dim)


def toy_byol_loss(out, labels, s, extras, apply) -> torch.Tensor:
    """BYOL's loss, symmetrised: the online prediction of each view against the target's projection of the other."""
    n = out.shape[0] // 2
    p = F.normalize(extras.predictor(out.float()), dim=1)
    with torch.no_grad():
        t = F.normalize(apply(extras.target).float(), dim=1).roll(n, dims=0)  # row i <-> row i + n
    return (2 - 2 * (p * t).sum(dim=1)).mean()


def toy_byol_after_step(model, extras, s, step) -> None:
    """The target follows the online network: ``target = m * target + (1 - m) * online``; buffers copied."""
    with torch.no_grad():
        for online, target in zip(model.parameters(), extras.target.parameters()):
            target.mul_(MOMENTUM).add_(online, alpha=1 - MOMENTUM)
        for online, target in zip(model.buffers(), extras.target.buffers()):
            target.copy_(online)


TOY_BYOL = Objective(
    "toy_byol",
    "a toy BYOL: predictor, EMA target, no negatives",
    views=2,
    labels=False,
    loss=toy_byol_loss,
    build=toy_byol_build,
    after_step=toy_byol_after_step,
)


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(OBJECTIVES, TOY_BYOL.name, TOY_BYOL)  # the registration line


SMALL = dict(
    width=4,
    proj_dim=16,
    batch_size=64,
    epochs=3,
    warmup_epochs=1,
    lr=0.05,
    precision="fp32",
    device="cpu",
    checkpoint_every=1,
    deterministic=True,
    objective="toy_byol",
    method="dropout",
    layer=3,
    seed=4,
    keep_checkpoints="all",
)


def _losses(path):
    return [json.loads(line)["loss"] for line in open(path / "train_metrics.jsonl")]


def test_toy_byol_trains_and_keeps_its_own_state_in_the_checkpoint(tmp_path, digits_npz):
    prov = pretrain(VisionPretrainSettings(**SMALL), digits_npz, tmp_path / "out", tmp_path / "ckpt")
    last = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    extras, model = last["extras"], last["model"]
    assert any(k.startswith("predictor.") for k in extras) and any(k.startswith("target.") for k in extras)
    # the target followed the online weights (EMA) without being them
    w = "stem.0.weight"
    assert not torch.equal(extras["target." + w], model[w])
    assert len(last["optimizer"]["param_groups"][0]["params"]) == len(model) - _buffers(model) + 4  # + predictor
    losses = _losses(tmp_path / "out")
    assert len(losses) == 3 and all(0 <= v <= 4 for v in losses) and prov["final_loss"] == losses[-1]
    saved = torch.load(tmp_path / "out" / "model.pt", weights_only=True)
    assert saved["objective"] == "toy_byol" and saved["meta"]["proj_dim"] == 16


def _buffers(state: dict) -> int:
    return sum(1 for k in state if k.endswith(("running_mean", "running_var", "num_batches_tracked")))


def test_toy_byol_resumes_exactly_through_its_ema_target(tmp_path, digits_npz, monkeypatch):
    """Killed after its checkpoint of epoch 2, the run resumes to the weights (online, predictor and target) and
    losses of an uninterrupted run: the method's state is restored with the model's."""
    pretrain(VisionPretrainSettings(**SMALL), digits_npz, tmp_path / "ref", tmp_path / "ref_ckpt")
    with killed_after_checkpoint(monkeypatch, at=2):
        pretrain(VisionPretrainSettings(**SMALL), digits_npz, tmp_path / "run", tmp_path / "ckpt")
    prov = pretrain(VisionPretrainSettings(**SMALL), digits_npz, tmp_path / "run", tmp_path / "ckpt")

    assert _losses(tmp_path / "run") == _losses(tmp_path / "ref")
    a = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "ref_ckpt" / "last.pt", weights_only=True)
    for part in ("model", "extras"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in b[part]), part
    first, second = prov["segments"]
    assert first["to"] == 2 == second["from"] and second["to"] == 3
