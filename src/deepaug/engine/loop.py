"""The one resumable training loop: every trainer's order of steps, stated once.

:func:`train` runs a :class:`Task`, the part of a training that belongs to its domain (the model, the
batches, the loss, the dev score, what ``model.pt`` holds). The loop owns the order:

1. open the run (:func:`deepaug.engine.checkpoint.open_run`: validate the settings, lock the checkpoint
   directory) and give a finished run's outputs back when they may be reused;
2. prepare the device, determinism and seeds, then let the task build its data, model and op
   (:meth:`Task.build`), and make the optimiser (:meth:`Task.optimizer`) and the gradient scaler;
3. resume from ``last.pt`` (weights, optimiser, scaler, progress, history and, for a task that does not
   reseed each period, every generator's state);
4. run periods (an epoch, or the steps between two dev checks) until :meth:`Task.finished`: at the start of a
   period, reseed (tasks with ``reseed_each_period``) and switch to training mode; for each batch, the
   learning rate, the forward pass under autocast, the loss, the optimiser step and the task's
   :meth:`Task.after_step`; at the end, the NaN guard on the period's loss, the optional dev check with
   best-keeping and patience, the history row and, on the checkpoint cadence, ``last.pt`` and the metrics;
5. check the final (or dev-best) weights are finite, write ``model.pt``, the metrics and the provenance, and
   mark the run complete.

Each period of a task that reseeds is a pure function of (weights, optimiser, seed, period), and a task that
does not reseed has its generators' states checkpointed: either way a killed run resumes exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from deepaug.engine import training as T
from deepaug.engine.checkpoint import Checkpointer, open_run, restore, restore_rng_states, rng_states, snapshot
from deepaug.engine.provenance import provenance
from deepaug.engine.tracking import open_tracker
from deepaug.errors import NonFiniteError
from deepaug.io import save_torch, write_jsonl


@dataclass
class Progress:
    """Where a run stands; checkpointed in ``last.pt`` beside the task's parts."""

    period: int = 0  # periods done (epochs, or dev checks)
    step: int = 0  # optimiser steps done
    history: list[dict] = field(default_factory=list)  # one row per period (train_metrics.jsonl)
    train_time_s: float = 0.0
    best: float = -math.inf  # the best dev score so far (tasks with a dev check)
    bad_checks: int = 0  # dev checks that did not improve on the best (tasks with patience)
    stopped: bool = False  # stopped early (patience exhausted)


@dataclass
class PeriodEnd:
    """What the loop measured over one period, for :meth:`Task.record`."""

    loss: float  # the mean loss over the period's steps
    lr: float  # the learning rate of the period's last step
    seconds: float
    dev: float | None  # the dev score (tasks with a dev check)


