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

from pathlib import Path

import pandas as pd

from deepaug.workflow.io import atomic_path


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
        scores = group[dev]
        if scores.isna().all():
            first = group.iloc[0]
            raise ValueError(f"no dev score ({dev}) for any run of {first['domain']}/{first['dataset']}/"
                             f"{first['setting']}/seed{first['seed']}: cannot choose its {', '.join(tuned)}")
        best = group.loc[scores.idxmax()].copy()
        best["selected_run"] = best["run"]
        best["tuned_candidates"] = int(len(group))
        best["run"] = best["setting"]
        rows.append(best)
    return pd.DataFrame(rows).reset_index(drop=True)


def write_selected(table_path: str | Path, out: str | Path, tuned: dict[str, list[str]]) -> pd.DataFrame:
    """Select per study (``domain``/``domain_sup``: each has its own dev metric; ``tuned``: the tuned
    axes per domain) and write the table."""
    from deepaug.analysis.summary import DEV_METRIC, study

    table = pd.read_csv(table_path)
    parts = []
    for key, part in table.groupby(study(table), sort=True):
        parts.append(select_tuned(part, tuned.get(part["domain"].iloc[0], []), DEV_METRIC[key]))
    selected = pd.concat(parts, ignore_index=True) if parts else table
    selected["layer"] = selected["layer"].astype("Int64")
    with atomic_path(out) as tmp:
        selected.to_csv(tmp, index=False)
    return selected
