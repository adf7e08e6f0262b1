"""Which GPU a job uses, when Snakemake runs several trainings at once on one machine.

Snakemake caps how many GPU jobs run together (``resources: gpu=1`` per job, ``gpu=<count>`` for the
machine) but does not say which device each job gets. Each job therefore claims a slot of one device with
an exclusive ``flock`` on ``<lock dir>/gpu<id>.lock`` (slot 0) or ``gpu<id>.slot<k>.lock`` and holds it
while it lives; the kernel releases the lock when the process ends, also on a crash or SIGKILL, so no
lock is ever left stale.

Several runs per GPU (``<domain>.resources.runs_per_gpu``, default 1: one lock per device as before):
each device has that many slots, filled across the devices first (slot 0 of every GPU, then slot 1, ...).
The workflow hands the setting to its jobs in ``$DEEPAUG_RUNS_PER_GPU`` (``vision=2,graph=8``, or one
number for every domain), so the jobs' shell commands do not change with it. A packed run may use its
share of the device's memory (:func:`memory_fraction`); a run that needs more fails with a sentence that
names the setting (:func:`packed_out_of_memory`) instead of CUDA's out-of-memory traceback.
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
RUNS_PER_GPU_ENV = "DEEPAUG_RUNS_PER_GPU"
POWERS_OF_TWO = (1, 2, 4, 8, 16)  # the schema's values of runs_per_gpu: a run takes a whole number of shares
# Of a device's memory, what the packed runs share: CUDA's context (~0.3-0.5 GiB per process) and the
# allocator's fragmentation live outside the per-process cap, so 10% stays free.
MEMORY_HEADROOM = 0.10
current_domain: str | None = None  # the domain of the running command (deepaug.cli sets it)


def runs_per_gpu(domain: str | None = None, env: str | None = None) -> int:
    """How many runs share one GPU for ``domain`` (default: the running command's), from
    ``$DEEPAUG_RUNS_PER_GPU``: ``N`` for every domain, or ``vision=2,graph=8`` (a domain left out: 1)."""
    text = (os.environ.get(RUNS_PER_GPU_ENV, "") if env is None else env).strip()
    domain = domain or current_domain
    if not text:
        return 1
    value = text
    if "=" in text:
        pairs = dict(item.split("=", 1) for item in text.replace(" ", "").split(",") if "=" in item)
        value = pairs.get(domain or "", "1")
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n not in POWERS_OF_TWO:
        raise ValueError(
            f"{RUNS_PER_GPU_ENV}={text!r}: runs per GPU must be one of {', '.join(map(str, POWERS_OF_TWO))}, "
            f"as one number or per domain (e.g. vision=2,graph=8); the workflow sets it from "
            f"<domain>.resources.runs_per_gpu"
        )
    return n


def memory_fraction(slots: int) -> float:
    """The share of a device's memory one of ``slots`` packed runs may allocate (1.0: not packed)."""
    return 1.0 if slots <= 1 else (1.0 - MEMORY_HEADROOM) / slots


def packed_out_of_memory(exc: BaseException, domain: str | None = None) -> str | None:
    """The sentence for a CUDA out-of-memory error of a packed run (None for any other error, or when the
    run had a GPU to itself: then CUDA's own message stands)."""
    if type(exc).__name__ != "OutOfMemoryError":
        return None
    try:
        slots = runs_per_gpu(domain)
    except ValueError:
        return None
    if slots <= 1:
        return None
    name = domain or current_domain or "<domain>"
    return (
        f"the run does not fit in its share of the GPU: {name}.resources.runs_per_gpu is {slots}, so it may "
        f"use {memory_fraction(slots):.0%} of the device's memory, and it needed more (CUDA: "
        f"{str(exc).splitlines()[0][:200]}); lower {name}.resources.runs_per_gpu (1: a GPU per run) or the "
        f"batch size, and run the same command again"
    )


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


def slot_lock_name(gpu: str, unit: int) -> str:
    """The lock file of share ``unit`` of GPU ``gpu``; share 0 keeps the one-run-per-GPU name."""
    return f"gpu{gpu}.lock" if unit == 0 else f"gpu{gpu}.slot{unit}.lock"


def gpu_units(env: str | None = None) -> int:
    """Shares per device: the largest runs per GPU in ``$DEEPAUG_RUNS_PER_GPU`` (1 when unset). The values are
    powers of two, so a run of a domain with ``r`` runs per GPU takes ``units // r`` shares, and domains
    with different settings can share the GPUs of one machine."""
    text = (os.environ.get(RUNS_PER_GPU_ENV, "") if env is None else env).strip()
    if not text:
        return 1
    values = [item.split("=", 1)[-1] for item in text.replace(" ", "").split(",") if item]
    return max(runs_per_gpu(env=v) for v in values)


def _try_shares(lock_dir: Path, gpu: str, units: int, need: int) -> list:
    """Lock up to ``need`` free shares of ``gpu`` (all-or-nothing is up to the caller); the held files."""
    from deepaug.engine.locks import open_lock, try_lock

    held = []
    for unit in range(units):
        if len(held) == need:
            break
        fh = open_lock(lock_dir / slot_lock_name(gpu, unit), f"GPU {gpu} lock")
        if try_lock(fh):
            held.append(fh)
        else:
            fh.close()
    return held


def claim_gpu(
    ids: list[str],
    lock_dir: str | Path | None = None,
    poll_s: float = 2.0,
    log=print,
    slots: int = 1,
    units: int | None = None,
) -> int:
    """Block until one of ``ids`` has room for a run; return its position in ``ids`` (the torch device index).

    A device has ``units`` shares (default ``slots``), each a lock file; a run of a domain with ``slots``
    runs per GPU takes ``units // slots`` of them (one run per GPU: every share, i.e. the whole device).
    The device with the most free shares is taken first, so runs spread over the GPUs before they pack."""
    from deepaug.engine.locks import write_holder

    units = units or slots
    for n, what in ((slots, "runs per GPU"), (units, "shares per GPU")):
        if n not in POWERS_OF_TWO:
            raise ValueError(f"{what} must be one of {', '.join(map(str, POWERS_OF_TWO))}, not {n}")
    if units < slots:
        raise ValueError(f"{slots} runs per GPU need at least {slots} shares per GPU, not {units}")
    need = units // slots
    lock_dir = lock_dir_ready(lock_dir or default_lock_dir())
    waited = False
    while True:
        free = {}
        for index, gpu in enumerate(ids):  # how much room each device has (probe, then let go)
            probe = _try_shares(lock_dir, gpu, units, units)
            free[index] = len(probe)
            for fh in probe:
                fh.close()
        for index in sorted(free, key=lambda i: -free[i]):
            if free[index] < need:
                break
            held = _try_shares(lock_dir, ids[index], units, need)
            if len(held) == need:
                for fh in held:
                    write_holder(fh, f"{os.getpid()}\n")
                _held.extend(held)
                return index
            for fh in held:
                fh.close()
        if not waited:
            what = f"all {len(ids)} GPUs ({', '.join(ids)})" + (f" ({slots} runs each)" if slots > 1 else "")
            log(f"{what} are claimed by other jobs; waiting (locks in {lock_dir})")
            waited = True
        time.sleep(poll_s)


def release_all() -> None:
    while _held:
        _held.pop().close()
