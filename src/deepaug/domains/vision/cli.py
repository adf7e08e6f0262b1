"""The vision domain's command-line stages, in the format of :mod:`deepaug.domains.arguments`
(name -> (help, set-up of its arguments, handler, the module whose code it runs)); the top-level CLI
merges them."""

from __future__ import annotations

import argparse

from deepaug.domains.arguments import domain_parser, parse_bool, settings_stage


def _setup_prepare_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--raw-dir", default="data/raw")
    p.add_argument("--download", type=parse_bool, default=True, metavar="true|false")


def _cmd_prepare_data(a: argparse.Namespace) -> None:
    from deepaug.domains.vision.data import prepare_image_dataset

    prepare_image_dataset(a.dataset, a.out, a.raw_dir, download=a.download)


def _setup_prepare_image_folder(p: argparse.ArgumentParser) -> None:
    from deepaug.domains.vision.imagefolder import DEFAULT_MAX_SHORT_SIDE, DEFAULT_QUALITY, DEFAULT_VAL_FRACTION

    p.add_argument("--dataset", required=True, help="imagenet100, or the name of an image folder of your own")
    p.add_argument("--root", required=True, help="imagenet100: your ILSVRC-2012 copy; else root/<class>/*.jpg")
    p.add_argument("--out", required=True, help="the pack folder (data/vision/<dataset>)")
    p.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION, help="test split of an unsplit folder")
    p.add_argument("--seed", type=int, default=0, help="seed of that split")
    p.add_argument("--max-short-side", type=int, default=DEFAULT_MAX_SHORT_SIDE)
    p.add_argument("--quality", type=int, default=DEFAULT_QUALITY)
    p.add_argument("--workers", type=int, default=None, help="processes (default: the usable CPUs, at most 8)")
    p.add_argument("--skip-corrupt", type=parse_bool, default=False, metavar="true|false")


def _cmd_prepare_image_folder(a: argparse.Namespace) -> None:
    from pathlib import Path

    from deepaug.errors import DataUnavailableError

    if a.root in ("", "None"):
        raise DataUnavailableError(f"{a.dataset}: no --root (config key data.imagenet_root) given")
    if not Path(a.root).is_dir():
        raise DataUnavailableError(f"--root {a.root}: no such folder")
    options = dict(max_short_side=a.max_short_side, quality=a.quality, workers=a.workers, skip_corrupt=a.skip_corrupt)
    if a.dataset == "imagenet100":
        from deepaug.domains.vision.imagenet100 import prepare_imagenet100

        prepare_imagenet100(a.root, a.out, **options)
    else:
        from deepaug.domains.vision.imagefolder import pack_image_folder

        pack_image_folder(a.root, a.out, val_fraction=a.val_fraction, seed=a.seed, name=a.dataset, **options)


COMMANDS = {
    "prepare-data": (
        "fetch an image dataset and store it as .npz",
        _setup_prepare_data,
        _cmd_prepare_data,
        "deepaug.domains.vision.data",
    ),
    "prepare-image-folder": (
        "check and pack an image folder (ImageNet-100 from your ILSVRC-2012 copy, or your own) for fast reading",
        _setup_prepare_image_folder,
        _cmd_prepare_image_folder,
        "deepaug.domains.vision.imagefolder",
    ),
    "pretrain-vision": (
        "SimCLR pre-training with Deep Augmentation",
        *settings_stage(
            "deepaug.domains.vision.train", "VisionPretrainSettings", "pretrain", "--data", "--out-dir", "--ckpt-dir"
        ),
        "deepaug.domains.vision.train",
    ),
    "eval-vision": (
        "linear probe and kNN on frozen features",
        *settings_stage(
            "deepaug.domains.vision.evaluate", "VisionEvalSettings", "evaluate", "--model", "--data", "--out"
        ),
        "deepaug.domains.vision.evaluate",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """A parser of just this domain's commands (for tests and for running them without the top-level CLI)."""
    return domain_parser(COMMANDS)
