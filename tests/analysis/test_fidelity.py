"""The fidelity table (deepaug.analysis.fidelity): the baselines against the published numbers, on hand-made
tables. The values are chosen so that no verdict depends on the last bits of a float: every published number
is either well inside or well outside the interval."""

import math
import re

import pandas as pd
import pytest
from scipy import stats

from deepaug.analysis import fidelity as F
from deepaug.cli import main
from deepaug.domains import metric_table
from deepaug.errors import DataValidationError

METRICS = metric_table()  # what the CLI hands in
REQUIRES = {"model.arch": "resnet18", "train.epochs": 1000}


def number(value, dataset="cifar10", metric="linear_top1", domain="vision", requires=None, **extra):
    return dict(
        source="a README",
        repo="org/repo",
        path="README.md",
        commit="0" * 40,
        line=7,
        verified="checked",
        note="a note",
        domain=domain,
        dataset=dataset,
        metric=metric,
        value=value,
        requires=dict(REQUIRES if requires is None else requires),
        **extra,
    )


def table(values, dataset="cifar10", metric="linear_top1", domain="vision", method="none", setting="none"):
    return pd.DataFrame(
        [
            dict(
                domain=domain,
                dataset=dataset,
                objective="contrastive",
                method=method,
                setting=setting,
                seed=s,
                **{metric: v},
            )
            for s, v in enumerate(values)
        ]
    )


SETTINGS = {("vision", "cifar10", "none"): {"model.arch": "resnet18", "train.epochs": 1000, "model.width": 64}}


def one(frame: pd.DataFrame) -> pd.Series:
    assert len(frame) == 1, frame
    return frame.iloc[0]


# ------------------------------------------------------------------------------------------ interval, verdicts
def test_the_interval_is_the_t_interval_over_seeds():
    row = one(F.fidelity(table([70.0, 72.0, 74.0]), [number(72.5)], METRICS, SETTINGS))
    half = stats.t.ppf(0.975, 2) * 2.0 / math.sqrt(3)  # sd 2 over 3 seeds
    assert row["n_seeds"] == 3 and row["n_not_finite"] == 0 and row["mean"] == pytest.approx(72.0)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((72.0 - half, 72.0 + half), rel=1e-9)
    assert row["difference"] == pytest.approx(-0.5) and row["published"] == 72.5


@pytest.mark.parametrize(
    "published,verdict",
    [(75.0, "within interval"), (69.0, "within interval"), (80.0, "off by more"), (60.0, "off by more")],
)
def test_within_interval_or_off_by_more(published, verdict):
    row = one(F.fidelity(table([70.0, 72.0, 74.0]), [number(published)], METRICS, SETTINGS))  # 72 +- 4.97
    assert row["verdict"] == verdict and row["recipe"].startswith("matches: model.arch resnet18")


def test_identical_seeds_give_a_zero_width_interval():
    equal, other = F.fidelity(table([71.0, 71.0]), [number(71.0), number(71.5)], METRICS, SETTINGS).iloc
    assert equal["ci_low"] == equal["ci_high"] == 71.0 and equal["verdict"] == "within interval"
    assert other["verdict"] == "off by more"


def test_one_seed_has_a_mean_but_no_interval_and_says_so():
    row = one(F.fidelity(table([90.0]), [number(90.0)], METRICS, SETTINGS))
    assert row["verdict"] == "one seed: no interval" and row["mean"] == 90.0 and row["n_seeds"] == 1
    assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"]) and row["difference"] == 0.0


# ------------------------------------------------------------------------------------------ never scored
def test_scores_that_are_not_finite_are_left_out_and_counted():
    row = one(F.fidelity(table([70.0, math.nan, math.inf, 74.0]), [number(72.0)], METRICS, SETTINGS))
    assert row["n_seeds"] == 2 and row["n_not_finite"] == 2 and row["mean"] == pytest.approx(72.0)
    assert row["verdict"] == "within interval"


def test_no_finite_score_is_not_comparable():
    row = one(F.fidelity(table([math.nan, -math.inf, math.nan]), [number(72.0)], METRICS, SETTINGS))
    assert row["verdict"] == "not comparable: no finite score (3 of 3 seeds not finite)"
    assert row["n_seeds"] == 0 and math.isnan(row["mean"]) and math.isnan(row["difference"])


def test_a_published_number_that_is_not_finite_is_not_scored():
    row = one(F.fidelity(table([70.0, 72.0, 74.0]), [number(math.nan)], METRICS, SETTINGS))
    assert row["verdict"] == "not comparable: the published number is not finite"


# ------------------------------------------------------------------------------------------ which rows
def test_a_dataset_without_a_published_number_gets_one_row_for_its_test_metric():
    frame = F.fidelity(table([84.0, 86.0], dataset="digits"), [number(90.7)], METRICS, {})
    row = one(frame)
    assert (row["dataset"], row["metric"]) == ("digits", "linear_top1")  # the domain's test metric, handed in
    assert row["verdict"] == "not comparable: no published number for digits"
    assert row["mean"] == pytest.approx(85.0) and math.isnan(row["published"]) and row["source"] == ""


