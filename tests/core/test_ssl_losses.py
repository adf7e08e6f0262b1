"""The non-contrastive losses (deepaug.core.losses) against their papers' formulas written out here element by
element, on random inputs, and against tiny cases worked by hand. lightly (which has tested versions) is not a
dependency: it brings pytorch-lightning; these formulas are the independent implementation."""

import math

import pytest
import torch

from deepaug.core.losses import barlow_twins_loss, byol_loss, negative_cosine, vicreg_loss


def _norm(v):
    return math.sqrt(sum(x * x for x in v))


def _rows(t):
    return t.double().tolist()


def paper_byol(p, z):
    """Grill et al. 2020, Eq. 2: ||q/||q|| - z'/||z'||||^2, the mean over the rows."""
    total = 0.0
    for q, t in zip(_rows(p), _rows(z)):
        qn, tn = _norm(q), _norm(t)
        total += sum((a / qn - b / tn) ** 2 for a, b in zip(q, t))
    return total / p.shape[0]


def paper_simsiam(p, z):
    """Chen & He 2021, Eq. 1: D(p, z) = -p/||p|| . z/||z||, the mean over the rows."""
    return -sum(sum(a * b for a, b in zip(q, t)) / (_norm(q) * _norm(t)) for q, t in zip(_rows(p), _rows(z))) / len(p)


