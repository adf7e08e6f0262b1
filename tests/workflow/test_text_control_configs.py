"""The text controls in the workflow (issue 25): the encoder's dropout and the MLM settings as sweep axes (in run
ids and job commands only away from their defaults, so the paper config's commands are those of before), the
errors only a whole run can show, and the config/paper files that use them (text-encoder-dropout, text-mlm,
text-pca-variants, text-supervised-dropout)."""

from __future__ import annotations

import copy

import pytest

from deepaug.errors import ConfigError
from deepaug.workflow.config import REPO_CONFIG, check_config_file, merge_config, read_yaml, validate_config
from deepaug.workflow.jobs import Jobs
from deepaug.workflow.runs import expand

GRID = {"seed": 0, "lr": 3.0e-5, "batch_size": 64}
NEW_FLAGS = ("--hidden-dropout", "--attention-dropout", "--standard-dropout", "--mlm")


def _config(*blocks) -> dict:
    config = read_yaml(REPO_CONFIG)
    config["vision"] = config["graph"] = None
    config["text"]["sweep"] = [dict(GRID, **b) for b in blocks]
    return config


class _Wildcards:
    def __init__(self, run):
        self.domain, self.dataset, self.run, self.seed = run.domain, run.dataset, run.id, run.seed


def _jobs(config) -> tuple[Jobs, list]:
    config = validate_config(config)
    runs = expand(config)
    return Jobs(config, runs), runs


def test_the_paper_configs_text_commands_carry_none_of_the_new_settings():
    jobs, runs = _jobs(read_yaml(REPO_CONFIG))
    text = [r for r in runs if r.domain == "text"]
    assert len(text) == 1197  # 1,026 contrastive + 171 supervised
    for run in text:
        command = jobs.run_command(_Wildcards(run))
        assert not any(flag in command for flag in NEW_FLAGS), run.id
        assert "mlm_heads" not in " ".join(jobs.run_inputs(_Wildcards(run)))


def test_the_new_settings_are_sweep_axes_spelled_only_away_from_their_defaults():
    jobs, made = _jobs(
        _config(
            {"method": "none", "standard_dropout": [1, "all"]},
            {
                "method": "dropout",
                "layer": 3,
                "standard_dropout": ["target_layer", "none"],
                "hidden_dropout": [None, 0.0],
            },
            {"method": "dropout", "layer": 2, "attention_dropout": 0.0},
            {"method": "dropout", "layer": 2, "mlm_weight": [0.0, 0.1]},
            {"method": "none", "mlm_weight": 0.1, "mlm_only": True, "mlm_probability": 0.2},
        )
    )
    runs = {r.id: r for r in made}  # one seed, one dataset: one run per id (lr and batch at their defaults)
    assert set(runs) == {
        "none_standard_dropout1",
        "none",
        "dropout-L3-sg_standard_dropouttarget-layer",
        "dropout-L3-sg_hidden_dropout0.0_standard_dropouttarget-layer",
        "dropout-L3-sg_standard_dropoutnone",
        "dropout-L3-sg_hidden_dropout0.0_standard_dropoutnone",
        "dropout-L2-sg_attention_dropout0.0",
        "dropout-L2-sg",
        "dropout-L2-sg_mlm_weight0.1",
        "none_mlm_onlytrue_mlm_probability0.2_mlm_weight0.1",
    }
    command = lambda rid: jobs.run_command(_Wildcards(runs[rid]))  # noqa: E731
    assert "--standard-dropout 1 " in command("none_standard_dropout1")
    assert not any(flag in command("none") for flag in NEW_FLAGS)
    target = command("dropout-L3-sg_hidden_dropout0.0_standard_dropouttarget-layer")
    assert "--standard-dropout target_layer" in target and "--hidden-dropout 0.0" in target
    assert "--attention-dropout" not in target and "--mlm" not in target
    mlm = command("none_mlm_onlytrue_mlm_probability0.2_mlm_weight0.1")
    assert "--mlm-head data/text/mlm_heads/bert-base-uncased.pt" in mlm
    assert "--mlm-weight 0.1 " in mlm and "--mlm-only true" in mlm and "--mlm-probability 0.2" in mlm
    inputs = jobs.run_inputs(_Wildcards(runs["dropout-L2-sg_mlm_weight0.1"]))
    assert "data/text/mlm_heads/bert-base-uncased.pt" in inputs
    assert jobs.prepare_command("text", "mlm_heads/bert-base-uncased.pt") == (
        "python -m deepaug prepare-text --mlm-head bert-base-uncased --out data/text/mlm_heads/bert-base-uncased.pt"
    )


@pytest.mark.parametrize(
    "block, words",
    [
        ({"method": "none", "standard_dropout": "target_layer"}, "sweep[0]': standard_dropout target_layer keeps"),
        ({"method": "none", "standard_dropout": 13}, "standard_dropout 13 is not a layer with standard dropout"),
        ({"method": "none", "standard_dropout": "middle"}, "sweep[0].standard_dropout'"),
        ({"method": "none", "hidden_dropout": 1.0}, "sweep[0].hidden_dropout'"),
        ({"method": "none", "mlm_only": True}, "mlm_only trains on mlm_weight x the MLM loss alone"),
        ({"method": "none", "objective": "supervised", "mlm_weight": 0.1}, "are for contrastive runs"),
    ],
    ids=["target-layer-baseline", "layer-out-of-range", "unknown-place", "rate-1", "mlm-only-weight-0", "supervised"],
)
def test_a_setting_no_run_can_have_is_refused_naming_its_block(block, words):
    config = _config({"method": "none"}, block)
    config["text"]["sweep"][1].update(block)
    if block.get("objective") == "supervised":
        config["text"]["sweep"][1].pop("lr"), config["text"]["sweep"][1].pop("batch_size")
    config["text"]["sweep"] = [config["text"]["sweep"][1], config["text"]["sweep"][0]]
    with pytest.raises(ConfigError) as exc:
        validate_config(copy.deepcopy(config))
    assert words in str(exc.value)


