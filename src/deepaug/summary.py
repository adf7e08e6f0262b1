"""The report's summary: baseline vs best Deep Augmentation setting per dataset, with a paired test
across seeds, and whether this run's numbers support each of the paper's claims.

Reads only the aggregated table. The headline metric is ``linear_top1`` for vision and ``sts_avg``
for text.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .io import atomic_path

HEADLINE = {"vision": "linear_top1", "text": "sts_avg", "vision_sup": "classifier_top1", "text_sup": "sts_avg"}


def _setting_means(part: pd.DataFrame, metric: str) -> pd.DataFrame:
    aug = part[part["method"] != "none"]
    return aug.groupby(["method", "stop_gradient", "layer"])[metric].agg(["mean", "std", "count"]).reset_index()


def paired_test(a: pd.Series, b: pd.Series) -> tuple[int, float]:
    """Paired t-test on seed-matched values (a, b indexed by seed): (number of pairs, two-sided p)."""
    from scipy.stats import ttest_rel

    seeds = sorted(set(a.index) & set(b.index))
    if len(seeds) < 2:
        return len(seeds), float("nan")
    x, y = a.loc[seeds].to_numpy(float), b.loc[seeds].to_numpy(float)
    if (x - y).std() == 0:
        return len(seeds), 1.0 if (x == y).all() else 0.0
    return len(seeds), float(ttest_rel(x, y).pvalue)


def baseline_vs_best(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (domain, dataset), part in table.groupby(["domain", "dataset"]):
        metric = HEADLINE.get(domain)
        if metric not in part:
            continue
        base = part[part["method"] == "none"].set_index("seed")[metric]
        means = _setting_means(part, metric)
        row = {"domain": domain, "dataset": dataset, "metric": metric, "baseline_mean": base.mean(),
               "baseline_std": base.std(), "n_seeds": len(base)}
        if not means.empty:
            best = means.loc[means["mean"].idxmax()]
            runs = part[(part["method"] == best["method"]) & (part["stop_gradient"] == best["stop_gradient"])
                        & (part["layer"] == best["layer"])].set_index("seed")[metric]
            n, p = paired_test(runs, base)
            row.update({"best_setting": f"{best['method']} layer {int(best['layer'])} {best['stop_gradient']}",
                        "best_mean": best["mean"], "best_std": best["std"], "difference": best["mean"] - base.mean(),
                        "paired_seeds": n, "paired_t_p": p})
        rows.append(row)
    return pd.DataFrame(rows)


def _best(means: pd.DataFrame, **where) -> float:
    sel = means
    for key, value in where.items():
        sel = sel[value(sel[key])] if callable(value) else sel[sel[key] == value]
    return float(sel["mean"].max()) if not sel.empty else math.nan


def claims(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, domain, dataset): the two numbers compared and the verdict."""
    rows = []

    def verdict(a: float, b: float, supported: bool) -> str:
        return "not tested" if math.isnan(a) or math.isnan(b) else ("supported" if supported else "not supported")

    for (domain, dataset), part in table.groupby(["domain", "dataset"]):
        metric = HEADLINE.get(domain)
        if metric not in part:
            continue
        means = _setting_means(part, metric)
        if means.empty:
            continue
        deep = _best(means, layer=lambda l: l > 0)
        input_level = _best(means, layer=0)
        rows.append({"claim": "deeper layers beat input-level augmentation (layer 0)", "domain": domain,
                     "dataset": dataset, "value": deep, "reference": input_level,
                     "verdict": verdict(deep, input_level, deep > input_level)})
        sg, nosg = _best(means, method="dropout", stop_gradient="sg"), _best(means, method="dropout", stop_gradient="nosg")
        rows.append({"claim": "stop-gradient is needed for dropout to act as augmentation", "domain": domain,
                     "dataset": dataset, "value": sg, "reference": nosg, "verdict": verdict(sg, nosg, sg > nosg)})
        pca, drop = _best(means, method="pca"), _best(means, method="dropout")
        spread = float(part.loc[part["method"] == "none", metric].std())
        tol = max(spread if not math.isnan(spread) else 0.0, 0.5)
        rows.append({"claim": f"PCA matches dropout (best settings within {tol:.2f}: the baseline seed std or 0.5)",
                     "domain": domain, "dataset": dataset, "value": pca, "reference": drop,
                     "verdict": verdict(pca, drop, abs(pca - drop) <= tol)})
        rows.append({"claim": "the effect inverts for supervised training", "domain": domain, "dataset": dataset,
                     "value": math.nan, "reference": math.nan,
                     "verdict": "not tested here: see results/analysis/inversion.csv (the analysis target)"})
    return pd.DataFrame(rows)


def write_summary(table_path: str | Path, summary_out: str | Path, claims_out: str | Path) -> None:
    table = pd.read_csv(table_path)
    for frame, out in ((baseline_vs_best(table), summary_out), (claims(table), claims_out)):
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4g")


def _trend(means: pd.Series) -> float:
    """Spearman correlation of layer index with the mean score (NaN with fewer than two layers)."""
    from scipy.stats import spearmanr

    if len(means) < 2 or means.nunique() < 2:
        return math.nan
    return float(spearmanr(means.index.to_numpy(float), means.to_numpy(float)).statistic)


def inversion(contrastive: pd.DataFrame, supervised: pd.DataFrame) -> pd.DataFrame:
    """Per transform and stop-gradient setting: the layer trend and the best effect over the baseline,
    contrastive vs supervised; "inverted" when the trends have opposite signs."""
    rows = []
    for base in ("vision", "text"):
        sup = f"{base}_sup"
        c_all, s_all = contrastive[contrastive["domain"] == base], supervised[supervised["domain"] == sup]
        for (c_name, c_part), (s_name, s_part) in (
            (c, s) for c in c_all.groupby("dataset") for s in s_all.groupby("dataset")
        ):
            mc, ms = HEADLINE[base], HEADLINE[sup]
            c_base = c_part.loc[c_part["method"] == "none", mc].mean()
            s_base = s_part.loc[s_part["method"] == "none", ms].mean()
            for (method, sg), cg in c_part[c_part["method"] != "none"].groupby(["method", "stop_gradient"]):
                sg_part = s_part[(s_part["method"] == method) & (s_part["stop_gradient"] == sg)]
                c_means = cg.groupby("layer")[mc].mean()
                s_means = sg_part.groupby("layer")[ms].mean()
                tc, ts = _trend(c_means), _trend(s_means)
                if math.isnan(tc) or math.isnan(ts) or tc == 0 or ts == 0:
                    verdict = "not tested (needs two or more layers with different scores in both)"
                else:
                    verdict = "inverted" if (tc > 0) != (ts > 0) else "not inverted"
                rows.append({"domain": base, "contrastive_dataset": c_name, "supervised_dataset": s_name,
                             "method": method, "stop_gradient": sg, "contrastive_trend": tc, "supervised_trend": ts,
                             "contrastive_best_minus_baseline": c_means.max() - c_base if len(c_means) else math.nan,
                             "supervised_best_minus_baseline": s_means.max() - s_base if len(s_means) else math.nan,
                             "verdict": verdict})
    return pd.DataFrame(rows)


def write_inversion(contrastive_path, supervised_path, out) -> None:
    frame = inversion(pd.read_csv(contrastive_path), pd.read_csv(supervised_path))
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4g")
