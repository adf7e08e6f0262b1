"""The views of contrastive graph training: PyGCL's augmentors and GraphCL's unsupervised TU augmentations,
each applied to a whole batch with tensor operations.

**PyGCL** (PyGCL/PyGCL@0e1bacb, ``GCL/augmentors``; the protocol the paper follows, ``examples/GraphCL.py``
L117-121) augments a batch's node features and edge list as one graph: each draw is per batch, and no
augmentor removes a node (a "dropped" node keeps its features and is still pooled, it only loses its edges).

* ``node_dropping`` (``node_dropping.py`` L10-15, ``functional.py`` L310-318 ``drop_node``): every node is kept
  with probability ``1 - ratio`` (a Bernoulli draw per node); the edges with both ends kept stay
  (``torch_geometric.utils.subgraph``).
* ``feature_masking`` (``feature_masking.py`` L10-13, ``functional.py`` L89-96 ``drop_feature``): every feature
  column is zeroed with probability ``ratio``, for every node of the batch.
* ``edge_removing`` (``edge_removing.py`` L10-13: PyG's ``dropout_adj(p=ratio)``): every edge entry (one
  direction of an undirected edge) is removed with probability ``ratio``, independently (``rand >= p`` keeps).
* ``rw_sampling`` (``rw_sampling.py`` L11-16, ``functional.py`` L321-332 ``random_walk_subgraph``, with the
  example's ``num_seeds=1000, walk_length=10``): 1000 start nodes drawn uniformly (with replacement) from ids
  ``0..max(edge_index)`` of the batch, a uniform random walk of 10 steps from each (torch_cluster's
  ``uniform_sampling``, rusty1s/pytorch_cluster@01a51d4 ``csrc/cpu/rw_cpu.cpp`` L7-33: the ``int(u * deg)``-th
  neighbour in the (source, target)-sorted edge list; a node without neighbours stays), and only the edges
  between visited nodes are kept.
* ``random_choice`` (``augmentor.py`` L44-58 ``RandomChoice(augmentors, 1)``): one of the four above, drawn
  uniformly per batch (the example's list, ``examples/GraphCL.py`` L118-121, in that order).

**GraphCL** (Shen-Lab/GraphCL@5003879, ``unsupervised_TU/aug.py``; the code behind its published TU numbers)
draws per graph, with fixed counts:

* ``dnodes`` (L302-327): ``int(n * ratio)`` nodes drawn without replacement lose every edge (their rows and
  columns of the adjacency are zeroed; ids are kept).
* ``pedges`` (L330-347): ``int(e * ratio)`` of the ``e`` edge entries (self-loops included) are removed, drawn
  without replacement, and none is added: ``idx_add`` is computed but never used (L338, L343; reproduced, see
  Shen-Lab/GraphCL#7, where the authors confirm it).
* ``subgraph`` (L349-394): a uniformly drawn start node, then up to ``int(0.2 n)`` more nodes drawn from its
  *first* neighbour set only: ``idx_neigh.union(...)`` discards its result (L371), so the set never grows
  (reproduced, as the authors advise "for reproduce purpose", Shen-Lab/GraphCL#24). Each of at most ``n`` draws
  (L360-364) picks uniformly from that set and is skipped when already kept; the start node is in its own set
  through its self-loop. The edges between kept nodes stay. Its share is fixed at 0.2 (:data:`SUBGRAPH_RATIO`),
  not ``ratio``.
* ``mask_nodes`` (L397-405): ``int(n * ratio)`` nodes drawn without replacement get features drawn from
  N(0.5, 0.5^2), every dimension.
* ``random2``/``random3``/``random4`` (L249-285): one per graph, uniformly, of (dnodes, subgraph), (dnodes,
  pedges, subgraph), (dnodes, pedges, subgraph, mask_nodes).

With ``dnodes``, ``subgraph`` and ``random2/3/4`` the training loop then removes every node that no edge entry
touches and every self-loop from the view (``unsupervised_TU/gsimclr.py`` L211-225); with ``pedges`` and
``mask_nodes`` alone the view keeps its nodes and self-loops. (GraphCL's graphs carry self-loops by then,
:func:`deepaug.domains.graph.data.with_self_loops`, so this removes the nodes an augmentation cut off.)

``none`` is the identity (PyGCL's ``A.Identity()``, GraphCL's view 1). Every draw comes from the
``torch.Generator`` passed in, so an epoch's views are a function of its seed (exact resumption). Each
augmentation is also a function of explicit random numbers (the ``pygcl_*`` and ``graphcl_*`` functions), which
the tests compute by hand on small graphs.
"""

