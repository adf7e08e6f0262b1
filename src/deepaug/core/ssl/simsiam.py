"""SimSiam (Chen & He 2021): a predictor on one view's projection regresses the other view's projection under a
stop-gradient; no momentum encoder, no negatives. solo-learn's CIFAR recipe: ``scripts/pretrain/cifar/simsiam.yaml``
(values in :data:`deepaug.domains.vision.recipes.SSL_RECIPES`); modules ``solo/methods/simsiam.py`` at
vturrisi/solo-learn@9187ea39.

Deep Augmentation: both views pass once through the one network, as in SimCLR, so the op acts on the branch that
gives the (stop-gradient) targets as well: there is no separate target network to leave it out of.
"""

from __future__ import annotations

import torch
from torch import nn

from deepaug.core.losses import negative_cosine
from deepaug.core.objectives import Objective
from deepaug.core.ssl.parts import autocast, mlp


class SimSiamParts(nn.Module):
    def __init__(self, model: nn.Module, s) -> None:
        super().__init__()
        # Linear(no bias) -> BN -> ReLU -> Linear (solo/methods/simsiam.py:61-66)
        self.predictor = mlp([s.proj_dim, s.pred_hidden_dim, s.proj_dim], bias=False)


def loss(out, labels, s, extras, apply) -> torch.Tensor:
    """``D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2`` (Chen & He 2021, Eq. 3; solo/methods/simsiam.py:137)."""
    n = out.shape[0] // 2
    with autocast(out.device, s.precision):
        p = extras.predictor(out)
    return negative_cosine(p, out.roll(n, dims=0))  # negative_cosine detaches its target


METHOD = Objective(
    "simsiam",
    "SimSiam: predictor and stop-gradient, no momentum encoder, no negatives",
    views=2,
    labels=False,
    loss=loss,
    build=SimSiamParts,
    # Linear(no bias) -> BN -> ReLU -> Linear(no bias) -> BN -> ReLU -> Linear -> BN(affine=False)
    # (solo/methods/simsiam.py:48-57)
    head=lambda features, hidden, out: mlp([features, hidden, hidden, out], bias=False, last_bn=True),
    settings=("pred_hidden_dim",),
)
