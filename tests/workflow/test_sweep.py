"""Sweeps as data: blocks expand into the run table; any setting is an axis; defaults come from the schema."""

import re

import pandas as pd
import pytest

from deepaug.errors import ConfigError
from deepaug.workflow.config import REPO_CONFIG, merge_config, read_yaml, validate_config
from deepaug.workflow.runs import expand, read_table, swept_columns, table_rows, write_table

DIGITS = {"datasets": ["digits"]}


def config(vision=None, text=None, base=None):
    out = {"vision": {**DIGITS, **(vision or {})}} if vision is not None else {}
    if text is not None:
        out["text"] = text
    return validate_config(merge_config(base or {}, out))


def runs_of(cfg, domain="vision"):
    return [r for r in expand(cfg) if r.domain == domain]


def test_a_block_is_the_product_of_its_lists_and_the_sweep_their_union():
    cfg = config(
        {
            "sweep": [
                {"method": "none", "seed": [0, 1]},
                {"method": ["dropout", "pca"], "layer": [1, 2, 3], "stop_gradient": [True, False], "seed": [0, 1]},
            ]
        }
    )
    runs = runs_of(cfg)
    assert len(runs) == 2 * (1 + 2 * 3 * 2)
    assert {r.id for r in runs} >= {"none", "dropout-L1-sg", "pca-L3-nosg"}
    assert len({r.path for r in runs}) == len(runs)


def test_the_baseline_takes_no_layer_and_collapses_within_its_block():
    cfg = config({"sweep": [{"method": ["none", "dropout"], "layer": [0, 3], "rate": [0.1, 0.3]}]})
    ids = sorted(r.id for r in runs_of(cfg))
    assert ids == [
        "dropout-L0-sg_rate0.1",
        "dropout-L0-sg_rate0.3",
        "dropout-L3-sg_rate0.1",
        "dropout-L3-sg_rate0.3",
        "none",
    ]
    base = next(r for r in runs_of(cfg) if r.method == "none")
    assert base.layer is None and base.stop_gradient is None and base.augment() == {"method": "none"}


def test_a_p_axis_gives_three_times_the_runs_in_distinct_directories_and_a_p_column(tmp_path):
    one = config({"sweep": [{"method": "none"}, {"method": "dropout", "layer": [0, 3, 6]}]})
    three = config({"sweep": [{"method": "none"}, {"method": "dropout", "layer": [0, 3, 6], "p": [0.25, 0.5, 1.0]}]})
    aug_one = [r for r in runs_of(one) if r.method != "none"]
    aug_three = [r for r in runs_of(three) if r.method != "none"]
    assert len(aug_three) == 3 * len(aug_one) and len({r.path for r in aug_three}) == len(aug_three)
    # the default (0.5) is not spelled: that run keeps the directory it had without the axis
    assert {r.id for r in aug_three if r.layer == 3} == {"dropout-L3-sg_p0.25", "dropout-L3-sg", "dropout-L3-sg_p1.0"}
    assert {r.augment()["p"] for r in aug_three} == {0.25, 0.5, 1.0}
    write_table(runs_of(three), tmp_path / "runs.tsv")
    table = read_table(tmp_path / "runs.tsv")
    assert swept_columns(tmp_path / "runs.tsv") == ["p"]
    assert sorted(table["p"].dropna().unique()) == [0.25, 0.5, 1.0]
    assert table.loc[table["method"] == "none", "p"].isna().all()  # p does not apply to the baseline
    assert set(table["dir"]) == {f"results/{r.path}" for r in runs_of(three)}


def test_any_setting_is_an_axis_and_reaches_the_runs_settings():
    cfg = config(
        {
            "sweep": [
                {"method": "dropout", "layer": 3, "lr": [0.1, 0.2], "batch_size": 64, "width": [8, 16], "eval.knn_k": 5}
            ]
        }
    )
    runs = runs_of(cfg)
    assert len(runs) == 4
    r = next(r for r in runs if r.value("lr") == 0.2 and r.value("width") == 16)
    assert r.id == "dropout-L3-sg_batch_size64_eval-knn_k5_lr0.2_width16"
    assert r.section["train"]["batch_size"] == 64 and r.section["model"]["width"] == 16
    assert r.section["eval"]["knn_k"] == 5
    assert cfg["vision"]["train"]["lr"] == 0.5 and cfg["vision"]["model"]["width"] == 64  # the config is untouched


