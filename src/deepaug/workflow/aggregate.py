"""Collect every run's evaluation into one tidy table (one row per run, both domains)."""

from __future__ import annotations

from pathlib import Path

from deepaug.workflow.io import atomic_path, read_json
from deepaug.workflow.runs import parse_variant

GRID_COLUMNS = ["domain", "dataset", "method", "layer", "stop_gradient", "seed", "variant"]


def row_for(eval_path: str | Path) -> dict:
    """Grid coordinates are read back from the path ``results/{domain}/{dataset}/{variant}/seed{seed}/eval.json``."""
    p = Path(eval_path)
    seed_dir, variant_dir, dataset_dir, domain_dir = p.parents[:4]
    method, layer, sg = parse_variant(variant_dir.name)
    if not seed_dir.name.startswith("seed"):
        raise ValueError(f"{p}: expected .../seed<k>/eval.json")
    row = {
        "domain": domain_dir.name, "dataset": dataset_dir.name, "method": method, "layer": layer,
        "stop_gradient": sg, "seed": int(seed_dir.name[4:]), "variant": variant_dir.name,
    }
    row.update(read_json(p))
    return row


def aggregate(eval_paths: list[str | Path], out: str | Path):
    import pandas as pd

    rows = [row_for(p) for p in eval_paths]
    df = pd.DataFrame(rows)
    metric_cols = sorted(c for c in df.columns if c not in GRID_COLUMNS)
    df = df[GRID_COLUMNS + metric_cols]
    df["layer"] = df["layer"].astype("Int64")
    df = df.sort_values(["domain", "dataset", "method", "layer", "stop_gradient", "seed"], na_position="first")
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    return df
