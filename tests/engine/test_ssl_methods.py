"""The SSL methods beyond SimCLR (deepaug.core.ssl) in the vision trainer: which branch gets gradients with and
without the op's stop-gradient, the momentum target that never gets any, the op on BYOL's target or not, the
settings only one method has, and a BYOL run that resumes exactly through its EMA target."""

import json

import pytest
import torch
from interrupt import killed_after_checkpoint

from deepaug.core.layers import target_module
from deepaug.core.ssl import METHODS, SSL_METHODS, method_objective
from deepaug.domains.vision.models import build_vision_model
from deepaug.domains.vision.train import VisionPretrainSettings, load_encoder, pretrain

NON_CONTRASTIVE = ("byol", "simsiam", "vicreg", "barlow_twins")
EARLY = ("stem.", "layer1.", "layer2.", "layer3.")  # the parameters below the op's output at layer 3


def _setup(method, stop_gradient, **kw):
    """A small model of ``method`` with dropout at layer 3 on every row (p 1), its extras, and a loss closure."""
    s = VisionPretrainSettings(
        width=4, proj_dim=8, proj_hidden_dim=16, batch_size=16, precision="fp32", device="cpu", ssl_method=method,
        method="dropout", layer=3, p=1.0, rate=0.5, stop_gradient=stop_gradient, **kw,
    ).resolved()  # fmt: skip
    s.validate()
    torch.manual_seed(0)
    model = build_vision_model("resnet18", 4, 3, 8, "cifar", 16, s.head())
    aug = s.attach_augment(lambda layer: target_module(model, layer))
    obj = method_objective(method)
    extras = obj.extras(model, s, torch.device("cpu"))
    if extras is not None and hasattr(extras, "total_steps"):
        extras.total_steps = 10
    model.train(), aug.train()
    if extras is not None:
        extras.train()
    x = torch.randn(32, 3, 8, 8)

    def loss():
        return obj.loss(model(x), None, s, extras, lambda net: net(x))

    return s, model, extras, obj, loss


def _grad_norm(model, prefixes):
    return sum(
        float(p.grad.abs().sum()) for n, p in model.named_parameters() if n.startswith(prefixes) and p.grad is not None
    )


@pytest.mark.parametrize("method", NON_CONTRASTIVE)
def test_stop_gradient_cuts_the_layers_below_the_op_and_nosg_does_not(method):
    for sg in (True, False):
        s, model, extras, obj, loss = _setup(method, sg)
        loss().backward()
        assert _grad_norm(model, ("layer4.", "head.")) > 0  # above the op: always trained
        early = _grad_norm(model, EARLY)
        assert (early == 0) if sg else (early > 0), (method, sg, early)
        if extras is not None and hasattr(extras, "predictor"):
            assert _grad_norm(extras, ("predictor.",)) > 0


