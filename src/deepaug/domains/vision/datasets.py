"""The vision datasets by name, one line each (light: no torch; the config check reads the names here).

A dataset is an :class:`deepaug.domains.vision.data.ImageDataset` (a name, a description, and a loader
that returns the arrays) defined in any module; :data:`DATASETS` maps its name to a :class:`Registered`
entry: the ``"module:attribute"`` that holds it (resolved only when the dataset is prepared) and the recipe
its runs follow unless the config says otherwise (:mod:`deepaug.domains.vision.recipes`). A new dataset is
therefore one file plus one line here (``tests/domains/vision/test_new_dataset.py`` adds a toy that way and
trains and evaluates on it).
"""

from __future__ import annotations

from importlib import import_module
from typing import NamedTuple

from deepaug.errors import DataUnavailableError


class Registered(NamedTuple):
    target: str  # "module:attribute" of the ImageDataset (kind "arrays") or of the function that packs it
    recipe: str = "cifar"  # deepaug.domains.vision.recipes.RECIPES
    # arrays: prepared into one .npz held in memory; imagenet: a packed image folder read from data.imagenet_root
    kind: str = "arrays"


DATASETS: dict[str, Registered] = {
    "cifar10": Registered("deepaug.domains.vision.data:CIFAR10"),
    "cifar100": Registered("deepaug.domains.vision.data:CIFAR100"),
    "digits": Registered("deepaug.domains.vision.data:DIGITS"),
    "imagenet100": Registered("deepaug.domains.vision.imagenet100:prepare_imagenet100", "imagenet", "imagenet"),
}


def load_dataset(name: str):
    """The :class:`ImageDataset` registered as ``name``; one line naming the known ones otherwise."""
    if name not in DATASETS:
        raise DataUnavailableError(
            f"unknown image dataset {name!r}; known: {', '.join(DATASETS)} "
            f"(a new one is a module with an ImageDataset plus its line in deepaug.domains.vision.datasets.DATASETS)"
        )
    if DATASETS[name].kind != "arrays":
        raise DataUnavailableError(
            f"{name!r} is a packed image folder, not an in-memory dataset: prepare it with deepaug prepare-image-folder"
        )
    target = DATASETS[name].target
    module, _, attribute = target.partition(":")
    dataset = getattr(import_module(module), attribute)
    if dataset.name != name:
        raise ValueError(f"{target} is the dataset {dataset.name!r}, registered as {name!r}")
    return dataset
