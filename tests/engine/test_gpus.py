"""One device per concurrent job (locks), the workflow's GPU cap and its threads per GPU job, without a GPU.

A stand-in `nvidia-smi` on PATH makes the workflow see N GPUs; the jobs themselves train on the CPU
(`device: cpu` in the test configs).
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from processes import run_group

from deepaug.engine.gpus import claim_gpu, release_all, visible_gpu_ids

ROOT = Path(__file__).resolve().parents[2]

CLAIM = textwrap.dedent("""
    import sys, time
    from deepaug.engine.gpus import claim_gpu
    i = claim_gpu(["0", "1"], sys.argv[1], poll_s=0.05, log=lambda m: print(m, flush=True))
    print("claimed", i, flush=True)
    time.sleep(float(sys.argv[2]))
""")


def test_concurrent_jobs_claim_different_devices_and_a_third_waits(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path), "2.0"], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    first = sorted(p.stdout.readline().split()[1] for p in procs)
    assert first == ["0", "1"]
    third = subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path), "0"], stdout=subprocess.PIPE, text=True)
    assert "waiting" in third.stdout.readline()  # both devices held
    for p in procs:
        p.kill()  # a crashed job frees its device: the kernel drops the lock
        p.wait()
    assert third.stdout.readline().startswith("claimed")
    third.wait()


def test_claim_in_process_and_release(tmp_path):
    assert claim_gpu(["3"], tmp_path) == 0
    assert (tmp_path / "gpu3.lock").read_text().strip() == str(os.getpid())
    release_all()


def test_visible_ids_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpu_ids() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpu_ids() == []


CONFIGS = ROOT / "tests" / "configs"


def fake_gpus(tmp_path: Path, n: int) -> dict:
    """An environment whose PATH has a stand-in `nvidia-smi -L` listing n GPUs."""
    fakebin = tmp_path / "bin"
    fakebin.mkdir(exist_ok=True)
    lines = "".join(f'echo "GPU {i}: Stand-in GPU (UUID: GPU-{i})"\n' for i in range(n))
    (fakebin / "nvidia-smi").write_text(f"#!/bin/sh\n{lines}")
    (fakebin / "nvidia-smi").chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{fakebin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def snakemake(env: dict, workdir: Path, config: str | Path, *args, timeout=600):
    """Run the workflow with a config of tests/configs (a name) or any config file (a path)."""
    return run_group(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(workdir),
            f"--configfile={CONFIGS / config}",
            *args,
        ],
        timeout=timeout,
        env=env,
    )


def training_spans(workdir: Path) -> list[tuple[datetime, datetime]]:
    spans = []
    for prov in (workdir / "results" / "vision" / "digits").rglob("provenance.json"):
        p = json.loads(prov.read_text())
        spans.append((datetime.fromisoformat(p["started_at"]), datetime.fromisoformat(p["finished_at"])))
    return spans


def most_at_once(spans) -> int:
    """The largest number of spans that share an instant."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])  # an end sorts before a start
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def omp_threads(stdout: str, command: str) -> list[int]:
    """OMP_NUM_THREADS of every printed `python -m deepaug <command>` shell command (printshellcmds is
    on in profiles/default)."""
    return [int(n) for n in re.findall(rf"OMP_NUM_THREADS=(\d+) python -m deepaug {command} ", stdout)]


