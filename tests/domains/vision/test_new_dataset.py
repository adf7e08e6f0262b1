"""A new dataset in one file plus one registration line: a toy image dataset, prepared, trained on,
evaluated, and accepted by the config (with every name a config can use listed when one is wrong).

Everything the toy needs is in this file (an :class:`ImageDataset` whose loader returns the arrays); the
one line that plugs it in is the registration in :func:`registered` (``DATASETS[...] = ...``, here scoped
to the test). The toy's images are coloured squares whose class is the square's position: learnable, and
real uint8 images that go through the same prepare, normalisation, dev hold-out, training and probes as CIFAR.
"""

import json

import numpy as np
import pytest

from deepaug.domains.vision.data import ImageDataset, prepare_image_dataset
from deepaug.domains.vision.datasets import DATASETS, Registered
from deepaug.errors import DataUnavailableError


def _toy_squares(raw_dir, download, n_per_class=40, size=16, n_classes=4):
    """A square of random colour in one of four quadrants (the class) on a noisy background."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, size=(n_classes * n_per_class * 2, size, size, 3), dtype=np.uint8)
    y = np.repeat(np.arange(n_classes), n_per_class * 2)
    half = size // 2
    for i, label in enumerate(y):
        top, left = (label // 2) * half, (label % 2) * half
        x[i, top : top + half, left : left + half] = rng.integers(120, 256, size=3, dtype=np.uint8)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    cut = len(y) // 2
    return {
        "x_train": x[:cut],
        "y_train": y[:cut].astype(np.int64),
        "x_test": x[cut:],
        "y_test": y[cut:].astype(np.int64),
        "classes": np.asarray([f"quadrant{c}" for c in range(n_classes)]),
    }


TOY = ImageDataset("toy_squares", "coloured squares in four quadrants (a test's toy)", _toy_squares)


@pytest.fixture
def registered(monkeypatch):
    from deepaug.workflow.config import load_schema

    monkeypatch.setitem(DATASETS, "toy_squares", Registered(f"{__name__}:TOY"))  # the one registration line
    load_schema.cache_clear()
    yield
    monkeypatch.undo()
    load_schema.cache_clear()


def test_a_registered_dataset_is_prepared_trained_on_and_evaluated(registered, tmp_path):
    from deepaug.domains.vision.evaluate import VisionEvalSettings, evaluate
    from deepaug.domains.vision.train import VisionPretrainSettings, pretrain

    data = prepare_image_dataset("toy_squares", tmp_path / "toy_squares.npz", tmp_path / "raw")
    with np.load(data) as npz:
        assert npz["x_train"].shape[1:] == (16, 16, 3) and len(npz["x_dev"]) > 0  # the dev part is held out
        assert list(npz["classes"]) == [f"quadrant{c}" for c in range(4)]
    s = VisionPretrainSettings(
        width=4, proj_dim=16, batch_size=32, epochs=1, warmup_epochs=0, precision="fp32", device="cpu",
        method="dropout", layer=2, stop_gradient=True, deterministic=True,
    )  # fmt: skip
    pretrain(s, data, tmp_path / "run", tmp_path / "ckpt")
    scores = evaluate(
        VisionEvalSettings(linear_epochs=2, linear_batch_size=32, knn_k=5, device="cpu"),
        tmp_path / "run" / "model.pt",
        data,
        tmp_path / "run" / "eval.json",
    )
    written = json.loads((tmp_path / "run" / "eval.json").read_text())
    for key in ("linear_top1", "knn_top1", "dev_linear_top1"):
        assert 0.0 <= written[key] <= 100.0 and written[key] == scores[key]


def test_the_config_offers_registered_names_and_lists_them_when_one_is_wrong(registered):
    from deepaug.workflow.config import ConfigError, validate_config

    config = {"vision": {"datasets": ["toy_squares"], "sweep": [{"method": "none"}]}, "text": None, "graph": None}
    validate_config(config)  # accepted: the schema's names come from the registry
    with pytest.raises(ConfigError, match=r"vision.datasets\[0\].*'toy_sqares'.*toy_squares"):
        validate_config({**config, "vision": {"datasets": ["toy_sqares"], "sweep": [{"method": "none"}]}})


def test_an_unknown_dataset_is_one_line_naming_the_known_ones(tmp_path):
    with pytest.raises(DataUnavailableError, match=r"unknown image dataset 'toy_squares'; known: cifar10, cifar100"):
        prepare_image_dataset("toy_squares", tmp_path / "x.npz", tmp_path / "raw")
