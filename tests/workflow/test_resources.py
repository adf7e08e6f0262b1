"""Threads, GPUs and SLURM partitions of the jobs (deepaug.workflow.resources), with a stand-in for Snakemake's
`workflow` object built from Snakemake's own settings classes (tests/engine/test_gpus.py runs the same
cases through `snakemake -n`)."""

import dataclasses
from types import SimpleNamespace

import pytest
import snakemake.api  # noqa: F401  (imports snakemake.workflow's dependencies in the order it needs)
from snakemake.resources import Resources
from snakemake.settings.types import OutputSettings, ResourceSettings
from snakemake.workflow import Workflow
from snakemake_interface_executor_plugins.settings import CommonSettings

from deepaug.workflow.resources import (
    DEFAULT_CPUS,
    JobResources,
    cap_gpus,
    check_device,
    is_dry_run,
    jobs_run_here,
    user_cap,
)
from deepaug.workflow.runs import Run


class FakeWorkflow(SimpleNamespace):
    """The attributes of snakemake.workflow.Workflow that the workflow reads, and register_resource."""

    def __init__(self, cores=8, caps=(), dryrun=False, cluster=False, main=True):
        plugin = None
        if cluster is not None:
            plugin = SimpleNamespace(
                common_settings=CommonSettings(
                    non_local_exec=cluster, implies_no_shared_fs=False, job_deploy_sources=False
                )
            )
        super().__init__(
            resource_settings=ResourceSettings(
                cores=cores, resources=Resources.parse(list(caps), allow_expressions=False)
            ),
            output_settings=OutputSettings(dryrun=dryrun),
            dryrun=False,
            executor_plugin=plugin,
            is_main_process=main,
            registered={},
        )

    def register_resource(self, name, value):
        self.registered[name] = value


def test_the_stand_in_has_what_snakemakes_workflow_has():
    """The internals rules/common.smk relies on (undocumented; tests/workflow/test_envs.py pins Snakemake 9)."""
    fields = {f.name for f in dataclasses.fields(Workflow)}
    for name in (
        "resource_settings",
        "output_settings",
        "executor_plugin",
        "dryrun",
        "is_main_process",
        "register_resource",
    ):
        assert name in fields or hasattr(Workflow, name), name
    assert {"cores", "resources"} <= {f.name for f in dataclasses.fields(ResourceSettings)}
    assert CommonSettings(non_local_exec=False, implies_no_shared_fs=False, job_deploy_sources=False).local_exec


def run(gpu=1, cpus=None, train=None, objective="contrastive", **resources):
    res = {"gpu": gpu, **({"cpus": cpus} if cpus is not None else {}), **resources}
    return Run(
        "vision", "digits", objective, "none", 0, "none", None, None, section={"resources": res, "train": train or {}}
    )


# ------------------------------------------------------------------------------ reading the workflow
def test_user_caps_from_the_command_line_or_a_profile():
    assert user_cap(FakeWorkflow(caps=["gpu=2"]), "gpu") == 2
    assert user_cap(FakeWorkflow(), "gpu") is None
    assert user_cap(SimpleNamespace(resource_settings=SimpleNamespace(resources={"gpu": 3})), "gpu") == 3  # Snakemake 8


def test_jobs_run_here_unless_the_executor_is_a_clusters():
    assert jobs_run_here(FakeWorkflow(cluster=None))  # no executor yet
    assert jobs_run_here(FakeWorkflow(cluster=False))
    assert not jobs_run_here(FakeWorkflow(cluster=True))


def test_a_dry_run_is_known_from_the_output_settings_while_the_snakefile_is_parsed():
    assert is_dry_run(FakeWorkflow(dryrun=True)) and not is_dry_run(FakeWorkflow())


@pytest.mark.parametrize(
    "device,gpus,kw,raises",
    [
        ("cuda", [], {}, True),
        ("cuda:1", [], {}, True),
        ("cuda", ["0"], {}, False),
        ("cuda", [], {"dryrun": True}, False),  # a dry run plans on a machine without a GPU
        ("cuda", [], {"cluster": True}, False),  # a cluster's login node may have none
        ("cuda", [], {"main": False}, False),  # a job's own process
        ("auto", [], {}, False),
        ("cpu", [], {}, False),
    ],
)
def test_a_gpu_device_without_a_gpu_is_refused_before_any_job(device, gpus, kw, raises):
    if raises:
        with pytest.raises(ValueError, match=r"config key 'device': '.*' asks for a GPU, but this machine has none"):
            check_device({"device": device}, gpus, FakeWorkflow(**kw))
    else:
        check_device({"device": device}, gpus, FakeWorkflow(**kw))


