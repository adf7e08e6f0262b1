"""The domain registry: each domain states its facts once and gives the workflow its jobs' inputs and commands."""

import subprocess
import sys
from pathlib import Path

import pytest

from deepaug.domains import OBJECTIVES, get, registry
from deepaug.workflow.config import REPO_CONFIG, read_yaml, validate_config
from deepaug.workflow.runs import expand

ROOT = Path(__file__).resolve().parents[2]


def test_every_domain_states_its_metrics_env_and_layer_map():
    domains = registry()
    assert {"vision", "text"} <= set(domains)
    for name, domain in domains.items():
        assert domain.name == name and domain.layer_map
        for objective in domain.objectives:
            assert objective in OBJECTIVES
            m = domain.metrics[objective]
            assert m.test and m.dev and m.dev != m.test  # choices are made on dev, never on the test metric
        assert (ROOT / "envs" / domain.env).is_file(), f"{name}: envs/{domain.env} is missing"


@pytest.mark.parametrize(
    "domain,section,names",
    [
        ("vision", {}, ["stem", "stage1", "stage2", "stage3", "stage4", "pool", "head"]),
        ("text", {"model": {"name": "bert-base-uncased"}}, ["emb", *(f"block{i}" for i in range(1, 13)), "pooled"]),
        ("graph", {"model": {"num_layers": 3}}, ["input", "gin1", "gin2", "gin3", "pool", "head"]),
        ("graph", {"model": {"num_layers": 5}}, ["input", *(f"gin{i}" for i in range(1, 6)), "pool", "head"]),
    ],
)
def test_layer_names_follow_each_domains_layer_map(domain, section, names):
    """The figures' tick names come from the domain (one place), one per index of its layer map."""
    import pandas as pd

    from deepaug.workflow.plotting import layer_labels_for

    spec = get(domain)
    n = spec.n_layers(section)
    assert [spec.layer_name(i, n) for i in range(n)] == names
    swept = pd.DataFrame({"layer": [float(n - 1), 0.0, None, 1.0]})  # the baseline has no layer
    assert layer_labels_for(domain, swept, spec.top_layer(section)) == {0: names[0], 1: names[1], n - 1: names[-1]}


def test_the_registry_stays_light():
    """The Snakefile imports the registry: it must not pull in torch or transformers."""
    code = (
        "import sys; import deepaug.domains as d; d.registry(); import deepaug.workflow.runs, deepaug.workflow.config;"
        "print(sorted(m for m in ('torch', 'transformers', 'torchvision', 'torch_geometric') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_unknown_domain_and_data_items_are_named():
    with pytest.raises(KeyError, match="unknown domain 'audio'"):
        get("audio")
    with pytest.raises(ValueError, match="vision has no data item 'digits.csv'"):
        get("vision").prepare_command("digits.csv", "x", {})
    with pytest.raises(ValueError, match="text has no data item 'corpus/lee.txt'"):
        get("text").prepare_command("corpus/lee.txt", "x", {})


def test_commands_of_a_paper_run_name_its_inputs_outputs_and_settings():
    config = validate_config(read_yaml(REPO_CONFIG))
    run = next(
        r for r in expand(config) if r.domain == "text" and r.id == "dropout-L3-nosg_batch_size128_lr1e-05_rate0.5"
    )
    text = get("text")
    inputs = text.train_inputs(run.section, run)
    assert inputs == {
        "model": "data/text/models/bert-base-uncased",
        "corpus": "data/text/corpus/wiki1m.parquet",
        "dev": "data/text/tasks/stsb_dev.parquet",
    }
    cmd = text.train_command(run, inputs, "out", "ckpt", {"lr": 1e-05, "batch_size": 128, "stop_gradient": False})
    assert cmd.startswith("python -m deepaug pretrain-text --model-dir data/text/models/bert-base-uncased")
    assert "--lr 1e-05 --batch-size 128 --stop-gradient false" in cmd
    sup = next(r for r in expand(config) if r.domain == "text" and r.objective == "supervised")
    assert text.train_inputs(sup.section, sup)["corpus"] == "data/text/tasks/stsb_train.parquet"
    assert text.eval_inputs(sup.section, sup) == {"tasks": ["data/text/tasks/stsb.parquet"]}
    assert text.n_layers(run.section) == 14 and text.top_layer(run.section) == 13
