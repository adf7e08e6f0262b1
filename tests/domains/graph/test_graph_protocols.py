"""``graph.protocol`` switches the whole recipe in one line: it is resolved into the config section before the
schema's defaults (a key written in the section, a sweep block or ``supervised:`` wins), so the job commands, the
run ids and the settings a trainer records show the resolved values; ``pygcl`` is also every setting's default."""

import copy
import dataclasses
import shlex

import pytest

from deepaug.core.schema_defaults import domain_schema, schema_defaults
from deepaug.domains.arguments import settings_from_args
from deepaug.domains.graph import train
from deepaug.domains.graph.cli import build_parser
from deepaug.domains.graph.evaluate import GraphEvalSettings
from deepaug.domains.graph.protocols import DEFAULT, PROTOCOLS, apply_protocol
from deepaug.domains.graph.train import GraphPretrainSettings
from deepaug.errors import ConfigError
from deepaug.workflow.config import REPO_CONFIG, check_config_file, merge_config, read_yaml, validate_config
from deepaug.workflow.runs import expand

GRAPH_ONLY = {"vision": None, "text": None}


def _config(graph: dict) -> dict:
    base = read_yaml(REPO_CONFIG)
    return validate_config(merge_config(base, {**GRAPH_ONLY, "graph": graph}))


def _section(**keys) -> dict:
    return {"datasets": ["synthetic"], "sweep": [{"method": "none"}], **keys}


def test_pygcl_is_the_default_protocol_and_every_setting_s_default():
    assert DEFAULT == "pygcl" and set(PROTOCOLS) == {"pygcl", "graphcl"}
    schema = domain_schema(train.__file__)
    for sub, values in PROTOCOLS["pygcl"].items():
        defaults = schema_defaults(schema, sub)
        cls = GraphEvalSettings if sub == "eval" else GraphPretrainSettings
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        for key, value in values.items():
            assert defaults[key] == value and fields[key] == value, f"{sub}.{key}"
    for name, recipe in PROTOCOLS.items():  # both recipes name settings of the schema only
        for sub, values in recipe.items():
            assert set(values) <= set(schema_defaults(schema, sub)), f"{name}.{sub}"


def test_the_protocol_fills_what_the_section_leaves_out_and_written_keys_win():
    section = apply_protocol({"protocol": "graphcl", "train": {"epochs": 5}, "eval": {"svm": "linearsvc"}})
    assert section["model"] == PROTOCOLS["graphcl"]["model"]
    assert section["train"]["epochs"] == 5 and section["train"]["loss"] == "graphcl"
    assert section["eval"]["svm"] == "linearsvc" and section["eval"]["scheme"] == "kfold"
    assert apply_protocol({})["protocol"] == "pygcl"
    with pytest.raises(ValueError, match="graph protocol must be one of"):
        apply_protocol({"protocol": "infograph"})


@pytest.mark.parametrize("protocol, layers", [("pygcl", 5), ("graphcl", 6)])
def test_resolved_values_reach_the_run_table_the_commands_and_the_trainer(protocol, layers):
    from deepaug.workflow.jobs import Jobs

    recipe = PROTOCOLS[protocol]
    config = _config(_section(protocol=protocol, sweep=[{"method": "dropout", "layer": "all", "epochs": [7, 20]}]))
    section = config["graph"]
    assert section["model"] == recipe["model"] and section["eval"]["scheme"] == recipe["eval"]["scheme"]
    runs = expand(config)
    assert sorted({r.layer for r in runs}) == list(range(layers))  # `all`: the protocol's depth, L + 3 layers
    # an axis is spelled in the run id where it differs from the resolved value: epochs 20 is graphcl's own
    spelled = {r.id for r in runs if r.layer == 1}
    assert spelled == (
        {"dropout-L1-sg_epochs7", "dropout-L1-sg"}
        if protocol == "graphcl"
        else {"dropout-L1-sg_epochs7", "dropout-L1-sg_epochs20"}
    )
    jobs = Jobs(config, runs)
    run = next(r for r in runs if r.id == "dropout-L1-sg_epochs7")
    train_cmd, eval_cmd = (
        jobs.domains["graph"]
        .run_command(run, "out", "ckpt", jobs.train_settings(run), jobs.eval_settings(run))
        .split(" :: ")
    )
    parser = build_parser()
    s = settings_from_args(GraphPretrainSettings, parser.parse_args(shlex.split(train_cmd)[3:]))
    e = settings_from_args(GraphEvalSettings, parser.parse_args(shlex.split(eval_cmd)))
    for key, value in {**recipe["model"], **recipe["train"], "epochs": 7}.items():
        assert getattr(s, key) == value, key  # what the trainer records in provenance.json
    for key, value in recipe["eval"].items():
        assert getattr(e, key) == value, key
    assert e.seed == run.seed  # the split or the folds follow the run's seed


