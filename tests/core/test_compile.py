"""torch.compile (``train.compile: true``) with Deep Augmentation attached: it compiles once, breaks the
graph only at the op's eager draw (``DeepAugment._draw``), never recompiles per step, and trains
exactly like eager mode.

The op's randomness comes from its own ``torch.Generator``, which Dynamo cannot trace; the draws run
in a function Dynamo skips. A compile backend that needs no GPU and no C++ toolchain (``aot_eager``:
Dynamo capture + AOTAutograd, eager kernels) checks the capture and the autograd split on the CPU.
"""

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend
from torch._dynamo.utils import counters

from deepaug import DeepAugment, target_module
from deepaug.core.losses import nt_xent
from deepaug.domains.vision.models import build_vision_model

STEPS = 4


def _model_and_op(kind, stop_gradient, layer, detach_p=1.0):
    torch.manual_seed(0)
    model = build_vision_model("resnet18", width=4, in_channels=3, proj_dim=8)
    op = DeepAugment(kind=kind, p=0.5, stop_gradient=stop_gradient, seed=7, detach_p=detach_p)
    op.attach(target_module(model, layer))
    return model, op


def _train(model, op, forward, steps=STEPS, after_step=None):
    """A few SimCLR steps (two views of 8 images, NT-Xent, SGD) with the data and the global RNG fixed."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = torch.Generator().manual_seed(1)
    batches = [torch.randn(16, 3, 8, 8, generator=data) for _ in range(steps)]
    torch.manual_seed(3)  # torch.pca_lowrank draws its random test matrix from the global RNG
    op.reseed(11)
    losses, masks = [], []
    model.train()
    for x in batches:
        loss = nt_xent(forward(x), 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        masks.append(op.last_mask.clone())
        if after_step is not None:
            after_step()
    return torch.stack(losses), masks


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()
    counters.clear()


@pytest.mark.parametrize(
    "kind,layer,stop_gradient,detach_p",
    [
        ("dropout", 3, True, 1.0),
        ("pca", 3, False, 1.0),  # ~15 s each on 2 cores: the other combinations are "slow"
        pytest.param("dropout", 3, False, 1.0, marks=pytest.mark.slow),
        pytest.param("pca", 3, True, 1.0, marks=pytest.mark.slow),
        pytest.param("pca", 5, True, 1.0, marks=pytest.mark.slow),
        pytest.param("dropout", 6, False, 1.0, marks=pytest.mark.slow),
        pytest.param("dropout", 3, True, 0.5, marks=pytest.mark.slow),  # the detach draw in the eager part too
        pytest.param("pca", 3, True, 0.5, marks=pytest.mark.slow),
    ],
)
def test_compiled_resnet_matches_eager_without_recompiling(fresh_dynamo, kind, layer, stop_gradient, detach_p):
    model, op = _model_and_op(kind, stop_gradient, layer, detach_p)
    eager_losses, eager_masks = _train(model, op, model)
    eager_params = [p.detach().clone() for p in model.parameters()]

    model, op = _model_and_op(kind, stop_gradient, layer, detach_p)
    backend = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, backend=backend)
    frames_after_each_step = []
    losses, masks = _train(model, op, compiled, after_step=lambda: frames_after_each_step.append(backend.frame_count))

    # compiled once, during the first step; every later step reuses the same graphs
    assert frames_after_each_step[0] > 0
    assert frames_after_each_step == [frames_after_each_step[0]] * STEPS, (
        f"torch.compile recompiled during training: frames compiled after each step {frames_after_each_step}"
    )
    # the only graph break is the op's eager draw (row selection, dropout mask or PCA basis)
    reasons = list(counters["graph_break"])
    assert reasons and all("DeepAugment._draw" in r for r in reasons), reasons
    # same rows transformed, same losses and weights as in eager mode
    assert all(torch.equal(a, b) for a, b in zip(masks, eager_masks))
    assert any(0 < int(m.sum()) < m.numel() for m in masks)
    torch.testing.assert_close(losses, eager_losses, rtol=1e-5, atol=1e-6)
    for p, e in zip(model.parameters(), eager_params):
        torch.testing.assert_close(p.detach(), e, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_compiled_op_keeps_stop_gradient(fresh_dynamo):
    """Compiled, with every row transformed and stop-gradient: layers at or below the target get no gradient."""
    k = 2
    torch.manual_seed(0)
    model = build_vision_model("resnet18", width=4, proj_dim=8)
    DeepAugment(kind="pca", p=1.0, stop_gradient=True, seed=0).attach(target_module(model, k))
    torch.compile(model, backend="aot_eager")(torch.randn(8, 3, 8, 8)).pow(2).sum().backward()
    for i, (_, module) in enumerate(model.deepaug_layers()):
        for p in module.parameters():
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            assert (torch.count_nonzero(g) == 0) == (i <= k), f"layer {i}, target {k}"


@pytest.mark.slow
def test_switching_train_and_eval_compiles_each_mode_once(fresh_dynamo):
    """Dev scoring toggles eval/train every few steps (text training): one graph set per mode, reused."""
    model, op = _model_and_op("dropout", True, 3)
    backend = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, backend=backend)
    x = torch.randn(16, 3, 8, 8)
    frames = []
    for _ in range(3):
        model.train()
        compiled(x)
        model.eval()
        with torch.no_grad():
            compiled(x)
        frames.append(backend.frame_count)
    assert frames[0] > 0 and frames == [frames[0]] * 3, frames
