"""Benchmark: how long ``snakemake -n`` takes on the paper config (vision, text with the authors'
per-layer lr {1e-5, 3e-5, 5e-5} x batch {64, 128} grid: 1,026 contrastive text runs, graphs; both
objectives and the analyses), and on the same config without the text grid and the graphs (the 690
trainings of the vision and text sweeps alone), timed in the same invocation so that the ratio holds on
a noisy machine. Prints one JSON object (seconds, jobs, trainings, milliseconds per job)::

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

ROOT = Path(__file__).resolve().parents[3]
TEXT_GRID = ("lr", "batch_size")


def without_text_grid_and_graphs(config: dict) -> dict:
    """The config with the tuned text axes taken out of every text block and the graph domain off."""
    import copy

    out = copy.deepcopy(config)
    for block in out["text"]["sweep"]:
        for axis in TEXT_GRID:
            block.pop(axis, None)
    out["graph"] = None
    return out


def dry_run(
    root: Path, configfile: Path | None = None, targets: tuple[str, ...] = (), quiet: bool = False
) -> tuple[float, dict[str, int]]:
    """(seconds, job counts per rule) of ``snakemake -n`` (``-q``: without listing every job) in an empty
    working directory."""
    with tempfile.TemporaryDirectory() as workdir:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), "-n", "--directory", workdir]
        if quiet:
            cmd.append("-q")
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


def run(root: Path = ROOT, repeats: int = 3, quiet: bool = False) -> dict:
    import yaml

    paper = yaml.safe_load((root / "config.yaml").read_text())
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.yaml"
        reduced = without_text_grid_and_graphs(paper)
        small.write_text(yaml.safe_dump({"text": reduced["text"], "graph": None}))
        for name, configfile in (("paper", None), ("vision_and_text_without_grid", small)):
            times, counts = [], {}
            for _ in range(repeats):
                seconds, counts = dry_run(root, configfile, quiet=quiet)
                times.append(seconds)
            median = statistics.median(times)
            out[name] = {
                "seconds_median": round(median, 2),
                "seconds": [round(x, 2) for x in times],
                "jobs": counts.get("total"),
                "trainings": counts.get("train"),
                "ms_per_job": round(1000 * median / max(1, counts.get("total") or 1), 2),
            }
    out["ratio_paper_over_without_grid"] = round(
        out["paper"]["seconds_median"] / out["vision_and_text_without_grid"]["seconds_median"], 2
    )
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quiet", action="store_true", help="snakemake -n -q: count the jobs without listing each")
    p.add_argument("--root", default=str(ROOT))
    p.add_argument("--out", help="also write the figures as JSON here")
    a = p.parse_args(argv)
    result = run(Path(a.root), a.repeats, a.quiet)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
