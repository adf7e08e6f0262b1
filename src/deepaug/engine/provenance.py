"""What a result was made from: settings, seed, code version, library versions, the lock file the
environment was installed from, device, wall time.

Also the one place that knows which lock file serves this platform: ``scripts/setup.sh`` and
``scripts/lock.sh`` ask ``python -m deepaug.engine.provenance lock-path|check-lock`` (stdlib only, so it runs
before anything is installed), and every run's ``provenance.json`` records the same file's sha256.
"""

from __future__ import annotations

import hashlib
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LOCK_DIR = ROOT / "requirements"


def git_commit() -> str:
    """``<commit>`` or ``<commit>-dirty`` of this checkout (``unknown`` outside git), from the same
    cached git reading as the checkpoints' fingerprint (:func:`deepaug.engine.fingerprint.code_version`)."""
    from deepaug.engine.fingerprint import code_version

    v = code_version()
    return v["commit"] + ("-dirty" if v["dirty"] else "")


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def platform_tag() -> str:
    """``linux-x86_64-py311``: what a lock file is valid for. Wheels differ by OS, CPU and Python
    (torch's CUDA libraries, triton and the nvidia-* packages exist on linux-x86_64 only), so a lock
    made on one platform cannot be installed on another."""
    return f"{sys.platform}-{platform.machine().lower()}-py{sys.version_info[0]}{sys.version_info[1]}"


def lock_path(tag: str | None = None) -> Path:
    """The lock file for ``tag`` (default: this interpreter), e.g. requirements/lock-linux-x86_64-py311.txt."""
    return LOCK_DIR / f"lock-{tag or platform_tag()}.txt"


def normalize(name: str) -> str:
    """PEP 503 name: ``PyYAML`` and ``pyyaml``, ``typing_extensions`` and ``typing-extensions`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """{normalised name: version} of the ``name==version`` lines of a lock file (comments skipped)."""
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if not m:
            raise ValueError(
                f"{path}:{number}: {line!r} is not 'name==version'; regenerate the lock with scripts/lock.sh"
            )
        pins[normalize(m.group(1))] = m.group(2)
    return pins


def installed_versions() -> dict[str, str]:
    """{normalised name: version} of every distribution this interpreter sees (one scan, not one per name)."""
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out.setdefault(normalize(name), dist.version)
    return out


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def lock_info(path: Path | None = None) -> dict:
    """The lock file this environment should have been installed from: its name and sha256, and how the
    installed versions compare with it. ``differs`` lists packages installed at another version than
    locked (an environment that drifted); ``not_installed`` counts locked packages absent here (a
    rule's conda env holds a subset of the lock). No lock for this platform: ``sha256`` is None."""
    path = path or lock_path()
    info = {"file": _relative(path), "platform": platform_tag(), "sha256": None}
    if not path.is_file():
        note = (
            f"no lock file {info['file']} for {platform_tag()}: scripts/setup.sh installed from pyproject.toml's ranges"
        )
        return {**info, "note": note}
    locked = read_lock(path)
    have = installed_versions()
    differs = {
        name: f"{have[name]} (lock {version})"
        for name, version in sorted(locked.items())
        if name in have and have[name] != version
    }
    missing = [name for name in locked if name not in have]
    return {
        **info,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "installed_as_locked": not differs and not missing,
        "differs": differs,
        "not_installed": len(missing),
    }


def device_name(device) -> str:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def accelerator_versions() -> dict:
    """The CUDA and cuDNN versions torch was built with (None on a CPU-only build) and the CPU threads the
    run used (data loading and host work also run on GPU machines)."""
    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "cuda_available": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
    }


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
        "lock": lock_info(),
        "device": device_name(device),
        "accelerator": accelerator_versions(),
        "host": platform.node(),
        "wall_time_s": round(wall_time_s, 3),
        "started_at": iso(now - wall_time_s),
        "finished_at": iso(now),
        **(extra or {}),
    }


def main(argv: list[str] | None = None) -> int:
    """``lock-path``: print this platform's lock file, relative to the checkout; exit 1 when it does
    not exist (yet). ``check-lock``: exit 0 when every locked package is installed at its locked
    version, else print what differs and exit 1 (scripts/setup.sh then installs from the lock)."""
    args = sys.argv[1:] if argv is None else argv
    path = lock_path()
    if args == ["lock-path"]:
        print(_relative(path))
        return 0 if path.is_file() else 1
    if args == ["check-lock"]:
        info = lock_info(path)
        if info["sha256"] is None:
            print(info["note"])
            return 1
        if info["installed_as_locked"]:
            return 0
        print(
            f"environment differs from {info['file']}: {info['not_installed']} locked packages not installed"
            + "".join(f"; {name} {v}" for name, v in list(info["differs"].items())[:10])
        )
        return 1
    print("usage: python -m deepaug.engine.provenance lock-path|check-lock", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
