"""Graph data: TU files read through PyG's TUDataset into the prepared file, the feature rule for
datasets without node labels, the offline errors, the synthetic demo set, and batch collation."""

import urllib.error

import pytest
import torch
from tu_files import toy_graphs, write_tu

from deepaug.domains.graph.data import (
    GraphSet,
    concat_batches,
    load_graphs,
    prepare_graph_dataset,
    synthetic_graphs,
)
from deepaug.errors import DataUnavailableError


def _graph(gs: GraphSet, i: int):
    lo, hi = int(gs.node_ptr[i]), int(gs.node_ptr[i + 1])
    elo, ehi = int(gs.edge_ptr[i]), int(gs.edge_ptr[i + 1])
    return gs.x[lo:hi], gs.edge_index[:, elo:ehi], hi - lo


def test_tu_files_are_read_through_tudataset(toy_tu, toy_pt):
    raw_dir, graphs = toy_tu
    gs = load_graphs(toy_pt)
    assert (raw_dir / "MUTAG" / "processed" / "data.pt").is_file(), "TUDataset processed the raw files"
    assert len(gs) == len(graphs) and gs.num_classes == 2 and gs.num_features == 3
    for i, (n, edges, label, labels) in enumerate(graphs):
        x, ei, n_read = _graph(gs, i)
        assert n_read == n
        assert set(map(tuple, ei.t().tolist())) == {(u, v) for a, b in edges for u, v in ((a, b), (b, a))}
        assert torch.equal(x, torch.nn.functional.one_hot(torch.tensor(labels), 3).float())  # node labels one-hot
        assert int(gs.y[i]) == (0 if label == -1 else 1)  # -1/+1 -> 0/1


def test_missing_node_labels_get_constant_or_degree_features(tmp_path):
    graphs = toy_graphs(12, seed=3)
    write_tu(tmp_path, "IMDB-BINARY", graphs, node_labels=False)
    const = load_graphs(prepare_graph_dataset("IMDB-BINARY", tmp_path / "c.pt", tmp_path, download=False))
    assert const.num_features == 1 and bool((const.x == 1).all())  # GraphCL unsupervised_TU/aug.py L80-94
    deg = load_graphs(prepare_graph_dataset("IMDB-BINARY", tmp_path / "d.pt", tmp_path, download=False,
                                            missing_features="degree"))
    max_degree = max(max(sum(1 for e in edges for v in e if v == k) for k in range(n)) for n, edges, _, _ in graphs)
    assert deg.num_features == max_degree + 1
    for i, (n, edges, _, _) in enumerate(graphs):
        x, _, _ = _graph(deg, i)
        degrees = [sum(1 for e in edges for v in e if v == k) for k in range(n)]
        assert x.argmax(1).tolist() == degrees and bool((x.sum(1) == 1).all())


def test_offline_and_unknown_datasets_fail_naming_the_dataset(tmp_path, monkeypatch):
    with pytest.raises(DataUnavailableError, match=r"TU dataset 'PROTEINS' is not in .*downloads are off.*PROTEINS.zip"):
        prepare_graph_dataset("PROTEINS", tmp_path / "p.pt", tmp_path, download=False)
    from torch_geometric.datasets import TUDataset

    def offline(self):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(TUDataset, "download", offline)
    with pytest.raises(DataUnavailableError, match=r"could not obtain TU dataset 'NCI1'.*no route to host.*NCI1.zip"):
        prepare_graph_dataset("NCI1", tmp_path / "n.pt", tmp_path, download=True)
    with pytest.raises(DataUnavailableError, match=r"unknown graph dataset 'CORA'; known: synthetic"):
        prepare_graph_dataset("CORA", tmp_path / "c.pt", tmp_path)
    assert not list(tmp_path.glob("*.pt"))


def test_synthetic_set_is_deterministic_balanced_and_undirected(synthetic_pt):
    gs = load_graphs(synthetic_pt)
    again = synthetic_graphs()
    assert len(gs) == len(again) == 300 and gs.num_classes == 3 and gs.num_features == 1
    assert torch.bincount(gs.y).tolist() == [100, 100, 100]
    sizes = (gs.node_ptr[1:] - gs.node_ptr[:-1])
    assert int(sizes.min()) >= 10 and int(sizes.max()) <= 30
    for i in range(len(gs)):
        _, ei, n = _graph(gs, i)
        assert torch.equal(ei, again[i][1]) and n == again[i][2] and int(gs.y[i]) == again[i][3]
        pairs = set(map(tuple, ei.t().tolist()))
        assert pairs == {(v, u) for u, v in pairs} and all(u != v for u, v in pairs)
    # the families differ in structure: Barabasi-Albert graphs have hubs, rings of cliques high clustering
    deg_max = torch.tensor([int(torch.bincount(_graph(gs, i)[1][0]).max()) for i in range(len(gs))]).float()
    assert deg_max[gs.y == 1].mean() > deg_max[gs.y == 0].mean() + 2


def test_batch_matches_pyg_collation(toy_pt):
    from torch_geometric.data import Batch, Data

    gs = load_graphs(toy_pt)
    index = [5, 0, 17, 3]
    ours = gs.batch(index)
    ref = Batch.from_data_list([Data(x=_graph(gs, i)[0], edge_index=_graph(gs, i)[1]) for i in index])
    assert torch.equal(ours.x, ref.x) and torch.equal(ours.edge_index, ref.edge_index)
    assert torch.equal(ours.batch, ref.batch) and ours.num_graphs == 4
    assert ours.y.tolist() == [int(gs.y[i]) for i in index]
    both = concat_batches(ours, gs.batch([1, 2]))
    assert both.num_graphs == 6
    assert both.batch.max() == 5 and int(both.edge_index.max()) < both.x.shape[0]
    second = gs.batch([1, 2])
    assert torch.equal(both.edge_index[:, ours.edge_index.shape[1]:] - ours.x.shape[0], second.edge_index)
