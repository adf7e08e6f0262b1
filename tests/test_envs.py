"""Conda cannot run here, so check what can be checked: every rule that runs code has a conda env,
every env file parses, and every import of the code a rule runs is provided by that rule's env."""

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

from deepaug.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# import name -> distribution name where they differ
DISTRIBUTION = {"yaml": "pyyaml", "sklearn": "scikit-learn", "IPython": "ipykernel", "PIL": "pillow"}


def parse_rules():
    """{rule: {"conda": path or None, "shell": text}} from rules/*.smk (``use rule`` inherits)."""
    rules, inherits = {}, {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        text = smk.read_text()
        heads = list(re.finditer(r"^(?:rule (\w+)|use rule (\w+) as (\w+) with):", text, re.M))
        for i, m in enumerate(heads):
            body = text[m.end(): heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            name = m.group(1) or m.group(3)
            conda = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", body)
            shell = re.search(r"shell:\s*\n((?:\s+\".*\"\n?)+)", body)
            rules[name] = {"conda": conda.group(1) if conda else None,
                           "shell": " ".join(re.findall(r"\"(.*)\"", shell.group(1))) if shell else ""}
            if m.group(2):
                inherits[name] = m.group(2)
    for child, parent in inherits.items():
        for key in ("conda", "shell"):
            rules[child][key] = rules[child][key] or rules[parent][key]
    return rules


def env_packages(path: Path) -> dict[str, str]:
    """{distribution name: its spec line} of a conda env file (conda and pip dependencies)."""
    env = yaml.safe_load(path.read_text())
    out = {}
    deps = env["dependencies"]
    for dep in deps:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-"):
                continue
            name = re.split(r"[<>=!\s\[]", item, maxsplit=1)[0].lower()
            out[name] = item
    return out


def _module_file(module: str) -> Path:
    base = SRC / Path(*module.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


def _imports(module: str, nested: bool):
    """(third-party roots, deepaug modules) imported by a module; ``nested``: also inside functions."""
    tree = ast.parse(_module_file(module).read_text())
    nodes = ast.walk(tree) if nested else tree.body
    third, own = set(), set()
    package = module if _module_file(module).name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                own.add(target)
                if not node.module:
                    own.update(f"{base}.{a.name}" for a in node.names)
                continue
            names = [node.module]
        else:
            continue
        for name in names:
            root = name.split(".")[0]
            if root == "deepaug":
                own.add(name)
            elif root not in sys.stdlib_module_names and root != "__future__":
                third.add(root)
    return third, {m for m in own if _module_file(m).exists()}


def code_imports(entry: str) -> set[str]:
    """Third-party packages a stage needs: everything its entry module imports (also inside its
    functions, which run), and the module-level imports of every project module reached from there."""
    third, todo = _imports(entry, nested=True)
    seen = {entry}
    todo = set(todo) | _imports("deepaug.cli", nested=False)[1]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        t, own = _imports(module, nested=False)
        third |= t
        todo |= own - seen
    return third


def notebook_imports(path: Path) -> set[str]:
    import json

    third = set()
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for n in names:
                root = n.split(".")[0]
                if root == "deepaug":
                    third |= code_imports(n)
                elif root not in sys.stdlib_module_names:
                    third.add(root)
    return third


RULES = parse_rules()
CODE_RULES = {name: r for name, r in RULES.items() if r["shell"]}


def test_every_rule_that_runs_code_has_a_conda_env():
    assert CODE_RULES, "no rules parsed"
    missing = [name for name, r in CODE_RULES.items() if not r["conda"]]
    assert not missing, f"rules without conda: {missing}"


@pytest.mark.parametrize("env", sorted((ROOT / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_files_parse_and_pin_python(env):
    pkgs = env_packages(env)
    assert "python" in pkgs and pkgs


@pytest.mark.parametrize("rule", sorted(CODE_RULES))
def test_rule_env_provides_every_import_of_its_code(rule):
    r = CODE_RULES[rule]
    env = env_packages((ROOT / "rules" / r["conda"]).resolve())
    needed = set()
    for command in re.findall(r"python -m deepaug ([\w-]+)", r["shell"]):
        needed |= code_imports(COMMANDS[command][3])
    for module in re.findall(r"python -m (deepaug\.\w+)", r["shell"]):
        needed |= code_imports(module)
    if "papermill" in r["shell"]:
        needed |= {"papermill", "nbconvert", "ipykernel"} | notebook_imports(ROOT / "notebooks" / "layer_sweep.ipynb")
    assert needed, f"rule {rule}: found no command to check in {r['shell']!r}"
    missing = sorted(DISTRIBUTION.get(n, n).lower() for n in needed if DISTRIBUTION.get(n, n).lower() not in env)
    assert not missing, f"rule {rule} runs code importing {missing}, absent from {r['conda']}"


def _split(requirement: str) -> tuple[str, str]:
    name = re.split(r"[<>=!\s\[]", requirement, maxsplit=1)[0]
    return name.lower(), requirement[len(name):].replace(" ", "")


def test_env_versions_agree_with_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    specs = dict(_split(r) for r in requirements)
    checked = 0
    for env in (ROOT / "envs").glob("*.yaml"):
        for name, line in env_packages(env).items():
            if specs.get(name):
                assert _split(line)[1] == specs[name], f"{env.name}: {line!r} but pyproject.toml says {name}{specs[name]}"
                checked += 1
    assert checked >= 4  # torch and torchvision at least, in several envs
