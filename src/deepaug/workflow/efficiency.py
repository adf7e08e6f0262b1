"""How well the jobs used what they asked for, per rule and domain: ``deepaug efficiency``.

Read from the Snakemake benchmark file every training and analysis job writes on the node it ran on
(``benchmarks/train/...``, ``benchmarks/analysis/...``: wall seconds ``s``, ``cpu_time``, ``max_rss`` in MB), set
against what the config asked for (its domain's ``resources``: ``cpus`` = threads = --cpus-per-task, ``mem_mb``,
``runtime`` in minutes; the supervised counterpart's overrides for ``sup-`` runs). It needs no SLURM
accounting, so it works on any cluster and on one machine; the SLURM plugin's own report
(``slurm-efficiency-report`` in profiles/slurm) reads ``sacct`` and needs accounting.

CPU efficiency is cpu_time / (s x cpus); on one machine a GPU job may have been given fewer threads than
``cpus`` (deepaug.workflow.resources), so there it reads low. The suggested runtime is the longest job x 1.5,
rounded up to whole minutes: what a group job's runtime (the sum of its members') would need.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path

RULE_DIRS = {"train": "train", "analysis": "analyze"}  # benchmarks/<dir>/<domain>/...: the rule
DEFAULTS = {"cpus": 8, "mem_mb": 32000, "runtime": None}  # deepaug.workflow.resources; analyze: the profile's


def _rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return []


def _number(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def requested(config: dict, domain: str, run: str, rule: str) -> dict:
    """What a job asked for: its domain's `resources` (a supervised run's overrides merged in)."""
    section = config.get(domain) or {}
    asked = dict(DEFAULTS, **(section.get("resources") or {}))
    if run.startswith("sup-"):
        asked.update(((section.get("supervised") or {}).get("resources")) or {})
    if rule != "train":
        asked["runtime"] = None  # analysis jobs: the profile's default-resources runtime
    return asked


def job_records(config: dict, directory: str | Path = ".") -> list[dict]:
    """One record per benchmarked training or analysis job in ``directory``."""
    root = Path(directory) / "benchmarks"
    out = []
    for sub, rule in RULE_DIRS.items():
        for path in sorted((root / sub).glob("*/*/*/seed*.tsv")):
            domain, _dataset, run = path.relative_to(root / sub).parts[:3]
            asked = requested(config, domain, run, rule)
            for row in _rows(path)[-1:]:  # the last repeat
                s, cpu, rss = (_number(row.get(k)) for k in ("s", "cpu_time", "max_rss"))
                if not s:
                    continue
                out.append(
                    {
                        "rule": rule,
                        "domain": domain,
                        "job": str(path.relative_to(root)),
                        "s": s,
                        "cpu_eff": None if cpu is None else cpu / (s * asked["cpus"]),
                        "mem_eff": None if rss is None else rss / asked["mem_mb"],
                        "max_rss_mb": rss,
                        "cpus": asked["cpus"],
                        "mem_mb": asked["mem_mb"],
                        "runtime_min": asked["runtime"],
                    }
                )
    return out


def summary(records: list[dict]) -> list[dict]:
    """Per (rule, domain): jobs, median and longest wall time, median CPU and peak memory efficiency,
    the runtime asked and the one the longest job suggests."""
    groups = defaultdict(list)
    for r in records:
        groups[(r["rule"], r["domain"])].append(r)
    rows = []
    for (rule, domain), rs in sorted(groups.items()):
        longest = max(r["s"] for r in rs)
        cpu = [r["cpu_eff"] for r in rs if r["cpu_eff"] is not None]
        mem = [r["mem_eff"] for r in rs if r["mem_eff"] is not None]
        rows.append(
            {
                "rule": rule,
                "domain": domain,
                "jobs": len(rs),
                "median_s": round(statistics.median(r["s"] for r in rs), 1),
                "max_s": round(longest, 1),
                "cpus": rs[0]["cpus"],
                "cpu_efficiency": round(statistics.median(cpu), 3) if cpu else None,
                "mem_mb": rs[0]["mem_mb"],
                "max_rss_mb": round(max(r["max_rss_mb"] or 0 for r in rs), 1),
                "mem_efficiency": round(max(mem), 3) if mem else None,
                "runtime_min": rs[0]["runtime_min"],
                "suggested_runtime_min": max(1, math.ceil(longest * 1.5 / 60)),
            }
        )
    return rows


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def report(config: dict, directory: str | Path = ".", out: str | Path | None = None) -> str:
    """The table ``deepaug efficiency`` prints (and, given ``out``, writes as CSV)."""
    rows = summary(job_records(config, directory))
    if not rows:
        return f"no benchmark files of training or analysis jobs under {Path(directory) / 'benchmarks'} yet"
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    head = (
        f"{'rule':8} {'domain':7} {'jobs':>5} {'median':>8} {'longest':>8} {'CPU eff':>8} {'peak mem':>15} "
        f"{'runtime':>18}"
    )
    lines = [f"efficiency per rule, from {Path(directory) / 'benchmarks'} (Snakemake benchmark files):", head]
    for r in rows:
        asked = "profile" if r["runtime_min"] is None else f"{r['runtime_min']} min"
        lines.append(
            f"{r['rule']:8} {r['domain']:7} {r['jobs']:>5} {r['median_s']:>7.0f}s {r['max_s']:>7.0f}s "
            f"{_pct(r['cpu_efficiency']):>8} {_pct(r['mem_efficiency']) + ' of ' + str(r['mem_mb']):>15} "
            f"{asked + ' (need ' + str(r['suggested_runtime_min']) + ')':>18}"
        )
    lines.append(
        "CPU eff: cpu_time / (wall x resources.cpus), median; peak mem: the largest max_rss / resources.mem_mb; "
        "need: the longest job x 1.5 in minutes (a group job asks for the sum of its members' runtime)"
    )
    return "\n".join(lines)
