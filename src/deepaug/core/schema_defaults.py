"""The settings' defaults, read from the config schema where each is written once (no torch, yaml only).

A settings dataclass (``RunSettings``, ``VisionPretrainSettings``, ...) takes its fields' defaults from
here, so the workflow (which fills a config from the schema) and a trainer called directly agree;
``tests/core/test_settings_schema.py`` checks that every field of the dataclasses and every setting of the
schemas are the same names with the same defaults and types.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import yaml

# The shared part of the config schema (its $defs hold the op's `augment` settings): package data at the
# base of deepaug (beside errors.py and paths.py), which the trainers and the workflow both read.
COMMON_SCHEMA = Path(__file__).resolve().parents[1] / "config.schema.yaml"


@cache
def _load(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _resolve(node: dict, own: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        defs = own.get("$defs") or {}
        node = {
            **(defs[name] if name in defs else _load(str(COMMON_SCHEMA))["$defs"][name]),
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    return node


def augment_own(augment: dict, own: dict, domain: str) -> dict:
    """The shared ``augment`` definition with a domain's ``augment_own`` values merged into its settings
    (``{pca_over: {enum: [...]}, rate: {default: 0.125}}``); ValueError for a setting or PCA mode it lacks."""
    from deepaug.core.vocabulary import PCA_OVER

    for key, node in own.items():
        if key not in augment["properties"]:
            raise ValueError(f"schema of {domain}: augment_own names {key!r}, not a setting of augment")
        unknown = sorted(set(node.get("enum", ())) - set(PCA_OVER)) if key == "pca_over" else []
        if unknown:
            raise ValueError(
                f"schema of {domain}: pca_over lists {', '.join(unknown)}, not PCA modes of the op {PCA_OVER}"
            )
        augment["properties"][key] = {**augment["properties"][key], **node}
    return augment


def schema_properties(schema_file: str | Path, *subsections: str) -> dict[str, dict]:
    """The settings of ``subsections`` (e.g. ``"model", "train"``) of a domain's ``schema.yaml``, each
    with its ``$ref`` followed: ``{name: schema node}`` (a later subsection's setting wins). For the
    common schema, a subsection is one of its ``$defs`` (``augment``)."""
    part = _load(str(schema_file))
    out: dict[str, dict] = {}
    for sub in subsections:
        node = _resolve((part.get("settings") or {}).get(sub) or (part.get("$defs") or {})[sub], part)
        if sub == "augment" and part.get("augment_own"):
            node = augment_own(copy.deepcopy(node), part["augment_own"], str(schema_file))
        for key, prop in (node.get("properties") or {}).items():
            out[key] = _resolve(prop, part)
    return out


def schema_defaults(schema_file: str | Path, *subsections: str) -> dict:
    """``{setting: default}`` of ``subsections`` (see :func:`schema_properties`)."""
    return {
        key: _typed(node) for key, node in schema_properties(schema_file, *subsections).items() if "default" in node
    }


def _typed(node: dict):
    """A default as its setting's type says (``type: number`` with ``default: 0`` is 0.0, as argparse reads it)."""
    value = node["default"]
    if node.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def domain_schema(module_file: str) -> Path:
    """The ``schema.yaml`` of the domain folder that holds ``module_file`` (a module's ``__file__``)."""
    return Path(module_file).resolve().with_name("schema.yaml")
