"""Tuned axes chosen on dev: per setting and seed the dev-best run is kept and its test score reported."""

import pandas as pd
import pytest

from deepaug.analysis.selection import select_tuned, write_selected


def grid_table():
    """Two settings x two seeds x lr {1e-5, 3e-5}: dev prefers lr 3e-5, test would prefer lr 1e-5."""
    rows = []
    for setting in ("none", "dropout-L3-sg"):
        for seed in (0, 1):
            for lr, dev, test in ((1e-5, 70.0, 80.0), (3e-5, 75.0, 72.0)):
                spelled = "" if lr == 3e-5 else "_lr1e-05"
                rows.append({"domain": "text", "dataset": "wiki1m", "objective": "contrastive",
                             "run": setting + spelled, "setting": setting, "seed": seed,
                             "method": "none" if setting == "none" else "dropout",
                             "layer": None if setting == "none" else 3, "stop_gradient": None if setting == "none" else "sg",
                             "lr": lr, "dev_spearman": dev + seed, "sts_avg": test + seed})
    return pd.DataFrame(rows)


def test_the_dev_best_run_is_kept_even_where_test_would_choose_another():
    out = select_tuned(grid_table(), ["lr"], "dev_spearman")
    assert len(out) == 4  # one per setting and seed
    assert (out["lr"] == 3e-5).all() and (out["tuned_candidates"] == 2).all()
    assert list(out["sts_avg"]) == [72.0, 73.0, 72.0, 73.0]  # the chosen runs' test scores, not the best test
    assert set(out["run"]) == {"none", "dropout-L3-sg"}  # a setting is one group whatever won
    assert set(out["selected_run"]) == {"none", "dropout-L3-sg"}


def test_the_winner_may_differ_per_seed_and_the_table_says_which():
    table = grid_table()
    table.loc[(table["seed"] == 1) & (table["lr"] == 1e-5), "dev_spearman"] = 99.0
    out = select_tuned(table, ["lr"], "dev_spearman").set_index(["run", "seed"])
    assert out.loc[("dropout-L3-sg", 0), "lr"] == 3e-5 and out.loc[("dropout-L3-sg", 1), "lr"] == 1e-5
    assert out.loc[("dropout-L3-sg", 1), "selected_run"] == "dropout-L3-sg_lr1e-05"


def test_no_tuned_axis_keeps_every_run_and_no_dev_score_is_an_error():
    table = grid_table()
    assert len(select_tuned(table, [], "dev_spearman")) == len(table)
    with pytest.raises(ValueError, match=r"no dev score \(dev_spearman\) for any run of text/wiki1m/dropout-L3-sg/seed0: cannot choose its lr"):
        select_tuned(table.assign(dev_spearman=float("nan")), ["lr"], "dev_spearman")


def test_write_selected_uses_each_studys_dev_metric(tmp_path):
    table = grid_table()
    table.to_csv(tmp_path / "all.csv", index=False)
    out = write_selected(tmp_path / "all.csv", tmp_path / "selected.csv", {"text": ["lr"]})
    assert len(out) == 4 and len(pd.read_csv(tmp_path / "selected.csv")) == 4
    # a domain without tuned axes passes through
    out = write_selected(tmp_path / "all.csv", tmp_path / "same.csv", {})
    assert len(out) == len(table)
