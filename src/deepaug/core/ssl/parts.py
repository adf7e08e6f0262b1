"""What several SSL methods share: the MLPs of their projectors and predictors (solo-learn's), an EMA target
network and its cosine momentum schedule, and the forward of an extra module under the run's autocast."""

from __future__ import annotations

import contextlib
import copy
import math

import torch
from torch import nn


def mlp(sizes: list[int], bias: bool = True, last_bn: bool = False, last_bias: bool = True) -> nn.Sequential:
    """Linear -> BatchNorm1d -> ReLU between each pair of ``sizes``, a plain Linear last (``last_bn``: then a
    BatchNorm1d without affine parameters, SimSiam's projector)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 2):
        layers += [nn.Linear(sizes[i], sizes[i + 1], bias=bias), nn.BatchNorm1d(sizes[i + 1]), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=last_bias))
    if last_bn:
        layers.append(nn.BatchNorm1d(sizes[-1], affine=False))
    return nn.Sequential(*layers)


def autocast(device: torch.device, precision: str):
    """The run's autocast (the loss hooks run outside the loop's), for the forward of a method's own modules."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def momentum_target(model: nn.Module, with_op: bool) -> nn.Module:
    """A copy of ``model`` that the optimiser never trains (no gradients). The copy keeps the model's forward
    hooks, so the Deep Augmentation op runs on it too, unless ``with_op`` is False (its hooks are removed)."""
    target = copy.deepcopy(model).requires_grad_(False)
    if not with_op:
        for module in target.modules():
            module._forward_hooks.clear()
    return target


def cosine_tau(step: int, total: int, base: float, final: float) -> float:
    """BYOL's momentum schedule ``final - (final - base) * (cos(pi k / K) + 1) / 2`` (Grill et al. 2020, §3.2;
    solo-learn's ``MomentumUpdater.update_tau``, solo/utils/momentum.py:76-88)."""
    return final - (final - base) * (math.cos(math.pi * step / max(total, 1)) + 1) / 2


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """``target = tau * target + (1 - tau) * online`` over the parameters; the target's batch-norm statistics
    are its own (solo-learn's ``MomentumUpdater.update`` moves parameters only, momentum.py:64-74)."""
    for o, t in zip(online.parameters(), target.parameters(), strict=True):
        t.mul_(tau).add_(o.detach(), alpha=1 - tau)