# ----------------------------------------------------------------------------- the config/paper files
PAPER = {
    # name: (contrastive runs, supervised runs, `all` jobs, settings it must make)
    "text-encoder-dropout": (
        2808,
        0,
        3296,
        {
            "none",
            "none_standard_dropoutnone",
            "none_hidden_dropout0.0",
            "none_attention_dropout0.0",
            "none_standard_dropout12",
            "dropout-L8-sg",
            "dropout-L8-sg_standard_dropouttarget-layer",
            "dropout-L0-nosg_rate0.5_standard_dropoutnone",
            "dropout-L13-nosg_attention_dropout0.0_rate0.5",
        },
    ),
    "text-mlm": (
        1566,
        0,
        1848,
        {
            "none_mlm_weight0.1",
            "none_mlm_onlytrue_mlm_weight0.1",
            "dropout-L3-sg_rate0.5",
            "dropout-L3-sg_mlm_onlytrue_mlm_weight0.1_rate0.5",
            "dropout-L5-nosg_mlm_weight0.1_rate0.5",
        },
    ),
    "text-pca-variants": (
        1917,
        129,
        2284,
        {
            "none",
            "pca-L3-sg",
            "pca-L3-nosg_pca_component1",
            "pca-L3-sg_pca_overtokens",
            "sup-pca-L12-sg_pca_component1",
            "sup-pca-L12-sg_pca_component1_pca_overtokens",
            "sup-none",
        },  # fmt: skip
    ),
    "text-supervised-dropout": (
        18,
        21,
        67,
        {
            "none",
            "sup-none",
            "sup-none_attention_dropout0.0_hidden_dropout0.0",
            "sup-none_attention_dropout0.5_hidden_dropout0.5",
        },
    ),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_the_text_control_configs_check_with_the_counts_their_headers_state(name):
    contrastive, supervised, all_jobs, settings = PAPER[name]
    path = REPO_CONFIG.parent / "config" / "paper" / f"{name}.yaml"
    report = check_config_file(path)
    runs = contrastive + supervised
    made = f"{contrastive} contrastive" + (f", {supervised} supervised" if supervised else "")
    assert f"  text: {made} run(s)\n  {runs} training runs in all" in report
    assert f"    all: {all_jobs} jobs ({runs} training runs" in report
    assert "vision:" not in report and "graph:" not in report
    config = validate_config(merge_config(read_yaml(REPO_CONFIG), read_yaml(path)))
    made_runs = expand(config)
    assert len(made_runs) == runs and {r.setting for r in made_runs} >= settings
    header = path.read_text().split("\nvision: null", 1)[0]
    assert "bruel-gabrielsson/SimCSE" in header and "scripts/" in header
    words = " ".join(line.lstrip("# ") for line in header.splitlines())
    assert f"{contrastive:,} contrastive" in words and (not supervised or f"{supervised} supervised" in words)


def test_a_null_setting_is_a_value_of_its_own_in_the_run_table_and_the_figure_panels(tmp_path):
    """hidden_dropout null (the pretrained config's rate) is written `default`, not left empty (empty says the
    setting does not apply, and such a run would join every panel): each panel of the encoder-dropout config
    then has one run per curve point and seed."""
    from deepaug.workflow.plotting import facets, swept_axes
    from deepaug.workflow.runs import NULL_CELL, read_table, swept_columns, table_rows, write_table

    config = _config({"method": "dropout", "layer": 3, "hidden_dropout": [None, 0.0]})
    rows = {r["run"]: r for r in table_rows(expand(validate_config(config)))}
    assert rows["dropout-L3-sg"]["hidden_dropout"] == NULL_CELL
    assert rows["dropout-L3-sg_hidden_dropout0.0"]["hidden_dropout"] == 0.0
    path = REPO_CONFIG.parent / "config" / "paper" / "text-encoder-dropout.yaml"
    write_table(expand(validate_config(merge_config(read_yaml(REPO_CONFIG), read_yaml(path)))), tmp_path / "runs.tsv")
    df = read_table(tmp_path / "runs.tsv")
    axes, _ = swept_axes(df, swept_columns(tmp_path / "runs.tsv"), "text", "contrastive", ["lr", "batch_size"])
    assert axes == ["attention_dropout", "hidden_dropout", "rate", "standard_dropout"]
    panels = facets(df[(df["lr"] == 3e-5) & (df["batch_size"] == 64)], axes)
    keys = [key for key, _ in panels]
    assert {"attention_dropout": "default", "hidden_dropout": "default", "standard_dropout": "all"} in keys
    assert {"attention_dropout": "default", "hidden_dropout": "0.0", "standard_dropout": "all"} in keys
    for _, part in panels:
        assert part.groupby(["method", "stop_gradient", "layer", "seed"], dropna=False).size().max() == 1
