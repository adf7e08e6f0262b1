"""What a result was made from: settings, seed, code version, library versions, device, wall time."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def git_commit(start: str | Path | None = None) -> str:
    here = Path(start or __file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def device_name(device) -> str:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(settings: dict, device, wall_time_s: float, extra: dict | None = None) -> dict:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).timestamp()
    iso = lambda t: datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")  # noqa: E731
    return {
        "settings": settings,
        "seed": settings.get("seed"),
        "git_commit": git_commit(),
        "versions": {
            "python": sys.version.split()[0],
            **{p: _version(p) for p in ("torch", "torchvision", "transformers", "datasets", "numpy", "deepaug")},
        },
        "device": device_name(device),
        "host": platform.node(),
        "wall_time_s": round(wall_time_s, 3),
        "started_at": iso(now - wall_time_s),
        "finished_at": iso(now),
        **(extra or {}),
    }
