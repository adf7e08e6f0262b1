"""The Deep Augmentation operation: transform the activations of one layer, row by row.

A batch here is the concatenation of the views of the same examples (``cat([view1, view2])``), one
row per view of one example. In training mode each row is selected independently with probability
``p`` (or by the one-/two-sided rule) and the selected rows are transformed:

* ``dropout``: inverted dropout at ``rate`` (kept units scaled by ``1 / (1 - rate)``);
* ``pca``: the chosen principal component of the current batch's activations at this layer is
  projected out of the selected rows (``torch.pca_lowrank`` with centring).

With ``stop_gradient=True`` the transformed rows are detached: the layers at or below the targeted
one receive no gradient through them, the layers above still do, and the untransformed rows
backpropagate as usual. In eval mode (or when the hooked module is in eval mode) the op is the
identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

KINDS = ("dropout", "pca")
SELECTIONS = ("bernoulli", "one_sided", "two_sided")
PCA_OVER = ("rows", "tokens")


@dataclass
class HookHandle:
    """Returned by :meth:`DeepAugment.attach`; ``remove()`` detaches the op from the module."""

    _handle: Any
    module: nn.Module

    def remove(self) -> None:
        self._handle.remove()


class DeepAugment(nn.Module):
    """Dropout or PCA on a batch of activations, applied to randomly selected rows.

    Args:
        kind: ``"dropout"`` or ``"pca"``.
        rate: dropout rate (fraction of units zeroed) for ``kind="dropout"``.
        p: probability that a row is transformed (``selection="bernoulli"``).
        stop_gradient: detach the transformed rows.
        pca_component: which principal component to remove, 1-based (1 = top component);
            ``-1`` means the last of the ``pca_rank`` computed ones (the paper's "6th component").
        pca_rank: how many components ``torch.pca_lowrank`` computes (``q``).
        pca_over: ``"rows"`` flattens each row to one vector (PCA across the batch's examples);
            ``"tokens"`` treats the last dimension as features and every other position
            (e.g. each token of each sentence) as a sample.
        selection: ``"bernoulli"`` (each row with probability ``p``), ``"one_sided"`` (every row of
            the first view) or ``"two_sided"`` (every row).
        n_views: how many views are concatenated in the batch (used by ``one_sided``).
        seed: seed of the op's own random generator (row selection and dropout masks), so runs
            are reproducible and independent of the global RNG.
    """

    def __init__(
        self,
        kind: str = "dropout",
        rate: float = 0.5,
        p: float = 0.5,
        stop_gradient: bool = True,
        pca_component: int = 1,
        pca_rank: int = 6,
        pca_over: str = "rows",
        selection: str = "bernoulli",
        n_views: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"DeepAugment kind must be one of {KINDS}, got {kind!r}")
        if selection not in SELECTIONS:
            raise ValueError(f"DeepAugment selection must be one of {SELECTIONS}, got {selection!r}")
        if pca_over not in PCA_OVER:
            raise ValueError(f"DeepAugment pca_over must be one of {PCA_OVER}, got {pca_over!r}")
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"DeepAugment rate must be in [0, 1), got {rate}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"DeepAugment p must be in [0, 1], got {p}")
        if pca_rank < 1:
            raise ValueError(f"DeepAugment pca_rank must be >= 1, got {pca_rank}")
        if pca_component == 0 or pca_component > pca_rank or pca_component < -1:
            raise ValueError(
                f"DeepAugment pca_component must be in 1..{pca_rank} or -1 (last computed), "
                f"got {pca_component}"
            )
        if n_views < 1:
            raise ValueError(f"DeepAugment n_views must be >= 1, got {n_views}")
        self.kind = kind
        self.rate = float(rate)
        self.p = float(p)
        self.stop_gradient = bool(stop_gradient)
        self.pca_component = int(pca_component)
        self.pca_rank = int(pca_rank)
        self.pca_over = pca_over
        self.selection = selection
        self.n_views = int(n_views)
        self.seed = int(seed)
        self._generators: dict[str, torch.Generator] = {}
        self.last_mask: torch.Tensor | None = None  # rows transformed by the last call

    def extra_repr(self) -> str:
        detail = f"rate={self.rate}" if self.kind == "dropout" else (
            f"pca_component={self.pca_component}, pca_rank={self.pca_rank}, pca_over={self.pca_over!r}"
        )
        return (
            f"kind={self.kind!r}, {detail}, p={self.p}, selection={self.selection!r}, "
            f"stop_gradient={self.stop_gradient}"
        )

    # ------------------------------------------------------------------ random state
    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            g = torch.Generator(device=device)
            g.manual_seed(self.seed)
            self._generators[key] = g
        return self._generators[key]

    def reseed(self, seed: int) -> None:
        """Restart the op's random stream (e.g. once per epoch, for exact resumption)."""
        self.seed = int(seed)
        for g in self._generators.values():
            g.manual_seed(self.seed)

    def rng_state(self) -> dict[str, torch.Tensor]:
        return {k: g.get_state() for k, g in self._generators.items()}

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        for key, s in state.items():
            self._generator(torch.device(key)).set_state(s)

    # ------------------------------------------------------------------ the op
    def select_rows(self, n_rows: int, device: torch.device) -> torch.Tensor:
        """Boolean mask of the rows to transform."""
        if self.selection == "two_sided":
            return torch.ones(n_rows, dtype=torch.bool, device=device)
        if self.selection == "one_sided":
            if n_rows % self.n_views:
                raise ValueError(
                    f"one-sided selection needs a batch of {self.n_views} concatenated views, "
                    f"got {n_rows} rows"
                )
            mask = torch.zeros(n_rows, dtype=torch.bool, device=device)
            mask[: n_rows // self.n_views] = True
            return mask
        u = torch.rand(n_rows, generator=self._generator(device), device=device)
        return u < self.p

    def transform(self, x: torch.Tensor, all_rows: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the transform to every row of ``x``.

        For PCA the components are computed from ``all_rows`` (the whole batch) when given.
        """
        if self.kind == "dropout":
            if self.rate == 0.0:
                return x
            keep = torch.rand(x.shape, generator=self._generator(x.device), device=x.device)
            keep = keep >= self.rate
            return x * keep.to(x.dtype) / (1.0 - self.rate)
        return self._remove_component(x, x if all_rows is None else all_rows)

    def _remove_component(self, x: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        if self.pca_over == "rows":
            feats = batch.reshape(batch.shape[0], -1)
            target = x.reshape(x.shape[0], -1)
        else:
            feats = batch.reshape(-1, batch.shape[-1])
            target = x.reshape(-1, x.shape[-1])
        with torch.no_grad():
            f = feats.float()
            q = min(self.pca_rank, f.shape[0], f.shape[1])
            k = q - 1 if self.pca_component == -1 else self.pca_component - 1
            if k >= q:
                raise ValueError(
                    f"PCA component {self.pca_component} requested but only {q} can be computed "
                    f"from activations of shape {tuple(feats.shape)}"
                )
            mean = f.mean(dim=0, keepdim=True)
            _, _, v = torch.pca_lowrank(f, q=q, center=True)
            direction = v[:, k : k + 1]  # (features, 1), unit norm
        # The basis is treated as a constant: gradients (without stop-gradient) flow through the
        # fixed linear projection, never through the eigen-decomposition.
        t = target.float()
        coef = (t - mean) @ direction
        out = t - coef @ direction.T
        return out.to(x.dtype).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            self.last_mask = None
            return x
        return self.apply_to_rows(x)

    def apply_to_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Select rows, transform them, detach them if ``stop_gradient``; untouched rows pass.

        Every row is transformed and the selected ones are picked with ``torch.where``: no
        host-device synchronisation, and unselected rows keep their exact values and gradients.
        """
        mask = self.select_rows(x.shape[0], x.device)
        self.last_mask = mask
        transformed = self.transform(x, all_rows=x)
        if self.stop_gradient:
            transformed = transformed.detach()
        row_mask = mask.view(-1, *([1] * (x.dim() - 1)))
        return torch.where(row_mask, transformed, x)

    # ------------------------------------------------------------------ hooks
    def attach(self, module: nn.Module) -> HookHandle:
        """Transform ``module``'s output through a forward hook.

        The output may be a tensor or a tuple/list whose first element is the hidden states
        (as transformer blocks return). The op is active only while both this op and the hooked
        module are in training mode.
        """

        def hook(mod: nn.Module, args: Any, output: Any) -> Any:
            if not (self.training and mod.training):
                return None
            if isinstance(output, torch.Tensor):
                return self.apply_to_rows(output)
            if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
                return type(output)([self.apply_to_rows(output[0]), *output[1:]])
            raise TypeError(
                f"DeepAugment can only hook modules returning a tensor or a tuple whose first "
                f"element is a tensor; {type(mod).__name__} returned {type(output).__name__}"
            )

        return HookHandle(module.register_forward_hook(hook), module)