@pytest.mark.parametrize(
    "gpus,cores,extra,threads",
    [
        (4, 8, [], 2),  # 4 trainings at once, 2 threads each
        (1, 8, [], 8),  # one GPU: one job with every core (cpus: 8 in config.yaml)
        (8, 8, [], 1),  # 8 GPUs, 8 cores: 8 at once
        (4, 8, ["--resources", "gpu=2"], 4),  # the user's cap: 2 GPU jobs at once
        (4, 64, [], 8),  # many cores: at most resources.cpus
        (0, 8, [], 8),  # no GPU: the jobs train on the CPU with resources.cpus threads
    ],
)
def test_threads_per_gpu_job_share_the_cores_among_the_gpus(tmp_path, gpus, cores, extra, threads):
    res = snakemake(
        fake_gpus(tmp_path, gpus),
        tmp_path / "w",
        "four_gpus.yaml",
        "results/table.csv",
        "-n",
        "--cores",
        str(cores),
        *extra,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert omp_threads(res.stdout + res.stderr, "pretrain-vision") == [threads] * 4
    # each run's job trains, then evaluates, in the same process (the same threads)
    assert len(re.findall(r"python -m deepaug pretrain-vision [^\n]* :: eval-vision ", res.stdout + res.stderr)) == 4


def test_reference_augmentations_ask_for_their_dataloader_workers(tmp_path):
    """Per-image transforms in DataLoader workers need CPUs of their own, whatever the GPUs."""
    config = yaml.safe_load((CONFIGS / "four_gpus.yaml").read_text())
    config["vision"]["train"].update(augment_backend="reference", num_workers=11)
    (tmp_path / "reference.yaml").write_text(yaml.safe_dump(config))
    res = snakemake(
        fake_gpus(tmp_path, 4), tmp_path / "w", tmp_path / "reference.yaml", "results/table.csv", "-n", "--cores", "16"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert omp_threads(res.stdout + res.stderr, "pretrain-vision") == [12] * 4  # 11 workers + 1 > cpus 8


@pytest.mark.slow
def test_workflow_runs_no_more_trainings_than_gpus(tmp_path):
    """A machine reporting one GPU: the two trainings of this grid never overlap, although two cores
    would allow it."""
    res = snakemake(fake_gpus(tmp_path, 1), tmp_path / "w", "one_gpu.yaml", "results/table.csv", "--cores", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    spans = training_spans(tmp_path / "w")
    assert len(spans) == 2
    assert most_at_once(spans) == 1, f"trainings overlapped on a one-GPU machine: {spans}"


@pytest.mark.slow
def test_cores_8_on_4_gpus_trains_4_runs_at_once(tmp_path):
    """`snakemake --cores 8` on 4 GPUs: the 4 trainings run together (2 threads each), not one 8-thread
    job at a time. The overlap is read from the trainings' own start/end times (provenance.json)."""
    models = [
        f"results/vision/digits/{v}/seed0/model.pt" for v in ("none", "dropout-L0-sg", "dropout-L3-sg", "dropout-L6-sg")
    ]
    env = dict(fake_gpus(tmp_path, 4), DEEPAUG_CONSOLE="full")  # Snakemake's own console: the shell commands
    res = snakemake(env, tmp_path / "w", "four_gpus.yaml", *models, "--cores", "8")
    assert res.returncode == 0, res.stderr[-3000:]
    spans = training_spans(tmp_path / "w")
    assert len(spans) == 4
    assert most_at_once(spans) == 4, f"the 4 trainings did not all run at once: {sorted(spans)}"
    assert omp_threads(res.stdout + res.stderr, "pretrain-vision") == [2] * 4
    provs = [json.loads(p.read_text()) for p in (tmp_path / "w" / "results").rglob("provenance.json")]
    assert [p["accelerator"]["threads"] for p in provs] == [2] * 4  # what each training really used


# ---- several runs per GPU (<domain>.resources.runs_per_gpu): shares of a device instead of one lock each

SHARE = textwrap.dedent("""
    import sys, time
    from deepaug.engine.gpus import claim_gpu
    slots, units = int(sys.argv[3]), int(sys.argv[4])
    i = claim_gpu(["0", "1"], sys.argv[1], poll_s=0.05, log=lambda m: print(m, flush=True), slots=slots, units=units)
    print("claimed", i, flush=True)
    time.sleep(float(sys.argv[2]))
""")


def _share(tmp_path, hold_s, slots, units):
    return subprocess.Popen(
        [sys.executable, "-c", SHARE, str(tmp_path), str(hold_s), str(slots), str(units)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_two_runs_per_gpu_spread_over_the_devices_then_pack_and_a_fifth_waits(tmp_path):
    held = []
    for _ in range(4):  # one at a time, so that the order is the claim's, not the start's
        held.append(_share(tmp_path, 30, 2, 2))
        held[-1].line = held[-1].stdout.readline()
    assert [p.line.split()[1] for p in held] == ["0", "1", "0", "1"]  # spread first, then the second share
    fifth = _share(tmp_path, 0, 2, 2)
    assert "waiting" in fifth.stdout.readline()  # 2 GPUs x 2 runs are all taken
    held[1].kill()  # a crashed run frees its share (the kernel drops its lock): the fifth gets GPU 1
    held[1].wait()
    assert fifth.stdout.readline().split() == ["claimed", "1"]
    fifth.wait()
    for p in held:
        p.kill()
        p.wait()
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "gpu0.lock",
        "gpu0.slot1.lock",
        "gpu1.lock",
        "gpu1.slot1.lock",
    ]


def test_a_run_with_a_gpu_to_itself_takes_every_share_of_its_device(tmp_path):
    """Mixed domains (shares per GPU = the largest runs_per_gpu, 4): a vision run with a GPU to itself holds
    all 4 shares of GPU 0, so the graph runs (4 per GPU) all land on GPU 1 and a fifth waits."""
    whole = _share(tmp_path, 30, 1, 4)
    assert whole.stdout.readline().split() == ["claimed", "0"]
    graph = [_share(tmp_path, 30, 4, 4) for _ in range(4)]
    assert [p.stdout.readline().split()[1] for p in graph] == ["1"] * 4
    fifth = _share(tmp_path, 0, 4, 4)
    assert "waiting" in fifth.stdout.readline()
    whole.kill()
    whole.wait()
    assert fifth.stdout.readline().split() == ["claimed", "0"]
    fifth.wait()
    for p in graph:
        p.kill()
        p.wait()


def test_runs_per_gpu_from_the_environment(monkeypatch):
    from deepaug.engine import gpus

    monkeypatch.delenv(gpus.RUNS_PER_GPU_ENV, raising=False)
    assert gpus.runs_per_gpu("vision") == 1 and gpus.gpu_units() == 1
    assert gpus.runs_per_gpu("graph", env="vision=2,graph=8") == 8
    assert gpus.runs_per_gpu("text", env="vision=2,graph=8") == 1  # a domain left out has a GPU per run
    assert gpus.runs_per_gpu("text", env="4") == 4
    assert gpus.gpu_units(env="vision=2,graph=8") == 8
    for bad in ("3", "vision=0", "graph=x", "32"):
        with pytest.raises(ValueError, match="runs per GPU must be one of 1, 2, 4, 8, 16"):
            gpus.runs_per_gpu(bad.split("=")[0], env=bad)
    with pytest.raises(ValueError, match="at least 4 shares"):
        claim_gpu(["0"], slots=4, units=2)


def test_a_packed_run_gets_its_share_of_the_memory_and_its_visible_device(tmp_path, monkeypatch):
    """resolve_device on a stand-in 2-GPU CUDA (CUDA_VISIBLE_DEVICES=3,5), two vision runs per GPU: the run
    locks a share of GPU 3 (torch's cuda:0) and caps its allocator at 45% of the device's memory."""
    import torch

    import deepaug.engine.training as T
    from deepaug.engine import gpus

    calls = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.setdefault("device", i))
    monkeypatch.setattr(
        torch.cuda, "set_per_process_memory_fraction", lambda f, i: calls.setdefault("fraction", (f, i))
    )
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: type("P", (), {"total_memory": 80 * 2**30}))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path / "locks"))
    monkeypatch.setenv(gpus.RUNS_PER_GPU_ENV, "vision=2,graph=8")
    monkeypatch.setattr(gpus, "current_domain", "vision")
    try:
        device = T.resolve_device("auto")
        assert str(device) == "cuda:0" and calls["device"] == 0
        assert calls["fraction"] == (pytest.approx(0.45), 0)
        # 8 shares per GPU (graph's 8): a vision run (2 per GPU) holds 4 of GPU 3's
        assert sorted(p.name for p in (tmp_path / "locks").iterdir() if p.read_text().strip())[:1] == ["gpu3.lock"]
        assert sum(1 for p in (tmp_path / "locks").glob("gpu3*") if p.read_text().strip() == str(os.getpid())) == 4
    finally:
        release_all()


