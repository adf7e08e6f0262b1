"""Optional experiment tracking of a training run: its settings, and per period (epoch or dev check) the mean
loss, the learning rate and the dev score, sent to TensorBoard or MLflow (config ``tracking``, the trainers'
``--tracking``; ``none``, the default, sends nothing and imports nothing).

* ``tensorboard``: ``torch.utils.tensorboard.SummaryWriter`` (needs the ``tensorboard`` package), one event
  folder per run, ``tracking/tensorboard/<run>`` in the work directory (``tensorboard --logdir tracking``).
  Settings as a text summary (JSON) and as ``add_hparams``-free scalars of the periods.
* ``mlflow``: one MLflow run per training process, named by the run, in the experiment ``deepaug`` of the
  local file store ``tracking/mlruns`` (``mlflow ui --backend-store-uri tracking/mlruns``), or of the server
  ``MLFLOW_TRACKING_URI`` names when it is set. Settings as params, periods as metrics at their step.

A resumed run logs the periods it trains from then on (TensorBoard: the same folder; MLflow: a new run
tagged with the same run name). Tracking is not part of a run's fingerprint: switching it on keeps the
checkpoints and finished trainings valid.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from deepaug.core.vocabulary import TRACKERS
from deepaug.errors import DataUnavailableError

TRACKING_DIR = "tracking"
EXPERIMENT = "deepaug"


class Tracker:
    """Sends nothing (``tracking: none``)."""

    def log_settings(self, settings: dict) -> None:
        pass

    def log_period(self, row: dict, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def _numbers(row: dict) -> dict[str, float]:
    """The finite numbers of a metrics row (loss, lr, dev score, ...), bools and counters of periods left out."""
    out = {}
    for key, value in row.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or key in ("epoch", "step", "period"):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def _missing(kind: str, package: str, exc: ImportError) -> DataUnavailableError:
    return DataUnavailableError(
        f"tracking: {kind} needs the {package} package, which is not installed ({exc}); "
        f"pip install {package}, or set tracking: none in the config (--tracking none)"
    )


class TensorBoardTracker(Tracker):
    def __init__(self, run: str, root: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch.utils.tensorboard imports the tensorboard package
            raise _missing("tensorboard", "tensorboard", exc) from None
        self.log_dir = root / "tensorboard" / run
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def log_settings(self, settings: dict) -> None:
        self.writer.add_text(
            "settings", "```\n" + json.dumps(settings, indent=1, sort_keys=True, default=str) + "\n```"
        )

    def log_period(self, row: dict, step: int) -> None:
        for key, value in _numbers(row).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MLflowTracker(Tracker):
    def __init__(self, run: str, root: Path) -> None:
        try:
            import mlflow
        except ImportError as exc:
            raise _missing("mlflow", "mlflow", exc) from None
        self.mlflow = mlflow
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri((root / "mlruns").resolve().as_uri())
        mlflow.set_experiment(EXPERIMENT)
        self.run = mlflow.start_run(run_name=run, tags={"deepaug.run": run})

    def log_settings(self, settings: dict) -> None:
        # MLflow params are strings of bounded length: long values (lists) are cut, never dropped silently
        self.mlflow.log_params({k: str(v)[:500] for k, v in settings.items()})

    def log_period(self, row: dict, step: int) -> None:
        self.mlflow.log_metrics(_numbers(row), step=step)

    def close(self) -> None:
        self.mlflow.end_run()


def open_tracker(kind: str, run: str, root: str | Path = TRACKING_DIR) -> Tracker:
    """The tracker ``kind`` names (one of :data:`deepaug.core.vocabulary.TRACKERS`) for the run ``run``."""
    if kind not in TRACKERS:
        raise ValueError(f"tracking must be one of {TRACKERS}, got {kind!r}")
    if kind == "none":
        return Tracker()
    cls = TensorBoardTracker if kind == "tensorboard" else MLflowTracker
    return cls(run, Path(root))
