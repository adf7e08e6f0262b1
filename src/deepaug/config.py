"""Workflow config validation: the JSON schema, then checks a schema cannot express (layer ranges).

Every message names the offending key, e.g. ``config key 'vision.train.lr': 'fast' is not of type
'number'``. No heavy imports: the Snakefile uses this module.
"""

from __future__ import annotations

from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")

# Number of layer indices per vision backbone (0 stem, 1-4 stages, 5 pooled, 6 head).
VISION_LAYERS = "0 stem, 1-4 residual stages, 5 pooled features, 6 projection head"
N_VISION_LAYERS = 7
# Config sections that define a grid of runs; *_sup are the supervised counterparts.
DOMAINS = ("vision", "text", "vision_sup", "text_sup")


from .errors import ConfigError  # noqa: F401  (re-exported)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def schema_errors(config: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    messages = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            messages.append(
                f"config key '{_key(list(err.absolute_path) + [extra[0]]) if extra else _key(err.absolute_path)}' "
                f"is not a known setting (allowed here: {', '.join(allowed)})"
            )
        else:
            messages.append(f"config key '{_key(err.absolute_path)}': {err.message}")
    return messages


def text_layer_count(section: dict) -> int | None:
    """Number of layer indices of the text encoder (blocks + 2), when the config states the depth."""
    n = section.get("model", {}).get("num_layers")
    return None if n is None else int(n) + 2


def semantic_errors(config: dict) -> list[str]:
    messages = []
    for domain in ("vision", "vision_sup"):
        for i, layer in enumerate((config.get(domain) or {}).get("layers", [])):
            if isinstance(layer, int) and not 0 <= layer < N_VISION_LAYERS:
                messages.append(
                    f"config key '{domain}.layers[{i}]': layer {layer} is out of range; ResNet layers are "
                    f"0-{N_VISION_LAYERS - 1} ({VISION_LAYERS})"
                )
    text = config.get("text") or {}
    n_text = text_layer_count(text) if text else None
    for domain in ("text", "text_sup"):
        for i, layer in enumerate((config.get(domain) or {}).get("layers", [])):
            if n_text is not None and isinstance(layer, int) and not 0 <= layer < n_text:
                messages.append(
                    f"config key '{domain}.layers[{i}]': layer {layer} is out of range; an encoder with "
                    f"{n_text - 2} blocks has layers 0-{n_text - 1} (0 embeddings, 1-{n_text - 2} blocks, "
                    f"{n_text - 1} pooled sentence vector)"
                )
    for domain in DOMAINS:
        section = config.get(domain) or {}
        if section.get("methods") and set(section["methods"]) - {"none"} and not section.get("layers"):
            messages.append(f"config key '{domain}.layers': Deep Augmentation methods are listed but no layers")
    return messages


def validate_config(config: dict) -> dict:
    """Raise :class:`ConfigError` listing every problem; return the config unchanged when valid."""
    problems = schema_errors(config)
    if not problems:
        problems = semantic_errors(config)
    if problems:
        raise ConfigError("invalid workflow config:\n  - " + "\n  - ".join(problems))
    return config
