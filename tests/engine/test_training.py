"""Pre-training: kill-and-resume gives the uninterrupted result; NaN stops with the run and step."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from deepaug.domains.vision.train import VisionPretrainSettings, pretrain
from deepaug.engine.training import NonFiniteLossError

SMALL = dict(
    width=4,
    proj_dim=16,
    batch_size=64,
    epochs=4,
    warmup_epochs=1,
    lr=0.3,
    precision="fp32",
    device="cpu",
    checkpoint_every=1,
    deterministic=True,
)


def _flags(settings):
    return [f"--{k.replace('_', '-')}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]


def _losses(path):
    return [json.loads(line)["loss"] for line in open(path)]


def test_sigkill_then_rerun_resumes_and_matches_uninterrupted(tmp_path, digits_npz):
    # 12 epochs: on a loaded machine this process may not run for a few epochs' time after the first checkpoint
    # appears, and the kill must still land before the last one
    settings = dict(SMALL, epochs=12, method="dropout", layer=3, stop_gradient=True, seed=5)
    env = dict(os.environ, OMP_NUM_THREADS="1")  # same threads for both runs: same float reductions

    def command(out, ckpt):
        return [
            sys.executable,
            "-m",
            "deepaug",
            "pretrain-vision",
            f"--data={digits_npz}",
            f"--out-dir={out}",
            f"--ckpt-dir={ckpt}",
            *_flags(settings),
        ]

    ref = subprocess.run(command(tmp_path / "ref", tmp_path / "ref_ckpt"), env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr

    out, ckpt = tmp_path / "run", tmp_path / "ckpt"
    cmd = command(out, ckpt)
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600  # a loaded CI machine: torch import and the first epoch can be slow
    while not (ckpt / "last.pt").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "model.pt").exists(), "the job finished before it could be killed"
    done = torch.load(ckpt / "last.pt", weights_only=False)["epoch"]
    assert done < settings["epochs"] - 1

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from" in rerun.stderr
    assert _losses(out / "train_metrics.jsonl") == _losses(tmp_path / "ref" / "train_metrics.jsonl")
    a = torch.load(out / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "ref" / "model.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    prov = json.loads((out / "provenance.json").read_text())
    # provenance records both processes that worked on the run: killed one, then the resumed one
    first, second = prov["segments"]
    assert first["from"] == 0 and first["to"] == done + 1 == second["from"] and second["to"] == settings["epochs"]
    assert prov["settings"]["seed"] == 5 and prov["versions"]["torch"] and prov["device"].startswith("cpu")
    assert json.loads((tmp_path / "ref" / "provenance.json").read_text())["final_loss"] == prov["final_loss"]


def test_checkpoint_from_other_settings_is_not_resumed(tmp_path, digits_npz, capfd):
    s = VisionPretrainSettings(**dict(SMALL, epochs=2, keep_checkpoints="all"))  # all: last.pt stays
    pretrain(s, digits_npz, tmp_path / "a", tmp_path / "ckpt")
    (tmp_path / "ckpt" / "FINISHED.json").unlink()  # as if killed after its last checkpoint
    capfd.readouterr()
    other = pretrain(
        VisionPretrainSettings(**dict(SMALL, epochs=2, lr=0.1)), digits_npz, tmp_path / "b", tmp_path / "ckpt"
    )
    err = capfd.readouterr().err
    assert (
        "settings differ (lr: 0.3 -> 0.1)" in err and "starting from scratch" in err and "run: resuming from" not in err
    )
    assert other["segments"][0]["from"] == 0 and "moved it to" in err and "stale/last.pt" in err
    assert not (tmp_path / "ckpt" / "stale").exists()  # set aside while it trained, deleted once it finished


def test_non_finite_loss_names_run_and_step(tmp_path, digits_npz):
    s = VisionPretrainSettings(**dict(SMALL, epochs=2, lr=1e30, warmup_epochs=0, run="vision/digits/none/seed0"))
    with pytest.raises(NonFiniteLossError, match=r"run vision/digits/none/seed0: the loss became nan by step \d+"):
        pretrain(s, digits_npz, tmp_path / "nan", tmp_path / "nan_ckpt")
    assert not (tmp_path / "nan" / "model.pt").exists()


def test_baseline_takes_no_layer_and_methods_need_one():
    with pytest.raises(ValueError, match="takes no layer"):
        VisionPretrainSettings(method="none", layer=3).validate()
    with pytest.raises(ValueError, match="needs a layer"):
        VisionPretrainSettings(method="pca").validate()


def test_supervised_counterpart_trains_a_classifier(tmp_path, digits_npz):
    from deepaug.domains.vision.evaluate import VisionEvalSettings, evaluate

    s = VisionPretrainSettings(
        **dict(SMALL, epochs=2, objective="supervised", method="dropout", layer=6, stop_gradient=False, lr=0.1)
    )
    prov = pretrain(s, digits_npz, tmp_path / "sup", tmp_path / "sup_ckpt")
    state = torch.load(tmp_path / "sup" / "model.pt", weights_only=False)
    assert state["objective"] == "supervised" and state["meta"]["proj_dim"] == 10  # the head gives 10 logits
    assert prov["final_loss"] < 2.31  # below chance-level cross-entropy, log(10)
    result = evaluate(
        VisionEvalSettings(linear_epochs=2, knn_k=5, device="cpu"),
        tmp_path / "sup" / "model.pt",
        digits_npz,
        tmp_path / "sup" / "eval.json",
    )
    assert 0 <= result["classifier_top1"] <= 100 and "linear_top1" in result
    with pytest.raises(ValueError, match="objective"):
        VisionPretrainSettings(objective="reinforcement").validate()
