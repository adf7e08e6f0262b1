"""The op's core: which rows are transformed, what gradient flows where, identity at eval."""

import pytest
import torch
from torch import nn

from deepaug import DeepAugment, target_module
from deepaug.domains.vision.models import build_vision_model


class Chain(nn.Module):
    """Five row-independent layers (no batch statistics), with a layer map like the backbones'."""

    def __init__(self, d=6):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(d, d), nn.Tanh()) for _ in range(5)])

    def deepaug_layers(self):
        return [(f"block {i}", b) for i, b in enumerate(self.blocks)]

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


def grads(model):
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}


def block_of(name):
    return int(name.split(".")[1])


@pytest.mark.parametrize("kind", ["dropout", "pca"])
@pytest.mark.parametrize("k", [0, 2, 3])
def test_all_rows_stop_gradient_zeroes_layers_at_or_below_k(kind, k):
    torch.manual_seed(0)
    model = Chain()
    aug = DeepAugment(kind=kind, p=1.0, stop_gradient=True, seed=1)
    aug.attach(target_module(model, k))
    model(torch.randn(16, 6)).pow(2).sum().backward()
    for name, g in grads(model).items():
        if block_of(name) <= k:
            assert torch.count_nonzero(g) == 0, f"{name} got gradient through detached rows"
        else:
            assert g.abs().sum() > 0, f"{name} above the targeted layer got no gradient"


@pytest.mark.parametrize("kind", ["dropout", "pca"])
def test_without_stop_gradient_every_layer_gets_gradient(kind):
    torch.manual_seed(0)
    model = Chain()
    DeepAugment(kind=kind, p=1.0, stop_gradient=False, seed=1).attach(target_module(model, 2))
    model(torch.randn(16, 6)).pow(2).sum().backward()
    assert all(g.abs().sum() > 0 for g in grads(model).values())


def _lower_and_upper(model, k):
    lower = [p for n, p in model.named_parameters() if block_of(n) <= k]
    upper = [p for n, p in model.named_parameters() if block_of(n) > k]
    return lower, upper


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_mixed_rows_lower_gradient_comes_from_untransformed_rows_only(stop_gradient):
    """p=0.5: the gradient reaching layers <= k equals the backprop of dL/dh through the
    untransformed rows alone (stop-gradient), or through every row with the dropout mask applied
    to the transformed ones (no stop-gradient)."""
    torch.manual_seed(0)
    k = 2
    model = Chain()
    aug = DeepAugment(kind="dropout", rate=0.5, p=0.5, stop_gradient=stop_gradient, seed=3)
    captured = {}

    def keep_pre(mod, args, out):
        out.retain_grad()
        captured["pre"] = out

    # hook order: record the pre-transform activation, then transform it, then record the result
    target = target_module(model, k)
    target.register_forward_hook(keep_pre)
    aug.attach(target)

    def keep_post(mod, args, out):
        out.retain_grad()
        captured["post"] = out
        return out

    target.register_forward_hook(keep_post)
    x = torch.randn(32, 6)
    model(x).pow(2).sum().backward(retain_graph=True)
    mask = aug.last_mask
    assert 0 < int(mask.sum()) < 32, "the draw should mix transformed and untransformed rows"
    lower, upper = _lower_and_upper(model, k)
    got = [p.grad.clone() for p in lower]

    dl_dh = captured["post"].grad  # gradient of the loss w.r.t. the transformed layer output
    assert dl_dh[mask].abs().sum() > 0, "layers above k must see the transformed rows"
    pre, post = captured["pre"], captured["post"]
    if stop_gradient:
        upstream = dl_dh * (~mask).unsqueeze(1)
    else:
        # d post / d pre for transformed rows is the inverted-dropout mask: post = pre * m / (1 - rate)
        scale = torch.where(pre.abs() > 0, post / pre, torch.zeros_like(pre)).detach()
        upstream = torch.where(mask.unsqueeze(1), dl_dh * scale, dl_dh)
    expected = torch.autograd.grad(pre, lower, grad_outputs=upstream, retain_graph=True)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-7)
    # untransformed rows are passed through bit for bit
    assert torch.equal(post[~mask], pre[~mask])


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5])
def test_resnet_stop_gradient_per_layer(k):
    """The same guarantee on the real backbone, with BatchNorm, at every index below the head."""
    torch.manual_seed(0)
    model = build_vision_model("resnet18", width=4, proj_dim=8)
    DeepAugment(kind="dropout", p=1.0, stop_gradient=True, seed=0).attach(target_module(model, k))
    model(torch.randn(8, 3, 8, 8)).pow(2).sum().backward()
    layer_of = {}
    for i, (_, m) in enumerate(model.deepaug_layers()):
        for p in m.parameters():
            layer_of[id(p)] = i
    for name, p in model.named_parameters():
        i = layer_of[id(p)]
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        if i <= k:
            assert torch.count_nonzero(g) == 0, f"{name} (layer {i}) got gradient, target {k}"
        else:
            assert g.abs().sum() > 0, f"{name} (layer {i}) got no gradient, target {k}"


