"""Run names and the sweep grid (no heavy imports: the Snakefile uses this module).

A run is one pre-training job: (domain, dataset, method, layer, stop-gradient, seed). Its variant
name is ``none`` for the baseline (no layer, no stop-gradient: one per dataset and seed) and
``{method}-L{layer}-{sg|nosg}`` otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VARIANT_RE = re.compile(r"^(?:none|(?P<method>dropout|pca)-L(?P<layer>\d+)-(?P<sg>sg|nosg))$")


@dataclass(frozen=True)
class Run:
    domain: str
    dataset: str
    method: str
    layer: int | None
    sg: str | None  # "sg" / "nosg" / None for the baseline
    seed: int

    @property
    def variant(self) -> str:
        return variant_name(self.method, self.layer, self.sg)

    @property
    def path(self) -> str:
        return f"{self.domain}/{self.dataset}/{self.variant}/seed{self.seed}"


def variant_name(method: str, layer: int | None = None, sg: str | None = None) -> str:
    if method == "none":
        return "none"
    return f"{method}-L{int(layer)}-{sg}"


def parse_variant(variant: str) -> tuple[str, int | None, str | None]:
    m = VARIANT_RE.match(variant)
    if not m:
        raise ValueError(f"not a run variant: {variant!r} (expected 'none' or '<dropout|pca>-L<k>-<sg|nosg>')")
    if m.group("method") is None:
        return "none", None, None
    return m.group("method"), int(m.group("layer")), m.group("sg")


def grid(domain: str, section: dict) -> list[Run]:
    """Every distinct run of a domain's config section; the baseline once per dataset and seed."""
    runs = []
    for dataset in section["datasets"]:
        for seed in section["seeds"]:
            for method in section["methods"]:
                if method == "none":
                    runs.append(Run(domain, dataset, "none", None, None, seed))
                    continue
                for layer in section["layers"]:
                    for sg in section["stop_gradient"]:
                        runs.append(Run(domain, dataset, method, layer, sg, seed))
    return runs


def model_dir_name(name: str) -> str:
    """Folder name for an encoder: a hub id's ``/`` becomes ``--`` (``org/model`` -> ``org--model``)."""
    return name.replace("/", "--")
