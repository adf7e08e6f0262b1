"""The Deep Augmentation op's vocabulary, stated once (no torch: the Snakefile, the schema loader and the
CLI read it): the methods, the op's enums, which settings belong to which method, the device pattern.

Imported by :mod:`deepaug.core.augment` (the op), :mod:`deepaug.core.settings` (the trainers' settings),
:mod:`deepaug.workflow.runs` (the run table) and :func:`deepaug.workflow.config.load_schema` (the
config schema's enums of the op's settings).
"""

from __future__ import annotations

import re

METHODS = ("none", "dropout", "pca")  # none: the baseline, no Deep Augmentation
KINDS = METHODS[1:]  # the op's kinds (a method other than the baseline)
SELECTIONS = ("bernoulli", "one_sided", "two_sided")
PCA_OVER = ("rows", "tokens", "graphs")  # rows: across examples; tokens: across every token; graphs: graph vectors
# modes that need the rows' groups (a graph batch's graph of each node): offered by a domain that has them
PCA_OVER_GROUPED = ("graphs",)
PCA_GRADS = ("through", "constant")
PRECISIONS = ("fp32", "bf16", "fp16")
# A run's checkpoint policies (RunSettings.keep_checkpoints, .reuse_finished; deepaug.engine.checkpoint).
KEEP_POLICIES = ("last", "none", "all")
REUSE_POLICIES = ("exact", "settings", "never")
# Experiment tracking of a run (config `tracking`, RunSettings.tracking; deepaug.engine.tracking)
TRACKERS = ("none", "tensorboard", "mlflow")

# Which Deep Augmentation settings matter for which method (others are left out of a run).
_WHERE = {"layer", "layers_at_once", "stop_gradient", "detach_p", "p", "selection"}
OP_AXES = {
    "none": frozenset(),
    "dropout": frozenset(_WHERE | {"rate"}),
    "pca": frozenset(_WHERE | {"pca_component", "pca_over", "pca_grad"}),
}
# The op's settings in a config section's `augment:` (the rest of OP_AXES are run axes).
AUGMENT_KEYS = frozenset({"rate", "p", "selection", "pca_component", "pca_over", "pca_grad", "detach_p"})

# Deep Augmentation at several layers in one run, each with its own op (deepaug.core.at_layers): a sweep
# block's `layers_at_once` (instead of `layer`), the trainers' flag --layers-at-once 0,3,6, the run table's
# column (`all` or 0-3-6; the layer column is empty) and the run id (dropout-Lall-sg, dropout-L0-3-6-sg).
LAYERS_AT_ONCE = "layers_at_once"


def layers_label(layers, n_layers: int | None = None) -> str:
    """How the run id and the run table spell a run's layers at once: ``all`` when they are every layer of
    the map (``n_layers`` indices), else the layers in order joined by ``-`` (``0-3-6``; a path-safe name)."""
    layers = sorted(int(layer) for layer in layers)
    return "all" if n_layers is not None and layers == list(range(n_layers)) else "-".join(map(str, layers))


def layers_flag(layers) -> str:
    """The trainers' ``--layers-at-once`` value: ``0,3,6`` (read back by :func:`parse_layers`)."""
    return ",".join(str(int(layer)) for layer in layers)


def parse_layers(text: str) -> tuple[int, ...] | None:
    """``"0,3,6"`` -> ``(0, 3, 6)``; ``"none"`` or ``""`` -> None (one layer, or the baseline)."""
    if text.strip().lower() in ("", "none"):
        return None
    return tuple(int(part) for part in text.split(","))


def layers_words(label: str) -> str:
    """A run's layers at once in words, from its label: ``all layers``, ``layers 0, 3, 6``."""
    return "all layers" if label == "all" else "layers " + ", ".join(str(label).split("-"))


# Where a job runs: auto (CUDA if present), cpu, cuda or cuda:N.
DEVICE_PATTERN = r"auto|cpu|cuda(:[0-9]+)?"


def check_device(device) -> None:
    """ValueError naming the setting unless ``device`` is auto, cpu, cuda or cuda:N."""
    if not re.fullmatch(DEVICE_PATTERN, str(device)):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
