"""What each job reads, runs and logs, from its wildcards (deepaug.workflow.jobs), and the figures' captions
(deepaug.workflow.plan): unit tests on the demo config, without Snakemake."""

import inspect
import json
import re
from types import SimpleNamespace

import pytest

from deepaug.domains import registry
from deepaug.workflow.config import REPO_CONFIG, merge_config, read_yaml, validate_config
from deepaug.workflow.jobs import ANALYSIS_LOG, TRAIN_LOG, Jobs, analysis_log, per_job, train_log
from deepaug.workflow.plan import FIDELITY
from deepaug.workflow.runs import expand

DEMO = REPO_CONFIG.parent / "config" / "demo.yaml"


@pytest.fixture(scope="module")
def jobs():
    config = validate_config(merge_config(read_yaml(REPO_CONFIG), read_yaml(DEMO)))
    return Jobs(config, expand(config))


def run_wildcards(run):
    """The wildcards of a run's job, as Snakemake gives them (strings)."""
    return SimpleNamespace(domain=run.domain, dataset=run.dataset, run=run.id, seed=str(run.seed))


def setting_wildcards(run):
    return SimpleNamespace(domain=run.domain, dataset=run.dataset, setting=run.setting, seed=str(run.seed))


def find(jobs, path):
    return next(r for r in jobs.runs if r.path == path)


# ------------------------------------------------------------------------------ per_job
def test_per_job_computes_the_signature_once_and_takes_a_bound_method():
    class Lookup:
        def name(self, wildcards):
            """the domain's name"""
            return wildcards.domain

    fn = per_job(Lookup().name)
    assert "__signature__" in vars(fn) and list(inspect.signature(fn).parameters) == ["wildcards"]
    assert fn.__name__ == "name" and fn.__doc__ == "the domain's name"
    assert fn(SimpleNamespace(domain="text")) == "text"
    assert per_job(lambda wildcards: 3)(None) == 3


# ------------------------------------------------------------------------------ lookups
def test_a_job_finds_its_run_by_its_wildcards(jobs):
    run = find(jobs, "vision/digits/dropout-L6-nosg/seed1")
    assert jobs.the_run(run_wildcards(run)) is run


def test_an_analysis_job_finds_its_candidates_and_their_first_run(jobs):
    run = find(jobs, "text/lee/none_lr0.0001/seed0")
    candidates = jobs.the_setting(setting_wildcards(run))
    assert {r.id for r in candidates} == {"none", "none_lr0.0001"}  # the tuned lr: two candidates
    assert jobs.the_run(setting_wildcards(run)) is candidates[0]


def test_a_path_outside_the_sweep_is_one_sentence_pointing_at_check_config(jobs):
    run = next(r for r in jobs.runs if r.domain == "vision")  # the registry's order is the domains' import order
    with pytest.raises(ValueError, match=r"results/vision/digits/dropout-L5-sg/seed0 is not a run .* check-config"):
        jobs.the_run(SimpleNamespace(domain="vision", dataset="digits", run="dropout-L5-sg", seed="0"))
    with pytest.raises(ValueError, match=r"results/analysis/vision/digits/nope/seed0 is not a setting .* check-config"):
        jobs.the_setting(SimpleNamespace(domain=run.domain, dataset=run.dataset, setting="nope", seed="0"))


# ------------------------------------------------------------------------------ settings and commands
def test_the_run_command_trains_then_evaluates_in_one_process(jobs):
    run = find(jobs, "vision/digits/dropout-L6-nosg/seed1")
    cmd = jobs.run_command(run_wildcards(run))
    train, evaluate = cmd.split(" :: ")
    assert train.startswith("python -m deepaug pretrain-vision ") and evaluate.startswith("eval-vision ")
    assert "--out-dir results/vision/digits/dropout-L6-nosg/seed1 " in train
    assert "--ckpt-dir checkpoints/vision/digits/dropout-L6-nosg/seed1 " in train
    assert "--method dropout --layer 6 --stop-gradient false " in train and "--seed 1 " in train
    assert "--model results/vision/digits/dropout-L6-nosg/seed1/model.pt " in evaluate
    assert "--out results/vision/digits/dropout-L6-nosg/seed1/eval.json " in evaluate
    assert cmd.count("--device cpu") == 2  # config `device`, to both stages


