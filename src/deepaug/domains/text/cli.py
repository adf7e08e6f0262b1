"""The text domain's command-line stages, in the format of :mod:`deepaug.domains.arguments`
(name -> (help, set-up of its arguments, handler, the module whose code it runs)); the top-level CLI
merges them."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepaug.domains.arguments import add_dataclass_arguments, add_stage_arguments, domain_parser, settings_from_args


def _setup_prepare_text(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--corpus", help="training corpus name (wiki1m, lee)")
    what.add_argument(
        "--task", help="similarity task name (sts12 ... sickr, stsb_dev, lee_docs, wordsim353, simlex999)"
    )
    what.add_argument("--model", help="encoder (hub id, local folder, or all-MiniLM-L6-v2 from its package)")
    what.add_argument("--mlm-head", help="the MLM head of an encoder's pretrained checkpoint (a note if it has none)")
    p.add_argument("--out", required=True, help="parquet file (corpus, task), folder (model) or .pt file (MLM head)")


def _cmd_prepare_text(a: argparse.Namespace) -> None:
    from deepaug.domains.text import data as text_data

    if a.corpus:
        text_data.prepare_corpus(a.corpus, a.out)
    elif a.task:
        text_data.prepare_task(a.task, a.out)
    elif a.mlm_head:
        from deepaug.domains.text.mlm import prepare_mlm_head

        prepare_mlm_head(a.mlm_head, a.out)
    else:
        text_data.prepare_model(a.model, a.out)


def _setup_pretrain_text(p: argparse.ArgumentParser) -> None:
    from deepaug.domains.text.train import TextPretrainSettings

    add_stage_arguments(p, TextPretrainSettings, "--model-dir", "--corpus", "--dev-task", "--out-dir", "--ckpt-dir")
    p.add_argument("--mlm-head", default=None, help="the encoder's prepared MLM head (runs with --mlm-weight > 0)")


def _cmd_pretrain_text(a: argparse.Namespace) -> None:
    from deepaug.domains.text.train import TextPretrainSettings, pretrain

    s = settings_from_args(TextPretrainSettings, a)
    pretrain(s, a.model_dir, a.corpus, a.dev_task, a.out_dir, a.ckpt_dir, mlm_head=a.mlm_head)


def _setup_eval_text(p: argparse.ArgumentParser) -> None:
    from deepaug.domains.text.evaluate import TextEvalSettings

    p.add_argument("--model", required=True)
    p.add_argument("--tasks", nargs="+", required=True, help="task parquet files; the file stem names the task")
    p.add_argument("--out", required=True)
    add_dataclass_arguments(p, TextEvalSettings)


def _cmd_eval_text(a: argparse.Namespace) -> None:
    from deepaug.domains.text.evaluate import TextEvalSettings, evaluate

    tasks = {Path(p).stem: p for p in a.tasks}
    evaluate(settings_from_args(TextEvalSettings, a), a.model, tasks, a.out)


def _setup_export_st(p: argparse.ArgumentParser) -> None:
    from deepaug.domains.text.export import DEFAULT_MAX_SEQ_LENGTH

    p.add_argument(
        "run_dir", help="a finished text run's folder (results/text/<dataset>/<run>/seed<k>) or its model.pt"
    )
    p.add_argument("out", help="a new folder: the sentence-transformers model (also a save_pretrained folder)")
    p.add_argument(
        "--max-seq-length",
        type=int,
        default=DEFAULT_MAX_SEQ_LENGTH,
        help=f"tokens kept per sentence (default {DEFAULT_MAX_SEQ_LENGTH}, the evaluator's eval_max_len)",
    )


def _cmd_export_st(a: argparse.Namespace) -> None:
    from deepaug.domains.text.export import export_sentence_transformers

    out = export_sentence_transformers(a.run_dir, a.out, a.max_seq_length)
    print(f"wrote {out}: SentenceTransformer({str(out)!r}) or transformers.AutoModel.from_pretrained({str(out)!r})")


COMMANDS = {
    "prepare-text": (
        "store a text corpus, a similarity task or an encoder locally",
        _setup_prepare_text,
        _cmd_prepare_text,
        "deepaug.domains.text.data",
    ),
    "pretrain-text": (
        "unsupervised SimCSE with Deep Augmentation",
        _setup_pretrain_text,
        _cmd_pretrain_text,
        "deepaug.domains.text.train",
    ),
    "eval-text": (
        "Spearman x100 of cosine similarity on similarity tasks",
        _setup_eval_text,
        _cmd_eval_text,
        "deepaug.domains.text.evaluate",
    ),
    "export-sentence-transformers": (
        "a trained text encoder as a sentence-transformers model ([CLS] before the MLP, as evaluated)",
        _setup_export_st,
        _cmd_export_st,
        "deepaug.domains.text.export",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """A parser of just this domain's commands (for tests and for running them without the top-level CLI)."""
    return domain_parser(COMMANDS)
