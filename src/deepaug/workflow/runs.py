"""The run table: the config's sweep blocks expanded into one row per run (no heavy imports: the
Snakefile uses this module, like a sample sheet).

A domain section of the config (``vision:``, ``text:``, ...) holds the settings of its runs (``augment``,
``model``, ``train``, ``eval``, ...; the schema fills in what it leaves out), the overrides of the
supervised counterpart (``supervised:``) and ``sweep:``, a list of blocks. Every key of a block is an
axis and takes a value or a list; a block is the product of its lists; the sweep is the union of its
blocks. An axis is a setting, by its name (``lr``, ``rate``, ``p``, ``width``, ...) or, where two
subsections share a name, by ``<subsection>.<name>`` (``eval.precision``), or one of ``objective``,
``dataset``, ``method``, ``layer`` (a list, or ``all``), ``stop_gradient`` and ``seed``. A block may give
``layers_at_once`` (``all``, or a list of two or more layers: one set, not an axis) instead of ``layer``:
its runs apply the op at each of those layers at once (:mod:`deepaug.core.at_layers`).

A run's id spells its Deep Augmentation setting and every axis whose value differs from the
section's default: ``none`` (the baseline), ``dropout-L3-sg``, ``dropout-L3-sg_p1.0_rate0.25``;
``dropout-Lall-sg`` (every layer at once), ``dropout-L0-3-6-sg`` (layers 0, 3 and 6 at once);
``sup-`` in front for the supervised counterpart. Its directory is
``{domain}/{dataset}/{id}/seed{seed}``. The table is the authority: nothing parses a path back.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

# Which Deep Augmentation settings matter for which method (others are left out of the run): the op's vocabulary.
from deepaug.core.settings import without_quiet_defaults
from deepaug.core.vocabulary import AUGMENT_KEYS, LAYERS_AT_ONCE, OP_AXES, layers_flag, layers_label
from deepaug.paths import run_id, safe_name

CORE_AXES = ("objective", "dataset", "method", "layer", LAYERS_AT_ONCE, "stop_gradient", "seed")
# Settings subsections whose keys can be sweep axes, in the order a plain name is looked up.
AXIS_SECTIONS = ("augment", "train", "model", "eval")
TABLE_COLUMNS = ["domain", "dataset", "objective", "run", "setting", "seed", "method", "layer", "stop_gradient"]
# How the run table spells a swept setting that applies to a run and is null there (e.g. text's
# model.hidden_dropout: null, the pretrained config's rate); an empty cell means "does not apply".
NULL_CELL = "default"
# A core column that the run table (and the tidy tables) have only when a run has a value there.
OPTIONAL_COLUMNS = [LAYERS_AT_ONCE]


def analysis_dir(domain: str, dataset: str, setting: str, seed) -> str:
    """Where the analysis of one setting and seed goes (of its dev-selected run; see Domain.analyze_command)."""
    return f"results/analysis/{domain}/{dataset}/{setting}/seed{seed}"


@dataclass(frozen=True)
class Run:
    """One row of the run table."""

    domain: str
    dataset: str
    objective: str
    id: str
    seed: int
    method: str
    layer: int | None
    stop_gradient: bool | None
    axes: tuple = ()  # ((name, value), ...): the other axes this run's block set (relevant ones only)
    block: int = 0  # index of the sweep block that made it
    setting: str = ""  # the id without the domain's tuned axes: the runs a dev-selection chooses among
    section: dict = field(default=None, compare=False, hash=False, repr=False)  # resolved settings
    layers: tuple = ()  # layers_at_once: the layers the op transforms at once (then `layer` is None)
    layers_label: str = ""  # how the id and the table spell them: all, 0-3-6 (vocabulary.layers_label)

    @property
    def path(self) -> str:
        return f"{self.domain}/{self.dataset}/{self.id}/seed{self.seed}"

    @property
    def analysis_dir(self) -> str:
        return analysis_dir(self.domain, self.dataset, self.setting, self.seed)

    @property
    def sg(self) -> str | None:
        return None if self.stop_gradient is None else ("sg" if self.stop_gradient else "nosg")

    def augment(self) -> dict:
        """The Deep Augmentation settings of the run (the flags of its trainer; a setting that came after
        runs were made is left out at its default, so that their commands stay the same)."""
        if self.method == "none":
            return {"method": "none"}
        aug = self.section.get("augment") or {}
        out = {"method": self.method, "layer": self.layer, "stop_gradient": self.stop_gradient}
        if self.layers:
            out[LAYERS_AT_ONCE] = layers_flag(self.layers)
        out.update({k: v for k, v in aug.items() if k in OP_AXES[self.method]})
        return without_quiet_defaults(out)

    def value(self, name: str) -> Any:
        """The value of setting ``name`` (plain or ``sub.name``) this run trains with."""
        sub, key = axis_home(name, self.section)
        return (self.section.get(sub) or {}).get(key)


def resolve_section(section: dict, objective: str) -> dict:
    """The settings of one objective: the section, with ``supervised:`` merged over it for the
    supervised counterpart (mappings recursively, anything else replaced)."""
    base = copy.deepcopy({k: v for k, v in section.items() if k not in ("sweep", "supervised", "tuned")})
    if objective == "supervised":
        base = _merge(base, section.get("supervised") or {})
    return base


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else copy.deepcopy(value)
    return out


def axis_home(name: str, section: dict, schema_keys: dict | None = None) -> tuple[str, str]:
    """(subsection, key) where axis ``name`` lives; ``sub.key`` names it directly. KeyError when no
    subsection has it, ValueError when a plain name is in several (the message says how to write it)."""
    if "." in name:
        sub, key = name.split(".", 1)
        keys = (schema_keys or {}).get(sub)
        if sub not in AXIS_SECTIONS or (keys is not None and key not in keys):
            raise KeyError(name)
        return sub, key
    if name in AUGMENT_KEYS:
        return "augment", name
    homes = [sub for sub in AXIS_SECTIONS if name in ((schema_keys or {}).get(sub) or (section.get(sub) or {}))]
    if not homes:
        raise KeyError(name)
    if len(homes) > 1:
        raise ValueError(
            f"{name!r} is a setting of {' and '.join(homes)}: write {' or '.join(f'{h}.{name}' for h in homes)}"
        )
    return homes[0], name


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class SweepError(ValueError):
    """A sweep that cannot be expanded (message names the config key)."""


def expand_block(domain: str, section: dict, block: dict, index: int, n_layers=None) -> list[Run]:
    """The runs of one sweep block of ``section`` (the domain's config section)."""
    keys = list(block)
    out: dict[tuple, Run] = {}
    # layers_at_once is one value (a set of layers), not an axis of several
    for combo in itertools.product(*([block[k]] if k == LAYERS_AT_ONCE else as_list(block[k]) for k in keys)):
        values = dict(zip(keys, combo))
        objective = values.pop("objective", "contrastive")
        resolved = resolve_section(section, objective)
        method = values.pop("method", "none")
        datasets = as_list(values.pop("dataset")) if "dataset" in values else list(resolved.get("datasets") or [])
        seed = values.pop("seed", 0)
        relevant = OP_AXES[method]
        layer = values.pop("layer", None)
        at_once = values.pop(LAYERS_AT_ONCE, None)
        sg = values.pop("stop_gradient", None)
        if method == "none":
            layer = at_once = sg = None
        else:
            if layer is None and at_once is None:
                raise SweepError(
                    f"config key '{domain}.sweep[{index}]': method {method!r} needs a layer (an axis "
                    f"`layer: [..]` or `layer: all`, or `layers_at_once: [..]` for several layers in one run)"
                )
            sg = True if sg is None else sg
        spelled = {}
        if (domain_spec := _registered(domain)) is not None:  # e.g. vision: an ssl_method axis brings its recipe
            values = domain_spec.run_axes(resolved, objective, values)
        for name, value in values.items():
            sub, key = axis_home(name, resolved)
            if sub == "augment" and key not in relevant:
                continue  # e.g. a dropout rate for a PCA run: no such setting
            default = (resolved.get(sub) or {}).get(key)
            resolved.setdefault(sub, {})[key] = value
            if value != default or type(value) is not type(default):
                spelled[name] = value
        _check_detach(domain, index, resolved, method, sg, bool({"detach_p", "augment.detach_p"} & set(values)))
        layers = list(range(n_layers)) if layer == "all" and n_layers else as_list(layer)
        together = ()
        if at_once is not None:
            together = tuple(range(n_layers)) if at_once == "all" and n_layers else tuple(sorted(at_once))
            layers = [layers_label(together, n_layers)]  # one run: the id spells the set
        tuned = set(section.get("tuned") or [])
        untuned = {k: v for k, v in spelled.items() if k not in tuned}
        for dataset, lay in itertools.product(datasets, layers):
            # the dataset names a folder of results/ and checkpoints/ (which a failed run's clean-up deletes)
            safe_name(dataset, f"config key '{domain}.datasets'")
            rid = run_id(objective, method, lay, sg, spelled)  # lay: a layer, or the label of the layers at once
            run = Run(
                domain,
                dataset,
                objective,
                rid,
                int(seed),
                method,
                None if together else lay,
                sg,
                axes=tuple(sorted(spelled.items())),
                block=index,
                setting=run_id(objective, method, lay, sg, untuned),
                section=resolved,
                layers=together,
                layers_label=lay if together else "",
            )
            out.setdefault((dataset, rid, run.seed), run)
    return list(out.values())


def _registered(domain: str):
    from deepaug.domains import registry

    return registry().get(domain)


def _check_detach(domain: str, index: int, resolved: dict, method: str, sg, in_block: bool) -> None:
    """A ``detach_p`` below 1 detaches a fraction of the transformed rows: refused for a run without
    stop-gradient (nothing is detached there), naming where the value comes from."""
    detach_p = (resolved.get("augment") or {}).get("detach_p", 1.0)
    if method == "none" or sg or detach_p >= 1.0:
        return
    where = (
        f"'{domain}.sweep[{index}]'" if in_block else f"'{domain}.augment.detach_p' (used by '{domain}.sweep[{index}]')"
    )
    raise SweepError(
        f"config key {where}: detach_p {detach_p} detaches a fraction of the transformed rows, which needs "
        f"stop_gradient: true, but this block makes runs with stop_gradient: false; give detach_p in a block "
        f"with stop_gradient: true"
    )


def expand(config: dict, domains=None) -> list[Run]:
    """Every run of the config: the union of every domain section's sweep blocks. Two blocks that
    make the same run are an error naming both."""
    from deepaug.domains import registry

    known = registry()
    runs: list[Run] = []
    for name, domain in known.items():
        if domains is not None and name not in domains:
            continue
        section = config.get(name) or {}
        if not section.get("sweep"):
            continue
        n_layers = domain.n_layers(section)
        seen: dict[tuple, int] = {}
        for i, block in enumerate(section["sweep"]):
            for run in expand_block(name, section, block, i, n_layers):
                key = (run.dataset, run.id, run.seed)
                if key in seen:
                    raise SweepError(
                        f"config key '{name}.sweep[{i}]': run {run.path} is also made by "
                        f"'{name}.sweep[{seen[key]}]'; remove it from one of the two blocks"
                    )
                seen[key] = i
                runs.append(run)
    return runs


def optional_columns(runs: list[Run]) -> list[str]:
    """The :data:`OPTIONAL_COLUMNS` some run has a value in (a config without layers at once has none)."""
    return [LAYERS_AT_ONCE] if any(r.layers for r in runs) else []


def axis_columns(runs: list[Run]) -> list[str]:
    """The axis columns of the table beyond the core ones, in a stable order."""
    return sorted({name for r in runs for name, _ in r.axes})


def table_rows(runs: list[Run]) -> list[dict]:
    """One dict per run: the core columns, every extra axis (the value the run trains with where it
    applies to the run, :data:`NULL_CELL` where that value is null, else empty), and its directory under
    results/."""
    extra = axis_columns(runs)
    swept: dict[str, set] = {}
    for r in runs:
        swept.setdefault(r.domain, set()).update(name for name, _ in r.axes)
    rows = []
    for r in runs:
        row = {
            "domain": r.domain,
            "dataset": r.dataset,
            "objective": r.objective,
            "run": r.id,
            "setting": r.setting,
            "seed": r.seed,
            "method": r.method,
            "layer": r.layer,
            "stop_gradient": r.sg,
            **{name: r.layers_label or None for name in optional_columns(runs)},
        }
        for name in extra:
            if name not in swept.get(r.domain, set()):
                row[name] = None  # swept in another domain only (where it may not even exist)
                continue
            sub, key = axis_home(name, r.section)
            applies = not (sub == "augment" and key not in OP_AXES[r.method])
            value = r.value(name) if applies else None
            # a setting that applies but is null (text's hidden_dropout: the pretrained config's rate) is a value
            # of its own, not an empty cell (which says the setting does not apply and puts the run in every panel)
            row[name] = NULL_CELL if applies and value is None else value
        row["dir"] = f"results/{r.path}"
        rows.append(row)
    return rows


def table_text(runs: list[Run]) -> str:
    """The text of results/runs.tsv: tab-separated, empty cells for settings that do not apply. A cell with
    a tab, a line break or a quote is quoted as CSV quotes (pandas reads it back), so a row never splits."""
    columns = TABLE_COLUMNS + optional_columns(runs) + axis_columns(runs) + ["dir"]
    lines = ["\t".join(map(_cell, columns))]
    for row in table_rows(runs):
        lines.append("\t".join("" if row[c] is None else _cell(row[c]) for c in columns))
    return "\n".join(lines) + "\n"


def write_table(runs: list[Run], out) -> None:
    """results/runs.tsv: the run table (:func:`table_text`)."""
    from deepaug.io import atomic_path

    with atomic_path(out) as tmp:
        tmp.write_text(table_text(runs))


def _cell(value) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    # Python's csv module leaves a lone "\r" unquoted, which readers still split a row on: quote here
    if any(c in text for c in '\t\n\r"'):
        return '"' + text.replace('"', '""') + '"'
    return text


def read_table(path):
    """The run table as a DataFrame (``layer`` as a nullable integer); an empty or header-only table is one
    line naming the file (a table the run_table rule wrote always has a header and a row per run)."""
    import pandas as pd

    from deepaug.errors import DataValidationError

    fix = "delete it and run snakemake again, which writes it from the config"
    try:
        df = pd.read_csv(path, sep="\t", keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: the run table is empty; {fix}") from None
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(f"{path}: not a run table (no column {', '.join(missing)}); {fix}")
    if df.empty:
        raise DataValidationError(f"{path}: the run table lists no runs; {fix}")
    df["layer"] = df["layer"].astype("Int64")
    return df


def swept_columns(path) -> list[str]:
    """The axis columns of a written run table beyond the core ones (e.g. p, rate, lr)."""
    import csv

    with open(path, newline="") as fh:
        header = next(csv.reader(fh, delimiter="\t"), [])
    return [c for c in header if c not in TABLE_COLUMNS + OPTIONAL_COLUMNS and c != "dir"]
