"""The graph domain's command-line stages, in the format of :mod:`deepaug.domains.arguments`
(name -> (help, set-up of its arguments, handler, the module whose code it runs)); the top-level CLI
merges them."""

from __future__ import annotations

import argparse

from deepaug.domains.arguments import domain_parser, parse_bool, settings_stage


def _setup_prepare_graph(p: argparse.ArgumentParser) -> None:
    from deepaug.domains.graph.data import MISSING_FEATURES

    p.add_argument(
        "--dataset", required=True, help="a TU dataset (MUTAG, PROTEINS, NCI1, IMDB-BINARY, ...) or synthetic"
    )
    p.add_argument("--out", required=True, help="the prepared file (.pt)")
    p.add_argument("--raw-dir", default="data/raw", help="TU archives are stored under RAW_DIR/<dataset>/raw")
    p.add_argument("--download", type=parse_bool, default=True, metavar="true|false")
    p.add_argument(
        "--missing-features",
        choices=MISSING_FEATURES,
        default="constant",
        help="node features of a dataset without node labels (GraphCL: constant)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic set")


def _cmd_prepare_graph(a: argparse.Namespace) -> None:
    from deepaug.domains.graph.data import prepare_graph_dataset

    prepare_graph_dataset(
        a.dataset, a.out, a.raw_dir, download=a.download, missing_features=a.missing_features, seed=a.seed
    )


COMMANDS = {
    "prepare-graph": (
        "fetch a TU graph dataset (or make the synthetic one) and store it prepared",
        _setup_prepare_graph,
        _cmd_prepare_graph,
        "deepaug.domains.graph.data",
    ),
    "pretrain-graph": (
        "GraphCL pre-training of a GIN with Deep Augmentation",
        *settings_stage(
            "deepaug.domains.graph.train", "GraphPretrainSettings", "pretrain", "--data", "--out-dir", "--ckpt-dir"
        ),
        "deepaug.domains.graph.train",
    ),
    "eval-graph": (
        "SVM accuracy of frozen graph embeddings, 10-fold CV",
        *settings_stage(
            "deepaug.domains.graph.evaluate", "GraphEvalSettings", "evaluate", "--model", "--data", "--out"
        ),
        "deepaug.domains.graph.evaluate",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """A parser of just this domain's commands (for tests and for running them without the top-level CLI)."""
    return domain_parser(COMMANDS)
