# Shared helpers: config validation, the run grid, and the command that calls the library.
import os
import shlex
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from deepaug.workflow.config import validate_config  # noqa: E402  (light: no torch)
from deepaug.engine.gpus import visible_gpu_ids  # noqa: E402
from deepaug.workflow.runs import grid, model_dir_name, variant_name  # noqa: E402

validate_config(config)

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


LOCAL_GPUS = visible_gpu_ids()
# `device: cuda` on a machine without a GPU: say so before any job rather than in every job's log
# (only where the jobs run on this machine; a cluster's login node may have no GPU).
if (
    str(config.get("device", "auto")).startswith("cuda")
    and not LOCAL_GPUS
    and jobs_run_here()
    and not workflow.dryrun
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
TABLE = "results/table.csv"
SUMMARY = "results/summary.csv"
CLAIMS = "results/claims.csv"
SUPERVISED_TABLE = "results/analysis/supervised_table.csv"
FIGURES = "results/figures"
VARIANT = r"none|(dropout|pca)-L\d+-(sg|nosg)"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    method="dropout|pca",
    layer=r"\d+",
    sg="sg|nosg",
    seed=r"\d+",
    variant=VARIANT,
    task=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_.\-]+",


def section(domain):
    return config.get(domain) or {}


def runs(domain):
    s = section(domain)
    return grid(domain, s) if s.get("datasets") else []


def cli_flags(settings):
    """{'batch_size': 256, 'stop_gradient': True} -> '--batch-size 256 --stop-gradient true'."""
    out = []
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        out.append(f"--{key.replace('_', '-')} {shlex.quote(str(value))}")
    return " ".join(out)


def augment_settings(domain, wildcards):
    """The Deep Augmentation flags of one run, from its wildcards (none for the baseline)."""
    method = wildcards.get("method", "none")
    if method == "none":
        return {"method": "none"}
    aug = section(domain).get("augment", {})
    sg = wildcards.sg
    return {
        "method": method,
        "layer": int(wildcards.layer),
        "stop_gradient": sg == "sg",
        "rate": aug.get("dropout_rate", {}).get(sg, 0.5),
        "p": aug.get("p", 0.5),
        "pca_component": aug.get("pca_component", 1),
        "selection": aug.get("selection", "bernoulli"),
        "pca_over": aug.get("pca_over"),
        "pca_grad": aug.get("pca_grad"),
    }


def run_name(domain, wildcards):
    """'vision/digits/dropout-L3-sg/seed0': names the run in logs and error messages."""
    method = wildcards.get("method", "none")
    variant = variant_name(method, wildcards.get("layer"), wildcards.get("sg"))
    return f"{domain}/{wildcards.dataset}/{variant}/seed{wildcards.seed}"


def resource(domain, key, default):
    """`<domain>.resources.<key>` of the config (gpu, cpus, mem_mb, runtime, retries)."""
    return (section(domain).get("resources") or {}).get(key, default)


# ---- threads, GPUs and the SLURM partition of each job

DEFAULT_CPUS = (
    8  # a job's CPUs on a cluster when the config does not say (resources.cpus)
)
TRAIN_RETRIES = 2  # attempts after a failed training (resources.retries); each resumes from its checkpoint


def partition(gpus):
    """The SLURM partition of a job asking for `gpus` GPUs: config `resources.gpu_partition` when it
    asks for any, else `resources.cpu_partition` (null: the cluster's default partition).

    Following the GPU request, rather than a list of rule names in the profile, keeps every GPU job
    (supervised, analysis, bench) off the CPU partition. A callable, so that null drops the resource.
    """
    name = (config.get("resources") or {}).get(
        "gpu_partition" if gpus else "cpu_partition"
    )
    return lambda wildcards: name


def cpu_job():
    """`resources:` of a job without GPU: only its SLURM partition."""
    return dict(slurm_partition=partition(0))


def gpu_job(domain, runtime=None):
    """`resources:` of a training, evaluation or analysis job of `domain`: GPUs, memory and (given a
    default) runtime from `<domain>.resources`, and the SLURM partition that follows the GPU request.
    """
    gpus = resource(domain, "gpu", 1)
    out = dict(
        gpu=gpus,
        mem_mb=resource(domain, "mem_mb", 32000),
        slurm_partition=partition(gpus),
    )
    if runtime is not None:
        out["runtime"] = resource(domain, "runtime", runtime)
    return out


