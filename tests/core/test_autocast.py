"""Deep Augmentation under bf16 autocast, with CUDA's dtype flow emulated on the CPU (the
``cuda_like_autocast`` fixture of tests/cuda_emulation.py: CUDA autocast has no float32 rule for
``linalg.qr/svd/eigh``, so a bf16 tensor reaches them on a GPU and they raise; CPU autocast hides that)."""

import numpy as np
import pytest
import torch

from deepaug import DeepAugment


def _bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _spectrum(n=256, d=40, seed=0):
    """Activations with a clear top component (std ~9 vs 1) along a random unit axis, plus an offset."""
    g = torch.Generator().manual_seed(seed)
    top = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
    return torch.randn(n, d, generator=g) + 9.0 * torch.randn(n, 1, generator=g) * top + 2.0, top


# ----------------------------------------------------------------------------- the emulation itself
def test_emulation_reproduces_the_cuda_crash_of_the_old_code(cuda_like_autocast):
    """What the op did before: float32 activations into torch.pca_lowrank inside the autocast region.
    Its matmuls come out bf16, and qr, with no CUDA autocast rule, refuses them."""
    x, _ = _spectrum()
    with _bf16(), pytest.raises(NotImplementedError, match=r"\"geqrf_cuda\" not implemented for 'BFloat16'"):
        torch.pca_lowrank(x.float(), q=6, center=True)
    assert cuda_like_autocast.linalg_dtypes == [("torch.linalg.qr", torch.bfloat16)]


def test_plain_cpu_autocast_hides_the_crash():
    """Why CPU tests never saw it: CPU autocast casts qr/svd inputs back to float32."""
    x, _ = _spectrum()
    with _bf16():
        _, _, v = torch.pca_lowrank(x, q=6, center=True)
    assert v.dtype == torch.float32
    for op in ("aten::linalg_qr", "aten::linalg_svd"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, "AutocastCPU")


# ----------------------------------------------------------------------------- the op under autocast
# on CUDA, text blocks end in an fp32 LayerNorm (float32 activations); conv stages give bf16 ones
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("pca_over,shape", [("rows", (64, 4, 5, 5)), ("tokens", (8, 12, 16))])
def test_pca_under_emulated_cuda_autocast_runs_in_float32(cuda_like_autocast, dtype, pca_over, shape):
    torch.manual_seed(0)
    x = (torch.randn(*shape) * torch.linspace(0.2, 5, shape[-1])).to(dtype)
    op = DeepAugment(kind="pca", p=1.0, pca_over=pca_over, seed=0)
    torch.manual_seed(1)  # pca_lowrank's random test matrix
    with _bf16():
        y = op(x)
    seen = cuda_like_autocast.linalg_dtypes
    assert {name for name, _ in seen} == {"torch.linalg.qr", "torch.linalg.svd"}
    assert all(d == torch.float32 for _, d in seen), seen
    assert y.dtype == dtype and y.shape == x.shape

    torch.manual_seed(1)
    ref = DeepAugment(kind="pca", p=1.0, pca_over=pca_over, seed=0)(x.float())  # fp32, no autocast
    if dtype == torch.float32:
        assert torch.equal(y, ref), "autocast must not change the op on float32 activations"
    else:  # bf16 in, bf16 out: the fp32 result rounded once
        torch.testing.assert_close(y.float(), ref, rtol=1.6e-2, atol=1e-2)


def test_pca_under_autocast_removes_the_component_and_backpropagates(cuda_like_autocast):
    x, top = _spectrum()
    x = x.to(torch.bfloat16).requires_grad_()
    with _bf16():
        y = DeepAugment(kind="pca", p=1.0, stop_gradient=False, seed=0)(x)
    y.float().pow(2).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad.float()).all()
    centred = y.detach().float() - y.detach().float().mean(0)
    assert (centred @ top).std() < 0.05 * (x.detach().float() @ top).std(), "the top component is removed"


@pytest.mark.parametrize("kind", ["dropout", "pca"])
def test_hooked_op_inside_autocast_keeps_the_layer_dtype(cuda_like_autocast, kind):
    from deepaug import target_module
    from deepaug.domains.vision.models import build_vision_model

    torch.manual_seed(0)
    model = build_vision_model("resnet18", width=4, proj_dim=8)
    DeepAugment(kind=kind, p=0.5, seed=0).attach(target_module(model, 2))
    seen = {}
    target_module(model, 2).register_forward_hook(lambda m, a, o: seen.__setitem__("out", o.dtype))
    with _bf16():
        z = model(torch.randn(16, 3, 8, 8))
    z.float().sum().backward()
    assert seen["out"] == torch.bfloat16 and z.dtype == torch.bfloat16


# ----------------------------------------------------------------------------- one step of each trainer


