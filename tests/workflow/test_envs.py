"""Conda cannot run here, so check what can be checked: every rule that runs code has a conda env,
every env file parses, every import of the code a rule runs is provided by that rule's env, and the
envs pin the versions of the lock file (requirements/lock-*.txt) that scripts/setup.sh installs."""

import ast
import hashlib
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from deepaug.cli import commands
from deepaug.engine.provenance import lock_info, lock_path, normalize, read_lock

ROOT = Path(__file__).resolve().parents[2]
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
            body = text[m.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            name = m.group(1) or m.group(3)
            conda = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", body)
            shell = re.search(r"shell:\s*\n((?:\s+\".*\"\n?)+)", body)
            rules[name] = {
                "conda": conda.group(1) if conda else None,
                "shell": " ".join(re.findall(r"\"(.*)\"", shell.group(1))) if shell else "",
            }
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
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            )
            for n in names:
                root = n.split(".")[0]
                if root == "deepaug":
                    third |= code_imports(n)
                elif root not in sys.stdlib_module_names:
                    third.add(root)
    return third


RULES = parse_rules()
CODE_RULES = {name: r for name, r in RULES.items() if r["shell"]}
# The generic per-run and data rules take their env from the job's domain (rules/common.smk conda_env,
# data_conda_env) and their command from the domain too: checked per domain below.
DOMAIN_ENV_RULES = {"train", "analyze", "prepare_data", "prepare_model"}


def test_every_rule_that_runs_code_has_a_conda_env():
    assert CODE_RULES, "no rules parsed"
    missing = [name for name, r in CODE_RULES.items() if not r["conda"] and name not in DOMAIN_ENV_RULES]
    assert not missing, f"rules without conda: {missing}"
    text = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    for rule in DOMAIN_ENV_RULES:
        body = text.split(f"rule {rule}:", 1)[1].split("\nrule ", 1)[0]
        assert re.search(r"conda:\s*\n\s*(conda_env|data_conda_env)\n", body), f"rule {rule}: no domain env"


