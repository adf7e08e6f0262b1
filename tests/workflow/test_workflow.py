"""The Snakemake workflow: the paper's DAG, lint, config errors, partitions, failures, and the demo end to end."""

import html
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from processes import run_group

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tests" / "configs"


def snakemake(*args, cwd, timeout=600, root=ROOT, **env_vars):
    """snakemake -s <root>/Snakefile -d <cwd> ...; profiles/default (next to the Snakefile) applies.
    ``env_vars``: more environment (e.g. DEEPAUG_CONSOLE="full": Snakemake's own console output)."""
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    env.pop("DEEPAUG_CONSOLE", None)  # the default console, unless a test asks for another
    env.update(env_vars)
    return run_group(
        [sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), "-d", str(cwd), *args],
        timeout=timeout,
        env=env,
        cwd=cwd.parent,
    )


def job_counts(stdout: str) -> dict[str, int]:
    block = stdout.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def trained_runs(stdout: str) -> set[str]:
    """Every run directory a dry run trains (results/<domain>/<dataset>/<run>/seed<k>/model.pt)."""
    return set(re.findall(r"results/(\w+/[\w-]+/[\w.+-]+/seed\d+)/model\.pt", stdout))


def test_paper_config_dag_has_174_vision_and_171_text_pretraining_jobs(tmp_path):
    res = snakemake("-n", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout)
    runs = trained_runs(res.stdout)
    contrastive = {r for r in runs if "/sup-" not in r}
    supervised = runs - contrastive
    vision = {r for r in contrastive if r.startswith("vision/")}
    text = {r for r in contrastive if r.startswith("text/")}
    graph = {r for r in contrastive if r.startswith("graph/")}
    assert len(vision) == 174 and len({r for r in vision if "/none/" in r}) == 6  # once per dataset and seed
    # text: the 171 settings of the paper, each with the authors' lr x batch grid (6 runs, chosen on dev)
    untuned = {re.sub(r"_batch_size\d+|_lr[\d.e-]+?(?=_|/)", "", r) for r in text}
    assert len(text) == 1026 and len(untuned) == 171, sorted(untuned)[:5]
    assert (
        "text/wiki1m/dropout-L13-sg/seed2" in text
        and "text/wiki1m/dropout-L13-nosg_batch_size128_lr1e-05_rate0.5/seed2" in text
    )
    # graphs (protocol pygcl: a 2-layer GIN, layers 0-4): 4 TU datasets x 3 seeds x (1 baseline + 2 transforms x
    # 5 layers x 2 stop-gradient)
    assert len(graph) == 4 * 3 * (1 + 2 * 5 * 2) and "graph/IMDB-BINARY/pca-L4-nosg/seed1" in graph
    # the default target of the paper config includes the analyses and the supervised counterpart
    assert len({r for r in supervised if r.startswith("vision/")}) == 174
    assert len({r for r in supervised if r.startswith("text/stsb_train/")}) == 171
    assert len({r for r in supervised if r.startswith("graph/")}) == 252
    assert counts["train"] == len(runs) == 174 * 2 + 1026 + 171 + 252 * 2
    assert "evaluate" not in counts  # each run's job evaluates the model it trained
    # one analysis per setting and seed (text: of the dev-best of its 6 lr x batch candidates)
    assert counts["analyze"] == 174 + 171 + 252 and counts["inversion"] == 1
    assert counts["aggregate_contrastive"] == 1 and counts["select_contrastive"] == 1 and counts["run_table"] == 1
    assert counts["summarize"] == 1 and counts["fidelity"] == 1
    # data: CIFAR-10/100; seven STS test sets, STS-B dev and train, wiki1m; 4 TU datasets; the encoder
    assert counts["prepare_data"] == 2 + 9 + 1 + 4 and counts["prepare_model"] == 1
    # one generic rule per stage; the figure rules generated from the figure table
    assert {r for r in counts if r.startswith("figures_")} == {
        "figures_analysis",
        *(f"figures_{d}{s}" for d in ("vision", "text", "graph") for s in ("", "_sup")),
    }


