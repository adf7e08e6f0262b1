"""Which layer of *your* model should Deep Augmentation target? One call, torch and numpy only.

:func:`rank_layers` runs a model (eval mode, no gradient, no Deep Augmentation) on the first ``n_samples``
examples of a data loader, records the output of each layer, computes linear CKA between every pair of
layers (:func:`deepaug.analysis.similarity.cka_matrix`) and ranks the candidate layers by the pipeline's
layer-selection rule (:func:`deepaug.analysis.layer_choice.recommend_layer`): a layer's score is its mean
linear CKA with its neighbours (the layers before and after it in the list), the most co-adapted layer
first; ties go to the deeper layer. It is the rule the workflow's ``analysis`` target applies to the
baseline of each sweep (``results/analysis/layer_selection.csv``), here on a model and data of your own.

How well the rule's layer agrees with the sweep's best layer was not measured on the paper data (the
workflow's ``layer_selection.csv`` reports the agreement per sweep where one is run): treat the ranking
as a prior for which layers to try first, not as a replacement for a sweep.

One row per example: a layer's output (a tensor, the first element of a tuple, or a Hugging Face
``ModelOutput``'s ``last_hidden_state``) of shape (batch, features) is used as it is, (batch, tokens,
hidden) is averaged over the tokens (over the ``attention_mask`` when the batch is a mapping that has
one: the pipeline's text analysis), (batch, channels, height, width) is flattened (the vision
analysis); node-level outputs of a graph batch (an object with a ``batch`` vector and ``num_graphs``,
such as PyTorch Geometric's ``Batch``) are summed per graph (the graph analysis, as a GIN pools them).
``reduce=`` replaces this with a function of your own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from deepaug.analysis.layer_choice import neighbour_similarity
from deepaug.analysis.similarity import cka_matrix


@dataclass(frozen=True)
class LayerScore:
    """One ranked layer: its place (1 = the recommended layer), its index in the list of layers, its
    name and its score (mean linear CKA with its neighbours)."""

    rank: int
    index: int
    name: str
    score: float


@dataclass
class LayerRanking:
    """The result of :func:`rank_layers`: ``ranked`` best first, ``names`` in forward order, ``matrix``
    the linear CKA between every pair of layers (same order as ``names``), ``n_samples`` rows used."""

    ranked: list[LayerScore]
    names: list[str]
    matrix: np.ndarray
    n_samples: int

    @property
    def best(self) -> LayerScore:
        return self.ranked[0]

    def __str__(self) -> str:
        width = max(len(s.name) for s in self.ranked)
        lines = [f"{'rank':>4}  {'index':>5}  {'layer':<{width}}  score (mean linear CKA with neighbours)"]
        lines += [f"{s.rank:>4}  {s.index:>5}  {s.name:<{width}}  {s.score:.4f}" for s in self.ranked]
        return "\n".join(lines)


def _named_layers(model: nn.Module, layers) -> list[tuple[str, nn.Module]]:
    if layers is None:
        if hasattr(model, "deepaug_layers"):
            return [(f"{i} {name}", module) for i, (name, module) in enumerate(model.deepaug_layers())]
        children = ", ".join(name for name, _ in model.named_children()) or "none"
        raise ValueError(
            f"rank_layers: {type(model).__name__} has no layer map (deepaug_layers()); pass layers=[...] with the "
            f"names of its modules in forward order, e.g. its children: {children}"
        )
    if isinstance(layers, Mapping):
        layers = list(layers.items())
    named = []
    for item in layers:
        if isinstance(item, str):
            try:
                named.append((item, model.get_submodule(item)))
            except AttributeError as exc:
                raise ValueError(f"rank_layers: layers: {type(model).__name__} has no module {item!r} ({exc})") from exc
        elif isinstance(item, nn.Module):
            names = [n for n, m in model.named_modules() if m is item]
            named.append((names[0] if names else type(item).__name__, item))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], nn.Module):
            named.append((str(item[0]), item[1]))
        else:
            raise TypeError(
                f"rank_layers: layers: expected module names, modules or (name, module) pairs, got {item!r}"
            )
    if len(named) < 2:
        raise ValueError(
            "rank_layers: layers: give at least two layers (a layer is scored against its neighbours), "
            f"got {len(named)}"
        )
    return named


def _hidden(out: Any, name: str) -> torch.Tensor:
    """The activation Deep Augmentation would transform (see ``DeepAugment``): a tensor, the first element
    of a tuple/list, a mapping's ``last_hidden_state`` or first tensor."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, Mapping):
        if isinstance(out.get("last_hidden_state"), torch.Tensor):
            return out["last_hidden_state"]
        for value in out.values():
            if isinstance(value, torch.Tensor):
                return value
    raise TypeError(
        f"rank_layers: layer {name!r} returned {type(out).__name__}, not a tensor; pass reduce= to handle it"
    )


