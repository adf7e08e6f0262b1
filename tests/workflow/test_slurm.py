"""The SLURM profile on a real single-node SLURM cluster (Debian's slurm-wlm + munge).

Starts the daemons (tests/slurm/cluster.sh: one node with two stand-in GPUs, partitions main (the
default), cpu and gpu), then:

* runs a reduced demo DAG (tests/configs/slurm.yaml: contrastive vision runs that ask for a GPU, a text
  run that does not, the supervised baseline and an analysis job) through profiles/slurm (site keys
  adapted: account, partitions in its `config:` entry, status command), requeues a running training
  with `scontrol requeue` after its first checkpoints, and checks that every job ran as a SLURM job in
  the partition that follows its GPU request (the controller's job-completion records and the plugin's
  per-job logs), that the requeued job came back, resumed from its checkpoint and finished, and that
  the results equal a local run;
* runs a sweep of 20 trainings with grouping (tests/configs/slurm_sweep.yaml, group-components 10) and
  counts the SLURM jobs the controller saw (2) against the jobs without grouping (20, from a dry run
  through the same profile without group-components); then `deepaug efficiency` on its benchmarks.

The cluster has no accounting database, so the controller's job-completion records (jobcomp/filetxt)
stand in for `sacct`. Skips, saying why, where the daemons cannot be installed or started (not root, no
apt). Select it alone with -m slurm.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tests" / "configs" / "slurm.yaml"
pytestmark = [pytest.mark.slurm, pytest.mark.slow]

METRICS = ["linear_top1", "knn_top1", "sts_wordsim353", "sts_simlex999", "sts_avg"]
# Beyond the default target: the supervised baseline's evaluation and one analysis job.
EXTRA_TARGETS = [
    "results/vision/digits/sup-none/seed0/eval.json",
    "results/analysis/vision/digits/none/seed0/analysis.json",
]
# The per-run rules; in tests/configs/slurm.yaml their vision jobs ask for a GPU (vision.resources.gpu), the
# text jobs do not.
RUN_RULES = {"train", "analyze"}  # train: trains, then evaluates, the run


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    script = ROOT / "tests" / "slurm" / "cluster.sh"
    start = subprocess.run(["bash", str(script), "start", str(state)], capture_output=True, text=True, timeout=600)
    if start.returncode == 3:
        pytest.skip(f"no SLURM cluster on this machine: {start.stderr.strip()}")
    assert start.returncode == 0, start.stdout + start.stderr
    yield state
    subprocess.run(["bash", str(script), "stop", str(state)], capture_output=True, text=True, timeout=120)


# The one block a user edits for this cluster: CPU jobs to the default partition (''), GPU jobs to `gpu`.
SITE_CONFIG = "resources={gpu_partition: gpu, cpu_partition: ''}"


def site_profile(dest: Path, **changes) -> Path:
    """profiles/slurm with the site-specific keys set for the test cluster, as a user would: the account, the
    partitions (its `config:` entry), and the status command of a cluster without accounting."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert "slurm_partition" not in profile["default-resources"], "the partitions follow the GPU request"
    assert not any("slurm_partition" in r for r in (profile.get("set-resources") or {}).values())
    assert profile["slurm-requeue"] is True and profile["set-resource-scopes"] == ["gpu=local"]
    profile["default-resources"].update(slurm_account="deepaug")
    profile["config"] = [SITE_CONFIG]
    profile.pop("software-deployment-method")  # no conda on this machine: the test's venv runs the jobs
    profile.update(
        {
            "slurm-status-command": "squeue",
            "slurm-init-seconds-before-status-checks": 1,
            "seconds-between-status-checks": 2,
            "latency-wait": 5,
            "slurm-keep-successful-logs": True,
            **changes,
        }
    )
    profile = {k: v for k, v in profile.items() if v is not None}
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile))
    return dest


def snakemake_cmd(workdir: Path, config: Path, *extra) -> tuple[list, dict]:
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    return [*cmd, f"--configfile={config}", *extra], env


def run_snakemake(workdir: Path, *extra, config=CONFIG, targets=("all", *EXTRA_TARGETS), timeout=1200):
    cmd, env = snakemake_cmd(workdir, config, *extra, *targets)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir.parent)


