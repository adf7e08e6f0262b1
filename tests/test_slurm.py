"""The SLURM profile on a real single-node SLURM cluster (Debian's slurm-wlm + munge).

Starts the daemons (tests/slurm/cluster.sh), runs a reduced demo DAG through profiles/slurm (site
keys adapted: account, partition, status command), checks that every job ran as a SLURM job (the
controller's job-completion records) and that the results equal a local run. Skips, saying why,
where the daemons cannot be installed or started (not root, no apt). Select it alone with -m slurm.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CONFIG = """
device: cpu
data: {raw_dir: data/raw, download: false}
vision:
  datasets: [digits]
  methods: [none, dropout]
  layers: [6]
  stop_gradient: [sg]
  seeds: [0]
  model: {arch: resnet18, width: 4, proj_dim: 16}
  train: {epochs: 1, batch_size: 256, lr: 0.5, warmup_epochs: 0, precision: fp32, num_workers: 0,
          checkpoint_every: 1, deterministic: true}
  eval: {linear_epochs: 5, linear_batch_size: 256, knn_k: 10}
  resources: {gpu: 0, cpus: 1, mem_mb: 2000, runtime: 10}
text:
  datasets: [lee]
  model: {name: all-MiniLM-L6-v2, num_layers: 6}
  dev_task: wordsim353
  test_tasks: [wordsim353, simlex999]
  methods: [none]
  layers: []
  stop_gradient: [sg]
  seeds: [0]
  train: {max_steps: 3, batch_size: 4, eval_every: 3, eval_max_len: 16, precision: fp32, deterministic: true}
  eval: {eval_max_len: 32, precision: fp32}
  resources: {gpu: 0, cpus: 1, mem_mb: 3000, runtime: 10}
# keys left out keep config.yaml's values: switch the paper's supervised grids and analyses off
vision_sup: {datasets: [], methods: [none], layers: [], stop_gradient: [sg], seeds: [0]}
text_sup: {datasets: [], dev_task: wordsim353, test_tasks: [wordsim353], methods: [none], layers: [],
           stop_gradient: [sg], seeds: [0]}
analysis: {in_default_target: false}
"""
METRICS = ["linear_top1", "knn_top1", "sts_wordsim353", "sts_simlex999", "sts_avg"]


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
    """profiles/slurm with the site-specific keys set for the test cluster, as a user would."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"].update(slurm_account="deepaug", slurm_partition="main")
    for rule in profile["set-resources"].values():
        if "slurm_partition" in rule:
            rule["slurm_partition"] = "main"
    profile.pop("software-deployment-method")  # no conda on this machine: the test's venv runs the jobs
    profile.update({"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 1,
                    "seconds-between-status-checks": 2, "latency-wait": 5})
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile))
    return dest


def run_snakemake(workdir: Path, config: Path, *extra, timeout=900):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(config), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir.parent)


def test_demo_dag_through_the_slurm_profile_matches_a_local_run(cluster, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(CONFIG))

    on_slurm = run_snakemake(tmp_path / "slurm", config, "--profile", str(site_profile(tmp_path / "profile")))
    assert on_slurm.returncode == 0, on_slurm.stderr[-6000:]
    local = run_snakemake(tmp_path / "local", config, "--cores", "2")
    assert local.returncode == 0, local.stderr[-4000:]

    # every job but the local target rule ran as a SLURM batch job that completed
    n_jobs = int(re.search(r"^total\s+(\d+)$", on_slurm.stdout + on_slurm.stderr, re.M).group(1)) - 1
    records = (cluster / "jobcomp.txt").read_text().splitlines()
    ours = [r for r in records if f"WorkDir={tmp_path / 'slurm'}" in r or str(tmp_path / "slurm") in r]
    assert len(ours) == n_jobs, f"{len(ours)} SLURM job records for {n_jobs} jobs:\n" + "\n".join(records)
    assert all("JobState=COMPLETED" in r for r in ours)

    a = pd.read_csv(tmp_path / "slurm" / "results" / "table.csv").set_index(["domain", "variant", "seed"]).sort_index()
    b = pd.read_csv(tmp_path / "local" / "results" / "table.csv").set_index(["domain", "variant", "seed"]).sort_index()
    assert len(a) == 3 and list(a.index) == list(b.index)
    pd.testing.assert_frame_equal(a[METRICS], b[METRICS])
    for name in ("vision_digits.png", "text_lee.png"):
        assert (tmp_path / "slurm" / "results" / "figures" / name).stat().st_size > 10_000
