"""Bad input gets one clear line, never a traceback: impossible arguments (exit 2), bad config values,
YAML syntax errors, `deepaug check-config` on partial files merged as Snakemake merges them."""

import subprocess
import sys

import pytest

from deepaug.errors import ConfigError
from deepaug.workflow.config import check_config_file, merge_config, read_yaml, validate_config


def _deepaug(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "deepaug", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--batch-size", "0", "batch_size must be a whole number >= 1, got 0"),
        ("--epochs", "0", "epochs must be a whole number >= 1, got 0"),
        ("--device", "tpu", "device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        ("--lr", "-1", "lr must be a finite number > 0"),
        ("--p", "1.5", "p (the probability that a row is transformed) must be in [0, 1]"),
    ],
)
def test_impossible_training_arguments_exit_2_with_one_line(tmp_path, digits_npz, flag, value, message):
    r = _deepaug(
        "pretrain-vision", "--data", digits_npz, "--out-dir", tmp_path / "o", "--ckpt-dir", tmp_path / "c", flag, value
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"deepaug pretrain-vision: error: {message}" or message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "model.pt").exists()


def test_stages_run_in_order_in_one_process(tmp_path, digits_npz):
    """`deepaug a ... :: b ...` (a run's job: train, then evaluate): both stages, in order, one process."""
    out = tmp_path / "run"
    r = _deepaug(
        "pretrain-vision",
        "--data",
        digits_npz,
        "--out-dir",
        out,
        "--ckpt-dir",
        tmp_path / "c",
        "--width",
        "4",
        "--proj-dim",
        "8",
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--warmup-epochs",
        "0",
        "--precision",
        "fp32",
        "--device",
        "cpu",
        "::",
        "eval-vision",
        "--model",
        out / "model.pt",
        "--data",
        digits_npz,
        "--out",
        out / "eval.json",
        "--probe",
        "features",
        "--linear-epochs",
        "1",
        "--knn-k",
        "5",
        "--device",
        "cpu",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "model.pt").stat().st_mtime <= (out / "eval.json").stat().st_mtime
    assert 0 <= __import__("json").loads((out / "eval.json").read_text())["linear_top1"] <= 100


def test_a_bad_later_stage_fails_before_the_first_runs(tmp_path, digits_npz):
    r = _deepaug(
        "pretrain-vision",
        "--data",
        digits_npz,
        "--out-dir",
        tmp_path / "o",
        "--ckpt-dir",
        tmp_path / "c",
        "::",
        "eval-vision",
        "--model",
        tmp_path / "o" / "model.pt",
    )  # no --data, --out
    assert r.returncode == 2 and "eval-vision: error: the following arguments are required: --data, --out" in r.stderr
    assert not (tmp_path / "c").exists()  # the training never started
    empty = _deepaug("check-config", "config.yaml", "::")
    assert empty.returncode == 2 and "an empty stage" in empty.stderr


def test_missing_input_file_exits_2(tmp_path):
    r = _deepaug(
        "eval-vision", "--model", tmp_path / "nope.pt", "--data", tmp_path / "x.npz", "--out", tmp_path / "e.json"
    )
    assert r.returncode == 2 and "x.npz: no such file or directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_non_integer_for_an_integer_flag_exits_2():
    r = _deepaug("pretrain-vision", "--data", "x", "--out-dir", "o", "--ckpt-dir", "c", "--epochs", "2.0")
    assert r.returncode == 2 and "invalid int value: '2.0'" in r.stderr


def test_cuda_without_a_gpu_is_one_line(tmp_path, digits_npz):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = _deepaug(
        "pretrain-vision",
        "--data",
        digits_npz,
        "--out-dir",
        tmp_path / "o",
        "--ckpt-dir",
        tmp_path / "c",
        "--device",
        "cuda",
        "--epochs",
        "1",
        "--width",
        "4",
    )
    assert r.returncode == 1 and "CUDA is not available on this machine" in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- config values
BASE = {"vision": {"datasets": ["digits"], "sweep": [{"method": "none"}, {"method": "dropout", "layer": 3}]}}


