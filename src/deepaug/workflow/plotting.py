"""The paper's figure: score vs targeted layer, one curve per transform and stop-gradient setting,
mean +- std over seeds, the no-augmentation baseline as a band, and a run with the op at several layers at
once (no single layer) as a dotted line with its band in its curve's colour. Reads only the aggregated
table."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from deepaug.core.vocabulary import LAYERS_AT_ONCE, layers_words  # noqa: E402

SG_LABELS = {"sg": "stop-gradient", "nosg": "no stop-gradient"}
SG_STYLES = {"sg": ("-", "o"), "nosg": ("--", "s")}  # (line style, marker)
# Every curve gets a colour of its own (two curves of one transform differ in colour, not only in dash):
# the known settings in the paper's order first, so that a setting keeps its colour across figures.
CURVE_ORDER = [("dropout", "sg"), ("dropout", "nosg"), ("pca", "sg"), ("pca", "nosg")]
LEGEND_OUTSIDE = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)  # never over a point


def curve_colours(curves) -> dict:
    """A distinct colour per (method, stop-gradient) curve: the paper's settings in a fixed order, any
    other after them (a colourblind-safe palette of 10; more curves than that: evenly spaced hues)."""
    order = list(CURVE_ORDER) + [c for c in sorted(set(curves), key=str) if c not in CURVE_ORDER]
    palette = sns.color_palette("colorblind", 10) if len(order) <= 10 else sns.color_palette("husl", len(order))
    return {curve: palette[i] for i, curve in enumerate(order)}


def default_label(df: pd.DataFrame, metric: str) -> str:
    """The score axis label when the workflow gave none: the metric named by what the table shows (the
    tasks of its ``sts_*`` columns); an SVM whose kind is not in the table is not called linear."""
    from deepaug.workflow.labels import metric_label, table_tasks

    tasks = table_tasks([c for c in df.columns if df[c].notna().any()])
    return metric_label(metric, tasks=tasks or None)


def layer_sweep_summary(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, std and number of seeds per (method, stop-gradient, layer) for the augmented runs."""
    aug = df[df["method"] != "none"]
    out = aug.groupby(["method", "stop_gradient", "layer"])[metric].agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def at_once_summary(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, std and number of seeds per (method, stop-gradient, layers at once) of the runs with the op at
    several layers at once (none in a table without the column)."""
    columns = ["method", "stop_gradient", LAYERS_AT_ONCE]
    if LAYERS_AT_ONCE not in df:
        return pd.DataFrame(columns=[*columns, "mean", "std", "count"])
    part = df[df[LAYERS_AT_ONCE].notna() & (df["method"] != "none")]
    out = part.groupby(columns)[metric].agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def baseline_summary(df: pd.DataFrame, metric: str) -> tuple[float, float, int] | None:
    base = df.loc[df["method"] == "none", metric].dropna()
    if base.empty:
        return None
    return float(base.mean()), float(base.std()) if len(base) > 1 else 0.0, int(len(base))


def plot_layer_sweep(
    df: pd.DataFrame, metric: str, title: str = "", layer_labels: dict | None = None, ax=None, ylabel: str | None = None
):
    """Draw one dataset's sweep on ``ax``; returns the figure. ``ylabel``: what the score is (the workflow
    passes it from the settings, see :mod:`deepaug.workflow.labels`; default: from the table). Each curve
    has its own colour; the legend sits beside the axes, where it can hide no point."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 4.2))
    fig = ax.figure
    summary = layer_sweep_summary(df, metric)
    at_once = at_once_summary(df, metric)
    curves = list(summary.groupby(["method", "stop_gradient"]).groups)
    colours = curve_colours(curves + list(at_once.groupby(["method", "stop_gradient"]).groups))
    for (method, sg), part in summary.groupby(["method", "stop_gradient"]):
        part = part.sort_values("layer")
        color = colours[(method, sg)]
        style, marker = SG_STYLES.get(sg, ("-", "o"))
        ax.plot(
            part["layer"],
            part["mean"],
            linestyle=style,
            marker=marker,
            color=color,
            label=f"{method}, {SG_LABELS.get(sg, sg)}",
        )
        ax.fill_between(
            part["layer"].astype(float),
            part["mean"] - part["std"],
            part["mean"] + part["std"],
            color=color,
            alpha=0.15 if sg == "sg" else 0.08,
            linewidth=0,
        )
    for row in at_once.itertuples(index=False):
        color = colours[(row.method, row.stop_gradient)]
        label = f"{row.method}, {SG_LABELS.get(row.stop_gradient, row.stop_gradient)},\n"
        label += f"{layers_words(getattr(row, LAYERS_AT_ONCE))} at once (mean ± std, n={row.count})"
        ax.axhline(row.mean, color=color, linestyle=":", linewidth=1.6, label=label)
        ax.axhspan(row.mean - row.std, row.mean + row.std, color=color, alpha=0.08, linewidth=0)
    base = baseline_summary(df, metric)
    if base is not None:
        mean, std, n = base
        ax.axhline(mean, color="black", linewidth=1.2, label=f"baseline, no Deep Augmentation\n(mean ± std, n={n})")
        ax.axhspan(mean - std, mean + std, color="black", alpha=0.12, linewidth=0)
    layers = sorted(summary["layer"].dropna().unique().tolist())
    if layers:
        ax.set_xticks(layers)
        if layer_labels:
            ax.set_xticklabels([f"{int(l)}\n{layer_labels.get(int(l), '')}" for l in layers], fontsize=8)
    ax.set_xlabel("targeted layer")
    ax.set_ylabel(textwrap.fill(ylabel or default_label(df, metric), 40))  # a long label on lines, not cut off
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, **LEGEND_OUTSIDE)
    fig.tight_layout()
    return fig