def test_train_settings_carry_the_config_wide_keys_and_the_model_only_where_it_is_flags(jobs):
    vision = jobs.train_settings(find(jobs, "vision/digits/none/seed0"))
    assert vision["run"] == "vision/digits/none/seed0" and vision["objective"] == "contrastive"
    assert vision["width"] == 8 and vision["method"] == "none" and vision["device"] == "cpu"
    assert vision["keep_checkpoints"] == jobs.config["checkpoints"]["keep"]
    assert vision["reuse_finished"] == jobs.config["checkpoints"]["reuse"]
    text = jobs.train_settings(find(jobs, "text/lee/none/seed0"))
    assert "name" not in text  # the text model is a prepared folder, an input, not a flag


def test_the_evaluation_is_seeded_by_the_run_only_where_the_domain_says_so(jobs):
    assert jobs.eval_settings(find(jobs, "vision/digits/none/seed1"))["seed"] == 1
    graph = jobs.eval_settings(find(jobs, "graph/synthetic/none/seed1"))  # its split follows the run's seed
    assert graph["seed"] == 1 and graph["scheme"] == "split" and graph["svm"] == "linearsvc"
    assert graph["device"] == "cpu"
    text = jobs.eval_settings(find(jobs, "text/lee/none/seed1"))
    assert text.get("seed") != 1


def test_tuned_flags_name_each_domains_tuned_axes(jobs):
    assert jobs.tuned_flags() == "--tuned text=lr"
    untuned = Jobs({**jobs.config, "text": {**jobs.config["text"], "tuned": []}}, jobs.runs)
    assert untuned.tuned_flags() == ""


def test_analysis_inputs_name_the_candidates_models_and_evals_and_the_domains_data(jobs):
    one = find(jobs, "vision/digits/none/seed0")
    assert jobs.analysis_inputs(setting_wildcards(one)) == {
        "models": ["results/vision/digits/none/seed0/model.pt"],
        "data": "data/vision/digits.npz",
    }
    two = find(jobs, "text/lee/none/seed0")
    inputs = jobs.analysis_inputs(setting_wildcards(two))
    runs = ["results/text/lee/none/seed0", "results/text/lee/none_lr0.0001/seed0"]
    assert inputs["models"] == [f"{r}/model.pt" for r in runs] and inputs["evals"] == [f"{r}/eval.json" for r in runs]
    # check-config's job graph reads the same list (deepaug.workflow.plan)
    flat = [p for v in inputs.values() for p in (v if isinstance(v, list) else [v])]
    assert jobs.plan.analysis_inputs(jobs.the_setting(setting_wildcards(two))) == flat


def test_the_analyze_command_writes_into_the_settings_analysis_folder(jobs):
    run = find(jobs, "text/lee/none/seed0")
    cmd = jobs.analyze_command(setting_wildcards(run))
    assert cmd.startswith("python -m deepaug analyze ")
    assert "--out results/analysis/text/lee/none/seed0/analysis.json " in cmd
    assert "--cka results/analysis/text/lee/none/seed0/cka.npz" in cmd
    assert "--run-id none none_lr0.0001 " in cmd and "--device cpu" in cmd


def test_conda_envs_and_data_commands_come_from_the_domain(jobs):
    domains = registry()
    for name, domain in domains.items():
        assert jobs.conda_env(SimpleNamespace(domain=name)) == f"../envs/{domain.env}"
        assert jobs.data_conda_env(SimpleNamespace(domain=name)) == f"../envs/{domain.data_env}"
    assert jobs.prepare_command("vision", "digits.npz") == domains["vision"].prepare_command(
        "digits.npz", "data/vision/digits.npz", jobs.config
    )