@pytest.mark.parametrize("env", sorted((ROOT / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_files_parse_and_pin_python(env):
    pkgs = env_packages(env)
    assert "python" in pkgs and pkgs


def _missing(env_file: str, needed: set) -> list[str]:
    env = env_packages(ROOT / "envs" / env_file)
    return sorted(DISTRIBUTION.get(n, n).lower() for n in needed if DISTRIBUTION.get(n, n).lower() not in env)


def _command_imports(command: str) -> set:
    needed = set()
    for name in re.findall(r"python -m deepaug ([\w-]+)", command):
        needed |= code_imports(commands()[name][3])
    return needed


def _domain_commands(name):
    """The data, training, evaluation and analysis commands of one run of each objective of a domain,
    as the workflow makes them from the paper config."""
    from deepaug.domains import get
    from deepaug.workflow.config import REPO_CONFIG, read_yaml, validate_config
    from deepaug.workflow.runs import expand

    domain = get(name)
    config = validate_config(read_yaml(REPO_CONFIG))
    out = {"run": [], "data": []}
    for run in [r for r in expand(config) if r.domain == name and r.method == "none"][:1] + [
        r for r in expand(config) if r.domain == name and r.objective == "supervised"
    ][:1]:
        data = domain.analysis_inputs(config, run.section, run)["data"]
        out["run"] += [
            domain.run_command(run, "o", "c", {}, {}),
            domain.analyze_command([run], data, "a.json", "c.npz", config, "cpu"),
        ]
        for path in domain.data_files(run.section, [run]):
            item = path.split("/", 2)[2]
            out["data"].append(domain.prepare_command(item, path, config))
    return out


@pytest.mark.parametrize("name", ["vision", "text", "graph"])
def test_each_domains_envs_provide_every_import_of_its_commands(name):
    from deepaug.domains import get

    domain, commands = get(name), _domain_commands(name)
    assert commands["run"] and commands["data"]
    needed = set().union(*map(_command_imports, commands["run"]))
    assert needed, f"{name}: found no command to check"
    assert not _missing(domain.env, needed), (
        f"{name}'s jobs import {_missing(domain.env, needed)}, absent from envs/{domain.env}"
    )
    needed = set().union(*map(_command_imports, commands["data"]))
    assert not _missing(domain.data_env, needed), (
        f"{name}'s data jobs import {_missing(domain.data_env, needed)}, absent from envs/{domain.data_env}"
    )


@pytest.mark.parametrize("rule", sorted(set(CODE_RULES) - DOMAIN_ENV_RULES))
def test_rule_env_provides_every_import_of_its_code(rule):
    r = CODE_RULES[rule]
    env = env_packages((ROOT / "rules" / r["conda"]).resolve())
    needed = set()
    for command in re.findall(r"python -m deepaug ([\w-]+)", r["shell"]):
        needed |= code_imports(commands()[command][3])
    for module in re.findall(r"python -m (deepaug\.\w+)", r["shell"]):
        needed |= code_imports(module)
    if "papermill" in r["shell"]:
        needed |= {"papermill", "nbconvert", "ipykernel"} | notebook_imports(ROOT / "notebooks" / "layer_sweep.ipynb")
    assert needed, f"rule {rule}: found no command to check in {r['shell']!r}"
    missing = sorted(DISTRIBUTION.get(n, n).lower() for n in needed if DISTRIBUTION.get(n, n).lower() not in env)
    assert not missing, f"rule {rule} runs code importing {missing}, absent from {r['conda']}"


def _split(requirement: str) -> tuple[str, str]:
    name = re.split(r"[<>=!\s\[]", requirement, maxsplit=1)[0]
    return normalize(name), requirement[len(name) :].replace(" ", "")


# Extras the lock does not hold: dali (NVIDIA DALI for image folders, vision.train.loader: dali) is a GPU-only
# wheel of about 1 GB that neither the tests nor the demo need; installed on demand with pip install -e '.[dali]'.
UNLOCKED_EXTRAS = {"dali"}


def _pyproject_specs() -> dict[str, str]:
    """{normalised name: version specifier} of pyproject.toml's dependencies and every extra the lock holds."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + [
        r for k, extra in extras.items() if k not in UNLOCKED_EXTRAS for r in extra
    ]
    return dict(_split(r) for r in requirements)


LOCK = lock_path("linux-x86_64-py311")  # the platform of the conda envs (python=3.11, CUDA wheels)
ENVS = sorted((ROOT / "envs").glob("*.yaml"))


def test_env_versions_agree_with_pyproject():
    """An env pin outside pyproject.toml's range would run the rules with a version the library does
    not claim to support."""
    specs = _pyproject_specs()
    checked = 0
    for env in ENVS:
        for name, line in env_packages(env).items():
            name, spec = _split(line)
            if specs.get(name) and spec.startswith("=="):
                assert SpecifierSet(specs[name]).contains(spec[2:], prereleases=True), (
                    f"{env.name}: {line!r} is outside pyproject.toml's {name}{specs[name]}"
                )
                checked += 1
    assert checked >= 4  # torch and torchvision at least, in several envs


def test_lock_exists_and_parses():
    pins = read_lock(LOCK)
    assert {"torch", "torchvision", "snakemake", "transformers", "pip", "setuptools"} <= set(pins), (
        f"{LOCK.name} lacks core packages: regenerate it with bash scripts/lock.sh"
    )
    assert "deepaug" not in pins, f"{LOCK.name} pins the project itself; scripts/setup.sh installs it editable"


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_pins_match_the_lock(env):
    """Every package of a conda env is pinned (==) to the version in the lock, and the env's Python is
    the lock's, so a GPU machine's rules run what the CPU suite tested."""
    pins = read_lock(LOCK)
    python_tag = LOCK.stem.rsplit("-py", 1)[1]  # "311"
    for name, line in env_packages(env).items():
        if name == "pip":
            continue
        if name == "python":
            assert line.replace("python=", "").replace(".", "") == python_tag, (
                f"{env.name}: {line!r} but {LOCK.name} was made on Python {python_tag[0]}.{python_tag[1:]}"
            )
            continue
        name, spec = _split(line)
        assert spec.startswith("=="), (
            f"{env.name}: {line!r} is not pinned; pin it to {LOCK.name}: {name}=={pins.get(name)}"
        )
        assert name in pins, (
            f"{env.name}: {line!r} is not in {LOCK.name}; add it to the project and refresh the lock (bash scripts/lock.sh)"  # noqa: E501
        )
        assert spec[2:] == pins[name], (
            f"{env.name}: {line!r} but {LOCK.relative_to(ROOT)} has {name}=={pins[name]}; bash scripts/lock.sh --from .venv rewrites the pins"  # noqa: E501
        )


def test_lock_satisfies_pyproject():
    """The lock holds every dependency pyproject.toml names (extras included), each within its range."""
    pins = read_lock(LOCK)
    for name, spec in _pyproject_specs().items():
        assert name in pins, (
            f"pyproject.toml asks for {name} but {LOCK.name} lacks it: refresh it (bash scripts/lock.sh)"
        )
        if spec:
            assert SpecifierSet(spec).contains(pins[name], prereleases=True), (
                f"{LOCK.name} has {name}=={pins[name]}, outside pyproject.toml's {name}{spec}"
            )


def test_ranges_exclude_untested_majors():
    """rules/common.smk relies on undocumented Snakemake internals, tested with Snakemake 9 only, so 8
    and 10 are out; transformers, datasets and torch are capped at their next major release."""
    specs = _pyproject_specs()
    out_of_range = {
        "snakemake": ["8.30.0", "10.0.0"],
        "transformers": ["6.0.0"],
        "datasets": ["6.0.0"],
        "torch": ["3.0.0"],
        "torchvision": ["1.0.0"],
    }
    for name, versions in out_of_range.items():
        for version in versions:
            assert not SpecifierSet(specs[name]).contains(version), (
                f"pyproject.toml: {name}{specs[name]} admits {version}"
            )


def test_lock_pins_a_matching_torch_pair():
    """environment.md: torch and torchvision only work as a pair (torchvision 0.N+15 with torch 2.N),
    and torch 2.13.0 (a local CPU wheel) has no importable torchvision here."""
    pins = read_lock(LOCK)
    torch_v, vision_v = Version(pins["torch"]), Version(pins["torchvision"])
    assert (vision_v.major, vision_v.minor) == (0, torch_v.minor + 15) and torch_v.major == 2, (
        f"{LOCK.name}: torch {torch_v} with torchvision {vision_v} is not a matching pair"
    )
    assert torch_v != Version("2.13.0"), f"{LOCK.name}: torch 2.13.0 has no working torchvision on these machines"


def test_provenance_records_the_lock_hash():
    import torch

    from deepaug.engine.provenance import provenance

    prov = provenance({"seed": 0}, torch.device("cpu"), 1.0)
    lock = prov["lock"]
    expected = lock_path()
    assert lock["file"] == str(expected.relative_to(ROOT))
    if expected.is_file():
        assert lock["sha256"] == hashlib.sha256(expected.read_bytes()).hexdigest()
    else:
        assert lock["sha256"] is None and "no lock file" in lock["note"]


def test_lock_info_reports_drift(tmp_path):
    """A package installed at another version than locked is named, with both versions."""
    import yaml as _yaml

    fake = tmp_path / "lock-test.txt"
    fake.write_text(f"# header\nPyYAML=={_yaml.__version__}.post999\nno-such-package-xyz==1.0\n")
    info = lock_info(fake)
    assert info["sha256"] == hashlib.sha256(fake.read_bytes()).hexdigest()
    assert info["differs"] == {"pyyaml": f"{_yaml.__version__} (lock {_yaml.__version__}.post999)"}
    assert info["not_installed"] == 1 and info["installed_as_locked"] is False


def test_read_lock_refuses_a_line_that_is_not_a_pin(tmp_path):
    bad = tmp_path / "lock-bad.txt"
    bad.write_text("numpy>=2\n")
    with pytest.raises(ValueError, match=r"lock-bad.txt:1: 'numpy>=2' is not 'name==version'"):
        read_lock(bad)


def test_lock_path_command_says_whether_this_platform_has_a_lock(monkeypatch, capsys):
    from deepaug.engine import provenance as prov

    monkeypatch.setattr(prov, "platform_tag", lambda: "linux-x86_64-py311")
    assert prov.main(["lock-path"]) == 0
    assert capsys.readouterr().out.strip() == "requirements/lock-linux-x86_64-py311.txt"
    monkeypatch.setattr(prov, "platform_tag", lambda: "plan9-mips-py27")
    assert prov.main(["lock-path"]) == 1  # scripts/setup.sh then falls back to the ranges, with a warning


def test_setup_is_a_no_op_in_an_environment_that_matches_the_lock():
    """scripts/setup.sh must not reinstall anything where the venv already is as locked (it is run
    before every test and demo run). Skipped in a venv that differs from the lock, where setup.sh would
    install: tests never install."""
    import os
    import subprocess

    venv = Path(sys.prefix)
    if not (venv / "bin" / "python").exists() or lock_info()["installed_as_locked"] is not True:
        pytest.skip(f"the interpreter's environment ({venv}) is not installed as {lock_path().name}")
    env = {**os.environ, "DEEPAUG_VENV": str(venv)}
    env.pop("DEEPAUG_UNLOCKED", None)
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh")], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    digest = hashlib.sha256(lock_path().read_bytes()).hexdigest()[:16]
    assert f"packages as locked in {lock_path().relative_to(ROOT)} (sha256 {digest}" in out.stdout
    assert "warning" not in out.stderr


def test_lock_script_reproduces_the_lock_and_rewrites_env_pins(tmp_path):
    """``scripts/lock.sh --from VENV`` (the refresh command) writes the committed lock again from a venv
    installed as locked, and puts a drifted env pin back to the lock's version."""
    import os
    import shutil
    import subprocess

    venv = Path(sys.prefix)
    if not (venv / "bin" / "python").exists() or lock_info()["installed_as_locked"] is not True:
        pytest.skip(f"the interpreter's environment ({venv}) is not installed as {lock_path().name}")
    for folder in ("scripts", "src", "envs", "requirements"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    train = tmp_path / "envs" / "train.yaml"
    train.write_text(re.sub(r'"torch==[^"]+"', '"torch==2.6.0"', train.read_text()))
    out = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "lock.sh"), "--from", str(venv)],
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    written = tmp_path / "requirements" / lock_path().name
    assert written.read_text() == lock_path().read_text(), "lock.sh --from the locked venv wrote a different lock"
    assert "train.yaml: torch 2.6.0 -> " in out.stdout
    assert env_packages(train)["torch"] == f"torch=={read_lock(written)['torch']}"


def test_setup_without_a_lock_for_the_platform_warns_and_falls_back(tmp_path):
    """A checkout with no lock for this platform/Python (here: the lock removed) still sets up, from
    pyproject.toml's ranges, after one warning line. The venv used already has every package, so
    nothing is installed."""
    import os
    import shutil
    import subprocess

    venv = Path(sys.prefix)
    if not (venv / "bin" / "python").exists() or lock_info()["installed_as_locked"] is not True:
        pytest.skip(f"the interpreter's environment ({venv}) is not installed as {lock_path().name}")
    for folder in ("scripts", "src"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "setup.sh")],
        env={**os.environ, "DEEPAUG_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "warning" in line]
    expected = (
        f"setup.sh: warning: no lock file {lock_path().relative_to(ROOT)} for this platform/Python; "
        "installing the newest versions pyproject.toml allows (untested combination)"
    )
    assert warnings == [expected]
    assert "deepaug environment ready" in out.stdout
