"""Threads, GPUs, memory and the SLURM partition of each job (no heavy imports: rules/common.smk builds one
:class:`JobResources` with Snakemake's ``workflow`` object handed in, so a test can hand in a stand-in).

GPUs. Each training job asks for `gpu` GPUs (config resources.gpu, default 1). Unless the command line or a
profile caps `gpu` (--resources gpu=N; the SLURM profile does), the GPUs of this machine cap how many such
jobs run at once, and each job claims a device of its own (deepaug.engine.gpus). Without GPUs nothing is
capped and the jobs train on the CPU (their logs say so).

Snakemake has no public call for "cap a resource unless the user did": the user's caps are read from
`workflow.resource_settings` (the settings of Snakemake's Python API; a plain mapping in Snakemake 8,
`Resources` in 9), not from `workflow.global_resources` (Resource objects only in 9), and the cap is set
with `workflow.register_resource` (a Workflow method, undocumented). These are the only places the
workflow touches Snakemake's internals; tests/workflow/test_resources.py states what they are expected to be.
"""

from __future__ import annotations

from collections.abc import Callable

from deepaug.workflow.jobs import per_job, resource
from deepaug.workflow.runs import Run

DEFAULT_CPUS = 8  # a job's CPUs on a cluster when the config does not say (resources.cpus)
DEFAULT_GPUS = 1
DEFAULT_MEM_MB = 32000


def user_cap(workflow, name: str):
    """The cap on resource `name` given with --resources (command line or profile), else None."""
    value = workflow.resource_settings.resources.get(name)
    return getattr(value, "value", value)


def jobs_run_here(workflow) -> bool:
    """False on a cluster: an executor plugin that is not local (also inside a cluster job)."""
    plugin = workflow.executor_plugin
    return plugin is None or plugin.common_settings.local_exec


def is_dry_run(workflow) -> bool:
    """-n/--dry-run; while the Snakefile is parsed no executor is set yet, so `workflow.dryrun` is still False
    there (Snakemake 9), and only the output settings know."""
    return workflow.dryrun or bool(getattr(workflow.output_settings, "dryrun", False))


def check_device(config: dict, local_gpus: list, workflow) -> None:
    """`device: cuda` on a machine without a GPU: say so before any job rather than in every job's log
    (only where the jobs run on this machine, and not in a dry run: a cluster's login node may have no GPU)."""
    if (
        str(config.get("device", "auto")).startswith("cuda")
        and not local_gpus
        and jobs_run_here(workflow)
        and not is_dry_run(workflow)
        and workflow.is_main_process
    ):
        raise ValueError(
            f"config key 'device': {config['device']!r} asks for a GPU, but this machine has none "
            "(nvidia-smi -L lists no GPU and CUDA_VISIBLE_DEVICES names none); use device: auto or cpu, "
            "or run on a GPU machine / through the SLURM profile"
        )


def runs_per_gpu(config: dict, domain: str) -> int:
    """`<domain>.resources.runs_per_gpu` (1 when the domain is off or does not say)."""
    section = config.get(domain)
    return int(((section or {}).get("resources") or {}).get("runs_per_gpu", 1)) if isinstance(section, dict) else 1


def gpu_units(config: dict, domains) -> int:
    """Shares per GPU on one machine: the largest runs_per_gpu of the config's domains (powers of two, so a run of
    a domain with r runs per GPU takes units / r shares). 1 when every domain has a GPU per run."""
    return max([runs_per_gpu(config, d) for d in domains] + [1])


def runs_per_gpu_env(config: dict, domains) -> str:
    """``$DEEPAUG_RUNS_PER_GPU`` for the jobs (deepaug.engine.gpus): ``vision=2,graph=8``; '' when every domain
    has a GPU per run. An environment variable, not a flag, so that the jobs' commands stay the same."""
    return ",".join(f"{d}={n}" for d in sorted(domains) if (n := runs_per_gpu(config, d)) != 1)


