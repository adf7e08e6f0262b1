"""Barlow Twins (Zbontar et al. 2021): the cross-correlation of the two views' standardised projections pushed to
the identity; no predictor, no target, no negatives. solo-learn's CIFAR recipe: ``scripts/pretrain/cifar/barlow.yaml``
(values in :data:`deepaug.domains.vision.recipes.SSL_RECIPES`); ``solo/methods/barlow_twins.py`` at
vturrisi/solo-learn@9187ea39. Deep Augmentation acts on both views (one network, one pass, as in SimCLR)."""

from __future__ import annotations

import torch

from deepaug.core.losses import barlow_twins_loss
from deepaug.core.objectives import Objective
from deepaug.core.ssl.parts import mlp


def loss(out, labels, s, extras, apply) -> torch.Tensor:
    z1, z2 = out.chunk(2)
    return barlow_twins_loss(z1, z2, s.barlow_lambda, s.barlow_scale)


METHOD = Objective(
    "barlow_twins",
    "Barlow Twins: the cross-correlation of the views pushed to the identity",
    views=2,
    labels=False,
    loss=loss,
    # Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear (solo/methods/barlow_twins.py:51-59)
    head=lambda features, hidden, out: mlp([features, hidden, hidden, out]),
    settings=("barlow_lambda", "barlow_scale"),
)