def test_a_published_number_of_a_dataset_or_metric_the_table_lacks_is_left_out():
    numbers = [number(72.0), number(65.0, dataset="cifar100"), number(91.0, metric="knn_top1")]
    frame = F.fidelity(table([70.0, 72.0, 74.0]), numbers, METRICS, SETTINGS)
    assert list(frame["dataset"]) == ["cifar10"] and list(frame["metric"]) == ["linear_top1"]


def test_a_dataset_whose_published_metrics_are_not_in_the_table_says_which_metric_has_none():
    row = one(F.fidelity(table([70.0, 72.0]), [number(91.0, metric="knn_top1")], METRICS, SETTINGS))
    assert row["verdict"] == "not comparable: no published number for linear_top1 on cifar10"


def test_only_baselines_of_the_contrastive_objective_are_compared():
    rows = pd.concat(
        [
            table([70.0, 72.0, 74.0]),
            table([10.0, 10.0], method="dropout", setting="dropout-L3-sg"),
            table([20.0, 20.0]).assign(objective="supervised"),
        ]
    )
    row = one(F.fidelity(rows, [number(72.0)], METRICS, SETTINGS))
    assert row["n_seeds"] == 3 and row["mean"] == pytest.approx(72.0)


def test_each_published_number_of_a_metric_is_its_own_row_and_each_baseline_setting_too():
    rows = pd.concat([table([70.0, 72.0, 74.0]), table([50.0, 52.0], setting="none_epochs10")])
    settings = {**SETTINGS, ("vision", "cifar10", "none_epochs10"): {"model.arch": "resnet18", "train.epochs": 10}}
    frame = F.fidelity(rows, [number(72.0), number(90.0, requires={"model.arch": "resnet50"})], METRICS, settings)
    assert list(zip(frame["setting"], frame["published"])) == [
        ("none", 72.0),
        ("none", 90.0),
        ("none_epochs10", 72.0),
        ("none_epochs10", 90.0),
    ]
    assert list(frame["verdict"]) == [
        "within interval",
        "not comparable: model.arch resnet18 (published resnet50)",
        "not comparable: train.epochs 10 (published 1000)",
        "not comparable: model.arch resnet18 (published resnet50)",
    ]


def test_a_number_of_another_ssl_method_gets_no_row_but_one_of_the_same_method_is_compared():
    """ssl_method is what a number measures, not a recipe detail: a BYOL baseline is set beside solo-learn's BYOL
    number only, a SimCLR baseline never beside it; an unknown method (no settings) keeps every number."""
    rows = pd.concat([table([70.0, 72.0, 74.0]), table([91.0, 92.0, 93.0], setting="none_ssl_methodbyol")])
    settings = {
        ("vision", "cifar10", "none"): {**SETTINGS[("vision", "cifar10", "none")], "train.ssl_method": "simclr"},
        ("vision", "cifar10", "none_ssl_methodbyol"): {"model.arch": "resnet18", "train.epochs": 1000,
                                                       "train.ssl_method": "byol"},
    }  # fmt: skip
    simclr = number(72.0, requires={**REQUIRES, "train.ssl_method": "simclr"})
    byol = number(92.58, requires={**REQUIRES, "train.ssl_method": "byol"})
    frame = F.fidelity(rows, [simclr, byol], METRICS, settings)
    assert list(zip(frame["setting"], frame["published"], frame["verdict"])) == [
        ("none", 72.0, "within interval"),
        ("none_ssl_methodbyol", 92.58, "within interval"),
    ]
    assert len(F.fidelity(rows, [simclr, byol], METRICS)) == 4  # without settings nothing tells the methods apart


# ------------------------------------------------------------------------------------------ the recipe
def test_settings_that_differ_from_the_published_recipe_make_it_not_comparable():
    demo = {("vision", "cifar10", "none"): {"model.arch": "resnet18", "train.epochs": 2}}
    row = one(F.fidelity(table([30.0, 31.0]), [number(90.7)], METRICS, demo))
    assert row["verdict"] == "not comparable: train.epochs 2 (published 1000)"
    assert row["recipe"] == "differs: train.epochs 2 (published 1000)"
    assert row["mean"] == pytest.approx(30.5)  # the numbers are still shown


def test_a_setting_not_known_as_one_value_is_a_difference():
    row = one(F.fidelity(table([70.0, 72.0]), [number(72.0, requires={"train.lr": 3e-5})], METRICS, SETTINGS))
    assert row["verdict"] == "not comparable: train.lr not known as one value (published 3e-05)"
    unknown = one(F.fidelity(table([70.0, 72.0]), [number(72.0)], METRICS, {}))
    assert unknown["verdict"] == "not comparable: the settings of vision/cifar10/none are unknown"