def packs_here(workflow) -> bool:
    """Whether several runs may share a GPU of this machine: not when Snakemake submits to a cluster
    (``--jobs`` with a cluster executor: `resource_settings.nodes` is set while the Snakefile is read, before
    the executor is), nor inside a SLURM job (a group job's runs take turns on its GPU, as allocated)."""
    import os

    return workflow.resource_settings.nodes is None and "SLURM_JOB_ID" not in os.environ


def cap_gpus(workflow, local_gpus: list, units: int = 1) -> int | None:
    """Cap the `gpu` resource at this machine's GPUs unless the user capped it; return how many GPUs this
    machine's jobs share (None: no GPU found and no cap given).

    With several runs per GPU (``units`` shares per GPU, :func:`gpu_units`) the `gpu` resource counts shares on
    this machine: the cap, the user's --resources gpu=N included (N GPUs), is multiplied by ``units``."""
    cap = user_cap(workflow, "gpu")
    if local_gpus and cap is None:
        workflow.register_resource("gpu", len(local_gpus) * units)
    elif cap is not None and units > 1:
        workflow.register_resource("gpu", int(cap) * units)
    return min((n for n in (cap, len(local_gpus)) if n), default=None)


class JobResources:
    """`threads:` and `resources:` of the rules. ``the_run`` finds a job's run from its wildcards
    (deepaug.workflow.jobs.Jobs.the_run); ``gpu_slots`` is :func:`cap_gpus`'s answer."""

    def __init__(self, workflow, config: dict, the_run: Callable, gpu_slots: int | None, units: int = 1):
        self.workflow, self.config, self.the_run, self.gpu_slots = workflow, config, the_run, gpu_slots
        self.units = units  # shares per GPU on this machine (gpu_units)

    def gpu_request(self, run: Run, packed: bool) -> int:
        """The `gpu` resource of a run's job: its GPUs; on this machine, with several runs per GPU, in shares
        (``packed``: a training, which takes units / runs_per_gpu shares per GPU; any other GPU job takes
        whole GPUs). On a cluster a job is an allocation of whole GPUs."""
        gpus = resource(run, "gpu", DEFAULT_GPUS)
        if self.units == 1 or not jobs_run_here(self.workflow):
            return gpus
        share = self.units // resource(run, "runs_per_gpu", 1) if packed else self.units
        return gpus * share

    def whole_gpu(self) -> Callable:
        """`gpu` of a job that needs one whole GPU (the benchmark), in shares on this machine."""
        return per_job(lambda wildcards: self.units if jobs_run_here(self.workflow) else 1)

    def partition_name(self, gpus) -> str | None:
        """The SLURM partition of a job asking for `gpus` GPUs: config `resources.gpu_partition` when it asks
        for any, else `resources.cpu_partition` (null: the cluster's default partition). Following the GPU
        request, rather than a list of rule names in the profile, keeps every GPU job (supervised,
        analysis, bench) off the CPU partition."""
        name = (self.config.get("resources") or {}).get("gpu_partition" if gpus else "cpu_partition")
        return name or None  # '' as null: a profile's `config:` entry cannot spell null (Snakemake reads strings)

    def partition(self, gpus) -> Callable:
        """:meth:`partition_name` as a `resources:` value: a callable, so that null drops the resource."""
        name = self.partition_name(gpus)
        return per_job(lambda wildcards: name)

    def cpu_job(self) -> dict:
        """`resources:` of a job without GPU: only its SLURM partition."""
        return dict(slurm_partition=self.partition(0))

    def _run_resource(self, key: str, default) -> Callable:
        return per_job(lambda wildcards: resource(self.the_run(wildcards), key, default))

    def run_job(self, runtime: int | None = None, packed: bool = False) -> dict:
        """`resources:` of a run's job (train, then evaluate; ``packed``: it shares its GPU with
        runs_per_gpu - 1 others on one machine) or an analysis job: GPUs, memory and (given a default)
        runtime from its domain's `resources` (the supervised overrides for the supervised counterpart),
        and the SLURM partition that follows the GPU request."""
        out = dict(
            gpu=per_job(lambda wildcards: self.gpu_request(self.the_run(wildcards), packed)),
            mem_mb=self._run_resource("mem_mb", DEFAULT_MEM_MB),
            slurm_partition=per_job(
                lambda wildcards: self.partition_name(resource(self.the_run(wildcards), "gpu", DEFAULT_GPUS))
            ),
        )
        model = (self.config.get("resources") or {}).get("gpu_model") or None
        if model:  # only GPU jobs: the plugin turns gpu_model into --gpus=<model>:<gpu or 1>
            out["gpu_model"] = per_job(
                lambda wildcards: model if resource(self.the_run(wildcards), "gpu", DEFAULT_GPUS) else None
            )
        if runtime is not None:
            out["runtime"] = self._run_resource("runtime", runtime)
        return out

    def group(self, stage: str) -> Callable:
        """`group:` of a run's job (``stage`` train) or an analysis job (``analyze``) on a cluster: many short jobs
        in one SLURM job. Analysis jobs are grouped per domain (``analyze_<domain>``); trainings when their
        domain's `resources.group` says so (``train_<domain>``). How many jobs share a SLURM job is the
        profile's `group-components` (profiles/slurm). Where jobs run on this machine (a local dry run
        included) there is no group, so that the local plan and its listing do not change."""

        def group_of(wildcards):
            # a cluster: submitting (--jobs with a cluster executor; also in a dry run with the profile,
            # which shows the groups) or inside a cluster job
            if self.workflow.resource_settings.nodes is None and jobs_run_here(self.workflow):
                return None
            run = self.the_run(wildcards)
            if stage == "train" and not resource(run, "group", False):
                return None
            return f"{stage}_{run.domain}"

        return per_job(group_of)

    def threads(self, run: Run, dataloader: bool = False) -> int:
        """Threads of a run's job or an analysis job: its OMP_NUM_THREADS, and SLURM's --cpus-per-task.

        The domain's `resources.cpus` is what a job asks for on a cluster and the most it gets anywhere. On
        one machine whose G GPUs are shared by jobs of g GPUs each, a GPU job gets at most
        --cores // (G / g) threads, so that `--cores 8` on 4 GPUs trains 4 runs at once (2 threads each:
        with the data on the GPU a training needs few CPU threads) rather than one 8-thread job at a time.
        A vision training with the reference augmentation backend (per-image transforms in `num_workers`
        DataLoader processes) asks for num_workers + 1 instead (``dataloader``: the job trains)."""
        cpus = resource(run, "cpus", DEFAULT_CPUS)
        gpus = resource(run, "gpu", DEFAULT_GPUS)
        train = run.section.get("train") or {}
        if dataloader and train.get("augment_backend") == "reference":
            return max(cpus, train.get("num_workers", 0) + 1)
        cores = self.workflow.resource_settings.cores
        if gpus and self.gpu_slots and cores and jobs_run_here(self.workflow):
            packed = resource(run, "runs_per_gpu", 1) if dataloader else 1  # dataloader: a training
            at_once = max(1, self.gpu_slots * packed // gpus)
            return max(1, min(cpus, cores // at_once))
        return cpus

    def job_threads(self, dataloader: bool = False) -> Callable:
        """:meth:`threads` as a `threads:` value: a callable, since the executor (local or cluster) is known
        only when the jobs are scheduled."""
        return per_job(lambda wildcards: self.threads(self.the_run(wildcards), dataloader))


def job_resources(workflow, config: dict, domains, the_run: Callable, local_gpus: list) -> JobResources:
    """rules/common.smk's :class:`JobResources`: where runs may share this machine's GPUs (:func:`packs_here`),
    the `gpu` resource counts shares of a GPU (:func:`gpu_units`) and the jobs learn their domain's runs per
    GPU from ``$DEEPAUG_RUNS_PER_GPU`` (an environment variable, not a flag: their commands stay the same);
    elsewhere a job has whole GPUs and the variable is empty."""
    import os

    from deepaug.engine.gpus import RUNS_PER_GPU_ENV

    packed = packs_here(workflow)
    units = gpu_units(config, domains) if packed else 1
    os.environ[RUNS_PER_GPU_ENV] = runs_per_gpu_env(config, domains) if packed else ""
    return JobResources(workflow, config, the_run, cap_gpus(workflow, local_gpus, units), units)
