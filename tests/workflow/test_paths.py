"""Names that become paths never leave their folder: `text.model.name: ".."` once made the model folder
data/text itself, and a failed job's clean-up (or prepare_model replacing the folder) deleted every
prepared text file. The schema refuses such names, and so does every place a path is built from one."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepaug.errors import ConfigError, UnsafeNameError
from deepaug.paths import NAME_PATTERN, ORG_NAME_PATTERN, name_problem, safe_join, safe_name
from deepaug.workflow.config import REPO_CONFIG, load_schema, validate_config

BAD = [
    "..",
    ".",
    "/etc",
    "a/b/c",
    "a;rm -rf x",
    "",
    "a\\b",
    "a b",
    "x\ny",
    "../data",
    "a/..",
    ".hidden",
    "-rf",
    "$(id)",
    "a`b`",
    "x--y",
]
HUB_IDS = ["bert-base-uncased", "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "roberta-large"]
TEXT = {"datasets": ["lee"], "dev_task": "wordsim353", "test_tasks": ["wordsim353"], "sweep": [{"method": "none"}]}


def _deepaug(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "deepaug", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("value", BAD)
def test_unsafe_names_are_refused_with_a_sentence_naming_the_key(value):
    with pytest.raises(UnsafeNameError) as exc:
        safe_name(value, "config key 'text.model.name'", allow_org=True)
    message = str(exc.value)
    assert message.startswith(f"config key 'text.model.name': {value!r} cannot name a folder because ")
    assert "; use letters, digits, '_', '.' and '-'" in message and "\n" not in message.replace(repr(value), "")
    assert isinstance(exc.value, ConfigError)  # every entry point already prints a ConfigError as one line


def test_hub_ids_are_names_and_a_slash_only_where_an_organisation_is_allowed():
    for value in HUB_IDS:
        assert safe_name(value, "x", allow_org=True) == value
    assert safe_name("digits", "x") == "digits"
    with pytest.raises(UnsafeNameError, match="'/' is not allowed here"):
        safe_name("sentence-transformers/all-MiniLM-L6-v2", "config key 'graph.datasets'")


def test_the_schema_patterns_are_the_helpers_rule():
    defs = load_schema()["$defs"]
    assert defs["model_name"]["pattern"] == ORG_NAME_PATTERN
    for value in BAD + HUB_IDS:
        assert bool(re.search(ORG_NAME_PATTERN, value)) == (name_problem(value, allow_org=True) is None), value
        assert bool(re.search(NAME_PATTERN, value)) == (name_problem(value) is None), value
    # a dataset name is a rule wildcard too (rules/common.smk), so it is the stricter of the two
    for value in BAD:
        if name_problem(value) is not None:
            assert not re.search(defs["dataset_name"]["pattern"], value), value


@pytest.mark.parametrize("value", ["..", "/etc", "a/b/c", "a;rm -rf x"])
def test_the_config_refuses_a_model_name_that_leaves_its_folder(value):
    with pytest.raises(ConfigError, match=re.escape(f"config key 'text.model.name': {value!r} cannot name a folder")):
        validate_config({"text": {**TEXT, "model": {"name": value}}})


def test_hub_ids_keep_working_in_the_config_and_the_model_folder():
    from deepaug.domains import get

    for value in HUB_IDS:
        config = validate_config({"text": {**TEXT, "model": {"name": value}}})
        assert get("text").model_dir(config["text"]) == f"data/text/models/{value.replace('/', '--')}"


@pytest.mark.parametrize("value", ["..", "/etc", "a/b/c", "a;rm -rf x"])
def test_the_model_folder_is_refused_where_it_is_built(value):
    from deepaug.domains import get

    with pytest.raises(UnsafeNameError, match=re.escape(f"config key 'text.model.name': {value!r}")):
        get("text").model_dir({"model": {"name": value}})


@pytest.mark.parametrize("domain", ["vision", "graph"])
def test_dataset_files_and_run_folders_are_refused_where_they_are_built(domain):
    from deepaug.domains import get
    from deepaug.workflow.runs import expand_block

    with pytest.raises(UnsafeNameError, match=re.escape(f"config key '{domain}.datasets': '../x'")):
        get(domain).data_path("../x")
    with pytest.raises(UnsafeNameError, match=re.escape(f"config key '{domain}.datasets': '/etc'")):
        expand_block(domain, {"datasets": ["/etc"]}, {"method": "none"}, 0)


def test_a_link_planted_where_a_folder_is_built_is_refused(tmp_path):
    parent, outside = tmp_path / "models", tmp_path / "outside"
    parent.mkdir()
    outside.mkdir()
    (parent / "bert").symlink_to(outside)
    with pytest.raises(UnsafeNameError, match=r"leads to .*outside, outside .*models; remove the link"):
        safe_join(parent, "bert", "config key 'text.model.name'")
    assert safe_join(parent, "roberta", "x") == parent / "roberta"


def _text_tree(root: Path) -> Path:
    """data/text with a prepared corpus (the marker) and a models folder, as the demo leaves it."""
    (root / "data/text/corpus").mkdir(parents=True)
    (root / "data/text/models").mkdir()
    marker = root / "data/text/corpus/lee.parquet"
    marker.write_text("prepared")
    return marker


@pytest.mark.parametrize("out", ["data/text/models/..", "data/text/models/.", "data/text"])
def test_prepare_model_deletes_nothing_outside_its_own_folder(tmp_path, monkeypatch, out):
    from deepaug.domains.text.data import prepare_model

    monkeypatch.chdir(tmp_path)
    marker = _text_tree(tmp_path)
    with pytest.raises(UnsafeNameError, match=re.escape(f"--out {Path(out)}")):
        prepare_model("all-MiniLM-L6-v2", out)
    assert marker.read_text() == "prepared"
    r = _deepaug("prepare-text", "--model", "all-MiniLM-L6-v2", "--out", out, cwd=tmp_path)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert marker.read_text() == "prepared"


def test_check_config_and_snakemake_refuse_the_name_before_any_job(tmp_path):
    marker = _text_tree(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("text:\n  model: {name: '..'}\n")
    r = _deepaug("check-config", bad)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "config key 'text.model.name': '..' cannot name a folder because '..' is the folder itself" in r.stderr
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO_CONFIG.parent / "Snakefile"),
            "--cores",
            "1",
            "--configfile",
            str(REPO_CONFIG.parent / "config" / "demo.yaml"),
            str(bad),
            "--directory",
            str(tmp_path),
            "data",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode != 0 and "config key 'text.model.name': '..' cannot name a folder" in r.stdout + r.stderr
    assert marker.read_text() == "prepared" and sorted(os.listdir(tmp_path / "data/text")) == ["corpus", "models"]
