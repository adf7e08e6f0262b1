"""Names that become paths: one check for every place a config value names a folder or file.

A model name, a dataset name or a folder under ``data/`` is joined to a parent that the workflow owns and
later deletes (a failed job's outputs, a model copy being replaced). ``text.model.name: ".."`` once made
the model folder ``data/text`` itself, so clean-up deleted every prepared text file. Every such name is
checked here, both by the config schema (the same rule as a ``pattern``) and where the path is built:
letters, digits, ``_``, ``.``, ``-``, not starting with ``.`` or ``-`` (so never ``.``, ``..`` or a hidden
file), and at most one ``/`` where a hub id (``org/name``) is allowed. Stdlib only: the Snakefile uses it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from deepaug.errors import UnsafeNameError

# One path component: what the workflow's wildcards match (rules/common.smk, rules/data.smk).
PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
NAME_PATTERN = rf"^{PART}$"
# A hub id or a folder inside the work directory: ``name`` or ``org/name``. ``--`` is refused because the
# prepared copy's folder spells ``/`` as ``--`` (``org/name`` -> ``org--name``), and hub ids cannot have it.
ORG_NAME_PATTERN = rf"^(?!.*--){PART}(/{PART})?$"
ALLOWED = "letters, digits, '_', '.' and '-', not starting with '.' or '-'"
ORG_EXAMPLE = "one '/' between an organisation and a name, e.g. sentence-transformers/all-MiniLM-L6-v2"


def _reason(value: str, allow_org: bool) -> str | None:
    """Why ``value`` is not a safe name (None: it is); the first fault found, in words."""
    if value == "":
        return "it is empty"
    if value in (".", ".."):
        return f"{value!r} is the folder itself or its parent, not a name inside it"
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        return "an absolute path leaves the folder"
    odd = next((c for c in value if c.isspace() or not c.isprintable()), None)
    if odd is not None:
        return f"it contains whitespace or a control character ({odd!r})"
    bad = next((c for c in value if not (c.isascii() and (c.isalnum() or c in "_.-/"))), None)
    if bad is not None:
        return f"it contains {bad!r}, which is not allowed in a name (backslashes and shell characters never are)"
    parts = value.split("/")
    if len(parts) > 1 and not allow_org:
        return "'/' is not allowed here (a name is one folder)"
    if len(parts) > 2:
        return "it has more than one '/' (only organisation/name is allowed)"
    if any(p in ("", ".", "..") for p in parts):
        return "a part of it is empty, '.' or '..'"
    if any(p[0] in ".-" for p in parts):
        return "a part of it starts with '.' or '-'"
    if allow_org and "--" in value:
        return "'--' is reserved (the prepared copy's folder name writes '/' as '--')"
    return None


def name_problem(value, allow_org: bool = False) -> str | None:
    """None for a plain name (``org/name`` too where ``allow_org``), else what is wrong with ``value`` and
    what to write instead, as the end of a sentence (the schema's messages and :func:`safe_name` share it)."""
    if not isinstance(value, str):
        return f"{value!r} is not a name; give a text value of {ALLOWED}"
    reason = _reason(value, allow_org)
    if reason is None:
        return None
    allowed = ALLOWED + (f", with at most {ORG_EXAMPLE}" if allow_org else "")
    return f"{value!r} cannot name a folder because {reason}; use {allowed}"


def safe_name(value, what: str, allow_org: bool = False) -> str:
    """``value`` when it is a plain name, else :class:`UnsafeNameError` with one sentence naming ``what``
    (e.g. ``config key 'text.model.name'``)."""
    problem = name_problem(value, allow_org)
    if problem is not None:
        raise UnsafeNameError(f"{what}: {problem}")
    return value


def safe_join(parent, name, what: str, allow_org: bool = False) -> Path:
    """``parent / name`` after :func:`safe_name`, and only when the resolved path (symlinks followed,
    e.g. one planted at ``parent/name``) is strictly inside the resolved ``parent``."""
    safe_name(name, what, allow_org)
    path = Path(parent) / name
    root = Path(parent).resolve()
    resolved = path.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise UnsafeNameError(
            f"{what}: {path} leads to {resolved}, outside {parent}; remove the link at {path} or choose another name"
        )
    return path


def _spell(value: Any) -> str:
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+\-]", "-", text)


def run_id(objective: str, method: str, layer: int | str | None, stop_gradient: bool | None, spelled: dict) -> str:
    """A run's folder name under ``results/<domain>/<dataset>/``: its method, layer and stop-gradient, then
    each ``spelled`` setting (``{"rate": 0.25}`` -> ``_rate0.25``), e.g. ``dropout-L3-sg_rate0.25``; a
    supervised run's id starts with ``sup-``. ``layer`` may be the label of several layers at once (``all``,
    ``0-3-6``: ``dropout-Lall-sg``)."""
    where = layer if isinstance(layer, str) else int(layer) if layer is not None else None
    core = "none" if method == "none" else f"{method}-L{where}-{'sg' if stop_gradient else 'nosg'}"
    extra = "".join(f"_{name.replace('.', '-')}{_spell(v)}" for name, v in sorted(spelled.items()))
    return ("sup-" if objective == "supervised" else "") + core + extra
