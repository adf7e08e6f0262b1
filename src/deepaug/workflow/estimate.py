"""The GPU time of a sweep, from the step rates an earlier run measured (``deepaug check-config`` prints it).

Sources, in a work directory where the workflow ran before (a pilot with fewer epochs does):

* each training job's Snakemake benchmark file, ``benchmarks/train/<domain>/<dataset>/<run>/seed<n>.tsv``
  (column ``s``: the job's wall time: start-up, training and evaluation), with the run's
  ``results/.../provenance.json`` (its settings, so its length in epochs or steps, and ``train_time_s``);
* ``results/bench/throughput.json`` (``snakemake bench``): the project's ResNet-18 images/s at the bench's
  batch size, for CIFAR-10/100 runs no job measured (an epoch is 2 x 50,000 images).

A planned run measured with the same length takes its own time. Any other run of a measured (domain,
dataset, objective) takes the measured runs' median time per epoch (or step) times its length, plus their
median time outside training (start-up and evaluation). Runs of a pair nobody measured are counted as
"not measured". GPU time is the job's seconds times its GPUs; with ``runs_per_gpu`` r a run holds 1/r of
a GPU. The packed figures assume a packed run keeps its step rate: an upper bound on the gain, since runs
sharing a GPU slow each other down; the README says what was measured.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from deepaug.workflow.runs import Run

BENCH_DIR = "benchmarks/train"
THROUGHPUT = "results/bench/throughput.json"
CIFAR_TRAIN_IMAGES = 50_000  # torchvision CIFAR10/CIFAR100(train=True); the dev split comes out of them


def run_length(train: dict) -> tuple[str, float]:
    """A run's length in its own unit: ``max_steps`` (text, when set) or ``epochs``."""
    if train.get("max_steps"):
        return "steps", float(train["max_steps"])
    return "epochs", float(train.get("epochs") or 1)


def benchmark_seconds(path: Path) -> float | None:
    """The mean ``s`` of a Snakemake benchmark file (one row per repeat), None when unreadable."""
    try:
        with open(path, newline="") as fh:
            rows = [float(r["s"]) for r in csv.DictReader(fh, delimiter="\t") if r.get("s") not in (None, "", "NA")]
    except (OSError, ValueError, KeyError):
        return None
    return statistics.fmean(rows) if rows else None


@dataclass
class Measured:
    key: tuple  # (domain, dataset, objective)
    path: str  # the run's <domain>/<dataset>/<run>/seed<n>
    unit: str
    length: float
    job_s: float  # the whole job (benchmark file)
    train_s: float  # the training alone (provenance train_time_s; the job's time when unknown)


def measurements(directory: str | Path = ".") -> list[Measured]:
    """Every training job of an earlier run in ``directory`` that has a benchmark file and a provenance."""
    directory = Path(directory)
    out = []
    for bench in sorted((directory / BENCH_DIR).glob("*/*/*/seed*.tsv")):
        domain, dataset, run = bench.relative_to(directory / BENCH_DIR).parts[:3]
        seconds = benchmark_seconds(bench)
        prov_path = directory / "results" / domain / dataset / run / bench.stem / "provenance.json"
        if seconds is None or not prov_path.is_file():
            continue
        try:
            prov = json.loads(prov_path.read_text())
        except (OSError, ValueError):
            continue
        settings = prov.get("settings") or {}
        unit, length = run_length(settings)
        objective = settings.get("objective", "contrastive")
        train_s = float(prov.get("train_time_s") or seconds)
        path = f"{domain}/{dataset}/{run}/{bench.stem}"
        out.append(Measured((domain, dataset, objective), path, unit, length, seconds, min(train_s, seconds)))
    return out