@pytest.mark.parametrize(
    "patch, key, words",
    [
        ({"sweep": [{"method": "dropout", "layer": 3, "seed": [1.0]}]}, "vision.sweep[0].seed[0]", "whole number"),
        ({"train": {"epochs": 2.0}}, "vision.train.epochs", "whole number"),
        ({"sweep": []}, "vision.sweep", "is an empty list, which would silently drop every run"),
        ({"datasets": []}, "vision.datasets", "empty list"),
        ({"sweep": [{"method": "dropout", "layer": 3, "stop_gradient": []}]}, "vision.sweep[0].stop_gradient", ""),
        ({"augment": {"pca_component": 0}}, "vision.augment.pca_component", "0 is not allowed here"),
        (
            {"sweep": [{"method": "pca", "layer": 3, "pca_component": 5}], "train": {"batch_size": 2}},
            "vision.sweep[0].pca_component",
            "cannot be computed from a batch of 4 rows",
        ),
        (
            {"sweep": [{"method": "pca", "layer": 3, "batch_size": [2, 64]}], "augment": {"pca_component": 5}},
            "vision.sweep[0].pca_component",
            "cannot be computed from a batch of 4 rows",
        ),
        ({"sweep": [{"method": "dropout", "layer": 3, "rate": 1.5}]}, "vision.sweep[0].rate", "1.5"),
        ({"sweep": [{"method": "dropout", "layer": 3, "precision": "fp64"}]}, "vision.sweep[0].precision", "fp64"),
        ({"sweep": [{"method": "dropout"}]}, "vision.sweep[0]", "needs a layer"),
        (
            {"sweep": [{"method": "dropout", "layer": 3, "dataset": "cifar10"}]},
            "vision.sweep[0].dataset",
            "not one of this domain's datasets",
        ),
        # a negative layer is a bad index, not a misspelt `all`
        (
            {"sweep": [{"method": "dropout", "layer": -1}]},
            "vision.sweep[0].layer",
            "-1 is not a layer index: layers are numbered from 0",
        ),
        ({"sweep": [{"method": "dropout", "layer": [3, -2]}]}, "vision.sweep[0].layer[1]", "-2 is not a layer index"),
        (
            {"train": {"batch_size": 1}},
            "vision.train.batch_size",
            "1 must be a whole number of at least 2: a contrastive batch needs two examples",
        ),
        ({"sweep": [{"method": "none", "batch_size": [1, 64]}]}, "vision.sweep[0].batch_size[0]", "at least 2"),
        ({"train": {"lr": float("nan")}}, "vision.train.lr", "nan must be a finite number"),
    ],
)
def test_bad_config_values_are_rejected_naming_the_key(patch, key, words):
    config = merge_config(BASE, {"vision": patch})
    with pytest.raises(ConfigError) as exc:
        validate_config(config)
    assert f"config key '{key}'" in str(exc.value) and words in str(exc.value)


def test_ambiguous_axis_names_say_how_to_write_them():
    text = {
        "datasets": ["lee"],
        "dev_task": "wordsim353",
        "test_tasks": ["wordsim353"],
        "model": {"name": "all-MiniLM-L6-v2"},
    }
    with pytest.raises(
        ConfigError,
        match=r"'text.sweep\[0\].precision': 'precision' is a setting of train and eval: "
        r"write train.precision or eval.precision",
    ):
        validate_config({**BASE, "text": dict(text, sweep=[{"method": "none", "precision": ["fp32", "bf16"]}])})
    validate_config({**BASE, "text": dict(text, sweep=[{"method": "none", "eval.precision": ["fp32", "bf16"]}])})


def test_a_domain_switched_off_with_null_is_valid():
    validate_config(merge_config(BASE, {"text": None}))


def test_text_layers_are_checked_against_the_models_own_depth(tmp_path, monkeypatch):
    text = {"datasets": ["lee"], "dev_task": "wordsim353", "test_tasks": ["wordsim353"]}

    def sweep(layer):
        return [{"method": "dropout", "layer": layer}]

    validate_config({**BASE, "text": dict(text, model={"name": "all-MiniLM-L6-v2"}, sweep=sweep([7]))})
    with pytest.raises(
        ConfigError,
        match=r"'text.sweep\[0\].layer': layer 8 is out of range; text has layers 0-7 "
        r"\(0 embeddings, 1-6 blocks, 7 pooled sentence vector\)",
    ):
        validate_config({**BASE, "text": dict(text, model={"name": "all-MiniLM-L6-v2"}, sweep=sweep([8]))})
    # after the model changed, the old depth key cannot linger and disagree
    with pytest.raises(ConfigError, match="num_layers' is no longer a setting"):
        validate_config(
            {**BASE, "text": dict(text, model={"name": "bert-base-uncased", "num_layers": 6}, sweep=sweep([8]))}
        )
    # a local model folder inside the work directory: its config.json says how deep it is
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "config.json").write_text('{"num_hidden_layers": 2}')
    with pytest.raises(ConfigError, match="text has layers 0-3"):
        validate_config({**BASE, "text": dict(text, model={"name": "tiny"}, sweep=sweep([4]))})
    # `layer: all` is every layer of the model's map
    config = {**BASE, "text": dict(text, model={"name": "tiny"}, sweep=sweep("all"))}
    validate_config(config)
    from deepaug.workflow.runs import expand

    assert [r.layer for r in expand(config) if r.domain == "text"] == [0, 1, 2, 3]


