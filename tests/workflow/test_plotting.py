import numpy as np
import pandas as pd

from deepaug.workflow.plotting import (
    baseline_summary,
    best_settings_by_task,
    layer_sweep_summary,
    plot_layer_sweep,
    save_figure,
    sweep_overview,
)


def _table():
    rows = []
    for seed, base in enumerate([80.0, 82.0]):
        rows.append(
            dict(
                domain="vision",
                dataset="d",
                method="none",
                layer=np.nan,
                stop_gradient=np.nan,
                seed=seed,
                linear_top1=base,
                sts_a=1.0,
                sts_b=2.0,
            )
        )
        for layer in (0, 3):
            for sg, shift in (("sg", 5.0), ("nosg", -5.0)):
                rows.append(
                    dict(
                        domain="vision",
                        dataset="d",
                        method="dropout",
                        layer=layer,
                        stop_gradient=sg,
                        seed=seed,
                        linear_top1=base + shift + layer,
                        sts_a=layer,
                        sts_b=seed,
                    )
                )
    return pd.DataFrame(rows)


def test_summaries_are_mean_and_std_over_seeds():
    df = _table()
    s = layer_sweep_summary(df, "linear_top1").set_index(["method", "stop_gradient", "layer"])
    assert s.loc[("dropout", "sg", 3), "mean"] == 89.0
    assert np.isclose(s.loc[("dropout", "sg", 3), "std"], np.std([88, 90], ddof=1))
    assert s.loc[("dropout", "sg", 3), "count"] == 2
    assert baseline_summary(df, "linear_top1") == (81.0, float(np.std([80, 82], ddof=1)), 2)
    over = sweep_overview(df, "linear_top1").iloc[0]
    assert (over["best_method"], over["best_layer"], over["best_stop_gradient"], over["best_mean"]) == (
        "dropout",
        3,
        "sg",
        89.0,
    )


def test_task_table_has_baseline_and_best_layer_per_setting():
    t = best_settings_by_task(_table(), "linear_top1")
    assert list(t.index) == ["baseline", "dropout L3 nosg", "dropout L3 sg"]
    assert list(t.columns) == ["a", "b", "linear_top1"]
    assert t.loc["dropout L3 sg", "a"] == 3.0


def test_figure_files_are_written(tmp_path):
    fig = plot_layer_sweep(_table(), "linear_top1", title="t", layer_labels={0: "stem", 3: "stage3"})
    paths = save_figure(fig, tmp_path / "fig")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 5000 for p in paths)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "dropout, stop-gradient" in labels and any(l.startswith("baseline") for l in labels)


def test_best_settings_are_chosen_on_dev_and_reported_on_test():
    df = _table()
    # dev prefers layer 0 (sg) although test prefers layer 3
    df["dev_linear_top1"] = np.where(df["layer"] == 0, 99.0, 50.0)
    df.loc[df["stop_gradient"] == "nosg", "dev_linear_top1"] = 10.0
    over = sweep_overview(df, "linear_top1", "dev_linear_top1").iloc[0]
    assert (over["best_layer"], over["best_stop_gradient"], over["selected_by"]) == (0, "sg", "dev_linear_top1")
    assert over["best_mean"] == 86.0  # the test score of the dev-chosen setting
    rows = best_settings_by_task(df, "linear_top1", select="dev_linear_top1").index
    assert "dropout L0 sg" in rows and "dropout L3 sg" not in rows


def test_layer_selection_chooses_the_sweeps_best_layer_on_dev():
    from deepaug.analysis.layer_choice import layer_selection

    df = _table()
    df["dev_linear_top1"] = np.where(df["layer"] == 0, 99.0, 50.0)
    matrices = {("vision", "d"): [np.eye(7)]}
    out = layer_selection(df, matrices, {"vision": "linear_top1"}, {"vision": "dev_linear_top1"})
    row = out[out["stop_gradient"] == "sg"].iloc[0]
    assert row["best_layer"] == 0 and row["selected_by"] == "dev_linear_top1" and row["score_best"] == 86.0
    no_dev = layer_selection(
        df.drop(columns="dev_linear_top1"), matrices, {"vision": "linear_top1"}, {"vision": "dev_linear_top1"}
    )
    assert no_dev["best_layer"].isna().all() and (no_dev["selected_by"] == "no dev metric: not chosen").all()


