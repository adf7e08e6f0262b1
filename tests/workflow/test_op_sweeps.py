"""The two op settings of the paper's ablations in the workflow: detach_p (an augment setting) and
layers_at_once (a sweep block's set of layers, one run). Run ids, the sweep's expansion, the run table, the
job command (and that the defaults leave every existing command as it was), the config's one-line errors,
the tidy table, and the fingerprint of a run made before these settings existed."""

import re
from types import SimpleNamespace

import pytest

from deepaug.core.settings import RunSettings
from deepaug.errors import ConfigError
from deepaug.paths import NAME_PATTERN
from deepaug.workflow.config import REPO_CONFIG, merge_config, read_yaml, validate_config
from deepaug.workflow.jobs import Jobs
from deepaug.workflow.runs import expand, read_table, swept_columns, table_rows, write_table

DEMO = REPO_CONFIG.parent / "config" / "demo.yaml"


def config(sweep, augment=None, base=DEMO):
    vision = {"sweep": sweep, **({"augment": augment} if augment else {})}
    merged = merge_config(merge_config(read_yaml(REPO_CONFIG), read_yaml(base)), {"text": None, "graph": None})
    return validate_config(merge_config(merged, {"vision": vision}))


def refused(sweep, augment=None) -> str:
    with pytest.raises(ConfigError) as exc:
        config(sweep, augment)
    return str(exc.value)


def command(cfg, run) -> str:
    w = SimpleNamespace(domain=run.domain, dataset=run.dataset, run=run.id, seed=str(run.seed))
    return Jobs(cfg, expand(cfg)).run_command(w)


# ------------------------------------------------------------------------------ layers_at_once
def test_layers_at_once_is_one_run_per_block_combination_with_its_set_in_the_id():
    cfg = config(
        [
            {"method": "none", "seed": [0, 1]},
            {"method": "dropout", "layers_at_once": "all", "stop_gradient": [True, False], "seed": [0, 1]},
            {"method": "pca", "layers_at_once": [6, 0, 3]},
            {"method": "dropout", "layers_at_once": [0, 1, 2, 3, 4, 5], "rate": 0.25},
        ]
    )
    runs = expand(cfg)
    ids = sorted({r.id for r in runs})
    assert ids == ["dropout-L0-1-2-3-4-5-sg_rate0.25", "dropout-Lall-nosg", "dropout-Lall-sg", "none", "pca-L0-3-6-sg"]
    assert len(runs) == 2 + 2 * 2 + 1 + 1
    assert all(re.match(NAME_PATTERN, r.id) for r in runs), "ids are plain path names"
    every = next(r for r in runs if r.id == "dropout-Lall-sg")
    assert every.layer is None and every.layers == tuple(range(7)) and every.layers_label == "all"
    assert every.setting == "dropout-Lall-sg"
    three = next(r for r in runs if r.id == "pca-L0-3-6-sg")
    assert three.layers == (0, 3, 6) and three.augment()["layers_at_once"] == "0,3,6"


def test_every_layer_listed_is_the_same_run_as_all():
    message = refused(
        [{"method": "dropout", "layers_at_once": [0, 1, 2, 3, 4, 5, 6]}, {"method": "dropout", "layers_at_once": "all"}]
    )
    assert "run vision/digits/dropout-Lall-sg/seed0 is also made by 'vision.sweep[0]'" in message


def test_the_run_table_has_a_layers_at_once_column_only_when_a_run_has_one(tmp_path):
    cfg = config(
        [{"method": "none"}, {"method": "dropout", "layer": 3}, {"method": "dropout", "layers_at_once": [0, 3]}]
    )
    rows = {r["run"]: r for r in table_rows(expand(cfg))}
    assert rows["dropout-L0-3-sg"]["layers_at_once"] == "0-3" and rows["dropout-L0-3-sg"]["layer"] is None
    assert rows["dropout-L3-sg"]["layers_at_once"] is None and rows["none"]["layers_at_once"] is None
    write_table(expand(cfg), tmp_path / "runs.tsv")
    table = read_table(tmp_path / "runs.tsv")
    assert table.set_index("run").loc["dropout-L0-3-sg", "layers_at_once"] == "0-3"
    assert "layers_at_once" not in swept_columns(tmp_path / "runs.tsv"), "a core column, not a swept setting"
    plain = config([{"method": "none"}, {"method": "dropout", "layer": 3}])
    assert all("layers_at_once" not in r for r in table_rows(expand(plain)))


