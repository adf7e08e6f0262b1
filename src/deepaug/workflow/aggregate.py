"""One tidy table per objective: every run of the run table (results/runs.tsv) with the scores its
evaluation wrote (one row per run). The run's coordinates come from the run table, never from its path."""

from __future__ import annotations

from pathlib import Path

from deepaug.workflow.io import atomic_path, read_json
from deepaug.workflow.runs import read_table

SORT = ["domain", "dataset", "method", "layer", "stop_gradient", "run", "seed"]


def aggregate(runs_table: str | Path, out: str | Path, objective: str = "contrastive", name: str = "eval.json"):
    """Join the runs of ``objective`` with their ``<dir>/<name>`` (eval.json, or analysis.json); a run
    without that file is an error naming it (the workflow makes every one first)."""
    import pandas as pd

    runs = read_table(runs_table)
    runs = runs[runs["objective"] == objective]
    if runs.empty:
        raise ValueError(f"{runs_table} has no {objective} runs")
    rows = []
    for row in runs.to_dict("records"):
        path = Path(row.pop("dir")) / name
        if not path.is_file():
            raise FileNotFoundError(f"run {row['domain']}/{row['dataset']}/{row['run']}/seed{row['seed']} has no {path}")
        scores = read_json(path)
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
