"""The vision datasets by name, one line each (light: no torch; the config schema's list of dataset
names is read from here).

A dataset is an :class:`deepaug.domains.vision.data.ImageDataset` (a name, a description, and a loader
that returns the arrays) defined in any module; :data:`DATASETS` maps its name to ``"module:attribute"``
and is resolved only when the dataset is prepared. A new dataset is therefore one file plus one line here
(``tests/domains/vision/test_new_dataset.py`` adds a toy that way and trains and evaluates on it).
"""

from __future__ import annotations

from importlib import import_module

from deepaug.errors import DataUnavailableError

DATASETS: dict[str, str] = {
    "cifar10": "deepaug.domains.vision.data:CIFAR10",
    "cifar100": "deepaug.domains.vision.data:CIFAR100",
    "digits": "deepaug.domains.vision.data:DIGITS",
}


def dataset_names() -> list[str]:
    """The registered names, as the config schema offers them (``vision.datasets``)."""
    return list(DATASETS)


def load_dataset(name: str):
    """The :class:`ImageDataset` registered as ``name``; one line naming the known ones otherwise."""
    if name not in DATASETS:
        raise DataUnavailableError(
            f"unknown image dataset {name!r}; known: {', '.join(DATASETS)} "
            f"(a new one is a module with an ImageDataset plus its line in deepaug.domains.vision.datasets.DATASETS)"
        )
    module, _, attribute = DATASETS[name].partition(":")
    dataset = getattr(import_module(module), attribute)
    if dataset.name != name:
        raise ValueError(f"{DATASETS[name]} is the dataset {dataset.name!r}, registered as {name!r}")
    return dataset
