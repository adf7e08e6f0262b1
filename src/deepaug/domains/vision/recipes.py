"""The vision recipes, by name (light: no torch; the workflow config reads it).

``vision.recipe`` selects one of :data:`RECIPES` (``auto``: the recipe its datasets are registered with in
:mod:`deepaug.domains.vision.datasets`); :func:`apply_recipe` writes its values into the config section before
the schema's defaults are filled in (``Vision.fill_section``), so that a setting the section, a sweep block or
``supervised:`` writes explicitly wins, and the job commands, run ids and ``provenance.json`` show the resolved
values. The schema's ``default:`` values are the ``cifar`` recipe, so ``cifar`` adds nothing.

* ``cifar``: SupContrast's CIFAR SimCLR (``main_supcon.py``), the paper's vision code: the schema's defaults.
* ``imagenet``: solo-learn's ImageNet-100 SimCLR, vturrisi/solo-learn@9187ea39c2c3f43c455ab06664d2b019a9802954
  ``scripts/pretrain/imagenet-100/simclr.yaml`` (cited as ``simclr.yaml:L``) with its augmentations
  ``scripts/pretrain/imagenet-100/augmentations/symmetric.yaml`` (``symmetric.yaml:L``) and the arguments'
  defaults of ``solo/args/pretrain.py`` (``pretrain.py:L``).

One section holds datasets of one recipe: a section that lists CIFAR and ImageNet datasets without saying
which recipe it wants is refused (the two recipes differ in most settings; put each in its own config file,
as ``config/paper/imagenet100.yaml`` does).
"""

from __future__ import annotations

from deepaug.errors import ConfigError

RECIPES: dict[str, dict[str, dict]] = {
    "cifar": {},
    "imagenet": {
        "model": {
            "stem": "imagenet",  # ResNet-18 with the ImageNet stem: solo-learn keeps torchvision's conv1/maxpool
            # for datasets other than CIFAR (solo/methods/base.py:198-203)
            "proj_hidden_dim": 4096,  # simclr.yaml:19
            "proj_dim": 512,  # simclr.yaml:20
        },
        "train": {
            "epochs": 400,  # simclr.yaml:48
            "batch_size": 256,  # simclr.yaml:30 (128 per device) x devices [0, 1] (simclr.yaml:49)
            # simclr.yaml:31 lr 0.3, scaled by batch_size * devices / 256 = 1 (pretrain.py:153-154)
            "lr": 0.3,
            "optimizer": "lars",  # simclr.yaml:29
            "lars_eta": 0.02,  # simclr.yaml:36 (clip_lr and exclude_bias_n_norm: True, simclr.yaml:35,37)
            "momentum": 0.9,  # pretrain.py:162-164 (LARS' momentum)
            "weight_decay": 1.0e-4,  # simclr.yaml:33
            "temperature": 0.2,  # simclr.yaml:21
            "loss": "nt_xent",  # solo-learn's simclr_loss_func: plain NT-Xent (no SupContrast scale)
            "warmup_epochs": 10,  # scheduler warmup_cosine (simclr.yaml:39), warmup_epochs 10 (pretrain.py:293)
            "crop_size": 224,  # symmetric.yaml:21
            "crop_min_scale": 0.08,  # symmetric.yaml:3
            "color_jitter": "0.8,0.8,0.8,0.2",  # symmetric.yaml:6-10 (applied with probability 0.8, :6)
            "blur_prob": 0.5,  # symmetric.yaml:14
            "solarize_prob": 0.0,  # symmetric.yaml:16
            "checkpoint_every": 1,  # an ImageNet-100 epoch is minutes: checkpoint each (simclr.yaml:43)
        },
    },
}