def job_threads(domain, dataloader=False):
    """Threads of a training/evaluation job of `domain`: its OMP_NUM_THREADS, and SLURM's --cpus-per-task.

    `<domain>.resources.cpus` is what a job asks for on a cluster and the most it gets anywhere. On one
    machine whose G GPUs are shared by jobs of g GPUs each, a GPU job gets at most --cores // (G / g)
    threads, so that `--cores 8` on 4 GPUs trains 4 runs at once (2 threads each: with the data on the
    GPU a training needs few CPU threads) rather than one 8-thread job at a time. A vision training with
    the reference augmentation backend (per-image transforms in `num_workers` DataLoader processes)
    asks for num_workers + 1 instead. A callable: the executor (local or cluster) is known only when
    the jobs are scheduled.
    """
    cpus = resource(domain, "cpus", DEFAULT_CPUS)
    gpus = resource(domain, "gpu", 1)
    train = section(domain).get("train") or {}
    if dataloader and train.get("augment_backend") == "reference":
        return max(cpus, train.get("num_workers", 0) + 1)

    def threads(wildcards):
        cores = workflow.resource_settings.cores
        if gpus and GPU_SLOTS and cores and jobs_run_here():
            at_once = max(1, GPU_SLOTS // gpus)
            return max(1, min(cpus, cores // at_once))
        return cpus

    return threads


# ---- per-rule parameters and targets


def _pretrain_flags(domain, wildcards, model_section, objective):
    settings = {
        "run": run_name(domain, wildcards),
        **augment_settings(domain, wildcards),
        **(
            section(model_section).get("model", {})
            if domain.startswith("vision")
            else {}
        ),
        **section(domain).get("train", {}),
        "objective": objective,
        "seed": int(wildcards.seed),
        "device": config.get("device", "auto"),
        "keep_checkpoints": (config.get("checkpoints") or {}).get("keep"),
    }
    return cli_flags(settings)


def vision_pretrain_flags(wildcards):
    return _pretrain_flags("vision", wildcards, "vision", "contrastive")


def vision_sup_pretrain_flags(wildcards):
    return _pretrain_flags("vision_sup", wildcards, "vision", "supervised")


def text_pretrain_flags(wildcards):
    return _pretrain_flags("text", wildcards, "text", "contrastive")


def text_sup_pretrain_flags(wildcards):
    return _pretrain_flags("text_sup", wildcards, "text", "supervised")


def _eval_flags(domain, wildcards):
    extra = {"seed": int(wildcards.seed)} if domain.startswith("vision") else {}
    return cli_flags(
        {
            **section(domain).get("eval", {}),
            **extra,
            "device": config.get("device", "auto"),
        }
    )


def vision_eval_flags(wildcards):
    return _eval_flags("vision", wildcards)


def vision_sup_eval_flags(wildcards):
    return _eval_flags("vision_sup", wildcards)


def all_run_files(name):
    """One file per run, e.g. every eval.json of the grid."""
    return [f"results/{r.path}/{name}" for d in ("vision", "text") for r in runs(d)]


def all_evals():
    return all_run_files("eval.json")


def baseline_cka_files():
    return [
        f"results/{r.path}/cka.npz"
        for d in ("vision", "text")
        for r in runs(d)
        if r.method == "none"
    ]


def analysis_figures():
    out = []
    for domain in ("vision", "text"):
        if runs(domain):
            for name in section(domain)["datasets"]:
                for kind in ("cka", "align_uniform"):
                    out += [
                        f"{FIGURES}/analysis_{domain}_{name}_{kind}.{ext}"
                        for ext in ("png", "pdf")
                    ]
    return out + [f"{FIGURES}/analysis_layer_selection.{ext}" for ext in ("png", "pdf")]


def figure_outputs():
    out = []
    v = section("vision")
    if runs("vision"):
        out += expand(
            f"{FIGURES}/vision_{{dataset}}.{{ext}}",
            dataset=v["datasets"],
            ext=["png", "pdf"],
        )
        out += ["results/notebooks/vision_figures.html"]
    if runs("text"):
        out += text_figures()
        out += ["results/notebooks/text_figures.html"]
    return out


def text_figures():
    names = section("text").get("datasets", [])
    sweep = expand(
        f"{FIGURES}/text_{{dataset}}.{{ext}}", dataset=names, ext=["png", "pdf"]
    )
    tasks = expand(
        f"{FIGURES}/text_{{dataset}}_tasks.{{ext}}", dataset=names, ext=["png", "pdf"]
    )
    return sweep + tasks


def text_model_dir():
    """Local copy of the encoder (prepared once by the data rule)."""
    return f"data/models/{model_dir_name(section('text')['model']['name'])}"


def text_top_layer():
    """Index of the pooled sentence vector (blocks + 1), labelled in the text figures. The depth comes
    from deepaug.workflow.config.text_layer_count (the encoder's own config once data/models holds it, hence
    evaluated when the figure job is scheduled); None, no label, when it cannot be known.
    """
    from deepaug.workflow.config import text_layer_count

    n = text_layer_count(section("text"))
    return None if n is None else n - 1


def text_eval_flags(wildcards):
    return _eval_flags("text", wildcards)


def text_sup_eval_flags(wildcards):
    return _eval_flags("text_sup", wildcards)


def text_task_files(domain="text"):
    return [
        f"data/text/tasks/{t}.parquet" for t in section(domain).get("test_tasks", [])
    ]


def supervised_evals():
    return [
        f"results/{r.path}/eval.json"
        for d in ("vision_sup", "text_sup")
        for r in runs(d)
    ]


def supervised_figures(domain):
    """The layer sweep per dataset; for text also the per-task heat map, which the notebook draws
    whenever the table has per-task scores (as for the contrastive text figures)."""
    names = section(domain).get("datasets", [])
    kinds = ["", "_tasks"] if domain.startswith("text") else [""]
    return expand(
        f"{FIGURES}/{domain}_{{dataset}}{{kind}}.{{ext}}",
        dataset=names,
        kind=kinds,
        ext=["png", "pdf"],
    )


def analysis_targets():
    """Everything the `analysis` target makes; part of `all` when analysis.in_default_target is set."""
    if not (runs("vision") or runs("text")):
        return []
    return [
        "results/analysis/layer_selection.csv",
        "results/notebooks/analysis.html",
    ] + supervised_targets()


def supervised_targets():
    """The supervised counterpart's table check, figures and notebooks (when configured)."""
    out = [
        f"results/notebooks/{d}_figures.html"
        for d in ("vision_sup", "text_sup")
        if runs(d)
    ]
    return out + (["results/analysis/inversion.csv"] if out else [])


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
    """The caption (report/*.rst) of a figure, from its name (figure_outputs, text_figures,
    supervised_figures and analysis_figures make the names)."""
    name = os.path.basename(png)
    rst = next((rst for end, rst in CAPTIONS if name.endswith(end)), "layer_sweep")
    if rst == "layer_sweep" and name.startswith(("vision_sup_", "text_sup_")):
        rst = "supervised_sweep"
    return f"../report/{rst}.rst"


# ---- after a failure


def failed_jobs():
    """(job, run, log) of every job of the grid that left a log but not its output: the jobs that
    failed (or were killed) in this or an earlier invocation and have not succeeded since. Read from
    the files, not from Snakemake's output, so that it works the same on every executor.
    """
    stages = (
        ("pretrain", "model.pt"),
        ("evaluate", "eval.json"),
        ("analysis", "analysis.json"),
    )
    for domain in ("vision", "text", "vision_sup", "text_sup"):
        for r in runs(domain):
            for stage, output in stages:
                log = f"logs/{stage}/{r.path}.log"
                if os.path.exists(log) and not os.path.exists(
                    f"results/{r.path}/{output}"
                ):
                    yield stage, r.path, log


def last_line(path, width=300):
    """The last non-empty line of a log (the library's one-line error, or a traceback's last line)."""
    with open(path, errors="replace") as fh:
        lines = [line.strip() for line in fh if line.strip()]
    return lines[-1][:width] if lines else "(the log is empty)"


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