def default_reduce(x: torch.Tensor, batch: Any) -> torch.Tensor:
    """One row per example (see the module's docstring)."""
    graph_index = getattr(batch, "batch", None)
    num_graphs = getattr(batch, "num_graphs", None)
    if isinstance(graph_index, torch.Tensor) and num_graphs is not None and x.shape[0] == graph_index.shape[0]:
        pooled = x.new_zeros((int(num_graphs), *x.shape[1:]))
        return pooled.index_add_(0, graph_index.to(x.device), x).reshape(int(num_graphs), -1)
    if x.dim() == 3:
        mask = batch.get("attention_mask") if isinstance(batch, Mapping) else None
        if isinstance(mask, torch.Tensor) and mask.shape == x.shape[:2]:
            m = mask.to(x.device, x.dtype).unsqueeze(-1)
            return (x * m).sum(1) / m.sum(1).clamp_min(1)
        return x.mean(1)
    return x.reshape(x.shape[0], -1)


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return (
            type(batch)({k: _to(v, device) for k, v in batch.items()}) if isinstance(batch, dict) else batch.to(device)
        )
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(v, device) for v in batch)
    return batch.to(device) if hasattr(batch, "to") else batch


def default_forward(model: nn.Module, batch: Any) -> Any:
    """``model(**batch)`` for a mapping (a tokenizer's output), ``model(batch[0])`` for a tuple or list
    (inputs, labels), ``model(batch)`` otherwise (a tensor, a graph batch)."""
    if isinstance(batch, Mapping):
        return model(**{k: v for k, v in batch.items() if k != "labels"})
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


@torch.no_grad()
def rank_layers(
    model: nn.Module,
    loader: Iterable,
    layers: Sequence | Mapping | None = None,
    *,
    n_samples: int = 512,
    candidates: Sequence[int] | None = None,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    reduce: Callable[[torch.Tensor, Any], torch.Tensor] | None = None,
    device: str | torch.device | None = None,
) -> LayerRanking:
    """Rank the layers of ``model`` for Deep Augmentation from its own activations on ``loader``.

    ``layers``: the layers in forward order (module names such as ``"layer2"`` or
    ``"encoder.layer.3"``, modules, ``(name, module)`` pairs or a dict); by default the model's layer map
    (``deepaug_layers()``, the pipeline's models). ``candidates``: indices (into ``layers``) that may be
    recommended (default: all); every layer still serves as a neighbour. ``forward(model, batch)`` runs
    one batch (default :func:`default_forward`); ``reduce(output, batch)`` turns a layer's output into
    one row per example (default :func:`default_reduce`). Rows of every layer must be the same examples.
    The model runs in eval mode (restored afterwards) on ``device`` (default: its parameters' device).
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"rank_layers: n_samples must be an integer >= 2 (CKA compares examples), got {n_samples!r}")
    named = _named_layers(model, layers)
    names = [n for n, _ in named]
    cand = list(range(len(named))) if candidates is None else [int(c) for c in candidates]
    bad = [c for c in cand if not 0 <= c < len(named)]
    if bad or not cand:
        raise ValueError(
            f"rank_layers: candidates {bad or cand} are not indices of the {len(named)} layers (0-{len(named) - 1})"
        )
    forward = forward or default_forward
    reduce = reduce or default_reduce
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)

    rows: list[list[torch.Tensor]] = [[] for _ in named]
    current: dict[int, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda mod, args, out, i=i: current.__setitem__(i, _hidden(out, names[i])))
        for i, (_, module) in enumerate(named)
    ]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        for batch in loader:
            batch = _to(batch, device)
            current.clear()
            forward(model, batch)
            missing = [names[i] for i in range(len(named)) if i not in current]
            if missing:
                raise ValueError(
                    f"rank_layers: layer(s) {missing} did not run in the forward pass; check layers= and forward="
                )
            reduced = [reduce(current[i], batch).detach().float().cpu() for i in range(len(named))]
            counts = {names[i]: r.shape[0] for i, r in enumerate(reduced)}
            if len(set(counts.values())) != 1:
                raise ValueError(
                    f"rank_layers: the layers give different numbers of rows for one batch ({counts}); every layer "
                    "needs one row per example: pass reduce= (e.g. pool node-level outputs per graph)"
                )
            for i, r in enumerate(reduced):
                rows[i].append(r.reshape(r.shape[0], -1))
            seen += reduced[0].shape[0]
            if seen >= n_samples:
                break
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if seen < 2:
        raise ValueError(f"rank_layers: the loader gave {seen} example(s); CKA needs at least 2")
    feats = [torch.cat(r)[:n_samples] for r in rows]
    matrix = cka_matrix(feats, "linear")
    scores = [(neighbour_similarity(matrix, k), k) for k in cand]
    if not all(np.isfinite(s) for s, _ in scores):
        raise ValueError(
            "rank_layers: a layer's CKA is not finite (a constant layer output on these examples?): "
            + ", ".join(f"{names[k]} {s}" for s, k in scores)
        )
    ordered = sorted(scores, reverse=True)  # ties: the deeper layer, as recommend_layer
    ranked = [LayerScore(rank=r + 1, index=k, name=names[k], score=float(s)) for r, (s, k) in enumerate(ordered)]
    return LayerRanking(ranked=ranked, names=names, matrix=matrix, n_samples=int(feats[0].shape[0]))
