"""Fidelity: how close this pipeline's baselines come to the published numbers (``results/fidelity.csv``).

A baseline is a setting without Deep Augmentation (method ``none``) of the contrastive table. For each
baseline and each published number of its (domain, dataset, metric) (``published.yaml`` beside this module:
each number with its source, the repository, path, commit and line it was read at, and whether it was
checked there), a row gives our mean over the seeds with its 95% t interval (n - 1 degrees of freedom), the
published number, the difference (ours - published) and a verdict:

* ``within interval``: the published number lies inside our 95% interval;
* ``off by more``: it lies outside;
* ``one seed: no interval``: one finite seed gives a mean but no interval, so nothing is scored;
* ``not comparable: <why>``: a setting the published number was made with (its ``requires``) differs from
  the baseline's (``train.epochs 2 (published 1000)``: the demo's tiny runs, another architecture, another
  probe), no seed has a finite score, or nothing was published for the dataset.

Scores that are not finite (NaN, inf) are never scored: they are left out of the mean and counted
(``n_not_finite``). A (domain, dataset) of the table without any published number gets one row, for the
domain's test metric, that says so; a published number of a dataset the table lacks is left out (a config
that ran other datasets has fewer rows). The metrics come in as an argument (``{(domain, objective): m}``
with ``m.test``, as :mod:`deepaug.analysis.summary`); this module reads no registry.

The baselines' settings come in as ``settings``: ``{(domain, dataset, setting): {key: value}}``, keys as in
``requires`` (``train.epochs``, ``model.arch``, ``test_tasks``); the workflow hands in each baseline's resolved
settings (:meth:`deepaug.workflow.plan.Plan.fidelity_settings`). Without them the recipes are not checked,
and the ``recipe`` column says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from deepaug.errors import DataValidationError
from deepaug.io import atomic_path

PUBLISHED = Path(__file__).with_name("published.yaml")
VERIFIED = ("checked", "quoted", "unverified")
WITHIN, OFF, ONE_SEED = "within interval", "off by more", "one seed: no interval"
COLUMNS = [
    "domain",
    "dataset",
    "setting",
    "metric",
    "n_seeds",
    "n_not_finite",
    "mean",
    "ci_low",
    "ci_high",
    "published",
    "published_sd",
    "difference",
    "verdict",
    "recipe",
    "source",
    "repo",
    "path",
    "commit",
    "line",
    "verified",
    "note",
]


# ------------------------------------------------------------------------------------ the published numbers
def published_rows(path: str | Path = PUBLISHED) -> list[dict]:
    """The published numbers, one dict per number with its source's fields (``requires`` merged: the
    number's over its source's). A malformed file is one error naming the entry."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataValidationError(f"{path}: cannot read the published numbers ({exc})") from None
    sources = (data or {}).get("sources") if isinstance(data, dict) else None
    if not isinstance(sources, list) or not sources:
        raise DataValidationError(f"{path}: no `sources:` list of published numbers")
    rows = []
    for i, src in enumerate(sources):
        where = f"{path}: sources[{i}]"
        if not isinstance(src, dict):
            raise DataValidationError(f"{where} is not a mapping")
        missing = [k for k in ("source", "domain", "verified", "numbers") if not src.get(k)]
        if missing:
            raise DataValidationError(f"{where} has no {', '.join(missing)}")
        for j, number in enumerate(src["numbers"]):
            at = f"{where}.numbers[{j}]"
            if not isinstance(number, dict) or not number.get("dataset") or not number.get("metric"):
                raise DataValidationError(f"{at}: give its dataset and metric")
            row = {k: v for k, v in src.items() if k != "numbers"} | number
            row["requires"] = {**(src.get("requires") or {}), **(number.get("requires") or {})}
            _check_number(row, at)
            rows.append(row)
    return rows


