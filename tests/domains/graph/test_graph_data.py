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
from deepaug.errors import DataUnavailableError, DataValidationError


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
    deg = load_graphs(
        prepare_graph_dataset("IMDB-BINARY", tmp_path / "d.pt", tmp_path, download=False, missing_features="degree")
    )
    max_degree = max(max(sum(1 for e in edges for v in e if v == k) for k in range(n)) for n, edges, _, _ in graphs)
    assert deg.num_features == max_degree + 1
    for i, (n, edges, _, _) in enumerate(graphs):
        x, _, _ = _graph(deg, i)
        degrees = [sum(1 for e in edges for v in e if v == k) for k in range(n)]
        assert x.argmax(1).tolist() == degrees and bool((x.sum(1) == 1).all())


def test_offline_and_unknown_datasets_fail_naming_the_dataset(tmp_path, monkeypatch):
    with pytest.raises(
        DataUnavailableError, match=r"TU dataset 'PROTEINS' is not in .*downloads are off.*PROTEINS.zip"
    ):
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
    sizes = gs.node_ptr[1:] - gs.node_ptr[:-1]
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
    assert torch.equal(both.edge_index[:, ours.edge_index.shape[1] :] - ours.x.shape[0], second.edge_index)


# ----------------------------------------------------------------------------- malformed inputs: one line each
def _lines(raw, name, kind):
    return (raw / f"MUTAG_{kind}.txt").read_text().splitlines(keepends=True)


def _set(raw, kind, lines):
    (raw / f"MUTAG_{kind}.txt").write_text("".join(lines))


def _edit(kind, change):
    def apply(raw):
        _set(raw, kind, change(_lines(raw, "MUTAG", kind)))

    return apply


# (what is wrong, how the files are changed, the message): 8 toy graphs of 6-12 nodes; graph 1 owns nodes 1-n1
TU_FAULTS = {
    "fewer labels than graphs": (
        _edit("graph_labels", lambda ls: ls[:-1]),
        r"MUTAG_graph_labels.txt has 7 labels for the 8 graphs of MUTAG_graph_indicator.txt "
        r"\(fewer labels than graphs\)",
    ),
    "extra labels": (
        _edit("graph_labels", lambda ls: ls + ["1\n", "-1\n"]),
        r"MUTAG_graph_labels.txt has 10 labels for the 8 graphs .*\(more labels than graphs\)",
    ),
    "node id 0": (
        _edit("A", lambda ls: ["0, 2\n"] + ls[1:]),
        r"MUTAG_A.txt: line 1 has node id 0, but TU node ids start at 1",
    ),
    "negative node id": (
        _edit("A", lambda ls: ls[:3] + ["2, -3\n"] + ls[4:]),
        r"MUTAG_A.txt: line 4 has node id -3, but TU node ids start at 1",
    ),
    "node id past the node count": (
        _edit("A", lambda ls: ls + ["5, 1000\n"]),
        r"MUTAG_A.txt: line \d+ has node id 1000, but MUTAG_graph_indicator.txt has "
        r"\d+ nodes",
    ),
    "edge joining two graphs": (
        _edit("A", lambda ls: ["1, 15\n"] + ls),
        r"MUTAG_A.txt: line 1 joins node 1 \(graph 1\) to node 15 \(graph 2\) of another graph",
    ),
    "indicator shorter than node labels": (
        _edit("graph_indicator", lambda ls: ls[:-1]),
        r"MUTAG_node_labels.txt has \d+ lines for the \d+ nodes of "
        r"MUTAG_graph_indicator.txt",
    ),
    "indicator skips a graph": (
        _edit("graph_indicator", lambda ls: [v if v != "2\n" else "3\n" for v in ls]),
        r"MUTAG_graph_indicator.txt: graph 2 has no nodes \(line \d+ jumps to graph 3\)",
    ),
    "indicator out of order": (
        _edit("graph_indicator", lambda ls: ls[:1] + ["3\n"] + ls[2:]),
        r"MUTAG_graph_indicator.txt: line 3 goes back from graph 3 to graph 1",
    ),
    "indicator from 0": (
        _edit("graph_indicator", lambda ls: [f"{int(v) - 1}\n" for v in ls]),
        r"MUTAG_graph_indicator.txt: line 1 puts node 1 in graph 0; graph ids start at 1",
    ),
    "no line end at the end": (
        _edit("graph_labels", lambda ls: ls[:-1] + [ls[-1].rstrip("\n")]),
        r"MUTAG_graph_labels.txt: the last line \(line 8\) has no line end, and PyG's TU reader "
        r"drops such a line",
    ),
    "blank line": (_edit("A", lambda ls: ls[:2] + ["\n"] + ls[2:]), r"MUTAG_A.txt: line 3 is blank"),
    "not a number": (
        _edit("node_labels", lambda ls: ls[:4] + ["nan\n"] + ls[5:]),
        r"MUTAG_node_labels.txt: line 5 holds 'nan', not a whole number",
    ),
    "three ids on an edge line": (
        _edit("A", lambda ls: ["1, 2, 3\n"] + ls[1:]),
        r"MUTAG_A.txt: line 1 \('1, 2, 3'\) has 3 comma-separated values, expected two node "
        r"ids",
    ),
    "zero-byte file": (lambda raw: _set(raw, "graph_labels", []), r"MUTAG_graph_labels.txt is empty \(0 bytes\)"),
    "no graph labels": (
        lambda raw: (raw / "MUTAG_graph_labels.txt").unlink(),
        r"has no MUTAG_graph_labels.txt \(one class label per graph\)",
    ),
}