def test_the_gpus_of_this_machine_cap_gpu_jobs_unless_the_user_did():
    wf = FakeWorkflow()
    assert cap_gpus(wf, ["0", "1", "2", "3"]) == 4 and wf.registered == {"gpu": 4}
    wf = FakeWorkflow(caps=["gpu=2"])
    assert cap_gpus(wf, ["0", "1", "2", "3"]) == 2 and wf.registered == {}
    wf = FakeWorkflow(caps=["gpu=100000"])  # the SLURM profile lifts the local cap
    assert cap_gpus(wf, []) == 100000 and wf.registered == {}
    wf = FakeWorkflow()
    assert cap_gpus(wf, []) is None and wf.registered == {}


# ------------------------------------------------------------------------------ threads
@pytest.mark.parametrize(
    "gpus,cores,caps,threads",
    [
        (4, 8, [], 2),  # 4 trainings at once, 2 threads each
        (1, 8, [], 8),  # one GPU: one job with every core
        (8, 8, [], 1),  # 8 GPUs, 8 cores: 8 at once
        (4, 8, ["gpu=2"], 4),  # the user's cap: 2 GPU jobs at once
        (4, 64, [], DEFAULT_CPUS),  # many cores: at most resources.cpus
        (0, 8, [], DEFAULT_CPUS),  # no GPU: the jobs train on the CPU with resources.cpus threads
    ],
)
def test_threads_per_gpu_job_share_the_cores_among_the_gpus(gpus, cores, caps, threads):
    wf = FakeWorkflow(cores=cores, caps=caps)
    res = JobResources(wf, {}, the_run=lambda w: run(), gpu_slots=cap_gpus(wf, [str(i) for i in range(gpus)]))
    assert res.threads(run()) == threads
    assert res.job_threads(dataloader=True)(None) == threads


def test_threads_on_a_cluster_and_of_jobs_without_a_gpu_are_the_configs_cpus():
    cluster = JobResources(FakeWorkflow(cluster=True), {}, the_run=None, gpu_slots=4)
    assert cluster.threads(run(cpus=6)) == 6
    here = JobResources(FakeWorkflow(), {}, the_run=None, gpu_slots=4)
    assert here.threads(run(gpu=0, cpus=3)) == 3
    assert here.threads(run(gpu=2, cpus=8)) == 4  # 2 such jobs on 4 GPUs share 8 cores


def test_reference_augmentations_ask_for_their_dataloader_workers_in_training_only():
    res = JobResources(FakeWorkflow(), {}, the_run=None, gpu_slots=4)
    reference = run(train={"augment_backend": "reference", "num_workers": 11})
    assert res.threads(reference, dataloader=True) == 12  # 11 workers + 1 > cpus 8
    assert res.threads(run(cpus=16, train={"augment_backend": "reference", "num_workers": 3}), dataloader=True) == 16
    assert res.threads(reference) == 2  # the analysis of that run: no DataLoader workers


# ------------------------------------------------------------------------------ resources and partitions
PARTITIONS = {"resources": {"gpu_partition": "gpu", "cpu_partition": "cpu"}}


def test_the_partition_follows_the_gpu_request_and_null_is_the_clusters_default():
    res = JobResources(FakeWorkflow(), PARTITIONS, the_run=None, gpu_slots=None)
    assert res.partition(1)(None) == "gpu" and res.partition(0)(None) == "cpu"
    assert res.cpu_job()["slurm_partition"](None) == "cpu"
    default = JobResources(FakeWorkflow(), {"resources": {"gpu_partition": "gpu"}}, the_run=None, gpu_slots=None)
    assert default.partition(0)(None) is None


def test_a_runs_job_asks_for_its_domains_resources():
    runs = {"a": run(gpu=2, mem_mb=1000, runtime=5), "b": run(gpu=0)}
    res = JobResources(FakeWorkflow(), PARTITIONS, the_run=lambda w: runs[w], gpu_slots=None)
    job = res.run_job(runtime=720)
    assert {k: f("a") for k, f in job.items()} == {"gpu": 2, "mem_mb": 1000, "slurm_partition": "gpu", "runtime": 5}
    assert {k: f("b") for k, f in job.items()} == {"gpu": 0, "mem_mb": 32000, "slurm_partition": "cpu", "runtime": 720}
    assert set(res.run_job()) == {"gpu", "mem_mb", "slurm_partition"}  # no runtime default: the profile's


