import math

import numpy as np
import pytest
import torch

from deepaug.analysis.layer_choice import neighbour_similarity, recommend_layer
from deepaug.analysis.similarity import alignment, cka_matrix, linear_cka, rbf_cka, uniformity


def _x(n=40, d=12, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_identical_representations_give_one():
    x = _x()
    assert linear_cka(x, x) == pytest.approx(1.0) and rbf_cka(x, x) == pytest.approx(1.0)


def test_linear_cka_invariant_to_orthogonal_transform_and_isotropic_scaling():
    x, y = _x(), _x(seed=1)
    q, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))
    ref = linear_cka(x, y)
    assert linear_cka(x @ q, y) == pytest.approx(ref, abs=1e-10)
    assert linear_cka(3.7 * x, y) == pytest.approx(ref, abs=1e-10)
    assert linear_cka(x + 5.0, y) == pytest.approx(ref, abs=1e-10)  # centring
    assert not linear_cka(x @ torch.diag(torch.linspace(0.1, 10, 12, dtype=torch.float64)), y) == pytest.approx(
        ref, abs=1e-4
    )


def test_linear_cka_matches_the_feature_space_formula():
    x, y = _x(), _x(d=7, seed=3)
    xc, yc = x - x.mean(0), y - y.mean(0)
    direct = (torch.linalg.norm(yc.T @ xc) ** 2 / (torch.linalg.norm(xc.T @ xc) * torch.linalg.norm(yc.T @ yc))).item()
    assert linear_cka(x, y) == pytest.approx(direct, abs=1e-10)


def test_rbf_cka_direct_small_example():
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [2.0], [1.0]], dtype=torch.float64)

    def gram(z):
        sq = (z - z.T) ** 2
        s2 = torch.median(sq[~torch.eye(3, dtype=torch.bool)])
        return torch.exp(-sq / (2 * s2))

    h = torch.eye(3, dtype=torch.float64) - 1 / 3
    k, l = h @ gram(x) @ h, h @ gram(y) @ h
    direct = ((k * l).sum() / torch.sqrt((k * k).sum() * (l * l).sum())).item()
    assert rbf_cka(x, y) == pytest.approx(direct, abs=1e-12)


def test_matrix_is_symmetric_with_unit_diagonal():
    feats = [_x(seed=i) for i in range(4)]
    feats[2] = feats[1] @ torch.eye(12, dtype=torch.float64) * 2
    m = cka_matrix(feats)
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1) and m[1, 2] == pytest.approx(1.0)


def test_layer_selection_rule_on_constructed_matrices():
    m = np.array(
        [
            [1.0, 0.3, 0.2, 0.1],
            [0.3, 1.0, 0.9, 0.2],
            [0.2, 0.9, 1.0, 0.8],
            [0.1, 0.2, 0.8, 1.0],
        ]
    )
    assert neighbour_similarity(m, 2) == pytest.approx(0.85)
    assert neighbour_similarity(m, 0) == pytest.approx(0.3)
    assert recommend_layer(m, [0, 1, 2, 3]) == 2
    assert recommend_layer(m, [0, 1, 3]) == 3  # 0.3, 0.6, 0.8


def test_alignment_and_uniformity_direct():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert alignment(a, b) == pytest.approx((2.0 + 0.0) / 2)
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    d = [4.0, 2.0, 2.0]
    assert uniformity(x) == pytest.approx(math.log(sum(math.exp(-2 * v) for v in d) / 3))
    assert uniformity(torch.ones(5, 3)) == pytest.approx(0.0)  # collapsed: the worst uniformity


def test_the_authors_uniformity_uses_the_distance_not_its_square():
    """bruel-gabrielsson/SimCSE SentEval/senteval/sts.py L167-169: log mean exp(-2 ||x - y||) over pdist."""
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    d = [2.0, math.sqrt(2.0), math.sqrt(2.0)]  # the unit vectors' distances
    assert uniformity(x, squared=False) == pytest.approx(math.log(sum(math.exp(-2 * v) for v in d) / 3))
    assert uniformity(x, squared=False) != pytest.approx(uniformity(x))
    assert uniformity(torch.ones(4, 2), squared=False) == pytest.approx(0.0)
