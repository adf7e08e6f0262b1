"""The console of a workflow run (deepaug.workflow.console): one line per job, and a failed job's last real
log line, never a progress bar."""

import io
import logging
import uuid

from snakemake_interface_logger_plugins.common import LogEvent

from deepaug.workflow.console import ConsoleFormatter, OneLinePerJob, install, last_log_line

BAR = "text/lee/none/seed0:  {p:>3}%|{fill:<10}| {n}/12 [00:10<00:10,  1.67s/it]"


def bars(*percent):
    return "\r".join(BAR.format(p=p, fill="█" * (p // 10), n=p * 12 // 100) for p in percent)


def test_the_last_line_of_a_log_is_not_a_progress_bar(tmp_path):
    log = tmp_path / "run.log"
    # tqdm redraws its bar with carriage returns and ends it with a newline; the error came before the last bar
    log.write_text("loading data\nValueError: the loss is not finite at step 6\n" + bars(0, 50, 100) + "\n")
    assert last_log_line(log) == "ValueError: the loss is not finite at step 6"
    # a bar cut short by the error: the error is written on the bar's line, after it
    log.write_text("loading data\n" + bars(0, 50) + "deepaug pretrain-text: error: out of memory\n")
    assert last_log_line(log) == "deepaug pretrain-text: error: out of memory"
    # colour codes are not part of the line; a log of bars alone gives its last bar; an empty log says so
    log.write_text("\x1b[1mBertModel LOAD REPORT\x1b[0m\n" + bars(0, 100))
    assert last_log_line(log) == "BertModel LOAD REPORT"
    log.write_text(bars(0, 50))
    assert last_log_line(log) == bars(50)
    log.write_text("\n\n")
    assert last_log_line(log) == "(the log is empty)"


def test_a_long_log_is_read_from_its_end(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("x" * 10_000 + "\n" + bars(*range(0, 101)) * 50 + "\nKeyboardInterrupt\n")
    assert last_log_line(log) == "KeyboardInterrupt"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def console():
    """A logger with a stream handler, as Snakemake's console, with the one-line filter installed."""
    logger = logging.getLogger(f"snakemake-console-test-{uuid.uuid4()}")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    one_line = install(logger)
    assert one_line is not None and install(logger) is None  # installed once
    one_line.clock = Clock()
    one_line.started = 0.0
    return logger, stream, one_line


def test_one_line_per_finished_job_with_a_progress_bar_and_nothing_of_the_job_blocks(tmp_path):
    logger, stream, one_line = console()
    logger.info(None, extra=dict(event=LogEvent.WORKFLOW_STARTED, host="h"))
    logger.info("Select jobs to execute...")
    logger.info("Execute 2 jobs...", extra=dict(event=LogEvent.JOB_STARTED, jobs=[1, 2]))
    logger.info(
        " Rule: train",
        extra=dict(
            event=LogEvent.JOB_INFO,
            jobid=1,
            rule_name="train",
            wildcards={"domain": "vision", "dataset": "digits", "run": "none", "seed": "0"},
        ),
    )
    logger.info("Shell command: python -m deepaug ...", extra=dict(event=LogEvent.SHELLCMD, shellcmd="python"))
    logger.info(" Rule: aggregate", extra=dict(event=LogEvent.JOB_INFO, jobid=2, rule_name="aggregate", wildcards={}))
    one_line.clock.now = 8.2
    logger.info("Finished jobid: 1 (Rule: train)", extra=dict(event=LogEvent.JOB_FINISHED, job_id=1))
    logger.info(None, extra=dict(event=LogEvent.PROGRESS, done=1, total=4))
    logger.warning("Trying to restart job 2.")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("| 1/4 [00:08<00:24] train vision/digits/none/seed0 (8 s)") and lines[0].startswith(
        " 25%|"
    )
    assert lines[1] == "Trying to restart job 2."  # anything else passes as Snakemake says it


def test_a_failed_job_is_one_line_with_its_logs_last_real_line(tmp_path):
    logger, stream, _ = console()
    log = tmp_path / "seed0.log"
    log.write_text("deepaug pretrain-vision: error: checkpoints/x is not a directory\n" + bars(0, 100) + "\n")
    logger.info(
        " Rule: train",
        extra=dict(event=LogEvent.JOB_INFO, jobid=7, rule_name="train", wildcards={"domain": "vision", "seed": "0"}),
    )
    logger.error(
        "Error in rule train, jobid: 7",
        extra=dict(event=LogEvent.JOB_ERROR, jobid=7, rule_name="train", log=[str(log)]),
    )
    assert stream.getvalue().splitlines() == [
        f"failed: train vision/seed0 (log {log}): deepaug pretrain-vision: error: checkpoints/x is not a directory"
    ]


def test_the_records_are_not_changed_for_snakemakes_log_file():
    """The console's text rides beside a record; the log file's handler formats the record itself."""
    logger, stream, _ = console()
    in_file = io.StringIO()
    file_handler = logging.StreamHandler(in_file)
    file_handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(file_handler)
    logger.info("Finished jobid: 3 (Rule: all)", extra=dict(event=LogEvent.JOB_FINISHED, job_id=3))
    logger.info("3 of 3 steps (100%) done", extra=dict(event=LogEvent.PROGRESS, done=3, total=3))
    assert in_file.getvalue().splitlines() == ["Finished jobid: 3 (Rule: all)", "3 of 3 steps (100%) done"]
    assert stream.getvalue().splitlines()[0].startswith("100%|")
    assert isinstance(logger.handlers[0].formatter, ConsoleFormatter)
    assert isinstance(logger.handlers[0].filters[-1], OneLinePerJob)


def test_deepaug_help_prints_no_warning():
    """`deepaug --help` builds every command's arguments (importing torch_geometric for the graph commands,
    whose import used to print torch's FutureWarning about torch.jit.script)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    res = subprocess.run(
        [sys.executable, "-m", "deepaug", "--help"], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0 and "pretrain-graph" in res.stdout
    assert "Warning" not in res.stderr, res.stderr


def test_the_failed_jobs_summary_of_the_workflow_uses_the_last_real_line(tmp_path):
    """rules/common.smk's `last_line` (what print_failed_jobs, the onerror hook, prints under each failed
    run) is the progress-bar-aware one: its source, run as it stands in the rules."""
    import re
    from pathlib import Path

    rules = (Path(__file__).resolve().parents[2] / "rules" / "common.smk").read_text()
    source = re.search(r"^def last_line\(.*?(?=^\S)", rules, re.M | re.S).group(0)
    namespace = {}
    exec(source, namespace)
    log = tmp_path / "seed0.log"
    log.write_text("deepaug pretrain-text: error: the loss is not finite at step 6\n" + bars(0, 50, 100) + "\n")
    assert namespace["last_line"](str(log)) == "deepaug pretrain-text: error: the loss is not finite at step 6"
