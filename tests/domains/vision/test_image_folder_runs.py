"""Image-folder datasets end to end, offline: a small folder of real JPEGs (generated here) is packed, trained on
through the fast data path (workers' crops, device-side colour, blur), resumed exactly after a crash, evaluated
(linear probe on centre crops, top-1 and top-5, kNN), and planned by the workflow from a config that names it;
ImageNet-100 without its root and mixed recipes are refused in one line."""

import json

import numpy as np
import pytest
import torch
from interrupt import killed_after_checkpoint

from deepaug.domains.vision.imagefolder import pack_image_folder

N_CLASSES, PER_CLASS = 6, 10


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """6 classes of 40 x 48 JPEGs: a bright square in the class's own colour on noise."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images") / "shapes"
    rng = np.random.default_rng(0)
    colours = rng.integers(80, 256, size=(N_CLASSES, 3))
    for c in range(N_CLASSES):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(PER_CLASS):
            x = rng.integers(0, 60, size=(40, 48, 3), dtype=np.uint8)
            top, left = rng.integers(0, 16), rng.integers(0, 20)
            x[top : top + 24, left : left + 28] = colours[c]
            Image.fromarray(x).save(root / f"class{c}" / f"{i}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def pack(folder, tmp_path_factory):
    return pack_image_folder(folder, tmp_path_factory.mktemp("packs") / "shapes", val_fraction=0.2, workers=0)


def _settings(**kw):
    from deepaug.domains.vision.train import VisionPretrainSettings

    base = dict(
        stem="imagenet", width=4, proj_dim=16, proj_hidden_dim=32, batch_size=8, epochs=2, warmup_epochs=0,
        lr=0.3, optimizer="lars", crop_size=32, crop_min_scale=0.08, color_jitter="0.8,0.8,0.8,0.2",
        blur_prob=0.5, num_workers=0, precision="fp32", device="cpu", method="dropout", layer=2,
        stop_gradient=True, deterministic=True, checkpoint_every=1, seed=3,
    )  # fmt: skip
    return VisionPretrainSettings(**{**base, **kw})


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "train_metrics.jsonl").read_text().splitlines()]


def test_a_packed_folder_trains_resumes_exactly_and_is_evaluated(pack, tmp_path, monkeypatch):
    from deepaug.domains.vision.evaluate import VisionEvalSettings, evaluate
    from deepaug.domains.vision.train import pretrain

    manifest = pack / "manifest.json"
    pretrain(_settings(), manifest, tmp_path / "ref", tmp_path / "ref_ckpt")

    with killed_after_checkpoint(monkeypatch):
        pretrain(_settings(), manifest, tmp_path / "run", tmp_path / "ckpt")
    pretrain(_settings(), manifest, tmp_path / "run", tmp_path / "ckpt")
    assert _losses(tmp_path / "run") == _losses(tmp_path / "ref")  # the same crops and draws after the crash
    a = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])
    assert a["input_size"] == 32 and a["meta"]["stem"] == "imagenet"

    scores = evaluate(
        VisionEvalSettings(linear_epochs=3, linear_batch_size=16, knn_k=3, device="cpu"),
        tmp_path / "run" / "model.pt",
        manifest,
        tmp_path / "run" / "eval.json",
    )
    for key in ("linear_top1", "linear_top5", "dev_linear_top1", "knn_top1"):
        assert 0.0 <= scores[key] <= 100.0, key
    assert scores["linear_top5"] >= scores["linear_top1"]


def test_the_supcon_probe_is_refused_for_a_packed_folder(pack, tmp_path):
    from deepaug.domains.vision.evaluate import VisionEvalSettings, evaluate
    from deepaug.domains.vision.train import pretrain

    pretrain(_settings(epochs=1, method="none", layer=None), pack / "manifest.json", tmp_path / "r", tmp_path / "c")
    with pytest.raises(ValueError, match="probe: supcon trains on augmented images held in memory"):
        evaluate(VisionEvalSettings(probe="supcon", device="cpu"), tmp_path / "r" / "model.pt", pack, tmp_path / "e")


def _config(**vision):
    return {"vision": {"sweep": [{"method": "none"}], **vision}, "text": None, "graph": None}


def test_a_config_names_an_image_folder_and_gets_the_imagenet_recipe(folder):
    from deepaug.workflow.config import validate_config
    from deepaug.workflow.jobs import Jobs
    from deepaug.workflow.runs import expand

    config = validate_config(_config(datasets=["shapes"], image_folders={"shapes": str(folder)}))
    assert config["vision"]["train"]["crop_size"] == 224 and config["vision"]["train"]["optimizer"] == "lars"
    (run,) = expand(config)
    jobs = Jobs(config, [run])
    (data,) = jobs.domains["vision"].data_files(config["vision"], [run])
    assert data == "data/vision/shapes/manifest.json"
    prepare = jobs.domains["vision"].prepare_command("shapes/manifest.json", data, config)
    assert "prepare-image-folder" in prepare and str(folder) in prepare
    # a setting written in the section wins over the recipe
    config = validate_config(_config(datasets=["shapes"], image_folders={"shapes": str(folder)}, train={"epochs": 7}))
    assert config["vision"]["train"]["epochs"] == 7 and config["vision"]["train"]["lr"] == 0.3


@pytest.mark.parametrize(
    "vision, message",
    [
        (dict(datasets=["imagenet100"]), r"config key 'data.imagenet_root': imagenet100 is read from your own"),
        (dict(datasets=["shapez"]), r"'vision.datasets\[0\]': 'shapez' is neither a registered dataset"),
        (dict(datasets=["cifar10", "imagenet100"]), r"cifar10 \(cifar\), imagenet100 \(imagenet\) have different"),
    ],
)
def test_bad_image_dataset_configs_are_one_line_each(vision, message):
    from deepaug.errors import ConfigError
    from deepaug.workflow.config import validate_config

    with pytest.raises(ConfigError, match=message):
        validate_config(_config(**vision))


def _has_dali() -> bool:
    from deepaug.domains.vision.dali_loader import dali_available

    return dali_available()


@pytest.mark.parametrize(
    "loader",
    [
        "pack",
        "torchvision",
        pytest.param(
            "dali", marks=pytest.mark.skipif(not _has_dali(), reason="NVIDIA DALI not installed (the dali extra)")
        ),
    ],
)
def test_each_loader_trains_and_repeats_itself(pack, tmp_path, loader):
    """The three loaders of a pack (the fast path, torchvision's per-image transforms, DALI on its CPU backend here)
    each train, with a finite loss, and give the same losses when run again with the same seed."""
    from deepaug.domains.vision.train import pretrain

    s = _settings(epochs=1, loader=loader, method="none", layer=None)
    pretrain(s, pack / "manifest.json", tmp_path / "a", tmp_path / "ca")
    pretrain(s, pack / "manifest.json", tmp_path / "b", tmp_path / "cb")
    losses = _losses(tmp_path / "a")
    assert losses == _losses(tmp_path / "b") and all(np.isfinite(losses))


def test_dali_without_the_package_is_one_line(monkeypatch):
    import deepaug.domains.vision.dali_loader as D
    from deepaug.errors import DataUnavailableError

    monkeypatch.setattr(D, "dali_available", lambda: False)
    with pytest.raises(DataUnavailableError, match=r"train.loader: dali needs NVIDIA DALI: pip install -e '.\[dali\]'"):
        D.require_dali()
