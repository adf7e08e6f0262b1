"""Representation analyses of a trained GIN (no Deep Augmentation: eval mode), for CKA and alignment/uniformity.

:func:`layer_activations` gives one graph-level matrix per layer of the map: the node-level layers
(0 input features, 1..L GIN layers) sum-pooled per graph, as the encoder pools them, then the graph
vector (L+1) and the head's output (L+2). :func:`graph_analysis` is this domain's part of
:func:`deepaug.analysis.analyze.analyze`: linear and RBF CKA matrices across the
layer map on the first ``n_samples`` graphs, alignment of two views of each graph (positive pairs, fixed seed;
GraphCL's ``random4`` at 0.1, one augmentation per graph, whichever protocol trained the model: PyGCL's
augmentors draw once per batch, which would measure a single augmentation) and uniformity of the graph
vectors. The graphs are read as the model was trained (its self-loops, :meth:`GIN.inputs`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch_geometric.nn import global_add_pool

from deepaug.domains.graph.data import GraphBatch, GraphSet, load_graphs
from deepaug.domains.graph.views import augment


def _as_batch(model, loader_or_data, n_samples: int) -> GraphBatch:
    """The first ``n_samples`` graphs of a :class:`GraphSet` (or a :class:`GraphBatch`, used as it is),
    on the model's device."""
    device = next(model.parameters()).device
    if isinstance(loader_or_data, GraphBatch):
        return loader_or_data.to(device)
    if isinstance(loader_or_data, (str, Path)):
        loader_or_data = load_graphs(loader_or_data)
    if not isinstance(loader_or_data, GraphSet):
        raise TypeError(
            f"layer_activations takes a GraphSet, a GraphBatch or a prepared file, got {type(loader_or_data).__name__}"
        )
    n = min(n_samples, len(loader_or_data))
    return model.inputs(loader_or_data.to(device).batch(torch.arange(n, device=device)))


@torch.no_grad()
def layer_activations(model, loader_or_data, n_samples: int = 512) -> list[torch.Tensor]:
    """L+3 matrices with one row per graph (the first ``n_samples`` graphs), on the CPU, in float32:
    layers 0..L sum-pooled over each graph's nodes, then the graph vector and the head's output."""
    b = _as_batch(model, loader_or_data, n_samples)
    layers = model.deepaug_layers()
    outs: dict[int, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda mod, args, out, i=i: outs.__setitem__(i, out.detach()))
        for i, (_, module) in enumerate(layers)
    ]
    was_training = model.training
    model.eval()
    try:
        model(b.x, b.edge_index, b.batch, b.num_graphs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    feats = []
    for i in range(len(layers)):
        out = outs[i]
        if model.node_level(i):
            out = global_add_pool(out, b.batch, size=b.num_graphs)
        feats.append(out.float().cpu())
    return feats


@torch.no_grad()
def graph_analysis(
    model_path, data_path, n_samples: int, device, seed: int = 0, aug: str = "random4", ratio: float = 0.1
) -> tuple[dict, dict]:
    """(scalars, matrices) of :func:`deepaug.analysis.analyze.analyze`."""
    from deepaug.analysis.analyze import layer_summaries
    from deepaug.analysis.similarity import alignment, uniformity
    from deepaug.domains.graph.evaluate import embed
    from deepaug.domains.graph.train import load_encoder

    graphs = load_graphs(data_path)
    model = load_encoder(model_path, device)
    n = min(n_samples, len(graphs))
    feats = layer_activations(model, graphs, n)
    b = model.inputs(graphs.to(device).batch(torch.arange(n, device=device)))
    g = torch.Generator(device=device).manual_seed(seed)
    views = [augment(b, aug, ratio, g) for _ in range(2)]
    v1, v2 = (model.encode(v.x, v.edge_index, v.batch, v.num_graphs).float().cpu() for v in views)
    emb = embed(model, graphs, torch.arange(n), device=device)
    scalars, matrices = layer_summaries(feats, alignment(v1, v2), uniformity(emb))
    scalars.update(analysis_samples=n, alignment_pairs=n)
    return scalars, matrices
