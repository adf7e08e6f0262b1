"""What every training loop here shares: devices, seeding, schedules, checkpoints, metrics, NaN guard."""

from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .io import save_torch


from .errors import CheckpointMismatchError, NonFiniteLossError  # noqa: F401  (re-exported)


def log(msg: str) -> None:
    print(f"[deepaug {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: a GPU when there is one, else the CPU with a warning.

    With several visible GPUs, the job claims a free one (see :mod:`deepaug.gpus`), so that
    concurrent jobs on one machine never share a device.
    """
    if name == "auto":
        if not torch.cuda.is_available():
            log("WARNING: no CUDA device is available; training on the CPU (slow for the paper's configs)")
            return torch.device("cpu")
        if torch.cuda.device_count() == 1:
            return torch.device("cuda:0")
        from .gpus import claim_gpu, visible_gpu_ids

        ids = visible_gpu_ids()[: torch.cuda.device_count()] or [str(i) for i in range(torch.cuda.device_count())]
        index = claim_gpu(ids, log=log)
        log(f"claimed GPU {ids[index]} (cuda:{index})")
        torch.cuda.set_device(index)
        return torch.device(f"cuda:{index}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available on this machine")
    return device


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A distinct, reproducible seed per (run seed, epoch, stream): epochs replay exactly on resume."""
    return (seed * 1_000_003 + epoch * 10_007 + stream * 101) % (2**63 - 1)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def cosine_with_warmup(step: int, total_steps: int, warmup_steps: int, base_lr: float, min_ratio: float = 0.0) -> float:
    """Linear warm-up from ~0 to ``base_lr``, then cosine decay to ``min_ratio * base_lr``."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def autocast_context(device: torch.device, precision: str):
    """bf16/fp16 autocast on CUDA; fp32 (no autocast) on the CPU or when asked."""
    if device.type == "cuda" and precision in ("bf16", "fp16"):
        return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return torch.autocast(device.type, enabled=False)


def optimizer_step(optimizer, scaler, loss, lr: float) -> None:
    """Set the learning rate, backpropagate ``loss`` (scaled when fp16 needs it) and step."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def check_finite(loss_sum: torch.Tensor, run: str, step: int) -> float:
    """One host sync: raise with the run and step when the accumulated loss is not finite."""
    value = float(loss_sum)
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"run {run}: the loss became {value} by step {step}; lower the learning rate or use "
            f"fp32 (precision: fp32). The last good checkpoint is kept."
        )
    return value


class Checkpointer:
    """``last.pt`` in a directory outside the job's outputs, written atomically; resumes if settings match."""

    def __init__(self, directory: str | Path, settings: dict) -> None:
        self.dir = Path(directory)
        self.path = self.dir / "last.pt"
        self.settings = settings

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        saved = state.get("settings", {})
        ignore = {"device", "num_workers", "checkpoint_every", "log_every"}
        diff = {k for k in set(saved) | set(self.settings) if k not in ignore and saved.get(k) != self.settings.get(k)}
        if diff:
            raise CheckpointMismatchError(
                f"checkpoint {self.path} was written with different settings ({', '.join(sorted(diff))}); "
                f"delete it to start this run afresh"
            )
        return state

    def save(self, state: dict) -> None:
        state = dict(state, settings=self.settings)
        save_torch(state, self.path)


def rng_states() -> dict:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states




def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
