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