def swept_axes(
    runs: pd.DataFrame, axes: list[str], domain: str, objective: str = "contrastive", tuned: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """(the settings swept, the settings tuned on dev) among the run table's axis columns ``axes``, for
    the runs of ``domain`` and ``objective``: an axis counts only where those runs take more than one
    value of it (the run table has one column per axis of any domain: text's ``lr`` is not a graph
    sweep). Tuned axes (config ``<domain>.tuned``) are chosen per setting and seed on dev, not swept."""
    part = runs
    if "domain" in part:
        part = part[part["domain"] == domain]
    if "objective" in part:
        part = part[part["objective"] == objective]
    varying = [a for a in axes if a in part and part[a].dropna().nunique() > 1]
    tuned = [a for a in varying if a in set(tuned or [])]
    return [a for a in varying if a not in tuned], tuned


def facets(df: pd.DataFrame, axes: list[str]) -> list[tuple[dict, pd.DataFrame]]:
    """One panel per combination of the swept ``axes`` (run-table columns such as p, rate, lr) that take
    more than one value at the same (method, stop-gradient, layer) in ``df``: ``[({axis: value}, rows),
    ...]``. Runs without a value for an axis (the baseline has no p or rate) appear in every panel of that
    axis. One panel, ``({}, df)``, when no axis varies."""
    curve = ["method", "stop_gradient", "layer"]
    # an axis whose value is fixed per curve point (e.g. a dropout rate set per stop-gradient setting)
    # is part of the curve's setting, not a panel of its own
    varying = [
        a
        for a in axes
        if a in df
        and df[a].dropna().nunique() > 1
        and df.dropna(subset=[a]).groupby(curve, dropna=False)[a].nunique().max() > 1
    ]
    if not varying:
        return [({}, df)]
    out = []
    for values in df[varying].dropna(how="all").drop_duplicates().sort_values(varying).itertuples(index=False):
        key = dict(zip(varying, values))
        if any(pd.isna(v) for v in key.values()):
            continue
        mask = pd.Series(True, index=df.index)
        for axis, value in key.items():
            mask &= (df[axis] == value) | df[axis].isna()
        out.append((key, df[mask]))
    return out


def plot_layer_sweep_panels(
    df: pd.DataFrame,
    metric: str,
    axes: list[str],
    title: str = "",
    layer_labels: dict | None = None,
    ylabel: str | None = None,
):
    """The layer sweep of one dataset, one panel per value of every other swept axis (see :func:`facets`;
    leave tuned axes out of ``axes``: each setting's value of those was chosen on dev)."""
    panels = facets(df, axes)
    if len(panels) == 1:
        return plot_layer_sweep(df, metric, title=title, layer_labels=layer_labels, ylabel=ylabel)
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(8.8 * cols, 4.2 * rows), squeeze=False, sharey=True)
    for ax, (key, part) in zip(grid.flat, panels):
        label = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in key.items())
        plot_layer_sweep(part, metric, title=label, layer_labels=layer_labels, ax=ax, ylabel=ylabel)
    for ax in list(grid.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(fig, stem: str | Path) -> list[Path]:
    """PNG and PDF next to each other; returns both paths."""
    from deepaug.io import atomic_path

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150)
        paths.append(path)
    return paths