def paper_vicreg(z1, z2, lam=25.0, mu=25.0, nu=1.0, eps=1e-4):
    """Bardes et al. 2022, Eq. 1-6, with the invariance term a mean over elements as the official code's
    F.mse_loss (facebookresearch/vicreg main_vicreg.py) and solo-learn's: s = 1/(nd) sum ||z_i - z'_i||^2;
    v(Z) = 1/d sum_j max(0, 1 - sqrt(Var(z^j) + eps)); c(Z) = 1/d sum_{i != j} C(Z)_ij^2."""
    a, b = _rows(z1), _rows(z2)
    n, d = len(a), len(a[0])
    s = sum((a[i][j] - b[i][j]) ** 2 for i in range(n) for j in range(d)) / (n * d)

    def v_and_c(z):
        mean = [sum(z[i][j] for i in range(n)) / n for j in range(d)]
        cov = [[sum((z[k][i] - mean[i]) * (z[k][j] - mean[j]) for k in range(n)) / (n - 1) for j in range(d)]
               for i in range(d)]  # fmt: skip
        v = sum(max(0.0, 1 - math.sqrt(cov[j][j] + eps)) for j in range(d)) / d
        c = sum(cov[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
        return v, c

    (v1, c1), (v2, c2) = v_and_c(a), v_and_c(b)
    return lam * s + mu * (v1 + v2) + nu * (c1 + c2)


def paper_barlow(z1, z2, lambd, scale):
    """Zbontar et al. 2021, Eq. 1-2: C_ij = sum_b a_bi b_bj / (sqrt(sum_b a_bi^2) sqrt(sum_b b_bj^2)) of the
    mean-centred outputs; L = sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2 (times solo-learn's scale)."""
    a, b = _rows(z1), _rows(z2)
    n, d = len(a), len(a[0])

    def centred(z):
        mean = [sum(z[k][j] for k in range(n)) / n for j in range(d)]
        return [[z[k][j] - mean[j] for j in range(d)] for k in range(n)]

    a, b = centred(a), centred(b)
    na = [math.sqrt(sum(a[k][i] ** 2 for k in range(n))) for i in range(d)]
    nb = [math.sqrt(sum(b[k][j] ** 2 for k in range(n))) for j in range(d)]
    c = [[sum(a[k][i] * b[k][j] for k in range(n)) / (na[i] * nb[j]) for j in range(d)] for i in range(d)]
    on = sum((1 - c[i][i]) ** 2 for i in range(d))
    off = sum(c[i][j] ** 2 for i in range(d) for j in range(d) if i != j)
    return scale * (on + lambd * off)


@pytest.mark.parametrize("seed", [0, 1])
def test_losses_match_the_papers_formulas_on_random_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    z1, z2 = torch.randn(12, 6, generator=g), torch.randn(12, 6, generator=g) * 0.7 + 0.3
    assert byol_loss(z1, z2).item() == pytest.approx(paper_byol(z1, z2), abs=1e-5)
    assert negative_cosine(z1, z2).item() == pytest.approx(paper_simsiam(z1, z2), abs=1e-6)
    assert vicreg_loss(z1, z2).item() == pytest.approx(paper_vicreg(z1, z2), rel=1e-5)
    assert vicreg_loss(z1, z2, 2.0, 3.0, 0.5).item() == pytest.approx(paper_vicreg(z1, z2, 2.0, 3.0, 0.5), rel=1e-5)
    # the eps of the batch standardisation (1e-5, solo-learn's BatchNorm1d) is the only difference from the paper's
    assert barlow_twins_loss(z1, z2, 0.0051, 0.1).item() == pytest.approx(paper_barlow(z1, z2, 0.0051, 0.1), rel=1e-4)


def test_hand_checked_tiny_cases():
    # cos = 1 and 0: D = -(1 + 0) / 2; BYOL = 2 - 2 * 0.5
    p, z = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[2.0, 0.0], [3.0, 0.0]])
    assert negative_cosine(p, z).item() == pytest.approx(-0.5)
    assert byol_loss(p, z).item() == pytest.approx(1.0)
    # VICReg: z1 = [[1, 0], [-1, 0]], z2 = [[1, 1], [-1, -1]]. Invariance: mean of (0, 1, 0, 1) = 0.5.
    # Variance: z1's dims have Var 2 and 0, so hinges 0 and 1 - sqrt(1e-4) = 0.99, mean 0.495; z2's both Var 2: 0.
    # Covariance: z1's off-diagonal 0; z2's C = [[2, 2], [2, 2]]: (4 + 4) / 2 = 4. 25 * 0.5 + 25 * 0.495 + 4.
    z1, z2 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    assert vicreg_loss(z1, z2).item() == pytest.approx(28.875, abs=1e-4)
    # Barlow Twins: z1 = [[1, 1], [-1, -1]], z2 = [[1, -1], [-1, 1]] are standardised already; C = [[1, -1], [1, -1]]:
    # on-diagonal (1 - 1)^2 + (1 + 1)^2 = 4, off-diagonal 1 + 1 = 2; lambda 0.5, scale 1: 5 (eps 1e-5: ~1e-4 off)
    z1, z2 = torch.tensor([[1.0, 1.0], [-1.0, -1.0]]), torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    assert barlow_twins_loss(z1, z2, 0.5, 1.0).item() == pytest.approx(5.0, abs=1e-3)
    assert barlow_twins_loss(z1, z1, 0.5, 1.0).item() == pytest.approx(2 * 0.5, abs=1e-3)  # C = all ones


def test_the_target_of_the_cosine_losses_gets_no_gradient():
    p = torch.randn(4, 3, requires_grad=True)
    z = torch.randn(4, 3, requires_grad=True)
    (byol_loss(p, z) + negative_cosine(p, z)).backward()
    assert p.grad is not None and p.grad.abs().sum() > 0
    assert z.grad is None


def test_collapse_is_penalised_by_vicreg_and_barlow_twins():
    g = torch.Generator().manual_seed(3)
    spread = torch.randn(32, 8, generator=g)
    collapsed = torch.ones(32, 8) + 1e-3 * torch.randn(32, 8, generator=g)
    assert vicreg_loss(collapsed, collapsed) > vicreg_loss(spread, spread)
    assert barlow_twins_loss(spread, spread) < 0.01 < barlow_twins_loss(collapsed, collapsed * 0 + torch.randn(32, 8))