def _p_sweep_table():
    rows = []
    for seed in (0, 1):
        rows.append(
            {
                "domain": "vision",
                "dataset": "digits",
                "method": "none",
                "layer": None,
                "stop_gradient": None,
                "seed": seed,
                "p": None,
                "linear_top1": 50.0 + seed,
            }
        )
        for p in (0.25, 0.5, 1.0):
            for layer in (0, 3, 6):
                rows.append(
                    {
                        "domain": "vision",
                        "dataset": "digits",
                        "method": "dropout",
                        "layer": layer,
                        "stop_gradient": "sg",
                        "seed": seed,
                        "p": p,
                        "linear_top1": 40 + 10 * p + layer,
                    }
                )
    return pd.DataFrame(rows)


def test_a_swept_setting_gives_one_panel_per_value_with_the_baseline_in_each():
    from deepaug.workflow.plotting import facets, plot_layer_sweep_panels

    table = _p_sweep_table()
    panels = facets(table, ["p"])
    assert [key for key, _ in panels] == [{"p": 0.25}, {"p": 0.5}, {"p": 1.0}]
    for key, part in panels:
        assert (part.loc[part["method"] == "dropout", "p"] == key["p"]).all() and len(part) == 2 + 2 * 3
        assert (part["method"] == "none").sum() == 2  # the baseline (no p) in every panel
    fig = plot_layer_sweep_panels(table, "linear_top1", ["p"], title="digits")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["p = 0.25", "p = 0.5", "p = 1"]
    # a setting that does not vary gives the single-panel figure
    assert len(facets(table[table["p"].isin([0.5]) | table["p"].isna()], ["p"])) == 1
    # nor does one fixed per curve, like the paper's text dropout rate (0.125 with stop-gradient, 0.5 without)
    text = table[table["p"].isin([0.5]) | table["p"].isna()].copy()
    text.loc[text["method"] == "dropout", "stop_gradient"] = ["sg", "nosg"] * 3
    text["rate"] = text["stop_gradient"].map({"sg": 0.125, "nosg": 0.5})
    assert len(facets(text, ["p", "rate"])) == 1


# ------------------------------------------------------------------------------ honest labels
def _four_curves():
    df = _table()
    pca = df[df["method"] == "dropout"].assign(method="pca", linear_top1=lambda d: d["linear_top1"] + 1)
    return pd.concat([df, pca], ignore_index=True)


def test_every_curve_has_a_colour_of_its_own():
    """Dropout with and without stop-gradient are two colours, not one colour in two dash styles."""
    import matplotlib.colors as mcolors

    fig = plot_layer_sweep(_four_curves(), "linear_top1")
    curves = [line for line in fig.axes[0].get_lines() if not line.get_label().startswith("baseline")]
    assert len(curves) == 4
    assert len({mcolors.to_hex(line.get_color()) for line in curves}) == 4


def test_the_legend_hides_no_point():
    """The legend sits beside the axes: no part of it over the plotting area, so over no point."""
    import numpy as np

    df = _four_curves()
    df.loc[df["layer"] == 3, "linear_top1"] += 30  # points in the upper right, where "best" put the legend
    for fig in (plot_layer_sweep(df, "linear_top1"),):
        fig.canvas.draw()
        ax = fig.axes[0]
        box = ax.get_legend().get_window_extent()
        assert box.x0 >= ax.get_window_extent().x1  # right of the axes
        points = np.concatenate(
            [
                ax.transData.transform(line.get_xydata())
                for line in ax.get_lines()
                if not line.get_label().startswith("baseline")
            ]
        )
        assert not any(box.contains(x, y) for x, y in points)


def test_score_axis_names_the_classifier_and_tasks_of_the_settings():
    from deepaug.workflow.labels import metric_label, section_metric_label

    rbf = section_metric_label("svm_acc", {"eval": {"svm": "svc_rbf", "folds": 10}})
    assert rbf == "RBF-kernel SVM accuracy, 10-fold CV (%)"
    assert "linear" in section_metric_label("svm_acc", {"eval": {"svm": "linearsvc", "folds": 10}})
    split = section_metric_label("svm_acc", {"eval": {"svm": "linearsvc", "scheme": "split", "folds": 10}})
    assert split == "linear SVM (LinearSVC) accuracy, test part of one 80/10/10 split (%)"
    assert metric_label("svm_acc") == "SVM accuracy, cross-validation (%)"  # not known: not called linear
    demo = section_metric_label("sts_avg", {"test_tasks": ["lee_docs", "simlex999"]})
    assert demo == "average Spearman x100 over lee_docs, simlex999" and "STS" not in demo
    paper = section_metric_label(
        "sts_avg", {"test_tasks": ["sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"]}
    )
    assert paper.startswith("average Spearman x100 over 7 STS tasks (sts12, ")
    assert section_metric_label("sts_avg", {"test_tasks": ["simlex999_test"]}) == "Spearman x100 on simlex999_test"