def test_eval_mode_is_identity():
    torch.manual_seed(0)
    model = build_vision_model("resnet18", width=4, proj_dim=8).eval()
    x = torch.randn(6, 3, 8, 8)
    ref = model(x)
    aug = DeepAugment(kind="dropout", p=1.0, rate=0.5)
    handle = aug.attach(target_module(model, 3))
    assert torch.equal(model(x), ref)  # model in eval
    model.train()
    aug.eval()
    model.eval()
    assert torch.equal(model(x), ref)
    handle.remove()
    direct = torch.randn(5, 7)
    assert torch.equal(DeepAugment(p=1.0).eval()(direct), direct)


def test_attach_in_training_changes_output_and_remove_restores():
    torch.manual_seed(0)
    model = Chain().train()
    x = torch.randn(8, 6)
    ref = model(x)
    handle = DeepAugment(kind="dropout", p=1.0).attach(model.blocks[1])
    assert not torch.allclose(model(x), ref)
    handle.remove()
    assert torch.equal(model(x), ref)


def test_tuple_outputs_transform_first_element_only():
    class TupleOut(nn.Module):
        def forward(self, x):
            return x * 1.0, torch.ones(3)

    mod = TupleOut()
    DeepAugment(kind="dropout", p=1.0, rate=0.5).attach(mod)
    h, extra = mod(torch.ones(4, 100))
    assert set(h.unique().tolist()) <= {0.0, 2.0} and (h == 0).any()
    assert torch.equal(extra, torch.ones(3))


