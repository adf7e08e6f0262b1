"""A run's resumable state: the checkpoint directory (:class:`Checkpointer`), its lock, the snapshot of a
model, optimiser and scaler, and every generator's state.

:func:`open_run` starts every training (the loop in :mod:`deepaug.engine.loop` calls it); a checkpoint is read
with ``weights_only=True`` (:func:`deepaug.io.load_torch`), so a planted pickle is refused, never run.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from deepaug.core.vocabulary import KEEP_POLICIES, REUSE_POLICIES
from deepaug.engine.training import log
from deepaug.errors import CheckpointInUseError, CheckpointMismatchError, LegacyFileError, UnsafeFileError
from deepaug.io import load_torch, save_torch

# What a trainer writes to its output folder: kept in the checkpoint folder's final/ by
# Checkpointer.finish, and given back by Checkpointer.reuse.
RUN_OUTPUTS = ("model.pt", "train_metrics.jsonl", "provenance.json")
_HELD_LOCKS: dict = {}  # lock file -> open handle, per process


def open_run(s, ckpt_dir: str | Path, inputs: dict[str, str | Path]) -> Checkpointer:
    """The start of every trainer: validate the run's settings (a :class:`deepaug.core.settings.RunSettings`)
    and lock its checkpoint directory, fingerprinted by the settings and ``inputs`` (name -> file)."""
    from dataclasses import asdict

    s.validate()
    return Checkpointer(ckpt_dir, asdict(s), s.run, inputs, s.keep_checkpoints).lock()


class Checkpointer:
    """The resumable state of one run, in a directory outside the job's outputs.

    * ``last.pt`` (and, for runs that keep the dev-best weights, ``best.pt``) carry the run's
      fingerprint (:mod:`deepaug.engine.fingerprint`: settings, code, input files). A checkpoint with another
      fingerprint is never resumed: it is moved aside to ``stale/`` and the run starts from scratch,
      with a log line saying why (settings, code or inputs changed).
    * A checkpoint that cannot be read (truncated, zero bytes) is moved aside to ``corrupt/`` and the
      run restarts, so a re-run never loops on the same broken file.
    * :meth:`finish` (called after the run's outputs are written) marks the run finished, keeps its
      outputs (:data:`RUN_OUTPUTS`) in ``final/`` as hard links (no second copy on disk; a copy where
      the file system has no hard links) and applies the ``keep`` policy: ``last`` drops ``last.pt``
      and ``best.pt`` (the optimizer state and intermediate weights); ``all`` keeps them; ``none``
      keeps nothing, not even ``final/``.
    * :meth:`reuse`: a job that runs a finished run again (its evaluation settings changed, a retry
      after the evaluation failed, ``--forcerun``) gets the finished outputs back instead of training
      again, but only when the fingerprint matches (policy ``exact``: same settings, inputs and code;
      ``settings``: same settings and inputs, any code, e.g. to re-evaluate after a change to the
      evaluation code; ``never``: always train again). Otherwise the finished state is cleared and the
      run trains from scratch, with a log line saying why.
    * The directory is locked (``flock`` on ``.lock``, released by the kernel when the process ends)
      for the life of the run: a second trainer on the same run stops with the holder's PID.
    * ``segments`` records every process that worked on the run (commit, start, end, steps), for
      provenance.
    """

    def __init__(
        self,
        directory: str | Path,
        settings: dict,
        run: str = "run",
        inputs: dict[str, str | Path] | None = None,
        keep: str = "last",
    ) -> None:
        from deepaug.engine.fingerprint import fingerprint

        if keep not in KEEP_POLICIES:
            raise ValueError(f"keep_checkpoints must be one of {KEEP_POLICIES}, got {keep!r}")
        self.dir = Path(directory)
        self.path = self.dir / "last.pt"
        self.best_path = self.dir / "best.pt"
        self.finished_path = self.dir / "FINISHED.json"
        self.final_dir = self.dir / "final"
        self.settings = settings
        self.run = run
        self.keep = keep
        self.fingerprint = fingerprint(settings, inputs)
        self.segments: list[dict] = []
        self._segment = {
            "commit": self.fingerprint["code"]["commit"],
            "dirty": self.fingerprint["code"]["dirty"],
            "started_at": _now(),
            "ended_at": None,
            "from": 0,
            "to": 0,
        }
        self._lock_fh = None

    # ---------------------------------------------------------------- locking
    def lock(self) -> Checkpointer:
        """Hold the directory's lock until the process ends (or :meth:`unlock`)."""
        import socket

        from deepaug.engine.locks import open_lock, try_lock, write_holder

        self.dir.mkdir(parents=True, exist_ok=True)
        key = str(self.dir.resolve() / ".lock")
        if key in _HELD_LOCKS:  # an earlier run of this process (e.g. one that raised) still holds it
            _HELD_LOCKS.pop(key).close()
        # No symlink, only our own regular file, nothing truncated before the lock is held (engine/locks.py).
        fh = open_lock(self.dir / ".lock", f"run {self.run}: checkpoint lock")
        if not try_lock(fh):
            fh.seek(0)
            holder = fh.read(200).strip() or "another process"
            fh.close()
            raise CheckpointInUseError(
                f"run {self.run}: checkpoint directory {self.dir} is in use by {holder}; another trainer is "
                f"running this run (e.g. one left behind by a killed snakemake). Wait for it to end or kill "
                f"that process, then re-run."
            ) from None
        write_holder(fh, f"process {os.getpid()} on {socket.gethostname()} (since {_now()})\n")
        self._lock_fh = _HELD_LOCKS[key] = fh
        return self

    def unlock(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    # ---------------------------------------------------------------- reading
    def _read(self, path: Path) -> dict | None:
        """A checkpoint file's state, or None (after moving it aside) when it is unreadable or stale."""
        if not path.exists():
            return None
        try:
            state = load_torch(path, "checkpoint")  # weights_only: a planted pickle is refused, never run
            if not isinstance(state, dict):
                raise TypeError(f"holds a {type(state).__name__}, not a checkpoint")
        except (UnsafeFileError, LegacyFileError) as exc:
            moved = self._move_aside(path, "corrupt")
            log(f"{self.run}: {exc}; moved it to {moved} and starting this run from scratch")
            return None
        except Exception as exc:  # truncated zip, zero bytes, pickle error, ...
            moved = self._move_aside(path, "corrupt")
            log(
                f"{self.run}: checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); moved it to "
                f"{moved} and starting this run from scratch"
            )
            return None
        saved = state.get("fingerprint") or {}
        if saved.get("id") != self.fingerprint["id"]:
            from deepaug.engine.fingerprint import explain_mismatch

            why = (
                explain_mismatch(saved, self.fingerprint, state.get("settings", {}), self.settings)
                if saved
                else "it was written before checkpoints carried a fingerprint"
            )
            moved = self._move_aside(path, "stale")
            log(f"{self.run}: not resuming from {path}: {why}; moved it to {moved} and starting from scratch")
            return None
        return state

    def _move_aside(self, path: Path, why: str) -> Path:
        dest = self.dir / why / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)  # one file kept per kind and name: a repeated failure overwrites it
        return dest

    def load(self) -> dict | None:
        """The state to resume from, or None to start from scratch (see the class docstring)."""
        if self.finished_path.exists():
            log(
                f"{self.run}: {self.dir} holds a finished run ({self._why_not_reused()}); training it again "
                f"from scratch"
            )
            for path in (self.path, self.best_path):
                if path.exists():
                    path.unlink()
            if self.final_dir.exists():
                shutil.rmtree(self.final_dir)
            self.finished_path.unlink()
            return None
        state = self._read(self.path)
        if state is None:
            if self.best_path.exists():  # a best.pt without its last.pt is from another attempt
                self._move_aside(self.best_path, "stale")
            return None
        self.segments = list(state.get("segments", []))
        self._segment["from"] = self._segment["to"] = state.get("progress", 0)
        return state

    # ---------------------------------------------------------------- a finished run, again
    def _finished(self) -> dict:
        from deepaug.io import read_json

        try:
            done = read_json(self.finished_path)
        except (OSError, ValueError):
            return {}
        return done if isinstance(done, dict) else {}

    def _matches(self, done: dict, policy: str) -> bool:
        saved = done.get("fingerprint") or {}
        if policy == "exact":
            return saved.get("id") == self.fingerprint["id"]
        if policy == "settings":
            return all(saved.get(k) == self.fingerprint[k] for k in ("settings_sha256", "inputs"))
        return False

    def _why_not_reused(self) -> str:
        """Why :meth:`reuse` did not give the finished outputs back (for the log line)."""
        done = self._finished()
        policy = getattr(self, "_reuse_policy", "never")
        if policy == "never":
            return "checkpoints.reuse is never"
        if not done.get("fingerprint"):
            return "its FINISHED.json cannot be read"
        if not self._matches(done, policy):
            from deepaug.engine.fingerprint import explain_mismatch

            return explain_mismatch(done["fingerprint"], self.fingerprint, done.get("settings", {}), self.settings)
        if getattr(self, "_changed", None):
            return (
                f"its kept outputs were changed after it finished ({', '.join(self._changed)} no longer has the "
                f"sha256 recorded in {self.finished_path.name}; results/ and final/ share the file)"
            )
        return "its outputs were not kept (keep_checkpoints: none)"

    def _changed_outputs(self, done: dict) -> list[str]:
        """The kept outputs whose content differs from the sha256 recorded when the run finished (an in-place
        edit of ``results/.../model.pt`` changes its hard-linked ``final/model.pt`` too); a FINISHED.json
        without hashes (an older deepaug) counts as changed, so nothing unverified is reused."""
        from deepaug.engine.fingerprint import file_sha256

        recorded = done.get("outputs") or {}
        return [name for name in RUN_OUTPUTS if recorded.get(name) != file_sha256(self.final_dir / name)]

    def reuse(self, out_dir: str | Path, policy: str = "exact") -> dict | None:
        """Give a finished run's outputs back to ``out_dir`` instead of training it again.

        Returns the run's provenance when this directory holds a finished run whose fingerprint
        matches under ``policy`` (see the class docstring) and whose outputs were kept in ``final/``;
        then the lock is released. None otherwise: the caller trains (and :meth:`load` clears the
        finished state, saying why).
        """
        from deepaug.io import link_or_copy, read_json

        if policy not in REUSE_POLICIES:
            raise ValueError(f"reuse_finished must be one of {REUSE_POLICIES}, got {policy!r}")
        self._reuse_policy = policy
        if policy == "never" or not self.finished_path.exists():
            return None
        kept = [self.final_dir / name for name in RUN_OUTPUTS]
        done = self._finished()
        if not self._matches(done, policy) or not all(p.is_file() for p in kept):
            return None
        changed = self._changed_outputs(done)
        if changed:
            self._changed = changed
            return None
        out_dir = Path(out_dir)
        for path in kept:
            link_or_copy(path, out_dir / path.name)
            os.utime(out_dir / path.name)  # newer than its inputs: not out of date for Snakemake
        same = "settings, inputs and code" if policy == "exact" else "settings and inputs (checkpoints.reuse: settings)"
        log(
            f"{self.run}: reusing its finished training from {self.final_dir} (same {same}, fingerprint "
            f"{self.fingerprint['id']}); to train it again, delete {self.dir}"
        )
        self.unlock()
        return read_json(out_dir / "provenance.json")

    def load_best(self) -> dict | None:
        """``best.pt`` when it belongs to this run (same fingerprint), else None."""
        return self._read(self.best_path)

    def require_best(self) -> dict:
        """``best.pt`` of this run; :class:`CheckpointMismatchError` when it is missing or another run's (only
        this run's dev-best weights are ever shipped)."""
        state = self.load_best()
        if state is None:
            raise CheckpointMismatchError(
                f"run {self.run}: the dev-best weights {self.best_path} are missing or belong to another run; "
                f"re-run this job to train it again"
            )
        return state

    # ---------------------------------------------------------------- writing
    def _stamp(self, state: dict, progress: int) -> dict:
        self._segment.update(ended_at=_now(), to=progress)
        return dict(
            state, settings=self.settings, fingerprint=self.fingerprint, progress=progress, segments=self.all_segments()
        )

    def all_segments(self) -> list[dict]:
        """Every process that worked on this run, the current one last."""
        return [*self.segments, dict(self._segment)]

    def save(self, state: dict, progress: int) -> None:
        """Write ``last.pt``; ``progress`` counts epochs or steps done (recorded in the segments)."""
        save_torch(self._stamp(state, progress), self.path)

    def save_best(self, state: dict, progress: int) -> None:
        save_torch(self._stamp(state, progress), self.best_path)

    def complete(self, out_dir: str | Path, prov: dict) -> dict:
        """The end of a training: write ``prov`` as ``out_dir/provenance.json`` (the model and metrics are
        written by then), mark the run finished (:meth:`finish`), release the lock; returns ``prov``."""
        from deepaug.engine.fingerprint import file_sha256
        from deepaug.io import write_json

        hashes = {}
        if (Path(out_dir) / "model.pt").is_file():
            hashes["model.pt"] = file_sha256(Path(out_dir) / "model.pt")
            prov = dict(prov, model_sha256=hashes["model.pt"])
        write_json(Path(out_dir) / "provenance.json", prov)
        self.finish(out_dir, hashes)
        self.unlock()
        return prov

    def finish(self, out_dir: str | Path, hashes: dict[str, str] | None = None) -> None:
        """Mark the run finished (after its outputs are written to ``out_dir``), keep those outputs in
        ``final/`` for :meth:`reuse` with each one's sha256 (``hashes``: those already computed, by name),
        and apply the ``keep`` policy."""
        from deepaug.engine.fingerprint import file_sha256
        from deepaug.io import link_or_copy, write_json

        if self.final_dir.exists():
            shutil.rmtree(self.final_dir)
        outputs = {}
        if self.keep in ("last", "all"):
            for name in RUN_OUTPUTS:
                link_or_copy(Path(out_dir) / name, self.final_dir / name)
                # checked by reuse(); a hard link (or copy) has the bytes just hashed
                outputs[name] = (hashes or {}).get(name) or file_sha256(self.final_dir / name)
        if self.keep in ("last", "none"):
            for path in (self.path, self.best_path):
                if path.exists():
                    path.unlink()
        for aside in ("stale", "corrupt"):  # set aside by earlier attempts: the run is done with them
            if self.keep != "all" and (self.dir / aside).is_dir():
                shutil.rmtree(self.dir / aside)
        write_json(
            self.finished_path,
            {
                "fingerprint": self.fingerprint,
                "settings": self.settings,
                "segments": self.all_segments(),
                "keep": self.keep,
                "outputs": outputs,
            },
        )


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def rng_states() -> dict:
    """Every generator's state as tensors and plain values (a checkpoint loads with ``weights_only=True``:
    numpy's state is stored as its parts, its key array as a tensor, not as a pickled ndarray)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "bit_generator": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(
        (n["bit_generator"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def snapshot(**parts) -> dict:
    """A checkpoint's state: ``snapshot(model=model, optimizer=opt, scaler=scaler, epoch=3, history=h)`` keeps
    the ``state_dict()`` of every part that has one and every other value as it is."""
    return {k: v.state_dict() if hasattr(v, "state_dict") else v for k, v in parts.items()}


def restore(state: dict, **objects) -> None:
    """The reverse of :func:`snapshot` for the stateful parts: ``restore(state, model=model, optimizer=opt)``
    loads ``state["model"]`` into ``model``, ... (the plain values are read by the caller)."""
    for key, obj in objects.items():
        obj.load_state_dict(state[key])
