"""Nothing planted runs: files that others could have written to a shared (group-writable) work tree.

A ``.pt`` file whose pickle calls ``os.system`` is refused at every place deepaug reads one (resume
checkpoints, dev-best weights, prepared graph datasets, the trained models read by evaluation and
analysis), and the marker it would write never appears. Lock files and the GPU lock directory refuse
symlinks and other users' files. A finished run's kept model is reused only when its content is the one
recorded when it finished. (Issue 23, items 1, 4, 5 and "checked by content".)
"""

import json
import os
import random
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from deepaug.engine.checkpoint import Checkpointer, restore_rng_states, rng_states
from deepaug.engine.gpus import claim_gpu, lock_dir_ready, release_all
from deepaug.engine.locks import open_lock
from deepaug.errors import LegacyFileError, LockFileError, UnsafeFileError
from deepaug.io import load_torch

OTHER_UID = 4242  # a user that is not the one running the tests


class _Planted:
    """Unpickling this runs a shell command (what a hostile group member would plant)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def _plant(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.zeros(2)}, "meta": _Planted(marker)}, path)
    return path


def _legacy(path: Path) -> Path:
    """A checkpoint as an older deepaug wrote it: numpy's RNG state as a pickled ndarray."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 0, "rng": {"numpy": np.random.get_state()}}, path)
    return path


def _needs_root():
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root (CI runs as root)")


# ----------------------------------------------------------------------------- the loader itself
def test_planted_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = _plant(tmp_path / "model.pt", marker)
    with pytest.raises(UnsafeFileError) as err:
        load_torch(path, "trained model")
    message = str(err.value)
    assert str(path) in message and "posix.system" in message and "nothing in it was run" in message
    assert "\n" not in message
    assert not marker.exists()
    # the same file loaded the old way really runs the command: the fixture is what it claims to be
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_older_format_is_refused_with_its_own_sentence(tmp_path):
    path = _legacy(tmp_path / "last.pt")
    with pytest.raises(LegacyFileError, match="written by an older deepaug .*delete it and re-run"):
        load_torch(path, "checkpoint")


