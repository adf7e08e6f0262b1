"""detach_p: under stop-gradient, each transformed row is detached with probability detach_p.

Pinned here: which rows get a zero input-gradient (the detached ones, exactly: the row and detach masks
against autograd on a tiny layer); detach_p = 1 is the paper's stop-gradient and draws nothing more;
detach_p = 0 is stop_gradient=False exactly; the detach draws come after the rows and the dropout units;
identity at eval; a detach_p below 1 without stop-gradient is refused; and the default op's numbers and
random stream are those of the op before detach_p existed (digests taken at commit 68873c4).
"""

import hashlib

import pytest
import torch
from torch import nn

from deepaug import DeepAugment


def exact(n, d, offset=0):
    """Values that every platform computes alike (multiples of 1/4), so the digests below are portable."""
    return ((torch.arange(n * d).reshape(n, d) * 7 + offset) % 17 - 8).float() / 4


def digest(op, calls=3, n=24, d=10, groups=None):
    """Row masks, dropout outputs, input gradients (dropout) and the generator's state after ``calls``."""
    h = hashlib.sha256()
    for c in range(calls):
        x = exact(n, d, c).requires_grad_(True)
        w = exact(n, d, c + 5)
        if groups is not None:
            with op.grouped(groups, int(groups.max()) + 1):
                y = op(x)
        else:
            y = op(x)
        (y * w).sum().backward()
        h.update(op.last_mask.numpy().tobytes())
        if op.kind == "dropout":
            h.update(y.detach().numpy().tobytes())
            h.update(x.grad.numpy().tobytes())
    for _, state in sorted(op.rng_state().items()):
        h.update(state.numpy().tobytes())
    return h.hexdigest()[:16]


# Taken with the op of commit 68873c4 (before detach_p) on the same inputs.
BEFORE = {
    "dropout_bernoulli_sg": ("dede8c8bc4e62ee1", dict(kind="dropout", rate=0.5, p=0.5, stop_gradient=True, seed=3)),
    "dropout_bernoulli_nosg": (
        "4ca065dc8295cba2",
        dict(kind="dropout", rate=0.125, p=0.5, stop_gradient=False, seed=4),
    ),
    "dropout_one_sided": ("e6d4acbc261b61c0", dict(kind="dropout", rate=0.5, p=0.5, selection="one_sided", seed=5)),
    "dropout_two_sided": ("6643ea849e87ee6d", dict(kind="dropout", rate=0.25, selection="two_sided", seed=6)),
    "pca_sg": ("a82892c1027d5e4b", dict(kind="pca", p=0.5, stop_gradient=True, seed=7)),
    "pca_nosg": ("df76bdc5094f6b67", dict(kind="pca", p=0.5, stop_gradient=False, seed=8)),
}


@pytest.mark.parametrize("case", sorted(BEFORE))
def test_the_default_gives_the_numbers_and_draws_of_the_op_before_detach_p(case):
    expected, kwargs = BEFORE[case]
    assert digest(DeepAugment(**kwargs)) == expected
    assert digest(DeepAugment(**kwargs, detach_p=1.0)) == expected


def test_the_default_grouped_op_gives_the_numbers_of_the_op_before_detach_p():
    groups = torch.arange(24) // 3
    assert digest(DeepAugment(kind="dropout", rate=0.5, p=0.5, seed=9), groups=groups) == "95896201e155766f"


def _input_grad(op, x, w):
    """The op's output and d(sum(y * w))/dx through a tiny layer (rows independent): x -> Linear -> op."""
    torch.manual_seed(0)
    layer = nn.Linear(x.shape[1], x.shape[1])
    x = x.clone().requires_grad_(True)
    pre = layer(x)
    pre.retain_grad()
    y = op(pre)
    (y * w).sum().backward()
    return y.detach(), x.grad, pre.grad, layer


