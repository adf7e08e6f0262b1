"""Every experiment config (`config.yaml` and `config/paper/*.yaml`) is listed in the README's table of the
paper's experiments, is valid for `deepaug check-config` with the runs and jobs that table states, switches off
the domains it does not run, and plans exactly that many jobs in a real `snakemake -n` (about 10 s a file)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepaug.workflow.config import REPO_CONFIG, check_config_file, read_yaml

ROOT = REPO_CONFIG.parent
README = ROOT / "README.md"
# ImageNet is never downloaded: its configs need the user's copy named (any path plans; the data job checks it)
IMAGENET_ROOT = "data: {imagenet_root: /nonexistent/ILSVRC2012}\n"


def readme_table() -> dict[str, tuple[int, int]]:
    """{config path: (training runs, jobs of `all`)} from the README's table of experiments."""
    section = README.read_text().split("### The paper's experiments, one config each", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| [^|]+ \| `([^`]+\.yaml)` \| ([\d,]+) \| ([\d,]+) \|$", section, re.M)
    return {path: (int(runs.replace(",", "")), int(jobs.replace(",", ""))) for path, runs, jobs in rows}


TABLE = readme_table()
CONFIGS = ["config.yaml"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "config" / "paper").glob("*.yaml"))


def test_every_experiment_config_is_in_the_readme_table_and_nothing_else():
    assert len(TABLE) >= 10, "the README's table of experiments was not found or lost rows"
    assert sorted(TABLE) == sorted(CONFIGS), (
        "README's 'The paper's experiments, one config each' must list exactly the files of config/paper/ "
        f"and config.yaml: missing {sorted(set(CONFIGS) - set(TABLE))}, stale {sorted(set(TABLE) - set(CONFIGS))}"
    )


def _files(path: str, tmp_path: Path) -> list[Path]:
    """The config and, for an ImageNet config, a second file naming the user's ILSVRC-2012 copy."""
    vision = read_yaml(ROOT / path).get("vision") or {}
    if "imagenet100" not in vision.get("datasets", []):
        return [ROOT / path]
    extra = tmp_path / "imagenet-root.yaml"
    extra.write_text(IMAGENET_ROOT)
    return [ROOT / path, extra]


@pytest.mark.parametrize("path", CONFIGS)
def test_each_experiment_config_plans_the_runs_and_jobs_the_readme_states(path, tmp_path):
    runs, jobs = TABLE[path]
    files = _files(path, tmp_path)
    report = check_config_file(files, directory=tmp_path)
    assert f"\n  {runs} training runs in all" in report, report
    assert f"\n    all: {jobs} jobs ({runs} training runs" in report, report
    config = read_yaml(ROOT / path)
    if path != "config.yaml":
        # a paper config switches off what it does not run, instead of inheriting the whole paper sweep
        assert all(d in config for d in ("vision", "text", "graph")), f"{path}: name every domain (null = off)"
        assert "inherited" not in report, report
        header = (ROOT / path).read_text().split("\n", 1)[0]
        assert header.startswith("# "), f"{path}: starts with a comment saying what it regenerates"
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "1", "-n", "--quiet", "rules"]
        + ["--configfile", *map(str, files)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    total = re.search(r"^total\s+(\d+)$", out, re.M)
    assert total and int(total.group(1)) == jobs, out[-3000:]


def _uncommented(line: str) -> str:
    return line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""


def test_the_readme_config_excerpts_are_in_their_config_in_order():
    """A README block marked `<!-- excerpt of <file> -->` holds lines of that file (`...` for those left out),
    in the file's order: a snippet cannot drift from the config it shows (an earlier one showed token PCA and
    no lr x batch grid while config.yaml had row PCA and the grid)."""
    import yaml

    excerpts = re.findall(r"<!-- excerpt of (\S+) -->\n```yaml\n(.*?)```", README.read_text(), re.S)
    assert excerpts, "the README's config excerpt lost its marker"
    for name, block in excerpts:
        lines = [line.rstrip() for line in block.splitlines() if line.strip() != "..."]
        yaml.safe_load("\n".join(lines))  # still YAML without the elided lines
        source = [_uncommented(line) for line in (ROOT / name).read_text().splitlines()]
        at = 0
        for line in lines:
            assert line in source[at:], f"README excerpt of {name}: {line!r} is not in {name} (after line {at})"
            at = source.index(line, at) + 1
