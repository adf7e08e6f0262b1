"""The steps of a training that are not its order: devices, seeding, schedules, autocast, the optimiser step,
NaN guards and the log line.

The order lives in :mod:`deepaug.engine.loop`; the resumable state in :mod:`deepaug.engine.checkpoint`.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time

import numpy as np
import torch

from deepaug.errors import DeviceError, NonFiniteError, NonFiniteLossError


def log(msg: str) -> None:
    print(f"[deepaug {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: a GPU when there is one, else the CPU with a warning.

    With several visible GPUs, the job claims a free one (see :mod:`deepaug.engine.gpus`), so that
    concurrent jobs on one machine never share a device.
    """
    if name == "auto":
        if not torch.cuda.is_available():
            log("WARNING: no CUDA device is available; training on the CPU (slow for the paper's configs)")
            return torch.device("cpu")
        from deepaug.engine.gpus import claim_gpu, gpu_units, runs_per_gpu, visible_gpu_ids

        slots = runs_per_gpu()
        if torch.cuda.device_count() == 1:
            return _share_memory(torch.device("cuda:0"), slots)
        ids = visible_gpu_ids()[: torch.cuda.device_count()] or [str(i) for i in range(torch.cuda.device_count())]
        index = claim_gpu(ids, log=log, slots=slots, units=gpu_units())
        log(f"claimed GPU {ids[index]} (cuda:{index})" + (f", one of {slots} runs on it" if slots > 1 else ""))
        torch.cuda.set_device(index)
        return _share_memory(torch.device(f"cuda:{index}"), slots)
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device {name!r} requested but CUDA is not available on this machine; use "
            f"device: auto (a GPU when there is one, else the CPU) or cpu"
        )
    if device.type == "cuda":
        from deepaug.engine.gpus import runs_per_gpu

        return _share_memory(device, runs_per_gpu())
    return device


def _share_memory(device: torch.device, slots: int) -> torch.device:
    """With ``slots`` runs packed on one GPU (``<domain>.resources.runs_per_gpu``), cap this process's CUDA
    allocator at its share of the device's memory, so that one run cannot starve the others; a run that
    needs more fails with a sentence naming the setting (deepaug.engine.gpus.packed_out_of_memory)."""
    if slots > 1:
        from deepaug.engine.gpus import memory_fraction

        index = device.index if device.index is not None else torch.cuda.current_device()
        torch.cuda.set_per_process_memory_fraction(memory_fraction(slots), index)
        total = torch.cuda.get_device_properties(index).total_memory / 2**30
        log(
            f"{slots} runs share cuda:{index}: this one may use {memory_fraction(slots) * total:.1f} of {total:.1f} GiB"
        )
    return device


def prepare(s) -> torch.device:
    """The run's device, with its determinism setting and seeds applied (before any model is built)."""
    device = resolve_device(s.device)
    set_deterministic(s.deterministic)
    seed_everything(s.seed)
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


def optimizer_step(optimizer, scaler, loss, lr: float, max_grad_norm: float = 0.0) -> torch.Tensor | None:
    """Set the learning rate, backpropagate ``loss`` (scaled when fp16 needs it), clip, and step.

    ``max_grad_norm > 0`` clips the global L2 norm of every parameter's gradient to it, after the
    fp16 gradients are unscaled, as the Hugging Face Trainer that SimCSE trains with does
    (princeton-nlp/SimCSE ``simcse/trainers.py`` L473-488: ``scaler.unscale_(optimizer)``, then
    ``torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)``; ``TrainingArguments.
    max_grad_norm`` defaults to 1.0 and 0 turns it off). Clipping the still-scaled gradients would
    clip at ``max_grad_norm * scale``. Returns the gradient norm before clipping (a tensor, no host
    sync), or None when clipping is off.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    norm = clip_gradients(optimizer, scaler, max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return norm


def clip_gradients(optimizer, scaler, max_grad_norm: float) -> torch.Tensor | None:
    """Unscale (a no-op for a disabled scaler) and clip the optimizer's gradients; None when off.

    After ``scaler.unscale_`` the scaler remembers it, so ``scaler.step`` does not unscale twice and
    still skips the step when fp16 gradients overflowed (their norm is then inf/NaN).
    """
    if not max_grad_norm or max_grad_norm <= 0:
        return None
    scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    return torch.nn.utils.clip_grad_norm_(params, max_grad_norm)


def check_finite(loss_sum: torch.Tensor, run: str, step: int) -> float:
    """One host sync: raise with the run and step when the accumulated loss is not finite."""
    value = float(loss_sum)
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"run {run}: the loss became {value} by step {step}; lower the learning rate or use "
            f"fp32 (precision: fp32). The last good checkpoint is kept."
        )
    return value


def check_finite_state(state_dict: dict, run: str, what: str = "the final weights") -> None:
    """Raise :class:`NonFiniteError` naming the run when any floating tensor holds NaN/inf."""
    bad = [
        k
        for k, v in state_dict.items()
        if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]
    if bad:
        raise NonFiniteError(
            f"run {run}: {what} are not finite ({len(bad)} tensors with NaN/inf, e.g. {bad[0]}); the model "
            f"diverged: lower the learning rate or use precision: fp32"
        )