def test_without_settings_the_recipe_is_not_checked_and_the_table_says_so():
    row = one(F.fidelity(table([70.0, 72.0, 74.0]), [number(72.0)], METRICS))
    assert row["verdict"] == "within interval" and row["recipe"] == "not checked: no settings given"


@pytest.mark.parametrize(
    "ours,theirs,same",
    [
        (1000, 1000.0, True),
        (2, 1000, False),
        (None, None, True),
        (0, None, False),
        (True, 1, False),
        ("bert-base-uncased", "bert-base-uncased", True),
        (["stsb", "sts12"], ["sts12", "stsb"], True),  # a list as a set (test tasks)
        (["sts12"], ["sts12", "stsb"], False),
    ],
)
def test_settings_compare_by_value(ours, theirs, same):
    assert (F.recipe_differences({"k": theirs}, {"k": ours}) == []) is same


# ------------------------------------------------------------------------------------------ the published file
def test_the_shipped_numbers_load_with_their_sources():
    rows = F.published_rows()
    assert {r["verified"] for r in rows} <= set(F.VERIFIED)
    for r in rows:
        assert math.isfinite(r["value"]) and r["source"]
        if r["verified"] != "unverified":
            assert re.fullmatch(r"[0-9a-f]{40}", r["commit"]) and "/" in r["repo"] and r["path"], r
    key = {(r["dataset"], r["metric"], r["repo"], r["requires"].get("train.ssl_method", "")): r["value"] for r in rows}
    assert key[("wiki1m", "sts_avg", "princeton-nlp/SimCSE", "")] == 76.25
    assert key[("cifar10", "linear_top1", "vturrisi/solo-learn", "simclr")] == 90.74
    assert key[("cifar100", "linear_top1", "vturrisi/solo-learn", "simclr")] == 65.78
    assert key[("cifar10", "linear_top1", "vturrisi/solo-learn", "byol")] == 92.58
    assert key[("cifar100", "linear_top1", "vturrisi/solo-learn", "vicreg")] == 68.54
    graphcl = {r["dataset"]: r["value"] for r in rows if r["domain"] == "graph"}
    assert graphcl == {"MUTAG": 86.80, "PROTEINS": 74.39, "NCI1": 77.87, "IMDB-BINARY": 71.14}
    per_task = {r["metric"] for r in rows if r["domain"] == "text"}
    assert per_task == {f"sts_{t}" for t in ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr")} | {
        "sts_avg"
    }
    assert "train.epochs" in F.required_keys(rows) and "eval.svm" in F.required_keys(rows)


@pytest.mark.parametrize(
    "entry,words",
    [
        ("value: .nan", "value nan is not a finite number"),
        ("value: 90.0, sd: high", "sd 'high' is not a finite number"),
        ("value: 90.0, verified: yes", "verified True is not one of checked, quoted, unverified"),  # YAML's yes
        ("value: 90.0, commit: ''", "a number marked checked needs its repo, path and commit"),
        ("value: 90.0, dataset: ''", "give its dataset and metric"),
    ],
)
def test_a_malformed_published_file_is_one_error_naming_the_entry(tmp_path, entry, words):
    path = tmp_path / "published.yaml"
    path.write_text(
        "sources:\n  - {source: s, repo: o/r, path: README.md, commit: abc, verified: checked, domain: vision,\n"
        f"     numbers: [{{metric: linear_top1, dataset: cifar10, {entry}}}]}}\n"
    )
    with pytest.raises(DataValidationError, match=re.escape(words)) as err:
        F.published_rows(path)
    assert "sources[0]" in str(err.value) and str(path) in str(err.value)


# ------------------------------------------------------------------------------------------ the command
def test_the_command_writes_the_table_and_refuses_bad_settings(tmp_path, capsys):
    table([70.0, 72.0, 74.0]).to_csv(tmp_path / "table.csv", index=False)
    settings = '{"vision/cifar10/none": {"model.arch": "resnet18", "model.width": 64, "train.epochs": 2}}'
    out = tmp_path / "fidelity.csv"
    args = ["fidelity", "--table", str(tmp_path / "table.csv"), "--out", str(out)]
    assert main([*args, "--settings", settings]) == 0
    written = pd.read_csv(out)
    assert list(written.columns) == F.COLUMNS
    assert written["verdict"].str.startswith("not comparable: ").all()  # the shipped numbers: 4 for CIFAR-10
    assert written["verdict"].str.contains("train.epochs 2 (published 1000)", regex=False).all()
    assert main([*args, "--settings", "{not json"]) == 2
    assert "--settings is not JSON" in capsys.readouterr().err
    assert main([*args, "--settings", '{"vision/cifar10": {}}']) == 2
    assert "is not 'domain/dataset/setting'" in capsys.readouterr().err