@pytest.mark.parametrize("sg", [True, False])
def test_the_momentum_target_never_gets_gradients_and_follows_the_online_network(sg):
    s, model, extras, obj, loss = _setup("byol", sg)
    loss().backward()
    assert all(p.grad is None and not p.requires_grad for p in extras.target.parameters())
    before = {n: p.clone() for n, p in extras.target.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    obj.step_done(model, extras, s, 0)  # tau 0.99 at step 0
    w = "stem.0.weight"
    online = dict(model.named_parameters())[w]
    assert torch.allclose(extras.target.get_parameter(w), 0.99 * before[w] + 0.01 * online, atol=1e-6)
    obj.step_done(model, extras, s, 10)  # the last step: tau 1, the target stays
    after = extras.target.get_parameter(w).clone()
    obj.step_done(model, extras, s, 10)
    assert torch.equal(extras.target.get_parameter(w), after)


@pytest.mark.parametrize("with_op", [False, True])
def test_target_augment_puts_the_op_on_the_target_or_not(with_op):
    s, model, extras, obj, loss = _setup("byol", True, target_augment=with_op)
    x = torch.randn(32, 3, 8, 8)
    with torch.no_grad():
        a, b = extras.target(x), extras.target(x)  # training mode: the op draws new rows each call, if hooked
    assert (not torch.equal(a, b)) if with_op else torch.equal(a, b)


def test_settings_of_one_method_are_refused_for_another_with_a_clear_error():
    with pytest.raises(ValueError, match="barlow_lambda is a setting of ssl_method barlow_twins only.*'byol'"):
        VisionPretrainSettings(ssl_method="byol", barlow_lambda=0.01).validate()
    with pytest.raises(ValueError, match="pred_hidden_dim is a setting of ssl_method byol and simsiam only"):
        VisionPretrainSettings(pred_hidden_dim=64).validate()  # simclr
    with pytest.raises(ValueError, match="ssl_method must be one of"):
        VisionPretrainSettings(ssl_method="moco").validate()
    with pytest.raises(ValueError, match="tau_base 0.999 must be at most tau_final 0.99"):
        VisionPretrainSettings(ssl_method="byol", tau_base=0.999, tau_final=0.99).validate()
    # the supervised counterpart ignores the SSL method and its settings
    VisionPretrainSettings(objective="supervised", ssl_method="byol", barlow_lambda=0.01).validate()
    assert VisionPretrainSettings(objective="supervised", ssl_method="byol").head() == "simclr"
    assert SSL_METHODS == ("simclr", *NON_CONTRASTIVE) and set(METHODS) == set(NON_CONTRASTIVE)


def test_a_method_setting_left_out_is_its_recipes():
    s = VisionPretrainSettings(ssl_method="vicreg", vicreg_cov_weight=2.0).resolved()
    assert (s.vicreg_sim_weight, s.vicreg_var_weight, s.vicreg_cov_weight) == (25.0, 25.0, 2.0)
    s = VisionPretrainSettings(ssl_method="barlow_twins").resolved()
    assert (s.barlow_lambda, s.barlow_scale) == (0.0051, 0.1)
    assert VisionPretrainSettings().resolved().pred_hidden_dim is None  # simclr: none of them


SMALL = dict(
    width=4, proj_dim=16, proj_hidden_dim=32, batch_size=128, epochs=3, warmup_epochs=1, lr=0.05, precision="fp32",
    device="cpu", checkpoint_every=1, deterministic=True, ssl_method="byol", pred_hidden_dim=32, method="dropout",
    layer=3, seed=4, keep_checkpoints="all",
)  # fmt: skip


def _losses(path):
    return [json.loads(line)["loss"] for line in open(path / "train_metrics.jsonl")]


def test_byol_resumes_exactly_and_its_encoder_loads(tmp_path, digits_npz, monkeypatch):
    """Killed after its checkpoint of epoch 2, a BYOL run resumes to the weights (online, predictor, target) and
    losses of an uninterrupted run; its model.pt names its projector, and the encoder loads for evaluation."""
    pretrain(VisionPretrainSettings(**SMALL), digits_npz, tmp_path / "ref", tmp_path / "ref_ckpt")
    with killed_after_checkpoint(monkeypatch, at=2):
        pretrain(VisionPretrainSettings(**SMALL), digits_npz, tmp_path / "run", tmp_path / "ckpt")
    pretrain(VisionPretrainSettings(**SMALL), digits_npz, tmp_path / "run", tmp_path / "ckpt")

    assert _losses(tmp_path / "run") == _losses(tmp_path / "ref")
    assert all(0 <= v <= 8 for v in _losses(tmp_path / "ref"))
    a = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "ref_ckpt" / "last.pt", weights_only=True)
    for part in ("model", "extras"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in b[part]), part
    assert any(k.startswith("target.") for k in b["extras"]) and any(k.startswith("predictor.") for k in b["extras"])
    model = load_encoder(tmp_path / "ref" / "model.pt", torch.device("cpu"))
    assert isinstance(model.head[1], torch.nn.BatchNorm1d)  # BYOL's projector, not SimCLR's
    assert model.encode(torch.randn(2, 3, 8, 8)).shape == (2, 32)


def test_the_knn_monitor_records_dev_knn_without_changing_the_run(tmp_path, digits_npz):
    """knn_monitor: a kNN of the dev images per epoch in train_metrics.jsonl; the run's losses and weights are
    those of the same run without it (eval mode, no randomness, no batch-norm update)."""
    small = dict(width=4, proj_dim=16, proj_hidden_dim=32, batch_size=256, epochs=2, warmup_epochs=1, lr=0.05,
                 precision="fp32", device="cpu", deterministic=True, ssl_method="vicreg", seed=1)  # fmt: skip
    pretrain(VisionPretrainSettings(**small), digits_npz, tmp_path / "a", tmp_path / "a_ckpt")
    pretrain(VisionPretrainSettings(**small, knn_monitor=1), digits_npz, tmp_path / "b", tmp_path / "b_ckpt")
    rows = [json.loads(line) for line in open(tmp_path / "b" / "train_metrics.jsonl")]
    assert len(rows) == 2 and all(10 <= r["knn_dev_top1"] <= 100 for r in rows)  # digits: 10 classes
    assert _losses(tmp_path / "a") == [r["loss"] for r in rows]
    assert "knn_dev_top1" not in open(tmp_path / "a" / "train_metrics.jsonl").read()
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_simclr_run_s_fingerprinted_settings_are_those_from_before_ssl_method():
    """At their defaults the new settings are left out of the fingerprint (deepaug.core.settings.QUIET_DEFAULTS),
    so finished SimCLR runs keep their checkpoints; a BYOL run's are fingerprinted."""
    from dataclasses import asdict

    from deepaug.core.settings import without_quiet_defaults

    new = {"ssl_method", "knn_monitor", "pred_hidden_dim", "tau_base", "tau_final", "target_augment",
           "vicreg_sim_weight", "vicreg_var_weight", "vicreg_cov_weight", "barlow_lambda", "barlow_scale"}  # fmt: skip
    assert new <= set(asdict(VisionPretrainSettings()))
    assert not new & set(without_quiet_defaults(asdict(VisionPretrainSettings())))
    byol = without_quiet_defaults(asdict(VisionPretrainSettings(ssl_method="byol").resolved()))
    assert {"ssl_method", "pred_hidden_dim", "tau_base", "tau_final", "target_augment"} <= set(byol)
