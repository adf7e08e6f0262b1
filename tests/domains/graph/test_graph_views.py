"""The views, computed by hand on small graphs: PyGCL's augmentors (one draw per batch, nodes never removed) and
GraphCL unsupervised_TU's augmentations (one draw per graph, fixed counts, its training loop's clean-up), each as
a function of explicit random numbers; then that ``augment`` hands each of them the generator's draws.

The graph of most tests, ``A``: 5 nodes, undirected edges 0-1, 1-2, 2-3, 3-4, 1-3 (both directions of each), node
``i`` with features ``(3i, 3i+1, 3i+2)``. With GraphCL's self-loops (``range(edge_index.max())`` = 0..3) it has
self-loops on nodes 0-3 and none on node 4."""

import pytest
import torch

from deepaug.domains.graph import views as V
from deepaug.domains.graph.data import GraphBatch, with_self_loops
from deepaug.domains.graph.views import AUGMENTATIONS, augment

UNDIRECTED = [(0, 1), (1, 2), (2, 3), (3, 4), (1, 3)]


def _f64(values):
    return torch.tensor(values, dtype=torch.float64)


def graph_a() -> GraphBatch:
    entries = [p for u, v in UNDIRECTED for p in ((u, v), (v, u))]
    return GraphBatch(torch.arange(15.0).view(5, 3), torch.tensor(entries).t(), torch.zeros(5, dtype=torch.long), 1)


def graph_b() -> GraphBatch:
    """Graph A (nodes 0-4) then graph B (nodes 5-7: the edge 5-7, node 6 isolated) in one batch."""
    a = graph_a()
    edges = torch.cat([a.edge_index, torch.tensor([[5, 7], [7, 5]])], dim=1)
    x = torch.cat([a.x, 100 + torch.arange(9.0).view(3, 3)])
    return GraphBatch(x, edges, torch.tensor([0, 0, 0, 0, 0, 1, 1, 1]), 2)


def edges(b: GraphBatch) -> set:
    return {tuple(e) for e in b.edge_index.t().tolist()}


def both(*pairs) -> set:
    return {p for u, v in pairs for p in ((u, v), (v, u))}


def loops(*nodes) -> set:
    return {(n, n) for n in nodes}


# ----------------------------------------------------------------------------- GraphCL's self-loops
def test_graphcl_self_loops_leave_out_the_largest_node_id_of_each_edge_list():
    b = graph_b()
    out = with_self_loops(b, "graphcl")
    # graph A: edge ids up to 4 -> loops on 0..3; graph B: local ids up to 2 -> loops on local 0, 1 (nodes 5, 6)
    assert edges(out) == edges(b) | loops(0, 1, 2, 3, 5, 6)
    assert out.edge_index.shape[1] == b.edge_index.shape[1] + 6 and torch.equal(out.x, b.x)
    assert edges(with_self_loops(b, "all")) == edges(b) | loops(*range(8))
    assert with_self_loops(b, "none") is b
    lonely = GraphBatch(torch.ones(3, 1), torch.zeros(2, 0, dtype=torch.long), torch.zeros(3, dtype=torch.long), 1)
    assert with_self_loops(lonely, "graphcl").edge_index.shape[1] == 0  # no edge list, no largest id
    with pytest.raises(ValueError, match="self_loops must be one of"):
        with_self_loops(b, "some")


# ----------------------------------------------------------------------------- PyGCL: one draw per batch
def test_pygcl_node_dropping_isolates_the_dropped_nodes_and_keeps_them():
    b = graph_a()
    out = V.pygcl_node_dropping(b, _f64([0.5, 0.95, 0.2, 0.1, 0.99]), 0.1)  # kept where u < 0.9: 0, 2, 3
    assert edges(out) == both((2, 3))
    assert torch.equal(out.x, b.x) and torch.equal(out.batch, b.batch)  # every node stays, with its features


def test_pygcl_feature_masking_zeroes_columns_of_every_node_of_the_batch():
    b = graph_b()
    out = V.pygcl_feature_masking(b, _f64([0.05, 0.5, 0.09]), 0.1)  # columns 0 and 2: u < 0.1
    expected = b.x.clone()
    expected[:, [0, 2]] = 0
    assert torch.equal(out.x, expected) and edges(out) == edges(b)