def jobcomp(cluster: Path, workdir: Path) -> list[dict]:
    """The controller's job-completion records of the jobs run in ``workdir`` (one per end of a job: a
    requeued job has one for each attempt), as {field: value}."""
    out = []
    for line in (cluster / "jobcomp.txt").read_text().splitlines():
        if str(workdir) in line:
            out.append(dict(re.findall(r"(\w+)=(\S*)", line)))
    return out


def requeue_when_checkpointed(proc, workdir: Path, run_path: str, timeout=600) -> str:
    """Wait until the training ``run_path`` runs as a SLURM job and has written a checkpoint, then put it
    back in the queue (`scontrol requeue`, what a preemption with requeue does); its SLURM job id."""
    ckpt = workdir / "checkpoints" / run_path / "last.pt"
    logs = workdir / ".snakemake" / "slurm_logs" / "rule_train" / run_path.replace("/seed", "_").replace("/", "_")
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        ids = [p.stem for p in logs.glob("*.log")]
        if ckpt.exists() and ids:
            done = subprocess.run(["scontrol", "requeue", ids[0]], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            # SLURM holds a requeued batch job back for a while (its begin time moves ~2 min ahead); a
            # preempted job on a real cluster waits for its turn anyway: once it is pending again, let it
            # start now
            for _ in range(150):
                state = subprocess.run(["squeue", "-h", "-j", ids[0], "-o", "%T"], capture_output=True, text=True)
                if state.stdout.strip() == "PENDING":
                    subprocess.run(["scontrol", "update", f"JobId={ids[0]}", "StartTime=now"], capture_output=True)
                    break
                time.sleep(0.2)
            return ids[0]
        time.sleep(0.1)
    pytest.fail(f"{run_path} never ran with a checkpoint ({ckpt}) while the workflow ran")


def slurm_jobs(workdir: Path) -> dict[str, tuple[str, str]]:
    """{SLURM job id: (rule, wildcards)} from the plugin's per-job logs,
    .snakemake/slurm_logs/rule_<rule>/<wildcard values joined by _>/<id>.log ('' without wildcards), and
    of group jobs, .snakemake/slurm_logs/group_<stage>_<domain>_<rules>/<id>.log: (stage, '<domain>_group')."""
    out = {}
    root = workdir / ".snakemake" / "slurm_logs"
    for log in root.glob("rule_*/**/*.log"):
        parts = log.relative_to(root).parts
        out[log.stem] = (parts[0][len("rule_") :], parts[1] if len(parts) > 2 else "")
    for log in root.glob("group_*/*.log"):
        stage, domain = log.parent.name[len("group_") :].split("_")[:2]
        out[log.stem] = (stage, f"{domain}_group")
    return out


def test_demo_dag_through_the_slurm_profile_matches_a_local_run(cluster, tmp_path):
    profile = site_profile(tmp_path / "profile")
    cmd, env = snakemake_cmd(tmp_path / "slurm", CONFIG, "--profile", str(profile), "all", *EXTRA_TARGETS)
    t0 = time.time()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path) as p:
        requeued = requeue_when_checkpointed(p, tmp_path / "slurm", "vision/digits/none/seed0")
        out, err = p.communicate(timeout=1200)
    print(f"SLURM run: {time.time() - t0:.0f} s")
    assert p.returncode == 0, err[-6000:]
    local = run_snakemake(tmp_path / "local", "--cores", "2")
    assert local.returncode == 0, local.stderr[-4000:]

    # every job but the local target rule ran as a SLURM batch job that completed; the requeued one ended
    # twice (its first attempt requeued, then completed)
    n_jobs = int(re.search(r"^total\s+(\d+)$", out + err, re.M).group(1)) - 1
    records = jobcomp(cluster, tmp_path / "slurm")
    final = {r["JobId"]: r for r in records}  # the last record of each job
    assert len(final) == n_jobs, f"{len(final)} SLURM jobs for {n_jobs} jobs:\n{records}"
    assert all(r["JobState"] == "COMPLETED" for r in final.values()), records
    attempts = [r["JobState"] for r in records if r["JobId"] == requeued]
    assert len(attempts) == 2 and attempts[-1] == "COMPLETED", attempts
    # it resumed from the checkpoint of its first attempt: two segments, the second from a later epoch
    prov = json.loads((tmp_path / "slurm/results/vision/digits/none/seed0/provenance.json").read_text())
    assert len(prov["segments"]) == 2 and prov["segments"][1]["from"] > 0, prov["segments"]

    # each in the partition that follows its GPU request (CPU jobs: '' in the profile, the default main),
    # supervised and analysis jobs included
    partition = {j: r["Partition"] for j, r in final.items()}
    rules = slurm_jobs(tmp_path / "slurm")
    assert set(rules) == set(partition), (sorted(rules), sorted(partition))
    assert {
        ("train", "vision_digits_sup-none_0"),
        ("analyze", "vision_group"),  # analysis jobs run in group jobs (analyze_<domain>) on a cluster
        ("train", "text_lee_none_0"),
    } <= set(rules.values())

    def expected(rule, wildcards):
        return "gpu" if rule in RUN_RULES and wildcards.startswith("vision_") else "main"

    wrong = {(rules[j], p) for j, p in partition.items() if p != expected(*rules[j])}
    assert not wrong, f"jobs in the wrong partition: {sorted(wrong)}"

    a = pd.read_csv(tmp_path / "slurm" / "results" / "table.csv").set_index(["domain", "run", "seed"]).sort_index()
    b = pd.read_csv(tmp_path / "local" / "results" / "table.csv").set_index(["domain", "run", "seed"]).sort_index()
    assert len(a) == 3 and list(a.index) == list(b.index)
    pd.testing.assert_frame_equal(a[METRICS], b[METRICS])  # the requeued run's numbers included
    for name in ("vision_digits.png", "text_lee.png"):
        assert (tmp_path / "slurm" / "results" / "figures" / name).stat().st_size > 10_000
    for target in EXTRA_TARGETS:
        assert (tmp_path / "slurm" / target).stat().st_size > 0


