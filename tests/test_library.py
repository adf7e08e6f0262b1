"""The library without the pipeline: the wheel's core requirements are torch and numpy, and the op, CKA,
alignment/uniformity and the layer ranking import and run with every extra's package blocked."""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the extras' top-level modules: importing any of them from the library is a failure
BLOCKED = [
    "pandas",
    "scipy",
    "sklearn",
    "matplotlib",
    "seaborn",
    "transformers",
    "torchvision",
    "torch_geometric",
    "snakemake",
    "yaml",
    "jsonschema",
    "tqdm",
    "simplejpeg",
    "datasets",
    "sentence_transformers",
]

# A blocked package behaves as one that is not installed: importing it raises ModuleNotFoundError (from its
# loader, so that importlib.util.find_spec probes, which torch makes for optional modules, still answer).
BLOCKER = f"""
import importlib.abc, importlib.machinery, sys
BLOCKED = {BLOCKED!r}
class Loader(importlib.abc.Loader):
    def create_module(self, spec):
        message = f"No module named {{spec.name!r}} (blocked: the library must not need it)"
        raise ModuleNotFoundError(message, name=spec.name)
    def exec_module(self, module):
        pass
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, Loader())
        return None
sys.meta_path.insert(0, Block())
for name in list(sys.modules):  # nothing imported before the finder may leak through
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
"""


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"},
    )


def test_the_blocker_blocks():
    # the test itself: an import of a blocked package fails in the subprocess
    r = run_blocked("import pandas")
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr and "blocked" in r.stderr


def test_op_cka_and_layer_ranking_without_the_extras():
    code = """
import torch
from torch import nn
import deepaug
from deepaug import DeepAugment, rank_layers, linear_cka, alignment, uniformity, AugmentAtLayers, nt_xent
from deepaug.analysis.similarity import cka_matrix
from deepaug.analysis.layer_choice import recommend_layer

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
aug = DeepAugment(kind="dropout", rate=0.5, p=1.0, stop_gradient=True, seed=0)
handle = aug.attach(model[2])
x = torch.randn(32, 8, requires_grad=True)
out = model(x)
out.sum().backward()
assert x.grad is not None and float(x.grad.abs().sum()) == 0.0  # every row transformed and detached at layer 2
handle.remove()
pca = DeepAugment(kind="pca", p=1.0, seed=0)
h = pca.attach(model[2]); model(torch.randn(32, 8)); h.remove()
loss = nt_xent(torch.randn(16, 4), temperature=0.5)
a, b = torch.randn(50, 6), torch.randn(50, 6)
assert abs(linear_cka(a, a) - 1) < 1e-6 and cka_matrix([a, b]).shape == (2, 2)
assert alignment(a, a) < 1e-12 and uniformity(a) < 0
ranking = rank_layers(model, [(torch.randn(32, 8), None) for _ in range(3)], ["0", "2", "4"], n_samples=64)
assert ranking.n_samples == 64 and [s.rank for s in ranking.ranked] == [1, 2, 3]
assert ranking.best.index == recommend_layer(ranking.matrix, [0, 1, 2])
blocked = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
assert not blocked, blocked
print("library ok", ranking.best.name)
"""
    r = run_blocked(code)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "library ok" in r.stdout


def test_a_pipeline_command_without_its_extra_says_which_to_install():
    r = run_blocked("from deepaug.cli import main; sys.exit(main(['check-config', 'config.yaml']))")
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "pip install 'deepaug[pipeline]'" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel, built offline from a copy of the sources (so no build/ lands in the checkout) with the
    venv's setuptools (no isolated build environment: nothing is downloaded)."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src_copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path / "wheel"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = out.glob("deepaug-*.whl")
    return wheel


def test_wheel_core_requirements_are_torch_and_numpy(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode())
    requires = meta.get_all("Requires-Dist")
    core = sorted(
        r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip() for r in requires if "extra ==" not in r
    )
    assert core == ["numpy", "torch"], core
    extras = set(meta.get_all("Provides-Extra"))
    assert {"pipeline", "text", "workflow", "graph", "demo"} <= extras
    in_extras = {r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip() for r in requires if "extra ==" in r}
    assert {"pandas", "scipy", "scikit-learn", "matplotlib", "seaborn", "torchvision"} <= in_extras
    assert meta["License-Expression"] == "MIT"
    assert "deepaug/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    # the package data the pipeline reads
    assert {"deepaug/config.schema.yaml", "deepaug/analysis/published.yaml"} <= set(names)