def test_yaml_syntax_error_is_one_line_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vision:\n  datasets: [0\n  sweep: [1]\n")
    with pytest.raises(ConfigError, match=rf"{bad}:\d+:\d+: YAML syntax error"):
        read_yaml(bad)
    r = _deepaug("check-config", bad)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_check_config_merges_like_snakemake_and_counts_runs(tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text("vision:\n  datasets: [digits]\n  sweep:\n    - {method: none, seed: [0, 1]}\n")
    report = check_config_file(small)  # a partial file: valid once merged over config.yaml
    assert "vision: 2 contrastive run(s)" in report
    assert "text: 1026 contrastive, 171 supervised run(s) (inherited from" in report
    assert "set `text: null` to switch it off" in report
    alone = check_config_file(small, base=None)  # alone: only what it says, every other domain off
    assert "vision: 2 contrastive run(s)" in alone and "text" not in alone and "2 training runs in all" in alone
    off = tmp_path / "off.yaml"
    off.write_text("vision:\n  datasets: [digits]\n  sweep: [{method: none}]\ntext: null\ngraph: null\n")
    r = _deepaug("check-config", off)
    assert r.returncode == 0 and "1 training runs in all" in r.stdout and "text" not in r.stdout.split("\n", 1)[1]


def test_check_config_with_a_missing_base_is_one_line(tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text("vision:\n  datasets: [digits]\n  sweep:\n    - {method: none}\n")
    r = _deepaug("check-config", small, "--base", tmp_path / "missing.yaml")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (
        f"--base {tmp_path / 'missing.yaml'}: no such file; give the config it is merged over, or 'none' to "
        f"check the file alone"
    ) in r.stderr
    with pytest.raises(ConfigError, match=r"missing.yaml: no such config file"):
        check_config_file(small, base=tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--method", "dropout", "--layer", "-1"], "layer -1 is not a layer index: layers are numbered from 0"),
        (
            ["--batch-size", "1"],
            "batch_size must be at least 2 for a contrastive objective (each example's negatives "
            "are the other examples of its batch), got 1",
        ),
    ],
)
def test_a_negative_layer_and_a_contrastive_batch_of_one_are_refused_before_training(tmp_path, flags, message):
    data = tmp_path / "x.npz"
    data.write_bytes(b"")  # never read: the settings are checked first
    r = _deepaug("pretrain-vision", "--data", data, "--out-dir", tmp_path / "o", "--ckpt-dir", tmp_path / "c", *flags)
    assert r.returncode == 2 and r.stderr.startswith(f"deepaug pretrain-vision: error: {message}"), r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_supervised_batch_of_one_is_not_refused_by_the_contrastive_rule():
    from deepaug.domains.vision.train import VisionPretrainSettings

    VisionPretrainSettings(objective="supervised", batch_size=1).validate()
    with pytest.raises(ValueError, match="at least 2 for a contrastive objective"):
        VisionPretrainSettings(objective="contrastive", batch_size=1).validate()


def test_gpu_smoke_config_covers_every_cuda_path():
    """config/gpu-smoke.yaml (over the demo) is valid and asks for what the first GPU must check."""
    from deepaug.workflow.config import REPO_CONFIG
    from deepaug.workflow.runs import expand

    demo, gpu = REPO_CONFIG.parent / "config" / "demo.yaml", REPO_CONFIG.parent / "config" / "gpu-smoke.yaml"
    report = check_config_file([demo, gpu])
    assert "20 training runs in all" in report
    smoke = validate_config(merge_config(merge_config(read_yaml(REPO_CONFIG), read_yaml(demo)), read_yaml(gpu)))
    assert smoke["device"] == "cuda" and smoke["analysis"]["in_default_target"]
    runs = expand(smoke)
    for domain in ("vision", "text"):
        for objective in ("contrastive", "supervised"):
            part = [r for r in runs if (r.domain, r.objective) == (domain, objective)]
            assert {r.method for r in part} >= {"none", "pca"}
            assert all(r.section["train"]["precision"] == "bf16" and r.section["resources"]["gpu"] == 1 for r in part)
    graph = [r for r in runs if r.domain == "graph"]
    assert {r.method for r in graph} == {"none", "dropout", "pca"} and all(
        r.section["resources"]["gpu"] == 1 for r in graph
    )
    vision = [r for r in runs if r.domain == "vision"]
    assert all(r.section["train"]["channels_last"] for r in vision)
    assert {r.stop_gradient for r in vision if r.method == "dropout"} == {True, False}
    assert any(r.section["train"]["compile"] for r in vision)


def test_device_cuda_without_a_gpu_stops_before_any_job(tmp_path):
    import os

    import torch

    from deepaug.workflow.config import REPO_CONFIG

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO_CONFIG.parent / "Snakefile"),
            "--configfile",
            str(REPO_CONFIG.parent / "config" / "demo.yaml"),
            "--config",
            "device=cuda",
            "--cores",
            "1",
            "data",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "config key 'device': 'cuda' asks for a GPU, but this machine has none" in out
    assert not (tmp_path / "data").exists()  # no job ran
