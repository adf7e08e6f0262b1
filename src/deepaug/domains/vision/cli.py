"""The vision domain's command-line stages, in the format of :mod:`deepaug.domains.arguments`
(name -> (help, set-up of its arguments, handler, the module whose code it runs)); the top-level CLI
merges them."""

from __future__ import annotations

import argparse

from deepaug.domains.arguments import add_stage_arguments, domain_parser, parse_bool, settings_from_args


def _setup_prepare_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--raw-dir", default="data/raw")
    p.add_argument("--download", type=parse_bool, default=True, metavar="true|false")


def _cmd_prepare_data(a: argparse.Namespace) -> None:
    from deepaug.domains.vision.data import prepare_image_dataset

    prepare_image_dataset(a.dataset, a.out, a.raw_dir, download=a.download)


def _setup_pretrain_vision(p: argparse.ArgumentParser) -> None:
    from deepaug.domains.vision.train import VisionPretrainSettings

    add_stage_arguments(p, VisionPretrainSettings, "--data", "--out-dir", "--ckpt-dir")


def _cmd_pretrain_vision(a: argparse.Namespace) -> None:
    from deepaug.domains.vision.train import VisionPretrainSettings, pretrain

    pretrain(settings_from_args(VisionPretrainSettings, a), a.data, a.out_dir, a.ckpt_dir)


def _setup_eval_vision(p: argparse.ArgumentParser) -> None:
    from deepaug.domains.vision.evaluate import VisionEvalSettings

    add_stage_arguments(p, VisionEvalSettings, "--model", "--data", "--out")


def _cmd_eval_vision(a: argparse.Namespace) -> None:
    from deepaug.domains.vision.evaluate import VisionEvalSettings, evaluate

    evaluate(settings_from_args(VisionEvalSettings, a), a.model, a.data, a.out)


COMMANDS = {
    "prepare-data": (
        "fetch an image dataset and store it as .npz",
        _setup_prepare_data,
        _cmd_prepare_data,
        "deepaug.domains.vision.data",
    ),
    "pretrain-vision": (
        "SimCLR pre-training with Deep Augmentation",
        _setup_pretrain_vision,
        _cmd_pretrain_vision,
        "deepaug.domains.vision.train",
    ),
    "eval-vision": (
        "linear probe and kNN on frozen features",
        _setup_eval_vision,
        _cmd_eval_vision,
        "deepaug.domains.vision.evaluate",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """A parser of just this domain's commands (for tests and for running them without the top-level CLI)."""
    return domain_parser(COMMANDS)
