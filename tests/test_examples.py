"""The three examples of docs/library.md run as scripts (tiny models, offline, a few steps each)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), "--device", "cpu", "--steps", "2", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "ranked layers:" in out and "done:" in out, out
    losses = [float(x) for x in re.findall(r"^step \d+ loss (\S+)", out, re.M)]
    assert len(losses) == 2, out
    return out


def test_resnet_example():
    out = run_example("resnet_torchvision.py", "--layer", "layer2", "--batch-size", "8", "--size", "32")
    ranked = re.findall(r"^\s+\d+\s+\d+\s+(layer\d)\s", out, re.M)
    assert sorted(ranked) == ["layer1", "layer2", "layer3", "layer4"]
    assert "features (8, 512)" in out


def test_hugging_face_example(tiny_model_dir):
    out = run_example("hf_encoder.py", "--model", str(tiny_model_dir), "--block", "1")
    assert sorted(re.findall(r"(encoder\.layer\.\d)\s", out)) == ["encoder.layer.0", "encoder.layer.1"]
    assert "block 1" in out


def test_pyg_example():
    pytest.importorskip("torch_geometric")
    out = run_example("pyg_gin.py", "--graphs", "12")
    assert sorted(re.findall(r"(convs\.\d)\s", out)) == ["convs.0", "convs.1", "convs.2"]
    assert "graph embeddings (12, 32)" in out
    assert re.search(r"graphs transformed: \d+ of 24", out)


def test_a_bad_layer_name_is_a_clear_error():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "resnet_torchvision.py"), "--device", "cpu", "--layer", "layer9"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert r.returncode != 0 and "layer9" in r.stderr
