"""The Deep Augmentation operation: transform the activations of one layer, row by row.

A batch here is the concatenation of the views of the same examples (``cat([view1, view2])``), one
row per view of one example. In training mode each row is selected independently with probability
``p`` (``one_sided``: only the rows of the first view, each with probability ``p``; ``two_sided``:
every row) and the selected rows are transformed:

* ``dropout``: inverted dropout at ``rate`` (kept units scaled by ``1 / (1 - rate)``);
* ``pca``: the chosen principal component of the current batch's activations at this layer is
  projected out of the selected rows (``torch.pca_lowrank`` with centring). ``pca_grad="through"``
  (the authors' code) backpropagates through the batch mean and the decomposition;
  ``pca_grad="constant"`` treats both as constants, so the gradient is the fixed projection's.

With ``stop_gradient=True`` the transformed rows are detached: the layers at or below the targeted
one receive no gradient through them, the layers above still do, and the untransformed rows
backpropagate as usual. In eval mode (or when the hooked module is in eval mode) the op is the
identity.

``detach_p`` (with ``stop_gradient``; the author's ``higher_transform_detach_p``, bruel-gabrielsson/SimCSE
``simcse/models.py`` L237-240, whose mask starts all-False and is and-ed, so that it never detaches: the
README's first deviation): each transformed row is detached with probability ``detach_p``, the others
pass their gradient through the transform as without stop-gradient. ``1`` (the default) detaches every
transformed row and draws nothing; ``0`` detaches none, draws nothing and gives exactly the numbers of
``stop_gradient=False``; in between, one uniform per row (per group, with :meth:`DeepAugment.set_groups`)
is drawn *after* the call's other draws, so the rows and dropout masks are those of ``detach_p=1``. A
``detach_p`` below 1 without ``stop_gradient`` is refused (there is nothing to detach). With PCA and
``pca_grad="through"`` the basis is differentiable as soon as a transformed row may keep its gradient, so
a detached row (like every row without stop-gradient) can still get gradient through the batch mean and
basis that the other rows' outputs used; with ``pca_grad="constant"`` its gradient is exactly zero.

Grouped rows (graphs): at a node-level layer of a graph network a "row" (one view of one graph) is a
group of activation rows (its nodes). :meth:`DeepAugment.set_groups` gives the op the group index of
every activation row (PyTorch Geometric's ``batch`` vector, node -> graph) and the number of groups;
until it is reset, selection draws one decision per group (one uniform per graph, in graph order,
from the same stream as ungrouped rows) and every node of a selected graph is transformed, dropout
masks are drawn per node as for any activation, PCA takes nodes as samples (``pca_over="rows"``) or
each graph's mean node vector (``pca_over="graphs"``), and stop-gradient detaches the selected
graphs' nodes. Without groups nothing changes: the random stream and results are those of every
earlier version.

Mixed precision: the PCA basis, the mean and the projection are computed with autocast disabled, in
float32 (float64 stays float64), and the result is cast back to the input's dtype. CUDA autocast has
no rule for ``linalg.qr``/``linalg.svd``, so inside a bf16/fp16 autocast region the matmuls of
``torch.pca_lowrank`` would hand them bf16 and they raise (``"geqrf_cuda" not implemented for
'BFloat16'``); CPU autocast has float32 rules for them, which is why CPU runs never showed it.

torch.compile: the op's randomness (row selection, dropout masks) comes from its own
``torch.Generator``, which Dynamo cannot trace; the draws and the PCA basis run in one function that
Dynamo skips (:meth:`DeepAugment._draw`). A compiled model therefore has one graph break per op call,
stable across steps (no recompilation), and draws exactly the numbers eager mode draws.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from deepaug.core.vocabulary import KINDS, PCA_GRADS, PCA_OVER, SELECTIONS


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
        detach_p: with ``stop_gradient``, the probability that a transformed row is detached (1: every one;
            0: none, the numbers of ``stop_gradient=False``); below 1 it needs ``stop_gradient``.
        pca_component: which principal component to remove, 1-based (1 = top component);
            ``-1`` means the last of the ``pca_rank`` computed ones (the paper's "6th component").
        pca_rank: how many components ``torch.pca_lowrank`` computes (``q``).
        pca_over: ``"rows"`` flattens each row to one vector (PCA across the batch's examples);
            ``"tokens"`` treats the last dimension as features and every other position
            (e.g. each token of each sentence) as a sample; ``"graphs"`` (with
            :meth:`set_groups`): the basis comes from each group's mean row (one sample per graph)
            and is removed from every node of the selected graphs (without groups it is ``"rows"``).
        selection: ``"bernoulli"`` (each row with probability ``p``), ``"one_sided"`` (each row of the
            first view with probability ``p``, never a row of the other views; ``p=1``: every row of
            the first view) or ``"two_sided"`` (every row).
        n_views: how many views are concatenated in the batch (used by ``one_sided``).
        pca_grad: ``"through"`` (the authors' code): gradients flow through the batch mean and
            ``torch.pca_lowrank`` into every row of the batch; ``"constant"``: the mean and the
            direction are constants and the gradient is the projection's, ``w - (w.v) v^T``. Only
            matters without ``stop_gradient`` (with it the transformed rows are detached and nothing
            flows back through the basis either way, so the basis is then computed without autograd).
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
        pca_grad: str = "through",
        detach_p: float = 1.0,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"DeepAugment kind must be one of {KINDS}, got {kind!r}")
        if selection not in SELECTIONS:
            raise ValueError(f"DeepAugment selection must be one of {SELECTIONS}, got {selection!r}")
        if pca_over not in PCA_OVER:
            raise ValueError(f"DeepAugment pca_over must be one of {PCA_OVER}, got {pca_over!r}")
        if pca_grad not in PCA_GRADS:
            raise ValueError(f"DeepAugment pca_grad must be one of {PCA_GRADS}, got {pca_grad!r}")
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"DeepAugment rate must be in [0, 1), got {rate}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"DeepAugment p must be in [0, 1], got {p}")
        if not 0.0 <= detach_p <= 1.0:
            raise ValueError(f"DeepAugment detach_p must be in [0, 1], got {detach_p}")
        if detach_p < 1.0 and not stop_gradient:
            raise ValueError(
                f"DeepAugment detach_p {detach_p} detaches a fraction of the transformed rows, which needs "
                f"stop_gradient=True (without it no row is detached); leave detach_p at 1"
            )
        if pca_rank < 1:
            raise ValueError(f"DeepAugment pca_rank must be >= 1, got {pca_rank}")
        if pca_component == 0 or pca_component > pca_rank or pca_component < -1:
            raise ValueError(
                f"DeepAugment pca_component must be in 1..{pca_rank} or -1 (last computed), got {pca_component}"
            )
        if n_views < 1:
            raise ValueError(f"DeepAugment n_views must be >= 1, got {n_views}")
        self.kind = kind
        self.rate = float(rate)
        self.p = float(p)
        self.stop_gradient = bool(stop_gradient)
        self.detach_p = float(detach_p)
        self.pca_component = int(pca_component)
        self.pca_rank = int(pca_rank)
        self.pca_over = pca_over
        self.pca_grad = pca_grad
        self.selection = selection
        self.n_views = int(n_views)
        self.seed = int(seed)
        self._generators: dict[str, torch.Generator] = {}
        self.last_mask: torch.Tensor | None = None  # rows transformed by the last call
        self.last_detach_mask: torch.Tensor | None = None  # rows detached by the last call (a subset of last_mask)
        self.last_group_mask: torch.Tensor | None = None  # groups (graphs) transformed by the last grouped call
        self._groups: tuple[torch.Tensor, int] | None = None  # (row -> group index, number of groups)

    def extra_repr(self) -> str:
        detail = (
            f"rate={self.rate}"
            if self.kind == "dropout"
            else (
                f"pca_component={self.pca_component}, pca_rank={self.pca_rank}, pca_over={self.pca_over!r}, "
                f"pca_grad={self.pca_grad!r}"
            )
        )
        detach = f", detach_p={self.detach_p}" if self.detach_p < 1.0 else ""
        return (
            f"kind={self.kind!r}, {detail}, p={self.p}, selection={self.selection!r}, "
            f"stop_gradient={self.stop_gradient}{detach}"
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

    # ------------------------------------------------------------------ groups (graphs)
    def set_groups(self, groups: torch.Tensor | None, n_groups: int | None = None) -> None:
        """Treat the activation rows of the following calls as members of groups (nodes of graphs).

        ``groups[i]`` is the group of activation row ``i`` (PyTorch Geometric's ``batch`` vector,
        values ``0 .. n_groups - 1``); ``n_groups`` is the number of groups (``Batch.num_graphs``; read
        from ``groups`` when omitted, which costs a host sync on a GPU). The groups stay in force
        until the next call; ``set_groups(None)`` returns to one row per example. ``one_sided``
        selection then counts views in groups: the first ``n_groups / n_views`` groups are view 1.
        """
        if groups is None:
            self._groups = None
            return
        if not isinstance(groups, torch.Tensor) or groups.dim() != 1 or groups.is_floating_point():
            raise ValueError(
                "DeepAugment.set_groups needs a 1-d integer tensor (row -> group index), "
                f"got {type(groups).__name__} {tuple(getattr(groups, 'shape', ()))}"
            )
        if n_groups is None:
            n_groups = int(groups.max()) + 1 if groups.numel() else 0
        self._groups = (groups, int(n_groups))

    @contextlib.contextmanager
    def grouped(self, groups: torch.Tensor | None, n_groups: int | None = None):
        """``with op.grouped(batch.batch, batch.num_graphs): model(...)``: groups for one forward pass."""
        previous = self._groups
        self.set_groups(groups, n_groups)
        try:
            yield self
        finally:
            self._groups = previous

    # ------------------------------------------------------------------ the op
    def select_rows(self, n_rows: int, device: torch.device) -> torch.Tensor:
        """Boolean mask of the rows to transform.

        ``one_sided`` follows the authors' code (bruel-gabrielsson/SimCSE ``simcse/models.py`` L212-219:
        with ``transform_one_sided`` only view 1 is kept, and each of its rows is transformed when a
        uniform draw is <= ``higher_transform_p``): each row of the first view with probability ``p``,
        no row of the other views. ``p = 1`` draws nothing, so it keeps the random stream (and the
        dropout masks) of the earlier "every row of view 1" rule.
        """
        if self.selection == "two_sided":
            return torch.ones(n_rows, dtype=torch.bool, device=device)
        if self.selection == "one_sided":
            first = self._first_view_rows(n_rows)
            if self.p >= 1.0:
                chosen = torch.ones(first, dtype=torch.bool, device=device)
            else:
                chosen = torch.rand(first, generator=self._generator(device), device=device) < self.p
            return torch.cat([chosen, torch.zeros(n_rows - first, dtype=torch.bool, device=device)])
        u = torch.rand(n_rows, generator=self._generator(device), device=device)
        return u < self.p

    def _first_view_rows(self, n_rows: int) -> int:
        """How many leading rows belong to the first view (``one_sided``)."""
        if n_rows % self.n_views:
            raise ValueError(
                f"one-sided selection needs a batch of {self.n_views} concatenated views, "
                f"got {n_rows} rows (not a multiple of {self.n_views}); use selection 'bernoulli' for "
                f"a batch that is not cat([view1, view2])"
            )
        return n_rows // self.n_views

    def transform(self, x: torch.Tensor, all_rows: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the transform to every row of ``x``.

        For PCA the components are computed from ``all_rows`` (the whole batch) when given.
        """
        if self.kind == "dropout":
            return self._apply_dropout(x, self._dropout_keep(x))
        mean, direction = self._pca_basis(x if all_rows is None else all_rows, self.pca_grad == "through")
        return self._project_out(x, mean, direction)

    def _dropout_keep(self, x: torch.Tensor) -> torch.Tensor | None:
        """Boolean mask of the units kept, from the op's generator (None when ``rate`` is 0)."""
        if self.rate == 0.0:
            return None
        u = torch.rand(x.shape, generator=self._generator(x.device), device=x.device)
        return u >= self.rate

    def _apply_dropout(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        if keep is None:
            return x
        return x * keep.to(x.dtype) / (1.0 - self.rate)

    def _pca_features(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` as a (samples, features) matrix: one row per example (or node), or one per token."""
        return t.reshape(-1, t.shape[-1]) if self.pca_over == "tokens" else t.reshape(t.shape[0], -1)

    def _pca_basis(self, batch: torch.Tensor, differentiable: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch mean (1, features) and the unit direction to remove (features, 1).

        ``differentiable=False``: computed without autograd (constants for the gradient).
        ``differentiable=True``: autograd records the mean and ``torch.pca_lowrank``, so the gradient
        flows through them as in the authors' ``PCA_augment`` (bruel-gabrielsson/SimCSE
        ``simcse/models.py`` L85-129: ``mean = A.mean(dim=0)`` and ``torch.pca_lowrank(A, q=None,
        center=True, niter=2)`` on the live activations, no ``no_grad``/``detach``). Either way with
        autocast off and in at least float32: see the module docstring for why a bf16 autocast region
        must not reach ``torch.pca_lowrank``.
        """
        feats = self._pca_features(batch)
        grad_mode = contextlib.nullcontext() if differentiable else torch.no_grad()
        with grad_mode, _autocast_off(batch.device.type):
            f = feats.to(_compute_dtype(batch.dtype))
            q = min(self.pca_rank, f.shape[0], f.shape[1])
            k = q - 1 if self.pca_component == -1 else self.pca_component - 1
            if k >= q:
                raise ValueError(
                    f"PCA component {self.pca_component} requested but only {q} can be computed "
                    f"from activations of shape {tuple(feats.shape)}"
                )
            mean = f.mean(dim=0, keepdim=True)
            _, _, v = torch.pca_lowrank(f, q=q, center=True)
            return mean, v[:, k : k + 1]

    def _project_out(self, x: torch.Tensor, mean: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """Remove ``direction`` from the centred rows of ``x``.

        With a constant basis (``pca_grad="constant"``) this is a fixed affine map of ``x``; with
        ``pca_grad="through"`` the mean and direction carry their own autograd history and the
        gradient also flows through them (see :meth:`_pca_basis`). The projection runs with autocast
        off in the basis' dtype (a bf16 matmul would leave a residual along the removed direction),
        and the result gets ``x``'s dtype back.
        """
        with _autocast_off(x.device.type):
            t = self._pca_features(x).to(mean.dtype)
            coef = (t - mean) @ direction
            out = t - coef @ direction.T
        return out.to(x.dtype).reshape(x.shape)

    @torch.compiler.disable
    def _draw(self, x: torch.Tensor) -> tuple[torch.Tensor, Any, Any]:
        """Everything random or data-dependent for one call: the row mask, and the dropout keep-mask
        or the PCA basis. Run eagerly even inside ``torch.compile``.

        Dynamo cannot create a ``torch.Generator`` nor pass one to ``torch.rand`` (graph breaks
        gb0363/gb0055, and a guard on the generator dict that forced a recompile); a traced
        ``pca_lowrank`` would also draw its random test matrix from the compiler's RNG instead of
        torch's. Skipping this one function leaves one graph break per call, no guard on the op's
        state, and the same numbers as in eager mode (with ``pca_grad="through"`` the basis it returns
        carries its autograd history out of the skipped frame, so the gradient still reaches it). The
        draw order (rows, then units) is the one of every earlier version, so seeded runs reproduce; the
        rows to detach (:meth:`_detached`) come last. Returns (row mask, keep-mask or basis, detach).

        PCA basis: from the whole batch, except ``one_sided``, where it comes from the first view's
        rows only, as in the authors' code (``simcse/models.py`` L212-216 keep view 1 alone before
        ``PCA_augment`` runs on it, L231).
        """
        if self._groups is not None:
            return self._draw_grouped(x)
        mask = self.select_rows(x.shape[0], x.device)
        self.last_mask = mask
        if self.kind == "dropout":
            drawn = self._dropout_keep(x)
        else:
            rows = x[: self._first_view_rows(x.shape[0])] if self.selection == "one_sided" else x
            drawn = self._pca_basis(rows, self.pca_grad == "through" and not self._detaches_all)
        return mask, drawn, self._detached(mask)

    @property
    def _detaches_all(self) -> bool:
        """Every transformed row is detached (the paper's stop-gradient): nothing flows back through the op."""
        return self.stop_gradient and self.detach_p >= 1.0

    def _detached(
        self, mask: torch.Tensor, index: torch.Tensor | None = None, n_groups: int = 0
    ) -> torch.Tensor | bool:
        """Which transformed rows are detached: ``True`` (all of them) under stop-gradient with ``detach_p``
        1, ``False`` (none) without stop-gradient or with ``detach_p`` 0 (both draw nothing), else a row
        mask: each transformed row (each group's rows together; ``index``: row -> group of ``n_groups``)
        with probability ``detach_p``, one uniform per row (group) drawn after the call's other draws."""
        if self._detaches_all or not self.stop_gradient or self.detach_p <= 0.0:
            self.last_detach_mask = mask if self._detaches_all else torch.zeros_like(mask)
            return self._detaches_all
        n = mask.shape[0] if index is None else n_groups
        chosen = torch.rand(n, generator=self._generator(mask.device), device=mask.device) < self.detach_p
        detach = mask & (chosen if index is None else chosen[index])
        self.last_detach_mask = detach
        return detach

    def _draw_grouped(self, x: torch.Tensor) -> tuple[torch.Tensor, Any, Any]:
        """:meth:`_draw` for grouped rows: one decision per group, expanded to the group's rows.

        The draws come in the ungrouped order (the group decisions, then the dropout units of every
        row). PCA samples: every row (``pca_over`` ``"rows"``/``"tokens"``) or each group's mean row
        (``"graphs"``), restricted to the first view's groups under ``one_sided``.
        """
        index, n_groups = self._groups
        if index.shape[0] != x.shape[0]:
            raise ValueError(
                f"DeepAugment has groups for {index.shape[0]} rows (set_groups) but the activations have "
                f"{x.shape[0]} rows; set the groups of this forward pass (the batch vector of the nodes that "
                f"reach the targeted layer), or set_groups(None) at a layer with one row per example"
            )
        index = index.to(x.device)
        group_mask = self.select_rows(n_groups, x.device)
        mask = group_mask[index]
        self.last_group_mask, self.last_mask = group_mask, mask
        drawn = self._dropout_keep(x) if self.kind == "dropout" else self._grouped_basis(x, index, n_groups)
        return mask, drawn, self._detached(mask, index, n_groups)

    def _grouped_basis(self, x: torch.Tensor, index: torch.Tensor, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The PCA basis of a grouped call (see :meth:`_draw_grouped`)."""
        differentiable = self.pca_grad == "through" and not self._detaches_all
        first = self._first_view_rows(n_groups) if self.selection == "one_sided" else n_groups
        if self.pca_over == "graphs":
            flat = x.reshape(x.shape[0], -1)
            grad_mode = contextlib.nullcontext() if differentiable else torch.no_grad()
            with grad_mode, _autocast_off(x.device.type):
                flat = flat.to(_compute_dtype(x.dtype))
                sums = flat.new_zeros(n_groups, flat.shape[1]).index_add_(0, index, flat)
                counts = torch.bincount(index, minlength=n_groups).clamp_min(1).to(flat.dtype)
                samples = (sums / counts[:, None])[:first]
        else:
            samples = x[index < first] if first < n_groups else x
        return self._pca_basis(samples, differentiable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            self.last_mask = None
            return x
        return self.apply_to_rows(x)

    def apply_to_rows(self, x: torch.Tensor, source: str = "DeepAugment's input") -> torch.Tensor:
        """Select rows, transform them, detach them if ``stop_gradient`` (each with probability
        ``detach_p``); untouched rows pass.

        Every row is transformed and the selected ones are picked with ``torch.where``: no
        host-device synchronisation, and unselected rows keep their exact values and gradients.
        ``source`` names the tensor in error messages.
        """
        _require_rows(x, source)
        mask, drawn, detach = self._draw(x)
        if self.kind == "dropout":
            transformed = self._apply_dropout(x, drawn)
        else:
            transformed = self._project_out(x, *drawn)
        if detach is True:
            transformed = transformed.detach()
        elif detach is not False:
            transformed = torch.where(_as_rows(detach, x), transformed.detach(), transformed)
        return torch.where(_as_rows(mask, x), transformed, x)

    # ------------------------------------------------------------------ hooks
    def attach(self, module: nn.Module) -> HookHandle:
        """Transform ``module``'s output through a forward hook.

        Supported outputs, and what is transformed:

        * a tensor of shape (batch, features, ...): the tensor;
        * a NamedTuple: its first field (the result has the same type, other fields untouched);
        * a tuple or list whose first element is a tensor (as transformer blocks return): that element;
        * a dict-like output such as a Hugging Face ``ModelOutput``: ``last_hidden_state`` when
          present, else the first tensor value (the result has the same type).

        Anything else, and a 0-d or 1-d tensor, raises a ``TypeError``/``ValueError`` that names the
        module. The op is active only while both this op and the hooked module are in training mode.
        """

        def hook(mod: nn.Module, args: Any, output: Any) -> Any:
            if not (self.training and mod.training):
                return None
            return self._transform_output(mod, output)

        return HookHandle(module.register_forward_hook(hook), module)

    def _transform_output(self, mod: nn.Module, output: Any) -> Any:
        """Apply the op to the hidden states inside ``output`` and rebuild an output of the same type."""
        name = type(mod).__name__
        kind = type(output).__name__
        if isinstance(output, torch.Tensor):
            return self.apply_to_rows(output, f"the output of {name}")
        if isinstance(output, tuple) and hasattr(output, "_fields") and output:  # NamedTuple
            field = output._fields[0]
            if isinstance(output[0], torch.Tensor):
                new = self.apply_to_rows(output[0], f"field {field!r} of the {kind} returned by {name}")
                return output._replace(**{field: new})
        elif isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
            new = self.apply_to_rows(output[0], f"element 0 of the {kind} returned by {name}")
            return type(output)([new, *output[1:]])
        elif isinstance(output, Mapping):
            key = _hidden_state_key(output)
            if key is not None:
                new = self.apply_to_rows(output[key], f"{kind}[{key!r}] returned by {name}")
                return _replace_in_mapping(output, key, new)
        raise TypeError(
            f"DeepAugment cannot transform the output of {name}: it returned a {kind}, and the op "
            f"handles a tensor, a NamedTuple/tuple/list whose first element is a tensor, or a dict-like "
            f"output (e.g. a Hugging Face ModelOutput) holding a tensor. Hook a submodule of {name} "
            f"that returns the hidden-state tensor (e.g. a transformer block or an encoder stage) "
            f"instead, or wrap {name} so that it returns one."
        )


def _as_rows(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A row mask shaped to broadcast over ``x``'s other dimensions."""
    return mask.view(-1, *([1] * (x.dim() - 1)))


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for bf16/fp16/fp32 activations, float64 for float64 ones."""
    return torch.promote_types(dtype, torch.float32)


def _autocast_off(device_type: str):
    """A region where autocast is off for ``device_type`` (a no-op where autocast does not exist)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def _require_rows(x: torch.Tensor, source: str) -> None:
    """Refuse tensors without a (batch, features) structure, naming ``source``.

    A 0-d tensor has no rows. A 1-d tensor would be one scalar per row: dropout would zero whole
    rows and PCA would have a single feature (so it would set the row to the batch mean), neither
    of which is the paper's operation on a layer's activation vectors.
    """
    if x.dim() >= 2:
        return
    what = (
        "a 0-d tensor (a scalar), which has no rows"
        if x.dim() == 0
        else (f"a 1-d tensor of shape {tuple(x.shape)}, one scalar per row and no feature dimension")
    )
    raise ValueError(
        f"DeepAugment needs activations of shape (batch, features, ...), but {source} is {what}. "
        f"Target a layer whose output keeps the batch and feature dimensions (e.g. the block before a "
        f"loss or a score), or reshape a per-example scalar to (batch, 1) if that is what you mean to transform."
    )


def _hidden_state_key(output: Mapping) -> Any:
    """``last_hidden_state`` when present (Hugging Face encoders), else the first tensor value's key."""
    if isinstance(output.get("last_hidden_state"), torch.Tensor):
        return "last_hidden_state"
    return next((k for k, v in output.items() if isinstance(v, torch.Tensor)), None)


def _replace_in_mapping(output: Mapping, key: Any, value: torch.Tensor) -> Mapping:
    """A copy of ``output`` of the same type with ``output[key]`` replaced.

    Hugging Face ``ModelOutput`` classes are dataclasses built from keyword arguments; a plain dict
    (or a subclass taking a mapping) is built from the items.
    """
    items = dict(output.items())
    items[key] = value
    try:
        return type(output)(**items)
    except TypeError:
        return type(output)(items)
