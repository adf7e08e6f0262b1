# Shared set-up: the config's validation, the run table, the wildcard constraints, and thin wrappers that
# hand the rules the workflow's logic, which lives in the package (unit-tested in tests/workflow/):
# deepaug.workflow.plan (targets, figure table, captions), .jobs (per-job lookups, inputs, commands, log
# paths) and .resources (threads, GPUs, partitions; `workflow` handed in). The domains state their inputs
# and commands in deepaug/domains/<name>/__init__.py.
import os
import sys
from pathlib import Path

# This checkout: the folder above rules/. Not workflow.basedir, which is the *outer* workflow's folder when
# this one is used as a Snakemake `module` (config/README.md); the same folder otherwise.
WORKFLOW_ROOT = str(Path(str(workflow.current_basedir)).parent)
SRC = str(Path(WORKFLOW_ROOT) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from deepaug.domains import registry  # noqa: E402  (light: no torch)
from deepaug.engine.gpus import visible_gpu_ids  # noqa: E402
from deepaug.workflow.config import validate_config  # noqa: E402
from deepaug.workflow.jobs import (  # noqa: E402
    ANALYSIS_DIR,
    ANALYSIS_LOG,
    RUN_DIR,
    TRAIN_LOG,
    Jobs,
    per_job,
)
from deepaug.workflow.plan import (  # noqa: E402
    CLAIMS,
    FIDELITY,
    PUBLISHED_NUMBERS,
    RUN_TABLE,
    SUMMARY,
    SUPERVISED_TABLE,
    TABLE,
    TABLES,
    Plan,
)
from deepaug.workflow.resources import check_device, job_resources  # noqa: E402
from deepaug.workflow.runs import expand, table_text  # noqa: E402

validate_config(config)  # also fills in the schema's defaults
DOMAINS = registry()
# The run table: one row per run of every domain's sweep (results/runs.tsv); every rule finds its run
# here by its wildcards, and nothing parses a path back.
RUNS = expand(config)
# The targets' files (which `deepaug check-config` counts the jobs of), and each job's inputs and command.
PLAN = Plan(config, RUNS, DOMAINS)
JOBS = Jobs(config, RUNS, PLAN)

# Rules run the library from this checkout (`python -m deepaug ...`): no install step is needed
# inside the rules' conda envs, and cluster jobs (which re-read this file) get the same path.
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.getenv("PYTHONPATH")) if p)
)

# GPUs: `device: cuda` without one is refused before any job (not in a dry run, nor on a cluster); this
# machine's GPUs cap the `gpu` resource unless --resources does, in shares of a GPU where runs share one
# (<domain>.resources.runs_per_gpu; the jobs read $DEEPAUG_RUNS_PER_GPU): deepaug.workflow.resources.
LOCAL_GPUS = visible_gpu_ids()
check_device(config, LOCAL_GPUS, workflow)
RESOURCES = job_resources(workflow, config, DOMAINS, JOBS.the_run, LOCAL_GPUS)


wildcard_constraints:
    domain="|".join(DOMAINS),
    dataset=r"[A-Za-z0-9_\-]+",
    run=r"[A-Za-z0-9_.+\-]+",
    setting=r"[A-Za-z0-9_.+\-]+",
    seed=r"\d+",
    objective="contrastive|supervised",


# ---- thin wrappers: what the rules call (per_job: a function Snakemake calls for every job)
run_inputs = per_job(JOBS.run_inputs)
run_command = per_job(JOBS.run_command)
analysis_inputs = per_job(JOBS.analysis_inputs)
analyze_command = per_job(JOBS.analyze_command)
conda_env = per_job(JOBS.conda_env)
data_conda_env = per_job(JOBS.data_conda_env)
prepare_command = JOBS.prepare_command
tuned_flags = JOBS.tuned_flags
top_layer = JOBS.top_layer
partition = RESOURCES.partition
cpu_job = RESOURCES.cpu_job
run_job = RESOURCES.run_job
whole_gpu = RESOURCES.whole_gpu
job_group = RESOURCES.group
job_threads = RESOURCES.job_threads
FIGURE_TABLE = PLAN.figure_table
run_files = PLAN.run_files
setting_files = PLAN.setting_files
analysis_figures = PLAN.analysis_figures
analysis_targets = PLAN.analysis_targets
data_files = PLAN.data_files


def as_report(paths):
    """The PNGs of a figure list marked for `snakemake --report`, each with its caption."""
    return PLAN.as_report(paths, report)


# ---- the console: one line per job (deepaug.workflow.console: a tqdm progress bar, the job, its time;
# a failed job with its log's last line) instead of Snakemake's block of ten lines per job; the complete
# log is still in .snakemake/log/. DEEPAUG_CONSOLE=full or `--verbose` keeps Snakemake's own output, and
# so does a dry run (its listing of every job; workflow.dryrun is False while this file is parsed).
if (
    workflow.is_main_process
    and not workflow.output_settings.dryrun
    and not workflow.output_settings.verbose
    and os.environ.get("DEEPAUG_CONSOLE", "") != "full"
):
    from deepaug.workflow.console import install as one_line_per_job

    one_line_per_job()


# ---- after a failure


def last_line(path, width=300):
    """The last real line of a log (the library's one-line error, or a traceback's last
    line), not a progress bar: tqdm's carriage-return updates are skipped."""
    from deepaug.workflow.console import last_log_line

    return last_log_line(path, width)


def print_failed_jobs():
    """After a failed invocation: one line per failed run with its log, below Snakemake's own errors.
    With keep-going (profiles/default) a failure does not stop the other runs; this says which failed.
    """
    failed = list(JOBS.failed_jobs())  # a log but no output (deepaug.workflow.jobs)
    if not failed:
        return
    lines = [
        f"deepaug: {len(failed)} job(s) of the sweep have no output (failed or killed):"
    ]
    for stage, run, log in failed:
        lines.append(f"  {stage} {run}: see {log}\n      {last_line(log)}")
    lines.append(
        "Fix the cause and run the same command again: finished runs are kept, failed ones run "
        "again (trainings resume from their checkpoints under checkpoints/)."
    )
    print("\n".join(lines), file=sys.stderr)
