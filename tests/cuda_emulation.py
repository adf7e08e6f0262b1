"""CUDA's autocast dtype flow, emulated on the CPU: the ``cuda_like_autocast`` fixture (shared by every
trainer's bf16 test through tests/conftest.py).

CPU autocast has float32 rules for ``linalg_qr``/``linalg_svd``/``linalg_eigh`` (it casts their bf16
inputs up), CUDA autocast has none (``torch._C._dispatch_has_kernel_for_dispatch_key(op,
"AutocastCUDA")`` is False), so on a GPU a bf16 tensor made by an autocast matmul reaches them and they
raise ``"geqrf_cuda" not implemented for 'BFloat16'``. A plain CPU test therefore never sees the crash
that stopped every PCA run on a GPU at its first step. The ``cuda_like_autocast`` fixture restores
CUDA's behaviour: the Python-level linear-algebra functions raise (and record) whenever they are handed
anything but float32/float64, before CPU autocast could cast it, and ``deepaug.engine.training.autocast_context``
gives a CPU bf16 autocast region where on a GPU it would give a CUDA one.
"""

from dataclasses import dataclass, field

import pytest
import torch

import deepaug.engine.training as T

# the decompositions torch/_lowrank.py calls (qr, svd), and their siblings with the same CPU/CUDA gap
STRICT = {
    ("linalg", "qr"): "geqrf_cuda",
    ("linalg", "svd"): "svd_cuda",
    ("linalg", "svdvals"): "svd_cuda",
    ("linalg", "eigh"): "syevd_cuda",
    ("linalg", "eigvalsh"): "syevd_cuda",
    ("", "svd"): "svd_cuda",
}
CUDA_NAMES = {torch.bfloat16: "BFloat16", torch.float16: "Half"}
FULL_PRECISION = (torch.float32, torch.float64, torch.complex64, torch.complex128)


@dataclass
class Emulation:
    linalg_dtypes: list = field(default_factory=list)  # (function, input dtype), in call order
    autocast_calls: list = field(default_factory=list)  # (device type, precision) asked of autocast_context


def _strict(name, kernel, fn, record):
    def strict(A, *args, **kwargs):
        record.append((name, A.dtype))
        if A.dtype not in FULL_PRECISION:
            raise NotImplementedError(
                f"\"{kernel}\" not implemented for '{CUDA_NAMES.get(A.dtype, A.dtype)}' "
                f"(emulated CUDA: {name} has no autocast rule and no low-precision kernel)"
            )
        return fn(A, *args, **kwargs)

    return strict


@pytest.fixture
def cuda_like_autocast(monkeypatch):
    """CUDA's autocast dtype flow on the CPU: strict linear algebra + CPU autocast in the trainers."""
    emu = Emulation()
    for (namespace, name), kernel in STRICT.items():
        owner = torch.linalg if namespace == "linalg" else torch
        qualified = f"torch.{namespace + '.' if namespace else ''}{name}"
        monkeypatch.setattr(owner, name, _strict(qualified, kernel, getattr(owner, name), emu.linalg_dtypes))
    real = T.autocast_context

    def autocast_context(device, precision):
        emu.autocast_calls.append((device.type, precision))
        if device.type == "cpu" and precision in ("bf16", "fp16"):
            return torch.autocast("cpu", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
        return real(device, precision)

    monkeypatch.setattr(T, "autocast_context", autocast_context)
    return emu
