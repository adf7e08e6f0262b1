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
    for sub, values in RECIPES[name].items():
        own = section.setdefault(sub, {})
        for key, value in values.items():
            own.setdefault(key, value)