def test_the_job_command_gives_the_trainer_its_layers_and_no_single_layer():
    cfg = config([{"method": "dropout", "layers_at_once": [0, 3, 6]}])
    run = expand(cfg)[0]
    cmd = command(cfg, run)
    train = cmd.split(" :: ")[0]
    assert "--layers-at-once 0,3,6" in train and "--layer " not in train
    assert "--run vision/digits/dropout-L0-3-6-sg/seed0" in train


def test_a_trainer_reads_the_job_s_flags_back_into_its_settings():
    import shlex

    from deepaug.domains.arguments import domain_parser, settings_from_args
    from deepaug.domains.vision.cli import COMMANDS
    from deepaug.domains.vision.train import VisionPretrainSettings

    cfg = config([{"method": "dropout", "layers_at_once": "all", "detach_p": 0.5}])
    train = command(cfg, expand(cfg)[0]).split(" :: ")[0]
    argv = shlex.split(train)[3:]  # after `python -m deepaug`
    s = settings_from_args(VisionPretrainSettings, domain_parser(COMMANDS).parse_args(argv))
    assert s.layers_at_once == tuple(range(7)) and s.layer is None and s.detach_p == 0.5


@pytest.mark.parametrize(
    "block, message",
    [
        (
            {"method": "dropout", "layer": 3, "layers_at_once": [0, 3]},
            "config key 'vision.sweep[0]': a block has `layer` (one layer per run) or `layers_at_once` (several "
            "layers in one run), not both; give each its own block",
        ),
        (
            {"method": "dropout", "layers_at_once": [0, 9]},
            "config key 'vision.sweep[0].layers_at_once': layer 9 is out of range; vision has layers 0-6 (0 stem, "
            "1-4 residual stages, 5 pooled features, 6 projection head)",
        ),
        (
            {"method": "dropout", "layers_at_once": [3]},
            "config key 'vision.sweep[0].layers_at_once': [3] is not a set of layers: list two or more layer "
            "indices, e.g. [0, 3, 6], or write all (one layer: `layer`)",
        ),
        (
            {"method": "dropout", "layers_at_once": 3},
            "config key 'vision.sweep[0].layers_at_once': 3 is not a set of layers: write all, or list two or "
            "more layer indices, e.g. [0, 3, 6]",
        ),
        (
            {"method": "dropout", "layers_at_once": [0, -1]},
            "config key 'vision.sweep[0].layers_at_once[1]': -1 is not a layer index",
        ),
    ],
    ids=["both", "out-of-range", "one-layer", "not-a-list", "negative"],
)
def test_a_bad_set_of_layers_is_one_line_naming_the_key(block, message):
    problems = refused([block]).splitlines()[1:]
    assert len(problems) == 1 and message in problems[0]


# ------------------------------------------------------------------------------ detach_p
def test_detach_p_is_spelled_in_the_id_only_away_from_its_default():
    cfg = config([{"method": "dropout", "layer": 3, "detach_p": [0.0, 0.5, 1.0]}])
    by_id = {r.id: r for r in expand(cfg)}
    assert sorted(by_id) == ["dropout-L3-sg", "dropout-L3-sg_detach_p0.0", "dropout-L3-sg_detach_p0.5"]
    assert "--detach-p 0.5" in command(cfg, by_id["dropout-L3-sg_detach_p0.5"])
    assert "--detach-p" not in command(cfg, by_id["dropout-L3-sg"]), "the default is left out of the command"


