"""rank_layers: the pipeline's layer-selection rule on a user's model and data loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepaug.analysis.analyze import layer_outputs
from deepaug.analysis.layer_choice import neighbour_similarity, recommend_layer
from deepaug.analysis.layer_ranking import rank_layers
from deepaug.analysis.similarity import cka_matrix


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 3))


def loader(n_batches=3, batch=20, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 6, generator=g), torch.zeros(batch)) for _ in range(n_batches)]


def test_scores_are_the_pipelines_rule_on_the_cka_matrix():
    model = mlp()
    names = ["0", "1", "2", "3", "4"]
    r = rank_layers(model, loader(), names, n_samples=50)
    x = torch.cat([b[0] for b in loader()])[:50]
    feats, h = [], x
    with torch.no_grad():
        for layer in model:
            h = layer(h)
            feats.append(h)
    matrix = cka_matrix(feats, "linear")
    np.testing.assert_allclose(r.matrix, matrix, atol=1e-6)
    for s in r.ranked:
        assert s.score == pytest.approx(neighbour_similarity(matrix, s.index), abs=1e-6)
        assert s.name == names[s.index]
    assert r.best.index == recommend_layer(matrix, list(range(5)))
    assert [s.score for s in r.ranked] == sorted((s.score for s in r.ranked), reverse=True)
    assert r.n_samples == 50 and r.names == names
    assert "rank" in str(r) and "2" in str(r)


def test_two_identical_neighbours_are_ranked_first():
    # layer 3 (an identity: a copy of layer 2's output) and 2 have CKA 1 with each other, the most co-adapted
    # pair; each scores (1 + its other neighbour's CKA) / 2, above the score of that neighbour (an end: its CKA)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 12), nn.Identity(), nn.Tanh(), nn.Linear(12, 3))
    r = rank_layers(model, loader(), ["0", "2", "3", "5"], n_samples=40)
    score = {s.name: s.score for s in r.ranked}
    assert r.matrix[1, 2] == pytest.approx(1.0)
    assert score["2"] > score["0"] and score["3"] > score["5"] and r.best.name in {"2", "3"}


def test_candidates_restrict_the_recommendation_not_the_neighbours():
    model = mlp()
    full = rank_layers(model, loader(), ["0", "1", "2", "3", "4"], n_samples=40)
    part = rank_layers(model, loader(), ["0", "1", "2", "3", "4"], n_samples=40, candidates=[3, 4])
    assert [s.index for s in part.ranked] == sorted([3, 4], key=lambda k: -neighbour_similarity(full.matrix, k))
    with pytest.raises(ValueError, match="candidates"):
        rank_layers(model, loader(), ["0", "1"], candidates=[5])


def test_the_pipelines_layer_map_is_the_default(tmp_path):
    from deepaug.domains.vision.models import build_vision_model

    torch.manual_seed(0)
    model = build_vision_model("resnet18", width=8).eval()
    x = torch.randn(24, 3, 16, 16)
    r = rank_layers(model, [x], n_samples=24)
    feats = layer_outputs(model, lambda: model(x), len(model.deepaug_layers()))
    np.testing.assert_allclose(r.matrix, cka_matrix(feats, "linear"), atol=1e-6)
    assert len(r.names) == 7 and r.names[0].startswith("0 ")


def test_token_means_leave_padding_out():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, input_ids, attention_mask):
            h = self.a(input_ids)
            return self.c(torch.tanh(self.b(torch.tanh(h))))

    torch.manual_seed(0)
    model = Tokens()
    x = torch.randn(30, 5, 4)
    mask = torch.ones(30, 5, dtype=torch.long)
    mask[::2, 3:] = 0
    x2 = x.clone()
    x2[::2, 3:] = 100.0  # only padded positions change
    one = rank_layers(model, [{"input_ids": x, "attention_mask": mask}], ["a", "b", "c"], n_samples=30)
    two = rank_layers(model, [{"input_ids": x2, "attention_mask": mask}], ["a", "b", "c"], n_samples=30)
    np.testing.assert_allclose(one.matrix, two.matrix, atol=1e-6)


def test_node_level_outputs_are_pooled_per_graph():
    class Graphs:  # the two attributes rank_layers reads from a PyG Batch
        def __init__(self, x, batch, num_graphs):
            self.x, self.batch, self.num_graphs = x, batch, num_graphs

    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 8))
    batch = torch.arange(10).repeat_interleave(3)  # 10 graphs of 3 nodes
    g = Graphs(torch.randn(30, 3), batch, 10)
    r = rank_layers(model, [g], ["0", "1", "2"], n_samples=10, forward=lambda m, b: m(b.x))
    assert r.n_samples == 10


def test_clear_errors_and_the_training_mode_restored():
    model = mlp().train()
    with pytest.raises(ValueError, match="no layer map"):
        rank_layers(model, loader())
    with pytest.raises(ValueError, match="has no module 'nope'"):
        rank_layers(model, loader(), ["0", "nope"])
    with pytest.raises(ValueError, match="at least two layers"):
        rank_layers(model, loader(), ["0"])
    with pytest.raises(ValueError, match="n_samples"):
        rank_layers(model, loader(), ["0", "2"], n_samples=1)

    class Split(nn.Module):  # a layer with a row per token next to one with a row per example
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 4), nn.Linear(4, 4)

        def forward(self, x):
            return self.b(self.a(x).reshape(-1, 4).repeat(2, 1))

    with pytest.raises(ValueError, match="different numbers of rows"):
        rank_layers(Split(), loader(), ["a", "b"])
    rank_layers(model, loader(), ["0", "2"], n_samples=20)
    assert model.training
