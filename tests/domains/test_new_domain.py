"""Adding a domain is one folder: a toy domain written to a temporary folder on ``deepaug.domains``' path
(its spec in ``__init__.py``, its config section in ``schema.yaml``) is registered, validated, given
defaults, swept and named in figures, with no edit anywhere else."""

import pytest

TOY_SPEC = """
from deepaug.domains import Domain, Metrics, command, register


class Toy(Domain):
    def n_layers(self, section):
        return int(section["model"]["depth"]) + 1

    def layer_name(self, index, n_layers=None):
        return "input" if index == 0 else f"toy{index}"

    def train_inputs(self, section, run):
        return {"data": f"data/toy/{run.dataset}.npy"}

    def train_command(self, run, inputs, out_dir, ckpt_dir, settings):
        return command("pretrain-toy", settings, data=inputs["data"], out_dir=out_dir, ckpt_dir=ckpt_dir)

    def eval_inputs(self, section, run):
        return {"data": f"data/toy/{run.dataset}.npy"}

    def eval_command(self, run, inputs, out, settings):
        return command("eval-toy", settings, model=inputs["model"], out=out)


register(Toy(name="toy", layer_map="0 input, 1-D toy layers", metrics={"contrastive": Metrics("acc", "dev_acc")},
             objectives=("contrastive",)))
"""

TOY_SCHEMA = """
description: a toy domain
settings:
  datasets: {type: array, items: {enum: [tiny]}, uniqueItems: true, minItems: 1}
  augment: {$ref: "#/$defs/augment"}
  model:
    type: object
    additionalProperties: false
    properties:
      depth: {type: integer, minimum: 1, default: 4}
  train: {$ref: "#/$defs/toy_train"}
  eval: {type: object, additionalProperties: false, properties: {}}
  resources: {$ref: "#/$defs/resources"}
$defs:
  toy_train:
    type: object
    additionalProperties: false
    properties:
      lr: {type: number, exclusiveMinimum: 0, default: 0.1}
      epochs: {type: integer, minimum: 1, default: 3}
analysis:
  toy_samples: {type: integer, minimum: 4, default: 8}
"""


@pytest.fixture
def toy_domain(tmp_path, monkeypatch):
    import deepaug.domains as domains
    from deepaug.workflow.config import load_schema

    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "__init__.py").write_text(TOY_SPEC)
    (folder / "schema.yaml").write_text(TOY_SCHEMA)
    monkeypatch.setattr(domains, "__path__", [*domains.__path__, str(tmp_path)])
    load_schema.cache_clear()
    yield domains.get("toy")
    domains._REGISTRY.pop("toy", None)
    monkeypatch.undo()
    load_schema.cache_clear()
    import sys

    sys.modules.pop("deepaug.domains.toy", None)


def _config(**toy):
    from deepaug.workflow.config import validate_config

    return validate_config({"toy": {"datasets": ["tiny"], **toy}})


def test_a_domain_folder_is_registered_after_the_papers_domains(toy_domain):
    from deepaug.domains import domain_packages, registry

    assert domain_packages()[:3] == ["vision", "text", "graph"] and domain_packages()[-1] == "toy"
    assert registry()["toy"] is toy_domain


def test_its_schema_validates_its_section_and_fills_its_defaults(toy_domain):
    from deepaug.workflow.config import ConfigError

    cfg = _config(sweep=[{"method": "none"}])
    assert cfg["toy"]["train"] == {"lr": 0.1, "epochs": 3} and cfg["toy"]["model"] == {"depth": 4}
    assert cfg["analysis"]["toy_samples"] == 8
    with pytest.raises(
        ConfigError, match=r"config key 'toy.train.momentum' is not a known setting \(allowed here: epochs, lr\)"
    ):
        _config(train={"momentum": 0.9}, sweep=[{"method": "none"}])
    with pytest.raises(ConfigError, match=r"toy.sweep\[0\].layer"):
        _config(sweep=[{"method": "dropout", "layer": 9}])  # layers 0-4 at depth 4


def test_its_settings_are_sweep_axes_and_its_layer_map_names_the_figure_ticks(toy_domain):
    import pandas as pd

    from deepaug.workflow.plotting import layer_labels_for
    from deepaug.workflow.runs import expand

    cfg = _config(
        model={"depth": 2},
        sweep=[
            {"method": "none", "seed": [0, 1]},
            {"method": "dropout", "layer": "all", "lr": [0.1, 0.3], "seed": [0, 1]},
        ],
    )
    runs = [r for r in expand(cfg) if r.domain == "toy"]
    assert len(runs) == 2 * (1 + 3 * 2)
    assert {r.id for r in runs} >= {"none", "dropout-L2-sg", "dropout-L2-sg_lr0.3"}
    assert len({r.path for r in runs}) == len(runs)
    run = next(r for r in runs if r.id == "dropout-L2-sg_lr0.3")
    cmd = toy_domain.run_command(run, f"results/{run.path}", f"checkpoints/{run.path}", {"lr": 0.3}, {})
    assert cmd == (
        f"python -m deepaug pretrain-toy --data data/toy/tiny.npy --out-dir results/{run.path} "
        f"--ckpt-dir checkpoints/{run.path} --lr 0.3 :: eval-toy --model results/{run.path}/model.pt "
        f"--out results/{run.path}/eval.json"
    )
    swept = pd.DataFrame({"layer": [r.layer for r in runs]})
    assert layer_labels_for("toy", swept, toy_domain.top_layer(cfg["toy"])) == {0: "input", 1: "toy1", 2: "toy2"}


def test_a_domain_schema_that_redefines_a_shared_key_is_refused(tmp_path, monkeypatch):
    import deepaug.domains as domains
    from deepaug.workflow.config import load_schema

    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "__init__.py").write_text(TOY_SPEC)
    (folder / "schema.yaml").write_text(TOY_SCHEMA.replace("  toy_samples:", "  text_task:"))
    monkeypatch.setattr(domains, "__path__", [*domains.__path__, str(tmp_path)])
    load_schema.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"toy/schema.yaml: defines analysis.text_task again"):
            load_schema()
    finally:
        domains._REGISTRY.pop("toy", None)
        monkeypatch.undo()
        load_schema.cache_clear()
        import sys

        sys.modules.pop("deepaug.domains.toy", None)