def _check_number(row: dict, at: str) -> None:
    for key in ("value", "sd"):
        value = row.get(key)
        if key == "sd" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataValidationError(f"{at}: {key} {value!r} is not a finite number")
    if row["verified"] not in VERIFIED:
        raise DataValidationError(f"{at}: verified {row['verified']!r} is not one of {', '.join(VERIFIED)}")
    if row["verified"] != "unverified" and not all(row.get(k) for k in ("repo", "path", "commit")):
        raise DataValidationError(f"{at}: a number marked {row['verified']} needs its repo, path and commit")


def required_keys(rows: list[dict]) -> list[str]:
    """Every setting some published number requires (what the workflow passes of each baseline's settings)."""
    return sorted({key for row in rows for key in row["requires"]})


# ------------------------------------------------------------------------------------------ the comparison
def t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t interval of the mean (n - 1 degrees of freedom); NaN bounds for one
    value, and the mean itself as both bounds when every value is the same."""
    from scipy import stats

    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def _same(ours, theirs) -> bool:
    if theirs is None or ours is None:
        return ours is None and theirs is None
    if isinstance(theirs, bool) or isinstance(ours, bool):
        return ours is theirs
    if isinstance(theirs, (int, float)):
        return isinstance(ours, (int, float)) and math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(theirs, (list, tuple)):
        return isinstance(ours, (list, tuple)) and sorted(map(str, ours)) == sorted(map(str, theirs))
    return ours == theirs


def _show(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def recipe_differences(requires: Mapping, settings: Mapping) -> list[str]:
    """What differs between the settings a published number requires and a baseline's: ``train.epochs 2
    (published 1000)``; a setting the baseline does not record as one value is a difference too."""
    out = []
    for key, theirs in requires.items():
        if key not in settings:
            out.append(f"{key} not known as one value (published {_show(theirs)})")
        elif not _same(settings[key], theirs):
            out.append(f"{key} {_show(settings[key])} (published {_show(theirs)})")
    return out


def _scores(part, metric: str) -> tuple[list[float], int]:
    """(the finite values of ``metric``, how many were not finite) over the baseline's seeds."""
    import pandas as pd

    values = pd.to_numeric(part[metric], errors="coerce").to_numpy(float)
    finite = [float(v) for v in values if math.isfinite(v)]
    return finite, len(values) - len(finite)


def _row(domain, dataset, setting, metric, finite, not_finite, published: dict | None, differences) -> dict:
    """One row of the table; ``published`` None: nothing was published for this dataset (or metric)."""
    n = len(finite)
    mean, low, high = t_interval(finite) if n else (math.nan, math.nan, math.nan)
    value = math.nan if published is None else float(published["value"])
    reasons = list(differences or [])
    if published is None:
        reasons = [f"no published number for {dataset}" if differences is None else differences[0]]
    elif not math.isfinite(value):
        reasons.append("the published number is not finite")
    if not n:
        reasons.append(f"no finite score ({not_finite} of {not_finite} seeds not finite)")
    if reasons:
        verdict = "not comparable: " + "; ".join(reasons)
    elif n == 1:
        verdict = ONE_SEED
    else:
        verdict = WITHIN if low <= value <= high else OFF
    src = published or {}
    return {
        "domain": domain,
        "dataset": dataset,
        "setting": setting,
        "metric": metric,
        "n_seeds": n,
        "n_not_finite": not_finite,
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "published": value,
        "published_sd": math.nan if src.get("sd") is None else float(src["sd"]),
        "difference": mean - value if n and math.isfinite(value) else math.nan,
        "verdict": verdict,
        "recipe": "",
        "source": src.get("source", ""),
        "repo": src.get("repo", ""),
        "path": src.get("path", ""),
        "commit": src.get("commit", ""),
        "line": src.get("line", ""),
        "verified": src.get("verified", ""),
        "note": src.get("note", ""),
    }


def _recipe_text(requires: Mapping, differences: list[str] | None) -> str:
    if differences is None:
        return "not checked: no settings given"
    if differences:
        return "differs: " + "; ".join(differences)
    return "matches: " + ", ".join(f"{k} {_show(v)}" for k, v in requires.items()) if requires else "nothing required"


