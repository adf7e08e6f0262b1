"""Representation analyses: CKA between layers (co-adaptation), alignment and uniformity, and the
layer-selection rule.

* Linear CKA (Kornblith et al. 2019) and RBF-kernel CKA with sigma = sqrt(median squared pairwise
  distance) of each representation, both from centred Gram matrices (HSIC).
* Alignment and uniformity (Wang & Isola 2020) of L2-normalised embeddings, squared distances:
  align = E ||f(x) - f(y)||^2 over positive pairs; uniform = log E exp(-2 ||f(x) - f(y)||^2) over all
  distinct pairs.
* Layer selection: recommend the layer whose representation is most similar to its neighbours in
  the *baseline* (mean linear CKA with layers k-1 and k+1, the most co-adapted layer) among the
  candidate layers; Deep Augmentation there breaks the strongest co-adaptation.
"""

from __future__ import annotations

import numpy as np
import torch


def _gram_linear(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(x.shape[0], -1).double()
    return x @ x.T


def _gram_rbf(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(x.shape[0], -1).double()
    sq = torch.cdist(x, x).pow(2)
    off = sq[~torch.eye(sq.shape[0], dtype=torch.bool, device=sq.device)]
    sigma2 = off.median().clamp_min(1e-12)
    return torch.exp(-sq / (2 * sigma2))


def _center(k: torch.Tensor) -> torch.Tensor:
    n = k.shape[0]
    h = torch.eye(n, dtype=k.dtype, device=k.device) - 1.0 / n
    return h @ k @ h


def cka_from_grams(k: torch.Tensor, l: torch.Tensor) -> float:
    kc, lc = _center(k), _center(l)
    hsic = (kc * lc).sum()
    norm = torch.sqrt((kc * kc).sum() * (lc * lc).sum())
    return float(hsic / norm) if norm > 0 else float("nan")


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two representations of the same n examples (rows)."""
    return cka_from_grams(_gram_linear(x), _gram_linear(y))


def rbf_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """RBF-kernel CKA, sigma^2 = median squared pairwise distance of each representation."""
    return cka_from_grams(_gram_rbf(x), _gram_rbf(y))


def cka_matrix(features: list[torch.Tensor], kind: str = "linear") -> np.ndarray:
    """Layer-by-layer similarity matrix of a list of per-layer representations."""
    gram = {"linear": _gram_linear, "rbf": _gram_rbf}[kind]
    grams = [gram(f) for f in features]
    n = len(grams)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = cka_from_grams(grams[i], grams[j])
    return out


def alignment(a: torch.Tensor, b: torch.Tensor) -> float:
    """E ||f(x) - f(y)||^2 over positive pairs (rows of a and b), on L2-normalised embeddings."""
    a, b = torch.nn.functional.normalize(a.double(), dim=1), torch.nn.functional.normalize(b.double(), dim=1)
    return float((a - b).pow(2).sum(dim=1).mean())


def uniformity(x: torch.Tensor, t: float = 2.0, squared: bool = True) -> float:
    """log E exp(-t ||f(x) - f(y)||^2) over all distinct pairs, on L2-normalised embeddings (Wang & Isola 2020,
    ``uniform_loss``). ``squared=False``: the distance itself, not its square, as the author's SentEval fork
    computes it (bruel-gabrielsson/SimCSE ``SentEval/senteval/sts.py`` L167-169:
    ``torch.pdist(x, p=2).mul(-2).exp().mean().log()``)."""
    x = torch.nn.functional.normalize(x.double(), dim=1)
    dist = torch.pdist(x)
    return float(torch.log(torch.exp(-t * (dist.pow(2) if squared else dist)).mean()))
