"""The SSL methods beyond SimCLR, one file each, registered here (the vision setting ``train.ssl_method``).

A method is an :class:`deepaug.core.objectives.Objective` in a file of this package (its loss, its own modules:
a predictor, a momentum target; its step after each optimiser step: the EMA; its projector, the model's head;
the settings only it has) and one name in :data:`FILES` below. Its CIFAR recipe (projector sizes, optimiser, lr,
loss weights) is a preset in :mod:`deepaug.domains.vision.recipes` (``SSL_RECIPES``). ``simclr`` is the
``contrastive`` objective itself, with ``train.loss`` (supcon or nt_xent).
"""

from __future__ import annotations

import importlib

from deepaug.core.objectives import register

DEFAULT = "simclr"
FILES = ("byol", "simsiam", "vicreg", "barlow_twins")  # the registration: one name per method file

METHODS = {name: register(importlib.import_module(f"deepaug.core.ssl.{name}").METHOD) for name in FILES}
SSL_METHODS = (DEFAULT, *METHODS)
# every setting that only some method has -> the methods that have it
OWN_SETTINGS: dict[str, tuple[str, ...]] = {}
for _name, _method in METHODS.items():
    for _setting in _method.settings:
        OWN_SETTINGS[_setting] = (*OWN_SETTINGS.get(_setting, ()), _name)


def method_objective(name: str):
    """The objective of SSL method ``name`` (``simclr``: the ``contrastive`` one); ValueError naming the choices."""
    from deepaug.core.objectives import objective

    if name not in SSL_METHODS:
        raise ValueError(f"ssl_method must be one of {SSL_METHODS}, got {name!r}")
    return objective("contrastive" if name == DEFAULT else name)


def check_own_settings(ssl_method: str, values: dict) -> None:
    """ValueError when a setting only other methods have is given (not None) for ``ssl_method``."""
    for setting, owners in OWN_SETTINGS.items():
        if values.get(setting) is not None and ssl_method not in owners:
            raise ValueError(
                f"{setting} is a setting of ssl_method {' and '.join(owners)} only; this run's ssl_method is "
                f"{ssl_method!r}: leave {setting} out (or set ssl_method to {owners[0]})"
            )