def test_without_a_label_the_axis_names_the_tasks_in_the_table():
    df = _table().rename(columns={"sts_a": "sts_lee_docs", "sts_b": "sts_simlex999"}).assign(sts_avg=1.0)
    fig = plot_layer_sweep(df, "sts_avg")
    assert " ".join(fig.axes[0].get_ylabel().split()) == "average Spearman x100 over lee_docs, simlex999"
    fig = plot_layer_sweep(df, "sts_avg", ylabel="given")
    assert fig.axes[0].get_ylabel() == "given"


def _demo_config():
    from deepaug.workflow.config import REPO_CONFIG, merge_config, read_yaml, validate_config

    return validate_config(merge_config(read_yaml(REPO_CONFIG), read_yaml(REPO_CONFIG.parent / "config" / "demo.yaml")))


def test_the_demo_figures_are_labelled_from_the_demo_settings():
    """What rules/figures.smk passes to the notebook and to the caption (`figure_metric_label`)."""
    from deepaug.workflow.labels import section_metric_label
    from deepaug.workflow.runs import resolve_section

    config = _demo_config()

    def label(domain, metric, objective="contrastive"):
        return section_metric_label(metric, resolve_section(config[domain], objective))

    # demo: protocol pygcl, a LinearSVC on one split
    assert label("graph", "svm_acc") == "linear SVM (LinearSVC) accuracy, test part of one 80/10/10 split (%)"
    assert label("text", "sts_avg") == "average Spearman x100 over lee_docs, simlex999"
    assert label("text", "sts_avg", "supervised") == "Spearman x100 on simlex999_test"
    assert label("vision", "linear_top1") == "linear probe top-1 (%)"


def test_swept_settings_are_the_domains_own():
    """The run table has one column per axis of any domain: text's two learning rates (tuned on dev) are
    neither a graph sweep nor a panel of the text figure."""
    from deepaug.workflow.plotting import swept_axes

    runs = pd.DataFrame(
        [
            *({"domain": "text", "objective": "contrastive", "lr": lr, "p": None} for lr in (3e-5, 1e-4)),
            *({"domain": "graph", "objective": "contrastive", "lr": None, "p": p} for p in (0.5, 1.0)),
            {"domain": "graph", "objective": "supervised", "lr": None, "p": None},
        ]
    )
    assert swept_axes(runs, ["lr", "p"], "graph") == (["p"], [])
    assert swept_axes(runs, ["lr", "p"], "graph", "supervised") == ([], [])
    assert swept_axes(runs, ["lr", "p"], "text", tuned=["lr"]) == ([], ["lr"])
    assert swept_axes(runs, ["lr", "p"], "text") == (["lr"], [])


def test_notebook_parameters_all_reach_papermill():
    """Papermill reads every parameter of each notebook (a '=' in a comment made it drop `datasets` with
    'Unable to parse line')."""
    import json
    import re
    from pathlib import Path

    from papermill.translators import PythonTranslator

    for notebook in sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
        source = "".join(cell["source"])
        assigned = re.findall(r"^(\w+) *=", source, re.M)
        assert [p.name for p in PythonTranslator.inspect({"source": source})] == assigned, notebook.name


# ------------------------------------------------------------------------------ report captions
def _render(rst: str, **params) -> str:
    """A caption as `snakemake --report` renders it (Jinja2, with the job's params as snakemake.params)."""
    from types import SimpleNamespace

    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # as snakemake.report renders captions
    return env.from_string(rst).render(snakemake=SimpleNamespace(params=SimpleNamespace(**params)))


def test_captions_name_the_classifier_and_tasks_from_the_figure_jobs_params():
    from pathlib import Path

    report = Path(__file__).resolve().parents[2] / "report"
    graph = _render(
        (report / "layer_sweep.rst").read_text(),
        domain="graph",
        tuned="",
        metric_label="RBF-kernel SVM accuracy, 10-fold CV (%)",
    )
    assert "RBF-kernel SVM accuracy, 10-fold CV (%)" in graph and "linear SVM" not in graph
    text = _render(
        (report / "layer_sweep.rst").read_text(),
        domain="text",
        tuned="lr",
        metric_label="average Spearman x100 over lee_docs, simlex999",
    )
    assert "lee_docs, simlex999" in text and "STS" not in text and "lr chosen per seed on dev" in text
    sup = _render(
        (report / "supervised_sweep.rst").read_text(), domain="graph", metric_label="supervised classifier accuracy (%)"
    )
    assert "supervised classifier accuracy (%)" in sup