def test_the_protocol_is_the_section_s_not_an_axis_nor_a_supervised_override():
    with pytest.raises(ConfigError, match="'protocol' is not a setting that can be a sweep axis"):
        _config(_section(sweep=[{"method": "none", "protocol": ["pygcl", "graphcl"]}]))
    with pytest.raises(ConfigError, match=r"graph.supervised.protocol' is not a known setting"):
        _config(_section(supervised={"protocol": "graphcl"}))
    with pytest.raises(ConfigError, match="'infograph' is not one of: pygcl, graphcl"):
        _config(_section(protocol="infograph"))
    supervised = _config(_section(protocol="graphcl", supervised={"train": {"epochs": 3}}))["graph"]
    assert supervised["supervised"] == {"train": {"epochs": 3, "shuffle": "once"}}  # and the counterpart's order


def test_the_supervised_counterpart_trains_on_one_permutation_unless_the_section_says_otherwise():
    config = _config(_section(sweep=[{"objective": ["contrastive", "supervised"], "method": "none"}]))
    order = {r.objective: r.section["train"]["shuffle"] for r in expand(config)}
    assert order == {"contrastive": "never", "supervised": "once"}  # PyGCL's order is often sorted by class
    config = _config(
        _section(train={"shuffle": "epoch"}, sweep=[{"objective": ["contrastive", "supervised"], "method": "none"}])
    )
    assert [r.section["train"]["shuffle"] for r in expand(config)] == ["epoch", "epoch"]  # a written key wins
    assert apply_protocol({"supervised": None})["supervised"] == {"train": {"shuffle": "once"}}


def test_layer_map_follows_the_protocol_before_and_after_filling():
    from deepaug.domains import get

    graph = get("graph")
    assert graph.n_layers({}) == 5 and graph.n_layers({"protocol": "graphcl"}) == 6
    assert graph.n_layers({"protocol": "graphcl", "model": {"num_layers": 4}}) == 7
    filled = apply_protocol(copy.deepcopy({"protocol": "graphcl"}))
    assert graph.n_layers(filled) == 6


@pytest.mark.parametrize("name", ["graph-pygcl.yaml", "graph-graphcl.yaml"])
def test_the_paper_graph_configs_check(name):
    report = check_config_file(REPO_CONFIG.parent / "config" / "paper" / name)
    expected = "graph: 252 contrastive, 252 supervised run(s)" if "pygcl" in name else "graph: 500 contrastive run(s)"
    assert expected in report


@pytest.mark.parametrize("protocol", ["pygcl", "graphcl"])
def test_both_recipes_train_and_evaluate_on_the_synthetic_set(tmp_path, synthetic_pt, protocol):
    """Each recipe, shortened (2 epochs, 8 units), with Deep Augmentation at the last GIN layer; evaluation reads
    the graphs as training did (GraphCL's self-loops from the model's meta)."""
    import torch

    from deepaug.domains.graph.data import load_graphs, with_self_loops
    from deepaug.domains.graph.evaluate import embed, evaluate
    from deepaug.domains.graph.train import load_encoder, pretrain

    recipe = PROTOCOLS[protocol]
    settings = {**recipe["model"], **recipe["train"], "hidden_dim": 8, "epochs": 2, "device": "cpu"}
    layer = recipe["model"]["num_layers"]
    s = GraphPretrainSettings(**settings, method="dropout", layer=layer, p=0.5, run=f"graph/synthetic/{protocol}")
    prov = pretrain(s, synthetic_pt, tmp_path / "run", tmp_path / "ckpt")
    assert prov["steps"] == 2 * 3  # 300 graphs in batches of 128: 128, 128, 44
    ev = {**recipe["eval"], "c_grid": "0.1,10", "device": "cpu", "seed": 1}
    if protocol == "graphcl":
        ev.update(svm="svc_linear", folds=3, inner_folds=2)  # the test's budget
    result = evaluate(GraphEvalSettings(**ev), tmp_path / "run" / "model.pt", synthetic_pt, tmp_path / "eval.json")
    assert 33 <= result["svm_acc"] <= 100 and 0 <= result["dev_svm_acc"] <= 100
    assert result["eval_scheme"] == recipe["eval"]["scheme"]
    model, graphs = load_encoder(tmp_path / "run" / "model.pt", "cpu"), load_graphs(synthetic_pt)
    assert model.self_loops == recipe["model"]["self_loops"] and model.num_layers == layer
    b = with_self_loops(graphs.batch(torch.arange(10)), model.self_loops)
    with torch.no_grad():
        torch.testing.assert_close(embed(model, graphs, torch.arange(10)), model.encode(b.x, b.edge_index, b.batch, 10))