def test_settings_of_another_method_are_left_out():
    cfg = config({"sweep": [{"method": ["dropout", "pca"], "layer": 3, "rate": 0.25, "pca_component": 2}]})
    by_method = {r.method: r for r in runs_of(cfg)}
    assert by_method["dropout"].id == "dropout-L3-sg_rate0.25" and "pca_component" not in by_method["dropout"].augment()
    assert by_method["pca"].id == "pca-L3-sg_pca_component2" and "rate" not in by_method["pca"].augment()


def test_the_supervised_counterpart_is_an_objective_with_its_own_settings():
    cfg = config(
        {
            "supervised": {"train": {"epochs": 7, "lr": 0.1}},
            "sweep": [{"objective": ["contrastive", "supervised"], "method": "dropout", "layer": 3}],
        }
    )
    runs = {r.objective: r for r in runs_of(cfg)}
    assert runs["contrastive"].id == "dropout-L3-sg" and runs["supervised"].id == "sup-dropout-L3-sg"
    assert runs["supervised"].section["train"]["epochs"] == 7 and runs["supervised"].section["train"]["lr"] == 0.1
    assert runs["contrastive"].section["train"]["epochs"] == 1000  # the schema's default: SupContrast's
    assert runs["supervised"].section["train"]["momentum"] == 0.9  # the rest as for the contrastive runs


def test_defaults_come_from_the_schema_and_supervised_overrides_stay_partial():
    cfg = config({"sweep": [{"method": "none"}], "supervised": {"train": {"lr": 0.2}}})
    vision = cfg["vision"]
    assert (
        vision["train"]["lr"] == 0.5 and vision["train"]["temperature"] == 0.5 and vision["model"]["arch"] == "resnet18"
    )
    assert vision["augment"] == {
        "rate": 0.5,
        "p": 0.5,
        "pca_component": 1,
        "pca_over": "rows",
        "selection": "bernoulli",
        "pca_grad": "through",
        "detach_p": 1.0,
    }
    assert vision["supervised"] == {"train": {"lr": 0.2}}
    assert cfg["device"] == "auto" and cfg["checkpoints"]["keep"] == "last"
    assert "text" not in cfg  # a domain the config does not name stays off


def test_two_blocks_that_make_the_same_run_are_rejected_naming_both():
    with pytest.raises(
        ConfigError,
        match=r"config key 'vision.sweep\[1\]': run vision/digits/dropout-L3-sg/seed0 is "
        r"also made by 'vision.sweep\[0\]'",
    ):
        config({"sweep": [{"method": "dropout", "layer": 3}, {"method": "dropout", "layer": 3, "rate": 0.5}]})


@pytest.mark.parametrize(
    "axis, values, words",
    [
        ("learning_rate", [0.1], "'learning_rate' is not a setting that can be a sweep axis"),
        ("p", [0.5, "high"], "'high' is not of type 'number'"),
        ("lr", [-1.0], "-1.0 is less than or equal to the minimum of 0"),
        ("selection", ["sometimes"], "'sometimes' is not one of: bernoulli, one_sided, two_sided"),
        ("train.colour", ["red"], "'train.colour' is not a setting that can be a sweep axis"),
    ],
)
def test_unknown_axes_and_values_of_the_wrong_type_are_rejected_naming_the_key(axis, values, words):
    with pytest.raises(ConfigError) as exc:
        config({"sweep": [{"method": "dropout", "layer": 3, axis: values}]})
    assert f"config key 'vision.sweep[0].{axis}" in str(exc.value) and words in str(exc.value)


def test_the_paper_config_makes_the_papers_runs_with_the_authors_text_grid():
    paper = validate_config(read_yaml(REPO_CONFIG))
    runs = expand(paper)
    count = pd.Series([(r.domain, r.objective) for r in runs]).value_counts()
    assert count[("vision", "contrastive")] == 174 and count[("vision", "supervised")] == 174
    assert count[("text", "supervised")] == 171
    # text: every one of the 171 settings trains lr {1e-5, 3e-5, 5e-5} x batch {64, 128}, chosen on dev
    text = [r for r in runs if r.domain == "text" and r.objective == "contrastive"]
    assert len(text) == 6 * 171 == 1026 and len({r.path for r in text}) == 1026
    assert len({(r.setting, r.seed) for r in text}) == 171 and paper["text"]["tuned"] == ["lr", "batch_size"]
    by_id = {r.id: r for r in text if r.seed == 0}
    assert by_id["dropout-L3-sg"].augment()["rate"] == 0.125 and by_id["dropout-L3-sg"].setting == "dropout-L3-sg"
    grid = by_id["dropout-L3-nosg_batch_size128_lr1e-05_rate0.5"]
    assert grid.setting == "dropout-L3-nosg_rate0.5" and grid.augment()["rate"] == 0.5
    assert (grid.section["train"]["lr"], grid.section["train"]["batch_size"]) == (1.0e-5, 128)