from __future__ import annotations

import torch

from deepaug.domains.graph.data import GraphBatch

PYGCL = ("rw_sampling", "node_dropping", "feature_masking", "edge_removing")  # examples/GraphCL.py L118-121 order
GRAPHCL = ("dnodes", "pedges", "subgraph", "mask_nodes")  # aug.py L274-282: random4's order
GRAPHCL_RANDOM = {"random2": ("dnodes", "subgraph"), "random3": ("dnodes", "pedges", "subgraph"), "random4": GRAPHCL}
GRAPHCL_POSTPROCESSED = frozenset({"dnodes", "subgraph", "random2", "random3", "random4"})  # gsimclr.py L211
AUGMENTATIONS = ("none", *PYGCL, "random_choice", *GRAPHCL, *GRAPHCL_RANDOM)
RW_SEEDS, RW_LENGTH = 1000, 10  # examples/GraphCL.py L118: RWSampling(num_seeds=1000, walk_length=10)
SUBGRAPH_RATIO = 0.2  # unsupervised_TU/aug.py L353: sub_num = int(node_num * 0.2)
MASK_MEAN, MASK_STD = 0.5, 0.5  # unsupervised_TU/aug.py L403: np.random.normal(loc=0.5, scale=0.5)


def _rand(shape, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=g, device=device, dtype=torch.float64)


def _rank(group: torch.Tensor, keys: torch.Tensor, n_groups: int) -> torch.Tensor:
    """The rank 0..k-1 of each item within its group by ascending ``keys`` (ties: the lower index first)."""
    order = torch.argsort(keys, stable=True)
    order = order[torch.argsort(group[order], stable=True)]
    counts = torch.bincount(group, minlength=n_groups)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(group)
    rank[order] = torch.arange(group.shape[0], device=group.device) - starts[group[order]]
    return rank


def _share(counts: torch.Tensor, ratio: float) -> torch.Tensor:
    """``int(count * ratio)`` of each count (GraphCL's ``int(node_num / 10)`` is the same for ratio 0.1)."""
    return (counts.double() * ratio).floor().long()


def _keep_edges(b: GraphBatch, keep: torch.Tensor, x: torch.Tensor | None = None) -> GraphBatch:
    return GraphBatch(b.x if x is None else x, b.edge_index[:, keep], b.batch, b.num_graphs, b.y)


# ----------------------------------------------------------------------------- PyGCL: one draw per batch
def pygcl_node_dropping(b: GraphBatch, u: torch.Tensor, pn: float) -> GraphBatch:
    """``drop_node(keep_prob=1 - pn)``: node ``i`` is kept where ``u[i] < 1 - pn`` (a Bernoulli draw); the edges
    between kept nodes stay, every node stays."""
    kept = u < 1.0 - pn
    src, dst = b.edge_index
    return _keep_edges(b, kept[src] & kept[dst])


def pygcl_feature_masking(b: GraphBatch, u: torch.Tensor, pf: float) -> GraphBatch:
    """``drop_feature(x, pf)``: column ``j`` is zeroed for every node where ``u[j] < pf``."""
    x = b.x.masked_fill((u < pf)[None, :], 0.0)
    return GraphBatch(x, b.edge_index, b.batch, b.num_graphs, b.y)


def pygcl_edge_removing(b: GraphBatch, u: torch.Tensor, pe: float) -> GraphBatch:
    """``dropout_adj(p=pe)``: edge entry ``k`` is kept where ``u[k] >= pe``."""
    return _keep_edges(b, u >= pe)


def pygcl_rw_sampling(b: GraphBatch, start_u: torch.Tensor, step_u: torch.Tensor) -> GraphBatch:
    """``random_walk_subgraph``: walks from ``floor(start_u * (max(edge_index) + 1))``, step ``l`` of walk ``w``
    to the ``floor(step_u[w, l] * deg)``-th neighbour (edge list sorted by source, then target; a node without
    neighbours stays); the edges between visited nodes stay, every node stays."""
    if b.edge_index.shape[1] == 0:
        return b
    src, dst = b.edge_index
    n = int(b.edge_index.max()) + 1
    order = torch.argsort(src * n + dst, stable=True)
    col = dst[order]
    rowptr = torch.zeros(n + 1, dtype=torch.long, device=src.device)
    rowptr[1:] = torch.cumsum(torch.bincount(src, minlength=n), 0)
    cur = (start_u * n).floor().long().clamp_max(n - 1)
    visited = torch.zeros(n, dtype=torch.bool, device=src.device)
    visited[cur] = True
    for step in range(step_u.shape[1]):
        deg = rowptr[cur + 1] - rowptr[cur]
        idx = (step_u[:, step] * deg).floor().long().clamp_max((deg - 1).clamp_min(0))
        cur = torch.where(deg > 0, col[(rowptr[cur] + idx).clamp_max(col.shape[0] - 1)], cur)
        visited[cur] = True
    return _keep_edges(b, visited[src] & visited[dst])


