"""The authors' recipes as trainer settings: gradient clipping (text: at 1.0, after fp16 unscaling),
SupContrast's loss scale (vision), ``pca_grad`` and the one-sided rule reaching the op, each a flag and a
config key."""

import argparse

import numpy as np
import pytest
import torch

import deepaug.engine.training as T
from deepaug.core.settings import RunSettings
from deepaug.workflow.config import REPO_CONFIG, ConfigError, merge_config, read_yaml, validate_config


# ----------------------------------------------------------------------------- clipping, unit level
def _model_and_batch():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    return model, torch.randn(16, 6)


def _huge_loss(model, x):
    return 1e4 * model(x).pow(2).sum()


def _manual_step(model, x, lr, max_norm):
    """Plain SGD on the gradient clipped by hand: g * min(1, max_norm / (||g|| + 1e-6)), as
    torch.nn.utils.clip_grad_norm_ (and the HF Trainer through it) scales it."""
    params = list(model.parameters())
    grads = torch.autograd.grad(_huge_loss(model, x), params)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coef = min(1.0, max_norm / (float(norm) + 1e-6)) if max_norm > 0 else 1.0
    return [p.detach() - lr * coef * g for p, g in zip(params, grads)], float(norm)


def _grad_norm(optimizer):
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


@pytest.mark.parametrize("scaled", [False, True], ids=["fp32", "fp16-scaler"])
@pytest.mark.parametrize("max_norm", [1.0, 0.0])
def test_optimizer_step_clips_a_huge_gradient_like_a_manual_clipped_step(scaled, max_norm):
    """The parameter update equals a manual SGD step on the clipped gradient; the optimizer sees a
    gradient of norm 1.0. With a GradScaler (fp16), the gradients are unscaled before clipping: clipping
    the scaled ones would leave an update 2**16 times too small."""
    model, x = _model_and_batch()
    expected, norm_before = _manual_step(model, x, 0.1, max_norm)
    assert norm_before > 1e3, "the test needs a gradient far above the clipping norm"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(_grad_norm(opt)))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16, enabled=scaled)
    returned = T.optimizer_step(optimizer, scaler, _huge_loss(model, x), 0.1, max_norm)
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)
    if max_norm > 0:
        assert abs(seen[0] - 1.0) < 1e-4, f"the optimizer saw a gradient of norm {seen[0]}"
        assert abs(float(returned) - norm_before) < 1e-3 * norm_before, "returns the norm before clipping"
    else:
        assert returned is None and abs(seen[0] - norm_before) < 1e-3 * norm_before  # scaler.step unscales


def test_fp16_overflow_skips_the_step_even_with_clipping():
    """An inf gradient (fp16 overflow): after unscale_, clip_grad_norm_ turns it into NaN, and the scaler,
    which saw the inf while unscaling, still skips the step and lowers its scale."""
    model, x = _model_and_batch()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    loss = model(x).sum() * torch.tensor(float("inf"))
    T.optimizer_step(optimizer, scaler, loss, 0.1, 1.0)
    assert all(torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))
    assert scaler.get_scale() < 2.0**16


# ----------------------------------------------------------------------------- settings and flags
def test_defaults_follow_the_authors_recipes():
    from deepaug.domains.text.train import TextPretrainSettings
    from deepaug.domains.vision.train import VisionPretrainSettings

    text, vision = TextPretrainSettings(), VisionPretrainSettings()
    assert text.max_grad_norm == 1.0 and vision.max_grad_norm == 0.0  # SimCSE's HF Trainer clips; SupContrast not
    assert vision.loss == "supcon"
    assert text.pca_grad == vision.pca_grad == "through"
    config = validate_config(read_yaml(REPO_CONFIG))  # with the schema's defaults filled in
    assert config["text"]["train"]["max_grad_norm"] == 1.0 and config["vision"]["train"]["max_grad_norm"] == 0
    assert config["vision"]["train"]["loss"] == "supcon"
    assert config["vision"]["augment"]["pca_grad"] == config["text"]["augment"]["pca_grad"] == "through"
    # the author's text PCA: the 6th (last) of 6 components of whole-sentence rows
    assert config["text"]["augment"]["pca_component"] == -1 and config["text"]["augment"]["pca_over"] == "rows"
    # the supervised text counterpart as the author ran it: SentEval's relatedness head, Adam 1e-4, batch 64
    sup = config["text"]["supervised"]["train"]
    assert (sup["sup_head"], sup["lr"], sup["batch_size"], sup["sup_patience"]) == ("relatedness", 1.0e-4, 64, 3)


