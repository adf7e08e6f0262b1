"""Which GPU a job uses, when Snakemake runs several trainings at once on one machine.

Snakemake caps how many GPU jobs run together (``resources: gpu=1`` per job, ``gpu=<count>`` for the
machine) but does not say which device each job gets. Each job therefore claims one device with an
exclusive ``flock`` on ``<lock dir>/gpu<id>.lock`` and holds it while it lives; the kernel releases
the lock when the process ends, also on a crash or SIGKILL, so no lock is ever left stale.
"""

from __future__ import annotations

import fcntl
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


def default_lock_dir() -> Path:
    return Path(os.environ.get("DEEPAUG_GPU_LOCK_DIR", Path(tempfile.gettempdir()) / f"deepaug-gpu-locks-{os.getuid()}"))


def claim_gpu(ids: list[str], lock_dir: str | Path | None = None, poll_s: float = 2.0, log=print) -> int:
    """Block until one of ``ids`` is free; return its position in ``ids`` (the torch device index)."""
    lock_dir = Path(lock_dir or default_lock_dir())
    lock_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for index, gpu in enumerate(ids):
            fh = open(lock_dir / f"gpu{gpu}.lock", "a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            _held.append(fh)
            return index
        if not waited:
            log(f"all {len(ids)} GPUs ({', '.join(ids)}) are claimed by other jobs; waiting (locks in {lock_dir})")
            waited = True
        time.sleep(poll_s)


def release_all() -> None:
    while _held:
        _held.pop().close()
