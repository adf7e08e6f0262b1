"""Imports point one way: base (errors, paths, io, the package) <- core <- engine <- analysis <- domains <-
workflow <- bench / cli. Every import is read from the source (function-local ones too, which a lazy
import would otherwise hide), so a lower room reaching into a higher one fails here, naming file and line."""

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "deepaug"
ROOMS = {
    "": 0,  # deepaug/__init__.py
    "errors": 0,
    "paths": 0,
    "io": 0,
    "core": 1,
    "engine": 2,
    "analysis": 3,
    "domains": 4,
    "workflow": 5,
    "bench": 6,
    "cli": 6,
    "__main__": 6,
}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def deepaug_imports(path: Path):
    """``(line, imported module)`` of every ``deepaug`` import of a file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_of(path) if path.name == "__init__.py" else module_of(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            if name == "deepaug" or name.startswith("deepaug."):
                yield node.lineno, name


def test_the_rooms_cover_every_module():
    unknown = sorted({room(module_of(p)) for p in SRC.rglob("*.py")} - set(ROOMS))
    assert not unknown, f"modules outside the known rooms: {unknown}; give each a rank in ROOMS"


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_higher_room(path):
    mine = room(module_of(path))
    upward = [
        f"{path.relative_to(SRC.parent)}:{line} ({mine or 'deepaug'}) imports {name} ({room(name)})"
        for line, name in deepaug_imports(path)
        if ROOMS[room(name)] > ROOMS[mine]
    ]
    assert not upward, "\n".join(upward)


def test_a_planted_upward_import_is_caught(tmp_path, monkeypatch):
    # the check itself: a core module importing the workflow is reported with its line
    fake = SRC / "core" / "settings.py"
    text = fake.read_text() + "\n\ndef _x():\n    from deepaug.workflow.runs import run_id\n"
    copy = tmp_path / "deepaug" / "core" / "settings.py"
    copy.parent.mkdir(parents=True)
    copy.write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "deepaug")
    found = list(deepaug_imports(copy))
    assert "deepaug.workflow.runs" in [name for _, name in found]
    assert ROOMS[room("deepaug.workflow.runs")] > ROOMS[room(module_of(copy))]