def test_pygcl_edge_removing_drops_each_entry_independently():
    b = graph_a()
    u = _f64([0.5] * 10)
    u[[2, 7]] = 0.05  # entries 1->2 and 4->3 (one direction each): u < 0.1 removes them
    out = V.pygcl_edge_removing(b, u, 0.1)
    assert edges(out) == edges(b) - {(1, 2), (4, 3)} and torch.equal(out.x, b.x)


def test_pygcl_rw_sampling_keeps_the_edges_between_visited_nodes():
    b = graph_b()  # ids 0..7, max edge id 7: seeds floor(u * 8)
    # sorted neighbours: 0:[1] 1:[0,2,3] 2:[1,3] 3:[1,2,4] 4:[3] 5:[7] 6:[] 7:[5]
    start = _f64([0.0, 0.7, 0.76])  # nodes 0, 5, 6
    steps = _f64([[0.9, 0.5], [0.3, 0.6], [0.1, 0.1]])
    # walk 0: 0 -> [1][int(0.9)] = 1 -> [0,2,3][int(1.5)] = 2; walk 1: 5 -> 7 -> 5; walk 2: 6 has no neighbour
    out = V.pygcl_rw_sampling(b, start, steps)
    assert edges(out) == both((0, 1), (1, 2), (5, 7))  # visited {0, 1, 2, 5, 6, 7}
    assert torch.equal(out.x, b.x) and torch.equal(out.batch, b.batch)
    alone = V.pygcl_rw_sampling(b, _f64([0.76]), _f64([[0.5, 0.5]]))
    assert edges(alone) == set()  # only node 6 visited


def test_pygcl_random_choice_applies_one_augmentor_to_the_whole_batch():
    b = with_self_loops(graph_b(), "none")
    chosen = set()
    for seed in range(12):
        ref = torch.Generator().manual_seed(seed)
        kind = V.PYGCL[int(float(torch.rand(1, generator=ref, dtype=torch.float64)) * 4)]
        expected = augment(b, kind, 0.3, ref)  # the same generator, after the choice's draw
        got = augment(b, "random_choice", 0.3, torch.Generator().manual_seed(seed))
        assert torch.equal(got.x, expected.x) and edges(got) == edges(expected)
        chosen.add(kind)
    assert chosen == set(V.PYGCL)


@pytest.mark.parametrize("kind", V.PYGCL)
def test_pygcl_augmentors_take_the_generator_s_draws(kind):
    b = graph_b()
    ref = torch.Generator().manual_seed(3)
    if kind == "rw_sampling":
        expected = V.pygcl_rw_sampling(
            b,
            torch.rand(1000, generator=ref, dtype=torch.float64),
            torch.rand(1000, 10, generator=ref, dtype=torch.float64),
        )
    else:
        size = {"node_dropping": b.x.shape[0], "feature_masking": b.x.shape[1], "edge_removing": 12}[kind]
        fn = getattr(V, f"pygcl_{kind}")
        expected = fn(b, torch.rand(size, generator=ref, dtype=torch.float64), 0.3)
    got = augment(b, kind, 0.3, torch.Generator().manual_seed(3))
    assert torch.equal(got.x, expected.x) and torch.equal(got.edge_index, expected.edge_index)


# ----------------------------------------------------------------------------- GraphCL: one draw per graph
def test_graphcl_dnodes_cuts_the_dropped_nodes_off_and_the_clean_up_removes_them():
    b = with_self_loops(graph_a(), "graphcl")
    dropped = V.graphcl_drop_nodes(b, _f64([0.3, 0.1, 0.8, 0.05, 0.6]), 0.4)  # int(5 * 0.4) = 2 smallest: 3, 1
    assert dropped.tolist() == [False, True, False, True, False]
    src, dst = b.edge_index
    cut = GraphBatch(b.x, b.edge_index[:, ~dropped[src] & ~dropped[dst]], b.batch, 1)
    assert edges(cut) == loops(0, 2)  # every edge of A touches node 1 or 3
    view = V.graphcl_postprocess(cut)
    # nodes 0 and 2 stay through their self-loops (removed then); node 4, never dropped, has no self-loop and no
    # edge left, so it goes too (GraphCL's off-by-one, reproduced)
    assert torch.equal(view.x, b.x[[0, 2]]) and view.edge_index.shape[1] == 0


