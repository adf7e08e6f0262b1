"""What each job of the workflow reads, runs and logs, from its wildcards (no heavy imports: rules/common.smk
builds one :class:`Jobs` and hands its methods to the rules, wrapped by :func:`per_job`).

A job finds its run in the run table by its wildcards (``domain``, ``dataset``, ``run``, ``seed``; an
analysis job by ``setting`` instead of ``run``), never by parsing a path; the domain
(``deepaug/domains/<name>/__init__.py``) says how its inputs and commands are spelled. The patterns of the
per-run paths are written once here: the rules' ``output:``/``log:`` directives and the failure report
(:meth:`Jobs.failed_jobs`) both use them.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator

from deepaug.core.settings import without_quiet_defaults
from deepaug.workflow.plan import Plan
from deepaug.workflow.runs import Run, analysis_dir, resolve_section

# The wildcard patterns of a run's and of an analysis's directory, and the logs of their jobs.
RUN_DIR = "{domain}/{dataset}/{run}/seed{seed}"
ANALYSIS_DIR = analysis_dir("{domain}", "{dataset}", "{setting}", "{seed}")
TRAIN_LOG = f"logs/train/{RUN_DIR}.log"
ANALYSIS_LOG = f"logs/{ANALYSIS_DIR.removeprefix('results/')}.log"
CHECK_CONFIG = "python -m deepaug check-config lists what the config makes"


def per_job(fn: Callable) -> Callable:
    """A function of the wildcards that Snakemake calls for every job (input, params, threads, resources,
    conda env), with its signature computed once.

    Snakemake looks up such a function's parameters with inspect.signature on each call (about 20 µs,
    ~70,000 calls in the paper config's dry run); inspect.signature returns an explicit `__signature__`
    as it is, so computing it once here takes about a tenth off `snakemake -n`
    (python -m deepaug.workflow.dag_bench). A plain function, so that a bound method can be handed in."""

    def job_function(wildcards):
        return fn(wildcards)

    job_function.__signature__ = inspect.signature(job_function)
    job_function.__name__ = job_function.__qualname__ = getattr(fn, "__name__", "job_function")
    job_function.__doc__ = fn.__doc__
    return job_function


def train_log(run: Run) -> str:
    """The log of a run's job (rules/train.smk)."""
    return TRAIN_LOG.format(domain=run.domain, dataset=run.dataset, run=run.id, seed=run.seed)


def analysis_log(run: Run) -> str:
    """The log of the analysis job of a run's setting and seed (rules/analysis.smk)."""
    return ANALYSIS_LOG.format(domain=run.domain, dataset=run.dataset, setting=run.setting, seed=run.seed)


def resource(run: Run, key: str, default):
    """`resources.<key>` of a run (gpu, cpus, mem_mb, runtime): its domain's, with the supervised overrides
    already merged into the run's settings (deepaug.workflow.runs.resolve_section)."""
    return (run.section.get("resources") or {}).get(key, default)


