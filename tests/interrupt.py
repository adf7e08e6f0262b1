"""A training killed right after one of its checkpoints, in process: the tests of exact resume share it."""

from contextlib import contextmanager

import pytest

from deepaug.engine.checkpoint import Checkpointer


class Killed(Exception):
    """What the patched checkpoint writer raises: the job dies with its checkpoint on disk."""


@contextmanager
def killed_after_checkpoint(monkeypatch, at: int | None = None):
    """The training run inside the block writes its checkpoints as usual, and dies (:class:`Killed`) right after
    the one of progress ``at`` (epoch or step; None: the first). The block must die so; the writer is restored
    afterwards, ready for the run that resumes."""
    real_save = Checkpointer.save

    def save_then_die(self, state, progress):
        real_save(self, state, progress)
        if at is None or progress == at:
            raise Killed

    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    try:
        with pytest.raises(Killed):
            yield
    finally:
        monkeypatch.setattr(Checkpointer, "save", real_save)