# Settings that say *what* a number measures, not how well the recipe matches: a published number whose value of one
# of these differs from a baseline's is another method's baseline (solo-learn's BYOL row beside a SimCLR run), so
# it gets no row at all instead of a "not comparable" one.
IDENTITY_KEYS = ("train.ssl_method",)


def _same_method(number: Mapping, recorded: Mapping | None) -> bool:
    """Whether ``number`` measures the baseline's method (unknown settings, or a key they lack, count as yes)."""
    requires = number.get("requires") or {}
    return recorded is None or all(
        key not in requires or key not in recorded or recorded[key] == requires[key] for key in IDENTITY_KEYS
    )


def fidelity(table, published, metrics: Mapping, settings: Mapping | None = None):
    """One row per baseline (domain, dataset, setting) and published number of its metric (see the module's
    docstring): ``table`` the contrastive table (a DataFrame: domain, dataset, method, seed and the metric
    columns; ``setting`` and ``objective`` where it has them), ``published`` the rows of
    :func:`published_rows`, ``metrics`` ``{(domain, objective): m}`` (``m.test``: the metric of a dataset
    without a published number), ``settings`` ``{(domain, dataset, setting): {key: value}}`` or None."""
    import pandas as pd

    base = table[table["method"] == "none"]
    if "objective" in base:
        base = base[base["objective"].fillna("contrastive") == "contrastive"]
    setting = base["setting"] if "setting" in base else pd.Series("none", index=base.index)
    base = base.assign(
        _domain=base["domain"].astype(str),
        _dataset=base["dataset"].astype(str),
        _setting=setting.fillna("none").astype(str),
    )
    rows = []
    for (domain, dataset, name), part in base.groupby(["_domain", "_dataset", "_setting"], sort=True):
        recorded = None if settings is None else settings.get((domain, dataset, name))
        of_dataset = [p for p in published if p["domain"] == domain and str(p["dataset"]) == dataset]
        numbers = [p for p in of_dataset if p["metric"] in part and _same_method(p, recorded)]
        for number in numbers:
            requires = number.get("requires") or {}
            if settings is None:
                differences = None
            elif recorded is None:
                differences = [f"the settings of {domain}/{dataset}/{name} are unknown"]
            else:
                differences = recipe_differences(requires, recorded)
            finite, not_finite = _scores(part, number["metric"])
            row = _row(domain, dataset, name, number["metric"], finite, not_finite, number, differences)
            row["recipe"] = _recipe_text(requires, differences)
            rows.append(row)
        m = metrics.get((domain, "contrastive"))
        if not numbers and m is not None and m.test in part:  # the dataset's test metric, and why it has no number
            finite, not_finite = _scores(part, m.test)
            why = [f"no published number for {m.test} on {dataset}"] if of_dataset else None
            rows.append(_row(domain, dataset, name, m.test, finite, not_finite, None, why))
    return pd.DataFrame(rows, columns=COLUMNS)


def parse_settings(text: str | None) -> dict | None:
    """``--settings``: JSON ``{"domain/dataset/setting": {key: value}}`` -> ``{(domain, dataset, setting): ...}``."""
    import json

    if text is None:
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--settings is not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError('--settings: expected a JSON object {"domain/dataset/setting": {"train.epochs": 1000, ...}}')
    out = {}
    for key, value in raw.items():
        parts = key.split("/")
        if len(parts) != 3 or not isinstance(value, dict):
            raise ValueError(f"--settings: {key!r} is not 'domain/dataset/setting' with a mapping of settings")
        out[tuple(parts)] = value
    return out


def write_fidelity(
    table_path: str | Path,
    out: str | Path,
    metrics: Mapping,
    settings: Mapping | None = None,
    published_path: str | Path = PUBLISHED,
):
    """results/fidelity.csv from the contrastive table (results/table.csv) and the published numbers."""
    import pandas as pd

    frame = fidelity(pd.read_csv(table_path), published_rows(published_path), metrics, settings)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4g")
    return frame