def test_dropout_statistics():
    aug = DeepAugment(kind="dropout", rate=0.25, p=1.0, seed=0)
    x = torch.ones(400, 500)
    y = aug(x)
    zero_frac = (y == 0).float().mean().item()
    assert abs(zero_frac - 0.25) < 0.01
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.75))
    assert abs(y.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_row_selection_bernoulli_one_and_two_sided():
    x = torch.randn(4000, 3)
    aug = DeepAugment(kind="dropout", rate=0.5, p=0.5, seed=0)
    y = aug(x)
    mask = aug.last_mask
    assert abs(mask.float().mean().item() - 0.5) < 0.03
    assert torch.equal(y[~mask], x[~mask])
    one = DeepAugment(selection="one_sided", p=1.0)
    one(x)
    assert one.last_mask[:2000].all() and not one.last_mask[2000:].any()
    two = DeepAugment(selection="two_sided")
    two(x)
    assert two.last_mask.all()
    # a positive pair: both views transformed ~25%, exactly one ~50%, none ~25%
    first, second = mask[:2000], mask[2000:]
    both = (first & second).float().mean().item()
    one_only = (first ^ second).float().mean().item()
    assert abs(both - 0.25) < 0.04 and abs(one_only - 0.5) < 0.04


def test_seeded_and_reproducible():
    x = torch.randn(64, 10)
    a, b, c = (DeepAugment(kind="dropout", seed=s) for s in (7, 7, 8))
    ya, yb, yc = a(x), b(x), c(x)
    assert torch.equal(ya, yb) and not torch.equal(ya, yc)
    a.reseed(7)
    assert torch.equal(a(x), ya)
    state = a.rng_state()
    y1 = a(x)
    a.set_rng_state(state)
    assert torch.equal(a(x), y1)


@pytest.mark.parametrize("component", [1, -1])
def test_pca_removes_the_chosen_component(component):
    torch.manual_seed(0)
    # data with a clear spectrum: std 10, 6, 5, 4, 3, 2.5, then 0.5, along random orthogonal axes
    basis, _ = torch.linalg.qr(torch.randn(20, 20))
    scales = torch.tensor([10.0, 6, 5, 4, 3, 2.5] + [0.5] * 14)
    x = (torch.randn(500, 20) * scales) @ basis.T + 3.0
    y = DeepAugment(kind="pca", p=1.0, pca_component=component, seed=0)(x)
    change = x - y
    u, s, vh = torch.linalg.svd(change, full_matrices=False)
    assert s[1] < 1e-4 * s[0], "exactly one direction is removed (a rank-one change)"
    idx = 0 if component == 1 else 5  # top component, or the 6th of the six computed
    assert abs(float(vh[0] @ basis[:, idx])) > 0.99, "the removed direction is the chosen component"
    assert ((y - y.mean(0)) @ vh[0]).std() < 1e-4, "no variance is left along it"
    torch.testing.assert_close(y.mean(0), x.mean(0), atol=1e-4, rtol=0)  # centred projection keeps the mean


def test_pca_over_tokens():
    torch.manual_seed(0)
    x = torch.randn(4, 32, 8)
    x[..., 0] *= 20  # the top direction over tokens is feature 0
    y = DeepAugment(kind="pca", p=1.0, pca_over="tokens")(x)
    assert y[..., 0].std() < 0.2 * x[..., 0].std()
    assert y.shape == x.shape


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="kind"):
        DeepAugment(kind="cutout")
    with pytest.raises(ValueError, match="rate"):
        DeepAugment(rate=1.0)
    with pytest.raises(ValueError, match="pca_component"):
        DeepAugment(kind="pca", pca_component=0)
    with pytest.raises(ValueError, match="selection"):
        DeepAugment(selection="both")


def _old_remove_component(x, component=1, rank=6):
    """The PCA op's arithmetic before the autocast fix (rows), kept to pin its fp32 values and gradients."""
    target = x.reshape(x.shape[0], -1)
    with torch.no_grad():
        f = target.float()
        q = min(rank, f.shape[0], f.shape[1])
        k = q - 1 if component == -1 else component - 1
        mean = f.mean(dim=0, keepdim=True)
        _, _, v = torch.pca_lowrank(f, q=q, center=True)
        direction = v[:, k : k + 1]
    t = target.float()
    out = t - ((t - mean) @ direction) @ direction.T
    return out.to(x.dtype).reshape(x.shape), direction


