"""Lock files and lock directories that nobody else can turn against the process taking them.

A work tree on a cluster is often group-writable (umask 002, setgid project folders), and the GPU locks
live in a shared temporary folder by default. Whatever sits at a lock's path may have been put there by
someone else, so a lock is opened only when it is what it should be:

* never through a symlink (``O_NOFOLLOW``: a planted link to another file would otherwise be truncated and
  overwritten with our PID), and only a regular file (a FIFO would block the open);
* only a file owned by the user taking it (someone else's file could be swapped or held to stall us);
* written to (truncated, our PID) only after the ``flock`` is held and the checks passed.

A lock directory must be a real directory owned by the user, writable by nobody else; a new one is
created with mode 0700.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from deepaug.errors import LockFileError


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def open_lock(path: str | os.PathLike, what: str = "lock file"):
    """An open (``r+``) handle on the lock file ``path``, created with mode 0644 when missing.

    Raises :class:`LockFileError` with a sentence when ``path`` is a symlink, not a regular file, or owned
    by another user. The handle is not locked yet (see :func:`write_holder`).
    """
    path = Path(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise LockFileError(
                f"{what} {path} is a symbolic link (to {os.readlink(path)!r}); deepaug never "
                f"makes one there, so someone else did: remove it (rm {path}) and re-run"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise LockFileError(
                f"{what} {path} cannot be opened ({exc.strerror}); it belongs to someone else: "
                f"remove it, or use a folder of your own"
            ) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LockFileError(f"{what} {path} is not a regular file; remove it and re-run")
        if info.st_uid != os.geteuid():
            raise LockFileError(
                f"{what} {path} belongs to {_owner(info.st_uid)}, not to you ({_owner(os.geteuid())}); "
                f"someone else made it: remove it (rm {path}) and re-run"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "r+")
    except BaseException:
        os.close(fd)
        raise


def try_lock(fh) -> bool:
    """Take the exclusive ``flock`` on an open lock file without waiting; False when another process has it."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def write_holder(fh, text: str) -> None:
    """Replace the lock file's content with ``text`` (who holds it); call only with the lock held."""
    fh.seek(0)
    fh.truncate()
    fh.write(text)
    fh.flush()


def private_dir(path: str | os.PathLike, what: str, fix: str) -> Path:
    """``path`` as a directory only this user can write: created with mode 0700 when missing; when it exists
    it must be a real directory (not a symlink) owned by this user and not writable by group or others,
    else :class:`LockFileError` naming ``fix``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise LockFileError(f"{what} {path} is not a directory of its own (a symlink or a file); {fix}")
    if info.st_uid != os.geteuid():
        raise LockFileError(
            f"{what} {path} belongs to {_owner(info.st_uid)}, not to you ({_owner(os.geteuid())}); {fix}"
        )
    if info.st_mode & 0o022:
        raise LockFileError(
            f"{what} {path} can be written by others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run chmod 700 {path}, or {fix}"
        )
    return path