def test_captions_say_every_best_is_selected_on_dev():
    """No caption says a best setting or layer is chosen "by mean over seeds" (of the test score): each
    that names a best says it is selected on dev."""
    import re
    from pathlib import Path

    for rst in sorted((Path(__file__).resolve().parents[2] / "report").glob("*.rst")):
        text = " ".join(rst.read_text().split())
        assert not re.search(r"best[^.]*by (the )?mean over seeds", text), rst.name
        if re.search(r"\bbest\b", text):
            assert "dev" in text, rst.name


# ------------------------------------------------------------------------------ layers at once
def _with_at_once():
    """The table above, with dropout at every layer at once (no layer; its layers_at_once spelled `all`)."""
    df = _table().assign(layers_at_once=np.nan)
    at_once = [
        dict(
            domain="vision",
            dataset="d",
            method="dropout",
            layer=np.nan,
            layers_at_once="all",
            stop_gradient="sg",
            seed=seed,
            linear_top1=base + 2.0,
            sts_a=7.0,
            sts_b=seed,
        )
        for seed, base in enumerate([80.0, 82.0])
    ]
    return pd.concat([df, pd.DataFrame(at_once)], ignore_index=True)


def test_a_run_at_several_layers_is_a_line_with_its_band_beside_the_layer_curves(tmp_path):
    from deepaug.workflow.plotting import at_once_summary

    df = _with_at_once()
    s = layer_sweep_summary(df, "linear_top1")
    assert set(s["layer"]) == {0, 3}, "no curve point for a run without a layer"
    line = at_once_summary(df, "linear_top1").iloc[0]
    assert (line["method"], line["stop_gradient"], line["layers_at_once"], line["mean"], line["count"]) == (
        "dropout",
        "sg",
        "all",
        83.0,
        2,
    )
    fig = plot_layer_sweep(df, "linear_top1")
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    label = next(lab for lab in labels if "at once" in lab)
    assert label.startswith("dropout, stop-gradient,\nall layers at once (mean ± std, n=2)")
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(dotted) == 1 and dotted[0].get_ydata()[0] == 83.0
    sg_curve = next(line for line in ax.get_lines() if line.get_label() == "dropout, stop-gradient")
    assert dotted[0].get_color() == sg_curve.get_color(), "the line has its curve's colour"
    assert save_figure(fig, tmp_path / "f")
    assert "dropout Lall sg" in best_settings_by_task(df, "linear_top1").index
    assert layer_sweep_summary(_table(), "linear_top1").equals(s), "the curves are those without the line"


# ------------------------------------------------------------------------------ the kNN monitor
def test_the_knn_monitor_is_read_from_the_runs_and_drawn_one_panel_per_ssl_method(tmp_path):
    """train.knn_monitor's rows (knn_dev_top1 in each run's train_metrics.jsonl) per run and epoch, the runs
    without a monitor or not trained left out; the figure has one panel per ssl_method."""
    import json

    from deepaug.workflow.plotting import knn_monitor_histories, plot_knn_monitor

    rows = []
    for method in ("simclr", "byol"):
        for run, dm in (("none", "none"), ("dropout-L3-sg", "dropout")):
            run_id = run if method == "simclr" else f"{run}_ssl_method{method}"
            for seed in (0, 1):
                d = tmp_path / "results" / "vision" / "digits" / run_id / f"seed{seed}"
                d.mkdir(parents=True)
                lines = [{"epoch": e, "loss": 1.0, "knn_dev_top1": 50.0 + 10 * e + seed} for e in range(3)]
                (d / "train_metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
                rows.append(dict(domain="vision", dataset="digits", objective="contrastive", run=run_id,
                                 setting=run_id, seed=seed, method=dm, ssl_method=method, dir=str(d)))  # fmt: skip
    rows.append(dict(rows[0], dir=str(tmp_path / "not-trained"), seed=2))
    rows.append(dict(rows[0], objective="supervised", run="sup-none", setting="sup-none"))
    hist = knn_monitor_histories(pd.DataFrame(rows), "vision")
    assert len(hist) == 2 * 2 * 2 * 3 and set(hist["epoch"]) == {1, 2, 3} and set(hist["objective"]) == {"contrastive"}
    assert hist.loc[(hist["run"] == "none") & (hist["epoch"] == 3), "knn_dev_top1"].tolist() == [70.0, 71.0]
    fig = plot_knn_monitor(hist, title="digits")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["ssl_method = byol", "ssl_method = simclr"]
    assert all(len(ax.get_lines()) == 2 for ax in panels)  # the baseline and the dropout setting
    assert knn_monitor_histories(pd.DataFrame(rows), "text").empty
