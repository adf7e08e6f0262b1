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
