"""Command-line entry points, one per pipeline stage: ``deepaug <stage> ...`` (or ``python -m deepaug``).

The workflow's rules call these; they can also be run by hand. Known failures (missing data, bad
layer, config error, non-finite loss, checkpoint mismatch) print one clear line and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# STAGE_SEPARATOR separates the stages of one invocation: ``deepaug pretrain-vision ... :: eval-vision ...``
# runs both in one process (a run's job trains, then evaluates, paying the start-up once).
from deepaug.domains import STAGE_SEPARATOR, metric_table
from deepaug.errors import UsageError

# Arguments naming files or folders that must exist before a stage starts.
INPUT_ARGS = (
    "data",
    "model",
    "eval",
    "model_dir",
    "corpus",
    "dev_task",
    "tasks",
    "table",
    "baseline_cka",
    "contrastive",
    "supervised",
    "config",
    "runs",
    "published",
)


def check_inputs(a: argparse.Namespace) -> None:

    if a.command in ("prepare-text",):  # its --model/--corpus/--task are names to fetch, not files
        return
    for name in INPUT_ARGS:
        value = getattr(a, name, None)
        for path in value if isinstance(value, list) else [value]:
            if path is not None and not Path(path).exists():
                raise UsageError(f"--{name.replace('_', '-')} {path}: no such file or directory")


def _cmd_aggregate(a: argparse.Namespace) -> None:
    from deepaug.workflow.aggregate import aggregate

    aggregate(a.runs, a.out, a.objective, a.file, a.per_setting)


def _cmd_select_tuned(a: argparse.Namespace) -> None:
    from deepaug.analysis.selection import write_selected

    tuned = {}
    for item in a.tuned:
        domain, _, axes = item.partition("=")
        if not domain or not axes:
            raise UsageError(f"--tuned {item}: expected <domain>=<axis>[,<axis>...], e.g. text=lr,batch_size")
        tuned[domain] = [x for x in axes.split(",") if x]
    write_selected(a.table, a.out, tuned, metric_table())


def _cmd_summarize(a: argparse.Namespace) -> None:
    from deepaug.analysis.summary import write_summary

    write_summary(a.table, a.summary, a.claims, metric_table())


def _cmd_fidelity(a: argparse.Namespace) -> None:
    from deepaug.analysis.fidelity import PUBLISHED, parse_settings, write_fidelity

    try:
        settings = parse_settings(a.settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    write_fidelity(a.table, a.out, metric_table(), settings, a.published or PUBLISHED)


def _cmd_analyze(a: argparse.Namespace) -> None:
    from deepaug.analysis.analyze import analyze
    from deepaug.analysis.selection import dev_best_candidate

    model, chosen = dev_best_candidate(a.model, a.eval, a.run_id, a.dev_metric)
    own = {"min_score": a.min_score, "alignment_uniformity": a.alignment_uniformity, "cka_rows": a.cka_rows}
    options = {k: v for k, v in own.items() if v is not None}  # the domain's own (text)
    analyze(a.domain, model, a.data, a.out, a.cka, a.n_samples, a.device, a.seed, a.layer, chosen, options)


def _cmd_select_layer(a: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    from deepaug.analysis.layer_choice import layer_selection
    from deepaug.io import atomic_path
    from deepaug.workflow.runs import analysis_dir, read_table

    runs = read_table(a.runs)
    matrices: dict = {}
    wanted = {str(Path(p).resolve()) for p in a.baseline_cka}
    baseline = runs[(runs["method"] == "none") & (runs["objective"] == "contrastive")]
    for row in baseline.drop_duplicates(["domain", "dataset", "setting", "seed"]).to_dict("records"):
        path = Path(analysis_dir(row["domain"], row["dataset"], row["setting"], row["seed"])) / "cka.npz"
        if str(path.resolve()) in wanted:
            with np.load(path) as npz:
                matrices.setdefault((row["domain"], row["dataset"]), []).append(npz["linear"])
    contrastive = {d: m for (d, objective), m in metric_table().items() if objective == "contrastive"}
    test = {d: m.test for d, m in contrastive.items()}
    dev = {d: m.dev for d, m in contrastive.items()}
    out = layer_selection(pd.read_csv(a.table), matrices, test, dev)  # best layer chosen on dev
    with atomic_path(a.out) as tmp:
        out.to_csv(tmp, index=False, float_format="%.4g")


def _cmd_inversion(a: argparse.Namespace) -> None:
    from deepaug.analysis.summary import write_inversion

    write_inversion(a.contrastive, a.supervised, a.out, metric_table())


def _cmd_check_config(a: argparse.Namespace) -> None:
    from deepaug.workflow.config import check_config_file

    base = None if a.base.lower() == "none" else a.base
    if base is not None and not Path(base).is_file():
        raise UsageError(
            f"--base {base}: no such file; give the config it is merged over, or 'none' to check the file alone"
        )
    if not Path(a.directory).is_dir():
        raise UsageError(
            f"--directory {a.directory}: no such folder; give the work directory as given to "
            f"snakemake --directory (default: the current one)"
        )
    if a.gpus is None:
        from deepaug.engine.gpus import visible_gpu_ids

        a.gpus = len(visible_gpu_ids()) or 8
    if a.gpus < 1:
        raise UsageError(f"--gpus {a.gpus}: give the number of GPUs the sweep runs on (1 or more)")
    print(check_config_file(a.config, base, a.directory, a.gpus))


def _cmd_efficiency(a: argparse.Namespace) -> None:
    from deepaug.workflow.config import merge_config, read_yaml, validate_config
    from deepaug.workflow.efficiency import report

    if not Path(a.directory).is_dir():
        raise UsageError(f"--directory {a.directory}: no such folder; give the work directory the workflow ran in")
    for path in [a.base, *a.config]:
        if path.lower() != "none" and not Path(path).is_file():
            raise UsageError(f"{path}: no such config file; give the config(s) the sweep ran with")
    config = read_yaml(a.base) if a.base.lower() != "none" else {}
    for path in a.config:
        config = merge_config(config, read_yaml(path))
    print(report(validate_config(config), a.directory, a.out))


def _setup_efficiency(p: argparse.ArgumentParser) -> None:
    from deepaug.workflow.config import REPO_CONFIG

    p.add_argument("config", nargs="*", help="the config file(s) the sweep ran with (merged over --base, in order)")
    p.add_argument("--base", default=str(REPO_CONFIG), help="the config they are merged over (default: config.yaml)")
    p.add_argument("--directory", default=".", help="the work directory (its benchmarks/ folder)")
    p.add_argument("--out", default=None, help="also write the table as CSV here")


def _cmd_bench(a: argparse.Namespace) -> None:
    from deepaug.bench import run_command

    run_command(a)


def _setup_bench(p: argparse.ArgumentParser) -> None:
    from deepaug.bench import add_arguments

    add_arguments(p)


def _setup_aggregate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", required=True, help="the run table (results/runs.tsv)")
    p.add_argument("--objective", default="contrastive", choices=["contrastive", "supervised"])
    p.add_argument(
        "--file", default="eval.json", help="the file of each run's directory to join (eval.json, analysis.json)"
    )
    p.add_argument(
        "--per-setting",
        action="store_true",
        help="one row per setting and seed, from its analysis directory (results/analysis/...)",
    )
    p.add_argument("--out", required=True)


def _setup_select_tuned(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", required=True, help="every run's scores (aggregate's output)")
    p.add_argument("--out", required=True, help="the selected runs' table")
    p.add_argument(
        "--tuned",
        nargs="*",
        default=[],
        metavar="DOMAIN=AXES",
        help="axes chosen on dev per domain, e.g. text=lr,batch_size (none: every run is kept)",
    )


def _setup_summarize(p: argparse.ArgumentParser) -> None:
    p.add_argument("table")
    p.add_argument("--summary", required=True)
    p.add_argument("--claims", required=True)


def _setup_fidelity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", required=True, help="the contrastive runs' table (results/table.csv)")
    p.add_argument("--out", required=True, help="the fidelity table (results/fidelity.csv)")
    p.add_argument(
        "--published",
        default=None,
        help="the published numbers with their sources (default: the package's deepaug/analysis/published.yaml)",
    )
    p.add_argument(
        "--settings",
        default=None,
        help='JSON {"domain/dataset/setting": {"train.epochs": 1000, ...}}: the settings each baseline ran with (the '
        "workflow passes them); without it the published recipes are not checked and the table says so",
    )


def _setup_analyze(p: argparse.ArgumentParser) -> None:
    from deepaug.domains import registry

    p.add_argument("--domain", choices=sorted(registry()), required=True)
    p.add_argument(
        "--model",
        nargs="+",
        required=True,
        help="model.pt of the run; or of each candidate run of a setting (its tuned axes, e.g. lr x "
        "batch): the dev-best is analysed, as select-tuned reports it",
    )
    p.add_argument(
        "--eval", nargs="*", default=[], help="each candidate's eval.json (its dev score), in --model's order"
    )
    p.add_argument("--run-id", nargs="*", default=[], help="each candidate's run id, in --model's order")
    p.add_argument("--dev-metric", default=None, help="the eval.json score the candidates are chosen by")
    p.add_argument("--data", required=True, help="prepared .npz (vision) or similarity-task parquet (text)")
    p.add_argument("--out", required=True, help="analysis.json")
    p.add_argument("--cka", required=True, help="cka.npz (linear and rbf matrices)")
    p.add_argument("--n-samples", type=int, default=512)
    p.add_argument("--min-score", type=float, default=None, help="text: pairs scored at least this are positives (4.0)")
    p.add_argument(
        "--alignment-uniformity",
        choices=["wang_isola", "author"],
        default=None,
        help="text: Wang & Isola's alignment/uniformity (default) or the author's variant",
    )
    p.add_argument(
        "--cka-rows", choices=["token_means", "token_rows"], default=None, help="text: CKA rows (token_means)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--layer", type=int, default=None, help="the layer the run's Deep Augmentation targeted (none: baseline)"
    )


def _setup_select_layer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", required=True)
    p.add_argument("--runs", required=True, help="the run table (results/runs.tsv): which setting each cka.npz is")
    p.add_argument("--baseline-cka", nargs="+", required=True)
    p.add_argument("--out", required=True)


def _setup_inversion(p: argparse.ArgumentParser) -> None:
    p.add_argument("--contrastive", required=True, help="the contrastive sweep's table")
    p.add_argument("--supervised", required=True, help="the supervised counterpart's table")
    p.add_argument("--out", required=True)


def _setup_check_config(p: argparse.ArgumentParser) -> None:
    from deepaug.workflow.config import REPO_CONFIG

    p.add_argument("config", nargs="+", help="config file(s), as passed to snakemake --configfile (merged in order)")
    p.add_argument(
        "--base",
        default=str(REPO_CONFIG),
        help="the config it is merged over, as Snakemake merges it (default: the repository's "
        "config.yaml; 'none' validates the file alone)",
    )
    p.add_argument(
        "--directory",
        default=".",
        help="the work directory, as given to snakemake --directory (default: the current one): "
        "prepared encoders (data/text/models) are looked up there, and an earlier run's benchmark files "
        "(benchmarks/train/, results/bench/throughput.json) give the sweep's GPU time",
    )
    p.add_argument(
        "--gpus",
        type=int,
        default=None,
        help="GPUs the wall time is estimated for (default: this machine's, else 8)",
    )


# The workflow's and analyses' commands (the domains' own are in deepaug/domains/<name>/cli.py):
# name -> (help, set-up of its arguments, handler, the module whose code it runs)
COMMANDS = {
    "aggregate": (
        "one tidy CSV from every run's eval.json",
        _setup_aggregate,
        _cmd_aggregate,
        "deepaug.workflow.aggregate",
    ),
    "select-tuned": (
        "per setting and seed, the dev-best run of the tuned axes (e.g. lr x batch)",
        _setup_select_tuned,
        _cmd_select_tuned,
        "deepaug.analysis.selection",
    ),
    "summarize": (
        "baseline vs best setting with a paired test, and the paper's claims",
        _setup_summarize,
        _cmd_summarize,
        "deepaug.analysis.summary",
    ),
    "fidelity": (
        "the baselines against the published numbers: mean and t interval over seeds, source, verdict",
        _setup_fidelity,
        _cmd_fidelity,
        "deepaug.analysis.fidelity",
    ),
    "analyze": (
        "CKA between layers, alignment and uniformity of one run (the dev-best of a setting's candidates)",
        _setup_analyze,
        _cmd_analyze,
        "deepaug.analysis.analyze",
    ),
    "select-layer": (
        "layer recommended from the baseline's CKA vs the sweep's best",
        _setup_select_layer,
        _cmd_select_layer,
        "deepaug.analysis.layer_choice",
    ),
    "inversion": (
        "do the layer trends invert for supervised training?",
        _setup_inversion,
        _cmd_inversion,
        "deepaug.analysis.summary",
    ),
    "check-config": (
        "validate a config file merged over config.yaml, and count its runs",
        _setup_check_config,
        _cmd_check_config,
        "deepaug.workflow.config",
    ),
    "efficiency": (
        "CPU, memory and runtime use per rule, from the jobs' benchmark files (any cluster, no sacct)",
        _setup_efficiency,
        _cmd_efficiency,
        "deepaug.workflow.efficiency",
    ),
    "bench": (
        "time this project's loops against reference loops, interleaved (deepaug bench train)",
        _setup_bench,
        _cmd_bench,
        "deepaug.bench",
    ),
}


def commands() -> dict:
    """Every sub-command: the ones above and each domain's own (``deepaug/domains/<name>/cli.py`` with a
    ``COMMANDS`` dict in the same format), so a new domain is one folder, not an edit here. Read when a
    parser is built, not at import."""
    from importlib import import_module

    from deepaug.domains import domain_packages

    merged = dict(COMMANDS)
    for name in domain_packages():
        try:
            module = import_module(f"deepaug.domains.{name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name not in (f"deepaug.domains.{name}.cli", f"deepaug.domains.{name}"):
                raise
            continue
        clash = set(module.COMMANDS) & set(merged)
        if clash:
            raise RuntimeError(f"deepaug.domains.{name}.cli redefines the command(s) {', '.join(sorted(clash))}")
        merged.update(module.COMMANDS)
    return merged


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """All sub-commands; with ``only``, just that one's arguments are built (and its modules imported)."""
    parser = argparse.ArgumentParser(prog="deepaug", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, setup, handler, _) in commands().items():
        p = sub.add_parser(name, help=help_text)
        if only is None or only == name:
            setup(p)
        p.set_defaults(func=handler)
    return parser