def test_the_top_layer_follows_the_objectives_settings(jobs):
    assert jobs.top_layer("vision", "contrastive") == jobs.domains["vision"].n_layers(jobs.config["vision"]) - 1
    assert jobs.top_layer("graph", "supervised") is not None


# ------------------------------------------------------------------------------ logs and the failure report
def test_log_paths_are_spelled_once_for_the_rules_and_the_failure_report(jobs):
    run = find(jobs, "vision/digits/dropout-L6-nosg/seed1")
    assert train_log(run) == "logs/train/vision/digits/dropout-L6-nosg/seed1.log"
    assert analysis_log(run) == "logs/analysis/vision/digits/dropout-L6-nosg/seed1.log"
    assert TRAIN_LOG == "logs/train/{domain}/{dataset}/{run}/seed{seed}.log"
    assert ANALYSIS_LOG == "logs/analysis/{domain}/{dataset}/{setting}/seed{seed}.log"


def test_failed_jobs_are_those_with_a_log_and_no_output(jobs):
    failed_run = find(jobs, "vision/digits/none/seed0")
    done_run = find(jobs, "vision/digits/none/seed1")
    failed_setting = find(jobs, "text/lee/none/seed0")
    files = {
        train_log(failed_run),
        train_log(done_run),
        f"results/{done_run.path}/eval.json",
        analysis_log(failed_setting),
    }
    assert list(jobs.failed_jobs(exists=files.__contains__)) == [
        ("train", failed_run.path, train_log(failed_run)),
        ("analysis", failed_setting.analysis_dir, analysis_log(failed_setting)),
    ]
    assert list(jobs.failed_jobs(exists=lambda path: False)) == []


# ------------------------------------------------------------------------------ captions (deepaug.workflow.plan)
# The caption of each figure of the demo (report/*.rst), by file name (as tests/workflow/test_workflow.py).
CAPTIONS = {
    "vision_digits.png": "layer_sweep",
    "text_lee.png": "layer_sweep",
    "text_lee_tasks.png": "tasks",
    "graph_synthetic.png": "layer_sweep",
    "graph_sup_synthetic.png": "supervised_sweep",
    "analysis_graph_synthetic_cka.png": "cka",
    "analysis_vision_digits_align_uniform.png": "align_uniform",
    "analysis_layer_selection.png": "layer_selection",
    "vision_sup_digits.png": "supervised_sweep",
    "text_sup_simlex999_train.png": "supervised_sweep",
    "text_sup_simlex999_train_tasks.png": "tasks",
}


def test_each_figure_gets_its_caption_from_the_figure_table_not_its_name(jobs):
    plan = jobs.plan
    figures = [
        f
        for f in plan.figure_outputs("contrastive") + plan.figure_outputs("supervised") + plan.analysis_figures()
        if f.endswith(".png")
    ]
    got = {f.rsplit("/", 1)[-1]: plan.caption(f) for f in figures}
    assert {name: got[name] for name in CAPTIONS} == {name: f"../report/{rst}.rst" for name, rst in CAPTIONS.items()}
    assert plan.caption("results/figures/unknown.png") == "../report/layer_sweep.rst"


def test_as_report_marks_only_the_pngs_with_their_caption(jobs):
    def report(path, caption, category):
        return ("report", path, caption, category)

    paths = ["results/figures/graph_sup_synthetic.png", "results/figures/graph_sup_synthetic.pdf"]
    assert jobs.plan.as_report(paths, report) == [
        ("report", paths[0], "../report/supervised_sweep.rst", "Figures"),
        paths[1],
    ]


