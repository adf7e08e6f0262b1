"""train.ssl_method in the workflow: a sweep axis whose value brings the method's recipe (recipes.py SSL_RECIPES)
under what the section and the block set themselves; left out of a SimCLR run's command (its default); ignored by
the supervised counterpart; config/ssl-methods.yaml's runs and its figure's panels (one per method)."""

import copy

import pandas as pd
import pytest

from deepaug.workflow.config import REPO_CONFIG, merge_config, read_yaml, validate_config
from deepaug.workflow.jobs import Jobs
from deepaug.workflow.plotting import facets
from deepaug.workflow.runs import expand

DEMO = REPO_CONFIG.parent / "config" / "demo.yaml"
BASE = merge_config(read_yaml(REPO_CONFIG), read_yaml(DEMO))


def _runs(vision: dict):
    config = copy.deepcopy(BASE)
    config["vision"].update(vision)
    config = validate_config(config)
    runs = [r for r in expand(config) if r.domain == "vision"]
    return Jobs(config, runs), {(r.objective, r.id): r for r in runs}


def test_an_ssl_method_axis_brings_its_recipe_under_the_section_and_the_block():
    jobs, runs = _runs(
        {"sweep": [
            {"objective": ["contrastive", "supervised"], "method": "none", "ssl_method": ["simclr", "byol"]},
            {"method": "none", "ssl_method": "vicreg", "lr": 0.1},
        ]}
    )  # fmt: skip
    assert set(runs) == {
        ("contrastive", "none"), ("contrastive", "none_ssl_methodbyol"), ("supervised", "sup-none"),
        ("contrastive", "none_lr0.1_ssl_methodvicreg"),
    }  # fmt: skip
    simclr = jobs.train_settings(runs["contrastive", "none"])
    assert "ssl_method" not in simclr and "pred_hidden_dim" not in simclr and simclr["lr"] == 0.5
    byol = jobs.train_settings(runs["contrastive", "none_ssl_methodbyol"])
    # BYOL's recipe (byol.yaml) where the demo's section says nothing, the demo's own epochs/batch/widths kept
    assert byol["ssl_method"] == "byol" and (byol["optimizer"], byol["lr"], byol["weight_decay"]) == ("lars", 1.0, 1e-5)
    assert (byol["pred_hidden_dim"], byol["tau_base"], byol["tau_final"], byol["target_augment"]) == (
        4096,
        0.99,
        1.0,
        False,
    )
    assert (byol["proj_hidden_dim"], byol["proj_dim"], byol["epochs"], byol["batch_size"]) == (4096, 32, 2, 128)
    assert "barlow_lambda" not in byol  # another method's setting: None, left out
    vicreg = jobs.train_settings(runs["contrastive", "none_lr0.1_ssl_methodvicreg"])
    assert vicreg["lr"] == 0.1 and vicreg["optimizer"] == "lars" and vicreg["vicreg_sim_weight"] == 25.0  # block wins
    sup = jobs.train_settings(runs["supervised", "sup-none"])  # the supervised counterpart ignores the axis
    assert "ssl_method" not in sup and sup["lr"] == 0.1


def test_the_section_s_ssl_method_brings_its_recipe_under_the_section_s_own_values():
    jobs, runs = _runs({"train": {**BASE["vision"]["train"], "ssl_method": "barlow_twins", "lr": 0.05}})
    s = jobs.train_settings(runs["contrastive", "none"])
    assert (s["ssl_method"], s["lr"], s["optimizer"], s["barlow_lambda"], s["barlow_scale"]) == (
        "barlow_twins", 0.05, "lars", 0.0051, 0.1,
    )  # fmt: skip
    # a block switching that section's runs to another method: the section's recipe is undone, its own values kept
    jobs, runs = _runs(
        {"train": {**BASE["vision"]["train"], "ssl_method": "barlow_twins", "lr": 0.05},
         "sweep": [{"method": "none", "ssl_method": ["simclr", "byol"]}]}
    )  # fmt: skip
    simclr, byol = (
        jobs.train_settings(runs["contrastive", r]) for r in ("none_ssl_methodsimclr", "none_ssl_methodbyol")
    )
    assert "barlow_lambda" not in simclr and simclr["optimizer"] == "sgd" and simclr["lr"] == 0.05
    assert (byol["optimizer"], byol["lr"], byol["tau_base"], byol.get("barlow_lambda")) == ("lars", 0.05, 0.99, None)
    assert (simclr["proj_hidden_dim"], byol["proj_hidden_dim"]) == (0, 4096)


def test_a_setting_of_another_method_is_refused_in_the_config():
    config = copy.deepcopy(BASE)
    config["vision"]["train"] = {**config["vision"]["train"], "tau_base": 0.995}
    config["vision"]["sweep"] = [{"method": "none", "ssl_method": ["simclr", "byol"]}]
    with pytest.raises(
        Exception,
        match=r"'vision.train.tau_base': tau_base is a setting of ssl_method byol only, but "
        r"run vision/digits/none/seed0 trains simclr; give it in a sweep block whose ssl_method is byol",
    ):
        validate_config(config)
    config["vision"]["sweep"] = [{"method": "none", "ssl_method": "byol"}]  # only BYOL runs: accepted
    validate_config(config)


def test_the_ssl_methods_config_sweeps_every_method_and_draws_a_panel_per_method():
    config = validate_config(
        merge_config(read_yaml(REPO_CONFIG), read_yaml(REPO_CONFIG.parent / "config" / "ssl-methods.yaml"))
    )
    runs = expand(config)
    assert len(runs) == 2 * 5 * 3 * (1 + 2 * 7 * 2) and {r.domain for r in runs} == {"vision"}
    ids = {r.id for r in runs}
    assert {"dropout-L3-sg", "pca-L0-nosg", "dropout-L3-sg_ssl_methodbyol", "none_ssl_methodbarlow-twins"} <= ids
    table = pd.DataFrame(
        [{"method": r.method, "stop_gradient": r.sg, "layer": r.layer, "ssl_method": r.value("ssl_method")}
         for r in runs if r.dataset == "cifar10" and r.seed == 0]
    )  # fmt: skip
    panels = facets(table, ["ssl_method"])
    assert [key["ssl_method"] for key, _ in panels] == sorted(["simclr", "byol", "simsiam", "vicreg", "barlow_twins"])
    assert all((part["method"] == "none").sum() == 1 for _, part in panels)  # each panel: its method's baseline
