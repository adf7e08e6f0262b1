"""BYOL (Grill et al. 2020): an online network with a predictor regresses a momentum (EMA) target's projection
of the other view; no negatives. solo-learn's CIFAR recipe: ``scripts/pretrain/cifar/byol.yaml`` (the values in
:data:`deepaug.domains.vision.recipes.SSL_RECIPES`); modules ``solo/methods/byol.py`` at vturrisi/solo-learn@9187ea39.

Deep Augmentation: the op acts on the online network; on the target too only with ``target_augment`` (default
False: the target is the slow teacher whose projections are the regression targets; it gets no gradient, so the
op's stop-gradient means nothing there, and an op on it only makes the targets noisier. solo-learn's momentum
network sees the same augmented images as the online one, but image augmentations are the views themselves,
while the op is a perturbation of the trained network's layer.)
"""

from __future__ import annotations

import torch
from torch import nn

from deepaug.core.losses import byol_loss
from deepaug.core.objectives import Objective
from deepaug.core.ssl.parts import autocast, cosine_tau, ema_update, mlp, momentum_target


class ByolParts(nn.Module):
    """The predictor (trained) and the momentum target (a copy of the model with its head: momentum backbone and
    momentum projector, solo/methods/byol.py:58-64; no gradients)."""

    def __init__(self, model: nn.Module, s) -> None:
        super().__init__()
        # Linear -> BN -> ReLU -> Linear(proj_dim) (solo/methods/byol.py:67-72)
        self.predictor = mlp([s.proj_dim, s.pred_hidden_dim, s.proj_dim])
        self.target = momentum_target(model, with_op=bool(s.target_augment))
        self.total_steps = 1  # set by the trainer: the momentum schedule's length


def loss(out, labels, s, extras, apply) -> torch.Tensor:
    """Symmetrised: each view's prediction against the target's projection of the other view, summed over the two
    directions (solo/methods/byol.py:186-190: ``neg_cos_sim += byol_loss_func(P[v2], Z_momentum[v1])``)."""
    n = out.shape[0] // 2
    with autocast(out.device, s.precision):
        p = extras.predictor(out)
    with torch.no_grad(), autocast(out.device, s.precision):
        z = apply(extras.target)
    return 2 * byol_loss(p, z.roll(n, dims=0))  # the mean of the two halves' losses, times two: their sum


def after_step(model, extras, s, step: int) -> None:
    """The target follows the online network with the cosine momentum (solo-learn: ``on_train_batch_end``)."""
    ema_update(model, extras.target, cosine_tau(step, extras.total_steps, s.tau_base, s.tau_final))


METHOD = Objective(
    "byol",
    "BYOL: predictor, momentum target with a cosine schedule, no negatives",
    views=2,
    labels=False,
    loss=loss,
    build=ByolParts,
    after_step=after_step,
    # Linear -> BN -> ReLU -> Linear (solo/methods/byol.py:50-55)
    head=lambda features, hidden, out: mlp([features, hidden, out]),
    settings=("pred_hidden_dim", "tau_base", "tau_final", "target_augment"),
)