# ------------------------------------------------------------------------------ the figure table (rules/figures.smk)
# What the figure jobs of the demo pass to the notebook and their captions (as tests/workflow/test_workflow.py).
FIGURE_PARAMS = {
    "vision": dict(domain="vision", tuned="", metric_label="linear probe top-1 (%)"),
    "vision_sup": dict(domain="vision", tuned="", metric_label="supervised classifier top-1 (%)"),
    "text": dict(domain="text", tuned="lr", metric_label="average Spearman x100 over lee_docs, simlex999"),
    "text_sup": dict(domain="text", tuned="lr", metric_label="Spearman x100 on simlex999_test"),
    "graph": dict(
        domain="graph", tuned="", metric_label="linear SVM (LinearSVC) accuracy, test part of one 80/10/10 split (%)"
    ),
    "graph_sup": dict(domain="graph", tuned="", metric_label="supervised classifier accuracy (%)"),
}


def test_the_figure_table_labels_each_figure_from_its_settings(jobs):
    table = {fig["name"]: fig for fig in jobs.plan.figure_table}
    params = {name: {k: fig[k] for k in ("domain", "tuned", "metric_label")} for name, fig in table.items()}
    assert params == FIGURE_PARAMS
    assert table["text_sup"]["objective"] == "supervised" and table["text_sup"]["datasets"] == ["simlex999_train"]


# ------------------------------------------------------------------------------ the fidelity table's settings
def test_fidelity_settings_give_each_baseline_the_settings_the_published_numbers_require(jobs, tmp_path):
    """Per baseline setting (contrastive, method none): the keys some published number requires, as the runs
    were configured (the demo's 2 epochs and width 8); a key its runs do not share (text's tuned lr) is left
    out, and so is one its section does not have."""
    settings = json.loads(jobs.plan.fidelity_settings())
    # the demo's BYOL run is a baseline of its own (README "SSL methods beyond SimCLR")
    baselines = {"vision/digits/none", "vision/digits/none_ssl_methodbyol", "text/lee/none", "graph/synthetic/none"}
    assert set(settings) == baselines
    assert settings["vision/digits/none_ssl_methodbyol"]["train.epochs"] == 2  # the demo's, not BYOL's recipe's
    vision = settings["vision/digits/none"]
    assert vision["train.epochs"] == 2 and vision["model.width"] == 8 and vision["model.arch"] == "resnet18"
    assert "model.name" not in vision and settings["text/lee/none"]["model.name"] == "all-MiniLM-L6-v2"
    assert settings["text/lee/none"]["test_tasks"] == ["lee_docs", "simlex999"]
    assert settings["graph/synthetic/none"]["eval.svm"] == "linearsvc"  # the demo's graph protocol: pygcl
    published = tmp_path / "published.yaml"
    published.write_text(
        "sources:\n  - {source: s, verified: unverified, domain: text, requires: {train.lr: 3.0e-5},\n"
        "     numbers: [{dataset: lee, metric: sts_avg, value: 50.0}]}\n"
    )
    lr = json.loads(jobs.plan.fidelity_settings(str(published)))
    assert lr["vision/digits/none"] == {"train.lr": 0.5} and lr["text/lee/none"] == {}  # two lrs, tuned on dev
    assert lr["vision/digits/none_ssl_methodbyol"] == {"train.lr": 1.0}  # BYOL's recipe (LARS, lr 1.0)


def test_the_default_target_makes_the_fidelity_table_from_the_contrastive_table(jobs):
    assert FIDELITY in jobs.plan.all_targets()
    assert jobs.plan.count("all")["fidelity"] == 1 and "fidelity" not in jobs.plan.count("analysis")


# ------------------------------------------------------------------------------ the rules stay thin
def test_the_rules_hold_no_workflow_logic():
    """rules/common.smk keeps the import, validation, wildcard constraints and thin wrappers (the logic is here,
    unit-tested); the other rule files define no function."""
    rules = REPO_CONFIG.parent / "rules"
    common = (rules / "common.smk").read_text()
    assert len(common.splitlines()) <= 150
    assert set(re.findall(r"^def (\w+)", common, re.M)) <= {"as_report", "last_line", "print_failed_jobs"}
    for path in rules.glob("*.smk"):
        if path.name != "common.smk":
            assert not re.search(r"^\s*def ", path.read_text(), re.M), f"{path.name} defines a function"