class Task:
    """What a domain hands to :func:`train`. Subclass it and fill in the hooks marked *required*.

    Attributes set by the subclass:

    * ``s``: the run's settings (a :class:`deepaug.core.settings.RunSettings`);
    * ``inputs``: name -> file, fingerprinted with the settings (a changed input file restarts the run);
    * ``unit``: ``"epochs"`` when a period is an epoch (checkpoints say ``epoch``; their progress counts epochs),
      ``"steps"`` when periods end at dev checks (progress counts steps);
    * ``reseed_each_period``: reseed every generator (and the op) from (seed, period) at each period's start,
      so the checkpoint needs no generator state; False: the generators run on and are checkpointed;
    * ``checkpoint_every``: periods between two checkpoints (the last period is always checkpointed);
    * ``keeps_best``: the task has a dev check (:meth:`dev_score`); ``best.pt`` keeps the weights of its best
      score and those are what ``model.pt`` ships;
    * ``patience``: with a dev check, stop once this many checks did not improve (SentEval's count, never
      reset), or None to never stop early;
    * ``aug``: the run's :class:`deepaug.core.augment.DeepAugment` (or None), set by :meth:`build`.
    """

    unit = "epochs"
    reseed_each_period = True
    checkpoint_every = 1
    keeps_best = False
    patience: int | None = None
    aug = None

    # ------------------------------------------------------------------ building
    def build(self, device: torch.device) -> None:
        """*Required.* Load the data, build the model (seeds are set), attach the op, set ``self.aug``."""
        raise NotImplementedError

    def optimizer(self, device: torch.device) -> torch.optim.Optimizer:
        """*Required.* The optimiser over every trained parameter."""
        raise NotImplementedError

    def parts(self) -> dict[str, torch.nn.Module]:
        """*Required.* The modules checkpointed by name (``{"model": model}``, plus a head, a target...)."""
        raise NotImplementedError

    def modules(self) -> Iterable[torch.nn.Module]:
        """The modules switched to training mode at each period's start (default: :meth:`parts`)."""
        return self.parts().values()

    # ------------------------------------------------------------------ training
    def finished(self, p: Progress) -> bool:
        """*Required.* Whether training is done (e.g. ``p.period == epochs`` or ``p.step == total``)."""
        raise NotImplementedError

    def batches(self, p: Progress, seed: int) -> Iterable:
        """*Required.* The period's batches; ``seed`` is the period's data seed (``epoch_seed(.., stream=2)``)."""
        raise NotImplementedError

    def lr(self, step: int) -> float:
        """The learning rate of step ``step`` (default: the settings' ``lr``, constant)."""
        return self.s.lr

    def forward(self, batch):
        """*Required.* The model's output on ``batch`` (run under autocast)."""
        raise NotImplementedError

    def loss(self, out, batch) -> torch.Tensor:
        """*Required.* The batch's loss from the model's output (run outside autocast)."""
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Called after each optimiser step (``step`` steps were done before it), e.g. an EMA update."""

    def total_steps(self) -> int | None:
        """The steps of the whole run, for the progress bar (None: unknown)."""
        return None

    # ------------------------------------------------------------------ checks and records
    def dev_score(self, p: Progress) -> float | None:
        """The dev score after a period (higher is better; the best weights are kept), or None: no dev check."""
        return None

    def best_state(self, p: Progress, score: float) -> dict:
        """What ``best.pt`` keeps of an improving dev check (tasks with a dev check)."""
        raise NotImplementedError

    def record(self, p: Progress, end: PeriodEnd) -> dict:
        """*Required.* The period's row of ``train_metrics.jsonl``."""
        raise NotImplementedError

    def state(self, p: Progress) -> dict:
        """Plain values of the task's own checkpointed with the loop's (read back by :meth:`load_state`)."""
        return {}

    def load_state(self, state: dict) -> None:
        """Read back what :meth:`state` checkpointed."""

    # ------------------------------------------------------------------ the end
    def final_weights(self, best: dict | None) -> dict[str, dict]:
        """*Required.* What must be finite before ``model.pt`` is written: description -> state dict (``best``:
        ``best.pt`` for tasks with a dev check, else None)."""
        raise NotImplementedError

    def payload(self, best: dict | None) -> dict:
        """*Required.* What ``model.pt`` holds."""
        raise NotImplementedError

    def provenance(self, p: Progress, best: dict | None) -> dict:
        """The task's own entries in ``provenance.json`` (data files, library versions, the best step...)."""
        return {}


class DataFileTask(Task):
    """A task trained on one prepared data file (vision, graphs), one period per epoch, with the objective
    its settings name (:mod:`deepaug.core.objectives`: the views per example, the head and the loss)."""

    def __init__(self, s, data_path: str | Path) -> None:
        from deepaug.core.objectives import objective

        self.s, self.data_path = s, data_path
        self.inputs = {"data": data_path}
        self.objective = objective(s.objective)
        self.checkpoint_every = s.checkpoint_every


def train(task: Task, out_dir: str | Path, ckpt_dir: str | Path) -> dict:
    """Run ``task`` to the end (resuming from ``ckpt_dir``); write ``model.pt``, ``train_metrics.jsonl`` and
    ``provenance.json`` to ``out_dir``; returns the provenance (or a reused finished run's)."""
    s = task.s
    t_start = time.time()
    ckpt = open_run(s, ckpt_dir, task.inputs)
    if (done := ckpt.reuse(out_dir, s.reuse_finished)) is not None:
        return done
    device = T.prepare(s)
    task.build(device)
    optimizer = task.optimizer(device)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and s.precision == "fp16")
    stateful = dict(task.parts(), optimizer=optimizer, scaler=scaler)
    p = _resume(task, ckpt, stateful)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    tracker = open_tracker(getattr(s, "tracking", "none"), s.run)
    tracker.log_settings(ckpt.settings)
    bar = tqdm(total=task.total_steps(), initial=p.step, desc=s.run, mininterval=10)
    try:
        while not p.stopped and not task.finished(p):
            _period(task, p, device, optimizer, scaler, ckpt, bar)
            tracker.log_period(p.history[-1], p.step)
            if _checkpoint_due(task, p):
                ckpt.save(_checkpoint(task, p, stateful), _progress(task, p))
                write_jsonl(out_dir / "train_metrics.jsonl", p.history)
    finally:
        bar.close()
        tracker.close()
    if p.stopped:
        T.log(
            f"{s.run}: early stop after {p.step} steps: {p.bad_checks} dev checks without improvement "
            f"(patience {task.patience}); best dev score {p.best:.2f}"
        )
    return _finish(task, p, ckpt, device, out_dir, t_start)


