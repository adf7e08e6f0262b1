"""The domains (vision, text, ...) as plug-ins: each states once what the workflow needs to know of it.

A domain is one folder, ``deepaug/domains/<name>/`` (every sub-package here is found, no list to edit),
whose ``__init__.py`` defines a :class:`Domain` subclass and registers an instance with :func:`register`.
That file must stay light (no torch, no transformers: the Snakefile imports it); the heavy modules of
the folder (data, models, train, evaluate, analysis) are only named in the commands it returns. Its
``schema.yaml`` is its config section (merged into the common schema by
:func:`deepaug.workflow.config.load_schema`). Adding a domain is that folder, an env file under
``envs/`` and a section of the config: the workflow's rules are generic and ask the domain for inputs
and commands.

The workflow calls a domain with a :class:`deepaug.workflow.runs.Run` (one row of the run table:
domain, dataset, objective, the run's settings, seed, directory).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from importlib import import_module

OBJECTIVES = ("contrastive", "supervised")
DEEPAUG = "python -m deepaug"  # how every job calls the library (rules/common.smk puts src/ on PYTHONPATH)
STAGE_SEPARATOR = "::"  # between the stages of one invocation (deepaug.cli.main)
# Every sub-package of this folder is a domain that registers itself (imported on first use of the
# registry); they are listed in the paper's order, then any other by name.
PAPER_ORDER = ("vision", "text", "graph")

_REGISTRY: dict[str, Domain] = {}


def register(domain: Domain) -> Domain:
    _REGISTRY[domain.name] = domain
    return domain


def domain_packages() -> list[str]:
    """The names of the domain folders (packages) under ``deepaug/domains/``."""
    import pkgutil

    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)
    return [n for n in PAPER_ORDER if n in found] + [n for n in found if n not in PAPER_ORDER]


def _load() -> None:
    for name in domain_packages():
        if name not in _REGISTRY:
            import_module(f"deepaug.domains.{name}")


def registry() -> dict[str, Domain]:
    _load()
    return dict(_REGISTRY)


def metric_table() -> dict[tuple[str, str], Metrics]:
    """``{(domain, objective): Metrics}`` of every registered domain: what the analyses score and choose by
    (handed to :mod:`deepaug.analysis`, which reads no registry itself)."""
    return {(name, objective): m for name, domain in registry().items() for objective, m in domain.metrics.items()}


def get(name: str) -> Domain:
    domains = registry()
    if name not in domains:
        raise KeyError(f"unknown domain {name!r} (known: {', '.join(sorted(domains))})")
    return domains[name]


def option(key: str, *values) -> str:
    """``--key-name v1 v2 ...``: the key with dashes, each value quoted, a bool spelled ``true``/``false``."""
    spelled = (str(v).lower() if isinstance(v, bool) else str(v) for v in values)
    return f"--{key.replace('_', '-')} " + " ".join(shlex.quote(v) for v in spelled)


def flags(settings: dict) -> str:
    """{'batch_size': 256, 'stop_gradient': True} -> '--batch-size 256 --stop-gradient true' (None: left out)."""
    return " ".join(option(key, value) for key, value in settings.items() if value is not None)


def command(stage: str, settings: dict | None = None, **arguments) -> str:
    """``python -m deepaug <stage> --<argument> <value> ... <settings as flags>`` (see :func:`option`); a list
    is one argument with several values."""
    parts = [f"{DEEPAUG} {stage}"]
    parts += [option(key, *(value if isinstance(value, list) else [value])) for key, value in arguments.items()]
    if settings:
        parts.append(flags(settings))
    return " ".join(parts)


def stages(*commands: str) -> str:
    """``python -m deepaug a ...`` and ``python -m deepaug b ...`` as one invocation, ``python -m deepaug
    a ... :: b ...``: the stages run in order in one process, which starts Python, torch and the data
    once instead of once per stage."""
    parts = []
    for command in commands:
        if not command.startswith(DEEPAUG + " "):
            raise ValueError(f"not a {DEEPAUG!r} command: {command!r}")
        parts.append(command[len(DEEPAUG) + 1 :])
    return f"{DEEPAUG} " + f" {STAGE_SEPARATOR} ".join(parts)


@dataclass(frozen=True)
class Layer:
    """One index of a domain's layer map (``domains/<name>/layers.py`` states the map once, as data; the
    spec, the model's ``deepaug_layers()`` and the messages read it)."""

    name: str  # short, for figure ticks ("stage1")
    description: str  # in words, for messages and the model's layer map ("stage 1")
    group: str = ""  # consecutive layers of one group are described as a range ("1-4 residual stages")


