# Shared helpers: config validation, the run table, and the per-run inputs and commands (which each
# domain states in deepaug/domains/<name>/__init__.py).
import inspect
import os
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from deepaug.domains import registry  # noqa: E402  (light: no torch)
from deepaug.engine.gpus import visible_gpu_ids  # noqa: E402
from deepaug.workflow.config import validate_config  # noqa: E402
from deepaug.workflow.plan import (  # noqa: E402
    CLAIMS,
    FIGURES,
    RUN_TABLE,
    SUMMARY,
    SUPERVISED_TABLE,
    TABLE,
    TABLES,
    Plan,
)
from deepaug.workflow.runs import analysis_dir, expand, table_text  # noqa: E402

validate_config(config)  # also fills in the schema's defaults
DOMAINS = registry()
# The run table: one row per run of every domain's sweep (results/runs.tsv); every rule finds its run
# here by its wildcards, and nothing parses a path back.
RUNS = expand(config)
RUN_INDEX = {(r.domain, r.dataset, r.id, r.seed): r for r in RUNS}
# The targets' files (deepaug.workflow.plan, which `deepaug check-config` counts the jobs of).
PLAN = Plan(config, RUNS, DOMAINS)
# The analyses: one per setting and seed of the contrastive runs, of its dev-selected candidate (the
# runs of a setting differ only in the domain's tuned axes; one run when nothing is tuned).
SETTINGS = PLAN.settings

# Rules run the library from this checkout (`python -m deepaug ...`): no install step is needed
# inside the rules' conda envs, and cluster jobs (which re-read this file) get the same path.
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.getenv("PYTHONPATH")) if p)
)

# GPUs. Each training job asks for `gpu` GPUs (config resources.gpu, default 1). Unless the command
# line or a profile caps `gpu` (--resources gpu=N; the SLURM profile does), the GPUs of this machine
# cap how many such jobs run at once, and each job claims a device of its own (deepaug.engine.gpus).
# Without GPUs nothing is capped and the jobs train on the CPU (their logs say so).
# Snakemake has no public call for "cap a resource unless the user did": the user's caps are read
# from `workflow.resource_settings` (the settings of Snakemake's Python API; a plain mapping in
# Snakemake 8, `Resources` in 9), not from `workflow.global_resources` (Resource objects only in 9),
# and the cap is set with `workflow.register_resource` (a Workflow method, undocumented).


def user_cap(name):
    """The cap on resource `name` given with --resources (command line or profile), else None."""
    value = workflow.resource_settings.resources.get(name)
    return getattr(value, "value", value)


def jobs_run_here():
    """False on a cluster: an executor plugin that is not local (also inside a cluster job)."""
    plugin = workflow.executor_plugin
    return plugin is None or plugin.common_settings.local_exec


def is_dry_run():
    """-n/--dry-run; while the Snakefile is parsed no executor is set yet, so `workflow.dryrun` is still False
    there (Snakemake 9), and only the output settings know."""
    return workflow.dryrun or bool(getattr(workflow.output_settings, "dryrun", False))


LOCAL_GPUS = visible_gpu_ids()
# `device: cuda` on a machine without a GPU: say so before any job rather than in every job's log
# (only where the jobs run on this machine; a cluster's login node may have no GPU).
if (
    str(config.get("device", "auto")).startswith("cuda")
    and not LOCAL_GPUS
    and jobs_run_here()
    and not is_dry_run()
    and workflow.is_main_process
):
    raise ValueError(
        f"config key 'device': {config['device']!r} asks for a GPU, but this machine has none "
        "(nvidia-smi -L lists no GPU and CUDA_VISIBLE_DEVICES names none); use device: auto or cpu, "
        "or run on a GPU machine / through the SLURM profile"
    )
USER_GPU_CAP = user_cap("gpu")
if LOCAL_GPUS and USER_GPU_CAP is None:
    workflow.register_resource("gpu", len(LOCAL_GPUS))
# How many GPUs this machine's jobs share (None: no GPU found and no cap given).
GPU_SLOTS = min((n for n in (USER_GPU_CAP, len(LOCAL_GPUS)) if n), default=None)


ANALYSIS = config.get("analysis") or {}
RUN_DIR = "{domain}/{dataset}/{run}/seed{seed}"
ANALYSIS_DIR = analysis_dir("{domain}", "{dataset}", "{setting}", "{seed}")