def test_settings_reach_the_op_and_the_flags_exist():
    from deepaug.domains.arguments import add_dataclass_arguments
    from deepaug.domains.text.train import TextPretrainSettings
    from deepaug.domains.vision.train import VisionPretrainSettings

    op = RunSettings(method="pca", layer=1, pca_grad="constant", selection="one_sided", p=0.3).build_augment()
    assert (op.pca_grad, op.selection, op.p) == ("constant", "one_sided", 0.3)
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, VisionPretrainSettings)
    a = parser.parse_args(["--loss", "nt_xent", "--pca-grad", "constant", "--max-grad-norm", "2.5"])
    assert (a.loss, a.pca_grad, a.max_grad_norm) == ("nt_xent", "constant", 2.5)
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, TextPretrainSettings)
    assert parser.parse_args(["--max-grad-norm", "0"]).max_grad_norm == 0.0


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("pca_grad", "detached", "pca_grad must be one of ('through', 'constant')"),
        ("max_grad_norm", -1.0, "max_grad_norm must be a finite number >= 0 (0 turns gradient clipping off), got -1.0"),
        ("max_grad_norm", float("nan"), "max_grad_norm must be a finite number >= 0"),
        ("loss", "infonce", "loss must be one of ('supcon', 'nt_xent')"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(field, value, message):
    from deepaug.domains.vision.train import VisionPretrainSettings

    with pytest.raises(ValueError) as exc:
        VisionPretrainSettings(**{field: value}).validate()
    assert message in str(exc.value)


BASE = {"vision": {"datasets": ["digits"], "sweep": [{"method": ["none", "pca"], "layer": 3}]}}


@pytest.mark.parametrize(
    "section,patch,key",
    [
        ("augment", {"pca_grad": "sideways"}, "vision.augment.pca_grad"),
        ("train", {"loss": "infonce"}, "vision.train.loss"),
        ("train", {"max_grad_norm": -1}, "vision.train.max_grad_norm"),
    ],
)
def test_config_keys_are_validated(section, patch, key):
    validate_config(
        merge_config(
            BASE, {"vision": {"augment": {"pca_grad": "constant"}, "train": {"loss": "nt_xent", "max_grad_norm": 1.0}}}
        )
    )
    with pytest.raises(ConfigError, match=rf"config key '{key}'"):
        validate_config(merge_config(BASE, {"vision": {section: patch}}))


def test_repo_config_is_valid():
    validate_config(read_yaml(REPO_CONFIG))


# ----------------------------------------------------------------------------- the trainers
def _vision_step(tmp_path, npz, **overrides):
    from deepaug.domains.vision.train import VisionPretrainSettings, pretrain

    s = VisionPretrainSettings(
        width=4,
        proj_dim=16,
        batch_size=32,
        epochs=1,
        warmup_epochs=0,
        lr=0.1,
        precision="fp32",
        device="cpu",
        deterministic=True,
        **overrides,
    )
    return pretrain(s, npz, tmp_path / "out", tmp_path / "ckpt")


def test_vision_trainer_loss_is_supcontrasts_scale_of_nt_xent(tmp_path, tiny_digits_npz):
    """One step (the loss is computed before the update): SupContrast's loss is NT-Xent x 0.5 / 0.07."""
    supcon = _vision_step(tmp_path / "a", tiny_digits_npz)["final_loss"]
    plain = _vision_step(tmp_path / "b", tiny_digits_npz, loss="nt_xent")["final_loss"]
    assert abs(supcon / plain - 0.5 / 0.07) < 1e-4, (supcon, plain)


def _spy_on_optimizer_steps(monkeypatch):
    """Record, per step, the clipping norm asked for, the norm before clipping and the norm the optimizer saw."""
    records = []
    real = T.optimizer_step

    def spy(optimizer, scaler, loss, lr, max_grad_norm=0.0):
        if not getattr(optimizer, "_deepaug_spy", False):
            optimizer.register_step_pre_hook(lambda opt, args, kwargs: records[-1].append(_grad_norm(opt)))
            optimizer._deepaug_spy = True
        records.append([max_grad_norm])
        before = real(optimizer, scaler, loss, lr, max_grad_norm)
        records[-1].insert(1, None if before is None else float(before))
        return before

    monkeypatch.setattr(T, "optimizer_step", spy)
    return records


@pytest.mark.parametrize("max_grad_norm", [None, 0.0])
def test_text_trainer_clips_the_gradient_at_1_by_default(
    tmp_path, tiny_model_dir, text_files, monkeypatch, max_grad_norm
):
    """SimCSE steps with a gradient norm far above 1 (temperature 0.001): clipped to 1.0 by default,
    untouched with max_grad_norm 0."""
    from deepaug.domains.text.train import TextPretrainSettings, pretrain

    corpus, dev = text_files
    records = _spy_on_optimizer_steps(monkeypatch)
    extra = {} if max_grad_norm is None else {"max_grad_norm": max_grad_norm}
    s = TextPretrainSettings(
        batch_size=8,
        max_steps=2,
        eval_every=2,
        eval_max_len=8,
        max_len=12,
        precision="fp32",
        device="cpu",
        seed=1,
        temperature=0.001,
        lr=1e-4,
        **extra,
    )
    prov = pretrain(s, tiny_model_dir, corpus, dev, tmp_path / "out", tmp_path / "ckpt")
    assert prov["steps"] == 2 and np.isfinite(prov["final_loss"]) and len(records) == 2
    if max_grad_norm is None:
        for asked, before, seen in records:
            assert asked == 1.0 and before > 2.0, records
            assert abs(seen - 1.0) < 1e-4, f"the optimizer saw a gradient of norm {seen}"
    else:
        for asked, before, seen in records:
            assert asked == 0.0 and before is None and seen > 2.0, records