def throughput_images_per_s(directory: str | Path = ".") -> float | None:
    try:
        data = json.loads((Path(directory) / THROUGHPUT).read_text())
        return float(data["figures"]["project_images_per_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_seconds(runs: list[Run], directory: str | Path = ".") -> tuple[dict[Run, float], dict[Run, str]]:
    """Estimated job seconds per run (only runs that can be estimated) and where each estimate came from."""
    found = measurements(directory)
    by_key: dict[tuple, list[Measured]] = defaultdict(list)
    for m in found:
        by_key[m.key].append(m)
    images_per_s = throughput_images_per_s(directory)
    seconds, source = {}, {}
    for run in runs:
        train = run.section.get("train") or {}
        unit, length = run_length(train)
        same = [m for m in by_key.get((run.domain, run.dataset, run.objective), []) if m.unit == unit]
        exact = [m.job_s for m in same if m.path == run.path and m.length == length]
        if exact:
            seconds[run], source[run] = statistics.median(exact), "measured"
        elif same:
            per_unit = statistics.median(m.train_s / m.length for m in same)
            overhead = statistics.median(m.job_s - m.train_s for m in same)
            seconds[run], source[run] = overhead + per_unit * length, "scaled"
        elif images_per_s and run.domain == "vision" and run.dataset in ("cifar10", "cifar100") and unit == "epochs":
            seconds[run] = length * 2 * CIFAR_TRAIN_IMAGES / images_per_s
            source[run] = "throughput"
    return seconds, source


def _hours(seconds: float) -> str:
    """GPU-hours, or minutes/seconds for a small sweep."""
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def describe_gpu_time(config: dict, runs: list[Run], directory: str | Path = ".", gpus: int = 8) -> list[str]:
    """check-config's lines on the sweep's GPU time, and how several runs per GPU change the wall time on
    ``gpus`` GPUs."""
    from deepaug.workflow.jobs import resource

    gpu_runs = [r for r in runs if resource(r, "gpu", 1) > 0]
    where = Path(directory)
    head = (
        f"  GPU time of the trainings (their jobs: train, then evaluate), from an earlier run's "
        f"{where / BENCH_DIR} and {where / THROUGHPUT}:"
    )
    if not gpu_runs:
        return [head, "    no run asks for a GPU (resources.gpu: 0)"]
    seconds, source = run_seconds(gpu_runs, directory)
    if not seconds:
        return [
            head,
            "    not measured: no benchmark file of an earlier run there (run a short pilot sweep, e.g. fewer "
            "epochs, in the same work directory, or `snakemake bench`, then check again)",
        ]
    lines = [head]
    total = packed = 0.0
    for domain in sorted({r.domain for r in gpu_runs}):
        mine = [r for r in gpu_runs if r.domain == domain]
        known = [r for r in mine if r in seconds]
        gpu_s = sum(seconds[r] * resource(r, "gpu", 1) for r in known)
        share_s = sum(seconds[r] * resource(r, "gpu", 1) / resource(r, "runs_per_gpu", 1) for r in known)
        total, packed = total + gpu_s, packed + share_s
        kinds = defaultdict(int)
        for r in known:
            kinds[source[r]] += 1
        how = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        missing = len(mine) - len(known)
        per_gpu = sorted({resource(r, "runs_per_gpu", 1) for r in mine})
        lines.append(
            f"    {domain}: {_hours(gpu_s)} GPU time for {len(known)} of {len(mine)} runs ({how}"
            + (f"; {missing} not measured" if missing else "")
            + f"); runs_per_gpu {'/'.join(map(str, per_gpu))}"
        )
    longest = max(seconds.values())
    lines.append(f"    in all: {_hours(total)} GPU time ({len(seconds)} of {len(gpu_runs)} GPU runs estimated)")
    one = max(total / gpus, longest)
    lines.append(f"    wall time on {gpus} GPU(s), one run per GPU: about {_hours(one)}")
    if packed < total:
        both = max(packed / gpus, longest)
        lines.append(
            f"    with the config's runs_per_gpu: about {_hours(both)} ({one / both:.1f}x faster, {_hours(packed)} of "
            "GPU time), if packed runs keep their step rate (an upper bound on the gain; not measured here)"
        )
    else:
        lines.append(
            "    every domain has runs_per_gpu 1; <domain>.resources.runs_per_gpu: k would divide its GPU time by "
            "up to k for runs that use a fraction of a GPU (small CIFAR and graph runs)"
        )
    return lines
