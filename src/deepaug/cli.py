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


def _cmd_prepare_text(a: argparse.Namespace) -> None:
    from . import text_data

    if a.corpus:
        text_data.prepare_corpus(a.corpus, a.out)
    elif a.task:
        text_data.prepare_task(a.task, a.out)
    else:
        text_data.prepare_model(a.model, a.out)


def _cmd_pretrain_text(a: argparse.Namespace) -> None:
    from .pretrain_text import TextPretrainSettings, pretrain

    s = TextPretrainSettings(**{k: v for k, v in vars(a).items() if k in TextPretrainSettings.__dataclass_fields__})
    pretrain(s, a.model_dir, a.corpus, a.dev_task, a.out_dir, a.ckpt_dir)


def _cmd_eval_text(a: argparse.Namespace) -> None:
    from .evaluate_text import TextEvalSettings, evaluate

    s = TextEvalSettings(**{k: v for k, v in vars(a).items() if k in TextEvalSettings.__dataclass_fields__})
    tasks = {Path(p).stem: p for p in a.tasks}
    evaluate(s, a.model, tasks, a.out)


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

    p = sub.add_parser("prepare-text", help="store a text corpus, a similarity task or an encoder locally")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--corpus", help="training corpus name (wiki1m, lee)")
    what.add_argument("--task", help="similarity task name (sts12 ... sickr, stsb_dev, lee_docs, wordsim353, simlex999)")
    what.add_argument("--model", help="encoder (hub id, local folder, or all-MiniLM-L6-v2 from its package)")
    p.add_argument("--out", required=True, help="parquet file (corpus, task) or folder (model)")
    p.set_defaults(func=_cmd_prepare_text)

    from .pretrain_text import TextPretrainSettings

    p = sub.add_parser("pretrain-text", help="unsupervised SimCSE with Deep Augmentation")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--dev-task", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--ckpt-dir", required=True)
    add_dataclass_arguments(p, TextPretrainSettings)
    p.set_defaults(func=_cmd_pretrain_text)

    from .evaluate_text import TextEvalSettings

    p = sub.add_parser("eval-text", help="Spearman x100 of cosine similarity on similarity tasks")
    p.add_argument("--model", required=True)
    p.add_argument("--tasks", nargs="+", required=True, help="task parquet files; the file stem names the task")
    p.add_argument("--out", required=True)
    add_dataclass_arguments(p, TextEvalSettings)
    p.set_defaults(func=_cmd_eval_text)

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