def test_graphcl_pedges_removes_int_e_ratio_entries_self_loops_included_and_adds_none():
    b = with_self_loops(graph_a(), "graphcl")  # 10 entries + 4 self-loops
    keys = torch.linspace(0.9, 0.1, 14, dtype=torch.float64)  # the last entries (the self-loops) are smallest
    removed = V.graphcl_permute_edges(b, keys, 0.1)  # int(14 * 0.1) = 1
    assert removed.tolist() == [False] * 13 + [True]  # the self-loop of node 3
    removed = V.graphcl_permute_edges(b, keys, 0.4)  # int(14 * 0.4) = 5: self-loops 3, 2, 1, 0 and entry 1->3
    assert edges(GraphBatch(b.x, b.edge_index[:, ~removed], b.batch, 1)) == edges(graph_a()) - {(3, 1)}


def test_graphcl_subgraph_grows_from_the_start_node_s_first_neighbour_set():
    b = with_self_loops(graph_a(), "graphcl")
    # start floor(0.5 * 5) = node 2; its set: targets of 2 = [1, 2, 3] (2 through its self-loop); keep up to
    # int(5 * 0.2) + 1 = 2 nodes. Draw 0: [1,2,3][int(1.5)] = 2, kept already; draw 1: [1,2,3][int(2.7)] = 3.
    kept = V.graphcl_subgraph(b, _f64([0.5]), _f64([[0.5, 0.9, 0.0, 0.0, 0.0]]))
    assert kept.tolist() == [False, False, True, True, False]
    # start at node 4 (no self-loop): its set is [3]
    assert V.graphcl_subgraph(b, _f64([0.9]), _f64([[0.0] * 5])).tolist() == [False, False, False, True, True]
    # at most n = 5 draws: five draws of node 2 itself keep node 2 alone
    assert V.graphcl_subgraph(b, _f64([0.5]), _f64([[0.4] * 5])).tolist() == [False, False, True, False, False]
    # the view: the edges between kept nodes, then the clean-up (self-loops removed, ids relabelled)
    view = augment_with(b, "subgraph", start=0.5, picks=[0.5, 0.9, 0.0, 0.0, 0.0])
    assert torch.equal(view.x, b.x[[2, 3]]) and edges(view) == both((0, 1))


def augment_with(b, kind, start, picks):
    src, dst = b.edge_index
    kept = V.graphcl_subgraph(b, _f64([start]), _f64([picks]))
    return V.graphcl_postprocess(GraphBatch(b.x, b.edge_index[:, kept[src] & kept[dst]], b.batch, 1))


def test_graphcl_subgraph_never_grows_past_the_first_neighbours_union_bug():
    # a path of 10 nodes with GraphCL's self-loops (0..8): from node 0 the set is [0, 1]; a growing frontier
    # (the bug fixed) would reach int(10 * 0.2) + 1 = 3 nodes, GraphCL's stays at 2
    entries = [p for i in range(9) for p in ((i, i + 1), (i + 1, i))]
    b = with_self_loops(
        GraphBatch(torch.ones(10, 1), torch.tensor(entries).t(), torch.zeros(10, dtype=torch.long), 1), "graphcl"
    )
    kept = V.graphcl_subgraph(b, _f64([0.0]), _f64([[0.99] * 10]))
    assert kept.nonzero().flatten().tolist() == [0, 1]


def test_graphcl_mask_nodes_draws_int_n_ratio_nodes_and_gives_them_the_noise():
    b = graph_a()
    noise = torch.full((5, 3), -7.0, dtype=torch.float64)
    x = V.graphcl_mask_nodes(b, _f64([0.3, 0.1, 0.8, 0.05, 0.6]), noise, 0.4)  # nodes 3 and 1
    expected = b.x.clone()
    expected[[1, 3]] = -7.0
    assert torch.equal(x, expected)


