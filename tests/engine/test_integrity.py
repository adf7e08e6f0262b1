"""Every number traceable: no stale checkpoint resumed, no non-finite model scored, no broken input or
full disk ending in a traceback, results readable by the group. (Issue: integrity of every number.)"""

import json
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from deepaug.domains.vision.train import VisionPretrainSettings, pretrain
from deepaug.engine import fingerprint as F
from deepaug.engine.checkpoint import Checkpointer
from deepaug.engine.training import check_finite_state
from deepaug.errors import CheckpointInUseError, DataValidationError, DiskFullError, NonFiniteError

SMALL = dict(
    width=4,
    proj_dim=16,
    batch_size=64,
    epochs=2,
    warmup_epochs=1,
    lr=0.3,
    precision="fp32",
    device="cpu",
    checkpoint_every=1,
    deterministic=True,
)


def _losses(path):
    return [json.loads(line)["loss"] for line in open(path)]


# ----------------------------------------------------------------------------- checkpoints
def test_rerun_of_a_finished_run_reuses_its_training(tmp_path, digits_npz, capfd):
    """A job run again for a finished run (new evaluation settings, a retry after its evaluation failed,
    --forcerun): Snakemake has deleted the outputs; the trainer gives back the kept ones, trains nothing."""
    s = VisionPretrainSettings(**SMALL, run="vision/digits/none/seed0")
    first = pretrain(s, digits_npz, tmp_path / "out", tmp_path / "ckpt")
    weights = (tmp_path / "out" / "model.pt").read_bytes()
    assert (tmp_path / "ckpt" / "FINISHED.json").exists()
    assert {p.name for p in (tmp_path / "ckpt" / "final").iterdir()} == {
        "model.pt",
        "train_metrics.jsonl",
        "provenance.json",
    }
    # hard links: the kept outputs take no second copy on disk
    assert (tmp_path / "ckpt" / "final" / "model.pt").stat().st_ino == (tmp_path / "out" / "model.pt").stat().st_ino
    for name in ("model.pt", "train_metrics.jsonl", "provenance.json"):
        (tmp_path / "out" / name).unlink()  # what Snakemake does before it runs a job again
    capfd.readouterr()
    again = pretrain(s, digits_npz, tmp_path / "out", tmp_path / "ckpt")
    err = capfd.readouterr().err
    assert "reusing its finished training" in err and "same settings, inputs and code" in err and "resuming" not in err
    assert again == first and (tmp_path / "out" / "model.pt").read_bytes() == weights


def test_finished_run_trains_again_when_it_differs_or_reuse_is_never(tmp_path, digits_npz, capfd):
    s = VisionPretrainSettings(**SMALL, run="vision/digits/none/seed0")
    first = pretrain(s, digits_npz, tmp_path / "out", tmp_path / "ckpt")
    first_losses = _losses(tmp_path / "out" / "train_metrics.jsonl")
    capfd.readouterr()
    again = pretrain(
        VisionPretrainSettings(**SMALL, run=s.run, reuse_finished="never"),
        digits_npz,
        tmp_path / "out",
        tmp_path / "ckpt",
    )
    err = capfd.readouterr().err
    assert "holds a finished run (checkpoints.reuse is never); training it again from scratch" in err
    assert "resuming" not in err and "reusing" not in err
    assert again["steps"] == first["steps"] and len(again["segments"]) == 1
    assert again["segments"][0]["from"] == 0 and again["segments"][0]["to"] == SMALL["epochs"]
    assert _losses(tmp_path / "out" / "train_metrics.jsonl") == first_losses  # every epoch trained again
    assert again["final_loss"] == first["final_loss"]  # deterministic: the same training, done again
    # other settings: the finished run is not this run's; it says why and trains
    other = pretrain(
        VisionPretrainSettings(**{**SMALL, "lr": 0.2}, run=s.run), digits_npz, tmp_path / "out", tmp_path / "ckpt"
    )
    err = capfd.readouterr().err
    assert "holds a finished run (settings differ (lr: 0.3 -> 0.2)); training it again from scratch" in err
    assert other["fingerprint"]["id"] != first["fingerprint"]["id"] and other["segments"][0]["from"] == 0


def test_reuse_policy_settings_accepts_other_code(tmp_path, monkeypatch, capfd):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("model.pt", "train_metrics.jsonl", "provenance.json"):
        (out / name).write_text(f'{{"{name}": 1}}')
    _state({"lr": 0.5}, dir=tmp_path / "c").finish(out)
    for name in ("model.pt", "train_metrics.jsonl", "provenance.json"):
        (out / name).unlink()
    real = F.code_version()
    monkeypatch.setattr(F, "code_version", lambda: dict(real, code_sha256="0" * 64, commit="f" * 40, dirty=True))
    assert _state({"lr": 0.5}, dir=tmp_path / "c").reuse(out, "exact") is None  # code changed
    assert _state({"lr": 0.5}, dir=tmp_path / "c").reuse(out, "settings") == {"provenance.json": 1}
    assert "checkpoints.reuse: settings" in capfd.readouterr().err
    assert _state({"lr": 0.4}, dir=tmp_path / "c").reuse(out, "settings") is None  # settings differ
    with pytest.raises(ValueError, match="reuse_finished must be one of"):
        _state({"lr": 0.5}, dir=tmp_path / "c").reuse(out, "always")