SWEEP = ROOT / "tests" / "configs" / "slurm_sweep.yaml"


def test_a_sweep_of_20_runs_in_groups_is_2_slurm_jobs(cluster, tmp_path):
    """20 trainings (vision.resources.group: true), 10 per group job: SLURM sees 2 training jobs, not 20."""
    runs = [f"results/vision/digits/none/seed{seed}/eval.json" for seed in range(20)]
    grouped = site_profile(tmp_path / "grouped", **{"group-components": ["train_vision=10"]})
    ungrouped = site_profile(tmp_path / "ungrouped", **{"group-components": None})
    # what each profile would submit, from Snakemake's dry run: one SLURM job per group job and per job
    # outside a group (the data job)
    plans = {}
    for name, profile in (("grouped", grouped), ("ungrouped", ungrouped)):
        dry = run_snakemake(tmp_path / "w", "--profile", str(profile), "-n", config=SWEEP, targets=runs)
        assert dry.returncode == 0, dry.stderr[-3000:]
        text = dry.stdout + dry.stderr
        plans[name] = (len(re.findall(r"Group job train_vision", text)), len(re.findall(r"^rule \w+:", text, re.M)))
    assert plans == {"grouped": (2, 1), "ungrouped": (20, 1)}, plans

    t0 = time.time()
    res = run_snakemake(tmp_path / "w", "--profile", str(grouped), config=SWEEP, targets=runs)
    print(f"20 runs in 2 group jobs on SLURM: {time.time() - t0:.0f} s")
    assert res.returncode == 0, res.stderr[-6000:]
    records = jobcomp(cluster, tmp_path / "w")
    print(f"SLURM jobs: {len(records)} with grouping (the data job and 2 group jobs), 21 without")
    assert len(records) == 3 and all(r["JobState"] == "COMPLETED" for r in records), records
    for run in runs:
        assert 0 <= json.loads((tmp_path / "w" / run).read_text())["linear_top1"] <= 100  # percent

    # the efficiency report per rule, from the 20 jobs' benchmark files (written on the node)
    eff = subprocess.run(
        [sys.executable, "-m", "deepaug", "efficiency", str(SWEEP), "--directory", str(tmp_path / "w")],
        capture_output=True,
        text=True,
    )
    assert eff.returncode == 0, eff.stderr
    assert re.search(r"^train\s+vision\s+20\s", eff.stdout, re.M), eff.stdout
    print(eff.stdout)
