"""Workflow config validation: the JSON schema (which also carries the defaults), then what a schema
cannot express (sweep axes, layer ranges, runs made twice).

Every message names the offending key, e.g. ``config key 'vision.train.lr': 'fast' is not of type
'number'``. No heavy imports: the Snakefile uses this module.
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import yaml

from deepaug.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config.schema.yaml"


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
    _vocabulary(schema)
    for name, domain in registry().items():
        path = domain.schema_path()
        part = yaml.safe_load(path.read_text())
        _domain_augment(name, part, schema)
        own = {*(part.get("$defs") or {}), f"{name}_settings"}
        clash = sorted(own & set(schema["$defs"]))
        clash += [
            f"{shared}.{key}"
            for shared in ("analysis", "figures")
            for key in sorted(set(part.get(shared) or {}) & set(schema["properties"][shared]["properties"]))
        ]
        if clash or name in schema["properties"]:
            raise ValueError(
                f"{path}: defines {', '.join(clash) or name} again; prefix a domain's definitions and "
                f"keys with its name (<name>_...)"
            )
        schema["$defs"].update(part.get("$defs") or {})
        schema["$defs"][f"{name}_settings"] = {"properties": part["settings"]}
        # the layer map in words from the domain's spec (its layers.py), not retyped in the schema's prose
        part["description"] = f"{part.get('description', '')}; layers {domain.layer_map}".lstrip("; ")
        schema["properties"][name] = domain_section(name, part)
        for shared in ("analysis", "figures"):
            schema["properties"][shared]["properties"].update(part.get(shared) or {})
    return schema


def _vocabulary(schema: dict) -> None:
    """The op's enums and the device pattern, from :mod:`deepaug.core.vocabulary` (stated there once)."""
    from deepaug.core import vocabulary as V

    defs = schema["$defs"]
    aug = defs["augment"]["properties"]
    aug["selection"]["enum"] = list(V.SELECTIONS)
    aug["pca_grad"]["enum"] = list(V.PCA_GRADS)
    # a domain's schema may widen this (graph: `pca_over: [rows, tokens, graphs]`, see _domain_pca_over)
    aug["pca_over"]["enum"] = [m for m in V.PCA_OVER if m not in V.PCA_OVER_GROUPED]
    defs["precision"]["enum"] = list(V.PRECISIONS)
    method = defs["sweep"]["items"]["properties"]["method"]["oneOf"]
    method[0]["enum"] = method[1]["items"]["enum"] = list(V.METHODS)
    schema["properties"]["device"]["pattern"] = f"^({V.DEVICE_PATTERN})$"


def _domain_augment(name: str, part: dict, schema: dict) -> None:
    """A domain whose schema has ``augment_own`` (its own values of the shared ``augment`` settings: graph's
    ``pca_over`` enum adds ``graphs``, each graph's mean node vector) gets its own copy of the shared
    definition with those merged in (the settings dataclasses read the same, deepaug.core.schema_defaults)."""
    from deepaug.core.schema_defaults import augment_own

    own_values = part.pop("augment_own", None)
    if own_values is None:
        return
    own = augment_own(copy.deepcopy(schema["$defs"]["augment"]), own_values, name)
    part.setdefault("$defs", {})[f"{name}_augment"] = own
    part["settings"]["augment"] = {"$ref": f"#/$defs/{name}_augment"}


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
                "description": (
                    "settings of the supervised counterpart's runs (objective: supervised), over the ones above"
                ),
                "allOf": [{"$ref": f"#/$defs/{name}_settings"}],
                "additionalProperties": False,
                "properties": {key: True for key in keys if key not in fixed},
            },
        },
    }