@pytest.mark.parametrize("fault", list(TU_FAULTS))
def test_malformed_tu_files_are_refused_in_one_line_naming_file_and_fault(tmp_path, fault):
    """Today PyG's reader trusts the files: too few labels end in an IndexError, extra labels, a missing last
    line end or a node id past the count are silently dropped or misread, others are reported as a failed
    download. Each is refused before anything is read, naming the file, the line and what is wrong."""
    raw = write_tu(tmp_path, "MUTAG", toy_graphs(8, seed=1))
    change, message = TU_FAULTS[fault]
    change(raw)
    with pytest.raises(DataValidationError, match=message) as info:
        prepare_graph_dataset("MUTAG", tmp_path / "MUTAG.pt", tmp_path, download=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "MUTAG.pt").exists() and not (tmp_path / "MUTAG" / "processed").exists()


def test_a_processed_cache_from_other_raw_files_is_refused(tmp_path):
    """PyG reuses MUTAG/processed/ without reading the raw files again: replaced raw files would be ignored."""
    write_tu(tmp_path, "MUTAG", toy_graphs(8, seed=1))
    prepare_graph_dataset("MUTAG", tmp_path / "a.pt", tmp_path, download=False)
    write_tu(tmp_path, "MUTAG", toy_graphs(10, seed=2))
    with pytest.raises(
        DataValidationError,
        match=r"processed was made from other MUTAG_\*.txt files than those in "
        r".*\(8 graphs instead of 10\); delete .*processed",
    ):
        prepare_graph_dataset("MUTAG", tmp_path / "b.pt", tmp_path, download=False)


def test_node_attributes_without_node_labels_are_a_dataset_without_node_labels(tmp_path):
    """PyG leaves (n, 0) features once the attributes are dropped; they were taken for zero node labels."""
    graphs = toy_graphs(8, seed=1)
    raw = write_tu(tmp_path, "PROTEINS", graphs, node_labels=False)
    (raw / "PROTEINS_node_attributes.txt").write_text(
        "".join(f"{0.5 * i}, 1.0\n" for n, *_ in graphs for i in range(n))
    )
    gs = load_graphs(prepare_graph_dataset("PROTEINS", tmp_path / "p.pt", tmp_path, download=False))
    assert gs.num_features == 1 and bool((gs.x == 1).all()) and gs.features.startswith("constant 1")