def test_a_run_that_does_not_fit_its_share_says_which_setting_to_lower(monkeypatch, capsys):
    import torch

    from deepaug import cli
    from deepaug.engine import gpus

    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setenv(gpus.RUNS_PER_GPU_ENV, "graph=8")
    text = gpus.packed_out_of_memory(oom, "graph")
    assert "graph.resources.runs_per_gpu is 8" in text and "11%" in text and "Tried to allocate" in text
    assert gpus.packed_out_of_memory(oom, "vision") is None  # a GPU to itself: CUDA's own error stands
    assert gpus.packed_out_of_memory(RuntimeError("other"), "graph") is None

    def raise_oom(args):
        raise oom

    # the CLI: a training command whose body runs out of memory
    monkeypatch.setattr(cli, "commands", lambda: {"pretrain-graph": ("train", lambda p: None, raise_oom, None)})
    monkeypatch.setattr(cli, "check_inputs", lambda args: None)
    assert cli.main(["pretrain-graph"]) == 1
    assert "lower graph.resources.runs_per_gpu" in capsys.readouterr().err
    monkeypatch.setenv(gpus.RUNS_PER_GPU_ENV, "")  # a GPU per run: CUDA's error is not rewritten
    with pytest.raises(torch.cuda.OutOfMemoryError):
        cli.main(["pretrain-graph"])


