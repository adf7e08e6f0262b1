"""Contrastive losses as plain functions, and registered by name (:data:`LOSSES`).

Every loss takes ``z = cat([view1, view2])`` (row i of view 1 and row i of view 2 are a positive pair)
and a temperature. A domain's trainer names the loss in its settings (``train.loss``, its choices stated
once beside the trainer, e.g. ``deepaug.domains.vision.train.LOSSES``) and gets it with :func:`contrastive_loss`.
"""

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


def supcon_loss(
    z: torch.Tensor, temperature: float = 0.5, base_temperature: float = SUPCON_BASE_TEMPERATURE
) -> torch.Tensor:
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


def _cross_view_logits(z: torch.Tensor, temperature: float, loss: str) -> torch.Tensor:
    """Cosine similarities / temperature of view 1's rows (anchors) to view 2's, ``z = cat([view1, view2])``."""
    if z.shape[0] % 2:
        raise ValueError(f"{loss} expects two concatenated views (an even number of rows), got {z.shape[0]}")
    z1, z2 = F.normalize(z.float(), dim=1).chunk(2)
    return z1 @ z2.T / temperature


def symmetric_infonce(z: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """PyGCL's graph-level InfoNCE over ``z = cat([g1, g2])``: the mean of the two directions.

    ``DualBranchContrast(loss=InfoNCE(tau), mode="G2G")`` (PyGCL ``GCL/models/contrast_model.py``
    L53-56, L72) averages InfoNCE with anchor ``g1`` against samples ``g2`` and the reverse; each is
    cross-entropy over cosine similarities / tau with the other view's graph as the positive and the
    other view's other graphs as negatives (``GCL/losses/infonce.py`` L37-48; ``intraview_negs`` is
    off). One direction is :func:`simcse_loss`; this computes the similarities once, as one matrix
    product of the normalised vectors (``_similarity``, L8-11), whose transpose gives the other
    direction (``simcse_loss``'s broadcast cosine costs ~10x more on a CPU).
    """
    logits = _cross_view_logits(z, temperature, "symmetric_infonce")
    target = torch.arange(logits.shape[0], device=z.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def graphcl_loss(z: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """GraphCL's ``loss_cal`` (Shen-Lab/GraphCL ``unsupervised_TU/gsimclr.py`` L122-135): anchors are view
    1's graphs, ``-log(exp(s_ii / T) / sum_{j != i} exp(s_ij / T))`` with ``s`` the cosine similarity to
    view 2's graphs: the positive is left out of the denominator."""
    logits = _cross_view_logits(z, temperature, "graphcl_loss")
    pos = logits.diagonal()
    neg = logits.masked_fill(torch.eye(logits.shape[0], dtype=torch.bool, device=z.device), float("-inf"))
    return (torch.logsumexp(neg, dim=1) - pos).mean()


# ---------------------------------------------------------------------------- non-contrastive losses
# The losses of the SSL methods beyond SimCLR (deepaug.core.ssl), each of two views' (N, D) outputs. They follow
# the formulas of the methods' papers; where solo-learn (vturrisi/solo-learn@9187ea39, solo/losses/) scales or
# symmetrises them, the citation says how. No temperature: they are not registered in LOSSES.


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``-mean_i cos(p_i, sg(z_i))``: SimSiam's D (Chen & He 2021, Eq. 1, with the stop-gradient of Eq. 3 on
    ``z``; solo/losses/simsiam.py:24-43). BYOL's loss is ``2 + 2 * negative_cosine`` (Grill et al. 2020, Eq. 2:
    ``||p/|p| - z/|z|||^2 = 2 - 2 cos``; solo/losses/byol.py:24-42); the target ``z`` gets no gradient."""
    return -F.cosine_similarity(p.float(), z.detach().float(), dim=-1).mean()


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's ``||p/|p| - sg(z)/|z|||^2 = 2 - 2 cos(p, z)``, averaged over the rows (Grill et al. 2020, Eq. 2)."""
    return 2 + 2 * negative_cosine(p, z)


def vicreg_loss(
    z1: torch.Tensor, z2: torch.Tensor, sim_weight: float = 25.0, var_weight: float = 25.0, cov_weight: float = 1.0
) -> torch.Tensor:
    """VICReg (Bardes, Ponce & LeCun 2022, Eq. 1-6; solo/losses/vicreg.py:6-87): ``sim_weight`` x the mean squared
    distance of the pairs + ``var_weight`` x the hinge ``mean_j max(0, 1 - sqrt(Var(z_j) + 1e-4))`` of each view +
    ``cov_weight`` x the squared off-diagonal covariances of each view over the dimension ``D``."""
    z1, z2 = z1.float(), z2.float()
    n, d = z1.shape
    invariance = F.mse_loss(z1, z2)
    variance = cov = 0.0
    off = ~torch.eye(d, dtype=torch.bool, device=z1.device)
    for z in (z1, z2):
        variance = variance + F.relu(1 - torch.sqrt(z.var(dim=0) + 1e-4)).mean()
        centred = z - z.mean(dim=0)
        c = centred.T @ centred / (n - 1)
        cov = cov + c[off].pow(2).sum() / d
    return sim_weight * invariance + var_weight * variance + cov_weight * cov


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 0.0051, scale: float = 0.1) -> torch.Tensor:
    """Barlow Twins (Zbontar et al. 2021, Eq. 1-2): ``C`` the cross-correlation of the two views' outputs, each
    standardised over the batch; ``sum_i (1 - C_ii)^2 + lambd sum_{i != j} C_ij^2``, times ``scale``
    (solo-learn's ``scale_loss``, solo/losses/barlow.py:25-60: its BatchNorm1d(affine=False) standardises with
    the biased variance and eps 1e-5, as here)."""
    z1, z2 = z1.float(), z2.float()
    n, d = z1.shape
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + 1e-5)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + 1e-5)
    c = a.T @ b / n
    on = (1 - c.diagonal()).pow(2).sum()
    off = c.pow(2).sum() - c.diagonal().pow(2).sum()
    return scale * (on + lambd * off)


# name -> (loss, what it is): the one list of the contrastive losses a trainer can be given by name.
LOSSES = {
    "supcon": (supcon_loss, "SupContrast's NT-Xent x temperature / 0.07"),
    "nt_xent": (nt_xent, "SimCLR's NT-Xent"),
    "simcse": (simcse_loss, "SimCSE's InfoNCE, view 1 as anchors"),
    "infonce": (symmetric_infonce, "PyGCL's symmetric InfoNCE"),
    "graphcl": (graphcl_loss, "GraphCL's loss_cal, the positive left out of the denominator"),
}


def check_loss(name: str, accepted: tuple[str, ...]) -> None:
    """ValueError naming the accepted losses (a trainer's ``train.loss`` choices) when ``name`` is not one."""
    if name not in accepted:
        listed = "; ".join(f"{n}: {LOSSES[n][1]}" for n in accepted)
        raise ValueError(f"loss must be one of {accepted} ({listed}), got {name!r}")


def contrastive_loss(name: str, z: torch.Tensor, temperature: float) -> torch.Tensor:
    """The contrastive loss registered as ``name`` (:data:`LOSSES`) of ``z = cat([view1, view2])``."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {name!r}")
    return LOSSES[name][0](z, temperature)