def _resume(task: Task, ckpt: Checkpointer, stateful: dict) -> Progress:
    """The progress to start from: ``last.pt``'s (its parts loaded into ``stateful``), or a fresh start."""
    state = ckpt.load()
    if state is None:
        return Progress()
    restore(state, **stateful)
    p = Progress(**{k: state[k] for k in Progress.__dataclass_fields__})
    task.load_state(state)
    if not task.reseed_each_period:
        restore_rng_states(state["rng"])
        if task.aug is not None:
            task.aug.set_rng_state(state["aug_rng"])
    periods = "epochs" if task.unit == "epochs" else "dev checks"
    T.log(f"{task.s.run}: resuming from {ckpt.path} after {p.period} {periods} (step {p.step})")
    return p


def _period(task: Task, p: Progress, device, optimizer, scaler, ckpt: Checkpointer, bar) -> None:
    """One period: reseed, the steps, then the NaN guard, the dev check and the history row."""
    s = task.s
    t0 = time.time()
    if task.reseed_each_period:
        # Each period is a pure function of (weights, optimiser, seed, period): resuming replays it exactly.
        T.seed_everything(T.epoch_seed(s.seed, p.period))
        if task.aug is not None:
            task.aug.reseed(T.epoch_seed(s.seed, p.period, stream=1))
    for module in task.modules():
        module.train()
    loss_sum = torch.zeros((), device=device)
    steps = 0
    lr = task.lr(p.step)
    for batch in task.batches(p, T.epoch_seed(s.seed, p.period, stream=2)):
        lr = task.lr(p.step)
        with T.autocast_context(device, s.precision):
            out = task.forward(batch)
        loss = task.loss(out, batch)
        T.optimizer_step(optimizer, scaler, loss, lr, s.max_grad_norm)
        task.after_step(p.step)
        loss_sum += loss.detach()
        p.step += 1
        steps += 1
        bar.update(1)
    mean_loss = T.check_finite(loss_sum, s.run, p.step) / max(steps, 1)
    p.period += 1
    dev = _dev_check(task, p, ckpt)
    dt = time.time() - t0
    p.train_time_s += dt
    p.history.append(task.record(p, PeriodEnd(loss=mean_loss, lr=lr, seconds=dt, dev=dev)))


def _dev_check(task: Task, p: Progress, ckpt: Checkpointer) -> float | None:
    """The dev score after a period; an improving one writes ``best.pt``, a worse one counts toward patience."""
    try:
        score = task.dev_score(p)
    except NonFiniteError as exc:  # a NaN/constant encoder fails here, naming the run and the step
        raise NonFiniteError(f"run {task.s.run}, dev check at step {p.step}: {exc}") from None
    if score is None:
        return None
    if score > p.best:
        p.best = score
        ckpt.save_best(task.best_state(p, score), p.step)
    elif task.patience is not None:  # SentEval's early stop: the count of non-improving checks is never reset
        p.stopped = p.bad_checks >= task.patience
        p.bad_checks += 1
    return score


def _checkpoint_due(task: Task, p: Progress) -> bool:
    return p.stopped or task.finished(p) or p.period % task.checkpoint_every == 0


def _progress(task: Task, p: Progress) -> int:
    """What a checkpoint's progress counts (recorded in the run's segments): epochs or steps done."""
    return p.period if task.unit == "epochs" else p.step


def _checkpoint(task: Task, p: Progress, stateful: dict) -> dict:
    """``last.pt``: the stateful parts, the progress, the task's own values and, for tasks that do not
    reseed, every generator's state (``epoch``: the last finished epoch, for tasks counting epochs)."""
    extra = {"epoch": p.period - 1} if task.unit == "epochs" else {}
    if not task.reseed_each_period:
        extra.update(rng=rng_states(), aug_rng=task.aug.rng_state() if task.aug is not None else {})
    return snapshot(**stateful, **vars(p), **extra, **task.state(p))


def _finish(task: Task, p: Progress, ckpt: Checkpointer, device, out_dir: Path, t_start: float) -> dict:
    """Check the weights to ship, write ``model.pt``, the metrics and the provenance; mark the run complete."""
    s = task.s
    best = ckpt.require_best() if task.keeps_best else None  # only this run's best.pt is ever shipped
    # The loss is checked before each update; the last update itself can still diverge.
    for what, weights in task.final_weights(best).items():
        T.check_finite_state(weights, s.run, what)
    save_torch(task.payload(best), out_dir / "model.pt")
    write_jsonl(out_dir / "train_metrics.jsonl", p.history)
    prov = provenance(
        ckpt.settings,
        device,
        time.time() - t_start,
        {
            "train_time_s": round(p.train_time_s, 3),
            "final_loss": p.history[-1]["loss"] if p.history else None,
            "steps": p.step,
            **task.provenance(p, best),
            "fingerprint": ckpt.fingerprint,
            "segments": ckpt.all_segments(),
        },
    )
    return ckpt.complete(out_dir, prov)