def test_a_bad_tu_file_is_one_line_from_the_command_line(tmp_path, capsys):
    from deepaug import cli as top

    raw = write_tu(tmp_path, "MUTAG", toy_graphs(8, seed=1))
    TU_FAULTS["fewer labels than graphs"][0](raw)
    assert (
        top.main(
            [
                "prepare-graph",
                "--dataset",
                "MUTAG",
                "--out",
                str(tmp_path / "m.pt"),
                "--raw-dir",
                str(tmp_path),
                "--download",
                "false",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    labels = raw / "MUTAG_graph_labels.txt"
    assert err.startswith(f"deepaug prepare-graph: error: {labels} has 7 labels for the 8 graphs")


def _prepared(toy_pt, tmp_path, change):
    d = torch.load(toy_pt, weights_only=True)
    change(d)
    out = tmp_path / "MUTAG.pt"
    torch.save(d, out)
    return out


def _nan_at(d, node, feature, value=float("nan")):
    d["x"][node, feature] = value


PREPARED_FAULTS = {
    "NaN feature": (
        lambda d: _nan_at(d, 13, 2),
        r"dataset 'MUTAG' has non-finite node features \(NaN or inf\) at 1 node, first at feature 2 of "
        r"node labels \(one-hot\) of node \d+ in graph 1; training on them would stop with a NaN loss "
        r"\(the data is at fault, not the learning rate\)",
    ),
    "inf feature": (lambda d: _nan_at(d, 0, 0, float("inf")), r"non-finite node features .* of node 0 in graph 0"),
    "edge past the node count": (
        lambda d: d["edge_index"].__setitem__((1, 0), 40),
        r"graph 0 has an edge from node \d+ to node 40, but its nodes are 0-\d+",
    ),
    "negative node id": (lambda d: d["edge_index"].__setitem__((0, 5), -1), r"graph 0 has an edge from node -1"),
    "fewer labels than graphs": (
        lambda d: d.__setitem__("y", d["y"][:-1]),
        r"node_ptr must hold 60 int64 offsets \(one more than the 59 labels of y\)",
    ),
    "node_ptr past x": (
        lambda d: d["node_ptr"].__setitem__(-1, d["node_ptr"][-1] + 3),
        r"node_ptr does not cut the \d+ nodes \(rows of x\) into 60 graphs",
    ),
    "edge_ptr short of edge_index": (
        lambda d: d.__setitem__("edge_index", d["edge_index"][:, :-2]),
        r"edge_ptr does not cut the \d+ edges \(columns of edge_index\) into 60 graphs",
    ),
    "label past num_classes": (lambda d: d["y"].__setitem__(3, 2), r"y must hold labels 0-1 .* found 0-2"),
    "x missing": (lambda d: d.pop("x"), r"'x' is missing or not a tensor"),
}


@pytest.mark.parametrize("fault", list(PREPARED_FAULTS))
def test_inconsistent_prepared_file_is_refused_naming_file_and_fault(tmp_path, toy_pt, fault):
    change, message = PREPARED_FAULTS[fault]
    path = _prepared(toy_pt, tmp_path, change)
    with pytest.raises(DataValidationError, match=message) as info:
        load_graphs(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert text.endswith(
        f"delete it and run the data rule again (python -m deepaug prepare-graph --dataset MUTAG --out {path})"
    )


@pytest.mark.parametrize("cut", [0, 1, 100, -100])
def test_zero_byte_or_truncated_prepared_file_is_refused(tmp_path, toy_pt, cut):
    data = toy_pt.read_bytes()
    path = tmp_path / "MUTAG.pt"
    path.write_bytes(data[:cut])
    expected = "is empty \\(0 bytes" if cut == 0 else "is truncated or not written by torch.save"
    with pytest.raises(
        DataValidationError,
        match=f"^{path}: the prepared graph dataset {expected}.*; delete it and run the data rule again",
    ):
        load_graphs(path)


def test_a_damaged_prepared_file_is_refused(tmp_path, toy_pt):
    """torch.load does not check the zip members' checksums: a flipped byte in a tensor loads as another value."""
    import struct
    import zipfile

    data = bytearray(toy_pt.read_bytes())
    with zipfile.ZipFile(toy_pt) as archive:
        member = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))  # the first tensor's bytes
    name_len, extra_len = struct.unpack("<HH", data[member.header_offset + 26 : member.header_offset + 30])
    data[member.header_offset + 30 + name_len + extra_len + 3] ^= 0xFF  # its local header, then the bytes
    path = tmp_path / "MUTAG.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(
        DataValidationError,
        match=r"the prepared graph dataset is damaged \(.*data/0 does not match "
        r"its checksum\)",
    ):
        load_graphs(path)