def test_the_defaults_leave_every_command_of_the_demo_as_it_was():
    """detach_p (1.0) and layers_at_once (none) are not in any command of a config that does not use them, so
    Snakemake does not run the jobs made before they existed again (their params are unchanged)."""
    cfg = validate_config(merge_config(read_yaml(REPO_CONFIG), read_yaml(DEMO)))
    assert cfg["vision"]["augment"]["detach_p"] == 1.0
    commands = [command(cfg, r) for r in expand(cfg)]
    assert commands and not any("--detach-p" in c or "--layers-at-once" in c for c in commands)
    assert all("layers_at_once" not in row for row in table_rows(expand(cfg)))


@pytest.mark.parametrize(
    "sweep, augment, where",
    [
        (
            [{"method": "dropout", "layer": 3, "stop_gradient": [True, False], "detach_p": 0.5}],
            None,
            "'vision.sweep[0]'",
        ),
        (
            [{"method": "dropout", "layer": 3, "stop_gradient": False}],
            {"detach_p": 0.5},
            "'vision.augment.detach_p' (used by 'vision.sweep[0]')",
        ),
    ],
)
def test_detach_p_below_1_without_stop_gradient_is_refused_naming_where_it_comes_from(sweep, augment, where):
    message = refused(sweep, augment)
    assert (
        f"config key {where}: detach_p 0.5 detaches a fraction of the transformed rows, which needs "
        f"stop_gradient: true, but this block makes runs with stop_gradient: false"
    ) in message


def test_a_section_wide_detach_p_is_fine_for_the_baseline_and_the_stop_gradient_runs():
    cfg = config([{"method": "none"}, {"method": "pca", "layer": [2, 5]}], {"detach_p": 0.25})
    assert sorted(r.id for r in expand(cfg)) == ["none", "pca-L2-sg", "pca-L5-sg"]
    assert all(r.augment()["detach_p"] == 0.25 for r in expand(cfg) if r.method == "pca")


# ------------------------------------------------------------------------------ tables and fingerprints
def test_the_tidy_table_has_a_run_at_several_layers_with_its_id(tmp_path, monkeypatch):
    import pandas as pd

    from deepaug.workflow.aggregate import aggregate

    monkeypatch.chdir(tmp_path)
    cfg = config(
        [{"method": "none"}, {"method": "dropout", "layer": 3}, {"method": "dropout", "layers_at_once": "all"}]
    )
    runs = expand(cfg)
    write_table(runs, "runs.tsv")
    for i, run in enumerate(runs):
        path = tmp_path / "results" / run.path
        path.mkdir(parents=True)
        (path / "eval.json").write_text(f'{{"linear_top1": {50 + i}, "dev_linear_top1": {40 + i}}}')
    aggregate("runs.tsv", "table.csv")
    table = pd.read_csv("table.csv").set_index("run")
    assert table.loc["dropout-Lall-sg", "layers_at_once"] == "all" and pd.isna(table.loc["dropout-Lall-sg", "layer"])
    assert table.loc["dropout-L3-sg", "layer"] == 3 and pd.isna(table.loc["dropout-L3-sg", "layers_at_once"])


def test_a_run_made_before_these_settings_keeps_its_fingerprint():
    """A checkpoint written before detach_p and layers_at_once existed has neither in its settings; at their
    defaults they are left out of the hash, so `checkpoints.reuse: settings` still finds it."""
    from dataclasses import asdict

    from deepaug.engine.fingerprint import explain_mismatch, fingerprint

    now = asdict(RunSettings(method="dropout", layer=3))
    before = {k: v for k, v in now.items() if k not in ("detach_p", "layers_at_once")}
    assert fingerprint(now)["settings_sha256"] == fingerprint(before)["settings_sha256"]
    changed = asdict(RunSettings(method="dropout", layer=3, detach_p=0.5))
    assert fingerprint(changed)["settings_sha256"] != fingerprint(before)["settings_sha256"]
    assert "settings differ (detach_p: None -> 0.5)" in explain_mismatch({}, {}, before, changed)
