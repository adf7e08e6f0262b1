"""The report's summary: baseline vs best Deep Augmentation setting per dataset, and whether this
run's numbers support each of the paper's claims, with verdicts that respect the statistics.

Reads only the aggregated table. **Selected on dev, reported on test**: every "best" (the best setting
per dataset, the best layer, each side of a claim) is the setting with the highest mean over seeds of
the dev metric of the runs' domain and objective (the linear probe on the held-out dev images for vision,
the dev task's Spearman for text); the chosen setting's test metric is what is reported. A domain whose
table has no dev metric gets no "best" and says so: test is never used to choose. The metrics come in as
an argument, ``metrics``: ``{(domain, objective): m}`` with ``m.test`` and ``m.dev`` (the CLI hands in
``deepaug.domains.metric_table()``; this module reads no registry).

Verdicts: a paired t-test across seeds (seed-matched runs) between the chosen setting and the
reference, with a Holm correction over every setting the claim could have chosen (selection on dev
still rides on seed noise shared by dev and test, so the family is the candidates, not one pair), the
effect as the mean paired difference with its 95% paired-t interval, and "not significant (n = 3)"
where the corrected p is not below ``ALPHA``. The author's sweeps also select on dev
(``export_results_max.py`` in bruel-gabrielsson/SimCSE keeps the best run by STS-B dev Spearman).

The inversion check (:func:`inversion`) compares each objective with its own baseline; a baseline at
chance level (:func:`baseline_check`) did not learn, and nothing is reported against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from deepaug.core.vocabulary import LAYERS_AT_ONCE, layers_words
from deepaug.io import atomic_path


def objective_of(part: pd.DataFrame) -> str:
    """The objective of a table's runs (a table without the column is a contrastive sweep's)."""
    if "objective" not in part or part.empty:
        return "contrastive"
    objectives = part["objective"].dropna().unique()
    if len(objectives) > 1:
        raise ValueError(f"a table of one study mixes objectives {sorted(objectives)}; give each its own table")
    return str(objectives[0]) if len(objectives) else "contrastive"


def metrics_of(metrics: Mapping, domain: str, objective: str) -> tuple[str | None, str | None]:
    """``(test metric, dev metric)`` of ``domain``'s runs of ``objective``; ``(None, None)`` if unknown."""
    m = metrics.get((domain, objective))
    return (m.test, m.dev) if m is not None else (None, None)


# A Deep Augmentation setting: its method, stop-gradient and layer (or its layers at once, where the layer is
# empty), and every other swept axis, all of which the run id spells (the seed and dataset are not part of it).
SETTING = ["method", "stop_gradient", "layer", LAYERS_AT_ONCE, "run"]
ALPHA = 0.05
# Settings that switch a whole recipe (vision's train.ssl_method: SimCLR, BYOL, ...): each value is a study of its
# own, with its own baseline, summary row and claims (a column of the table only where the sweep has the axis).
STUDY_AXES = ("ssl_method",)


def studies(table: pd.DataFrame, *keys: str):
    """``(names, part)`` per group of ``keys`` and of each :data:`STUDY_AXES` column the table has: ``names`` a
    dict of the keys' and study columns' values (the first columns of a summary or claims row)."""
    study = [c for c in STUDY_AXES if c in table]
    by = [*keys, *study]
    for values, part in table.groupby(by, dropna=False, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        yield dict(zip(by, values, strict=True)), part


# ----------------------------------------------------------------------------------------- statistics
def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): sort ascending, multiply the i-th smallest
    (0-based) by m - i, carry the running maximum, cap at 1. NaN entries (comparisons that could not be
    tested) are left out of the family and stay NaN."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def _paired_differences(a: pd.Series, b: pd.Series) -> np.ndarray:
    seeds = sorted(set(a.dropna().index) & set(b.dropna().index))
    return a.loc[seeds].to_numpy(float) - b.loc[seeds].to_numpy(float)