@pytest.mark.parametrize("component", [1, -1])
@pytest.mark.parametrize("shape", [(40, 12), (24, 3, 4, 4)])
def test_pca_fp32_values_and_gradients_are_unchanged_by_the_autocast_fix(component, shape):
    """Without stop-gradient, the fp32 PCA op with ``pca_grad="constant"`` gives the same output and input
    gradient as before the autocast fix, and the basis (and mean) stay constants for autograd:
    dL/dx = w - (w v) v^T."""
    torch.manual_seed(0)
    x = torch.randn(*shape) * torch.linspace(0.5, 4, shape[-1])
    w = torch.randn(*shape)  # dL/dy for L = sum(w * y)

    x_old = x.clone().requires_grad_()
    torch.manual_seed(5)
    y_old, v = _old_remove_component(x_old, component)
    (y_old * w).sum().backward()

    x_new = x.clone().requires_grad_()
    torch.manual_seed(5)  # the same random test matrix inside torch.pca_lowrank
    y_new = DeepAugment(kind="pca", p=1.0, stop_gradient=False, pca_component=component, seed=0, pca_grad="constant")(
        x_new
    )
    (y_new * w).sum().backward()

    torch.testing.assert_close(y_new, y_old, rtol=0, atol=0)
    torch.testing.assert_close(x_new.grad, x_old.grad, rtol=0, atol=0)
    w2 = w.reshape(shape[0], -1)
    projected = (w2 - (w2 @ v) @ v.T).reshape(shape)
    torch.testing.assert_close(x_new.grad, projected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- PCA gradient (pca_grad)
def _authors_pca_augment(x, this_x, size, type="normal"):
    """The authors' PCA op, transcribed from bruel-gabrielsson/SimCSE ``simcse/models.py`` L85-129
    (``PCA_augment``; the ``size == 0`` branch, which returns ``this_x``, left out): everything under
    autograd, nothing detached."""
    K = size
    A = x.reshape(-1, x.shape[-1]) if type == "per_token" else x.reshape(len(x), -1)
    mean = A.mean(dim=0)
    (U, S, V) = torch.pca_lowrank(A, q=None, center=True, niter=2)
    C = V[:, :K] if K >= 1 else V[:, K:]
    Ap = this_x.reshape(-1, this_x.shape[-1]) if type == "per_token" else this_x.reshape(len(this_x), -1)
    Ap = Ap - mean
    proj = torch.matmul(Ap, C)
    vecs = torch.matmul(proj, C.permute(1, 0))
    Ap = Ap - vecs
    Ap = Ap + mean
    return Ap.reshape(this_x.size())


def _input_grad(fn, x, w, seed=5):
    """dL/dx for L = sum(w * fn(x)), with pca_lowrank's random test matrix fixed by ``seed``."""
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)
    (g,) = torch.autograd.grad((fn(x) * w).sum(), x)
    return g


@pytest.mark.parametrize("component", [1, -1])
@pytest.mark.parametrize("pca_over,shape", [("rows", (40, 12)), ("rows", (24, 3, 4, 4)), ("tokens", (6, 7, 10))])
def test_pca_grad_through_matches_the_authors_op_under_autograd(component, pca_over, shape):
    """``pca_grad="through"``: the input gradient is autograd's through the batch mean and
    torch.pca_lowrank, as in the authors' op (float64, the same random test matrix)."""
    torch.manual_seed(0)
    x = (torch.randn(*shape) * torch.linspace(0.5, 4, shape[-1])).double()
    w = torch.randn(*shape, dtype=torch.float64)
    op = DeepAugment(
        kind="pca", p=1.0, stop_gradient=False, pca_component=component, pca_over=pca_over, pca_grad="through", seed=0
    )
    kind = "per_token" if pca_over == "tokens" else "normal"
    got = _input_grad(op, x, w)
    expected = _input_grad(lambda t: _authors_pca_augment(t, t, component, kind), x, w)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    torch.manual_seed(5)
    out = op(x)
    torch.manual_seed(5)
    torch.testing.assert_close(out, _authors_pca_augment(x, x, component, kind), rtol=1e-12, atol=1e-12)
    # and it is not the constant-basis gradient w - (w.v)v^T: the basis' own gradient is there
    constant = DeepAugment(
        kind="pca", p=1.0, stop_gradient=False, pca_component=component, pca_over=pca_over, pca_grad="constant", seed=0
    )
    assert (got - _input_grad(constant, x, w)).abs().max() > 1e-3


def test_pca_grad_through_is_the_derivative_of_the_op():
    """Finite differences agree with the through-the-basis gradient (random test matrix held fixed)."""

    def op(t):
        torch.manual_seed(5)
        return DeepAugment(kind="pca", p=1.0, stop_gradient=False, pca_grad="through", seed=0)(t)

    torch.manual_seed(0)
    x = (torch.randn(10, 5) * torch.linspace(0.5, 4, 5)).double().requires_grad_()
    assert torch.autograd.gradcheck(op, (x,))


