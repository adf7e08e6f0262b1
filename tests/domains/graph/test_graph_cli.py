"""The graph stages from the command line (the domain's COMMANDS, in the top-level CLI's format), and the
analysis hook: per-layer graph-level activations for CKA and alignment/uniformity."""

import importlib
import json

import pytest
import torch

from deepaug import cli as top
from deepaug.domains.graph.cli import build_parser


@pytest.mark.parametrize(
    "domain, expected",
    [
        ("graph", {"prepare-graph", "pretrain-graph", "eval-graph"}),
        ("vision", {"prepare-data", "prepare-image-folder", "pretrain-vision", "eval-vision"}),
        ("text", {"prepare-text", "pretrain-text", "eval-text", "export-sentence-transformers"}),
    ],
)
def test_each_domain_brings_its_commands_in_the_top_level_format(domain, expected):
    own = importlib.import_module(f"deepaug.domains.{domain}.cli").COMMANDS
    assert set(own) == expected
    merged = top.commands()
    assert set(own) <= set(merged) and not set(own) & set(top.COMMANDS)  # merged, never defined twice
    for name, entry in own.items():
        assert merged[name] == entry
        help_text, setup, handler, module = entry
        assert isinstance(help_text, str) and callable(setup) and callable(handler)
        importlib.import_module(module)


def test_prepare_pretrain_eval_from_flags(tmp_path):
    parser = build_parser()
    data = tmp_path / "synthetic.pt"
    for argv in (
        ["prepare-graph", "--dataset", "synthetic", "--out", str(data)],
        [
            "pretrain-graph",
            "--data",
            str(data),
            "--out-dir",
            str(tmp_path / "run"),
            "--ckpt-dir",
            str(tmp_path / "ckpt"),
            "--epochs",
            "1",
            "--hidden-dim",
            "8",
            "--num-layers",
            "2",
            "--method",
            "pca",
            "--layer",
            "1",
            "--pca-over",
            "graphs",
            "--pca-grad",
            "constant",
            "--stop-gradient",
            "false",
            "--device",
            "cpu",
            "--run",
            "graph/synthetic/pca-L1-nosg/seed0",
        ],
        [
            "eval-graph",
            "--model",
            str(tmp_path / "run" / "model.pt"),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "eval.json"),
            "--svm",
            "svc_rbf",
            "--c-grid",
            "1",
            "--device",
            "cpu",
        ],
    ):
        args = parser.parse_args(argv)
        top.check_inputs(args)
        args.func(args)
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert prov["settings"]["pca_over"] == "graphs" and prov["settings"]["stop_gradient"] is False
    assert prov["settings"]["layer"] == 1 and prov["settings"]["num_layers"] == 2
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["n_graphs"] == 300 and 0 <= result["svm_acc"] <= 100


def test_impossible_flags_are_usage_errors(tmp_path):
    from deepaug.errors import UsageError

    args = build_parser().parse_args(
        ["pretrain-graph", "--data", "x", "--out-dir", "o", "--ckpt-dir", "c", "--aug-ratio", "1.5"]
    )
    with pytest.raises(UsageError, match=r"aug_ratio must be in \[0, 1\]"):
        args.func(args)
    args = build_parser().parse_args(["eval-graph", "--model", "m", "--data", "d", "--out", "o", "--svm", "knn"])
    with pytest.raises(UsageError, match="svm must be one of"):
        args.func(args)


def test_layer_activations_give_l_plus_3_graph_level_matrices(synthetic_pt):
    from torch_geometric.nn import global_add_pool

    from deepaug.analysis.similarity import cka_matrix
    from deepaug.domains.graph.analysis import layer_activations
    from deepaug.domains.graph.data import load_graphs
    from deepaug.domains.graph.models import build_graph_model

    torch.manual_seed(0)
    model = build_graph_model(1, hidden_dim=8, num_layers=3)
    gs = load_graphs(synthetic_pt)
    feats = layer_activations(model, gs, n_samples=50)
    assert len(feats) == 3 + 3 and all(f.shape[0] == 50 for f in feats)
    assert [f.shape[1] for f in feats] == [1, 8, 8, 8, 24, 24]
    b = gs.batch(torch.arange(50))
    model.eval()
    with torch.no_grad():
        z = b.x
        expected = [global_add_pool(z, b.batch, size=50)]
        for layer in model.layers:
            z = layer(z, b.edge_index)
            expected.append(global_add_pool(z, b.batch, size=50))
        expected.append(model.encode(b.x, b.edge_index, b.batch, 50))
        expected.append(model(b.x, b.edge_index, b.batch, 50))
    for got, want in zip(feats, expected):
        torch.testing.assert_close(got, want)
    assert torch.equal(feats[0][:, 0], (b.batch.bincount(minlength=50)).float())  # constant features: node counts
    m = cka_matrix(feats, "linear")
    assert m.shape == (6, 6) and bool((abs(m.diagonal() - 1) < 1e-9).all()) and bool((m == m).all())


def test_graph_analysis_scalars_and_matrices(tmp_path, toy_pt):
    from deepaug.domains.graph.analysis import graph_analysis
    from deepaug.domains.graph.train import GraphPretrainSettings, pretrain

    pretrain(
        GraphPretrainSettings(hidden_dim=8, num_layers=2, epochs=1, batch_size=32, device="cpu"),
        toy_pt,
        tmp_path / "run",
        tmp_path / "ckpt",
    )
    scalars, matrices = graph_analysis(tmp_path / "run" / "model.pt", toy_pt, 40, torch.device("cpu"))
    assert matrices["linear"].shape == matrices["rbf"].shape == (5, 5)
    assert scalars["analysis_samples"] == 40 and 0 <= scalars["alignment"] <= 4 and scalars["uniformity"] <= 0