def paired_stats(a: pd.Series, b: pd.Series, tol: float = 0.0) -> dict:
    """Seed-matched a - b (both indexed by seed): n, mean difference, its 95% paired-t interval and the
    two-sided p of the paired t-test (as ``scipy.stats.ttest_rel``); with ``tol`` > 0 also the p of
    the equivalence test (TOST: the difference lies within +-tol) and of the difference lying beyond
    +-tol on the side observed. Identical differences (zero spread) give exact answers, not NaN."""
    from scipy import stats

    d = _paired_differences(a, b)
    n = len(d)
    nan = {
        "n": n,
        "difference": float(d.mean()) if n else math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "p": math.nan,
        "p_equivalent": math.nan,
        "p_beyond": math.nan,
    }
    if n < 2:
        return nan
    mean, se, df = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(n), n - 1
    if se == 0:
        return nan | {
            "ci_low": mean,
            "ci_high": mean,
            "p": 1.0 if mean == 0 else 0.0,
            "p_equivalent": 0.0 if abs(mean) < tol else 1.0,
            "p_beyond": 0.0 if abs(mean) > tol else 1.0,
        }
    half = float(stats.t.ppf(0.975, df)) * se
    return nan | {
        "ci_low": mean - half,
        "ci_high": mean + half,
        "p": float(2 * stats.t.sf(abs(mean) / se, df)),
        "p_equivalent": float(max(stats.t.sf((mean + tol) / se, df), stats.t.cdf((mean - tol) / se, df))),
        "p_beyond": float(stats.t.sf((abs(mean) - tol) / se, df)),
    }


def paired_test(a: pd.Series, b: pd.Series) -> tuple[int, float]:
    """Paired t-test on seed-matched values (a, b indexed by seed): (number of pairs, two-sided p)."""
    r = paired_stats(a, b)
    return r["n"], r["p"]


# ------------------------------------------------------------------------------------------ selection
def _setting_name(setting: tuple, names=()) -> str:
    """'dropout layer 3 sg', with the other swept axes the run id spells: 'dropout layer 3 sg (p1.0)';
    'dropout all layers at once sg' for a run with the op at several layers. ``names``: the table's columns,
    which tell where a spelled setting ends when its name holds a '_' (detach_p0.5, batch_size64)."""
    method, sg, layer, layers, run = setting
    extra = str(run).split("_", 1)[1] if "_" in str(run) else ""
    where = f"layer {int(layer)}" if pd.isna(layers) else f"{layers_words(layers)} at once"
    return f"{method} {where} {sg}" + (f" ({_spelled(extra, names)})" if extra else "")


def _spelled(extra: str, names) -> str:
    """The settings of a run id's tail, comma-separated: ``detach_p0.5_p1.0`` -> ``detach_p0.5, p1.0``.
    Each starts with the longest of ``names`` (``.`` spelled ``-``, as in the id) and runs to the next
    ``_`` that one of them follows; without names every ``_`` separates."""
    known = sorted({str(n).replace(".", "-") for n in names}, key=len, reverse=True)
    if not known:
        return extra.replace("_", ", ")
    parts, start = [], 0
    while start < len(extra):
        name = next((n for n in known if extra.startswith(n, start)), "")
        end = start + len(name)
        while end < len(extra) and not (extra[end] == "_" and any(extra.startswith(n, end + 1) for n in known)):
            end += 1
        parts.append(extra[start:end])
        start = end + 1
    return ", ".join(parts)


def with_setting_columns(part: pd.DataFrame) -> pd.DataFrame:
    """``part`` with every :data:`SETTING` column: a table without layers-at-once runs (or written before they
    existed) gets an empty ``layers_at_once`` column, a table without ``run`` its settings' ids."""
    part = with_run_ids(part)
    return part if LAYERS_AT_ONCE in part else part.assign(**{LAYERS_AT_ONCE: math.nan})