def test_without_the_grid_the_paper_text_sweep_is_171_runs():
    paper = read_yaml(REPO_CONFIG)
    for block in paper["text"]["sweep"]:
        block.pop("lr", None), block.pop("batch_size", None)
    text = [r for r in expand(validate_config(paper)) if r.domain == "text" and r.objective == "contrastive"]
    assert len(text) == 171 and {r.id for r in text if r.seed == 2} >= {"none", "dropout-L13-sg", "pca-L0-nosg"}


def test_table_rows_carry_every_axis_value_the_run_trains_with():
    cfg = config(
        {
            "sweep": [
                {"method": "none"},
                {"method": "dropout", "layer": 3, "p": [0.25, 0.5]},
                {"method": "pca", "layer": 3},
            ]
        }
    )
    rows = {row["run"]: row for row in table_rows(runs_of(cfg))}
    assert rows["dropout-L3-sg_p0.25"]["p"] == 0.25 and rows["dropout-L3-sg"]["p"] == 0.5
    assert rows["pca-L3-sg"]["p"] == 0.5  # not swept for PCA here, but its value is what it trained with
    assert rows["none"]["p"] is None and rows["none"]["stop_gradient"] is None
    assert (
        rows["dropout-L3-sg"]["stop_gradient"] == "sg"
        and rows["dropout-L3-sg"]["dir"] == "results/vision/digits/dropout-L3-sg/seed0"
    )


def test_the_supervised_counterpart_cannot_swap_the_text_encoder():
    """Both objectives fine-tune the same encoder (text schema: not_supervised: [model]); vision may change it."""
    paper = read_yaml(REPO_CONFIG)
    text = dict(paper["text"], supervised={**paper["text"]["supervised"], "model": {"name": "roberta-base"}})
    with pytest.raises(
        ConfigError,
        match=r"config key 'text.supervised.model' is not a known setting \(allowed here: "
        r"augment, datasets, dev_task, eval, resources, test_tasks, train\)",
    ):
        validate_config(merge_config(paper, {"text": text}))
    cfg = config({"sweep": [{"method": "none"}], "supervised": {"model": {"width": 16}}})
    assert cfg["vision"]["supervised"]["model"] == {"width": 16}


def test_a_value_with_a_tab_or_a_line_break_never_splits_a_row_of_the_run_table(tmp_path):
    from dataclasses import replace

    cfg = config({"sweep": [{"method": "none", "seed": [0, 1]}]})
    odd = 'a\tb\nc\rd"e'  # the schema refuses such settings; the table must hold whatever a run trains with
    runs = [
        replace(r, axes=(("compile_backend", odd),), section={**r.section, "train": {"compile_backend": odd}})
        for r in runs_of(cfg)
    ]
    write_table(runs, tmp_path / "runs.tsv")
    table = read_table(tmp_path / "runs.tsv")
    assert len(table) == 2 and list(table["compile_backend"]) == [odd, odd] and list(table["seed"]) == [0, 1]
    assert swept_columns(tmp_path / "runs.tsv") == ["compile_backend"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "the run table is empty"),
        ("domain\tdataset\tobjective\trun\tsetting\tseed\tmethod\tlayer\tstop_gradient\tdir\n", "lists no runs"),
        ("a\tb\n1\t2\n", "not a run table (no column domain"),
    ],
)
def test_an_empty_or_foreign_run_table_is_one_line_naming_it(tmp_path, text, words):
    import subprocess
    import sys

    from deepaug.errors import DataValidationError

    (tmp_path / "runs.tsv").write_text(text)
    with pytest.raises(DataValidationError, match=re.escape(words)):
        read_table(tmp_path / "runs.tsv")
    r = subprocess.run(
        [sys.executable, "-m", "deepaug", "aggregate", "--runs", tmp_path / "runs.tsv", "--out", tmp_path / "t.csv"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert f"{tmp_path / 'runs.tsv'}: " in r.stderr and words in r.stderr
