"""Crash-safe file writing: every result is written to a temporary file and renamed into place."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deepaug.errors import DiskFullError, LegacyFileError, UnsafeFileError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, or torch's zip writer failing on a full disk ("unexpected pos ...")."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("unexpected pos" in text or "file write failed" in text)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The result gets the permissions of a normally created file (``0666 & ~umask``): ``mkstemp``
    makes its files 0600, which group members on a shared cluster file system could not read.
    A full disk raises :class:`DiskFullError` naming the folder, and nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as exc:
        if is_disk_full(exc):
            raise DiskFullError(
                f"no space left on {path.parent} (writing {path.name}); free some space "
                f"(checkpoints/ holds the largest files) and re-run"
            ) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Put ``src`` at ``dst`` atomically: a hard link (no second copy on disk), or a copy where the file
    system has none (or ``src`` is on another one)."""
    import shutil

    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# What a .pt file written by an older deepaug may ask for besides tensors and plain Python values: the numpy
# RNG state of resume checkpoints (an ndarray) and pathlib paths. Loading them is refused all the same (an
# ndarray's pickle can be crafted), but the message then says "older deepaug" instead of "planted".
_LEGACY_GLOBALS = ("numpy.", "pathlib.")


def load_torch(path: str | os.PathLike, what: str = "file") -> Any:
    """A ``.pt`` file's content, loaded with ``weights_only=True``: tensors, numbers, strings, bytes, lists,
    tuples, sets and dicts, never an object whose unpickling runs code.

    Every ``.pt`` file deepaug reads lies in a work tree that others may be able to write (a group project
    folder on a cluster), so nothing in it may run: a file whose pickle asks for any other import is refused
    with :class:`UnsafeFileError` (naming the file and the imports it asked for; nothing was imported or
    run), or with :class:`LegacyFileError` when what it asks for is what an older deepaug wrote. Other
    failures (missing, truncated, zero bytes) raise as ``torch.load`` raises them.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise
        try:  # reads the pickle's opcodes only; imports and runs nothing
            asked = sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(path)))
        except Exception:  # noqa: BLE001  (a file too damaged to list: refused all the same)
            asked = []
        if asked and all(name.startswith(_LEGACY_GLOBALS) for name in asked):
            raise LegacyFileError(
                f"{path}: this {what} was written by an older deepaug (it holds {', '.join(asked)}, which are no "
                f"longer loaded); delete it and re-run the job that writes it"
            ) from None
        raise UnsafeFileError(
            f"{path}: refused to load this {what}: its pickle asks for {', '.join(asked) or 'code'}, which no deepaug "
            f"file contains, so it was not written by deepaug (nothing in it was run); check who wrote it, "
            f"delete it and re-run"
        ) from None