def _groups(part: pd.DataFrame):
    """The Deep Augmentation settings of ``part`` (its rows grouped by :data:`SETTING`; an empty layer or an
    empty layers_at_once is part of a setting, not a reason to leave its runs out)."""
    aug = with_setting_columns(part)
    return aug[aug["method"] != "none"].groupby(SETTING, sort=True, dropna=False)


def _scores(part: pd.DataFrame, metric: str) -> dict[tuple, pd.Series]:
    """Per Deep Augmentation setting (method, stop_gradient, layer, layers_at_once, run id): its metric indexed
    by seed."""
    return {_key(key): runs.set_index("seed")[metric] for key, runs in _groups(part)}


def _key(setting: tuple) -> tuple:
    """A setting with None for its empty values (NaN, unequal to itself, cannot find a dict entry)."""
    return tuple(None if pd.isna(v) else v for v in setting)


def dev_best(part: pd.DataFrame, dev: str, **where) -> tuple | None:
    """The setting (method, stop_gradient, layer, layers_at_once, run id) with the highest mean dev score over
    seeds among the Deep Augmentation runs of ``part`` matching ``where`` (values, or predicates on the
    column; ties: the first in sorted order); None when no such setting has a dev score."""
    sel = _where(with_setting_columns(part), where)
    means = _groups(sel)[dev].mean().dropna() if dev in sel else pd.Series(dtype=float)
    return _key(means.idxmax()) if not means.empty else None


def _where(part: pd.DataFrame, where: dict) -> pd.DataFrame:
    """The rows of ``part`` matching ``where`` (a value, or a predicate on the column, per column)."""
    for key, value in where.items():
        part = part[value(part[key])] if callable(value) else part[part[key] == value]
    return part


def _dev_task_overlap(part: pd.DataFrame, metric: str) -> str:
    """A warning when the dev task is one of the test tasks (the table's ``dev_task`` column names it,
    when the runs record it): then dev and test are not independent."""
    if "dev_task" not in part or not part["dev_task"].notna().any():
        return ""
    tasks = sorted(set(part["dev_task"].dropna().astype(str)))
    shared = [t for t in tasks if f"sts_{t}" in part]  # a test task's column: in sts_avg, beside it
    return (
        f"; caution: the dev task ({', '.join(shared)}) is also a test task, so this selection is not "
        f"independent of test"
        if shared
        else ""
    )


def selection_protocol(part: pd.DataFrame, metric: str, dev: str) -> tuple[str, bool]:
    """(what the table says about how the best was chosen, whether a dev metric exists to choose by)."""
    if dev not in part or not part.loc[part["method"] != "none", dev].notna().any():
        return (
            f"no dev metric ({dev} is not in the table for these runs): nothing is chosen, since choosing "
            f"on test ({metric}) would flatter the choice; re-run their evaluation with this version"
        ), False
    return f"selected on dev ({dev}), reported on test ({metric}){_dev_task_overlap(part, metric)}", True


def _verdict(stats: dict, p_holm: float, equivalence: bool = False) -> str:
    n = stats["n"]
    if n < 2:
        return f"not tested (n = {n}: a paired test needs two or more seeds)"
    if equivalence:
        if stats["p_equivalent_holm"] < ALPHA:
            return "supported"
        return "not supported" if stats["p_beyond_holm"] < ALPHA else f"not significant (n = {n})"
    if p_holm < ALPHA:
        return "supported" if stats["difference"] > 0 else "not supported"
    return f"not significant (n = {n})"