def split_stages(argv: list[str]) -> list[list[str]]:
    stages, current = [], []
    for arg in argv:
        if arg == STAGE_SEPARATOR:
            stages.append(current)
            current = []
        else:
            current.append(arg)
    return [*stages, current]


# The extra that installs each optional package the commands import (pyproject.toml): a command whose package is
# missing (the library installed alone, `pip install deepaug`) says which extra to install instead of a traceback.
EXTRA_OF = {
    **dict.fromkeys(
        (
            "torchvision",
            "pandas",
            "scipy",
            "sklearn",
            "yaml",
            "jsonschema",
            "tqdm",
            "matplotlib",
            "seaborn",
            "simplejpeg",
        ),
        "pipeline",
    ),
    **dict.fromkeys(("transformers", "datasets", "pyarrow", "sentence_transformers"), "text"),
    "torch_geometric": "graph",
    **dict.fromkeys(("snakemake", "papermill", "nbconvert", "ipykernel"), "workflow"),
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """'pip install ...' for a package of an extra, or None for any other missing module."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRA_OF:
        return None
    extra = EXTRA_OF[top]
    also = "" if extra == "pipeline" else ",pipeline"
    return f"this command needs {top}, from the {extra!r} extra: pip install 'deepaug[{extra}{also}]'"


def main(argv: list[str] | None = None) -> int:
    """Run one stage, or several separated by ``::`` (in order; every stage's arguments are parsed
    before the first runs, so a bad flag of a later stage fails before hours of training). Exit
    status: 0 done, 1 a known failure (one line on stderr), 2 bad arguments."""
    try:
        return _main(argv)
    except ModuleNotFoundError as exc:
        hint = missing_extra(exc)
        if hint is None:
            raise
        argv = sys.argv[1:] if argv is None else argv
        print(f"deepaug {argv[0] if argv else ''}: error: {hint}".replace("deepaug : ", "deepaug: "), file=sys.stderr)
        return 1


def _main(argv: list[str] | None = None) -> int:
    from deepaug.errors import DeepAugError, UsageError

    argv = sys.argv[1:] if argv is None else argv
    stages = split_stages(argv)
    if len(stages) > 1 and not all(stages):
        print(f"deepaug: error: an empty stage around {STAGE_SEPARATOR!r} in: {' '.join(argv)}", file=sys.stderr)
        return 2
    known = commands()
    parsed = [build_parser(a[0] if a and a[0] in known else None).parse_args(a) for a in stages]
    from deepaug.engine import gpus

    for args in parsed:
        # the domain of a domain's command (pretrain-vision, eval-graph...): its runs per GPU
        gpus.current_domain = args.command.rsplit("-", 1)[-1] if "-" in args.command else None
        try:
            check_inputs(args)  # a later stage's inputs may be an earlier stage's outputs: checked in turn
            args.func(args)
        except UsageError as exc:
            print(f"deepaug {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except (DeepAugError, ValueError) as exc:
            print(f"deepaug {args.command}: error: {exc}", file=sys.stderr)
            return 1
        except RuntimeError as exc:  # CUDA out of memory in a run packed with others on one GPU
            if (sentence := gpus.packed_out_of_memory(exc)) is None:
                raise
            print(f"deepaug {args.command}: error: {sentence}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