def layer_labels_for(domain: str, df: pd.DataFrame, top_layer: int | None = None) -> dict[int, str]:
    """Names under the layer ticks of the swept layers in ``df``, from the domain's layer map
    (:meth:`deepaug.domains.Domain.layer_name`; ``top_layer``: the map's last index, where known)."""
    from deepaug.domains import get

    spec = get(domain)
    n_layers = None if top_layer is None else int(top_layer) + 1
    return {l: spec.layer_name(l, n_layers) for l in sorted(int(l) for l in df["layer"].dropna().unique())}


def task_columns(df: pd.DataFrame, prefix: str = "sts_") -> list[str]:
    return [c for c in df.columns if c.startswith(prefix) and c != f"{prefix}avg" and df[c].notna().any()]


def _selector(df: pd.DataFrame, metric: str, select: str | None) -> str:
    """The column a "best" is chosen by: the dev metric ``select`` when the table has it (never the
    test metric when a dev metric exists), else ``metric``."""
    return select if select and select in df and df[select].notna().any() else metric


def best_settings_by_task(
    df: pd.DataFrame, metric: str, prefix: str = "sts_", select: str | None = None
) -> pd.DataFrame:
    """Rows: the baseline and, per (transform, stop-gradient), its best layer by ``select`` (the dev
    metric; ``metric`` when there is none); columns: every task and the average; values: mean over seeds."""
    tasks = task_columns(df, prefix)
    cols = tasks + ([metric] if metric not in tasks else [])
    rows = {}
    base = df[df["method"] == "none"]
    if not base.empty:
        rows["baseline"] = base[cols].mean()
    summary = layer_sweep_summary(df, _selector(df, metric, select))
    for (method, sg), part in summary.groupby(["method", "stop_gradient"]):
        best = part.loc[part["mean"].idxmax()]
        runs = df[(df["method"] == method) & (df["stop_gradient"] == sg) & (df["layer"] == best["layer"])]
        rows[f"{method} L{int(best['layer'])} {sg}"] = runs[cols].mean()
    for row in at_once_summary(df, metric).itertuples(index=False):  # a run at several layers: no best layer
        label = getattr(row, LAYERS_AT_ONCE)
        runs = df[
            (df["method"] == row.method) & (df["stop_gradient"] == row.stop_gradient) & (df[LAYERS_AT_ONCE] == label)
        ]
        rows[f"{row.method} L{label} {row.stop_gradient}"] = runs[cols].mean()
    out = pd.DataFrame(rows).T
    return out.rename(columns=lambda c: c.removeprefix(prefix))


def plot_task_heatmap(df: pd.DataFrame, metric: str, title: str = "", prefix: str = "sts_", select: str | None = None):
    """Per-task scores of the baseline and of each transform's best layer; the row label says what the best
    was chosen by (the dev metric; the test metric only where the table has no dev metric)."""
    table = best_settings_by_task(df, metric, prefix, select)
    fig, ax = plt.subplots(figsize=(1.1 * len(table.columns) + 2.5, 0.55 * len(table) + 1.6))
    sns.heatmap(table.astype(float), annot=True, fmt=".1f", cmap="viridis", ax=ax, cbar_kws={"label": "Spearman x100"})
    ax.set_title(title)
    ax.set_xlabel("task")
    ax.tick_params(axis="y", rotation=0)  # the settings' names read across
    by = _selector(df, metric, select)
    ax.set_ylabel(textwrap.fill(f"setting (best layer by {by}{', a test metric' if by == metric else ''})", 22))
    fig.tight_layout()
    return fig


