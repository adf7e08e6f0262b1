"""The command-line arguments every domain's stages share: a ``--flag`` per settings field, the files a
stage reads and writes, and the settings built back from the parsed flags (validated).

A domain's ``cli.py`` declares its stages with these (``COMMANDS``: name -> (help, set-up of its
arguments, handler, the module whose code it runs)); the top-level CLI (:mod:`deepaug.cli`) merges them.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from importlib import import_module

from deepaug.core.vocabulary import parse_layers
from deepaug.errors import UsageError


def parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes"):
        return True
    if s.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"expected true/false, got {s!r}")


def optional_int(s: str) -> int | None:
    return None if s.lower() in ("none", "") else int(s)


def optional_float(s: str) -> float | None:
    return None if s.lower() in ("none", "") else float(s)


def optional_bool(s: str) -> bool | None:
    return None if s.lower() in ("none", "") else parse_bool(s)


# a field's annotation -> how its flag's value is read (layers at once: "0,3,6")
ARG_TYPES = {
    "int": int,
    "float": float,
    "str": str,
    "bool": parse_bool,
    "int | None": optional_int,
    "float | None": optional_float,
    "bool | None": optional_bool,
    "tuple[int, ...] | None": parse_layers,
}
CKPT_HELP = "checkpoints for resumption (keep outside the job outputs)"


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """One ``--flag`` per dataclass field (``snake_case`` -> ``--snake-case``), typed from the annotation."""
    for f in fields(cls):
        kind = ARG_TYPES[str(f.type)]
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default)


def add_stage_arguments(parser: argparse.ArgumentParser, cls, *files: str) -> None:
    """A training or evaluation stage's arguments: its files (each required; ``--ckpt-dir`` with its help)
    and one flag per setting of ``cls``."""
    for flag in files:
        parser.add_argument(flag, required=True, help=CKPT_HELP if flag == "--ckpt-dir" else None)
    add_dataclass_arguments(parser, cls)


def settings_from_args(cls, a: argparse.Namespace):
    """The dataclass ``cls`` from the parsed flags, validated: an impossible value is a usage error."""
    s = cls(**{k: v for k, v in vars(a).items() if k in cls.__dataclass_fields__})
    if hasattr(s, "validate"):
        try:
            s.validate()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return s


def settings_stage(module: str, settings: str, function: str, *files: str):
    """(set-up, handler) of a stage that builds the dataclass ``module.settings`` from its flags and calls
    ``module.function(settings, *files)`` with the file flags' values in order (``--out-dir`` -> ``a.out_dir``).
    The module is imported when the stage's parser is built or the stage runs, never at import time."""
    names = [flag.lstrip("-").replace("-", "_") for flag in files]

    def setup(p: argparse.ArgumentParser) -> None:
        add_stage_arguments(p, getattr(import_module(module), settings), *files)

    def handler(a: argparse.Namespace) -> None:
        code = import_module(module)
        getattr(code, function)(settings_from_args(getattr(code, settings), a), *(getattr(a, n) for n in names))

    return setup, handler


def domain_parser(commands: dict) -> argparse.ArgumentParser:
    """A parser of just one domain's ``commands`` (for tests, and to run them without the top-level CLI)."""
    parser = argparse.ArgumentParser(prog="deepaug")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, setup, handler, _) in commands.items():
        p = sub.add_parser(name, help=help_text)
        setup(p)
        p.set_defaults(func=handler)
    return parser