def _state(settings, inputs=None, **kw):
    ck = Checkpointer(kw.pop("dir"), settings, "vision/digits/none/seed0", inputs, **kw)
    return ck


def test_checkpoint_of_other_settings_restarts_and_says_why(tmp_path, capfd):
    a = _state({"lr": 0.5, "seed": 0}, dir=tmp_path)
    a.save({"model": {}, "epoch": 3}, progress=4)
    b = _state({"lr": 0.1, "seed": 0}, dir=tmp_path)
    assert b.load() is None
    err = capfd.readouterr().err
    assert "not resuming from" in err and "settings differ (lr: 0.5 -> 0.1)" in err and "starting from scratch" in err
    assert (tmp_path / "stale" / "last.pt").exists() and not (tmp_path / "last.pt").exists()
    # device and cadence do not change the numbers: still a resume point
    c = _state({"lr": 0.1, "seed": 0, "device": "cpu", "checkpoint_every": 5}, dir=tmp_path)
    b.save({"model": {}, "epoch": 0}, progress=1)
    assert c.load()["epoch"] == 0


def test_checkpoint_of_other_code_or_inputs_restarts(tmp_path, capfd, monkeypatch):
    data = tmp_path / "data.npz"
    data.write_bytes(b"one")
    _state({"lr": 0.5}, {"data": data}, dir=tmp_path / "c").save({"epoch": 0}, progress=1)
    data.write_bytes(b"two")
    assert _state({"lr": 0.5}, {"data": data}, dir=tmp_path / "c").load() is None
    assert "input files changed (data)" in capfd.readouterr().err

    _state({"lr": 0.5}, dir=tmp_path / "d").save({"epoch": 0}, progress=1)
    real = F.code_version()
    monkeypatch.setattr(F, "code_version", lambda: dict(real, code_sha256="0" * 64, commit="f" * 40, dirty=True))
    assert _state({"lr": 0.5}, dir=tmp_path / "d").load() is None
    assert "code changed" in capfd.readouterr().err


def test_code_version_tracks_uncommitted_changes():
    v = F.code_version()
    assert set(v) == {"commit", "dirty", "code_sha256"} and len(v["code_sha256"]) == 64


def test_corrupt_checkpoint_is_moved_aside_once(tmp_path, capfd):
    (tmp_path / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    ck = _state({"lr": 0.5}, dir=tmp_path)
    assert ck.load() is None
    assert "cannot be read" in capfd.readouterr().err
    assert (tmp_path / "corrupt" / "last.pt").exists() and not (tmp_path / "last.pt").exists()
    assert _state({"lr": 0.5}, dir=tmp_path).load() is None  # nothing left to retry on
    (tmp_path / "last.pt").write_bytes(b"")  # zero bytes
    assert _state({"lr": 0.5}, dir=tmp_path).load() is None


def test_best_weights_of_another_run_are_never_shipped(tmp_path):
    other = _state({"lr": 0.5, "run": "text/lee/none/seed1"}, dir=tmp_path)
    other.save_best({"model": {"w": torch.ones(1)}, "step": 5, "dev_spearman": 99.0}, 5)
    mine = _state({"lr": 0.5, "run": "text/lee/none/seed0"}, dir=tmp_path)
    assert mine.load() is None and not (tmp_path / "best.pt").exists()  # moved aside with the stale run
    mine.save_best({"model": {"w": torch.zeros(1)}, "step": 1, "dev_spearman": 1.0}, 1)
    assert mine.load_best()["dev_spearman"] == 1.0


@pytest.mark.parametrize("keep", ["last", "none", "all"])
def test_keep_policy_after_the_run(tmp_path, keep):
    ck = _state({"lr": 0.5}, dir=tmp_path, keep=keep)
    ck.save({"model": {"w": torch.ones(3)}, "optimizer": {"m": torch.ones(3)}, "epoch": 0}, progress=1)
    ck.save_best({"model": {"w": torch.ones(3)}}, 1)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("model.pt", "train_metrics.jsonl", "provenance.json"):
        (out / name).write_text("{}")
    ck.finish(out)
    files = {p.name for p in tmp_path.iterdir() if p.suffix == ".pt"}
    final = {p.name for p in (tmp_path / "final").iterdir()} if (tmp_path / "final").exists() else set()
    assert (tmp_path / "FINISHED.json").exists()
    if keep == "none":
        assert files == set() and final == set()
    elif keep == "last":
        assert files == set() and final == {"model.pt", "train_metrics.jsonl", "provenance.json"}
    else:
        assert files == {"last.pt", "best.pt"} and final == {"model.pt", "train_metrics.jsonl", "provenance.json"}
        assert "optimizer" in torch.load(tmp_path / "last.pt", weights_only=False)


def test_second_trainer_on_the_same_run_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, time
        from deepaug.engine.checkpoint import Checkpointer
        Checkpointer({str(tmp_path)!r}, {{}}, "r").lock()
        print("locked", flush=True)
        time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(CheckpointInUseError, match=rf"in use by process {holder.pid} on"):
            Checkpointer(tmp_path, {}, "r").lock()
    finally:
        holder.kill()
        holder.wait()
    Checkpointer(tmp_path, {}, "r").lock().unlock()  # the kernel released it with the process


# ----------------------------------------------------------------------------- non-finite models
def test_non_finite_weights_fail_naming_the_run():
    check_finite_state({"a": torch.ones(2), "step": torch.tensor(3)}, "r")
    with pytest.raises(NonFiniteError, match="run vision/x: the final weights are not finite .*e.g. b"):
        check_finite_state({"a": torch.ones(2), "b": torch.tensor([1.0, float("nan")])}, "vision/x")


def test_diverged_model_is_not_evaluated(tmp_path, digits_npz):
    from deepaug.domains.vision.evaluate import VisionEvalSettings, evaluate

    pretrain(
        VisionPretrainSettings(**dict(SMALL, epochs=1), run="vision/digits/none/seed3"),
        digits_npz,
        tmp_path / "run",
        tmp_path / "ckpt",
    )
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=False)
    for v in state["model"].values():  # as after one update at lr 1e30: every weight blown up
        if v.is_floating_point():
            v.fill_(float("nan"))
    torch.save(state, tmp_path / "run" / "model.pt")
    with pytest.raises(NonFiniteError, match="run vision/digits/none/seed3"):
        evaluate(
            VisionEvalSettings(linear_epochs=1, knn_k=5, device="cpu"),
            tmp_path / "run" / "model.pt",
            digits_npz,
            tmp_path / "run" / "eval.json",
        )
    assert not (tmp_path / "run" / "eval.json").exists()