def test_rng_states_are_plain_and_restore_exactly(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.normal()  # a cached Gaussian in numpy's state
    states = rng_states()
    torch.save({"rng": states}, tmp_path / "s.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    restore_rng_states(load_torch(tmp_path / "s.pt")["rng"])  # weights_only=True
    again = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


# ----------------------------------------------------------------------------- every place a .pt is read
@pytest.mark.parametrize("name", ["last.pt", "best.pt"])
def test_planted_checkpoint_is_set_aside_and_the_run_restarts(tmp_path, name, capfd):
    marker = tmp_path / "PWNED"
    ckpt = Checkpointer(tmp_path / "ckpt", {"lr": 0.1}, "vision/digits/none/seed0").lock()
    _plant(ckpt.dir / name, marker)
    state = ckpt.load() if name == "last.pt" else ckpt.load_best()
    assert state is None and not marker.exists()
    assert (ckpt.dir / "corrupt" / name).exists() and not (ckpt.dir / name).exists()
    err = capfd.readouterr().err
    assert (
        "refused to load this checkpoint" in err and "posix.system" in err and "starting this run from scratch" in err
    )
    ckpt.unlock()


def test_checkpoint_of_an_older_deepaug_is_set_aside(tmp_path, capfd):
    ckpt = Checkpointer(tmp_path / "ckpt", {"lr": 0.1}, "r").lock()
    _legacy(ckpt.path)
    assert ckpt.load() is None and (ckpt.dir / "corrupt" / "last.pt").exists()
    assert "written by an older deepaug" in capfd.readouterr().err
    ckpt.unlock()


def _vision(path):
    from deepaug.domains.vision.train import load_encoder

    load_encoder(path, torch.device("cpu"))


def _graph_model(path):
    from deepaug.domains.graph.train import load_encoder

    load_encoder(path, torch.device("cpu"))


def _graph_data(path):
    from deepaug.domains.graph.data import load_graphs

    load_graphs(path)


def _text(path):
    pytest.importorskip("transformers")
    from deepaug.domains.text.evaluate import load_trained

    load_trained(path, torch.device("cpu"))


@pytest.mark.parametrize(
    "reader",
    [_vision, _graph_model, _graph_data, _text],
    ids=["vision-model", "graph-model", "graph-dataset", "text-model"],
)
def test_planted_file_is_refused_by_every_reader(tmp_path, reader):
    """model.pt read by evaluation and analysis, and the prepared graph dataset."""
    marker = tmp_path / "PWNED"
    path = _plant(tmp_path / "results" / "model.pt", marker)
    with pytest.raises(UnsafeFileError, match="refused to load"):
        reader(path)
    assert not marker.exists()


def test_cli_prints_one_line_for_a_planted_model(tmp_path, digits_npz):
    import subprocess
    import sys

    marker = tmp_path / "PWNED"
    model = _plant(tmp_path / "model.pt", marker)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepaug",
            "eval-vision",
            "--model",
            str(model),
            "--data",
            str(digits_npz),
            "--out",
            str(tmp_path / "eval.json"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0 and not marker.exists()
    assert "refused to load" in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- lock files
def test_symlinked_checkpoint_lock_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / ".lock").symlink_to(victim)
    with pytest.raises(LockFileError, match="symbolic link"):
        Checkpointer(tmp_path / "ckpt", {"lr": 0.1}, "r").lock()
    assert victim.read_text() == "precious\n"


def test_symlinked_gpu_lock_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    locks = lock_dir_ready(tmp_path / "locks")
    (locks / "gpu0.lock").symlink_to(victim)
    with pytest.raises(LockFileError, match="symbolic link"):
        claim_gpu(["0"], locks)
    assert victim.read_text() == "precious\n"
    release_all()


def test_lock_file_of_another_user_is_refused_untouched(tmp_path):
    _needs_root()
    lock = tmp_path / ".lock"
    lock.write_text("theirs\n")
    os.chown(lock, OTHER_UID, OTHER_UID)
    with pytest.raises(LockFileError, match=f"belongs to .*{OTHER_UID}.*not to you"):
        open_lock(lock)
    assert lock.read_text() == "theirs\n"


def test_a_fifo_in_place_of_a_lock_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / ".lock")
    with pytest.raises(LockFileError, match="not a regular file"):
        open_lock(tmp_path / ".lock")


# ----------------------------------------------------------------------------- the GPU lock directory
def test_new_gpu_lock_dir_is_private(tmp_path):
    old = os.umask(0o002)  # a group-sharing umask, as on clusters
    try:
        path = lock_dir_ready(tmp_path / "shared" / "deepaug-gpu-locks-0")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o700


def test_gpu_lock_dir_made_by_another_user_is_refused(tmp_path):
    _needs_root()
    path = tmp_path / "deepaug-gpu-locks-0"
    path.mkdir(mode=0o700)
    os.chown(path, OTHER_UID, OTHER_UID)
    with pytest.raises(LockFileError, match="belongs to .*DEEPAUG_GPU_LOCK_DIR"):
        claim_gpu(["0"], path)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_gpu_lock_dir_writable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / "locks"
    path.mkdir()
    path.chmod(mode)
    with pytest.raises(LockFileError, match="can be written by others.*chmod 700"):
        claim_gpu(["0"], path)


def test_gpu_lock_dir_that_is_a_symlink_is_refused(tmp_path):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(LockFileError, match="not a directory of its own"):
        lock_dir_ready(tmp_path / "link")


def test_default_gpu_lock_dir_follows_the_override(monkeypatch, tmp_path):
    from deepaug.engine.gpus import default_lock_dir

    monkeypatch.setenv("DEEPAUG_GPU_LOCK_DIR", str(tmp_path / "mine"))
    assert default_lock_dir() == tmp_path / "mine"


# ----------------------------------------------------------------------------- reuse checked by content
def test_edited_model_is_not_reused(tmp_path, digits_npz, capfd):
    """An in-place edit of results/.../model.pt changes its hard-linked final/model.pt: the run trains again."""
    from deepaug.domains.vision.train import VisionPretrainSettings, pretrain

    small = dict(
        width=4,
        proj_dim=16,
        batch_size=64,
        epochs=1,
        warmup_epochs=0,
        lr=0.3,
        precision="fp32",
        device="cpu",
        checkpoint_every=1,
        deterministic=True,
    )
    s = VisionPretrainSettings(**small, run="vision/digits/none/seed0")
    pretrain(s, digits_npz, tmp_path / "out", tmp_path / "ckpt")
    good = (tmp_path / "out" / "model.pt").read_bytes()
    done = json.loads((tmp_path / "ckpt" / "FINISHED.json").read_text())
    assert set(done["outputs"]) == {"model.pt", "train_metrics.jsonl", "provenance.json"}
    with open(tmp_path / "out" / "model.pt", "r+b") as fh:  # in place: the hard link sees it
        fh.seek(len(good) // 2)
        fh.write(b"\0" * 64)
    assert (tmp_path / "ckpt" / "final" / "model.pt").read_bytes() != good
    for name in ("model.pt", "train_metrics.jsonl", "provenance.json"):
        (tmp_path / "out" / name).unlink()
    capfd.readouterr()
    pretrain(s, digits_npz, tmp_path / "out", tmp_path / "ckpt")
    err = capfd.readouterr().err
    assert "reusing" not in err and "were changed after it finished" in err and "model.pt" in err
    import io

    again, before = load_torch(tmp_path / "out" / "model.pt")["model"], torch.load(io.BytesIO(good))["model"]
    assert all(torch.equal(again[k], before[k]) for k in before)  # trained again, deterministically


def test_provenance_records_the_model_hash_and_accelerator(tmp_path, digits_npz):
    from deepaug.domains.vision.train import VisionPretrainSettings, pretrain
    from deepaug.engine.fingerprint import file_sha256

    s = VisionPretrainSettings(
        width=4, proj_dim=16, batch_size=64, epochs=1, warmup_epochs=0, precision="fp32", device="cpu", run="r"
    )
    prov = pretrain(s, digits_npz, tmp_path / "out", tmp_path / "ckpt")
    assert prov["model_sha256"] == file_sha256(tmp_path / "out" / "model.pt")
    acc = prov["accelerator"]
    assert set(acc) == {"cuda", "cudnn", "cuda_available", "threads"} and acc["threads"] == torch.get_num_threads()
    assert acc["cuda"] == torch.version.cuda