@pytest.mark.parametrize("detach_p", [0.3, 0.5, 0.8])
def test_the_detached_rows_and_only_they_get_no_input_gradient(detach_p):
    """Dropout: a detached row's input gradient is zero; an undetached transformed row's is the gradient
    through the dropout mask (as without stop-gradient); an untransformed row's is the plain one."""
    x, w = torch.randn(400, 16, generator=torch.Generator().manual_seed(1)), torch.randn(400, 16)
    op = DeepAugment(kind="dropout", rate=0.25, p=0.5, stop_gradient=True, detach_p=detach_p, seed=2)
    y, grad_x, grad_pre, layer = _input_grad(op, x, w)
    mask, detach = op.last_mask, op.last_detach_mask
    assert torch.equal(detach, mask & detach), "only transformed rows are detached"
    assert 0 < int(detach.sum()) < int(mask.sum()), "the draw should detach some transformed rows, not all"
    zero_rows = (grad_x == 0).all(dim=1)
    assert torch.equal(zero_rows, detach), "exactly the detached rows get a zero input-gradient"
    # the gradient at the layer's output, row by row: 0 (detached), w * keep / (1 - rate) (transformed,
    # kept), w (untransformed)
    with torch.no_grad():
        pre = layer(x)
    keep_scale = torch.where(pre != 0, y / pre, torch.zeros_like(pre))
    expected = torch.where(detach[:, None], 0.0, torch.where(mask[:, None], w * keep_scale, w))
    torch.testing.assert_close(grad_pre, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_x, expected @ layer.weight.detach(), rtol=1e-5, atol=1e-5)


def test_pca_constant_detached_rows_get_no_input_gradient_and_the_others_the_projection_s():
    x, w = torch.randn(300, 8, generator=torch.Generator().manual_seed(3)), torch.randn(300, 8)
    op = DeepAugment(kind="pca", p=0.5, stop_gradient=True, detach_p=0.5, pca_grad="constant", seed=4)
    _, grad_x, grad_pre, _ = _input_grad(op, x, w)
    mask, detach = op.last_mask, op.last_detach_mask
    assert 0 < int(detach.sum()) < int(mask.sum())
    assert torch.equal((grad_x == 0).all(dim=1), detach)
    assert torch.equal(grad_pre[~mask], w[~mask]), "untransformed rows backpropagate as usual"
    live = mask & ~detach  # transformed, not detached: w minus its component along the removed direction
    residual = w[live] - grad_pre[live]
    direction = torch.linalg.svd(residual, full_matrices=False).Vh[0]
    torch.testing.assert_close(residual, (w[live] @ direction)[:, None] * direction, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kind="dropout", rate=0.5),
        dict(kind="pca", pca_grad="through"),
        dict(kind="pca", pca_grad="constant"),
        dict(kind="dropout", rate=0.5, selection="one_sided"),
    ],
    ids=["dropout", "pca-through", "pca-constant", "one-sided"],
)
def test_detach_p_0_is_stop_gradient_false_exactly(kwargs):
    x, w = torch.randn(64, 8, generator=torch.Generator().manual_seed(5)), torch.randn(64, 8)
    a = DeepAugment(**kwargs, p=0.5, stop_gradient=True, detach_p=0.0, seed=6)
    b = DeepAugment(**kwargs, p=0.5, stop_gradient=False, seed=6)
    for _ in range(2):  # the streams stay together: detach_p 0 draws nothing
        torch.manual_seed(0)  # torch.pca_lowrank's random start comes from the global generator
        ya, ga, gpa, _ = _input_grad(a, x, w)
        torch.manual_seed(0)
        yb, gb, gpb, _ = _input_grad(b, x, w)
        assert torch.equal(ya, yb) and torch.equal(ga, gb) and torch.equal(gpa, gpb)
        assert not a.last_detach_mask.any()
    assert all(torch.equal(a.rng_state()[k], b.rng_state()[k]) for k in b.rng_state())


def test_detach_p_1_detaches_every_transformed_row_as_the_paper_s_stop_gradient():
    x, w = torch.randn(64, 8, generator=torch.Generator().manual_seed(7)), torch.randn(64, 8)
    a = DeepAugment(kind="dropout", p=0.5, stop_gradient=True, detach_p=1.0, seed=8)
    b = DeepAugment(kind="dropout", p=0.5, stop_gradient=True, seed=8)
    ya, ga, _, _ = _input_grad(a, x, w)
    yb, gb, _, _ = _input_grad(b, x, w)
    assert torch.equal(ya, yb) and torch.equal(ga, gb)
    assert torch.equal(a.last_detach_mask, a.last_mask)
    assert torch.equal((ga == 0).all(dim=1), a.last_mask)


