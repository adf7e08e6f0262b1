"""Tuned axes: per setting of the other axes and per seed, keep the run with the best dev score.

The authors tuned the text learning rate and batch size per layer: each of their sweep scripts trains
batch {64, 128} x lr {1e-5, 3e-5, 5e-5} for every layer and seed (`_run_uni_hyper_REG_S125seeds.sh`,
`_run_uni_hyper_T_S50seeds.sh`, `_run_uni_hyper_simcse_seeds.sh` in bruel-gabrielsson/SimCSE) and
`export_results_max.py` keeps, per configuration, the run with the highest STS-B dev Spearman. A
domain's ``tuned:`` list in the config names such axes; this module makes the same choice on the
aggregated table: **selected on dev, reported on test**. The selected table has one row per setting
of the other axes and seed, the winning run's scores, the tuned axes' winning values in their own
columns, ``run`` set to the run table's ``setting`` (the id without the tuned axes, so that a setting
is one group whatever won per seed) and the winner's own id in ``selected_run``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from deepaug.io import atomic_path


def dev_best(runs: list[str], scores: list[float | None]) -> str:
    """The run with the highest finite dev score; ties go to the smallest run id, so that the tidy
    table's selection and the analysis of the selected run (which picks among its candidates' eval.json
    at run time) always agree. ValueError when no run has one: choosing by test would flatter it."""
    finite = [(s, r) for r, s in zip(runs, scores) if s is not None and math.isfinite(s)]
    if not finite:
        raise ValueError("no run has a finite dev score")
    top = max(s for s, _ in finite)
    return min(r for s, r in finite if s == top)


def select_tuned(table: pd.DataFrame, tuned: list[str], dev: str) -> pd.DataFrame:
    """Per setting of every other column of the run table and per seed, the row with the highest ``dev``.

    ``tuned``: the axis columns tuned on dev (absent columns are ignored: nothing was swept). A group
    whose runs all lack a dev score is an error: choosing by test instead would flatter the choice.
    """
    tuned = [a for a in tuned if a in table]
    if not tuned or (table["setting"] == table["run"]).all():
        return table.assign(selected_run=table["run"], tuned_candidates=1)
    if dev not in table:
        raise ValueError(f"the table has no dev metric {dev!r} to tune {', '.join(tuned)} by")
    keys = ["domain", "dataset", "objective", "setting", "seed"]
    rows = []
    for _, group in table.groupby(keys, dropna=False, sort=True):
        try:
            winner = dev_best(group["run"].tolist(), [None if pd.isna(v) else float(v) for v in group[dev]])
        except ValueError:
            first = group.iloc[0]
            raise ValueError(
                f"no dev score ({dev}) for any run of {first['domain']}/{first['dataset']}/"
                f"{first['setting']}/seed{first['seed']}: cannot choose its {', '.join(tuned)}"
            ) from None
        best = group[group["run"] == winner].iloc[0].copy()
        best["selected_run"] = best["run"]
        best["tuned_candidates"] = int(len(group))
        best["run"] = best["setting"]
        rows.append(best)
    return pd.DataFrame(rows).reset_index(drop=True)


def dev_best_candidate(models: list[str], evals: list[str], run_ids: list[str], dev: str) -> tuple[str, dict]:
    """Of the candidate runs of one setting and seed (their model.pt, eval.json and run id, in the same
    order), the model of the dev-best (the run `select_tuned` reports) and what to record about the
    choice. One candidate needs no eval.json: nothing is chosen."""
    if not (len(models) == len(evals) == len(run_ids)) and not (len(models) == 1 and not evals):
        raise ValueError(
            f"{len(models)} models, {len(evals)} eval.json files and {len(run_ids)} run ids: "
            f"give one of each per candidate run, in the same order"
        )
    if len(models) == 1 and not evals:
        return models[0], {}
    from deepaug.io import read_json

    scores = [read_json(path).get(dev) for path in evals]
    try:
        winner = dev_best(run_ids, scores)
    except ValueError:
        raise ValueError(
            f"none of the candidate runs {', '.join(run_ids)} has a finite {dev} in its eval.json "
            f"({', '.join(evals)}): cannot choose which to analyse"
        ) from None
    i = run_ids.index(winner)
    return models[i], {
        "selected_run": winner,
        "dev_metric": dev,
        "dev_score": scores[i],
        "tuned_candidates": len(models),
    }


def write_selected(
    table_path: str | Path, out: str | Path, tuned: dict[str, list[str]], metrics: Mapping
) -> pd.DataFrame:
    """Select per domain and objective (each has its own dev metric, ``metrics[(domain, objective)].dev``;
    ``tuned``: the tuned axes per domain) and write the table."""
    table = pd.read_csv(table_path)
    objectives = table["objective"] if "objective" in table else pd.Series("contrastive", index=table.index)
    parts = []
    for (domain, objective), part in table.groupby([table["domain"], objectives.rename("objective")], sort=True):
        parts.append(select_tuned(part, tuned.get(domain, []), metrics[(domain, objective)].dev))
    selected = pd.concat(parts, ignore_index=True) if parts else table
    selected["layer"] = selected["layer"].astype("Int64")
    with atomic_path(out) as tmp:
        selected.to_csv(tmp, index=False)
    return selected
