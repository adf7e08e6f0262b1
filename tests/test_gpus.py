"""One device per concurrent job (locks), and the workflow's GPU cap, without a GPU."""

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from deepaug.gpus import claim_gpu, release_all, visible_gpu_ids

ROOT = Path(__file__).resolve().parents[1]

CLAIM = textwrap.dedent("""
    import sys, time
    from deepaug.gpus import claim_gpu
    i = claim_gpu(["0", "1"], sys.argv[1], poll_s=0.05, log=lambda m: print(m, flush=True))
    print("claimed", i, flush=True)
    time.sleep(float(sys.argv[2]))
""")


def test_concurrent_jobs_claim_different_devices_and_a_third_waits(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path), "2.0"], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
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


@pytest.mark.slow
def test_workflow_runs_no_more_trainings_than_gpus(tmp_path):
    """A machine reporting one GPU (a stand-in nvidia-smi; the jobs train on the CPU): the two
    trainings of this grid never overlap, although two cores would allow it."""
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    (fakebin / "nvidia-smi").write_text('#!/bin/sh\necho "GPU 0: Stand-in GPU (UUID: GPU-0)"\n')
    (fakebin / "nvidia-smi").chmod(0o755)
    cfg = tmp_path / "one_gpu.yaml"
    cfg.write_text(textwrap.dedent("""
        device: cpu
        vision:
          datasets: [digits]
          methods: [none, dropout]
          layers: [6]
          stop_gradient: [sg]
          seeds: [0]
          train: {epochs: 2, batch_size: 256, num_workers: 0, precision: fp32, warmup_epochs: 0}
          model: {width: 4, proj_dim: 16}
          eval: {linear_epochs: 2, knn_k: 5}
          resources: {gpu: 1, cpus: 1, mem_mb: 1000, runtime: 5}
        text:
          datasets: []
          model: {name: all-MiniLM-L6-v2, num_layers: 6}
          dev_task: wordsim353
          test_tasks: [wordsim353]
          methods: [none]
          layers: []
          stop_gradient: [sg]
          seeds: [0]
        vision_sup: {datasets: [], methods: [none], layers: [], stop_gradient: [sg], seeds: [0]}
        text_sup: {datasets: [], dev_task: wordsim353, test_tasks: [wordsim353], methods: [none], layers: [],
                   stop_gradient: [sg], seeds: [0]}
        analysis: {in_default_target: false}
    """))
    env = dict(os.environ, PATH=f"{fakebin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    res = subprocess.run([sys.executable, "-m", "snakemake", "results/table.csv", "-s", str(ROOT / "Snakefile"),
                          "-d", str(tmp_path / "w"), "--cores", "2", "--configfile", str(cfg)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    spans = []
    for prov in (tmp_path / "w" / "results" / "vision" / "digits").rglob("provenance.json"):
        p = json.loads(prov.read_text())
        spans.append((datetime.fromisoformat(p["started_at"]), datetime.fromisoformat(p["finished_at"])))
    assert len(spans) == 2
    (a0, a1), (b0, b1) = sorted(spans)
    assert a1 <= b0, f"trainings overlapped on a one-GPU machine: {spans}"
