"""GraphCL's augmentations on a batch: each graph loses/changes exactly what GraphCL's functions take
(int(n * ratio) nodes or edge entries), the rest is untouched, and the draws follow the generator."""

import pytest
import torch

from deepaug.domains.graph.data import load_graphs
from deepaug.domains.graph.views import AUGMENTATIONS, augment

RATIO = 0.2


@pytest.fixture(scope="module")
def batch(synthetic_pt):
    gs = load_graphs(synthetic_pt)
    return gs.batch(torch.arange(24))


def _per_graph(b):
    """[(x, set of edges)] per graph of a batch, with node ids local to the graph."""
    out = []
    starts = torch.cumsum(torch.bincount(b.batch, minlength=b.num_graphs), 0)
    lo = 0
    for g in range(b.num_graphs):
        hi = int(starts[g])
        sel = (b.edge_index[0] >= lo) & (b.edge_index[0] < hi)
        edges = [tuple(e) for e in (b.edge_index[:, sel] - lo).t().tolist()]
        out.append((b.x[lo:hi], edges))
        lo = hi
    return out


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_drop_nodes_removes_int_n_ratio_nodes_of_each_graph(batch):
    before, after = _per_graph(batch), _per_graph(augment(batch, "dropN", RATIO, _gen()))
    for (x0, e0), (x1, e1) in zip(before, after):
        n = x0.shape[0]
        assert x1.shape[0] == n - int(n * RATIO)
        # the kept nodes' induced edges only, relabelled in order: every edge is between kept nodes
        assert len(e1) <= len(e0) and all(u < x1.shape[0] and v < x1.shape[0] for u, v in e1)


def test_drop_nodes_keeps_exactly_the_induced_subgraph():
    from deepaug.domains.graph.data import GraphBatch

    # one path 0-1-2-3-4 (both directions), node features = their ids
    edges = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    b = GraphBatch(torch.arange(5.0)[:, None], edges, torch.zeros(5, dtype=torch.long), 1)
    out = augment(b, "dropN", 0.2, _gen(1))
    kept = out.x[:, 0].long().tolist()
    assert len(kept) == 4 and kept == sorted(kept)
    original = {(kept[u], kept[v]) for u, v in out.edge_index.t().tolist()}
    assert original == {(u, v) for u, v in edges.t().tolist() if u in kept and v in kept}


def test_permute_edges_swaps_int_e_ratio_entries(batch):
    before, after = _per_graph(batch), _per_graph(augment(batch, "permE", RATIO, _gen()))
    for (x0, e0), (x1, e1) in zip(before, after):
        k = int(len(e0) * RATIO)
        assert torch.equal(x0, x1) and len(e1) == len(e0)
        assert len(set(e0) - set(e1)) <= k and len(set(e0) & set(e1)) >= len(e0) - k
        assert all(0 <= u < x0.shape[0] and 0 <= v < x0.shape[0] for u, v in e1)
    assert sum(len(set(e0) - set(e1)) for (_, e0), (_, e1) in zip(before, after)) > 0


def test_mask_nodes_sets_int_n_ratio_nodes_to_the_graph_mean():
    from deepaug.domains.graph.data import GraphBatch

    g = torch.Generator().manual_seed(0)
    sizes = [10, 15, 7]
    batch_vec = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    x = torch.randn(sum(sizes), 4, generator=g)
    b = GraphBatch(x, torch.zeros(2, 0, dtype=torch.long), batch_vec, 3)
    out = augment(b, "maskN", RATIO, _gen(2))
    lo = 0
    for n in sizes:
        x0, x1 = x[lo : lo + n], out.x[lo : lo + n]
        changed = (x0 != x1).any(1)
        assert int(changed.sum()) == int(n * RATIO)
        assert torch.allclose(x1[changed], x0.mean(0).expand(int(n * RATIO), -1))
        lo += n


def test_subgraph_keeps_a_connected_set_of_int_n_ratio_plus_one_nodes(batch):
    before, after = _per_graph(batch), _per_graph(augment(batch, "subgraph", RATIO, _gen()))
    full = 0
    for (x0, _e0), (x1, e1) in zip(before, after):
        n, m = x0.shape[0], x1.shape[0]
        assert 1 <= m <= int(n * RATIO) + 1
        full += m == int(n * RATIO) + 1
        # connected: a search from node 0 over the kept edges reaches every kept node
        seen, todo = {0}, [0]
        while todo:
            u = todo.pop()
            for a, v in e1:
                if a == u and v not in seen:
                    seen.add(v)
                    todo.append(v)
        assert seen == set(range(m))
    assert full >= len(before) - 2  # the growth stops early only where a component is exhausted


def test_random_views_mix_the_four_and_are_reproducible(batch):
    a = augment(batch, "random4", RATIO, _gen(5))
    b = augment(batch, "random4", RATIO, _gen(5))
    c = augment(batch, "random4", RATIO, _gen(6))
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index) and torch.equal(a.batch, b.batch)
    assert not (torch.equal(a.edge_index, c.edge_index) and torch.equal(a.batch, c.batch))
    assert augment(batch, "none", RATIO, _gen()) is batch
    assert a.num_graphs == batch.num_graphs and torch.equal(torch.unique(a.batch), torch.arange(batch.num_graphs))
    with pytest.raises(ValueError, match="graph augmentation must be one of"):
        augment(batch, "flip", RATIO, _gen())
    assert set(AUGMENTATIONS) >= {"dropN", "permE", "maskN", "subgraph", "random4"}