def test_pca_grad_constant_is_the_projection_and_through_is_the_default():
    torch.manual_seed(0)
    x = (torch.randn(30, 8) * torch.linspace(0.5, 4, 8)).double()
    w = torch.randn(30, 8, dtype=torch.float64)
    constant = DeepAugment(kind="pca", p=1.0, stop_gradient=False, pca_grad="constant", seed=0)
    torch.manual_seed(5)
    with torch.no_grad():
        _, v = constant._pca_basis(x)
    torch.testing.assert_close(_input_grad(constant, x, w), w - (w @ v) @ v.T)
    default = DeepAugment(kind="pca", p=1.0, stop_gradient=False, seed=0)
    assert default.pca_grad == "through"
    through = DeepAugment(kind="pca", p=1.0, stop_gradient=False, pca_grad="through", seed=0)
    torch.testing.assert_close(_input_grad(default, x, w), _input_grad(through, x, w), rtol=0, atol=0)


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_pca_grad_makes_no_difference_with_stop_gradient(p):
    """Stop-gradient detaches the transformed rows, so nothing flows back through the basis: both
    settings give the same gradient (zero on transformed rows, the identity on the others)."""
    torch.manual_seed(0)
    x = torch.randn(32, 6).double()
    w = torch.randn(32, 6, dtype=torch.float64)
    grads = {}
    for grad_mode in ("through", "constant"):
        op = DeepAugment(kind="pca", p=p, stop_gradient=True, pca_grad=grad_mode, seed=4)
        grads[grad_mode] = _input_grad(op, x, w)
        mask = op.last_mask
    torch.testing.assert_close(grads["through"], grads["constant"], rtol=0, atol=0)
    torch.testing.assert_close(grads["through"], w * (~mask).unsqueeze(1), rtol=0, atol=0)


def test_bad_pca_grad_is_rejected():
    with pytest.raises(ValueError, match=r"pca_grad must be one of \('through', 'constant'\), got 'detached'"):
        DeepAugment(kind="pca", pca_grad="detached")


# ---------------------------------------------------------------------------- one-sided selection
@pytest.mark.parametrize("p", [0.25, 0.7])
def test_one_sided_selects_each_view1_row_with_probability_p_and_never_view2(p):
    """The authors' one-sided rule (``simcse/models.py`` L212-219): view 1 only, each row with probability p."""
    n = 2000
    x = torch.randn(2 * n, 3)
    op = DeepAugment(kind="dropout", rate=0.5, p=p, selection="one_sided", seed=0)
    first_view = []
    for _ in range(5):
        y = op(x)
        mask = op.last_mask
        assert not mask[n:].any(), "a row of view 2 was selected"
        assert torch.equal(y[n:], x[n:]), "view 2 must pass through untouched"
        assert torch.equal(y[:n][~mask[:n]], x[:n][~mask[:n]])
        first_view.append(mask[:n])
    rates = torch.stack(first_view).float().mean(1)
    # 2000 Bernoulli(p) rows per call: the standard error is <= 0.012
    assert ((rates - p).abs() < 0.04).all(), rates
    assert not all(torch.equal(first_view[0], m) for m in first_view[1:]), "fresh rows are drawn every call"
    both = (first_view[0] & first_view[1]).float().mean().item()
    assert abs(both - p * p) < 0.04, "calls are independent"


def test_one_sided_p1_transforms_all_of_view1_and_keeps_the_old_random_stream():
    """p = 1 is the earlier rule (every row of view 1) and draws nothing for the rows, so the dropout
    masks are the ones the op drew before p counted for one-sided selection."""
    x = torch.ones(8, 50)
    op = DeepAugment(kind="dropout", rate=0.5, p=1.0, selection="one_sided", seed=3)
    y = op(x)
    assert op.last_mask.tolist() == [True] * 4 + [False] * 4
    keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(3)) >= 0.5
    torch.testing.assert_close(y[:4], (keep.float() * 2.0)[:4], rtol=0, atol=0)
    assert torch.equal(y[4:], x[4:])


def test_one_sided_pca_basis_comes_from_view1():
    """As in the authors' code (view 1 alone goes into ``PCA_augment``): the removed direction is view 1's
    top component even when view 2 varies more along another axis."""
    torch.manual_seed(0)
    n, d = 200, 10
    view1 = torch.randn(n, d)
    view1[:, 0] *= 10  # view 1's top direction: axis 0
    view2 = torch.randn(n, d)
    view2[:, 1] *= 30  # the whole batch's top direction: axis 1
    x = torch.cat([view1, view2])
    y = DeepAugment(kind="pca", p=1.0, selection="one_sided", seed=0)(x)
    _, _, vh = torch.linalg.svd(x[:n] - y[:n], full_matrices=False)
    assert abs(float(vh[0, 0])) > 0.99, "the removed direction is view 1's top component (axis 0)"
    assert torch.equal(y[n:], x[n:])


