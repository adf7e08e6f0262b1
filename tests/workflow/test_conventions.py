"""Snakemake's workflow conventions: min_version, the workflow catalog's files, the `.test/` config (dry-run),
use as a Snakemake `module` from another workflow, and the container definition."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import yaml
from processes import run_group

ROOT = Path(__file__).resolve().parents[2]
TEST_CONFIG = ROOT / ".test" / "config" / "config.yaml"


def _snakemake(*args, cwd: Path, snakefile: Path):
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    return run_group(
        [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(cwd), *args],
        timeout=600,
        env=env,
        cwd=cwd.parent,
    )


def _jobs(stdout: str) -> dict[str, int]:
    block = stdout.split("Job stats:")[1].split("Reasons:")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def test_snakefile_states_the_minimum_snakemake_of_pyproject():
    text = (ROOT / "Snakefile").read_text()
    m = re.search(r'^min_version\("([\d.]+)"\)', text, re.M)
    assert m, "the Snakefile has no min_version(...)"
    import tomllib  # Python 3.11+ (the lock's Python)

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["workflow"]
    (snakemake,) = [d for d in deps if d.startswith("snakemake>=")]
    assert m.group(1).split(".")[0] == snakemake.split(">=")[1].split(",")[0].split(".")[0]


def test_workflow_catalog_files():
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    stack = catalog["usage"]["software-stack-deployment"]
    assert set(stack) == {"conda", "apptainer", "apptainer+conda", "report"}
    assert all(isinstance(v, bool) for v in stack.values())
    assert isinstance(catalog["usage"]["mandatory-flags"]["desc"], str)
    readme = (ROOT / "config" / "README.md").read_text()
    # every config file shipped is described there
    for path in [*sorted((ROOT / "config").rglob("*.yaml")), TEST_CONFIG]:
        assert path.name in readme, f"config/README.md does not describe {path.relative_to(ROOT)}"


def test_the_test_config_dry_runs_every_stage(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    res = _snakemake("-n", "--configfile", str(TEST_CONFIG), cwd=work, snakefile=ROOT / "Snakefile")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = _jobs(res.stdout)
    assert jobs["train"] == 6 and jobs["all"] == 1 and jobs["total"] == 21, jobs
    for rule in ("prepare_data", "figures_vision", "figures_text", "figures_graph", "summarize", "fidelity"):
        assert jobs.get(rule, 0) >= 1, (rule, jobs)


def test_usable_as_a_snakemake_module(tmp_path):
    """A tiny outer workflow imports this one as a module with its own config; the dry run plans the same jobs
    (prefixed rule names) and the rules run this checkout's library and notebooks, not the outer folder's."""
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "Snakefile").write_text(
        f'configfile: "{TEST_CONFIG}"\n\n\n'
        "module deepaug:\n"
        f'    snakefile: "{ROOT / "Snakefile"}"\n'
        "    config: config\n\n\n"
        "use rule * from deepaug as deepaug_*\n"
    )
    work = outer / "work"
    work.mkdir()
    res = _snakemake("-n", "-p", cwd=work, snakefile=outer / "Snakefile")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = _jobs(res.stdout)
    assert jobs["deepaug_train"] == 6 and jobs["deepaug_all"] == 1 and jobs["total"] == 21, jobs
    assert f"{ROOT}/notebooks/layer_sweep.ipynb" in res.stdout  # the module's notebooks, not outer/notebooks
    assert "python -m deepaug pretrain-vision" in res.stdout


def test_container_definition_copies_the_checkout_and_installs_the_lock():
    text = (ROOT / "container" / "deepaug.def").read_text()
    header = dict(re.findall(r"^(Bootstrap|From):\s*(\S+)$", text, re.M))
    assert header["Bootstrap"] == "docker"
    lock = next((ROOT / "requirements").glob("lock-linux-x86_64-py*.txt"))
    py = lock.stem.rsplit("-py", 1)[1]  # "311"
    assert header["From"].startswith(f"python:{py[0]}.{py[1:]}"), (header["From"], lock.name)
    sections = set(re.findall(r"^%(\w+)", text, re.M))
    assert {"files", "post", "environment", "runscript", "test"} <= sections
    files = re.search(r"^%files\n(.*?)^%", text, re.M | re.S).group(1)
    copied = {line.split()[0] for line in files.splitlines() if line.strip()}
    for path in copied:
        assert (ROOT / path).exists(), f"container/deepaug.def copies {path}, which the checkout lacks"
    # what the workflow needs at run time is copied
    assert {"Snakefile", "config.yaml", "rules", "envs", "notebooks", "report", "profiles", "src"} <= copied
    assert {"requirements", "scripts", "pyproject.toml"} <= copied  # what setup.sh installs from
    post = re.search(r"^%post\n(.*?)^%", text, re.M | re.S).group(1)
    assert "bash scripts/setup.sh" in post
    assert "snakemake -s /opt/deepaug/Snakefile" in text
