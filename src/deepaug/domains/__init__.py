"""The domains (vision, text, ...) as plug-ins: each states once what the workflow needs to know of it.

A domain is one folder, ``deepaug/domains/<name>/``, whose ``__init__.py`` defines a :class:`Domain`
subclass and registers an instance with :func:`register`. That file must stay light (no torch, no
transformers: the Snakefile imports it); the heavy modules of the folder (data, models, train,
evaluate) are only named in the commands it returns. Adding a domain is that folder, an env file
under ``envs/`` and a section of the config (validated by ``deepaug/workflow/config.schema.yaml``):
the workflow's rules are generic and ask the domain for inputs and commands.

The workflow calls a domain with a :class:`deepaug.workflow.runs.Run` (one row of the run table:
domain, dataset, objective, the run's settings, seed, directory).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from importlib import import_module

OBJECTIVES = ("contrastive", "supervised")
# Domain packages that register themselves (imported on first use of the registry).
BUILTIN = ("vision", "text", "graph")

_REGISTRY: dict[str, "Domain"] = {}


def register(domain: "Domain") -> "Domain":
    _REGISTRY[domain.name] = domain
    return domain


def _load() -> None:
    for name in BUILTIN:
        if name not in _REGISTRY:
            try:
                import_module(f"deepaug.domains.{name}")
            except ModuleNotFoundError as exc:  # a domain folder without its workflow spec yet
                if exc.name != f"deepaug.domains.{name}":
                    raise


def registry() -> dict[str, "Domain"]:
    _load()
    return dict(_REGISTRY)


def get(name: str) -> "Domain":
    domains = registry()
    if name not in domains:
        raise KeyError(f"unknown domain {name!r} (known: {', '.join(sorted(domains))})")
    return domains[name]


def flags(settings: dict) -> str:
    """{'batch_size': 256, 'stop_gradient': True} -> '--batch-size 256 --stop-gradient true' (None: left out)."""
    out = []
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        out.append(f"--{key.replace('_', '-')} {shlex.quote(str(value))}")
    return " ".join(out)


def q(path) -> str:
    return shlex.quote(str(path))


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
    layer_map: str  # the layer indices in words, e.g. "0 stem, 1-4 residual stages, ..."
    metrics: dict[str, Metrics]  # objective -> metrics
    env: str = "train.yaml"  # envs/<env> for its training, evaluation and analysis jobs
    data_env: str = "data.yaml"  # envs/<data_env> for its data preparation jobs
    task_figure: bool = False  # also a per-task heat map of the layer sweep (text: one column per STS task)
    model_flags: bool = True  # the `model:` settings are trainer flags (text: the model is a prepared folder)
    objectives: tuple[str, ...] = field(default=OBJECTIVES)

    # ---- facts that depend on the config section
    def n_layers(self, section: dict) -> int | None:
        """Number of layer indices (None: not known before the model is prepared)."""
        raise NotImplementedError

    def describe_layers(self, section: dict) -> str:
        return self.layer_map

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

    def analysis_inputs(self, config: dict, section: dict, run) -> dict[str, str]:
        raise NotImplementedError

    def analyze_command(self, run, inputs: dict, out: str, cka: str, config: dict, device: str) -> str:
        raise NotImplementedError

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
