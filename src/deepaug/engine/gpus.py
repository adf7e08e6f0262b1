"""Which GPU a job uses, when Snakemake runs several trainings at once on one machine.

Snakemake caps how many GPU jobs run together (``resources: gpu=1`` per job, ``gpu=<count>`` for the
machine) but does not say which device each job gets. Each job therefore claims one device with an
exclusive ``flock`` on ``<lock dir>/gpu<id>.lock`` and holds it while it lives; the kernel releases
the lock when the process ends, also on a crash or SIGKILL, so no lock is ever left stale.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

_held: list = []  # open lock files of this process (kept open = lock kept)


def visible_gpu_ids() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else every GPU nvidia-smi lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


LOCK_DIR_ENV = "DEEPAUG_GPU_LOCK_DIR"


def default_lock_dir() -> Path:
    """``$DEEPAUG_GPU_LOCK_DIR``, else ``<temp dir>/deepaug-gpu-locks-<uid>`` (``$TMPDIR`` or /tmp)."""
    return Path(os.environ.get(LOCK_DIR_ENV, Path(tempfile.gettempdir()) / f"deepaug-gpu-locks-{os.getuid()}"))


def lock_dir_ready(lock_dir: str | Path) -> Path:
    """The GPU lock directory, created with mode 0700, or refused when someone else could have prepared it.

    Its default name in a shared temp dir is predictable, so another user can create it first: then the
    jobs would wait forever ("all GPUs are claimed"), fail to write, or write into their files."""
    from deepaug.engine.locks import private_dir

    return private_dir(
        lock_dir,
        "GPU lock directory",
        f"remove it, or set {LOCK_DIR_ENV} to a directory of your own (e.g. ~/.cache/deepaug-gpu-locks)",
    )


def claim_gpu(ids: list[str], lock_dir: str | Path | None = None, poll_s: float = 2.0, log=print) -> int:
    """Block until one of ``ids`` is free; return its position in ``ids`` (the torch device index)."""
    from deepaug.engine.locks import open_lock, try_lock, write_holder

    lock_dir = lock_dir_ready(lock_dir or default_lock_dir())
    waited = False
    while True:
        for index, gpu in enumerate(ids):
            fh = open_lock(lock_dir / f"gpu{gpu}.lock", f"GPU {gpu} lock")
            if not try_lock(fh):
                fh.close()
                continue
            write_holder(fh, f"{os.getpid()}\n")
            _held.append(fh)
            return index
        if not waited:
            log(f"all {len(ids)} GPUs ({', '.join(ids)}) are claimed by other jobs; waiting (locks in {lock_dir})")
            waited = True
        time.sleep(poll_s)


def release_all() -> None:
    while _held:
        _held.pop().close()
