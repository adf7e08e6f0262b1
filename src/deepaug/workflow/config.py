"""Workflow config validation: the JSON schema (which also carries the defaults), then what a schema
cannot express (sweep axes, layer ranges, runs made twice).

Every message names the offending key, e.g. ``config key 'vision.train.lr': 'fast' is not of type
'number'``. No heavy imports: the Snakefile uses this module.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")

from deepaug.errors import ConfigError  # noqa: F401  (re-exported)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The whole config schema: the common part (``config.schema.yaml``) with every registered domain's
    section (``deepaug/domains/<name>/schema.yaml``, see :func:`domain_section`) merged in."""
    from deepaug.domains import registry

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    for name, domain in registry().items():
        path = domain.schema_path()
        part = yaml.safe_load(path.read_text())
        own = {*(part.get("$defs") or {}), f"{name}_settings"}
        clash = sorted(own & set(schema["$defs"]))
        clash += [f"{shared}.{key}" for shared in ("analysis", "figures")
                  for key in sorted(set(part.get(shared) or {}) & set(schema["properties"][shared]["properties"]))]
        if clash or name in schema["properties"]:
            raise ValueError(f"{path}: defines {', '.join(clash) or name} again; prefix a domain's definitions and "
                             f"keys with its name (<name>_...)")
        schema["$defs"].update(part.get("$defs") or {})
        schema["$defs"][f"{name}_settings"] = {"properties": part["settings"]}
        schema["properties"][name] = domain_section(name, part)
        for shared in ("analysis", "figures"):
            schema["properties"][shared]["properties"].update(part.get(shared) or {})
    return schema


def domain_section(name: str, part: dict) -> dict:
    """A domain's config section from its schema file: its settings (``settings``), a ``sweep`` of runs, the
    ``tuned`` axes and ``supervised:`` overrides of the same settings but those the file lists under
    ``not_supervised`` (text: the encoder, which both objectives share); ``null`` switches the domain off."""
    keys = {key: True for key in part["settings"]}
    fixed = set(part.get("not_supervised") or [])
    unknown = sorted(fixed - set(keys))
    if unknown:
        raise ValueError(f"schema of {name}: not_supervised names {', '.join(unknown)}, which are not settings")
    return {
        "description": part.get("description", ""),
        "type": ["object", "null"],
        "additionalProperties": False,
        "required": part.get("required", ["datasets", "sweep"]),
        "allOf": [{"$ref": f"#/$defs/{name}_settings"}],
        "properties": {
            **keys,
            "sweep": {"$ref": "#/$defs/sweep"},
            "tuned": {"$ref": "#/$defs/tuned"},
            "supervised": {
                "description": "settings of the supervised counterpart's runs (objective: supervised), over the ones above",
                "allOf": [{"$ref": f"#/$defs/{name}_settings"}],
                "additionalProperties": False,
                "properties": {key: True for key in keys if key not in fixed},
            },
        },
    }