def sweep_overview(df: pd.DataFrame, metric: str, select: str | None = None) -> pd.DataFrame:
    """Per dataset: baseline mean/std of ``metric`` and the best (method, layer, stop-gradient), chosen
    by the mean of ``select`` (the dev metric) over seeds and reported by ``metric`` (test)."""
    rows = []
    for dataset, part in df.groupby("dataset"):
        base = baseline_summary(part, metric)
        by = _selector(part, metric, select)
        summary = layer_sweep_summary(part, metric)
        choice = layer_sweep_summary(part, by)
        row = {
            "dataset": dataset,
            "baseline_mean": base[0] if base else float("nan"),
            "baseline_std": base[1] if base else float("nan"),
            "selected_by": by,
        }
        if not summary.empty:
            pick = choice.loc[choice["mean"].idxmax()]
            best = summary[
                (summary["method"] == pick["method"])
                & (summary["layer"] == pick["layer"])
                & (summary["stop_gradient"] == pick["stop_gradient"])
            ].iloc[0]
            row.update(
                {
                    "best_method": best["method"],
                    "best_layer": int(best["layer"]),
                    "best_stop_gradient": best["stop_gradient"],
                    "best_mean": best["mean"],
                    "best_std": best["std"],
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- analyses
def plot_cka_pair(baseline: dict, augmented: dict, names: list[str], aug_label: str, title: str = ""):
    """Linear and RBF CKA matrices, baseline next to a Deep Augmentation run (2 x 2 heat maps)."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 8.5))
    for row, kind in enumerate(("linear", "rbf")):
        for col, (label, mats) in enumerate((("baseline", baseline), (aug_label, augmented))):
            ax = axes[row, col]
            sns.heatmap(
                mats[kind],
                vmin=0,
                vmax=1,
                cmap="magma",
                square=True,
                ax=ax,
                xticklabels=names,
                yticklabels=names,
                cbar=col == 1,
                annot=len(names) <= 8,
                fmt=".2f",
                annot_kws={"fontsize": 7},
            )
            ax.set_title(f"{label}: {kind} CKA", fontsize=10)
            ax.tick_params(labelsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_alignment_uniformity(df: pd.DataFrame, title: str = ""):
    """Alignment (lower is better) vs uniformity (lower is better), one point per run; the legend beside
    the axes."""
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    method = df["method"].replace({"none": "baseline"})
    df = df.assign(setting=method + df["stop_gradient"].fillna("").map(lambda s: f", {s}" if s else ""))
    sns.scatterplot(data=df, x="alignment", y="uniformity", hue="setting", style="setting", s=60, ax=ax)
    ax.set_xlabel("alignment  E||f(x)-f(y)||² over positive pairs (lower: better)")
    ax.set_ylabel("uniformity  log E exp(-2||f(x)-f(y)||²) (lower: better)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, **LEGEND_OUTSIDE)
    fig.tight_layout()
    return fig


def plot_layer_selection(sel: pd.DataFrame):
    """Recommended layer (baseline co-adaptation rule) vs the sweep's best layer (chosen on dev), per
    setting; a setting where only one layer was swept agrees trivially and its tick says so."""
    labels = sel["domain"] + "/" + sel["dataset"] + "\n" + sel["method"] + ", " + sel["stop_gradient"]
    if "n_layers_swept" in sel:
        labels = labels + sel["n_layers_swept"].map(lambda n: "\n(1 layer swept:\ntrivial)" if n == 1 else "")
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(sel)) + 3, 4.4))
    x = range(len(sel))
    ax.scatter(x, sel["best_layer"], marker="o", s=90, label="best layer of the sweep (on dev)", zorder=3)
    ax.scatter(x, sel["recommended_layer"], marker="x", s=90, label="recommended (baseline CKA rule)", zorder=4)
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, **LEGEND_OUTSIDE)
    fig.tight_layout()
    return fig


def knn_monitor_histories(runs: pd.DataFrame, domain: str, datasets=None) -> pd.DataFrame:
    """The kNN monitor of the contrastive runs of ``domain`` (``train.knn_monitor``: ``knn_dev_top1`` rows of each
    run's ``train_metrics.jsonl``, found from the run table's ``dir``): one row per run and checked epoch, with the
    run table's columns. Empty when no run has one (the monitor is off by default) or none has trained yet."""
    import json

    part = runs[(runs["domain"] == domain) & (runs["objective"] == "contrastive")]
    if datasets is not None:
        part = part[part["dataset"].isin(list(datasets))]
    rows = []
    for run in part.to_dict("records"):
        path = Path(str(run["dir"])) / "train_metrics.jsonl"
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            if "knn_dev_top1" in record:
                rows.append({**run, "epoch": int(record["epoch"]) + 1, "knn_dev_top1": record["knn_dev_top1"]})
    return pd.DataFrame(rows)


def plot_knn_monitor(hist: pd.DataFrame, title: str = ""):
    """The kNN monitor over epochs, one panel per SSL method (``ssl_method``, where the table has it), one line per
    setting (its run id, mean over seeds), the baseline in black: a collapse shows as a line falling to chance."""
    methods = sorted(hist["ssl_method"].dropna().unique()) if "ssl_method" in hist else []
    panels = [(m, hist[hist["ssl_method"] == m]) for m in methods] or [("", hist)]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.8 * rows), squeeze=False, sharey=True)
    for ax, (method, part) in zip(grid.flat, panels):
        for _, runs in part.groupby("setting", sort=True):
            means = runs.groupby("epoch")["knn_dev_top1"].mean()
            base = (runs["method"] == "none").all()
            ax.plot(means.index, means.values, color="black" if base else None, linewidth=2 if base else 0.8,
                    alpha=1.0 if base else 0.6, label="baseline" if base else None)  # fmt: skip
        ax.set_title(f"ssl_method = {method}" if method else "")
        ax.set_xlabel("epoch")
        ax.set_ylabel("kNN top-1 on dev (%)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    for ax in list(grid.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
