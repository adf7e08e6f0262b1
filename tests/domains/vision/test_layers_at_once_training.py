"""The vision trainer with Deep Augmentation at several layers at once (layers_at_once), end to end on the
digits: one op hooked at each listed layer, every one drawing rows in training, the run reproducible,
resumed exactly after an interruption (each layer's stream reseeded per epoch), and evaluated."""

import json

import pytest
import torch

from deepaug.domains.vision.train import VisionPretrainSettings, VisionTask, pretrain
from deepaug.engine.checkpoint import Checkpointer

SMALL = dict(
    width=4,
    proj_dim=8,
    batch_size=16,
    epochs=2,
    warmup_epochs=0,
    lr=0.05,
    loss="nt_xent",
    precision="fp32",
    device="cpu",
    checkpoint_every=1,
    deterministic=True,
    seed=2,
    method="dropout",
    layers_at_once=(0, 3, 6),
    run="vision/digits/dropout-L0-3-6-sg/seed2",
)


def _losses(path):
    return [json.loads(line)["loss"] for line in open(path / "train_metrics.jsonl")]


def _weights(path):
    return torch.load(path / "model.pt", weights_only=True)["model"]


def test_the_op_is_hooked_at_each_listed_layer_and_draws_at_each(tiny_digits_npz):
    task = VisionTask(VisionPretrainSettings(**SMALL), tiny_digits_npz)
    task.build(torch.device("cpu"))
    layers = task.model.deepaug_layers()
    hooked = [i for i, (_, module) in enumerate(layers) if module._forward_hooks]
    assert hooked == [0, 3, 6] and [layer for layer, _ in task.aug.items()] == [0, 3, 6]
    task.model.train()
    x, _ = next(iter(task.batches(None, 0)))
    task.forward((x, None))
    for layer, op in task.aug.items():
        assert op.last_mask is not None and op.last_mask.shape == (x.shape[0],), layer
    masks = [op.last_mask for _, op in task.aug.items()]
    assert not (torch.equal(masks[0], masks[1]) and torch.equal(masks[1], masks[2])), "each layer its own rows"


def test_a_run_at_several_layers_trains_resumes_exactly_and_evaluates(tmp_path, tiny_digits_npz, monkeypatch, capfd):
    from deepaug.domains.vision.evaluate import VisionEvalSettings, evaluate

    s = VisionPretrainSettings(**SMALL)
    prov = pretrain(s, tiny_digits_npz, tmp_path / "ref", tmp_path / "ref_ckpt")
    log = capfd.readouterr().err
    assert "Deep Augmentation kind='dropout', rate=0.5" in log and "at layers 0, 3, 6 at once" in log
    assert list(prov["settings"]["layers_at_once"]) == [0, 3, 6]
    saved = json.loads((tmp_path / "ref" / "provenance.json").read_text())["settings"]
    assert saved["layers_at_once"] == [0, 3, 6] and saved["layer"] is None
    baseline = VisionPretrainSettings(**dict(SMALL, method="none", layers_at_once=None, run="b"))
    pretrain(baseline, tiny_digits_npz, tmp_path / "base", tmp_path / "base_ckpt")
    w, ref = _weights(tmp_path / "ref"), _weights(tmp_path / "base")
    assert any(not torch.equal(w[k], ref[k]) for k in ref), "the op at three layers changed the training"

    real_save = Checkpointer.save

    class Killed(Exception):
        pass

    def save_then_die(self, state, progress):
        real_save(self, state, progress)
        if progress == 1:
            raise Killed  # as if the job died right after its checkpoint of epoch 1

    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    with pytest.raises(Killed):
        pretrain(s, tiny_digits_npz, tmp_path / "run", tmp_path / "ckpt")
    monkeypatch.setattr(Checkpointer, "save", real_save)
    resumed = pretrain(s, tiny_digits_npz, tmp_path / "run", tmp_path / "ckpt")
    assert _losses(tmp_path / "run") == _losses(tmp_path / "ref")
    a = _weights(tmp_path / "run")
    assert all(torch.equal(a[k], w[k]) for k in w)
    assert [seg["to"] for seg in resumed["segments"]] == [1, 2]

    settings = VisionEvalSettings(device="cpu", linear_epochs=2, knn_k=5)
    result = evaluate(settings, tmp_path / "ref" / "model.pt", tiny_digits_npz, tmp_path / "eval.json")
    assert 0 <= result["linear_top1"] <= 100 and 0 <= result["knn_top1"] <= 100
