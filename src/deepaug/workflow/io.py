"""Crash-safe file writing: every result is written to a temporary file and renamed into place."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from deepaug.errors import DiskFullError


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
            raise DiskFullError(f"no space left on {path.parent} (writing {path.name}); free some space "
                                f"(checkpoints/ holds the largest files) and re-run") from None
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
