import numpy as np
import pandas as pd

from deepaug.plotting import (baseline_summary, best_settings_by_task, layer_sweep_summary, plot_layer_sweep,
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