@pytest.mark.parametrize(
    "objective,method,layer,stop_gradient",
    [
        ("contrastive", "pca", 2, True),
        ("contrastive", "pca", 5, False),
        ("contrastive", "dropout", 3, True),
        ("supervised", "pca", 3, False),
        ("supervised", "dropout", 6, True),
    ],
)
def test_vision_step_under_emulated_cuda_bf16(
    tmp_path, tiny_digits_npz, cuda_like_autocast, objective, method, layer, stop_gradient
):
    from deepaug.domains.vision.train import VisionPretrainSettings, pretrain

    s = VisionPretrainSettings(
        width=4,
        proj_dim=16,
        batch_size=32,
        epochs=1,
        warmup_epochs=0,
        lr=0.1,
        precision="bf16",
        device="cpu",
        objective=objective,
        method=method,
        layer=layer,
        stop_gradient=stop_gradient,
    )
    prov = pretrain(s, tiny_digits_npz, tmp_path / "out", tmp_path / "ckpt")
    assert prov["steps"] == 1 and np.isfinite(prov["final_loss"])
    assert cuda_like_autocast.autocast_calls == [("cpu", "bf16")]
    if method == "pca":
        assert cuda_like_autocast.linalg_dtypes, "the PCA op did not run"
        assert all(d == torch.float32 for _, d in cuda_like_autocast.linalg_dtypes)


def _text_settings(**overrides):
    from deepaug.domains.text.train import TextPretrainSettings

    base = dict(
        batch_size=8,
        max_steps=1,
        eval_every=1,
        eval_max_len=8,
        max_len=12,
        precision="bf16",
        device="cpu",
        seed=1,
        pca_over="tokens",
    )
    return TextPretrainSettings(**dict(base, **overrides))


@pytest.mark.parametrize("method,layer", [("pca", 1), ("pca", 3), ("dropout", 2)])
def test_text_contrastive_step_and_eval_under_emulated_cuda_bf16(
    tmp_path, tiny_model_dir, text_files, cuda_like_autocast, method, layer
):
    """One SimCSE step, the dev scoring after it (``encode`` under autocast) and the evaluation."""
    from deepaug.domains.text.evaluate import TextEvalSettings, evaluate
    from deepaug.domains.text.train import pretrain

    corpus, dev = text_files
    s = _text_settings(method=method, layer=layer, stop_gradient=method == "pca")
    prov = pretrain(s, tiny_model_dir, corpus, dev, tmp_path / "out", tmp_path / "ckpt")
    assert prov["steps"] == 1 and np.isfinite(prov["final_loss"]) and np.isfinite(prov["dev_spearman"])
    if method == "pca":
        assert cuda_like_autocast.linalg_dtypes and all(d == torch.float32 for _, d in cuda_like_autocast.linalg_dtypes)
    n_training_calls = len(cuda_like_autocast.autocast_calls)
    assert n_training_calls >= 2 and set(cuda_like_autocast.autocast_calls) == {("cpu", "bf16")}

    result = evaluate(
        TextEvalSettings(precision="bf16", device="cpu", eval_max_len=8),
        tmp_path / "out" / "model.pt",
        {"ws": dev},
        tmp_path / "eval.json",
    )
    assert np.isfinite(result["sts_ws"])
    assert len(cuda_like_autocast.autocast_calls) > n_training_calls  # evaluation encoded under autocast too


def test_text_supervised_step_under_emulated_cuda_bf16(tmp_path, tiny_model_dir, cuda_like_autocast):
    from deepaug.domains.text.data import prepare_task
    from deepaug.domains.text.train import pretrain

    train = prepare_task("simlex999_train", tmp_path / "train.parquet")
    test = prepare_task("simlex999_test", tmp_path / "test.parquet")
    s = _text_settings(objective="supervised", method="pca", layer=2, stop_gradient=False)
    prov = pretrain(s, tiny_model_dir, train, test, tmp_path / "out", tmp_path / "ckpt")
    assert prov["steps"] == 1 and np.isfinite(prov["final_loss"])
    assert cuda_like_autocast.linalg_dtypes and all(d == torch.float32 for _, d in cuda_like_autocast.linalg_dtypes)


def test_encode_under_autocast_gives_float32_vectors_close_to_fp32(tiny_model_dir, cuda_like_autocast):
    """Dev scoring and evaluation encode under autocast; the vectors come back float32 and close to fp32's."""
    from transformers import AutoTokenizer

    from deepaug.domains.text.evaluate import encode
    from deepaug.domains.text.models import build_text_model

    model = build_text_model(str(tiny_model_dir))
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    sentences = ["a cat sat on the mat", "dogs bark", "the stock market fell sharply today"]
    device = torch.device("cpu")
    fp32 = encode(model, tok, sentences, 16, device, "fp32")
    bf16 = encode(model, tok, sentences, 16, device, "bf16")
    assert cuda_like_autocast.autocast_calls == [("cpu", "fp32"), ("cpu", "bf16")]
    assert bf16.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(bf16, fp32).min() > 0.99