wildcard_constraints:
    domain="|".join(DOMAINS),
    dataset=r"[A-Za-z0-9_\-]+",
    run=r"[A-Za-z0-9_.+\-]+",
    setting=r"[A-Za-z0-9_.+\-]+",
    seed=r"\d+",
    objective="contrastive|supervised",


def runs(domain=None, objective=None):
    return PLAN.runs_of(domain, objective)


def per_job(fn):
    """Mark a function Snakemake calls for every job (input, params, threads, resources, conda env).

    Snakemake looks up such a function's parameters with inspect.signature on each call (about 20 µs,
    ~70,000 calls in the paper config's dry run); inspect.signature returns an explicit `__signature__`
    as it is, so computing it once here takes about a tenth off `snakemake -n`
    (python -m deepaug.workflow.dag_bench)."""
    fn.__signature__ = inspect.signature(fn)
    return fn


def the_run(wildcards):
    """The run-table row of a job, from its wildcards (of an analysis job: its setting's first run,
    whose domain, settings and resources every candidate shares)."""
    if not hasattr(wildcards, "run"):
        return the_setting(wildcards)[0]
    key = (wildcards.domain, wildcards.dataset, wildcards.run, int(wildcards.seed))
    if key not in RUN_INDEX:
        raise ValueError(
            f"results/{wildcards.domain}/{wildcards.dataset}/{wildcards.run}/seed{wildcards.seed} is not a "
            f"run of this config's sweep (python -m deepaug check-config lists what the config makes)"
        )
    return RUN_INDEX[key]


def the_setting(wildcards):
    """The candidate runs of an analysis job, from its wildcards."""
    key = (wildcards.domain, wildcards.dataset, wildcards.setting, int(wildcards.seed))
    if key not in SETTINGS:
        raise ValueError(
            f"{analysis_dir(*key)} is not a setting of this config's contrastive sweep "
            f"(python -m deepaug check-config lists what the config makes)"
        )
    return SETTINGS[key]


def setting_files(name, baseline_only=False):
    """One file per analysis (setting and seed), e.g. every analysis.json."""
    return PLAN.setting_files(name, baseline_only)


def domain_of(wildcards):
    return DOMAINS[wildcards.domain]


def run_files(name, objective="contrastive", runs_=None):
    """One file per run, e.g. every eval.json of the contrastive runs."""
    return PLAN.run_files(name, objective, runs_)


def run_table_text():
    """The run table as the text of results/runs.tsv (a params value: a changed sweep rewrites it)."""
    return table_text(RUNS)


def resource(run, key, default):
    """`resources.<key>` of a run (gpu, cpus, mem_mb, runtime): its domain's, with the supervised
    overrides already merged into the run's settings (deepaug.workflow.runs.resolve_section).
    """
    return (run.section.get("resources") or {}).get(key, default)


def tuned_flags():
    """`--tuned text=lr,batch_size ...`: each domain's axes chosen on dev (config `<domain>.tuned`)."""
    out = []
    for name in DOMAINS:
        axes = (config.get(name) or {}).get("tuned") or []
        if axes:
            out.append(f"--tuned {name}={','.join(axes)}")
    return " ".join(out)


def train_settings(run):
    """The flags of a run's trainer: its Deep Augmentation setting, model, training settings, seed."""
    s = run.section
    return {
        "run": run.path,
        **run.augment(),
        **(s.get("model") or {} if DOMAINS[run.domain].model_flags else {}),
        **(s.get("train") or {}),
        "objective": run.objective,
        "seed": run.seed,
        "device": config.get("device", "auto"),
        "keep_checkpoints": (config.get("checkpoints") or {}).get("keep"),
        "reuse_finished": (config.get("checkpoints") or {}).get("reuse"),
    }


def eval_settings(run):
    extra = {"seed": run.seed} if DOMAINS[run.domain].eval_seeded else {}
    return {
        **(run.section.get("eval") or {}),
        **extra,
        "device": config.get("device", "auto"),
    }


# ---- threads, GPUs and the SLURM partition of each job

DEFAULT_CPUS = (
    8  # a job's CPUs on a cluster when the config does not say (resources.cpus)
)


def partition(gpus):
    """The SLURM partition of a job asking for `gpus` GPUs: config `resources.gpu_partition` when it
    asks for any, else `resources.cpu_partition` (null: the cluster's default partition).

    Following the GPU request, rather than a list of rule names in the profile, keeps every GPU job
    (supervised, analysis, bench) off the CPU partition. A callable, so that null drops the resource.
    """
    name = (config.get("resources") or {}).get(
        "gpu_partition" if gpus else "cpu_partition"
    )
    return per_job(lambda wildcards: name)