def _pygcl_view(b: GraphBatch, kind: str, ratio: float, g: torch.Generator) -> GraphBatch:
    device = b.x.device
    if kind == "random_choice":
        kind = PYGCL[min(int(float(_rand(1, g, device)) * len(PYGCL)), len(PYGCL) - 1)]
    if kind == "node_dropping":
        return pygcl_node_dropping(b, _rand(b.x.shape[0], g, device), ratio)
    if kind == "feature_masking":
        return pygcl_feature_masking(b, _rand(b.x.shape[1], g, device), ratio)
    if kind == "edge_removing":
        return pygcl_edge_removing(b, _rand(b.edge_index.shape[1], g, device), ratio)
    return pygcl_rw_sampling(b, _rand(RW_SEEDS, g, device), _rand((RW_SEEDS, RW_LENGTH), g, device))


# ----------------------------------------------------------------------------- GraphCL: one draw per graph
def graphcl_drop_nodes(b: GraphBatch, keys: torch.Tensor, ratio: float) -> torch.Tensor:
    """``drop_nodes``: the ``int(n * ratio)`` nodes of each graph with the smallest ``keys`` (a uniform draw
    without replacement) are dropped. Returns the dropped nodes (a mask)."""
    n_nodes = torch.bincount(b.batch, minlength=b.num_graphs)
    return _rank(b.batch, keys, b.num_graphs) < _share(n_nodes, ratio)[b.batch]


def graphcl_permute_edges(b: GraphBatch, keys: torch.Tensor, ratio: float) -> torch.Tensor:
    """``permute_edges``: the ``int(e * ratio)`` edge entries of each graph with the smallest ``keys`` are
    removed, none added. Returns the removed entries (a mask)."""
    edge_graph = b.batch[b.edge_index[0]]
    n_edges = torch.bincount(edge_graph, minlength=b.num_graphs)
    return _rank(edge_graph, keys, b.num_graphs) < _share(n_edges, ratio)[edge_graph]


def graphcl_mask_nodes(b: GraphBatch, keys: torch.Tensor, noise: torch.Tensor, ratio: float) -> torch.Tensor:
    """``mask_nodes``: the ``int(n * ratio)`` nodes of each graph with the smallest ``keys`` take their row of
    ``noise`` (N(0.5, 0.5^2) draws). Returns the node features."""
    n_nodes = torch.bincount(b.batch, minlength=b.num_graphs)
    masked = _rank(b.batch, keys, b.num_graphs) < _share(n_nodes, ratio)[b.batch]
    return torch.where(masked[:, None], noise.to(b.x.dtype), b.x)


def graphcl_subgraph(
    b: GraphBatch, start_u: torch.Tensor, pick_u: torch.Tensor, active: torch.Tensor | None = None
) -> torch.Tensor:
    """``subgraph`` of the graphs where ``active`` (default: all): the nodes it keeps (a mask; every node of an
    inactive graph). Graph ``k`` of ``n`` nodes starts at its node ``floor(start_u[k] * n)``; its neighbour set
    is that node's targets in the edge list, in ascending order; draw ``t`` (``t < n``, at most) picks the
    ``floor(pick_u[k, t] * size)``-th of the set and keeps it unless kept already, until ``int(0.2 n) + 1``
    nodes are kept. (Once the whole set is kept no later draw can change anything, and drawing stops.)"""
    device = b.x.device
    G, n = b.num_graphs, b.x.shape[0]
    n_nodes = torch.bincount(b.batch, minlength=G)
    active = (n_nodes > 0) & (torch.ones(G, dtype=torch.bool, device=device) if active is None else active)
    first = torch.cumsum(n_nodes, 0) - n_nodes
    start = first + (start_u * n_nodes).floor().long().clamp_max((n_nodes - 1).clamp_min(0))
    # each active graph's neighbour set (distinct, ascending), as a padded (G, max size) table
    src, dst = b.edge_index
    own = active[b.batch[src]] & (src == start[b.batch[src]])
    graph_of = b.batch[src[own]]
    pairs = torch.unique(graph_of * n + dst[own])  # sorted: by graph, then by node
    graph_of, nbr_node = pairs // n, pairs % n
    size = torch.bincount(graph_of, minlength=G)
    slot = torch.arange(pairs.shape[0], device=device) - (torch.cumsum(size, 0) - size)[graph_of]
    table = torch.zeros(G, max(int(size.max()) if G else 0, 1), dtype=torch.long, device=device)
    table[graph_of, slot] = nbr_node
    valid = torch.arange(table.shape[1], device=device)[None, :] < size[:, None]

    kept = torch.zeros(n, dtype=torch.bool, device=device)
    kept[start[active]] = True
    n_kept = active.long()
    target = _share(n_nodes, SUBGRAPH_RATIO) + 1  # while len(idx_sub) <= sub_num (L361)
    set_kept = (kept[table] & valid).sum(1)  # the start node is in its own set through its self-loop
    rows = torch.arange(G, device=device)
    for t in range(pick_u.shape[1]):
        live = active & (n_kept < target) & (t < n_nodes) & (size > 0) & (set_kept < size)
        if not bool(live.any()):
            break
        pick = table[rows, (pick_u[:, t] * size).floor().long().clamp_max((size - 1).clamp_min(0))]
        new = live & ~kept[pick]
        kept[pick[new]] = True
        n_kept += new.long()
        set_kept += new.long()
    return kept | ~active[b.batch]


