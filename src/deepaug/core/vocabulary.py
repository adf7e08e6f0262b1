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

# Which Deep Augmentation settings matter for which method (others are left out of a run).
OP_AXES = {
    "none": frozenset(),
    "dropout": frozenset({"layer", "stop_gradient", "rate", "p", "selection"}),
    "pca": frozenset({"layer", "stop_gradient", "p", "selection", "pca_component", "pca_over", "pca_grad"}),
}
# The op's settings in a config section's `augment:` (the rest of OP_AXES are run axes).
AUGMENT_KEYS = frozenset({"rate", "p", "selection", "pca_component", "pca_over", "pca_grad"})

# Where a job runs: auto (CUDA if present), cpu, cuda or cuda:N.
DEVICE_PATTERN = r"auto|cpu|cuda(:[0-9]+)?"


def check_device(device) -> None:
    """ValueError naming the setting unless ``device`` is auto, cpu, cuda or cuda:N."""
    if not re.fullmatch(DEVICE_PATTERN, str(device)):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