def compare_to_reference(
    part: pd.DataFrame, metric: str, dev: str, reference: pd.Series, tol: float = 0.0, **where
) -> dict | None:
    """The dev-best setting among those matching ``where`` against ``reference`` (seed-indexed test
    scores): its paired statistics on test, with Holm over every candidate setting matching ``where``
    (each compared with the same reference). None when no candidate has a dev score."""
    chosen = dev_best(part, dev, **where)
    if chosen is None:
        return None
    candidates = _scores(_where(with_setting_columns(part), where), metric)
    stats = {key: paired_stats(runs, reference, tol) for key, runs in candidates.items()}
    keys = list(stats)
    out = dict(
        stats[chosen],
        key=chosen,
        setting=_setting_name(chosen, part.columns),
        n_compared=sum(not math.isnan(stats[k]["p"]) for k in keys),
    )
    for name in ("p", "p_equivalent", "p_beyond"):
        adjusted = dict(zip(keys, holm([stats[k][name] for k in keys])))
        out[f"{name}_holm"] = adjusted[chosen]
    out["mean"] = float(candidates[chosen].mean())
    out["std"] = float(candidates[chosen].std())
    out["dev_mean"] = float(part.loc[_in_setting(part, chosen), dev].mean())
    return out


def _in_setting(part: pd.DataFrame, setting: tuple) -> pd.Series:
    """The rows of one setting (an empty value matches an empty cell)."""
    part = with_setting_columns(part)
    match = pd.Series(True, index=part.index)
    for column, value in zip(SETTING, setting):
        match &= part[column].isna() if pd.isna(value) else part[column] == value
    return match


def with_run_ids(table: pd.DataFrame) -> pd.DataFrame:
    """A table without the run table's ``run`` column (written by hand, or by an older version) gets the
    id of its Deep Augmentation setting, so that every setting is one group."""
    from deepaug.paths import run_id

    if "run" in table:
        return table
    ids = [
        run_id("contrastive", m, None if m == "none" else layer, sg == "sg", {})
        for m, layer, sg in zip(table["method"], table["layer"], table["stop_gradient"])
    ]
    return table.assign(run=ids)