def test_the_detach_draws_come_after_the_rows_and_the_dropout_units():
    """The rows and masks of detach_p < 1 are those of detach_p = 1 (same stream, same order), and the
    detach decisions are the next uniforms of the op's generator, one per row."""
    n, d, p, rate, detach_p = 32, 6, 0.5, 0.5, 0.5
    x = torch.ones(n, d)
    op = DeepAugment(kind="dropout", rate=rate, p=p, stop_gradient=True, detach_p=detach_p, seed=11)
    y = op(x)
    g = torch.Generator().manual_seed(11)
    rows = torch.rand(n, generator=g) < p
    keep = torch.rand(n, d, generator=g) >= rate
    detach = torch.rand(n, generator=g) < detach_p
    assert torch.equal(op.last_mask, rows)
    assert torch.equal(op.last_detach_mask, rows & detach)
    torch.testing.assert_close(y, torch.where(rows[:, None], keep.float() / (1 - rate), x), rtol=0, atol=0)
    first = DeepAugment(kind="dropout", rate=rate, p=p, stop_gradient=True, seed=11)
    assert torch.equal(first(x), y), "detach_p changes no value of the first call"


def test_about_detach_p_of_the_transformed_rows_are_detached():
    op = DeepAugment(kind="dropout", p=1.0, stop_gradient=True, detach_p=0.3, seed=0)
    op(torch.randn(4000, 3))
    assert op.last_mask.all()
    assert abs(op.last_detach_mask.float().mean().item() - 0.3) < 0.03


def test_a_graph_is_detached_whole():
    """Grouped rows (the nodes of a graph): one decision per transformed graph, every node of it alike."""
    groups = torch.arange(600) // 3  # 200 graphs of 3 nodes
    op = DeepAugment(kind="dropout", p=0.5, stop_gradient=True, detach_p=0.5, seed=1)
    with op.grouped(groups, 200):
        op(torch.randn(600, 4))
    per_graph = op.last_detach_mask.view(200, 3)
    assert (per_graph.all(dim=1) | ~per_graph.any(dim=1)).all(), "a graph's nodes are detached together"
    assert torch.equal(op.last_detach_mask, op.last_mask & op.last_detach_mask)
    assert 0.15 < per_graph[:, 0].float().mean().item() < 0.35  # p * detach_p = 0.25 of the graphs


def test_eval_mode_is_the_identity_with_any_detach_p():
    x = torch.randn(16, 5)
    assert torch.equal(DeepAugment(p=1.0, detach_p=0.5).eval()(x), x)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_detach_p_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match=rf"DeepAugment detach_p must be in \[0, 1\], got {bad}"):
        DeepAugment(detach_p=bad)


def test_detach_p_below_1_without_stop_gradient_is_refused():
    with pytest.raises(ValueError, match="detach_p 0.5 detaches a fraction of the transformed rows, which needs"):
        DeepAugment(stop_gradient=False, detach_p=0.5)
    DeepAugment(stop_gradient=False, detach_p=1.0)  # the default: nothing to refuse


def test_run_settings_pass_detach_p_to_the_op_and_refuse_it_without_stop_gradient():
    from deepaug.core.settings import RunSettings

    s = RunSettings(method="dropout", layer=2, detach_p=0.25)
    s.validate()
    assert s.build_augment().detach_p == 0.25
    with pytest.raises(ValueError, match="detach_p 0.25 detaches a fraction .* needs stop_gradient true"):
        RunSettings(method="dropout", layer=2, stop_gradient=False, detach_p=0.25).validate()
    with pytest.raises(ValueError, match=r"detach_p .* must be in \[0, 1\], got 2"):
        RunSettings(method="dropout", layer=2, detach_p=2).validate()
