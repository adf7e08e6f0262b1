"""Benchmark: how long ``snakemake -n`` takes on the paper config, and on the paper config with the
authors' per-layer text grid (lr {1e-5, 3e-5, 5e-5} x batch {64, 128}) added to every text block
(about 1,000 text runs per objective), timed in the same invocation so that the ratio holds on a noisy
machine. Prints one JSON object (seconds, jobs, trainings)::

    python -m deepaug.workflow.dag_bench [--repeats 3] [--out results/bench/dag.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
TEXT_GRID = {"lr": [1.0e-5, 3.0e-5, 5.0e-5], "batch_size": [64, 128]}


def with_text_grid(config: dict) -> dict:
    """The config with the text grid added to every block of the text sweep."""
    import copy

    out = copy.deepcopy(config)
    for block in out["text"]["sweep"]:
        block.update(copy.deepcopy(TEXT_GRID))
    return out


def dry_run(root: Path, configfile: Path | None = None, targets: tuple[str, ...] = ()) -> tuple[float, dict[str, int]]:
    """(seconds, job counts per rule) of ``snakemake -n`` in an empty working directory."""
    with tempfile.TemporaryDirectory() as workdir:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), "-n", "--directory", workdir]
        if configfile is not None:
            cmd += ["--configfile", str(configfile)]
        t0 = time.perf_counter()
        res = subprocess.run([*cmd, *targets], capture_output=True, text=True, cwd=root)
        seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"snakemake -n failed:\n{res.stderr[-3000:]}")
    block = res.stdout.split("Job stats:")[1]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}
    return seconds, counts


def snakemake_dry_run_seconds(root: Path) -> float | None:
    """One dry run of the paper config (None when the checkout has no Snakefile or it fails)."""
    if not (root / "Snakefile").exists():
        return None
    try:
        return dry_run(root)[0]
    except RuntimeError:
        return None


def run(root: Path = ROOT, repeats: int = 3) -> dict:
    paper = yaml.safe_load((root / "config.yaml").read_text())
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "text_grid.yaml"
        grid.write_text(yaml.safe_dump({"text": with_text_grid(paper)["text"]}))
        for name, configfile in (("paper", None), ("paper_with_text_grid", grid)):
            times, counts = [], {}
            for _ in range(repeats):
                seconds, counts = dry_run(root, configfile)
                times.append(seconds)
            out[name] = {"seconds_median": round(statistics.median(times), 2), "seconds": [round(t, 2) for t in times],
                         "jobs": counts.get("total"), "trainings": counts.get("train")}
    out["ratio_grid_over_paper"] = round(out["paper_with_text_grid"]["seconds_median"] / out["paper"]["seconds_median"], 2)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--root", default=str(ROOT))
    p.add_argument("--out", help="also write the figures as JSON here")
    a = p.parse_args(argv)
    result = run(Path(a.root), a.repeats)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