def test_nan_features_are_refused():
    from deepaug.domains.vision.evaluate import check_finite_features

    check_finite_features(torch.ones(4, 3), "r", "test")
    with pytest.raises(NonFiniteError, match="run r: 1 of 4 test feature vectors are not finite"):
        check_finite_features(torch.tensor([[1.0], [2.0], [float("inf")], [0.0]]), "r", "test")


# ----------------------------------------------------------------------------- inputs
def _npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def _good(digits):
    return {k: digits[k] for k in ("x_train", "y_train", "x_test", "y_test", "classes", "mean", "std")}


@pytest.mark.parametrize(
    "case, message",
    [
        ("zero_bytes", "cannot be read as a prepared dataset"),
        ("truncated", "cannot be read as a prepared dataset"),
        ("channels_first", "channels first"),
        ("float_images", "must be uint8"),
        ("label_count", "labels for"),
        ("missing_key", "missing"),
    ],
)
def test_broken_prepared_data_names_file_and_problem(tmp_path, digits_npz, case, message):
    from deepaug.domains.vision.data import load_prepared

    good = _good(load_prepared(digits_npz))
    path = tmp_path / f"{case}.npz"
    if case == "zero_bytes":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(digits_npz.read_bytes()[:5000])
    elif case == "channels_first":
        _npz(path, **dict(good, x_train=good["x_train"].transpose(0, 3, 1, 2).copy()))
    elif case == "float_images":
        _npz(path, **dict(good, x_test=good["x_test"].astype(np.float32)))
    elif case == "label_count":
        _npz(path, **dict(good, y_train=good["y_train"][:-3]))
    else:
        _npz(path, **{k: v for k, v in good.items() if k != "mean"})
    with pytest.raises(DataValidationError, match=message) as exc:
        load_prepared(path)
    assert str(path) in str(exc.value) and "re-run the data rule" in str(exc.value)


# ----------------------------------------------------------------------------- disk and permissions
def test_full_disk_says_no_space_left_on_the_folder(tmp_path, monkeypatch):
    from deepaug import io

    def full(obj, f):  # what torch.save raises when the disk fills mid-write
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(DiskFullError, match=f"no space left on {tmp_path}"):
        io.save_torch({"a": 1}, tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == []  # no partial file left


def test_full_disk_on_a_real_small_file_system(tmp_path):
    from deepaug import io

    mnt = tmp_path / "small fs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with pytest.raises(DiskFullError, match="no space left on"):
            io.save_torch({"w": torch.zeros(100_000)}, mnt / "model.pt")
        with pytest.raises(DiskFullError):
            io.write_text(mnt / "big.txt", "x" * 200_000)
        assert [p.name for p in mnt.iterdir()] == []
    finally:
        subprocess.run(["umount", str(mnt)])


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_results_follow_the_users_umask(tmp_path, umask, mode):
    from deepaug import io

    old = os.umask(umask)
    try:
        io.write_json(tmp_path / "r.json", {"a": 1})
        io.save_torch({"a": 1}, tmp_path / "m.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "m.pt").stat().st_mode) == mode
