"""What a Snakemake run of this workflow prints: one line per job, and the last real line of a failed log.

Snakemake prints a block of ten or more lines per job (rule, input, output, log, reason, resources,
timestamps, "Select jobs to execute...", the shell command): about 700 lines for the demo's 40 jobs. The
workflow installs :class:`OneLinePerJob` on Snakemake's console handler (rules/common.smk: not in a dry
run, whose listing of the jobs is its point, nor with ``--verbose`` or ``DEEPAUG_CONSOLE=full``); it
prints one line per finished job instead, a progress bar drawn by tqdm::

     31%|███▏      | 12/40 [01:40<03:50] train vision/digits/none/seed0 (8 s)

and one line per failed job with the last real line of its log. Everything else Snakemake says (the job
statistics, warnings, errors, "Trying to restart job", the summary of failures) passes unchanged, and
the complete log is still written to ``.snakemake/log/`` (its path is the last line of the run).

Light: the Snakefile imports it (no torch, no pandas); it relies on Snakemake's log events (``event``
attributes of the log records, Snakemake 8.x-9.x) and lets through any record it does not know.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

# tqdm redraws a bar on one line with carriage returns ("seed0:  50%|█████     | 6/12 [00:10<00:10, 1.67s/it]");
# the text after its closing bracket, if any, is what was written next on that line (e.g. an error).
_BAR = re.compile(r"^.*?\d+%\|[^|]*\|[^\[\]]*\[[^\]]*\]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Snakemake's scheduler chatter between jobs: says nothing a user acts on
_CHATTER = re.compile(
    r"^(Select jobs to execute\.\.\.|Execute \d+ jobs\.\.\."
    r"|Rules claiming more threads will be scaled down\.)$"
)
TAIL_BYTES = 1 << 16  # how much of a log's end is read for its last line


def last_log_line(path: str | Path, width: int = 300) -> str:
    """The last real line of a log: not a progress bar (tqdm's carriage-return updates are lines of their
    own here, and a bar's leftover text after its closing bracket counts), colour codes removed; the
    last bar itself only when the log has nothing else."""
    path = Path(path)
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - TAIL_BYTES))
        text = fh.read().decode(errors="replace")
    bars = []
    for part in reversed(re.split(r"[\r\n]+", text)):
        part = _ANSI.sub("", part).strip()
        if not part:
            continue
        rest = _BAR.sub("", part, count=1).strip()
        if rest == part:
            return part[:width]
        if rest:
            return rest[:width]
        bars.append(part)
    return bars[0][:width] if bars else "(the log is empty)"


def _event(record: logging.LogRecord) -> str | None:
    event = getattr(record, "event", None)
    return getattr(event, "value", event)


def _target(wildcards: dict | None) -> str:
    """A job's wildcards as the run path they spell: vision/digits/none/seed0."""
    return "/".join(f"seed{v}" if k == "seed" else str(v) for k, v in (wildcards or {}).items())


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


class OneLinePerJob(logging.Filter):
    """A filter for Snakemake's console handler: one line per finished job with a progress bar, one line
    per failed job (its log's last real line); the per-job blocks and scheduler chatter are dropped.

    The record a handler gets is shared with Snakemake's log file handler, so it is not changed: the
    console's text is put beside it (``deepaug_console``), and :class:`ConsoleFormatter` prints that."""

    def __init__(self, clock=time.monotonic):
        super().__init__()
        self.clock = clock
        self.started = clock()
        self.jobs: dict = {}  # jobid -> (name, start)
        self.finished: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        event = _event(record)
        if event == "job_info":
            name = " ".join(
                p for p in (getattr(record, "rule_name", ""), _target(getattr(record, "wildcards", None))) if p
            )
            self.jobs[getattr(record, "jobid", None)] = (name, self.clock())
            return False
        if event in ("shellcmd", "job_started", "workflow_started"):
            return False
        if event == "job_finished":
            jobid = getattr(record, "job_id", None)
            name, start = self.jobs.pop(jobid, (f"job {jobid}", None))
            self.finished.append(name + (f" ({_seconds(self.clock() - start)})" if start is not None else ""))
            return False
        if event == "progress":
            done, total = getattr(record, "done", 0), getattr(record, "total", 0)
            lines = [f"{self.bar(done, total)} {name}" for name in self.finished] or [self.bar(done, total)]
            self.finished = []
            return self._say(record, "\n".join(lines))
        if event == "job_error":
            jobid = getattr(record, "jobid", None)
            name = self.jobs.pop(jobid, (getattr(record, "rule_name", None) or f"job {jobid}",))[0]
            logs = [str(f) for f in (getattr(record, "log", None) or [])]
            where = f" (log {logs[0]})" if logs else ""
            detail = f": {last_log_line(logs[0], 200)}" if logs and Path(logs[0]).is_file() else ""
            return self._say(record, f"failed: {name}{where}{detail}")
        if _CHATTER.match(str(record.msg or "")):
            return False
        return True

    def bar(self, done: int, total: int) -> str:
        """tqdm's progress bar of ``done`` of ``total`` jobs, with the time so far and the time left."""
        elapsed = self.clock() - self.started
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm comes with the locked environment; plain counts without it
            return f"[{done}/{total}]"
        return tqdm.format_meter(
            done,
            total,
            elapsed,
            ncols=60,
            bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
        )

    @staticmethod
    def _say(record: logging.LogRecord, text: str) -> bool:
        record.deepaug_console = text
        return True


class ConsoleFormatter(logging.Formatter):
    """Snakemake's formatter, except for the records :class:`OneLinePerJob` rewrote for the console."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        text = getattr(record, "deepaug_console", None)
        if text is not None:
            return text
        return self.inner.format(record) if self.inner is not None else super().format(record)


def install(logger: logging.Logger | None = None) -> OneLinePerJob | None:
    """Put a :class:`OneLinePerJob` on Snakemake's console handler (the stream handler of its logger);
    None where there is none (a logger plugin owns the console) or it is there already."""
    if logger is None:
        from snakemake.logging import logger
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            if any(isinstance(f, OneLinePerJob) for f in handler.filters):
                return None
            one_line = OneLinePerJob()
            handler.addFilter(one_line)
            handler.setFormatter(ConsoleFormatter(handler.formatter))
            return one_line
    return None
