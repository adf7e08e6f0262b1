"""One tidy table per objective: every run of the run table (results/runs.tsv) with the scores its
evaluation wrote (one row per run); and the analyses' table (one row per setting and seed: the
analysed run's row of the run table with ``run`` set to its setting, and its analysis.json). The
coordinates come from the run table, never from a path."""

from __future__ import annotations

from pathlib import Path

from deepaug.workflow.io import atomic_path, read_json
from deepaug.workflow.runs import analysis_dir, read_table

SORT = ["domain", "dataset", "method", "layer", "stop_gradient", "run", "seed"]


def aggregate(runs_table: str | Path, out: str | Path, objective: str = "contrastive", name: str = "eval.json",
              per_setting: bool = False):
    """Join the runs of ``objective`` with their ``<dir>/<name>`` (eval.json); a run without that file
    is an error naming it (the workflow makes every one first). ``per_setting``: one row per setting
    and seed instead, joined with its analysis directory's ``<name>`` (analysis.json), whose
    ``selected_run`` says which candidate's row (its tuned axes' values) the row shows."""
    import pandas as pd

    runs = read_table(runs_table)
    runs = runs[runs["objective"] == objective]
    if runs.empty:
        raise ValueError(f"{runs_table} has no {objective} runs")
    records = runs.to_dict("records")
    if per_setting:
        by_run = {(r["domain"], r["dataset"], r["run"], r["seed"]): r for r in records}
        firsts = {}
        for r in records:
            firsts.setdefault((r["domain"], r["dataset"], r["setting"], r["seed"]), r)
        jobs = []
        for (domain, dataset, setting, seed), first in firsts.items():
            path = Path(analysis_dir(domain, dataset, setting, seed)) / name
            if not path.is_file():
                raise FileNotFoundError(f"setting {domain}/{dataset}/{setting}/seed{seed} has no {path}")
            scores = read_json(path)
            row = dict(by_run.get((domain, dataset, scores.get("selected_run"), seed), first), run=setting)
            jobs.append((row, scores))
    else:
        jobs = []
        for row in records:
            path = Path(row["dir"]) / name
            if not path.is_file():
                raise FileNotFoundError(f"run {row['domain']}/{row['dataset']}/{row['run']}/seed{row['seed']} has no {path}")
            jobs.append((row, read_json(path)))
    rows = []
    for row, scores in jobs:
        row = {k: v for k, v in row.items() if k != "dir"}
        row.update({k: v for k, v in scores.items() if k not in row})
        rows.append(row)
    df = pd.DataFrame(rows)
    grid = [c for c in runs.columns if c != "dir"]
    df = df[grid + sorted(c for c in df.columns if c not in grid)]
    df["layer"] = df["layer"].astype("Int64")
    df = df.sort_values(SORT, na_position="first")
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    return df