def _is_integer(_checker, value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(_checker, value) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@lru_cache(maxsize=1)
def _validator_class():
    """Draft 2020-12, except that an integer is an int: JSON Schema counts 9.0 as an integer, but
    ``layer: [9.0]`` or ``epochs: 2.0`` would then fail inside a job (``range(2.0)``); and a number is finite:
    YAML's ``.nan`` passes every ``minimum`` (comparisons with NaN are false) and fails hours later."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number})
    return jsonschema.validators.extend(base, type_checker=checker)


def _validator(schema: dict | None = None):
    return _validator_class()(load_schema() if schema is None else schema)


def _empty_list(err) -> str:
    """An empty list drops runs without a word; say where and what to do instead."""
    path = list(err.absolute_path)
    if "sweep" in path[:-1]:
        return (
            "is an empty list, which would silently drop every run of this sweep block: list at least one "
            "value, or leave the key out to use the section's setting"
        )
    return (
        "is an empty list, which would silently drop every run of this section: list at least one "
        "value (to switch a whole domain off, set it to null, e.g. `text: null`)"
    )


def _sentence(err) -> str:
    """The schema error as a sentence (jsonschema's own wording for ``not``/``const``/``minItems``/``pattern``
    is cryptic). A schema node may word its own: ``x-name`` (a name that becomes a path, worded as
    :mod:`deepaug.paths` words it) or ``x-error`` (what the value must be)."""
    from deepaug.paths import name_problem

    own = err.schema if isinstance(err.schema, dict) else {}
    if err.validator == "minItems" and err.validator_value == 1 and err.instance == []:
        return _empty_list(err)
    if err.validator == "type" and isinstance(err.instance, float) and not _is_number(None, err.instance):
        return f"{err.instance!r} must be a finite number"
    if err.validator == "type" and err.validator_value == "integer" and isinstance(err.instance, float):
        return f"{err.instance!r} must be a whole number written without a decimal point (e.g. {int(err.instance)})"
    if "x-name" in own and err.validator in ("pattern", "type"):
        problem = name_problem(err.instance, allow_org=own["x-name"] == "org")
        if problem is not None:
            return problem
    if "x-error" in own:
        return f"{err.instance!r} {own['x-error']}"
    if err.validator == "not" and isinstance(err.validator_value, dict) and "const" in err.validator_value:
        return f"{err.instance!r} is not allowed here"
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
        fitting = [
            e
            for e in err.context
            if (_resolved(alternatives[e.schema_path[0]]).get("type") == "array") == (kind == "array")
        ]
        # of those, the ones of the value's own type: `layer: -1` is a bad integer, not a misspelt `all`
        typed = [e for e in fitting if _of_type(err, _resolved(alternatives[e.schema_path[0]]).get("type"))]
        err = best_match(typed or fitting or list(err.context))
    return err


def _resolved(node: dict) -> dict:
    """A schema node with its ``$ref`` (to ``#/$defs/<name>``) followed."""
    while isinstance(node, dict) and "$ref" in node:
        node = load_schema()["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node if isinstance(node, dict) else {}


def _of_type(err, kind) -> bool:
    if not isinstance(kind, str):
        return False
    checker = _validator_class().TYPE_CHECKER
    return kind in ("integer", "number", "string", "boolean") and checker.is_type(err.instance, kind)


def schema_errors(config: dict) -> list[str]:
    validator = _validator()
    messages = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        err = _specific(err)
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            if extra == ["num_layers"] and list(err.absolute_path)[-1:] == ["model"]:
                messages.append(
                    f"config key '{_key(list(err.absolute_path) + extra)}' is no longer a setting: the "
                    f"encoder's depth is read from the model itself; remove the key"
                )
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
    ``supervised:`` overrides keep only what they say (they are merged over the filled section). A domain's
    own defaults come first (:meth:`deepaug.domains.Domain.fill_section`: graph's ``protocol`` recipe)."""
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

    from deepaug.domains import registry

    for name, domain in registry().items():  # a domain's own defaults first (graph: its protocol's recipe)
        if isinstance(config.get(name), dict):
            domain.fill_section(config[name])
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


def sweep_errors(config: dict, made: list | None = None) -> list[str]:
    """Sweep blocks: every axis a known setting with values of its type, layers in the domain's range,
    a PCA component the batch can give, no run made by two blocks, and each run's settings consistent
    (:func:`_run_setting_errors`). The runs are appended to ``made`` when given."""
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
                messages.append(
                    f"config key '{name}.tuned[{i}]': {axis!r} is not a setting that can be tuned "
                    f"(a sweep axis such as lr or batch_size)"
                )
        for i, block in enumerate(section["sweep"]):
            where = f"{name}.sweep[{i}]"
            for axis, values in block.items():
                if axis in CORE_AXES:
                    continue
                try:
                    sub, key = axis_home(axis, section, keys)
                except KeyError:
                    allowed = sorted(set(CORE_AXES) | {k for ks in keys.values() for k in ks})
                    messages.append(
                        f"config key '{where}.{axis}': {axis!r} is not a setting that can be a sweep axis "
                        f"(axes: {', '.join(allowed)}; or <subsection>.<name>)"
                    )
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
                    messages.append(
                        f"config key '{where}.dataset': {dataset!r} is not one of this domain's datasets "
                        f"({', '.join(sorted(allowed))}); add it to `{name}.datasets`"
                    )
            if "layer" in block and "layers_at_once" in block:
                messages.append(
                    f"config key '{where}': a block has `layer` (one layer per run) or `layers_at_once` "
                    f"(several layers in one run), not both; give each its own block"
                )
            for key in ("layer", "layers_at_once"):
                if n_layers is not None and block.get(key, "all") != "all":
                    for layer in as_list(block[key]):
                        if isinstance(layer, int) and not 0 <= layer < n_layers:
                            messages.append(
                                f"config key '{where}.{key}': layer {layer} is out of range; {name} has "
                                f"layers 0-{n_layers - 1} ({domain.describe_layers(section)})"
                            )
                if block.get(key) == "all" and n_layers is None:
                    messages.append(
                        f"config key '{where}.{key}': `all` needs the model's depth, which is not known "
                        f"before the model is prepared into the work directory's data/ (check-config: "
                        f"give it --directory as given to snakemake); list the layers"
                    )
            messages += _pca_errors(name, section, block, where)
        if not messages:
            try:
                runs = expand(config, domains=[name])
            except SweepError as exc:
                messages.append(str(exc))
                continue
            messages += _run_setting_errors(name, section, runs) + domain.run_errors(name, section, runs)
            if made is not None:
                made += runs
    return messages


def _decay_epochs(value) -> list[int]:
    """``"60,75,90"`` or ``[60, 75, 90]`` -> ``[60, 75, 90]`` (the schema has checked the spelling)."""
    parts = value if isinstance(value, list) else str(value).split(",")
    return [int(p) for p in parts if str(p).strip()]


def _run_setting_errors(name: str, section: dict, runs) -> list[str]:
    """What one setting's schema cannot see, checked on every run's resolved settings so that it fails here
    rather than at the evaluation after hours of training: the supcon probe's lr decay epochs must increase
    and come before its last epoch (deepaug.domains.vision.evaluate.VisionEvalSettings.validate)."""
    out: dict[str, None] = {}
    related = {"linear_lr_decay_epochs", "linear_epochs", "probe"}
    for run in runs:
        ev = run.section.get("eval") or {}
        if "linear_lr_decay_epochs" not in ev:
            continue
        swept = any(axis.rsplit(".", 1)[-1] in related for axis, _ in run.axes)
        override = run.objective == "supervised" and related & set((section.get("supervised") or {}).get("eval") or {})
        where = f"{name}.sweep[{run.block}]" if swept else f"{name}.supervised.eval" if override else f"{name}.eval"
        value, epochs = ev["linear_lr_decay_epochs"], _decay_epochs(ev["linear_lr_decay_epochs"])
        if epochs != sorted(set(epochs)):
            out[
                f"config key '{where}.linear_lr_decay_epochs': {value!r} must list increasing epochs, e.g. \"60,75,90\""
            ] = None
        late = [m for m in epochs if m >= ev.get("linear_epochs", 0)]
        if ev.get("probe") == "supcon" and late:
            out[
                f"config key '{where}.linear_lr_decay_epochs': epoch(s) {late} are not before the last of "
                f"linear_epochs={ev['linear_epochs']}, so the lr would never decay there; give epochs below "
                f'{ev["linear_epochs"]} (SupContrast: 60,75,90 of 100) or "" for a constant lr'
            ] = None
    return list(out)


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
                    out.append(
                        f"config key '{where}.pca_component': component {k} cannot be computed from a batch "
                        f"of {rows} rows ({how}); lower it or raise the batch size"
                    )
    return out


def validate_config(config: dict) -> dict:
    """Raise :class:`ConfigError` listing every problem; return the config with the schema's defaults
    filled in (in place) when valid."""
    problems = schema_errors(config)
    if not problems:
        fill_defaults(config)
        problems = _domain_errors(config)
    if not problems:
        runs: list = []
        problems = sweep_errors(config, runs) or _nothing_to_make(runs)
    if problems:
        raise ConfigError("invalid workflow config:\n  - " + "\n  - ".join(problems))
    return config


def _domain_errors(config: dict) -> list[str]:
    from deepaug.domains import registry

    return [e for name, d in registry().items() if isinstance(config.get(name), dict) for e in d.config_errors(config)]


def _nothing_to_make(runs) -> list[str]:
    """A config whose targets would be empty: Snakemake would make an empty table (or, for `snakemake
    analysis`, nothing at all) and exit 0, so say so before any job."""
    if not runs:
        return [
            "the config makes no run: every domain is switched off (null), left out or without a sweep; give "
            "at least one domain a section with a sweep (config/demo.yaml is a small example)"
        ]
    if not any(r.objective == "contrastive" for r in runs):
        return [
            "the config makes only supervised runs (objective: supervised): they are the counterpart the "
            "contrastive runs are compared with, so neither the default target nor `snakemake analysis` "
            "would make anything; add a sweep block with objective: contrastive (the default)"
        ]
    return []


# --------------------------------------------------------------------------- config files
REPO_CONFIG = Path(__file__).resolve().parents[3] / "config.yaml"


def read_yaml(path: str | Path) -> dict:
    """A YAML config file as a dict; a syntax error, a missing file or an empty one is one line (Snakemake
    refuses an empty config file too: "Config file must be given as JSON or YAML with keys at top level")."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: YAML syntax error: {exc.problem}") from None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ConfigError(f"{path}: no such config file; give the path of a YAML file") from None
    if data is None:
        raise ConfigError(
            f"{path}: the config file is empty (or only comments), which Snakemake refuses; write at "
            f"least one key, e.g. `text: null`, or leave the file out"
        )
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


@contextmanager
def _in_directory(directory):
    """Run the body in ``directory`` (None: where we are), as Snakemake runs the Snakefile in its work
    directory (``--directory``): the text encoder's depth is read from ``data/text/models`` there."""
    if directory is None:
        yield
        return
    before = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def check_config_file(
    path: str | Path | list,
    base: str | Path | None = REPO_CONFIG,
    directory: str | Path | None = None,
    gpus: int = 8,
) -> str:
    """Validate ``path`` (or several files, merged in order) merged over ``base`` (as Snakemake will)
    and describe the runs it makes and the jobs Snakemake plans for each target.

    Raises :class:`ConfigError`; returns a short report with the number of runs per section, saying
    which sections are inherited from ``base`` (a small config that leaves a section out inherits the
    paper's whole grid for it). ``directory`` is the work directory (snakemake ``--directory``), where
    prepared encoders are looked up, and where an earlier run's benchmark files give the sweep's GPU time on
    ``gpus`` GPUs (deepaug.workflow.estimate).
    """
    from collections import Counter

    from deepaug.workflow.estimate import describe_gpu_time
    from deepaug.workflow.plan import TARGETS, describe_counts, job_counts
    from deepaug.workflow.runs import expand

    paths = [Path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    user: dict = {}
    for p in paths:
        user = merge_config(user, read_yaml(p))
    path = " + ".join(map(str, paths))
    use_base = base is not None and all(Path(base).resolve() != p.resolve() for p in paths)
    merged = merge_config(read_yaml(base), user) if use_base else user
    with _in_directory(directory):
        validate_config(merged)
        runs = expand(merged)
        jobs = job_counts(merged, runs)
    in_default = bool((merged.get("analysis") or {}).get("in_default_target"))
    counts = Counter((r.domain, r.objective) for r in runs)
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
                parts.append(
                    f"{n} {objective}" + (" (by `snakemake analysis`, not the default target)" if later else "")
                )
        lines.append(f"  {domain}: {', '.join(parts)} run(s)" + (f" ({'; '.join(notes)})" if notes else ""))
    lines.append(f"  {len(runs)} training runs in all (one job each: it trains, then evaluates)")
    lines.append("  jobs `snakemake <target> -n` plans in a fresh work directory (outputs already made are skipped):")
    lines += [f"    {target}: {describe_counts(jobs[target])}" for target in TARGETS]
    lines += describe_gpu_time(merged, runs, directory or ".", gpus)
    return "\n".join(lines)
