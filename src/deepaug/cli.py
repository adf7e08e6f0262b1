"""Command-line entry points, one per pipeline stage: ``deepaug <stage> ...`` (or ``python -m deepaug``).

The workflow's rules call these; they can also be run by hand. Known failures (missing data, bad
layer, config error, non-finite loss, checkpoint mismatch) print one clear line and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_prepare_data(a: argparse.Namespace) -> None:
    from .data import prepare_image_dataset

    prepare_image_dataset(a.dataset, a.out, a.raw_dir, download=a.download)


def _cmd_pretrain_vision(a: argparse.Namespace) -> None:
    from .pretrain_vision import VisionPretrainSettings, pretrain

    s = VisionPretrainSettings(**{k: v for k, v in vars(a).items() if k in VisionPretrainSettings.__dataclass_fields__})
    pretrain(s, a.data, a.out_dir, a.ckpt_dir)


def _cmd_eval_vision(a: argparse.Namespace) -> None:
    from .evaluate_vision import VisionEvalSettings, evaluate

    s = VisionEvalSettings(**{k: v for k, v in vars(a).items() if k in VisionEvalSettings.__dataclass_fields__})
    evaluate(s, a.model, a.data, a.out)


def _cmd_aggregate(a: argparse.Namespace) -> None:
    from .aggregate import aggregate

    paths = list(a.evals)
    if a.eval_list:
        paths += [p for p in Path(a.eval_list).read_text().split() if p]
    aggregate(paths, a.out)


def _cmd_check_config(a: argparse.Namespace) -> None:
    import yaml

    from .config import validate_config

    validate_config(yaml.safe_load(Path(a.config).read_text()))
    print(f"{a.config}: valid")


def build_parser() -> argparse.ArgumentParser:
    from .training import _parse_bool, add_dataclass_arguments

    parser = argparse.ArgumentParser(prog="deepaug", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare-data", help="fetch an image dataset and store it as .npz")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--raw-dir", default="data/raw")
    p.add_argument("--download", type=_parse_bool, default=True, metavar="true|false")
    p.set_defaults(func=_cmd_prepare_data)

    from .pretrain_vision import VisionPretrainSettings

    p = sub.add_parser("pretrain-vision", help="SimCLR pre-training with Deep Augmentation")
    p.add_argument("--data", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--ckpt-dir", required=True, help="checkpoints for resumption (keep outside the job outputs)")
    add_dataclass_arguments(p, VisionPretrainSettings)
    p.set_defaults(func=_cmd_pretrain_vision)

    from .evaluate_vision import VisionEvalSettings

    p = sub.add_parser("eval-vision", help="linear probe and kNN on frozen features")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    add_dataclass_arguments(p, VisionEvalSettings)
    p.set_defaults(func=_cmd_eval_vision)

    p = sub.add_parser("aggregate", help="one tidy CSV from every run's eval.json")
    p.add_argument("evals", nargs="*")
    p.add_argument("--eval-list", help="file listing eval.json paths (whitespace separated)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_aggregate)

    p = sub.add_parser("check-config", help="validate a workflow config file")
    p.add_argument("config")
    p.set_defaults(func=_cmd_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError
    from .data import DataUnavailableError
    from .layers import LayerIndexError
    from .training import CheckpointMismatchError, NonFiniteLossError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, DataUnavailableError, LayerIndexError, CheckpointMismatchError, NonFiniteLossError,
            ValueError) as exc:
        print(f"deepaug {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
