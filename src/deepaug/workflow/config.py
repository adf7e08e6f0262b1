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


from deepaug.errors import ConfigError  # noqa: F401  (re-exported)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _validator():
    """Draft 2020-12, except that an integer is an int: JSON Schema counts 9.0 as an integer, but
    ``layers: [9.0]`` or ``epochs: 2.0`` would then fail inside a job (``range(2.0)``)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, type_checker=checker)(load_schema())


def _sentence(err) -> str:
    """The schema error as a sentence (jsonschema's own wording for ``not``/``const``/``minItems`` is cryptic)."""
    if err.validator == "minItems" and err.validator_value == 1:
        return ("is an empty list, which would silently drop every run of this section: list at least one "
                "value (to switch a whole section off, set it to null, e.g. `vision_sup: null`)")
    if err.validator == "not" and isinstance(err.validator_value, dict) and "const" in err.validator_value:
        return f"{err.instance!r} is not allowed here"
    if err.validator == "type" and err.validator_value == "integer" and isinstance(err.instance, float):
        return f"{err.instance!r} must be a whole number written without a decimal point (e.g. {int(err.instance)})"
    if err.validator == "enum":
        return f"{err.instance!r} is not one of: {', '.join(map(str, err.validator_value))}"
    if err.validator == "uniqueItems":
        return f"{err.instance!r} lists a value twice"
    return err.message


def schema_errors(config: dict) -> list[str]:
    validator = _validator()
    messages = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            if extra == ["num_layers"] and list(err.absolute_path)[-1:] == ["model"]:
                messages.append(f"config key '{_key(list(err.absolute_path) + extra)}' is no longer a setting: the "
                                f"encoder's depth is read from the model itself; remove the key")
                continue
            messages.append(
                f"config key '{_key(list(err.absolute_path) + [extra[0]]) if extra else _key(err.absolute_path)}' "
                f"is not a known setting (allowed here: {', '.join(allowed)})"
            )
        else:
            messages.append(f"config key '{_key(err.absolute_path)}': {_sentence(err)}")
    return messages


# Encoder depths known without a download (blocks); others are read from a local config.json.
KNOWN_TEXT_BLOCKS = {"bert-base-uncased": 12, "bert-base-cased": 12, "bert-large-uncased": 24,
                     "bert-large-cased": 24, "roberta-base": 12, "roberta-large": 24,
                     "all-MiniLM-L6-v2": 6, "sentence-transformers/all-MiniLM-L6-v2": 6}


def text_block_count(name: str | None, search: tuple[str | Path, ...] = ("data/models",)) -> int | None:
    """Number of transformer blocks of the encoder ``name``, read from the model itself.

    The depth comes from the model, not from a second config key that could disagree with it: a
    known hub id, a local folder with a ``config.json``, or the prepared copy under ``data/models/``.
    None when it cannot be known before the model is downloaded (the training job then checks).
    """
    import json

    if not name:
        return None
    if name in KNOWN_TEXT_BLOCKS:
        return KNOWN_TEXT_BLOCKS[name]
    for folder in (Path(name), *(Path(d) / name.replace("/", "--") for d in search)):
        cfg = folder / "config.json"
        if cfg.is_file():
            data = json.loads(cfg.read_text())
            for key in ("num_hidden_layers", "n_layers", "num_layers"):
                if isinstance(data.get(key), int):
                    return data[key]
    return None


def text_layer_count(section: dict) -> int | None:
    """Number of layer indices of the text encoder (blocks + 2: embeddings and the pooled vector)."""
    n = text_block_count((section.get("model") or {}).get("name"))
    return None if n is None else n + 2


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
        messages += _pca_errors(domain, section)
    return messages


def _pca_errors(domain: str, section: dict) -> list[str]:
    """A PCA component the layer cannot give: ``torch.pca_lowrank`` computes at most
    min(pca_rank, rows, features) components, and a batch has 2 x batch_size rows (two views)."""
    if "pca" not in (section.get("methods") or []):
        return []
    k = (section.get("augment") or {}).get("pca_component", 1)
    batch = (section.get("train") or {}).get("batch_size")
    rows = 2 * batch if isinstance(batch, int) else None
    if isinstance(k, int) and rows is not None and k > rows:
        return [f"config key '{domain}.augment.pca_component': component {k} cannot be computed from a batch of "
                f"{rows} rows (2 x train.batch_size {batch}); lower it or raise the batch size"]
    return []


def validate_config(config: dict) -> dict:
    """Raise :class:`ConfigError` listing every problem; return the config unchanged when valid."""
    problems = schema_errors(config)
    if not problems:
        problems = semantic_errors(config)
    if problems:
        raise ConfigError("invalid workflow config:\n  - " + "\n  - ".join(problems))
    return config


# --------------------------------------------------------------------------- config files
REPO_CONFIG = Path(__file__).resolve().parents[3] / "config.yaml"


def read_yaml(path: str | Path) -> dict:
    """A YAML config file as a dict; a syntax error is one line with file:line:column."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: YAML syntax error: {exc.problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of keys to values, got a {type(data).__name__}")
    return data


def merge_config(base: dict, override: dict) -> dict:
    """``override`` merged over ``base`` the way Snakemake merges ``--configfile`` over the Snakefile's
    ``configfile:`` (``snakemake.utils.update_config``): mappings recursively, anything else replaced."""
    import copy

    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in override.items():
        out[key] = merge_config(out.get(key, {}), value) if isinstance(value, dict) else copy.deepcopy(value)
    return out


def check_config_file(path: str | Path | list, base: str | Path | None = REPO_CONFIG) -> str:
    """Validate ``path`` (or several files, merged in order) merged over ``base`` (as Snakemake will)
    and describe the runs it makes.

    Raises :class:`ConfigError`; returns a short report with the number of runs per section, saying
    which sections are inherited from ``base`` (a small config that leaves a section out inherits the
    paper's whole grid for it).
    """
    from deepaug.workflow.runs import grid

    paths = [Path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    user: dict = {}
    for p in paths:
        user = merge_config(user, read_yaml(p))
    path = " + ".join(map(str, paths))
    use_base = base is not None and all(Path(base).resolve() != p.resolve() for p in paths)
    merged = merge_config(read_yaml(base), user) if use_base else user
    validate_config(merged)
    in_default = bool((merged.get("analysis") or {}).get("in_default_target"))
    lines, total = [f"{path}: valid" + (f" (merged over {base}, as Snakemake does)" if merged is not user else "")], 0
    for domain in DOMAINS:
        section = merged.get(domain) or {}
        n = len(grid(domain, section)) if section.get("datasets") else 0
        total += n
        notes = []
        if domain not in user and merged is not user and n:
            notes.append(f"inherited from {base}: set `{domain}: null` to switch it off")
        if domain.endswith("_sup") and n and not in_default:
            notes.append("made by `snakemake analysis`, not by the default target")
        lines.append(f"  {domain}: {n} run{'s' if n != 1 else ''}" + (f" ({'; '.join(notes)})" if notes else ""))
    lines.append(f"  {total} training runs in all, each followed by its evaluation (about {2 * total} jobs)")
    return "\n".join(lines)