def _validator(schema: dict | None = None):
    """Draft 2020-12, except that an integer is an int: JSON Schema counts 9.0 as an integer, but
    ``layer: [9.0]`` or ``epochs: 2.0`` would then fail inside a job (``range(2.0)``)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, type_checker=checker)(load_schema() if schema is None else schema)


def _sentence(err) -> str:
    """The schema error as a sentence (jsonschema's own wording for ``not``/``const``/``minItems`` is cryptic)."""
    if err.validator == "minItems" and err.validator_value == 1:
        return ("is an empty list, which would silently drop every run of this section: list at least one "
                "value (to switch a whole domain off, set it to null, e.g. `text: null`)")
    if err.validator == "not" and isinstance(err.validator_value, dict) and "const" in err.validator_value:
        return f"{err.instance!r} is not allowed here"
    if err.validator == "type" and err.validator_value == "integer" and isinstance(err.instance, float):
        return f"{err.instance!r} must be a whole number written without a decimal point (e.g. {int(err.instance)})"
    if err.validator == "enum":
        return f"{err.instance!r} is not one of: {', '.join(map(str, err.validator_value))}"
    if err.validator == "uniqueItems":
        return f"{err.instance!r} lists a value twice"
    return err.message


def _specific(err):
    """For a value that fits none of a ``oneOf`` (a sweep axis: one value or a list of them), the error
    of the alternative it came closest to (e.g. ``1.0 must be a whole number`` rather than ``[1.0] is
    not valid under any of the given schemas``)."""
    from jsonschema.exceptions import best_match

    while err.validator in ("oneOf", "anyOf") and err.context:
        kind = "array" if isinstance(err.instance, list) else None
        alternatives = err.validator_value
        fitting = [e for e in err.context
                   if (alternatives[e.schema_path[0]].get("type") == "array") == (kind == "array")]
        err = best_match(fitting or list(err.context))
    return err


def schema_errors(config: dict) -> list[str]:
    validator = _validator()
    messages = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        err = _specific(err)
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


def fill_defaults(config: dict) -> dict:
    """Fill in the schema's ``default:`` values, in place: every settings subsection that is missing
    is created with its defaults; a switched-off domain (``null`` or absent) stays off, and a domain's
    ``supervised:`` overrides keep only what they say (they are merged over the filled section)."""
    import copy

    schema = load_schema()

    def resolve(node):
        while isinstance(node, dict) and "$ref" in node:
            target = schema
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def properties(node):
        node = resolve(node)
        out = dict(node.get("properties") or {}) if isinstance(node, dict) else {}
        for part in (node.get("allOf") or []) if isinstance(node, dict) else []:
            for key, sub in properties(part).items():
                out[key] = sub if out.get(key) in (None, True) else out[key]
        return out

    def fill(node, instance):
        for key, sub in properties(node).items():
            sub = resolve(sub) if isinstance(sub, dict) else sub
            if not isinstance(sub, dict) or key in ("supervised", "sweep"):
                continue
            if key not in instance:
                if "default" in sub:
                    instance[key] = copy.deepcopy(sub["default"])
                    continue
                nullable = "null" in (sub.get("type") or []) if isinstance(sub.get("type"), list) else False
                if not properties(sub) or nullable:
                    continue
                instance[key] = {}
            if isinstance(instance[key], dict):
                fill(sub, instance[key])

    fill(schema, config)
    return config


def schema_keys(domain: str) -> dict[str, set]:
    """Per settings subsection of a domain (augment, train, model, eval): its setting names."""
    schema = load_schema()
    settings = schema["$defs"][f"{domain}_settings"]["properties"]
    out = {}
    for sub, node in settings.items():
        while isinstance(node, dict) and "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
        if isinstance(node, dict) and node.get("type") == "object" and "properties" in node:
            out[sub] = set(node["properties"])
    return out


def setting_schema(domain: str, sub: str, key: str) -> dict:
    schema = load_schema()
    node = schema["$defs"][f"{domain}_settings"]["properties"][sub]
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return {"$defs": schema["$defs"], **node["properties"][key]}


def sweep_errors(config: dict) -> list[str]:
    """Sweep blocks: every axis a known setting with values of its type, layers in the domain's range,
    a PCA component the batch can give, and no run made by two blocks."""
    from deepaug.domains import registry
    from deepaug.workflow.runs import CORE_AXES, SweepError, as_list, axis_home, expand, resolve_section

    messages = []
    for name, domain in registry().items():
        section = config.get(name) or {}
        if name not in (load_schema().get("properties") or {}) or not section.get("sweep"):
            continue
        keys = schema_keys(name)
        n_layers = domain.n_layers(section)
        for i, axis in enumerate(section.get("tuned") or []):
            try:
                axis_home(axis, section, keys)
            except (KeyError, ValueError):
                messages.append(f"config key '{name}.tuned[{i}]': {axis!r} is not a setting that can be tuned "
                                f"(a sweep axis such as lr or batch_size)")
        for i, block in enumerate(section["sweep"]):
            where = f"{name}.sweep[{i}]"
            for axis, values in block.items():
                if axis in CORE_AXES:
                    continue
                try:
                    sub, key = axis_home(axis, section, keys)
                except KeyError:
                    allowed = sorted(set(CORE_AXES) | {k for ks in keys.values() for k in ks})
                    messages.append(f"config key '{where}.{axis}': {axis!r} is not a setting that can be a sweep axis "
                                    f"(axes: {', '.join(allowed)}; or <subsection>.<name>)")
                    continue
                except ValueError as exc:
                    messages.append(f"config key '{where}.{axis}': {exc}")
                    continue
                validator = _validator(setting_schema(name, sub, key))
                for j, value in enumerate(as_list(values)):
                    for err in map(_specific, validator.iter_errors(value)):
                        at = f"{where}.{axis}" + (f"[{j}]" if isinstance(values, list) else "")
                        messages.append(f"config key '{at}': {_sentence(err)}")
                        break
            for dataset in as_list(block.get("dataset", [])):
                objectives = as_list(block.get("objective", "contrastive"))
                allowed = {d for o in objectives for d in resolve_section(section, o).get("datasets") or []}
                if dataset not in allowed:
                    messages.append(f"config key '{where}.dataset': {dataset!r} is not one of this domain's datasets "
                                    f"({', '.join(sorted(allowed))}); add it to `{name}.datasets`")
            if n_layers is not None and block.get("layer", "all") != "all":
                for layer in as_list(block["layer"]):
                    if isinstance(layer, int) and not 0 <= layer < n_layers:
                        messages.append(f"config key '{where}.layer': layer {layer} is out of range; {name} has "
                                        f"layers 0-{n_layers - 1} ({domain.describe_layers(section)})")
            if block.get("layer") == "all" and n_layers is None:
                messages.append(f"config key '{where}.layer': `all` needs the model's depth, which is not known "
                                f"before the model is prepared; list the layers")
            messages += _pca_errors(name, section, block, where)
        if not messages:
            try:
                expand(config, domains=[name])
            except SweepError as exc:
                messages.append(str(exc))
    return messages


def _pca_errors(name: str, section: dict, block: dict, where: str) -> list[str]:
    """A PCA component the layer cannot give: ``torch.pca_lowrank`` computes at most
    min(pca_rank, rows, features) components, and a batch has 2 x batch_size rows (two views)."""
    from deepaug.workflow.runs import as_list, resolve_section

    if "pca" not in as_list(block.get("method", "none")):
        return []
    out = []
    for objective in as_list(block.get("objective", "contrastive")):
        s = resolve_section(section, objective)
        for k in as_list(block.get("pca_component", (s.get("augment") or {}).get("pca_component", 1))):
            for batch in as_list(block.get("batch_size", (s.get("train") or {}).get("batch_size"))):
                # two views per example in contrastive training, one forward per example otherwise
                views = 2 if objective == "contrastive" else 1
                rows = views * batch if isinstance(batch, int) else None
                if isinstance(k, int) and rows is not None and k > rows:
                    how = f"{views} x train.batch_size {batch}" if views > 1 else f"train.batch_size {batch}"
                    out.append(f"config key '{where}.pca_component': component {k} cannot be computed from a batch "
                               f"of {rows} rows ({how}); lower it or raise the batch size")
    return out


def validate_config(config: dict) -> dict:
    """Raise :class:`ConfigError` listing every problem; return the config with the schema's defaults
    filled in (in place) when valid."""
    problems = schema_errors(config)
    if not problems:
        fill_defaults(config)
        problems = sweep_errors(config)
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
    from collections import Counter

    from deepaug.workflow.runs import expand

    paths = [Path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    user: dict = {}
    for p in paths:
        user = merge_config(user, read_yaml(p))
    path = " + ".join(map(str, paths))
    use_base = base is not None and all(Path(base).resolve() != p.resolve() for p in paths)
    merged = merge_config(read_yaml(base), user) if use_base else user
    validate_config(merged)
    in_default = bool((merged.get("analysis") or {}).get("in_default_target"))
    counts = Counter((r.domain, r.objective) for r in expand(merged))
    lines = [f"{path}: valid" + (f" (merged over {base}, as Snakemake does)" if merged is not user else "")]
    for domain in sorted({d for d, _ in counts}):
        notes = []
        if domain not in user and merged is not user:
            notes.append(f"inherited from {base}: set `{domain}: null` to switch it off")
        parts = []
        for objective in ("contrastive", "supervised"):
            n = counts.get((domain, objective), 0)
            if n:
                later = objective == "supervised" and not in_default
                parts.append(f"{n} {objective}" + (" (by `snakemake analysis`, not the default target)" if later else ""))
        lines.append(f"  {domain}: {', '.join(parts)} run(s)" + (f" ({'; '.join(notes)})" if notes else ""))
    total = sum(counts.values())
    lines.append(f"  {total} training runs in all, each followed by its evaluation (about {2 * total} jobs)")
    return "\n".join(lines)