def test_lint_passes(tmp_path):
    res = snakemake("--lint", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(
    "bad,message",
    [
        (
            "vision:\n  train:\n    learning_rate: 0.1\n",
            "config key 'vision.train.learning_rate' is not a known setting",
        ),
        (
            "vision:\n  sweep:\n    - {method: dropout, layer: [0, 9]}\n",
            "config key 'vision.sweep[0].layer': layer 9 is out of range; vision has layers 0-6",
        ),
        ("vision:\n  train:\n    lr: fast\n", "config key 'vision.train.lr': 'fast' is not of type 'number'"),
        (
            "vision:\n  sweep:\n    - {method: [none, cutout]}\n",
            "config key 'vision.sweep[0].method[1]': 'cutout' is not one of",
        ),
        ("colour: blue\n", "config key 'colour' is not a known setting"),
        (
            "text:\n  sweep:\n    - {method: pca, layer: [0, 14]}\n",
            "config key 'text.sweep[0].layer': layer 14 is out of range; text has layers 0-13 (0 embeddings, 1-12 blocks",  # noqa: E501
        ),
        ("text:\n  test_tasks: [sts12, sts99]\n", "config key 'text.test_tasks[1]'"),
        (
            "vision:\n  sweep:\n    - {method: dropout, layer: 3, learning_rate: [0.1, 0.2]}\n",
            "config key 'vision.sweep[0].learning_rate': 'learning_rate' is not a setting that can be a sweep axis",
        ),
        ("vision:\n  sweep:\n    - {method: dropout, layer: 3, p: [0.5, high]}\n", "config key 'vision.sweep[0].p[1]'"),
        (
            "vision:\n  sweep:\n    - {method: dropout, layer: 3}\n    - {method: dropout, layer: [1, 3]}\n",
            "config key 'vision.sweep[1]': run vision/cifar10/dropout-L3-sg/seed0 is also made by 'vision.sweep[0]'",
        ),
    ],
)
def test_bad_config_is_rejected_with_the_key_named(tmp_path, bad, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(bad)
    res = snakemake("-n", "--configfile", str(cfg), cwd=tmp_path)
    assert res.returncode != 0
    assert message in res.stderr + res.stdout


TARGET_RULES = {"all", "analysis", "data"}  # no command: Snakemake finishes them itself, never on a cluster


def test_rules_are_snakefmt_clean():
    """The Snakefile and rules/ keep snakefmt's formatting (`snakefmt rules/ Snakefile` fixes it)."""
    import subprocess

    res = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def dry_run_jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run lists (`rule <name>:` blocks with a `resources:` line)."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", output):
        head = re.match(r"(?:local)?rule (\w+):\n", block)
        if head:
            line = re.search(r"^ +resources: (.*)$", block, re.M)
            items = dict(kv.split("=", 1) for kv in line.group(1).split(", ")) if line else {}
            jobs.append((head.group(1), items))
    return jobs


@pytest.mark.parametrize("config", [None, "config/demo.yaml"])
def test_every_gpu_job_goes_to_the_gpu_partition(tmp_path, config):
    """The SLURM partition follows each job's GPU request (config resources.gpu_partition / cpu_partition),
    for every rule: supervised, analysis and evaluation jobs included, on the paper's full DAG."""
    extra = ["--configfile", str(ROOT / config)] if config else []
    res = snakemake("-n", "all", "analysis", *extra, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = [(rule, r) for rule, r in dry_run_jobs(res.stdout) if rule not in TARGET_RULES]
    wrong = [
        (rule, r.get("gpu"), r.get("slurm_partition"))
        for rule, r in jobs
        if r.get("slurm_partition") != ("gpu" if int(r.get("gpu", 0)) > 0 else "cpu")
    ]
    assert not wrong, f"{len(wrong)} of {len(jobs)} jobs in the wrong partition, e.g. {wrong[:5]}"
    on_gpu = {rule for rule, r in jobs if r["slurm_partition"] == "gpu"}
    if config is None:  # the paper: every training, evaluation and analysis job asks for a GPU
        assert len(jobs) > 1700
        assert on_gpu == {"train", "analyze"}
    else:  # the demo trains on the CPU (resources.gpu: 0)
        assert not on_gpu and len(jobs) > 50


@pytest.mark.slow
def test_one_failed_run_does_not_stop_the_sweep(tmp_path):
    """profiles/default (keep-going, applied without any flag): a training that fails (its checkpoint
    directory is taken by a file) is retried (resources.retries: 1), fails again, and every other run
    still trains and is evaluated; the end of the output names the failed run and its log."""
    work = tmp_path / "w"
    blocked = work / "checkpoints" / "vision" / "digits" / "dropout-L6-sg" / "seed0"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a directory\n")
    res = snakemake("--cores", "2", "--configfile", str(CONFIGS / "one_failure.yaml"), cwd=work, timeout=1200)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    for variant in ("none", "dropout-L0-sg"):
        assert (work / "results" / "vision" / "digits" / variant / "seed0" / "eval.json").is_file(), out[-3000:]
    assert not (work / "results" / "vision" / "digits" / "dropout-L6-sg" / "seed0" / "model.pt").exists()
    assert not (work / "results" / "table.csv").exists()
    assert out.count("Trying to restart job") == 1, out[-3000:]  # the training once more (retries: 1)
    log = "logs/train/vision/digits/dropout-L6-sg/seed0.log"
    summary = out[out.index("deepaug: 1 job(s) of the sweep have no output") :]
    assert f"train vision/digits/dropout-L6-sg/seed0: see {log}" in summary
    assert "checkpoints/vision/digits/dropout-L6-sg/seed0" in summary  # the log's last line: the error
    # the console (deepaug.workflow.console): one line per failure, with the log's last real line
    failures = [line for line in out.splitlines() if line.startswith("failed: train vision/digits/dropout-L6-sg/seed0")]
    assert len(failures) == 2 and all(f"(log {log}): " in line and "checkpoints/" in line for line in failures), out[
        -3000:
    ]


@pytest.mark.slow
def test_changed_evaluation_settings_evaluate_again_without_training_again(tmp_path):
    """A run's job trains, then evaluates. Changing an evaluation setting re-runs the job (its command
    changed); the trainer gives back the kept training (same settings, inputs, code) and only the
    evaluation runs again: same weights, new scores."""
    work = tmp_path / "w"
    config = CONFIGS / "one_failure.yaml"
    first = snakemake("--cores", "2", "--configfile", str(config), cwd=work, timeout=1200)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    run = work / "results" / "vision" / "digits" / "dropout-L0-sg" / "seed0"
    weights = (run / "model.pt").read_bytes()
    before = json.loads((run / "eval.json").read_text())
    evaluated_at = (run / "eval.json").stat().st_mtime_ns
    changed = tmp_path / "knn.yaml"
    changed.write_text(config.read_text().replace("knn_k: 5", "knn_k: 1"))
    # Snakemake's own console output (each job's command and why it runs), not the one line per job
    again = snakemake("--cores", "2", "--configfile", str(changed), cwd=work, timeout=1200, DEEPAUG_CONSOLE="full")
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-3000:]
    assert job_counts(out)["train"] == 3  # every run's job: its command (the evaluation) changed
    log = (work / "logs" / "train" / "vision" / "digits" / "dropout-L0-sg" / "seed0.log").read_text()
    assert "reusing its finished training" in log and "resuming" not in log
    assert (run / "model.pt").read_bytes() == weights
    commands = [line for line in out.splitlines() if line.startswith("Shell command:") and "pretrain-vision" in line]
    assert len(commands) == 3 and all(":: eval-vision" in c and "--knn-k 1 " in c for c in commands)  # the new k
    assert "Params have changed" in out  # Snakemake's own reason: the command is a tracked param
    after = json.loads((run / "eval.json").read_text())
    assert (run / "eval.json").stat().st_mtime_ns > evaluated_at
    assert after["linear_top1"] == before["linear_top1"]  # the same weights, the same (seeded) probe


def checkout_copy(dest: Path) -> Path:
    """A copy of this checkout (without the venv, git and run outputs) at `dest`."""
    skip = shutil.ignore_patterns(
        ".git",
        ".venv",
        ".snakemake",
        "__pycache__",
        ".pytest_cache",
        "*.egg-info",
        "demo",
        "results",
        "data",
        "logs",
        "benchmarks",
        "checkpoints",
    )
    shutil.copytree(ROOT, dest, ignore=skip)
    return dest


# What the figure jobs of the demo pass to their captions (report/layer_sweep.rst, supervised_sweep.rst,
# tasks.rst render `snakemake.params`): the score named from the demo's settings (rules/figures.smk).
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


def caption_text(rst: str, figure: str) -> str:
    """A caption as the report renders it: Jinja2 with the figure job's params (by the figure's name)."""
    from types import SimpleNamespace

    import jinja2

    key = next((k for k in sorted(FIGURE_PARAMS, key=len, reverse=True) if figure.startswith(f"{k}_")), None)
    params = SimpleNamespace(**FIGURE_PARAMS[key]) if key else SimpleNamespace()
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(rst).render(snakemake=SimpleNamespace(params=params))


# The console of a run: at most this many lines for the demo's 41 jobs (one line per job and Snakemake's job
# statistics), and no Python warning.
CONSOLE_LINES = 100
WARNING_LINE = re.compile(r"\b\w*Warning\b|warnings\.warn\(")


# The caption of each figure of the demo (report/*.rst), by file name.
CAPTIONS = {
    "vision_digits.png": "layer_sweep",
    "text_lee.png": "layer_sweep",
    "text_lee_tasks.png": "tasks",
    "graph_synthetic.png": "layer_sweep",
    "graph_sup_synthetic.png": "supervised_sweep",
    "analysis_graph_synthetic_cka.png": "cka",
    "analysis_graph_synthetic_align_uniform.png": "align_uniform",
    "analysis_vision_digits_cka.png": "cka",
    "analysis_text_lee_cka.png": "cka",
    "analysis_vision_digits_align_uniform.png": "align_uniform",
    "analysis_text_lee_align_uniform.png": "align_uniform",
    "analysis_layer_selection.png": "layer_selection",
    "vision_sup_digits.png": "supervised_sweep",
    "text_sup_simlex999_train.png": "supervised_sweep",
    "text_sup_simlex999_train_tasks.png": "tasks",
}


def notebook_text(path: Path) -> str:
    """Everything an executed notebook printed (its stream and text outputs)."""
    out = []
    for cell in json.loads(path.read_text())["cells"]:
        for o in cell.get("outputs", []):
            out.append("".join(o.get("text") or o.get("data", {}).get("text/plain") or ""))
    return "\n".join(out)


def plain(text: str) -> str:
    """Text without HTML tags, entities, RST literals and line breaks, for comparing captions (a tag is
    dropped, not spaced: ``name``) reads "name)" in both)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).replace("``", "").split())


def report_captions(report: Path) -> dict[str, str]:
    """{file name: caption text} of the results in a `snakemake --report` HTML file. Snakemake 9 embeds
    them as JSON, `var results = {"<path>": {"caption": "<html>", ...}, ...};`."""
    found = re.search(r"var results = (\{.*?\});\s*</script>", report.read_text(), re.S)
    assert found, f"{report}: no `var results = ...` block (has Snakemake's report format changed?)"
    return {Path(path).name: plain(entry.get("caption") or "") for path, entry in json.loads(found.group(1)).items()}


@pytest.mark.slow
def test_demo_dag_end_to_end(tmp_path):
    """The demo from a checkout whose path has a space, into a working directory whose name has one."""
    root = checkout_copy(tmp_path / "deep aug" / "checkout")
    tmp_path = tmp_path / "deep aug" / "demo run"
    demo = str(root / "config" / "demo.yaml")
    res = snakemake("--cores", "2", "--configfile", demo, cwd=tmp_path, timeout=3600, root=root)
    assert res.returncode == 0, res.stderr[-5000:]
    # the console: one line per job (a progress bar), the job statistics, no Python warning
    console = (res.stdout + res.stderr).splitlines()
    assert len(console) <= CONSOLE_LINES, f"{len(console)} lines:\n" + "\n".join(console)
    assert not [line for line in console if WARNING_LINE.search(line)], "\n".join(console)
    jobs = sum(job_counts(res.stdout + res.stderr).values()) - job_counts(res.stdout + res.stderr)["total"]
    assert sum(bool(re.match(rf" *\d+%\|.*\| \d+/{jobs} ", line)) for line in console) == jobs
    assert any(re.match(rf"100%\|.*\| {jobs}/{jobs} \[.*\] all", line) for line in console)
    table = pd.read_csv(tmp_path / "results" / "table.csv")
    vision = table[table["domain"] == "vision"]
    # seeds x (baseline + dropout x 2 layers x sg + PCA at layer 3), and BYOL's baseline (one seed)
    assert len(vision) == 2 * (1 + 2 * 2 + 1) + 1
    assert set(vision["run"]) >= {"none", "dropout-L0-sg", "dropout-L6-nosg", "pca-L3-sg", "none_ssl_methodbyol"}
    assert set(vision["ssl_method"]) == {"simclr", "byol"}
    runs = pd.read_csv(tmp_path / "results" / "runs.tsv", sep="\t")
    # every run: vision 12 + 1 (BYOL) + 10 supervised, text 8 (two lr each) + 10 supervised, graph 4 + 4 supervised
    assert len(runs) == 12 + 1 + 10 + 8 + 10 + 4 + 4
    assert set(runs["dir"]) >= {f"results/vision/digits/{r}/seed0" for r in ("none", "pca-L3-sg", "sup-dropout-L6-sg")}
    assert vision["linear_top1"].between(10, 100).all() and vision["knn_top1"].between(10, 100).all()
    assert vision.loc[vision["method"] == "none", "layer"].isna().all()
    text = table[table["domain"] == "text"]
    assert len(text) == 2 * (1 + 1)  # seeds x settings: the dev-best of the two learning rates of each
    assert (text["tuned_candidates"] == 2).all() and set(text["selected_run"]) <= set(runs["run"])
    assert set(text["lr"]) <= {3.0e-5, 1.0e-4} and set(text["run"]) == {"none", "dropout-L7-sg"}
    for task in ("sts_lee_docs", "sts_simlex999", "sts_avg"):
        assert text[task].between(-100, 100).all()
    assert "sts_wordsim353" not in text  # the dev task is not a test task
    assert (text["n_layers"] == 8).all()  # MiniLM: 6 blocks -> layers 0..7
    graph = table[table["domain"] == "graph"]
    assert len(graph) == 2 * 2 and graph["svm_acc"].between(33, 100).all() and graph["dev_svm_acc"].notna().all()
    figures = tmp_path / "results" / "figures"
    for name in ("vision_digits", "text_lee", "text_lee_tasks", "graph_synthetic"):
        for ext in ("png", "pdf"):
            assert (figures / f"{name}.{ext}").stat().st_size > 10_000
    for domain in ("vision", "text", "graph"):
        assert (tmp_path / "results" / "notebooks" / f"{domain}_figures.html").stat().st_size > 10_000
    # what the figure notebooks print: each domain's own swept settings (text's lr is tuned on dev, not
    # swept; graphs sweep no lr), no other domain's name, and the score named from the settings
    printed = {
        domain: notebook_text(tmp_path / "results" / "notebooks" / f"{domain}_figures.ipynb")
        for domain in ("vision", "text", "graph")
    }
    assert "other swept settings: none" in printed["graph"] and "tuned on dev" not in printed["graph"]
    assert "tuned on dev per setting and seed: lr" in printed["text"] and "'lr'" not in printed["text"]
    assert (
        "(vision)" not in printed["graph"]
        and "linear SVM (LinearSVC) accuracy, test part of one 80/10/10 split (%)" in printed["graph"]
    )
    assert "average Spearman x100 over lee_docs, simlex999" in printed["text"]
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert set(summary["domain"]) == {"vision", "text", "graph"}
    # one row per SSL method of vision's: BYOL's has a baseline only (no Deep Augmentation run to choose)
    byol = summary["ssl_method"] == "byol"
    assert byol.sum() == 1 and summary.loc[~byol, "best_setting"].notna().all()
    claims = pd.read_csv(tmp_path / "results" / "claims.csv")
    assert claims["verdict"].str.match(r"(supported|not supported|not significant \(n = \d+\)|not tested)").all()
    assert claims["selection"].str.contains("selected on dev").all()
    # the demo's datasets have no published number: one row per baseline, its test metric, saying so
    fidelity = pd.read_csv(tmp_path / "results" / "fidelity.csv")
    assert sorted(zip(fidelity["dataset"], fidelity["metric"])) == [
        ("digits", "linear_top1"),
        ("digits", "linear_top1"),  # BYOL's baseline
        ("lee", "sts_avg"),
        ("synthetic", "svm_acc"),
    ]
    assert (fidelity["verdict"] == "not comparable: no published number for " + fidelity["dataset"]).all()
    two = fidelity["setting"] != "none_ssl_methodbyol"  # BYOL's baseline: one seed
    assert (fidelity.loc[two, "n_seeds"] == 2).all() and fidelity.loc[two, "ci_low"].notna().all()
    assert (fidelity.loc[~two, "n_seeds"] == 1).all()
    # the analysis target on the same runs: CKA, alignment/uniformity, layer selection
    analysis = snakemake("analysis", "--cores", "2", "--configfile", demo, cwd=tmp_path, timeout=3600, root=root)
    assert analysis.returncode == 0, analysis.stderr[-5000:]
    an = pd.read_csv(tmp_path / "results" / "analysis" / "table.csv")
    contrastive = runs[runs["objective"] == "contrastive"]
    settings = contrastive.drop_duplicates(["domain", "dataset", "setting", "seed"])
    assert len(an) == len(settings) and an["alignment"].between(0, 4).all() and (an["uniformity"] <= 0).all()
    # one analysis per setting and seed, of the run the table reports: text's dev-best of its two lrs
    analysed = an[an["domain"] == "text"].set_index(["run", "seed"])
    reported = text.set_index(["run", "seed"])
    assert (analysed.loc[reported.index, "selected_run"] == reported["selected_run"]).all()
    assert (analysed.loc[reported.index, "lr"] == reported["lr"]).all() and (analysed["tuned_candidates"] == 2).all()
    assert an.loc[an["method"] != "none", "cka_target_neighbours_linear"].between(0, 1).all()
    with np.load(tmp_path / "results" / "analysis" / "text" / "lee" / "none" / "seed0" / "cka.npz") as cka:
        assert cka["linear"].shape == (8, 8) and np.allclose(np.diag(cka["rbf"]), 1)
    selection = pd.read_csv(tmp_path / "results" / "analysis" / "layer_selection.csv")
    assert len(selection) == 3 + 1 + 1  # vision: dropout x {sg, nosg}, PCA sg; text and graph: dropout, sg
    supervised = pd.read_csv(tmp_path / "results" / "analysis" / "supervised_table.csv")
    assert len(supervised) == 10 + 10 + 4
    assert (supervised["objective"] == "supervised").all() and supervised["run"].str.startswith("sup-").all()
    assert supervised.loc[supervised["domain"] == "vision", "classifier_top1"].between(0, 100).all()
    inversion = pd.read_csv(tmp_path / "results" / "analysis" / "inversion.csv")
    assert set(inversion["domain"]) == {"vision", "text", "graph"} and inversion["verdict"].notna().all()
    # each baseline checked against chance level (the evaluations record it); a flagged one has no change
    assert (
        inversion["baseline_check"].str.match(r"ok: both baselines|the (contrastive|supervised) baseline did not").all()
    )
    flagged = inversion[inversion["baseline_check"].str.contains("did not learn")]
    assert flagged["verdict"].str.startswith("not tested").all()
    assert supervised.filter(like="chance_").notna().any().any()
    assert (selection.loc[selection["n_layers_swept"] == 1, "agree"].str.startswith("trivially")).all()
    for name in (
        "analysis_vision_digits_cka",
        "analysis_text_lee_align_uniform",
        "analysis_layer_selection",
        "vision_sup_digits",
        "text_sup_simlex999_train",
        "graph_sup_synthetic",
        "analysis_graph_synthetic_cka",
    ):
        assert (figures / f"{name}.png").stat().st_size > 10_000

    # every job left a benchmark and a log; a second run has nothing to do
    def benchmarks(*parts):
        return len(list((tmp_path / "benchmarks").joinpath(*parts).rglob("*.tsv")))

    assert benchmarks("train") == len(runs) and not benchmarks("evaluate")
    assert benchmarks("analysis") == len(settings)
    again = snakemake("--cores", "2", "--configfile", demo, "-n", cwd=tmp_path, root=root)
    assert "Nothing to be done" in again.stdout + again.stderr
    # the report of both targets: every figure with its own caption
    report = snakemake("--configfile", demo, "--report", "report.html", "all", "analysis", cwd=tmp_path, root=root)
    assert report.returncode == 0, report.stderr[-3000:]
    captions = report_captions(tmp_path / "report.html")
    assert {"summary.csv", "claims.csv", "fidelity.csv", "layer_selection.csv", "inversion.csv"} <= set(captions)
    pngs = sorted(p.name for p in figures.glob("*.png"))
    assert pngs == sorted(CAPTIONS), pngs
    for name in pngs:
        expected = plain(caption_text((root / "report" / f"{CAPTIONS[name]}.rst").read_text(), name))
        assert captions.get(name) == expected, f"{name} in the report: caption {captions.get(name)!r}, not {expected!r}"
    assert "linear SVM" in captions["graph_synthetic.png"] and "RBF-kernel SVM" not in captions["graph_synthetic.png"]
    assert "lee_docs, simlex999" in captions["text_lee.png"] and "STS" not in captions["text_lee.png"]
