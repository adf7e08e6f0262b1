"""Each setting is written once: the settings dataclasses take their defaults from the config schema
(deepaug.core.schema_defaults). This fails if the two ever differ: a setting in one and not the other, a
different default, or a type that does not match."""

from __future__ import annotations

import dataclasses

import pytest

from deepaug.core.schema_defaults import COMMON_SCHEMA, schema_properties
from deepaug.core.settings import RunSettings

# Fields a trainer or evaluation gets from the run, not from a domain's settings: the run table's axes
# (method, layer or layers_at_once, stop_gradient, objective, seed), the run's path, and the config's
# top-level `device` and `checkpoints:` (checked against those below).
RUN_LEVEL = {
    "run",
    "method",
    "layer",
    "layers_at_once",
    "stop_gradient",
    "objective",
    "seed",
    "device",
    "keep_checkpoints",
    "reuse_finished",
    "tracking",
}
# Fields a direct call may set that the workflow leaves at the default (no config key).
CLI_ONLY = {"VisionEvalSettings": {"batch_size"}}
# Defaults that still differ (each decided on its reference in a commit of its own).
KNOWN_DRIFT: set = set()  # (class, field); none since the three were decided
TYPES = {"integer": "int", "number": "float", "boolean": "bool", "string": "str"}


def _cases():
    from deepaug.domains import get
    from deepaug.domains.graph.evaluate import GraphEvalSettings
    from deepaug.domains.graph.train import GraphPretrainSettings
    from deepaug.domains.text.evaluate import TextEvalSettings
    from deepaug.domains.text.train import TextPretrainSettings
    from deepaug.domains.vision.evaluate import VisionEvalSettings
    from deepaug.domains.vision.train import VisionPretrainSettings

    out = []
    for _domain, pretrain, evaluate in (
        ("vision", VisionPretrainSettings, VisionEvalSettings),
        ("text", TextPretrainSettings, TextEvalSettings),
        ("graph", GraphPretrainSettings, GraphEvalSettings),
    ):
        # the `model:` settings are trainer flags but those that name the model's files (text: name)
        model_flags, files = get(_domain).model_flags, set(get(_domain).model_files)
        schema = pretrain.__module__  # a module of the domain's folder: its schema.yaml is beside it
        import sys
        from pathlib import Path

        path = Path(sys.modules[schema].__file__).with_name("schema.yaml")
        subs = ("augment",) + (("model",) if model_flags else ()) + ("train",)
        out += [(pretrain, path, subs, files), (evaluate, path, ("eval",), set())]
    return out


def _annotation(node: dict) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        return " | ".join("None" if k == "null" else TYPES[k] for k in kind)
    if kind is None:  # an enum or a oneOf of spellings (the CLI takes text)
        return "str"
    return TYPES[kind]


@pytest.mark.parametrize("cls,path,subs,files", _cases(), ids=lambda v: getattr(v, "__name__", None))
def test_dataclass_and_schema_state_the_same_settings(cls, path, subs, files):
    props = {k: v for k, v in schema_properties(path, *subs).items() if k not in files}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    own = set(fields) - RUN_LEVEL - CLI_ONLY.get(cls.__name__, set())
    assert sorted(set(props) - set(fields)) == [], "settings in the schema, not in the dataclass"
    assert sorted(own - set(props)) == [], "fields of the dataclass, not in the schema"
    for key, node in props.items():
        field = fields[key]
        assert field.type.replace("Optional", "") == _annotation(node), f"{cls.__name__}.{key}: type"
        if (cls.__name__, key) in KNOWN_DRIFT:
            assert field.default != node["default"], f"{cls.__name__}.{key} agrees now: drop it from KNOWN_DRIFT"
            continue
        default = node["default"]
        if node.get("type") == "number" and isinstance(default, int):
            default = float(default)
        assert field.default == default and type(field.default) is type(default), f"{cls.__name__}.{key}: default"


def test_run_level_defaults_match_the_config():
    from deepaug.workflow.config import load_schema

    top = load_schema()["properties"]
    s = RunSettings()
    assert s.device == top["device"]["default"]
    assert s.keep_checkpoints == top["checkpoints"]["properties"]["keep"]["default"]
    assert s.reuse_finished == top["checkpoints"]["properties"]["reuse"]["default"]
    assert s.tracking == top["tracking"]["default"]
    assert set(schema_properties(COMMON_SCHEMA, "augment")) <= {f.name for f in dataclasses.fields(RunSettings)}


def test_the_op_vocabulary_is_the_schema_s():
    from deepaug.core import vocabulary as V
    from deepaug.workflow.config import load_schema

    schema = load_schema()
    aug = schema["$defs"]["augment"]["properties"]
    assert aug["selection"]["enum"] == list(V.SELECTIONS)
    assert set(aug["pca_over"]["enum"]) | set(V.PCA_OVER_GROUPED) == set(V.PCA_OVER)
    assert "graphs" in schema["$defs"]["graph_augment"]["properties"]["pca_over"]["enum"]
    assert V.AUGMENT_KEYS == set(aug)


def test_a_domain_s_own_pca_modes_are_accepted_there_only():
    import copy

    from deepaug.errors import ConfigError
    from deepaug.workflow.config import REPO_CONFIG, read_yaml, validate_config

    base = read_yaml(REPO_CONFIG)
    graph = copy.deepcopy(base)
    graph["graph"].setdefault("augment", {})["pca_over"] = "graphs"
    validate_config(graph)  # graph's op has the graphs mode (PCA over each graph's mean node vector)
    vision = copy.deepcopy(base)
    vision["vision"].setdefault("augment", {})["pca_over"] = "graphs"
    with pytest.raises(ConfigError, match="'graphs' is not one of"):
        validate_config(vision)
