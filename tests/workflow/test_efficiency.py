"""`deepaug efficiency`: CPU, memory and runtime use per rule from the jobs' Snakemake benchmark files
(planted here; tests/workflow/test_slurm.py reads the ones of a real SLURM run)."""

import csv
import subprocess
import sys

from deepaug.workflow.efficiency import job_records, report, summary

CONFIG = {
    "vision": {"resources": {"cpus": 4, "mem_mb": 2000, "runtime": 100}, "supervised": {"resources": {"runtime": 50}}},
    "graph": {"resources": {"cpus": 2, "mem_mb": 1000, "runtime": 240}},
}


def _bench(root, sub, domain, run, s, cpu_time, max_rss):
    path = root / "benchmarks" / sub / domain / "d" / run / "seed0.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        f"{s}\t0:00:00\t{max_rss}\t1\t1\t1\t0\t0\t50\t{cpu_time}\n"
    )


def test_efficiency_per_rule_from_benchmark_files(tmp_path):
    _bench(tmp_path, "train", "vision", "none", 100, 200, 500)  # 200 / (100 x 4) = 50% CPU, 25% memory
    _bench(tmp_path, "train", "vision", "dropout-L3-sg", 300, 300, 1500)  # 25% CPU, 75% memory
    _bench(tmp_path, "train", "graph", "none", 40, 60, 100)  # 75% CPU
    _bench(tmp_path, "analysis", "vision", "none", 20, 20, 800)
    records = job_records(CONFIG, tmp_path)
    assert len(records) == 4
    rows = {(r["rule"], r["domain"]): r for r in summary(records)}
    vision = rows[("train", "vision")]
    assert vision["jobs"] == 2 and vision["max_s"] == 300 and vision["median_s"] == 200
    assert vision["cpu_efficiency"] == 0.375  # the median of 50% and 25%
    assert vision["mem_efficiency"] == 0.75 and vision["runtime_min"] == 100
    assert vision["suggested_runtime_min"] == 8  # 300 s x 1.5 = 7.5 min
    assert rows[("train", "graph")]["cpu_efficiency"] == 0.75
    assert rows[("analyze", "vision")]["runtime_min"] is None  # the profile's default runtime
    text = report(CONFIG, tmp_path, tmp_path / "eff.csv")
    assert "train    vision      2" in text and "75% of 2000" in text and "100 min (need 8)" in text
    with open(tmp_path / "eff.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3


def test_a_supervised_run_is_held_against_its_own_runtime(tmp_path):
    _bench(tmp_path, "train", "vision", "sup-none", 60, 60, 100)
    assert summary(job_records(CONFIG, tmp_path))[0]["runtime_min"] == 50


def test_the_command_says_when_there_is_nothing_to_report(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "deepaug", "efficiency", "--directory", str(tmp_path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert "no benchmark files" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "deepaug", "efficiency", str(tmp_path / "missing.yaml")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "no such" in r.stderr