# ------------------------------------------------------------------------------------- summary, claims
def baseline_vs_best(table: pd.DataFrame, metrics: Mapping) -> pd.DataFrame:
    """Per (domain, dataset): the baseline and the dev-best Deep Augmentation setting on test, their
    paired difference with its 95% interval, p and Holm-corrected p over every setting compared with
    the baseline, and a verdict."""
    rows = []
    table = with_setting_columns(table)
    for names, part in studies(table, "domain", "dataset"):
        domain = names["domain"]
        metric, dev = metrics_of(metrics, domain, objective_of(part))
        if metric is None or metric not in part:
            continue
        base_rows = part[part["method"] == "none"]
        base = base_rows.set_index("seed")[metric]
        protocol, has_dev = selection_protocol(part, metric, dev)
        row = {
            **names,
            "metric": metric,
            "dev_metric": dev,
            "selection": protocol,
            "baseline_mean": base.mean(),
            "baseline_std": base.std(),
            "baseline_dev_mean": base_rows[dev].mean() if dev in part else math.nan,
            "n_seeds": len(base),
        }
        best = compare_to_reference(part, metric, dev, base) if has_dev else None
        if best is not None:
            verdict = _verdict(best, best["p_holm"])
            row.update(
                {
                    "best_setting": best["setting"],
                    "best_dev_mean": best["dev_mean"],
                    "best_mean": best["mean"],
                    "best_std": best["std"],
                    "difference": best["difference"],
                    "ci_low": best["ci_low"],
                    "ci_high": best["ci_high"],
                    "paired_seeds": best["n"],
                    "paired_t_p": best["p"],
                    "holm_p": best["p_holm"],
                    "n_compared": best["n_compared"],
                    "verdict": {
                        "supported": "better than the baseline",
                        "not supported": "worse than the baseline",
                    }.get(verdict, verdict),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _claim_row(
    claim: str,
    domain: str,
    dataset: str,
    protocol: str,
    metric: str,
    value: dict | None,
    reference: tuple | None,
    ref_scores: pd.Series | None,
    sides: tuple[str, str],
    equivalence: bool = False,
    names=(),
    comparison: str = "",
) -> dict:
    row = {
        "claim": claim,
        "domain": domain,
        "dataset": dataset,
        "selection": protocol,
        "comparison": comparison or "each side's dev-best setting",
        "metric": metric,
    }
    if value is None or reference is None:
        side = sides[1] if reference is None else sides[0]
        why = (
            "no dev metric to choose by"
            if protocol.startswith("no dev metric")
            else f"no {side} runs with a dev score in the table"
        )
        return row | {"verdict": f"not tested ({why})"}
    return row | {
        "value_setting": value["setting"],
        "value": value["mean"],
        "reference_setting": _setting_name(reference, names),
        "reference": float(ref_scores.mean()),
        "difference": value["difference"],
        "ci_low": value["ci_low"],
        "ci_high": value["ci_high"],
        "n_seeds": value["n"],
        "p": value["p_equivalent" if equivalence else "p"],
        "p_holm": value["p_equivalent_holm" if equivalence else "p_holm"],
        "n_compared": value["n_compared"],
        "verdict": _verdict(value, value["p_holm"], equivalence),
    }


def _rates(part: pd.DataFrame, setting: tuple) -> list[float]:
    """The dropout rates of one setting's runs (empty where the table has no rate column)."""
    if "rate" not in part:
        return []
    return sorted(set(pd.to_numeric(part.loc[_in_setting(part, setting), "rate"]).dropna()))


def _shared_rates(part: pd.DataFrame) -> list[float]:
    """The dropout rates that have runs both with and without stop-gradient."""
    if "rate" not in part:
        return []
    dropout = part[part["method"] == "dropout"]
    per_side = [
        set(pd.to_numeric(dropout.loc[dropout["stop_gradient"] == sg, "rate"]).dropna()) for sg in ("sg", "nosg")
    ]
    return sorted(per_side[0] & per_side[1])


def _rates_compared(part: pd.DataFrame, value: dict | None, ref: tuple | None) -> str:
    """What the stop-gradient claim compared: each side's dev-best setting, and whether their rates differ."""
    if value is None or ref is None:
        return "each side's dev-best setting"
    a, b = _rates(part, value["key"]), _rates(part, ref)
    if not a or not b:
        return "each side's dev-best setting (one dropout rate: the table has no rate column)"
    if a == b:
        return f"each side's dev-best setting, both at dropout {', '.join(f'{r:g}' for r in a)}"
    return (
        f"each side's dev-best setting at different rates: sg dropout {', '.join(f'{r:g}' for r in a)}, nosg "
        f"dropout {', '.join(f'{r:g}' for r in b)} (the rate is confounded; see the same-rate rows where the "
        f"table has them)"
    )


def claims(table: pd.DataFrame, metrics: Mapping) -> pd.DataFrame:
    """One row per (claim, domain, dataset). Each side of a claim is its dev-best setting; the value
    side is tested against the reference side on test (paired over seeds), Holm-corrected over every
    setting of the value side. "supported": the corrected p is below ALPHA in the claimed direction;
    "not supported": below ALPHA the other way; else "not significant (n = ...)". A table with runs of the op
    at several layers at once also gets, per method, "one layer beats several at once" (the best single
    layer against the best such run; the abstract's "uniformly applying dropout across layers does not
    help"); the layer claims leave those runs out (they have no layer)."""
    rows = []
    table = with_setting_columns(table)
    study = [c for c in STUDY_AXES if c in table]
    for names, part in studies(table, "domain", "dataset"):
        domain, dataset = names["domain"], names["dataset"]
        metric, dev = metrics_of(metrics, domain, objective_of(part))
        if metric is None or metric not in part or part[part["method"] != "none"].empty:
            continue
        first = len(rows)
        protocol, has_dev = selection_protocol(part, metric, dev)
        scores = _scores(part, metric)

        def claim(
            text: str,
            sides: tuple[str, str],
            value_where: dict,
            ref_where: dict,
            tol: float = 0.0,
            equivalence: bool = False,
            comparison=None,
        ):
            ref = dev_best(part, dev, **ref_where) if has_dev else None  # noqa: B023 (called in this iteration)
            value = (
                compare_to_reference(part, metric, dev, scores[ref], tol, **value_where)  # noqa: B023
                if ref is not None
                else None
            )
            said = comparison(value, ref) if callable(comparison) else comparison or ""
            at = (text, domain, dataset, protocol, metric)  # noqa: B023
            rows.append(
                _claim_row(*at, value, ref, scores.get(ref), sides, equivalence, part.columns, said)  # noqa: B023
            )

        claim(
            "deeper layers beat input-level augmentation (layer 0)",
            ("layer > 0", "layer-0"),
            {"layer": lambda l: pd.to_numeric(l) > 0},
            {"layer": 0},
        )
        sg_claim = "stop-gradient is needed for dropout to act as augmentation"
        sg_sides = ("dropout sg", "dropout nosg")
        claim(
            sg_claim,
            sg_sides,
            {"method": "dropout", "stop_gradient": "sg"},
            {"method": "dropout", "stop_gradient": "nosg"},
            comparison=lambda value, ref: _rates_compared(part, value, ref),  # noqa: B023
        )
        for rate in _shared_rates(part):
            # the same-rate control: the paper's rates differ with and without stop-gradient (text: 0.125 and
            # 0.5), so the claim above can be a claim about the rate; these rows hold the rate fixed
            claim(
                f"{sg_claim} (same rate)",
                sg_sides,
                {"method": "dropout", "stop_gradient": "sg", "rate": rate},
                {"method": "dropout", "stop_gradient": "nosg", "rate": rate},
                comparison=f"same rate on both sides: dropout {rate:g}",
            )
        spread = float(part.loc[part["method"] == "none", metric].std())
        tol = max(spread if not math.isnan(spread) else 0.0, 0.5)
        claim(
            f"PCA matches dropout (equivalent within +-{tol:.2f}: the baseline seed std or 0.5; TOST)",
            ("PCA", "dropout"),
            {"method": "pca"},
            {"method": "dropout"},
            tol,
            equivalence=True,
        )
        for method in sorted(set(part.loc[part[LAYERS_AT_ONCE].notna(), "method"])):
            claim(
                f"{method} at one layer beats {method} at several layers at once (the abstract: applying "
                f"dropout uniformly across layers does not help)",
                ("one layer", "layers at once"),
                {"method": method, LAYERS_AT_ONCE: lambda v: v.isna()},
                {"method": method, LAYERS_AT_ONCE: lambda v: v.notna()},
            )
        rows.append(
            {
                "claim": "the effect inverts for supervised training",
                "domain": domain,
                "dataset": dataset,
                "selection": protocol,
                "comparison": "each objective's layer trend (the analysis target's inversion.csv)",
                "metric": metric,
                "verdict": "not tested here: see results/analysis/inversion.csv (the analysis target)",
            }
        )
        for row in rows[first:]:  # the study's values (ssl_method) beside the dataset
            row.update({c: names[c] for c in study})
    columns = [
        "claim",
        "domain",
        "dataset",
        *study,
        "selection",
        "comparison",
        "metric",
        "value_setting",
        "value",
        "reference_setting",
        "reference",
        "difference",
        "ci_low",
        "ci_high",
        "n_seeds",
        "p",
        "p_holm",
        "n_compared",
        "verdict",
    ]
    return pd.DataFrame(rows, columns=columns)


def write_summary(table_path: str | Path, summary_out: str | Path, claims_out: str | Path, metrics: Mapping) -> None:
    table = pd.read_csv(table_path)
    for frame, out in ((baseline_vs_best(table, metrics), summary_out), (claims(table, metrics), claims_out)):
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4g")


def _trend(means: pd.Series) -> float:
    """Spearman correlation of layer index with the mean score (NaN with fewer than two layers)."""
    from scipy.stats import spearmanr

    if len(means) < 2 or means.nunique() < 2:
        return math.nan
    return float(spearmanr(means.index.to_numpy(float), means.to_numpy(float)).statistic)


def _dev_best_layer(runs: pd.DataFrame, metric: str, dev: str) -> tuple[float, float]:
    """(the layer with the highest mean dev score, its mean test score); NaNs without dev scores."""
    means = runs.groupby("layer")[dev].mean().dropna() if dev in runs else pd.Series(dtype=float)
    if means.empty:
        return math.nan, math.nan
    layer = means.idxmax()
    return layer, float(runs.loc[runs["layer"] == layer, metric].mean())


# A baseline that did not learn is no reference: an "improvement" over a classifier at chance level (30% on a
# balanced binary task) measures nothing. Chance level of an accuracy (%): the majority-class rate of the
# labels it is scored on, from the table's ``chance_<metric>`` column (the evaluations record it), else
# 100 / ``num_classes``; a baseline less than CHANCE_MARGIN points above it did not learn. A Spearman
# score (x100, the text metrics) has no classes: below SPEARMAN_FLOOR it ranks the pairs about as well as
# an unrelated model would (|rho| < 0.1 is within noise for the few hundred pairs of a small task).
CHANCE_MARGIN = 5.0
SPEARMAN_FLOOR = 10.0
SPEARMAN_METRICS = frozenset({"sts_avg", "dev_spearman"})


def chance_level(rows: pd.DataFrame, metric: str) -> tuple[float, str] | None:
    """(the chance level of ``metric`` in ``rows``, how it is known), or None where the table does not say."""
    column = f"chance_{metric}"
    if column in rows and rows[column].notna().any():
        return float(rows[column].max()), "majority-class rate"
    if "num_classes" in rows and rows["num_classes"].notna().any():
        n = int(rows["num_classes"].max())
        return 100.0 / n, f"1/{n} classes"
    return None


def baseline_check(rows: pd.DataFrame, metric: str, mean: float, who: str) -> tuple[float, str | None]:
    """(the chance level, or NaN, and why the baseline of ``rows`` cannot be a reference: None when it can).
    ``mean``: the baseline's mean ``metric``; ``who``: 'contrastive' or 'supervised', for the sentence."""
    if math.isnan(mean):
        return math.nan, None  # nothing to check (and no change against it: NaN)
    if metric in SPEARMAN_METRICS:  # chance: 0 (an unrelated ranking)
        if mean < SPEARMAN_FLOOR:
            return 0.0, (
                f"the {who} baseline did not learn: {metric} {mean:.1f} is below {SPEARMAN_FLOOR:g} "
                f"(Spearman x100: no better than an unrelated ranking)"
            )
        return 0.0, None
    chance = chance_level(rows, metric)
    if chance is None:
        return math.nan, None
    level, how = chance
    if mean < level + CHANCE_MARGIN:
        return level, (
            f"the {who} baseline did not learn: {metric} {mean:.1f} is at chance level ({level:.1f}, "
            f"{how}; less than {CHANCE_MARGIN:g} points above it)"
        )
    return level, None


def _check_text(sides: list[tuple[str, pd.DataFrame, str, float, str | None]]) -> str:
    """What ``baseline_check`` says: why a baseline is no reference, else what could not be checked."""
    flags = [flag for *_, flag in sides if flag]
    if flags:
        return "; ".join(flags)
    notes = [f"no {who} baseline in the table" for who, _, _, mean, _ in sides if math.isnan(mean)]
    unknown = [
        f"{who} ({metric})"
        for who, rows, metric, mean, _ in sides
        if not math.isnan(mean) and metric not in SPEARMAN_METRICS and chance_level(rows, metric) is None
    ]
    if unknown:
        notes.append(f"chance level not checked for the {' and '.join(unknown)} baseline: the table records none")
    return "; ".join(notes) or (
        f"ok: both baselines above chance level (accuracy: at least {CHANCE_MARGIN:g} points "
        f"above it; Spearman x100: at least {SPEARMAN_FLOOR:g})"
    )


def inversion(contrastive: pd.DataFrame, supervised: pd.DataFrame, metrics: Mapping) -> pd.DataFrame:
    """Per transform and stop-gradient setting: the layer trend (of the test means; no choice is made)
    and the effect over the baseline at the best layer (chosen on dev, reported on test; NaN without a
    dev metric), contrastive vs supervised; "inverted" when the trends have opposite signs.

    A baseline at chance level (see :func:`baseline_check`) is no reference: the change against it is left
    out (NaN), the verdict is "not tested" and ``baseline_check`` says why; where the table records no
    chance level, ``baseline_check`` says that it could not be checked."""
    rows = []
    contrastive, supervised = with_run_ids(contrastive), with_run_ids(supervised)
    for base in sorted(set(contrastive["domain"])):
        (mc, dc), (ms, ds) = metrics_of(metrics, base, "contrastive"), metrics_of(metrics, base, "supervised")
        if mc is None or ms is None:
            continue
        c_all, s_all = contrastive[contrastive["domain"] == base], supervised[supervised["domain"] == base]
        for (c_names, c_part), (s_name, s_part) in (
            (c, s) for c in studies(c_all, "dataset") for s in s_all.groupby("dataset")
        ):
            c_name = c_names.pop("dataset")  # left: the contrastive study's values (ssl_method), if swept
            c_base = c_part.loc[c_part["method"] == "none", mc].mean()
            s_base = s_part.loc[s_part["method"] == "none", ms].mean()
            c_chance, c_flag = baseline_check(c_part, mc, c_base, "contrastive")
            s_chance, s_flag = baseline_check(s_part, ms, s_base, "supervised")
            flags = [f for f in (c_flag, s_flag) if f]
            check = _check_text(
                [("contrastive", c_part, mc, c_base, c_flag), ("supervised", s_part, ms, s_base, s_flag)]
            )
            for (method, sg), cg in c_part[c_part["method"] != "none"].groupby(["method", "stop_gradient"]):
                sg_part = s_part[(s_part["method"] == method) & (s_part["stop_gradient"] == sg)]
                c_means = cg.groupby("layer")[mc].mean()
                s_means = sg_part.groupby("layer")[ms].mean()
                tc, ts = _trend(c_means), _trend(s_means)
                c_layer, c_best = _dev_best_layer(cg, mc, dc)
                s_layer, s_best = _dev_best_layer(sg_part, ms, ds)
                if flags:
                    verdict = f"not tested ({'; '.join(flags)})"
                elif math.isnan(tc) or math.isnan(ts) or tc == 0 or ts == 0:
                    verdict = "not tested (needs two or more layers with different scores in both)"
                else:
                    verdict = "inverted" if (tc > 0) != (ts > 0) else "not inverted"
                rows.append(
                    {
                        "domain": base,
                        "contrastive_dataset": c_name,
                        **{f"contrastive_{k}": v for k, v in c_names.items()},
                        "supervised_dataset": s_name,
                        "method": method,
                        "stop_gradient": sg,
                        "contrastive_trend": tc,
                        "supervised_trend": ts,
                        "contrastive_best_layer": c_layer,
                        "supervised_best_layer": s_layer,
                        "contrastive_baseline": c_base,
                        "supervised_baseline": s_base,
                        "contrastive_chance": c_chance,
                        "supervised_chance": s_chance,
                        "contrastive_best_minus_baseline": math.nan if c_flag else c_best - c_base,
                        "supervised_best_minus_baseline": math.nan if s_flag else s_best - s_base,
                        "baseline_check": check,
                        "selection": "best layer selected on dev, reported on test",
                        "verdict": verdict,
                    }
                )
    return pd.DataFrame(rows)


def write_inversion(contrastive_path, supervised_path, out, metrics: Mapping) -> None:
    frame = inversion(pd.read_csv(contrastive_path), pd.read_csv(supervised_path), metrics)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4g")