def test_one_sided_needs_whole_views():
    with pytest.raises(ValueError, match=r"one-sided selection needs a batch of 2 concatenated views, got 7 rows"):
        DeepAugment(selection="one_sided")(torch.randn(7, 3))


# ---------------------------------------------------------------------------- output types
class Emit(nn.Module):
    """Returns ``make(x)``: a stand-in for modules with structured outputs."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def forward(self, x):
        return self.make(x * 1.0)


def _dropped(h):
    return set(h.unique().tolist()) <= {0.0, 2.0} and bool((h == 0).any())


def test_namedtuple_output_transforms_first_field_and_keeps_type():
    from typing import NamedTuple

    class Hidden(NamedTuple):
        states: torch.Tensor
        aux: torch.Tensor

    mod = Emit(lambda x: Hidden(x, torch.ones(3)))
    DeepAugment(kind="dropout", p=1.0, rate=0.5).attach(mod)
    out = mod(torch.ones(4, 100))
    assert type(out) is Hidden and _dropped(out.states) and torch.equal(out.aux, torch.ones(3))


def test_model_output_transforms_last_hidden_state_and_keeps_type():
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    mod = Emit(lambda x: BaseModelOutputWithPooling(last_hidden_state=x, pooler_output=torch.ones(4, 5)))
    DeepAugment(kind="dropout", p=1.0, rate=0.5).attach(mod)
    out = mod(torch.ones(4, 6, 100))
    assert type(out) is BaseModelOutputWithPooling
    assert _dropped(out.last_hidden_state) and _dropped(out[0]) and torch.equal(out.pooler_output, torch.ones(4, 5))


def test_dict_output_transforms_first_tensor_value_and_keeps_type():
    from collections import OrderedDict

    mod = Emit(lambda x: OrderedDict(step=3, features=x, other=torch.ones(2, 2)))
    DeepAugment(kind="dropout", p=1.0, rate=0.5).attach(mod)
    out = mod(torch.ones(4, 100))
    assert type(out) is OrderedDict and list(out) == ["step", "features", "other"]
    assert out["step"] == 3 and _dropped(out["features"]) and torch.equal(out["other"], torch.ones(2, 2))


@pytest.mark.parametrize(
    "make,kind",
    [
        (lambda x: "not a tensor", "str"),
        (lambda x: (None, x), "tuple"),
        (lambda x: {"n": 3}, "dict"),
        (lambda x: [], "list"),
    ],
)
def test_unsupported_output_is_refused_naming_module_and_type(make, kind):
    mod = Emit(make)
    DeepAugment(kind="dropout", p=1.0).attach(mod)
    with pytest.raises(TypeError, match=rf"output of Emit: it returned a {kind}.*Hook a submodule of Emit"):
        mod(torch.ones(4, 10))


@pytest.mark.parametrize("shape,what", [((), "0-d tensor"), ((8,), r"1-d tensor of shape \(8,\)")])
@pytest.mark.parametrize("kind", ["dropout", "pca"])
def test_scalar_and_1d_activations_are_refused(shape, what, kind):
    mod = Emit(lambda x: x.sum() if not shape else x.sum(1))
    DeepAugment(kind=kind, p=1.0).attach(mod)
    x = torch.ones(8, 5)
    with pytest.raises(ValueError, match=rf"\(batch, features, \.\.\.\), but the output of Emit is a {what}"):
        mod(x)
    with pytest.raises(ValueError, match=rf"DeepAugment's input is a {what}"):
        DeepAugment(kind=kind, p=1.0)(torch.ones(shape))
    tuple_mod = Emit(lambda x: (x.sum() if not shape else x.sum(1), x))
    DeepAugment(kind=kind, p=1.0).attach(tuple_mod)
    with pytest.raises(ValueError, match=rf"element 0 of the tuple returned by Emit is a {what}"):
        tuple_mod(x)
