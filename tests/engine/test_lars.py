"""LARS against its formula written out (solo-learn's variant: trust ratio on weight-decayed gradients,
clipped by the lr, biases and norms plain SGD), on a tiny model, over three steps with momentum."""

import math

import pytest
import torch

from deepaug.engine.lars import LARS


def _by_hand(w, g, buf, lr, wd, eta, momentum, clip, one_dim):
    """One step of one tensor, element lists: the paper's Eq. 6 with solo-learn's clipping and exclusion."""
    if not one_dim:
        wn = math.sqrt(sum(x * x for x in w))
        gn = math.sqrt(sum(x * x for x in g))
        if wn and gn:
            ratio = eta * wn / (gn + wn * wd + 1e-8)
            ratio = min(ratio / lr, 1.0) if clip else ratio
            g = [(gi + wd * wi) * ratio for gi, wi in zip(g, w)]
    buf = list(g) if buf is None else [momentum * b + gi for b, gi in zip(buf, g)]
    return [wi - lr * b for wi, b in zip(w, buf)], buf


@pytest.mark.parametrize("clip", [True, False])
def test_three_steps_match_the_formula(clip):
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(3, 2, dtype=torch.float64))
    bias = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
    lr, wd, eta, momentum = 0.3, 1e-4, 0.02, 0.9
    opt = LARS([weight, bias], lr=lr, momentum=momentum, weight_decay=wd, eta=eta, clip_lr=clip)
    w, b = weight.detach().flatten().tolist(), bias.detach().tolist()
    wbuf = bbuf = None
    for step in range(3):
        grad_w, grad_b = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
        weight.grad, bias.grad = grad_w.clone(), grad_b.clone()
        opt.step()
        w, wbuf = _by_hand(w, grad_w.flatten().tolist(), wbuf, lr, wd, eta, momentum, clip, one_dim=False)
        b, bbuf = _by_hand(b, grad_b.tolist(), bbuf, lr, wd, eta, momentum, clip, one_dim=True)
        assert weight.detach().flatten().tolist() == pytest.approx(w, rel=1e-12), step
        assert bias.detach().tolist() == pytest.approx(b, rel=1e-12), step


def test_the_trust_ratio_shrinks_a_large_gradients_step():
    # a weight of norm 1 and a gradient of norm 1000: plain SGD would step 0.3 * 1000; LARS steps eta * ||w||
    w = torch.nn.Parameter(torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    w.grad = torch.tensor([[1000.0, 0.0]], dtype=torch.float64)
    LARS([w], lr=0.3, momentum=0.0, eta=0.02, clip_lr=False).step()
    assert w.detach()[0, 0].item() == pytest.approx(1.0 - 0.3 * 0.02 * 1.0, rel=1e-6)


def test_a_zero_weight_is_stepped_as_plain_sgd():
    w = torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))
    w.grad = torch.ones(2, 2, dtype=torch.float64)
    LARS([w], lr=0.1, momentum=0.0, weight_decay=0.5).step()
    assert torch.equal(w.detach(), torch.full((2, 2), -0.1, dtype=torch.float64))