# The CIFAR recipes of the SSL methods beyond SimCLR (train.ssl_method; deepaug/core/ssl/), one preset each:
# solo-learn's scripts/pretrain/cifar/<method>.yaml at vturrisi/solo-learn@9187ea39c2c3f43c455ab06664d2b019a9802954
# (cited as <file>:L), with the defaults of solo/args/pretrain.py (optimiser momentum 0.9, L160-164; the lr scaled
# by batch_size x devices / 256 = 1, L153-154) and solo/methods/base.py (warmup_cosine, 10 warm-up epochs,
# L293). Every recipe trains a ResNet-18 1000 epochs at batch 256 (<file>:max_epochs, optimizer.batch_size).
# Not taken: solo-learn's augmentations (asymmetric.yaml for byol/barlow, symmetric_weak.yaml for simsiam, vicreg's
# own with solarisation 0.1): the in-memory CIFAR path keeps SupContrast's, so that only the method differs.
_SOLO_COMMON = {"epochs": 1000, "batch_size": 256, "momentum": 0.9, "warmup_epochs": 10}
_LARS = {"optimizer": "lars", "lars_eta": 0.02}  # clip_lr, exclude_bias_n_norm True: deepaug/engine/lars.py
SSL_RECIPES: dict[str, dict[str, dict]] = {
    "simclr": {},  # the section's own recipe (cifar: SupContrast's SimCLR)
    "byol": {
        "model": {"proj_hidden_dim": 4096, "proj_dim": 256},  # byol.yaml:19-20
        "train": {
            **_SOLO_COMMON,
            **_LARS,  # byol.yaml:32, 39-40
            "lr": 1.0,  # byol.yaml:34
            "weight_decay": 1.0e-5,  # byol.yaml:36
            "pred_hidden_dim": 4096,  # byol.yaml:21
            "tau_base": 0.99,  # byol.yaml:23
            "tau_final": 1.0,  # byol.yaml:24
            "target_augment": False,  # deepaug's choice (deepaug/core/ssl/byol.py)
        },
    },
    "simsiam": {
        "model": {"proj_hidden_dim": 2048, "proj_dim": 2048},  # simsiam.yaml:19-20
        "train": {
            **_SOLO_COMMON,
            "optimizer": "sgd",  # simsiam.yaml:30
            "lr": 0.5,  # simsiam.yaml:32
            "weight_decay": 1.0e-5,  # simsiam.yaml:34
            "pred_hidden_dim": 512,  # simsiam.yaml:21
        },
    },
    "vicreg": {
        "model": {"proj_hidden_dim": 2048, "proj_dim": 2048},  # vicreg.yaml:18-19
        "train": {
            **_SOLO_COMMON,
            **_LARS,  # vicreg.yaml:59, 66
            "lr": 0.3,  # vicreg.yaml:61
            "weight_decay": 1.0e-4,  # vicreg.yaml:63
            "vicreg_sim_weight": 25.0,  # vicreg.yaml:20
            "vicreg_var_weight": 25.0,  # vicreg.yaml:21
            "vicreg_cov_weight": 1.0,  # vicreg.yaml:22
        },
    },
    "barlow_twins": {
        "model": {"proj_hidden_dim": 2048, "proj_dim": 2048},  # barlow.yaml:19-20
        "train": {
            **_SOLO_COMMON,
            **_LARS,  # barlow.yaml:29, 36
            "lr": 0.3,  # barlow.yaml:31
            "weight_decay": 1.0e-4,  # barlow.yaml:33
            "barlow_lambda": 0.0051,  # solo/methods/barlow_twins.py:77 (the yaml leaves lamb at this default)
            "barlow_scale": 0.1,  # barlow.yaml:21
        },
    },
}


def own_settings(method: str) -> list[str]:
    """The settings only some methods have that ``method``'s recipe sets: those the schema leaves null."""
    from deepaug.core.schema_defaults import domain_schema, schema_defaults

    defaults = schema_defaults(domain_schema(__file__), "train")
    return [k for k in SSL_RECIPES[method].get("train", {}) if k in defaults and defaults[k] is None]


def method_setting(method: str, key: str):
    """The recipe's value of a setting only ``method`` has (the trainer fills a None with it)."""
    return SSL_RECIPES[method]["train"][key]


def apply_method_recipe(section: dict, method: str, keep=frozenset(), base: dict | None = None) -> None:
    """Write SSL method ``method``'s recipe into the (resolved) section, in place, except the keys in ``keep``
    (``sub.key``) and, with ``base`` (the section's settings before the method), those whose value differs from
    the base recipe's (the section set them itself)."""
    for sub, values in SSL_RECIPES[method].items():
        own = section.setdefault(sub, {})
        for key, value in values.items():
            if f"{sub}.{key}" in keep or key in keep:
                continue
            if base is not None and key in own and own[key] != base.get(sub, {}).get(key, own[key]):
                continue
            own[key] = value


def section_recipe(section: dict) -> dict[str, dict]:
    """What the section's ``model`` and ``train`` would hold had it written none of them: the schema's defaults
    under its recipe (``vision.recipe``, or its datasets')."""
    from deepaug.core.schema_defaults import domain_schema, schema_defaults

    name = section.get("recipe", "auto")
    if name == "auto":
        name = recipe_of_datasets(list(section.get("datasets") or []), section.get("image_folders") or {})
    out = {sub: schema_defaults(domain_schema(__file__), sub) for sub in ("model", "train")}
    for sub, values in RECIPES[name].items():
        out.setdefault(sub, {}).update(values)
    return out


def recipe_of_datasets(datasets: list[str], image_folders=()) -> str:
    """The recipe the datasets are registered with (an image folder of the section: imagenet); ConfigError when
    they differ."""
    from deepaug.domains.vision.datasets import DATASETS

    recipes = {
        d: DATASETS[d].recipe if d in DATASETS else "imagenet" for d in datasets if d in DATASETS or d in image_folders
    }
    if len(set(recipes.values())) > 1:
        listed = ", ".join(f"{d} ({r})" for d, r in recipes.items())
        raise ConfigError(
            "invalid workflow config:\n  - config key 'vision.datasets': "
            f"{listed} have different recipes; put each recipe's datasets in a config of its own "
            "(config/paper/imagenet100.yaml holds ImageNet-100), or set vision.recipe"
        )
    return next(iter(recipes.values()), "cifar")


def apply_recipe(section: dict) -> None:
    """Write the section's recipe into it, in place, where the section (or its ``supervised:``) does not
    set the key itself."""
    name = section.get("recipe", "auto")
    if name == "auto":
        name = recipe_of_datasets(list(section.get("datasets") or []), section.get("image_folders") or {})
    method = (section.get("train") or {}).get("ssl_method", "simclr")
    if method in SSL_RECIPES:  # the section's SSL method: its recipe, under what the section writes itself
        for sub, values in SSL_RECIPES[method].items():
            own = section.setdefault(sub, {})
            for key, value in values.items():
                own.setdefault(key, value)
    for sub, values in RECIPES[name].items():
        own = section.setdefault(sub, {})
        for key, value in values.items():
            own.setdefault(key, value)
