"""One tidy table per objective: every run of the run table (results/runs.tsv) with the scores its
evaluation wrote (one row per run); and the analyses' table (one row per setting and seed: the
analysed run's row of the run table with ``run`` set to its setting, and its analysis.json). The
coordinates come from the run table, never from a path."""

from __future__ import annotations

import sys
from pathlib import Path

from deepaug.io import atomic_path, read_json
from deepaug.workflow.runs import analysis_dir, read_table

SORT = ["domain", "dataset", "method", "layer", "stop_gradient", "run", "seed"]


def aggregate(
    runs_table: str | Path,
    out: str | Path,
    objective: str = "contrastive",
    name: str = "eval.json",
    per_setting: bool = False,
):
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
                raise FileNotFoundError(
                    f"run {row['domain']}/{row['dataset']}/{row['run']}/seed{row['seed']} has no {path}"
                )
            jobs.append((row, read_json(path)))
    rows = []
    for (row, scores), code in zip(jobs, (run_code(r) for r, _ in jobs)):
        row = {k: v for k, v in row.items() if k != "dir"}
        row.update({k: v for k, v in scores.items() if k not in row})
        row.update(code)
        rows.append(row)
    df = pd.DataFrame(rows)
    warning = code_version_warning(df, f"{Path(out).name}")
    if warning:
        print(warning, file=sys.stderr)
    grid = [c for c in runs.columns if c != "dir"]
    df = df[grid + sorted(c for c in df.columns if c not in grid)]
    df["layer"] = df["layer"].astype("Int64")
    df = df.sort_values(SORT, na_position="first")
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    return df


CODE_COLUMNS = ("code_commit", "code_dirty", "code_sha256")


def run_code(row: dict) -> dict:
    """The code version that trained a run (its provenance's fingerprint: commit, dirty flag and the hash of
    the package's code), as table columns; empty strings when provenance.json is missing or older."""
    try:
        code = (read_json(Path(row["dir"]) / "provenance.json").get("fingerprint") or {}).get("code") or {}
    except (OSError, ValueError, KeyError):
        code = {}
    return {
        "code_commit": code.get("commit") or "",
        "code_dirty": code.get("dirty"),
        "code_sha256": code.get("code_sha256") or "",
    }


def _describe(commit: str, dirty) -> str:
    return f"{commit[:10] or 'unknown'}{' (with uncommitted changes)' if dirty else ''}"


def code_version_warning(df, table: str, checkout: dict | None = None) -> str | None:
    """A warning when the runs of ``df`` were made by more than one code version, or by one other than the
    checkout's (code version = the package code's hash; commit and dirty flag describe it). Snakemake does
    not re-run a job when only ``src/`` changed, so a table can mix numbers of old and new code."""
    from deepaug.engine.fingerprint import code_version

    if df.empty or "code_sha256" not in df:
        return None
    checkout = checkout or code_version()
    versions = df.groupby("code_sha256", dropna=False).agg(
        runs=("code_sha256", "size"), commit=("code_commit", "first"), dirty=("code_dirty", "first")
    )
    if len(versions) == 1 and versions.index[0] == checkout["code_sha256"]:
        return None
    parts = [
        f"{_describe(v.commit, v.dirty)}: {v.runs} run{'s' * (v.runs != 1)}"
        + (" (this checkout)" if sha == checkout["code_sha256"] else "")
        for sha, v in versions.sort_values("runs", ascending=False).iterrows()
    ]
    return (
        f"WARNING: {table}: its {len(df)} runs were made by {len(versions)} code version"
        f"{'s' * (len(versions) != 1)} ({'; '.join(parts)}); this checkout is "
        f"{_describe(checkout['commit'], checkout['dirty'])}. Snakemake does not re-run a job when only the "
        f"code changed: to recompute every run with this code, run snakemake --forcerun train "
        f"(and set checkpoints.reuse: never, or delete checkpoints/), see README 'When the code changes'."
    )


def code_version_warnings(tables) -> list[str]:
    """The warnings of :func:`code_version_warning` for every tidy table in ``tables`` that exists."""
    import pandas as pd

    out = []
    for path in tables:
        if Path(path).is_file():
            df = pd.read_csv(path)
            if set(CODE_COLUMNS) <= set(df.columns):
                warning = code_version_warning(df, Path(path).name)
                if warning:
                    out.append(warning)
    return out
