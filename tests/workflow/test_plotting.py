import numpy as np
import pandas as pd

from deepaug.workflow.plotting import (baseline_summary, best_settings_by_task, layer_sweep_summary, plot_layer_sweep,
                              save_figure, sweep_overview)


def _table():
    rows = []
    for seed, base in enumerate([80.0, 82.0]):
        rows.append(dict(domain="vision", dataset="d", method="none", layer=np.nan, stop_gradient=np.nan, seed=seed,
                         linear_top1=base, sts_a=1.0, sts_b=2.0))
        for layer in (0, 3):
            for sg, shift in (("sg", 5.0), ("nosg", -5.0)):
                rows.append(dict(domain="vision", dataset="d", method="dropout", layer=layer, stop_gradient=sg, seed=seed,
                                 linear_top1=base + shift + layer, sts_a=layer, sts_b=seed))
    return pd.DataFrame(rows)


def test_summaries_are_mean_and_std_over_seeds():
    df = _table()
    s = layer_sweep_summary(df, "linear_top1").set_index(["method", "stop_gradient", "layer"])
    assert s.loc[("dropout", "sg", 3), "mean"] == 89.0
    assert np.isclose(s.loc[("dropout", "sg", 3), "std"], np.std([88, 90], ddof=1))
    assert s.loc[("dropout", "sg", 3), "count"] == 2
    assert baseline_summary(df, "linear_top1") == (81.0, float(np.std([80, 82], ddof=1)), 2)
    over = sweep_overview(df, "linear_top1").iloc[0]
    assert (over["best_method"], over["best_layer"], over["best_stop_gradient"], over["best_mean"]) == ("dropout", 3, "sg", 89.0)


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
    no_dev = layer_selection(df.drop(columns="dev_linear_top1"), matrices, {"vision": "linear_top1"},
                             {"vision": "dev_linear_top1"})
    assert no_dev["best_layer"].isna().all() and (no_dev["selected_by"] == "no dev metric: not chosen").all()


def _p_sweep_table():
    rows = []
    for seed in (0, 1):
        rows.append({"domain": "vision", "dataset": "digits", "method": "none", "layer": None, "stop_gradient": None,
                     "seed": seed, "p": None, "linear_top1": 50.0 + seed})
        for p in (0.25, 0.5, 1.0):
            for layer in (0, 3, 6):
                rows.append({"domain": "vision", "dataset": "digits", "method": "dropout", "layer": layer,
                             "stop_gradient": "sg", "seed": seed, "p": p, "linear_top1": 40 + 10 * p + layer})
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
