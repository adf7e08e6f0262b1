"""The Snakemake workflow: the paper's DAG, lint, config errors, and the demo end to end."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]


def snakemake(*args, cwd, timeout=600):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([*SNAKEMAKE, "-d", str(cwd), *args], capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(stdout: str) -> dict[str, int]:
    block = stdout.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def test_paper_config_dag_has_174_vision_and_171_text_pretraining_jobs(tmp_path):
    res = snakemake("-n", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout)
    assert counts["pretrain_vision"] + counts["pretrain_vision_baseline"] == 174
    assert counts["pretrain_vision_baseline"] == 6  # once per dataset and seed, not per layer
    assert counts["evaluate_vision"] == 174 and counts["aggregate"] == 1
    assert counts["prepare_image_data"] == 2
    assert counts["pretrain_text"] + counts["pretrain_text_baseline"] == 171
    assert counts["pretrain_text_baseline"] == 3
    assert counts["evaluate_text"] == 171
    assert counts["prepare_text_task"] == 9  # seven STS test sets, STS-B dev, STS-B train (supervised)
    assert counts["prepare_text_model"] == 1 and counts["prepare_text_corpus"] == 1
    assert "results/text/wiki1m/dropout-L13-sg/seed2/model.pt" in res.stdout
    # the default target of the paper config includes the analyses and the supervised counterpart
    assert counts["pretrain_vision_sup"] + counts["pretrain_vision_sup_baseline"] == 174
    assert counts["pretrain_text_sup"] + counts["pretrain_text_sup_baseline"] == 171
    assert counts["analyze_vision"] == 174 and counts["analyze_text"] == 171 and counts["inversion"] == 1


def test_lint_passes(tmp_path):
    res = snakemake("--lint", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("bad,message", [
    ("vision:\n  train:\n    learning_rate: 0.1\n", "config key 'vision.train.learning_rate' is not a known setting"),
    ("vision:\n  layers: [0, 9]\n", "config key 'vision.layers[1]': layer 9 is out of range"),
    ("vision:\n  train:\n    lr: fast\n", "config key 'vision.train.lr': 'fast' is not of type 'number'"),
    ("vision:\n  methods: [none, cutout]\n", "config key 'vision.methods[1]'"),
    ("colour: blue\n", "config key 'colour' is not a known setting"),
    ("text:\n  layers: [0, 14]\n", "config key 'text.layers[1]': layer 14 is out of range; an encoder with 12 blocks"),
    ("text:\n  test_tasks: [sts12, sts99]\n", "config key 'text.test_tasks[1]'"),
])
def test_bad_config_is_rejected_with_the_key_named(tmp_path, bad, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(bad)
    res = snakemake("-n", "--configfile", str(cfg), cwd=tmp_path)
    assert res.returncode != 0
    assert message in res.stderr + res.stdout


@pytest.mark.slow
def test_demo_dag_end_to_end(tmp_path):
    res = snakemake("--cores", "2", "--configfile", str(ROOT / "config" / "demo.yaml"), cwd=tmp_path, timeout=900)
    assert res.returncode == 0, res.stderr[-5000:]
    table = pd.read_csv(tmp_path / "results" / "table.csv")
    vision = table[table["domain"] == "vision"]
    assert len(vision) == 2 * (1 + 2 * 3 * 2)  # seeds x (baseline + methods x layers x sg)
    assert set(vision["variant"]) >= {"none", "dropout-L0-sg", "pca-L6-nosg"}
    assert vision["linear_top1"].between(10, 100).all() and vision["knn_top1"].between(10, 100).all()
    assert vision.loc[vision["method"] == "none", "layer"].isna().all()
    text = table[table["domain"] == "text"]
    assert len(text) == 2 * (1 + 1 * 2 * 2)
    for task in ("sts_lee_docs", "sts_simlex999", "sts_wordsim353", "sts_avg"):
        assert text[task].between(-100, 100).all()
    assert (text["n_layers"] == 8).all()  # MiniLM: 6 blocks -> layers 0..7
    figures = tmp_path / "results" / "figures"
    for name in ("vision_digits", "text_lee", "text_lee_tasks"):
        for ext in ("png", "pdf"):
            assert (figures / f"{name}.{ext}").stat().st_size > 10_000
    for domain in ("vision", "text"):
        assert (tmp_path / "results" / "notebooks" / f"{domain}_figures.html").stat().st_size > 10_000
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert set(summary["domain"]) == {"vision", "text"} and summary["best_setting"].notna().all()
    claims = pd.read_csv(tmp_path / "results" / "claims.csv")
    assert claims["verdict"].str.match(r"(supported|not supported|not tested)").all()
    report = snakemake("--configfile", str(ROOT / "config" / "demo.yaml"), "--report", "report.html", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (tmp_path / "report.html").read_text()
    assert "vision_digits.png" in html and "text_lee_tasks.png" in html and "summary.csv" in html
    # the analysis target on the same runs: CKA, alignment/uniformity, layer selection
    analysis = snakemake("analysis", "--cores", "2", "--configfile", str(ROOT / "config" / "demo.yaml"), cwd=tmp_path,
                         timeout=900)
    assert analysis.returncode == 0, analysis.stderr[-5000:]
    an = pd.read_csv(tmp_path / "results" / "analysis" / "table.csv")
    assert len(an) == len(table) and an["alignment"].between(0, 4).all() and (an["uniformity"] <= 0).all()
    assert an.loc[an["method"] != "none", "cka_target_neighbours_linear"].between(0, 1).all()
    with np.load(tmp_path / "results" / "text" / "lee" / "none" / "seed0" / "cka.npz") as cka:
        assert cka["linear"].shape == (8, 8) and np.allclose(np.diag(cka["rbf"]), 1)
    selection = pd.read_csv(tmp_path / "results" / "analysis" / "layer_selection.csv")
    assert len(selection) == 4 + 2  # vision: {dropout, pca} x {sg, nosg}; text: dropout x {sg, nosg}
    supervised = pd.read_csv(tmp_path / "results" / "analysis" / "supervised_table.csv")
    assert len(supervised) == 2 * (1 + 1 * 3 * 2) + 2 * (1 + 1 * 2 * 2)
    assert supervised.loc[supervised["domain"] == "vision_sup", "classifier_top1"].between(0, 100).all()
    inversion = pd.read_csv(tmp_path / "results" / "analysis" / "inversion.csv")
    assert set(inversion["domain"]) == {"vision", "text"} and inversion["verdict"].notna().all()
    for name in ("analysis_vision_digits_cka", "analysis_text_lee_align_uniform", "analysis_layer_selection",
                 "vision_sup_digits", "text_sup_simlex999_train"):
        assert (figures / f"{name}.png").stat().st_size > 10_000
    # every job left a benchmark and a log; a second run has nothing to do
    def benchmarks(*parts):
        return len(list((tmp_path / "benchmarks").joinpath(*parts).rglob("*.tsv")))

    assert benchmarks("pretrain", "vision") + benchmarks("pretrain", "text") == len(table)
    assert benchmarks("pretrain", "vision_sup") + benchmarks("pretrain", "text_sup") == len(supervised)
    assert benchmarks("analysis") == len(table)
    again = snakemake("--cores", "2", "--configfile", str(ROOT / "config" / "demo.yaml"), "-n", cwd=tmp_path)
    assert "Nothing to be done" in again.stdout + again.stderr