def describe(layers) -> str:
    """The layer map in words: ``0 stem, 1-4 residual stages, 5 pooled features, 6 projection head``."""
    parts, i = [], 0
    while i < len(layers):
        group = layers[i].group
        if not group:
            parts.append(f"{i} {layers[i].description}")
            i += 1
            continue
        j = i
        while j + 1 < len(layers) and layers[j + 1].group == group:
            j += 1
        parts.append(f"{i}-{j} {group}")
        i = j + 1
    return ", ".join(parts)


@dataclass(frozen=True)
class Metrics:
    """What a run of one objective is scored by: ``test`` is reported, ``dev`` is what every choice
    (best setting, best layer, tuned hyperparameters) is made by."""

    test: str
    dev: str


@dataclass
class Domain:
    """What the workflow needs of a domain. Subclasses fill in the data, train, evaluate and analyse
    commands; the fields state the domain's facts once."""

    name: str
    # the layer map in words for any depth (its data: layers(); e.g. "0 embeddings, 1-L blocks, L+1 ...")
    layer_map: str
    metrics: dict[str, Metrics]  # objective -> metrics
    env: str = "train.yaml"  # envs/<env> for its training, evaluation and analysis jobs
    data_env: str = "data.yaml"  # envs/<data_env> for its data preparation jobs
    task_figure: bool = False  # also a per-task heat map of the layer sweep (text: one column per STS task)
    model_flags: bool = True  # the `model:` settings are trainer flags
    # `model:` settings that name the model's files rather than a trainer flag (text: `name`, the prepared
    # folder, given to the trainer as --model-dir)
    model_files: tuple[str, ...] = ()
    # the evaluation is seeded by the run's seed (vision: the probe's initialisation and batches); otherwise by
    # its own `eval.seed` setting where it has one (graph: the same CV folds for every run, so runs pair up)
    eval_seeded: bool = False
    objectives: tuple[str, ...] = field(default=OBJECTIVES)

    # ---- facts that depend on the config section
    def fill_section(self, section: dict) -> None:
        """Fill in, in place and before the schema's ``default:`` values, the settings that the section's own keys
        imply (graph: the recipe its ``protocol`` names); a key the section sets is kept. Default: nothing."""

    def run_axes(self, resolved: dict, objective: str, axes: dict) -> dict:
        """A sweep block's ``axes`` (name -> value) for one run of ``objective``, before they are written into the run's
        ``resolved`` section: the domain may drop those the objective ignores and write, in place, the settings an
        axis implies (vision: an ``ssl_method`` axis brings the method's recipe). Default: the axes as given."""
        return axes

    def config_errors(self, config: dict) -> list[str]:
        """Problems of the whole (filled-in) config that only this domain can see, each one line naming its config
        key (vision: datasets that are neither registered nor image folders, ImageNet without data.imagenet_root).
        Default: none."""
        return []

    def run_errors(self, name: str, section: dict, runs) -> list[str]:
        """Problems of the expanded runs (each with its resolved settings) that only this domain can see, each one
        line naming its config key (text: standard dropout at the targeted layer of a baseline; vision: a setting of
        one SSL method given to a run of another). Default: none."""
        return []

    def layers(self, section: dict) -> tuple[Layer, ...] | None:
        """The layer map of the section's model, from the domain's ``layers.py`` (None: not known before the
        model is prepared)."""
        raise NotImplementedError

    def layers_of_length(self, n_layers: int) -> tuple[Layer, ...] | None:
        """The layer map that has ``n_layers`` indices (for figure ticks, which know only the length)."""
        return None

    def n_layers(self, section: dict) -> int | None:
        """Number of layer indices (None: not known before the model is prepared)."""
        layers = self.layers(section)
        return None if layers is None else len(layers)

    def schema_path(self):
        """``schema.yaml`` beside the domain's ``__init__.py``: its config section (merged by
        :func:`deepaug.workflow.config.load_schema`)."""
        import sys
        from pathlib import Path

        return Path(sys.modules[type(self).__module__].__file__).with_name("schema.yaml")

    def describe_layers(self, section: dict) -> str:
        try:
            layers = self.layers(section)
        except NotImplementedError:
            layers = None
        return self.layer_map if layers is None else describe(layers)

    def layer_name(self, index: int, n_layers: int | None = None) -> str:
        """A short name of layer ``index`` for figure ticks (``n_layers``: the map's length, where known)."""
        layers = None if n_layers is None else self.layers_of_length(n_layers)
        return layers[index].name if layers is not None and 0 <= index < len(layers) else str(index)

    def top_layer(self, section: dict) -> int | None:
        """The index labelled in the layer-sweep figure (the last layer of the map)."""
        n = self.n_layers(section)
        return None if n is None else n - 1

    # ---- the jobs of one run
    def train_inputs(self, section: dict, run) -> dict[str, str]:
        raise NotImplementedError

    def train_command(self, run, inputs: dict, out_dir: str, ckpt_dir: str, settings: dict) -> str:
        raise NotImplementedError

    def eval_inputs(self, section: dict, run) -> dict[str, str | list[str]]:
        raise NotImplementedError

    def eval_command(self, run, inputs: dict, out: str, settings: dict) -> str:
        raise NotImplementedError

    # ---- one job per run: train, then evaluate the trained model (the workflow's `train` rule)
    def run_inputs(self, section: dict, run) -> list[str]:
        """Every input file of a run's job: its training's and its evaluation's (but the model)."""
        out: list[str] = []
        for value in (*self.train_inputs(section, run).values(), *self.eval_inputs(section, run).values()):
            out += value if isinstance(value, list) else [value]
        return list(dict.fromkeys(out))

    def run_command(self, run, out_dir: str, ckpt_dir: str, train_settings: dict, eval_settings: dict) -> str:
        """Train into ``out_dir`` (model.pt, train_metrics.jsonl, provenance.json), then evaluate that
        model into ``out_dir/eval.json``, in one process. A finished training is not repeated: the
        trainer gives back its kept outputs when the fingerprint matches (Checkpointer.reuse), so a
        job re-run for its evaluation settings only evaluates."""
        section = run.section
        model = f"{out_dir}/model.pt"
        return stages(
            self.train_command(run, self.train_inputs(section, run), out_dir, ckpt_dir, train_settings),
            self.eval_command(
                run, {"model": model, **self.eval_inputs(section, run)}, f"{out_dir}/eval.json", eval_settings
            ),
        )

    # ---- the analysis of one setting and seed (the workflow's `analyze` rule)
    def analysis_inputs(self, config: dict, section: dict, run) -> dict[str, str]:
        """The data the analysis reads (besides the candidates' models and eval.json)."""
        raise NotImplementedError

    def analysis_flags(self, run, config: dict) -> dict:
        """This domain's own flags of ``python -m deepaug analyze`` (sample counts, ...)."""
        return {}

    def analyze_command(self, candidates: list, data: str, out: str, cka: str, config: dict, device: str) -> str:
        """Analyse one setting and seed: of its candidate runs (those that differ only in the domain's
        tuned axes, e.g. lr x batch; one run when nothing is tuned), the dev-best by its eval.json, so
        that the analysis shows the run the tables report (deepaug.analysis.selection)."""
        run = candidates[0]
        files = {
            "domain": self.name,
            "model": [f"results/{r.path}/model.pt" for r in candidates],
            "data": data,
            "out": out,
            "cka": cka,
        }
        if len(candidates) > 1:
            files.update(
                eval=[f"results/{r.path}/eval.json" for r in candidates],
                run_id=[r.id for r in candidates],
                dev_metric=self.metrics[run.objective].dev,
            )
        own = {**self.analysis_flags(run, config), "device": device, "layer": run.layer}
        return command("analyze", own, **files)

    # ---- data
    def prepare_command(self, item: str, out: str, config: dict) -> str:
        """The command that makes ``data/<domain>/<item>``; ValueError for an item it does not know."""
        raise NotImplementedError

    def data_files(self, section: dict, runs) -> list[str]:
        """Every data file and folder the runs of this section need (the `data` target)."""
        out: list[str] = []
        for run in runs:
            for value in (*self.train_inputs(section, run).values(), *self.eval_inputs(section, run).values()):
                for path in value if isinstance(value, list) else [value]:
                    if path.startswith("data/") and path not in out:
                        out.append(path)
        return out