def test_graphcl_views_take_the_generator_s_draws_and_clean_up_where_gsimclr_does():
    b = with_self_loops(graph_a(), "graphcl")
    ref = torch.Generator().manual_seed(4)
    dropped = V.graphcl_drop_nodes(b, torch.rand(5, generator=ref, dtype=torch.float64), 0.4)
    src, dst = b.edge_index
    expected = V.graphcl_postprocess(GraphBatch(b.x, b.edge_index[:, ~dropped[src] & ~dropped[dst]], b.batch, 1))
    got = augment(b, "dnodes", 0.4, torch.Generator().manual_seed(4))
    assert torch.equal(got.x, expected.x) and torch.equal(got.edge_index, expected.edge_index)

    ref = torch.Generator().manual_seed(4)
    removed = V.graphcl_permute_edges(b, torch.rand(14, generator=ref, dtype=torch.float64), 0.4)
    got = augment(b, "pedges", 0.4, torch.Generator().manual_seed(4))  # alone: no clean-up
    assert torch.equal(got.edge_index, b.edge_index[:, ~removed]) and torch.equal(got.x, b.x)

    ref = torch.Generator().manual_seed(4)
    noise = torch.randn(5, 3, generator=ref, dtype=torch.float64) * 0.5 + 0.5
    x = V.graphcl_mask_nodes(b, torch.rand(5, generator=ref, dtype=torch.float64), noise, 0.4)
    got = augment(b, "mask_nodes", 0.4, torch.Generator().manual_seed(4))  # alone: self-loops stay
    assert torch.equal(got.x, x) and torch.equal(got.edge_index, b.edge_index)
    assert int((got.x != b.x).any(1).sum()) == 2


def test_graphcl_random4_draws_one_augmentation_per_graph_and_always_cleans_up():
    gs = [with_self_loops(graph_a(), "graphcl") for _ in range(40)]
    from deepaug.domains.graph.data import concat_batches

    b = gs[0]
    for other in gs[1:]:
        b = concat_batches(b, other)
    ref = torch.Generator().manual_seed(0)
    choice = (torch.rand(40, generator=ref, dtype=torch.float64) * 4).floor().long()
    assert set(choice.tolist()) == {0, 1, 2, 3}  # dnodes, pedges, subgraph, mask_nodes (aug.py L274-282)
    view = augment(b, "random4", 0.1, torch.Generator().manual_seed(0))
    assert not bool((view.edge_index[0] == view.edge_index[1]).any())  # no self-loop is left, whatever the choice
    counts = torch.bincount(view.batch, minlength=40)
    for k in range(40):
        # at 0.1: dnodes drops int(0.5) = 0 nodes, mask_nodes masks 0, pedges removes int(1.4) = 1 entry, which
        # leaves every node touched (node 4 keeps one of its two entries): the five nodes stay
        if choice[k] in (0, 1, 3):
            assert counts[k] == 5
        else:
            assert 1 <= counts[k] <= 2  # subgraph: int(5 * 0.2) + 1 nodes at most
    again = augment(b, "random4", 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(again.x, view.x) and torch.equal(again.edge_index, view.edge_index)


def test_counts_at_the_recipe_ratio_on_the_synthetic_graphs(synthetic_pt):
    from deepaug.domains.graph.data import load_graphs

    b = with_self_loops(load_graphs(synthetic_pt).batch(torch.arange(24)), "graphcl")
    n = torch.bincount(b.batch, minlength=24)
    out = augment(b, "mask_nodes", 0.1, torch.Generator().manual_seed(1))
    changed = torch.bincount(b.batch[(out.x != b.x).any(1)], minlength=24)
    assert torch.equal(changed, n // 10)  # int(node_num / 10) of every graph
    e = torch.bincount(b.batch[b.edge_index[0]], minlength=24)
    out = augment(b, "pedges", 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(torch.bincount(out.batch[out.edge_index[0]], minlength=24), e - e // 10)


def test_unknown_views_and_ratios_are_refused():
    b = graph_a()
    assert augment(b, "none", 0.1, torch.Generator()) is b
    with pytest.raises(ValueError, match="graph augmentation must be one of"):
        augment(b, "dropN", 0.1, torch.Generator())  # the semi-supervised code's name: not a view here
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\]"):
        augment(b, "dnodes", 1.5, torch.Generator())
    assert set(AUGMENTATIONS) == {"none", "random_choice", *V.PYGCL, *V.GRAPHCL, "random2", "random3", "random4"}
