"""What identifies a training run's state: its settings, the code that ran it, and its input files.

A checkpoint may only be resumed by the run that wrote it. "The same run" means the same settings
(except those that cannot change the numbers: device, logging and checkpoint cadence, clean-up
policy), the same code (git commit, plus the content of uncommitted changes to tracked files, or the
package's source files when it does not run from a git checkout) and the same input files (their
content). :func:`fingerprint` reduces these to one hash stored in every checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import lru_cache
from pathlib import Path

from deepaug.core.settings import without_quiet_defaults

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/deepaug: the whole package

# Settings that do not change what a run computes: a checkpoint stays valid when they change. (A setting
# that came after runs were made is left out at its default: deepaug.core.settings.QUIET_DEFAULTS.)
NOT_FINGERPRINTED = frozenset(
    {"device", "num_workers", "checkpoint_every", "log_every", "keep_checkpoints", "reuse_finished", "tracking"}
)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=30, check=True
    ).stdout


@lru_cache(maxsize=1)
def code_version() -> dict:
    """``{"commit", "dirty", "code_sha256"}`` of the code this process runs.

    ``code_sha256`` identifies the package's code, not the whole repository: the git tree of this
    package at HEAD plus the diff of its uncommitted changes, so that a commit touching only the
    README or the tests keeps checkpoints valid while any change to the library invalidates them.
    ``commit``/``dirty`` describe the whole checkout (for provenance). Outside a git checkout (e.g.
    an installed wheel) it hashes the package's own source files instead.
    """
    try:
        commit = _git("rev-parse", "HEAD").strip()
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no").strip())
        tree = _git("rev-parse", "HEAD:./").strip()  # the package folder's tree at HEAD (cwd = package)
        diff = _git("diff", "HEAD", "--no-color", "--no-ext-diff", "--", ".")
        h = hashlib.sha256((tree + "\n" + diff).encode())
        untracked = [n for n in _git("ls-files", "--others", "--exclude-standard", "--", ".").split("\n") if n.strip()]
        dirty = dirty or bool(untracked)
        for name in sorted(untracked):
            if (PACKAGE_DIR / name).is_file():  # new files not yet in git
                h.update(name.encode() + b"\0" + (PACKAGE_DIR / name).read_bytes())
        digest = h.hexdigest()
        return {"commit": commit, "dirty": dirty, "code_sha256": digest}
    except Exception:  # not a git checkout, or git missing
        h = hashlib.sha256()
        for path in sorted(PACKAGE_DIR.rglob("*")):
            if path.suffix in (".py", ".yaml") and path.is_file():
                h.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
        return {"commit": "unknown", "dirty": None, "code_sha256": h.hexdigest()}


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Content hash of a file, or of every file of a folder (names and contents, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() + b"\0" if path.is_dir() else b"")
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def fingerprint(settings: dict, inputs: dict[str, str | Path] | None = None) -> dict:
    """The identity of a run: hashed settings, code and inputs, with a single ``id`` over all three."""
    kept = {k: v for k, v in sorted(without_quiet_defaults(settings).items()) if k not in NOT_FINGERPRINTED}
    parts = {
        "settings_sha256": hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest(),
        "code": code_version(),
        "inputs": {name: file_sha256(p) for name, p in sorted((inputs or {}).items())},
    }
    parts["id"] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    return parts


def explain_mismatch(saved: dict, current: dict, saved_settings: dict, settings: dict) -> str:
    """Why two fingerprints differ, in words (for the log line of a restart)."""
    reasons = []
    saved_settings, settings = without_quiet_defaults(saved_settings), without_quiet_defaults(settings)
    keys = sorted(
        k
        for k in set(saved_settings) | set(settings)
        if k not in NOT_FINGERPRINTED and saved_settings.get(k) != settings.get(k)
    )
    if keys:
        reasons.append(
            "settings differ ("
            + ", ".join(f"{k}: {saved_settings.get(k)!r} -> {settings.get(k)!r}" for k in keys)
            + ")"
        )
    elif saved.get("settings_sha256") != current.get("settings_sha256"):
        reasons.append("settings differ")
    old, new = saved.get("code", {}), current.get("code", {})
    if old.get("code_sha256") != new.get("code_sha256"):

        def label(c):
            return f"{str(c.get('commit'))[:12]}{' (uncommitted changes)' if c.get('dirty') else ''}"

        reasons.append(f"code changed ({label(old)} -> {label(new)})")
    changed = sorted(
        k
        for k in set(saved.get("inputs", {})) | set(current.get("inputs", {}))
        if saved.get("inputs", {}).get(k) != current.get("inputs", {}).get(k)
    )
    if changed:
        reasons.append("input files changed (" + ", ".join(changed) + ")")
    return "; ".join(reasons) or "fingerprint differs"