class Jobs:
    """The per-job lookups, inputs and commands of one validated config and its run table."""

    def __init__(self, config: dict, runs: list[Run], plan: Plan | None = None):
        self.config = config
        self.runs = runs
        self.plan = Plan(config, runs) if plan is None else plan
        self.domains = self.plan.domains
        self.index = {(r.domain, r.dataset, r.id, r.seed): r for r in runs}
        self.device = config.get("device", "auto")

    # ---- lookups
    def the_run(self, wildcards) -> Run:
        """The run-table row of a job, from its wildcards (of an analysis job: its setting's first run,
        whose domain, settings and resources every candidate shares)."""
        if not hasattr(wildcards, "run"):
            return self.the_setting(wildcards)[0]
        key = (wildcards.domain, wildcards.dataset, wildcards.run, int(wildcards.seed))
        if key not in self.index:
            raise ValueError(
                f"results/{wildcards.domain}/{wildcards.dataset}/{wildcards.run}/seed{wildcards.seed} "
                f"is not a run of this config's sweep ({CHECK_CONFIG})"
            )
        return self.index[key]

    def the_setting(self, wildcards) -> list[Run]:
        """The candidate runs of an analysis job, from its wildcards."""
        key = (wildcards.domain, wildcards.dataset, wildcards.setting, int(wildcards.seed))
        if key not in self.plan.settings:
            raise ValueError(
                f"{analysis_dir(*key)} is not a setting of this config's contrastive sweep ({CHECK_CONFIG})"
            )
        return self.plan.settings[key]

    # ---- the settings a run's command is given
    def train_settings(self, run: Run) -> dict:
        """The flags of a run's trainer: its Deep Augmentation setting, model, training settings, seed."""
        s = run.section
        checkpoints = self.config.get("checkpoints") or {}
        return {
            "run": run.path,
            **run.augment(),
            **(s.get("model") or {} if self.domains[run.domain].model_flags else {}),
            # a setting that came after runs were made is left out at its default (train.ssl_method: simclr)
            **without_quiet_defaults(s.get("train") or {}),
            "objective": run.objective,
            "seed": run.seed,
            "device": self.device,
            "keep_checkpoints": checkpoints.get("keep"),
            "reuse_finished": checkpoints.get("reuse"),
        }

    def eval_settings(self, run: Run) -> dict:
        """The flags of a run's evaluation (seeded by the run's seed where the domain says so)."""
        extra = {"seed": run.seed} if self.domains[run.domain].eval_seeded else {}
        return {**(run.section.get("eval") or {}), **extra, "device": self.device}

    def tuned_flags(self) -> str:
        """`--tuned text=lr,batch_size ...`: each domain's axes chosen on dev (config `<domain>.tuned`)."""
        out = []
        for name in self.domains:
            axes = (self.config.get(name) or {}).get("tuned") or []
            if axes:
                out.append(f"--tuned {name}={','.join(axes)}")
        return " ".join(out)

    # ---- the jobs of a run (rules/train.smk), of an analysis (rules/analysis.smk) and of a data item
    def run_inputs(self, wildcards) -> list[str]:
        run = self.the_run(wildcards)
        return self.domains[run.domain].run_inputs(run.section, run)

    def run_command(self, wildcards) -> str:
        """The run's command. A function of the wildcards only (not of `output`), so that Snakemake records
        it and re-runs the job when it changes: params derived from input or output are left out of its
        params rerun trigger (persistence `non_derived_params`)."""
        run = self.the_run(wildcards)
        return self.domains[run.domain].run_command(
            run, f"results/{run.path}", f"checkpoints/{run.path}", self.train_settings(run), self.eval_settings(run)
        )

    def analysis_inputs(self, wildcards) -> dict[str, str | list[str]]:
        """The candidates' models and eval.json (the dev score chooses among them), and the domain's data."""
        return self.plan.analysis_input_files(self.the_setting(wildcards))

    def analyze_command(self, wildcards) -> str:
        """The analysis command; of the wildcards only, so that a changed setting re-runs it (see
        :meth:`run_command`)."""
        candidates = self.the_setting(wildcards)
        run = candidates[0]
        domain = self.domains[run.domain]
        out = run.analysis_dir
        data = domain.analysis_inputs(self.config, run.section, run)["data"]
        return domain.analyze_command(
            candidates, data, f"{out}/analysis.json", f"{out}/cka.npz", self.config, self.device
        )

    def prepare_command(self, domain: str, item: str) -> str:
        """The command that makes data/<domain>/<item> (a file, or `models/<name>`: a prepared model folder)."""
        return self.domains[domain].prepare_command(item, f"data/{domain}/{item}", self.config)

    def conda_env(self, wildcards) -> str:
        """The conda env of a per-run job: its domain's (deepaug/domains/<name>: `env`)."""
        return f"../envs/{self.domains[wildcards.domain].env}"

    def data_conda_env(self, wildcards) -> str:
        """The conda env of a data job: its domain's `data_env`."""
        return f"../envs/{self.domains[wildcards.domain].data_env}"

    # ---- the figure jobs
    def top_layer(self, domain: str, objective: str) -> int | None:
        """Index of the last layer (the pooled sentence vector, the head), labelled in the figures. For text
        the depth comes from the encoder's own config once data/text/models holds it, hence asked when the
        figure job is scheduled; None, no label, when it cannot be known."""
        return self.domains[domain].top_layer(resolve_section(self.config.get(domain) or {}, objective))

    # ---- after a failure
    def failed_jobs(self, exists: Callable[[str], bool] = os.path.exists) -> Iterator[tuple[str, str, str]]:
        """(job, run, log) of every job of the grid that left a log but not its output: the jobs that failed
        (or were killed) in this or an earlier invocation and have not succeeded since. Read from the
        files, not from Snakemake's output, so that it works the same on every executor."""
        for r in self.runs:  # the run's job: trained, then evaluated
            log = train_log(r)
            if exists(log) and not exists(f"results/{r.path}/eval.json"):
                yield "train", r.path, log
        for candidates in self.plan.settings.values():
            out, log = candidates[0].analysis_dir, analysis_log(candidates[0])
            if exists(log) and not exists(f"{out}/analysis.json"):
                yield "analysis", out, log
