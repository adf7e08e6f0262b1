"""GraphCL's stochastic graph augmentations, applied to a whole batch at once with tensor operations.

The four augmentations and their arithmetic follow Shen-Lab/GraphCL
``semisupervised_TU/pre-training/tu_dataset.py`` (the version with an ``aug_ratio``; its default
ratio is 0.2 for both views, ``main.py`` L49-52):

* ``dropN`` (L139-163): ``int(n * ratio)`` nodes of each graph, drawn uniformly without replacement,
  are removed with their edges.
* ``permE`` (L211-227): ``int(e * ratio)`` of each graph's ``e`` edge entries (a PyG edge list holds both
  directions of an undirected edge, and GraphCL counts entries) are removed, drawn uniformly without
  replacement, and as many uniformly random node pairs of the graph are added.
* ``subgraph`` (L229-268): from a uniformly drawn start node, repeatedly add a node drawn uniformly
  from the neighbours of the nodes kept so far, until ``int(n * ratio) + 1`` nodes are kept or no
  neighbour is left; the rest is removed. GraphCL's TU code means to grow the neighbour set with each
  added node but discards the result of ``set.union`` (L251); its later ``transferLearning_MoleculeNet_PPI/
  bio/loader.py`` L310 assigns it, which is what is done here. (Its self-loops on the kept nodes,
  L261, are left out: PyG's TU data have none and GIN adds the node itself.)
* ``maskN`` (L271-280): ``int(n * ratio)`` nodes, drawn uniformly without replacement, get the
  graph's mean feature vector as features.

``random2``/``random3``/``random4`` draw one of the first 2/3/4 of (dropN, subgraph, permE, maskN) per
graph, uniformly (L86-121), and ``none`` is the identity. GraphCL's unsupervised TU training contrasts
the original graph with a ``random*`` view (``unsupervised_TU/gsimclr.py`` L203-241, ``go.sh``), as
does PyGCL's GraphCL example (``examples/GraphCL.py`` L117-121: ``Identity`` and a random choice).

Every draw comes from the ``torch.Generator`` passed in, so an epoch's views are a function of its
seed (exact resumption) and are the same on any batch layout of the same graphs and device.
"""

from __future__ import annotations

import torch

from deepaug.domains.graph.data import GraphBatch

SINGLE = ("dropN", "subgraph", "permE", "maskN")  # in GraphCL's random4 order
AUGMENTATIONS = ("none", *SINGLE, "random2", "random3", "random4")


def _rand(n: int, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device, dtype=torch.float64)


def _random_rank(group: torch.Tensor, n_groups: int, g: torch.Generator) -> torch.Tensor:
    """For items labelled with their group, a uniformly random rank 0..k-1 of each item within its group."""
    n = group.shape[0]
    keys = group.double() + _rand(n, g, group.device)  # group first, random order inside
    order = torch.argsort(keys)
    starts = torch.cumsum(torch.bincount(group, minlength=n_groups), 0) - torch.bincount(group, minlength=n_groups)
    rank = torch.empty_like(group)
    rank[order] = torch.arange(n, device=group.device) - starts[group[order]]
    return rank


def _choose(kind: str, n_graphs: int, g: torch.Generator, device) -> torch.Tensor:
    """Index into SINGLE of the augmentation of each graph (``-1``: none)."""
    if kind == "none":
        return torch.full((n_graphs,), -1, dtype=torch.long, device=device)
    if kind in SINGLE:
        return torch.full((n_graphs,), SINGLE.index(kind), dtype=torch.long, device=device)
    k = int(kind[-1])
    return torch.randint(k, (n_graphs,), generator=g, device=device)


def _subgraph_keep(
    b: GraphBatch, active: torch.Tensor, n_nodes: torch.Tensor, ratio: float, g: torch.Generator
) -> torch.Tensor:
    """Nodes kept by ``subgraph`` in the graphs where ``active``; every node of the other graphs."""
    device = b.x.device
    n = b.x.shape[0]
    target = torch.where(active, (n_nodes.double() * ratio).floor().long() + 1, n_nodes)
    # start: the node of random rank 0 in each active graph
    keep = (_random_rank(b.batch, b.num_graphs, g) == 0) & active[b.batch]
    src, dst = b.edge_index
    steps = int((target - 1).clamp_min(0)[active].max()) if bool(active.any()) else 0
    for _ in range(steps):
        size = torch.bincount(b.batch[keep], minlength=b.num_graphs)
        growing = active & (size < target)
        frontier = torch.zeros(n, dtype=torch.bool, device=device)
        reach = keep[src] & ~keep[dst]
        frontier[dst[reach]] = True
        frontier &= growing[b.batch]
        key = torch.where(frontier, _rand(n, g, device), torch.full((n,), -1.0, dtype=torch.float64, device=device))
        best = torch.full((b.num_graphs,), -1.0, dtype=torch.float64, device=device)
        best = best.scatter_reduce(0, b.batch, key, reduce="amax")
        keep |= frontier & (key == best[b.batch])
    return keep | ~active[b.batch]


def augment(b: GraphBatch, kind: str, ratio: float, g: torch.Generator) -> GraphBatch:
    """One GraphCL view of every graph of ``b`` (see the module docstring); ``b`` is not modified."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"graph augmentation must be one of {AUGMENTATIONS}, got {kind!r}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"augmentation ratio must be in [0, 1], got {ratio}")
    if kind == "none":
        return b
    device = b.x.device
    G = b.num_graphs
    src, dst = b.edge_index
    edge_graph = b.batch[src]
    n_nodes = torch.bincount(b.batch, minlength=G)
    n_edges = torch.bincount(edge_graph, minlength=G)
    choice = _choose(kind, G, g, device)
    node_k = (n_nodes.double() * ratio).floor().long()  # GraphCL's int(node_num * aug_ratio)
    edge_k = (n_edges.double() * ratio).floor().long()

    # dropN: the first int(n * ratio) nodes of a random order are removed
    drop = (choice == 0)[b.batch] & (_random_rank(b.batch, G, g) < node_k[b.batch])
    # subgraph
    keep = _subgraph_keep(b, choice == 1, n_nodes, ratio, g) & ~drop
    # permE: remove int(e * ratio) edge entries, add as many random pairs of the graph's nodes
    perm = choice == 2
    edge_keep = ~(perm[edge_graph] & (_random_rank(edge_graph, G, g) < edge_k[edge_graph]))
    add_graph = torch.repeat_interleave(torch.arange(G, device=device), torch.where(perm, edge_k, 0))
    starts = torch.cumsum(n_nodes, 0) - n_nodes
    pairs = (_rand(2 * add_graph.shape[0], g, device).view(2, -1) * n_nodes[add_graph]).floor().long()
    added = pairs.clamp_max(n_nodes[add_graph] - 1) + starts[add_graph]
    # maskN: int(n * ratio) random nodes take the graph's mean feature vector
    masked = (choice == 3)[b.batch] & (_random_rank(b.batch, G, g) < node_k[b.batch])
    x = b.x
    if bool(masked.any()):
        mean = torch.zeros(G, x.shape[1], dtype=x.dtype, device=device).index_add_(0, b.batch, x)
        mean = mean / n_nodes.clamp_min(1)[:, None].to(x.dtype)
        x = torch.where(masked[:, None], mean[b.batch], x)

    edges = torch.cat([b.edge_index[:, edge_keep], added], dim=1)
    edges = edges[:, keep[edges[0]] & keep[edges[1]]]
    new_id = torch.cumsum(keep.long(), 0) - 1
    return GraphBatch(x[keep], new_id[edges], b.batch[keep], G, b.y)
