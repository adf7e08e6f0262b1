"""Benchmarks: ``deepaug bench <name>`` (``python -m deepaug.bench [<name>] ...`` is an alias; without a
name it runs ``train``).

Every benchmark times a reference loop and a candidate loop (and optional variants) interleaved in one
process after a warm-up of each, reports the median and spread of the per-pair ratio, and writes one
JSON layout (:mod:`deepaug.bench.core`). Adding a benchmark is one module here with ``NAME``, ``HELP``,
``UNIT``, ``DESCRIPTION``, ``add_arguments(parser)``, optionally ``validate(args)``, and
``run(args, device) -> (comparison, figures)`` (``comparison`` from :func:`deepaug.bench.core.compare`),
listed in ``BENCHMARKS`` below.
"""

from __future__ import annotations

import argparse
import sys

from . import data, train

# name -> module; `deepaug bench <name>`
BENCHMARKS = {module.NAME: module for module in (train, data)}
DEFAULT = "train"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``deepaug bench``'s sub-commands, one per benchmark, each with its documented flags."""
    from deepaug.bench.core import HelpFormatter

    sub = parser.add_subparsers(
        dest="benchmark",
        required=True,
        metavar="BENCHMARK",
        title="benchmarks",
        description="each writes the same JSON layout (--out)",
    )
    for name, module in BENCHMARKS.items():
        p = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION, formatter_class=HelpFormatter)
        module.add_arguments(p)


def run_command(args: argparse.Namespace) -> dict:
    """The CLI's handler of ``deepaug bench <name> ...``."""
    from deepaug.bench.core import run

    return run(BENCHMARKS[args.benchmark], args)


def main(argv: list[str] | None = None) -> int:
    """``python -m deepaug.bench [<name>] [flags]``: the same as ``deepaug bench <name> [flags]``."""
    from deepaug.cli import main as cli_main

    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in BENCHMARKS:
        argv = [DEFAULT, *argv]
    return cli_main(["bench", *argv])