# ------------------------------------------------------------------------------ several runs per GPU, groups
def _jobs(workflow, config=None, the_run=None, slots=4, units=1):
    return JobResources(workflow, config or {}, the_run or (lambda wildcards: run()), slots, units)


def test_a_packed_training_asks_for_its_share_of_a_gpu_here_and_a_whole_gpu_on_a_cluster():
    from deepaug.workflow.resources import gpu_units, runs_per_gpu_env

    config = {"vision": {"resources": {"runs_per_gpu": 2}}, "graph": {"resources": {"runs_per_gpu": 8}}, "text": None}
    assert gpu_units(config, ["vision", "graph", "text"]) == 8
    assert runs_per_gpu_env(config, ["vision", "graph", "text"]) == "graph=8,vision=2"
    assert runs_per_gpu_env({"vision": {"resources": {}}}, ["vision"]) == ""  # nothing changes by default
    packed = run(runs_per_gpu=2)
    here = _jobs(FakeWorkflow(), units=8)
    assert here.gpu_request(packed, packed=True) == 4  # 8 shares per GPU, 2 runs per GPU
    assert here.gpu_request(packed, packed=False) == 8  # an analysis job: a whole GPU
    assert _jobs(FakeWorkflow(cluster=True), units=8).gpu_request(packed, packed=True) == 1
    assert _jobs(FakeWorkflow(), units=1).gpu_request(packed, packed=True) == 1
    # threads: 4 GPUs x 2 runs each share --cores 8: one thread per training
    assert here.threads(run(runs_per_gpu=2, cpus=8), dataloader=True) == 1
    assert here.threads(run(runs_per_gpu=1, cpus=8), dataloader=True) == 2


def test_the_local_gpu_cap_counts_shares_when_runs_share_a_gpu():
    wf = FakeWorkflow()
    assert cap_gpus(wf, ["0", "1"], units=4) == 2 and wf.registered == {"gpu": 8}
    wf = FakeWorkflow(caps=["gpu=1"])  # --resources gpu=1: one GPU, in shares
    assert cap_gpus(wf, ["0", "1"], units=4) == 1 and wf.registered == {"gpu": 4}
    wf = FakeWorkflow(caps=["gpu=1"])
    assert cap_gpus(wf, ["0", "1"], units=1) == 1 and wf.registered == {}  # as before


def test_short_jobs_are_grouped_on_a_cluster_only():
    grouped = run(group=True)
    local, cluster = FakeWorkflow(), FakeWorkflow(cluster=True)
    assert _jobs(local, the_run=lambda wc: grouped).group("train")(None) is None  # local: no group, same plan
    assert _jobs(cluster, the_run=lambda wc: grouped).group("train")(None) == "train_vision"
    assert _jobs(cluster, the_run=lambda wc: run()).group("train")(None) is None  # resources.group false
    assert _jobs(cluster, the_run=lambda wc: run()).group("analyze")(None) == "analyze_vision"
    # a dry run with the SLURM profile (--jobs, cluster executor) shows the groups
    submitting = FakeWorkflow()
    submitting.resource_settings = ResourceSettings(cores=8, nodes=200)
    assert _jobs(submitting, the_run=lambda wc: run()).group("analyze")(None) == "analyze_vision"


def test_gpu_jobs_ask_for_the_gpu_model_and_an_empty_partition_is_the_default():
    config = {"resources": {"gpu_partition": "", "cpu_partition": "cpu", "gpu_model": "a100"}}
    jobs = _jobs(FakeWorkflow(cluster=True), config)
    assert jobs.partition_name(1) is None and jobs.partition_name(0) == "cpu"
    assert jobs.run_job()["gpu_model"](None) == "a100"
    cpu_only = _jobs(FakeWorkflow(cluster=True), config, the_run=lambda wc: run(gpu=0))
    assert cpu_only.run_job()["gpu_model"](None) is None  # a CPU job never asks for a GPU model
    assert "gpu_model" not in _jobs(FakeWorkflow(cluster=True)).run_job()