def cpu_job():
    """`resources:` of a job without GPU: only its SLURM partition."""
    return dict(slurm_partition=partition(0))


def _run_resource(key, default):
    return per_job(lambda wildcards: resource(the_run(wildcards), key, default))


def run_job(runtime=None):
    """`resources:` of a run's job (train, then evaluate) or an analysis job: GPUs, memory and (given a default)
    runtime from its domain's `resources` (the supervised overrides for the supervised counterpart),
    and the SLURM partition that follows the GPU request."""

    @per_job
    def slurm_partition(wildcards):
        gpus = _run_resource("gpu", 1)(wildcards)
        return partition(gpus)(wildcards)

    out = dict(
        gpu=_run_resource("gpu", 1),
        mem_mb=_run_resource("mem_mb", 32000),
        slurm_partition=slurm_partition,
    )
    if runtime is not None:
        out["runtime"] = _run_resource("runtime", runtime)
    return out


def job_threads(dataloader=False):
    """Threads of a run's job or an analysis job: its OMP_NUM_THREADS, and SLURM's --cpus-per-task.

    The domain's `resources.cpus` is what a job asks for on a cluster and the most it gets anywhere.
    On one machine whose G GPUs are shared by jobs of g GPUs each, a GPU job gets at most
    --cores // (G / g) threads, so that `--cores 8` on 4 GPUs trains 4 runs at once (2 threads each:
    with the data on the GPU a training needs few CPU threads) rather than one 8-thread job at a time.
    A vision training with the reference augmentation backend (per-image transforms in `num_workers`
    DataLoader processes) asks for num_workers + 1 instead. A callable: the executor (local or
    cluster) is known only when the jobs are scheduled.
    """

    @per_job
    def threads(wildcards):
        run = the_run(wildcards)
        cpus = resource(run, "cpus", DEFAULT_CPUS)
        gpus = resource(run, "gpu", 1)
        train = run.section.get("train") or {}
        if dataloader and train.get("augment_backend") == "reference":
            return max(cpus, train.get("num_workers", 0) + 1)
        cores = workflow.resource_settings.cores
        if gpus and GPU_SLOTS and cores and jobs_run_here():
            at_once = max(1, GPU_SLOTS // gpus)
            return max(1, min(cpus, cores // at_once))
        return cpus

    return threads


@per_job
def conda_env(wildcards):
    """The conda env of a per-run job: its domain's (deepaug/domains/<name>: `env`)."""
    return f"../envs/{DOMAINS[wildcards.domain].env}"


@per_job
def data_conda_env(wildcards):
    """The conda env of a data job: its domain's `data_env`."""
    return f"../envs/{DOMAINS[wildcards.domain].data_env}"


# ---- commands of the per-run jobs (the domain says how; see deepaug/domains/<name>/__init__.py)


@per_job
def run_inputs(wildcards):
    run = the_run(wildcards)
    return DOMAINS[run.domain].run_inputs(run.section, run)


@per_job
def run_command(wildcards):
    """The run's command. A function of the wildcards only (not of `output`), so that Snakemake
    records it and re-runs the job when it changes: params derived from input or output are left
    out of its params rerun trigger (persistence `non_derived_params`)."""
    run = the_run(wildcards)
    return DOMAINS[run.domain].run_command(
        run,
        f"results/{run.path}",
        f"checkpoints/{run.path}",
        train_settings(run),
        eval_settings(run),
    )


@per_job
def analysis_inputs(wildcards):
    """The candidates' models and eval.json (the dev score chooses among them), and the domain's data."""
    candidates = the_setting(wildcards)
    run = candidates[0]
    out = {"models": [f"results/{r.path}/model.pt" for r in candidates]}
    if len(candidates) > 1:
        out["evals"] = [f"results/{r.path}/eval.json" for r in candidates]
    return {**out, **DOMAINS[run.domain].analysis_inputs(config, run.section, run)}


@per_job
def analyze_command(wildcards):
    """The analysis command; of the wildcards only, so that a changed setting re-runs it (see
    run_command)."""
    candidates = the_setting(wildcards)
    run = candidates[0]
    out = run.analysis_dir
    return DOMAINS[run.domain].analyze_command(
        candidates,
        DOMAINS[run.domain].analysis_inputs(config, run.section, run)["data"],
        f"{out}/analysis.json",
        f"{out}/cka.npz",
        config,
        config.get("device", "auto"),
    )


# ---- the figure table: one layer-sweep figure per domain, objective and dataset (deepaug.workflow.plan)

# (name, domain, objective, table, metric, datasets, files) of every layer-sweep figure job: `vision`,
# `text` for the contrastive runs, `vision_sup`, `text_sup` for the supervised ones.
FIGURE_TABLE = PLAN.figure_table


def figure_outputs(objective="contrastive"):
    return PLAN.figure_outputs(objective)


def top_layer(domain, objective):
    """Index of the last layer (the pooled sentence vector, the head), labelled in the figures. For text
    the depth comes from the encoder's own config once data/text/models holds it, hence evaluated when
    the figure job is scheduled; None, no label, when it cannot be known."""
    from deepaug.workflow.runs import resolve_section

    section = resolve_section(config.get(domain) or {}, objective)
    return DOMAINS[domain].top_layer(section)


def baseline_cka_files():
    return setting_files("cka.npz", baseline_only=True)


def analysis_figures():
    return PLAN.analysis_figures()


def analysis_targets():
    """Everything the `analysis` target makes; part of `all` when analysis.in_default_target is set."""
    return PLAN.analysis_targets()


def supervised_targets():
    """The supervised counterpart's table check, figures and notebooks (when configured)."""
    return PLAN.supervised_targets()


def data_files():
    """Every data file and folder the runs need (the `data` target)."""
    return PLAN.data_files()


def as_report(paths):
    """Mark the PNGs of a figure list for `snakemake --report`, each with its caption (the PDFs are the
    same figures)."""
    out = []
    for path in paths:
        if path.endswith(".png"):
            path = report(path, caption=caption(path), category="Figures")
        out.append(path)
    return out


CAPTIONS = (  # figure name ending -> report/<caption>.rst; any other figure is a layer sweep
    ("_tasks.png", "tasks"),
    ("_cka.png", "cka"),
    ("_align_uniform.png", "align_uniform"),
    ("_layer_selection.png", "layer_selection"),
)


def caption(png):
    """The caption (report/*.rst) of a figure, from its name (figure_table and analysis_figures make
    the names)."""
    name = os.path.basename(png)
    rst = next((rst for end, rst in CAPTIONS if name.endswith(end)), "layer_sweep")
    if rst == "layer_sweep" and any(name.startswith(f"{d}_sup_") for d in DOMAINS):
        rst = "supervised_sweep"
    return f"../report/{rst}.rst"


# ---- the console: one line per job (deepaug.workflow.console: a tqdm progress bar, the job, its time;
# a failed job with its log's last line) instead of Snakemake's block of ten lines per job; the complete
# log is still in .snakemake/log/. DEEPAUG_CONSOLE=full or `--verbose` keeps Snakemake's own output, and
# so does a dry run (known only once Snakemake runs the DAG: hence asked at each message).
if (
    workflow.is_main_process
    and not workflow.output_settings.verbose
    and os.environ.get("DEEPAUG_CONSOLE", "") != "full"
):
    from deepaug.workflow.console import install as one_line_per_job

    one_line_per_job(active=lambda: not workflow.dryrun)


# ---- after a failure


def failed_jobs():
    """(job, run, log) of every job of the grid that left a log but not its output: the jobs that
    failed (or were killed) in this or an earlier invocation and have not succeeded since. Read from
    the files, not from Snakemake's output, so that it works the same on every executor.
    """
    for r in RUNS:  # the run's job: trained, then evaluated
        log = f"logs/train/{r.path}.log"
        if os.path.exists(log) and not os.path.exists(f"results/{r.path}/eval.json"):
            yield "train", r.path, log
    for candidates in SETTINGS.values():
        out = candidates[0].analysis_dir
        log = f"logs/{out[len('results/'):]}.log"
        if os.path.exists(log) and not os.path.exists(f"{out}/analysis.json"):
            yield "analysis", out, log


def last_line(path, width=300):
    """The last real line of a log (the library's one-line error, or a traceback's last
    line), not a progress bar: tqdm's carriage-return updates are skipped."""
    from deepaug.workflow.console import last_log_line

    return last_log_line(path, width)


def print_failed_jobs():
    """After a failed invocation: one line per failed run with its log, below Snakemake's own errors.
    With keep-going (profiles/default) a failure does not stop the other runs; this says which failed.
    """
    failed = list(failed_jobs())
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
