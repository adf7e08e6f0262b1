"""Contrastive losses as plain functions."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent over ``z = cat([z1, z2])`` (2N rows; row i and i+N are positives).

    Each row's logits are the cosine similarities to the other 2N-1 rows divided by the
    temperature; the loss is the mean cross-entropy of picking the positive.
    """
    if z.shape[0] % 2:
        raise ValueError(f"nt_xent expects two concatenated views (an even number of rows), got {z.shape[0]}")
    n = z.shape[0] // 2
    z = F.normalize(z.float(), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.arange(2 * n, device=z.device).roll(n)
    return F.cross_entropy(logits, targets)


# SupContrast's SupConLoss(temperature=0.07, contrast_mode='all', base_temperature=0.07) (HobbitLong/
# SupContrast losses.py L14-15); main_supcon.py L181 sets only the temperature (--temp), so the base stays 0.07.
SUPCON_BASE_TEMPERATURE = 0.07
VISION_LOSSES = ("supcon", "nt_xent")


def supcon_loss(z: torch.Tensor, temperature: float = 0.5,
                base_temperature: float = SUPCON_BASE_TEMPERATURE) -> torch.Tensor:
    """SupContrast's ``SupConLoss`` in its SimCLR case (no labels): NT-Xent times
    ``temperature / base_temperature``.

    ``SupConLoss`` (HobbitLong/SupContrast ``losses.py`` L103) multiplies the mean log-likelihood of
    the positive by ``temperature / base_temperature``; with one positive per anchor (the SimCLR case,
    ``mask = eye``, L47-48) the rest is exactly NT-Xent over ``cat([view1, view2])`` (L58: its
    contrast features are the views concatenated in this order). At the SimCLR recipe's temperature
    0.5 (README "(3) SimCLR": ``--temp 0.5``) the loss, and so the SGD step at a given lr, is
    0.5 / 0.07 = 7.14 times plain NT-Xent's. Features are L2-normalised here, as SupContrast's model
    does before the loss (``networks/resnet_big.py`` L185).
    """
    return nt_xent(z, temperature) * (temperature / base_temperature)


def contrastive_loss(name: str, z: torch.Tensor, temperature: float) -> torch.Tensor:
    """The vision trainer's contrastive loss by name: ``supcon`` (SupContrast's scale) or ``nt_xent``."""
    if name == "supcon":
        return supcon_loss(z, temperature)
    if name == "nt_xent":
        return nt_xent(z, temperature)
    raise ValueError(f"loss must be one of {VISION_LOSSES}, got {name!r}")


def simcse_loss(z: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """Unsupervised SimCSE InfoNCE over ``z = cat([z1, z2])``.

    Anchor ``z1[i]``, positive ``z2[i]``, negatives ``z2[j != i]`` (cosine similarity / temperature),
    as in the SimCSE reference implementation.
    """
    if z.shape[0] % 2:
        raise ValueError(f"simcse_loss expects two concatenated views (an even number of rows), got {z.shape[0]}")
    z1, z2 = z.float().chunk(2)
    sim = F.cosine_similarity(z1.unsqueeze(1), z2.unsqueeze(0), dim=-1) / temperature
    return F.cross_entropy(sim, torch.arange(z1.shape[0], device=z.device))