def graphcl_postprocess(b: GraphBatch) -> GraphBatch:
    """gsimclr.py L211-225: the nodes that some edge entry touches, relabelled in order, and the edges that are
    not self-loops."""
    src, dst = b.edge_index
    touched = torch.zeros(b.x.shape[0], dtype=torch.bool, device=b.x.device)
    touched[src] = True
    touched[dst] = True
    new_id = torch.cumsum(touched.long(), 0) - 1
    edges = b.edge_index[:, src != dst]
    return GraphBatch(b.x[touched], new_id[edges], b.batch[touched], b.num_graphs, b.y)


def _graphcl_view(b: GraphBatch, kind: str, ratio: float, g: torch.Generator) -> GraphBatch:
    device = b.x.device
    G, n, e = b.num_graphs, b.x.shape[0], b.edge_index.shape[1]
    if kind in GRAPHCL:
        choice = torch.full((G,), GRAPHCL.index(kind), dtype=torch.long, device=device)
    else:
        options = torch.tensor([GRAPHCL.index(o) for o in GRAPHCL_RANDOM[kind]], device=device)
        draw = (_rand(G, g, device) * len(options)).floor().long().clamp_max(len(options) - 1)
        choice = options[draw]  # np.random.randint(k) per graph (L250, L261, L274)
    node_choice = choice[b.batch]
    src, dst = b.edge_index
    keep = torch.ones(e, dtype=torch.bool, device=device)
    x = b.x
    if bool((choice == 0).any()):
        dropped = graphcl_drop_nodes(b, _rand(n, g, device), ratio) & (node_choice == 0)
        keep &= ~dropped[src] & ~dropped[dst]
    if bool((choice == 1).any()):
        keep &= ~(graphcl_permute_edges(b, _rand(e, g, device), ratio) & (choice[b.batch[src]] == 1))
    if bool((choice == 2).any()):
        active = choice == 2
        n_nodes = torch.bincount(b.batch, minlength=G)
        kept = graphcl_subgraph(b, _rand(G, g, device), _rand((G, int(n_nodes[active].max())), g, device), active)
        keep &= kept[src] & kept[dst]
    if bool((choice == 3).any()):
        noise = torch.randn(n, x.shape[1], generator=g, device=device, dtype=torch.float64) * MASK_STD + MASK_MEAN
        x = torch.where((node_choice == 3)[:, None], graphcl_mask_nodes(b, _rand(n, g, device), noise, ratio), x)
    out = _keep_edges(b, keep, x)
    return graphcl_postprocess(out) if kind in GRAPHCL_POSTPROCESSED else out


def augment(b: GraphBatch, kind: str, ratio: float, g: torch.Generator) -> GraphBatch:
    """One view of the graphs of ``b`` (see the module docstring); ``b`` is not modified."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"graph augmentation must be one of {AUGMENTATIONS}, got {kind!r}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"augmentation ratio must be in [0, 1], got {ratio}")
    if kind == "none":
        return b
    if kind in PYGCL or kind == "random_choice":
        return _pygcl_view(b, kind, ratio, g)
    return _graphcl_view(b, kind, ratio, g)