def test_runs_per_gpu_must_be_a_power_of_two(tmp_path):
    from deepaug.errors import ConfigError
    from deepaug.workflow.config import check_config_file

    config = yaml.safe_load((CONFIGS / "four_gpus.yaml").read_text())
    config["vision"]["resources"]["runs_per_gpu"] = 3
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"vision\.resources\.runs_per_gpu"):
        check_config_file(tmp_path / "c.yaml")


def _packed_config(tmp_path: Path, name: str, runs_per_gpu: int) -> Path:
    config = yaml.safe_load((CONFIGS / name).read_text())
    config["vision"]["resources"]["runs_per_gpu"] = runs_per_gpu
    path = tmp_path / f"{Path(name).stem}-{runs_per_gpu}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("gpus,runs_per_gpu,threads", [(2, 2, 2), (1, 4, 2), (2, 1, 4)])
def test_runs_per_gpu_lets_more_trainings_share_the_cores(tmp_path, gpus, runs_per_gpu, threads):
    """--cores 8: 2 GPUs x 2 runs each train the 4 runs at once (2 threads each), as 4 GPUs do."""
    res = snakemake(
        fake_gpus(tmp_path, gpus),
        tmp_path / "w",
        _packed_config(tmp_path, "four_gpus.yaml", runs_per_gpu),
        "results/table.csv",
        "-n",
        "--cores",
        "8",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert omp_threads(res.stdout + res.stderr, "pretrain-vision") == [threads] * 4


@pytest.mark.slow
def test_two_runs_on_one_gpu_train_together_and_give_the_numbers_of_a_gpu_each(tmp_path):
    """One stand-in GPU, --cores 2, the two trainings of one_gpu.yaml (1 thread each): with runs_per_gpu 2
    they overlap, with 1 they do not, and each run's evaluation is the same (same seed, same numbers)."""
    import time

    out, walls = {}, {}
    for runs_per_gpu in (1, 2):
        work = tmp_path / f"w{runs_per_gpu}"
        t0 = time.time()
        res = snakemake(
            fake_gpus(tmp_path, 1),
            work,
            _packed_config(tmp_path, "one_gpu.yaml", runs_per_gpu),
            "results/table.csv",
            "--cores",
            "2",
        )
        walls[runs_per_gpu] = time.time() - t0
        assert res.returncode == 0, res.stderr[-3000:]
        assert most_at_once(training_spans(work)) == runs_per_gpu
        out[runs_per_gpu] = {
            p.parent.parent.name: json.loads(p.read_text())
            for p in (work / "results" / "vision" / "digits").glob("*/seed0/eval.json")
        }
    print(f"wall time, one stand-in GPU, 2 runs: {walls[1]:.0f} s one per GPU, {walls[2]:.0f} s two per GPU")
    assert sorted(out[1]) == sorted(out[2]) == ["dropout-L6-sg", "none"]
    for run, metrics in out[1].items():
        for key in ("linear_top1", "knn_top1"):
            assert out[2][run][key] == pytest.approx(metrics[key], abs=1e-6), (run, key)
