"""`deepaug check-config` and Snakemake agree: on what is valid (an empty file, every domain off, only
supervised runs, empty axis lists, evaluation settings that would fail after training), on how many jobs
each target plans, and on where the text encoder's depth is read (the work directory)."""

import os
import re
import subprocess
import sys

import pytest

from deepaug.errors import ConfigError
from deepaug.workflow.config import REPO_CONFIG, check_config_file, merge_config, read_yaml, validate_config

SNAKEFILE = REPO_CONFIG.parent / "Snakefile"
DEMO = REPO_CONFIG.parent / "config" / "demo.yaml"
VISION = {"datasets": ["digits"], "sweep": [{"method": "none"}, {"method": "dropout", "layer": 3}]}


def _deepaug(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "deepaug", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def _snakemake(*args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--cores", "1", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


def _refused(config: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        validate_config(config)
    return str(exc.value)


# ----------------------------------------------------------------------------- empty axis lists
@pytest.mark.parametrize("axis", ["rate", "p", "lr", "dataset", "augment.p", "eval.linear_lr"])
def test_an_empty_axis_list_is_an_error_naming_the_block_and_key(axis):
    block = {"method": "dropout", "layer": 3, axis: []}
    message = _refused({"vision": {**VISION, "sweep": [{"method": "none"}, block]}})
    assert (
        f"config key 'vision.sweep[1].{axis}': is an empty list, which would silently drop every run of this "
        f"sweep block: list at least one value, or leave the key out to use the section's setting"
    ) in message


# ----------------------------------------------------------------------------- evaluation settings
@pytest.mark.parametrize(
    "domain, section, key, words",
    [
        ("graph", {"eval": {"c_grid": "abc"}}, "graph.eval.c_grid", "'abc' is not a list of values of C"),
        ("graph", {"eval": {"c_grid": "0,1,10"}}, "graph.eval.c_grid", "write numbers > 0 separated by commas"),
        ("graph", {"eval": {"c_grid": 10}}, "graph.eval.c_grid", "as text"),
        (
            "graph",
            {"sweep": [{"method": "none", "c_grid": ["1,10", "x"]}]},
            "graph.sweep[0].c_grid[1]",
            "'x' is not a list of values of C",
        ),
        (
            "vision",
            {"eval": {"linear_lr_decay_epochs": "sixty"}},
            "vision.eval.linear_lr_decay_epochs",
            "'sixty' is not a list of epochs",
        ),
        (
            "vision",
            {"eval": {"linear_lr_decay_epochs": "90,60"}},
            "vision.eval.linear_lr_decay_epochs",
            "'90,60' must list increasing epochs",
        ),
        (
            "vision",
            {"eval": {"probe": "supcon", "linear_epochs": 50}},
            "vision.eval.linear_lr_decay_epochs",
            "epoch(s) [60, 75, 90] are not before the last of linear_epochs=50",
        ),
        (
            "vision",
            {"sweep": [{"method": "none", "linear_epochs": [100, 70]}], "eval": {"probe": "supcon"}},
            "vision.sweep[0].linear_lr_decay_epochs",
            "epoch(s) [75, 90] are not before the last of linear_epochs=70",
        ),
        (
            "vision",
            {"eval": {"knn_temperature": float("inf")}},
            "vision.eval.knn_temperature",
            "inf must be a finite number",
        ),
    ],
)
def test_evaluation_settings_that_would_fail_after_training_are_refused_before(domain, section, key, words):
    base = VISION if domain == "vision" else {"datasets": ["synthetic"], "sweep": [{"method": "none"}]}
    message = _refused({domain: {**base, **section}})
    assert f"config key '{key}'" in message and words in message, message


def test_check_config_refuses_a_bad_evaluation_setting_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "graph:\n  datasets: [synthetic]\n  eval: {c_grid: 'abc'}\n  sweep: [{method: none}]\n"
        "vision: null\ntext: null\n"
    )
    r = _deepaug("check-config", bad)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "config key 'graph.eval.c_grid': 'abc' is not a list of values of C" in r.stderr


# ----------------------------------------------------------------------------- nothing to make
def test_an_empty_config_file_is_refused_as_snakemake_refuses_it(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    r = _deepaug("check-config", empty)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert f"{empty}: the config file is empty (or only comments), which Snakemake refuses" in r.stderr
    s = _snakemake("-n", "--configfile", empty, cwd=tmp_path)
    snakemakes_words = "Config file must be given as JSON or YAML with keys at top level"
    assert s.returncode != 0 and snakemakes_words in s.stdout + s.stderr


@pytest.mark.parametrize(
    "text, words",
    [
        ("vision: null\ntext: null\ngraph: null\n", "the config makes no run: every domain is switched off"),
        (
            "vision:\n  datasets: [digits]\n  sweep: [{objective: supervised, method: none}]\ntext: null\ngraph: null\n",  # noqa: E501
            "the config makes only supervised runs (objective: supervised)",
        ),
    ],
)
def test_a_config_that_makes_nothing_is_refused_by_check_config_and_snakemake(tmp_path, text, words):
    config = tmp_path / "nothing.yaml"
    config.write_text(text)
    r = _deepaug("check-config", config)
    assert r.returncode == 1 and words in r.stderr and "Traceback" not in r.stderr
    s = _snakemake("-n", "--configfile", config, "--", "analysis", cwd=tmp_path)
    assert s.returncode != 0 and words in s.stdout + s.stderr


# ----------------------------------------------------------------------------- job counts
def _planned(config_files, target, cwd) -> int:
    s = _snakemake("-n", "--configfile", *config_files, "--", target, cwd=cwd)
    assert s.returncode == 0, s.stderr[-2000:]
    return int(re.search(r"^total\s+(\d+)$", s.stdout + s.stderr, re.M).group(1))


def _reported(report: str) -> dict:
    return {t: int(n) for t, n in re.findall(r"^    (\w+): (\d+) jobs", report, re.M)}


@pytest.mark.slow
def test_check_config_counts_the_jobs_snakemake_plans_per_target(tmp_path):
    """The demo: `all` 41 jobs (not the "about 98" of 2 x runs), `analysis` 92, `data` 10; and with the
    analyses in the default target, `all` is what both make."""
    reported = _reported(check_config_file(DEMO))
    assert reported == {"all": 41, "analysis": 92, "data": 10}  # with the BYOL run (README "SSL methods...")
    for target, n in reported.items():
        assert _planned([DEMO], target, tmp_path) == n, target
    both = tmp_path / "both.yaml"
    both.write_text("analysis: {in_default_target: true}\n")
    reported = _reported(check_config_file([DEMO, both]))
    assert reported["all"] == _planned([DEMO, both], "all", tmp_path) > reported["analysis"]
    assert reported["data"] == _planned([DEMO, both], "data", tmp_path)


def test_the_papers_job_count_is_the_one_the_readme_states():
    report = check_config_file(REPO_CONFIG)
    assert "    all: 2681 jobs (2049 training runs, 597 analyses, 17 data, 17 tables and figures, 1 target)" in report
    assert "about" not in report


# ----------------------------------------------------------------------------- the work directory
def test_the_text_depth_is_read_in_the_work_directory_not_the_current_one(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "data/text/models/org--tiny").mkdir(parents=True)
    (work / "data/text/models/org--tiny/config.json").write_text('{"num_hidden_layers": 2}')
    elsewhere.mkdir()
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "text:\n  datasets: [lee]\n  model: {name: org/tiny}\n  dev_task: wordsim353\n"
        "  test_tasks: [wordsim353]\n  sweep: [{method: none}, {method: dropout, layer: all}]\n"
        "vision: null\ngraph: null\n"
    )
    lost = _deepaug("check-config", config, cwd=elsewhere)
    assert lost.returncode == 1 and "`all` needs the model's depth" in lost.stderr
    found = _deepaug("check-config", config, "--directory", work, cwd=elsewhere)
    assert found.returncode == 0, found.stderr
    assert "text: 5 contrastive run(s)" in found.stdout  # the baseline and layers 0-3 of a 2-block encoder
    before = os.getcwd()
    assert "text: 5 contrastive run(s)" in check_config_file(config, directory=work)
    assert os.getcwd() == before  # in-process, the check goes back to where it was


def test_gpu_smoke_config_dry_runs_on_a_machine_without_a_gpu(tmp_path, monkeypatch):
    """`device: cuda` stops a real run without a GPU before any job, but a dry run only plans: it must list
    the jobs here (while the Snakefile is parsed, Snakemake 9's workflow.dryrun is still False)."""
    smoke = REPO_CONFIG.parent / "config" / "gpu-smoke.yaml"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, whatever machine runs the test
    dry = _snakemake("-n", "--configfile", DEMO, smoke, "--", "all", "bench", cwd=tmp_path)
    assert dry.returncode == 0 and re.search(r"^total\s+\d+$", dry.stdout + dry.stderr, re.M), dry.stderr[-2000:]
    real = _snakemake("--configfile", DEMO, smoke, "--", "all", cwd=tmp_path)
    assert real.returncode != 0 and "asks for a GPU, but this machine has none" in real.stdout + real.stderr


# ----------------------------------------------------------------------------- the op ablations' configs
@pytest.mark.parametrize(
    "name, runs, all_jobs, settings",
    [
        (
            "detach-p",
            1032,  # 3 seeds x 8 (lr x batch) x (1 + 14 layers x 3 detach_p)
            1181,
            {"none", "dropout-L8-sg_detach_p0.5_p1.0_rate0.5", "dropout-L13-sg_detach_p0.0_p1.0_rate0.5"},
        ),
        (
            "layers-at-once",
            558,  # 3 seeds x 6 (lr x batch) x (1 + 14 layers x 2 + 2 at once)
            671,
            {"none", "dropout-L3-sg", "dropout-L3-nosg_rate0.5", "dropout-Lall-sg", "dropout-Lall-nosg_rate0.5"},
        ),
    ],
)
def test_the_op_ablation_configs_dry_run_with_their_run_counts(tmp_path, name, runs, all_jobs, settings):
    """config/paper/detach-p.yaml and layers-at-once.yaml: text only (the other domains switched off), valid
    for `deepaug check-config`, with the runs and jobs their header comments count."""
    from deepaug.workflow.runs import expand

    path = REPO_CONFIG.parent / "config" / "paper" / f"{name}.yaml"
    result = _deepaug("check-config", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"  text: {runs} contrastive run(s)\n  {runs} training runs in all" in result.stdout
    assert f"    all: {all_jobs} jobs ({runs} training runs" in result.stdout
    assert "vision:" not in result.stdout and "graph:" not in result.stdout
    config = validate_config(merge_config(read_yaml(REPO_CONFIG), read_yaml(path)))
    made = expand(config)
    assert len(made) == runs and {r.setting for r in made} >= settings
    header = path.read_text().split("\nvision: null", 1)[0]
    assert f"{runs:,} contrastive" in header and "bruel-gabrielsson/SimCSE" in header


# ----------------------------------------------------------------------------- GPU time of the sweep
def _plant(work, run, seconds, epochs, train_s):
    """An earlier run's traces: Snakemake's benchmark file of the job and the training's provenance.json."""
    bench = work / "benchmarks/train/vision/digits" / run / "seed0.tsv"
    bench.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{seconds}\t0:00:00\t900.0\t1.0\n")
    prov = work / "results/vision/digits" / run / "seed0/provenance.json"
    prov.parent.mkdir(parents=True, exist_ok=True)
    prov.write_text(f'{{"settings": {{"epochs": {epochs}, "objective": "contrastive"}}, "train_time_s": {train_s}}}')


def _gpu_lines(report: str) -> str:
    return report.split("GPU time of the trainings", 1)[1]


def test_check_config_estimates_the_sweeps_gpu_time_from_an_earlier_runs_benchmarks(tmp_path):
    """Four vision runs of 10 epochs on 2 GPUs, measured by a pilot: the baseline at 1 epoch (100 s job, 90 s
    training) and dropout at layer 0 at the planned 10 epochs (500 s, 450 s). Layer 0 takes its own 500 s;
    the 3 others the median 67.5 s per epoch x 10 + the median 30 s outside training = 705 s each."""
    work = tmp_path / "work"
    _plant(work, "none", 100, 1, 90)
    _plant(work, "dropout-L0-sg", 500, 10, 450)
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "device: cpu\ntext: null\ngraph: null\nanalysis: {in_default_target: false}\n"
        "vision:\n  datasets: [digits]\n  train: {epochs: 10}\n  resources: {gpu: 1, runs_per_gpu: RPG}\n"
        "  sweep: [{method: none}, {method: dropout, layer: [0, 3, 6]}]\n"
    )
    text = config.read_text()
    config.write_text(text.replace("RPG", "1"))
    one = _gpu_lines(check_config_file(config, directory=work, gpus=2))
    assert "vision: 43.6 min GPU time for 4 of 4 runs (1 measured, 3 scaled); runs_per_gpu 1" in one  # 2,615 s
    assert "wall time on 2 GPU(s), one run per GPU: about 21.8 min" in one  # 2,615 s / 2
    config.write_text(text.replace("RPG", "2"))
    packed = _gpu_lines(check_config_file(config, directory=work, gpus=2))
    # two runs per GPU: 4 at once on 2 GPUs, so the wall time is the longest run's 705 s
    assert "with the config's runs_per_gpu: about 11.8 min (1.9x faster, 21.8 min of GPU time)" in packed
    # no earlier run: said so, no number
    empty = _gpu_lines(check_config_file(config, directory=tmp_path, gpus=2))
    assert "not measured: no benchmark file" in empty and "about" not in empty


def test_check_config_uses_the_throughput_benchmark_for_cifar_runs_nobody_measured(tmp_path):
    (tmp_path / "results/bench").mkdir(parents=True)
    (tmp_path / "results/bench/throughput.json").write_text('{"figures": {"project_images_per_s": 10000}}')
    config = tmp_path / "cifar.yaml"
    config.write_text(
        "text: null\ngraph: null\nvision:\n  datasets: [cifar10]\n  train: {epochs: 100}\n  sweep: [{method: none}]\n"
    )
    lines = _gpu_lines(check_config_file(config, directory=tmp_path, gpus=1))
    # 100 epochs x 2 views x 50,000 images / 10,000 images/s = 1,000 s
    assert "vision: 16.7 min GPU time for 1 of 1 runs (1 throughput)" in lines
