"""Tuned axes chosen on dev: per setting and seed the dev-best run is kept and its test score reported."""

import pandas as pd
import pytest

from deepaug.analysis.selection import dev_best, dev_best_candidate, select_tuned, write_selected
from deepaug.domains import metric_table
from deepaug.io import write_json


def grid_table():
    """Two settings x two seeds x lr {1e-5, 3e-5}: dev prefers lr 3e-5, test would prefer lr 1e-5."""
    rows = []
    for setting in ("none", "dropout-L3-sg"):
        for seed in (0, 1):
            for lr, dev, test in ((1e-5, 70.0, 80.0), (3e-5, 75.0, 72.0)):
                spelled = "" if lr == 3e-5 else "_lr1e-05"
                rows.append(
                    {
                        "domain": "text",
                        "dataset": "wiki1m",
                        "objective": "contrastive",
                        "run": setting + spelled,
                        "setting": setting,
                        "seed": seed,
                        "method": "none" if setting == "none" else "dropout",
                        "layer": None if setting == "none" else 3,
                        "stop_gradient": None if setting == "none" else "sg",
                        "lr": lr,
                        "dev_spearman": dev + seed,
                        "sts_avg": test + seed,
                    }
                )
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
    with pytest.raises(
        ValueError,
        match=r"no dev score \(dev_spearman\) for any run of text/wiki1m/dropout-L3-sg/seed0: cannot choose its lr",
    ):
        select_tuned(table.assign(dev_spearman=float("nan")), ["lr"], "dev_spearman")


def test_write_selected_uses_each_studys_dev_metric(tmp_path):
    table = grid_table()
    table.to_csv(tmp_path / "all.csv", index=False)
    out = write_selected(tmp_path / "all.csv", tmp_path / "selected.csv", {"text": ["lr"]}, metric_table())
    assert len(out) == 4 and len(pd.read_csv(tmp_path / "selected.csv")) == 4
    # a domain without tuned axes passes through
    out = write_selected(tmp_path / "all.csv", tmp_path / "same.csv", {}, metric_table())
    assert len(out) == len(table)


def test_ties_go_to_the_smallest_run_id_whatever_the_order():
    assert dev_best(["b", "a", "c"], [1.0, 1.0, 0.5]) == "a"
    assert dev_best(["a", "b"], [float("nan"), 0.1]) == "b"  # a non-finite score never wins
    table = grid_table().assign(dev_spearman=70.0)  # every candidate ties
    out = select_tuned(table.iloc[::-1], ["lr"], "dev_spearman")
    assert set(out["selected_run"]) == {"dropout-L3-sg", "none"}  # '<setting>' sorts before '<setting>_lr1e-05'
    with pytest.raises(ValueError, match="no run has a finite dev score"):
        dev_best(["a"], [None])


def test_the_analysis_picks_the_candidate_the_table_reports(tmp_path):
    """The analysis job chooses among a setting's candidates from their eval.json at run time; it must
    pick the run select_tuned reports, for every setting and seed (here, winners that differ per seed)."""
    table = grid_table()
    table.loc[(table["seed"] == 1) & (table["lr"] == 1e-5), "dev_spearman"] = 99.0
    reported = select_tuned(table, ["lr"], "dev_spearman").set_index(["run", "seed"])["selected_run"]
    for (setting, seed), group in table.groupby(["setting", "seed"]):
        evals, models = [], []
        for row in group.itertuples():
            write_json(tmp_path / f"{row.run}-{seed}.json", {"dev_spearman": row.dev_spearman, "sts_avg": row.sts_avg})
            evals.append(str(tmp_path / f"{row.run}-{seed}.json"))
            models.append(f"{row.run}/model.pt")
        model, chosen = dev_best_candidate(models, evals, list(group["run"]), "dev_spearman")
        assert chosen["selected_run"] == reported[(setting, seed)] and model == f"{chosen['selected_run']}/model.pt"
        assert chosen["tuned_candidates"] == 2 and chosen["dev_metric"] == "dev_spearman"
    assert dev_best_candidate(["m.pt"], [], [], "dev_spearman") == ("m.pt", {})  # one run: nothing to choose
    with pytest.raises(ValueError, match="2 models, 1 eval.json files and 2 run ids"):
        dev_best_candidate(["a.pt", "b.pt"], evals[:1], ["a", "b"], "dev_spearman")
    write_json(tmp_path / "nan.json", {"dev_spearman": None})
    with pytest.raises(ValueError, match="none of the candidate runs a, b has a finite dev_spearman"):
        dev_best_candidate(["a.pt", "b.pt"], [str(tmp_path / "nan.json")] * 2, ["a", "b"], "dev_spearman")
