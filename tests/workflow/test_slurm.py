"""The SLURM profile on a real single-node SLURM cluster (Debian's slurm-wlm + munge).

Starts the daemons (tests/slurm/cluster.sh: one node with two stand-in GPUs, partitions main (the
default), cpu and gpu), runs a reduced demo DAG (tests/configs/slurm.yaml: contrastive vision runs that
ask for a GPU, a text run that does not, the supervised baseline and an analysis job) through
profiles/slurm (site keys adapted: account, status command), checks that every job ran as a SLURM job
in the partition that follows its GPU request (the controller's job-completion records and the
plugin's per-job logs), and that the results equal a local run. Skips, saying why, where the daemons
cannot be installed or started (not root, no apt). Select it alone with -m slurm.
"""

import os
import re
import subprocess
import sys
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


def site_profile(dest: Path) -> Path:
    """profiles/slurm with the site-specific keys set for the test cluster, as a user would (the
    partitions are in the workflow config, tests/configs/slurm.yaml)."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert "slurm_partition" not in profile["default-resources"], "the partitions belong in the workflow config"
    assert not any("slurm_partition" in r for r in (profile.get("set-resources") or {}).values())
    profile["default-resources"].update(slurm_account="deepaug")
    profile.pop("software-deployment-method")  # no conda on this machine: the test's venv runs the jobs
    profile.update(
        {
            "slurm-status-command": "squeue",
            "slurm-init-seconds-before-status-checks": 1,
            "seconds-between-status-checks": 2,
            "latency-wait": 5,
            "slurm-keep-successful-logs": True,
        }
    )
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile))
    return dest


def run_snakemake(workdir: Path, *extra, timeout=1200):
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        f"--configfile={CONFIG}",
        *extra,
        "all",
        *EXTRA_TARGETS,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir.parent)


def slurm_jobs(workdir: Path) -> dict[str, tuple[str, str]]:
    """{SLURM job id: (rule, wildcards)} from the plugin's per-job logs,
    .snakemake/slurm_logs/rule_<rule>/<wildcard values joined by _>/<id>.log ('' without wildcards)."""
    out = {}
    for log in (workdir / ".snakemake" / "slurm_logs").glob("rule_*/**/*.log"):
        parts = log.relative_to(workdir / ".snakemake" / "slurm_logs").parts
        out[log.stem] = (parts[0][len("rule_") :], parts[1] if len(parts) > 2 else "")
    return out


def test_demo_dag_through_the_slurm_profile_matches_a_local_run(cluster, tmp_path):
    on_slurm = run_snakemake(tmp_path / "slurm", "--profile", str(site_profile(tmp_path / "profile")))
    assert on_slurm.returncode == 0, on_slurm.stderr[-6000:]
    local = run_snakemake(tmp_path / "local", "--cores", "2")
    assert local.returncode == 0, local.stderr[-4000:]

    # every job but the local target rule ran as a SLURM batch job that completed
    n_jobs = int(re.search(r"^total\s+(\d+)$", on_slurm.stdout + on_slurm.stderr, re.M).group(1)) - 1
    records = (cluster / "jobcomp.txt").read_text().splitlines()
    ours = [r for r in records if f"WorkDir={tmp_path / 'slurm'}" in r or str(tmp_path / "slurm") in r]
    assert len(ours) == n_jobs, f"{len(ours)} SLURM job records for {n_jobs} jobs:\n" + "\n".join(records)
    assert all("JobState=COMPLETED" in r for r in ours)

    # each in the partition that follows its GPU request: supervised and analysis jobs included
    partition = {re.search(r"JobId=(\d+)", r).group(1): re.search(r"Partition=(\S+)", r).group(1) for r in ours}
    rules = slurm_jobs(tmp_path / "slurm")
    assert set(rules) == set(partition), (sorted(rules), sorted(partition))
    assert {
        ("train", "vision_digits_sup-none_0"),
        ("analyze", "vision_digits_none_0"),
        ("train", "text_lee_none_0"),
    } <= set(rules.values())

    def expected(rule, wildcards):
        return "gpu" if rule in RUN_RULES and wildcards.startswith("vision_") else "cpu"

    wrong = {(rules[j], p) for j, p in partition.items() if p != expected(*rules[j])}
    assert not wrong, f"jobs in the wrong partition: {sorted(wrong)}"

    a = pd.read_csv(tmp_path / "slurm" / "results" / "table.csv").set_index(["domain", "run", "seed"]).sort_index()
    b = pd.read_csv(tmp_path / "local" / "results" / "table.csv").set_index(["domain", "run", "seed"]).sort_index()
    assert len(a) == 3 and list(a.index) == list(b.index)
    pd.testing.assert_frame_equal(a[METRICS], b[METRICS])
    for name in ("vision_digits.png", "text_lee.png"):
        assert (tmp_path / "slurm" / "results" / "figures" / name).stat().st_size > 10_000
    for target in EXTRA_TARGETS:
        assert (tmp_path / "slurm" / target).stat().st_size > 0
