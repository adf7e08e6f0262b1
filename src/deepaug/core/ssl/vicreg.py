"""VICReg (Bardes, Ponce & LeCun 2022): invariance, variance and covariance terms on the two views' projections;
no predictor, no target, no negatives. solo-learn's CIFAR recipe: ``scripts/pretrain/cifar/vicreg.yaml`` (values in
:data:`deepaug.domains.vision.recipes.SSL_RECIPES`); ``solo/methods/vicreg.py`` at vturrisi/solo-learn@9187ea39.
Deep Augmentation acts on both views (one network, one pass, as in SimCLR)."""

from __future__ import annotations

import torch

from deepaug.core.losses import vicreg_loss
from deepaug.core.objectives import Objective
from deepaug.core.ssl.parts import mlp


def loss(out, labels, s, extras, apply) -> torch.Tensor:
    z1, z2 = out.chunk(2)
    return vicreg_loss(z1, z2, s.vicreg_sim_weight, s.vicreg_var_weight, s.vicreg_cov_weight)


METHOD = Objective(
    "vicreg",
    "VICReg: variance, invariance and covariance terms",
    views=2,
    labels=False,
    loss=loss,
    # Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear (solo/methods/vicreg.py:53-61)
    head=lambda features, hidden, out: mlp([features, hidden, hidden, out]),
    settings=("vicreg_sim_weight", "vicreg_var_weight", "vicreg_cov_weight"),
)
