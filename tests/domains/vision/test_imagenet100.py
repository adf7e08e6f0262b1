"""ImageNet-100: the class list, the check of a user's ImageNet copy (fake synset tree of real JPEGs), packing."""

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from deepaug.domains.vision.imagefolder import PackedImages, read_manifest
from deepaug.domains.vision.imagenet100 import check_imagenet100, imagenet100_classes, prepare_imagenet100
from deepaug.errors import DataUnavailableError, DataValidationError

SMALL = {"val_per_class": 1, "train_per_class": (2, 3)}  # the real check wants 50 and 732-1300


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def imagenet(tmp_path):
    """train/<synset>/ (3 images) and val/<synset>/ (1 image) for the 100 synsets, plus one other synset."""
    root = tmp_path / "imagenet"
    data = [_jpeg(k) for k in range(4)]
    for k, synset in enumerate((*imagenet100_classes(), "n09999999")):
        for split, n in (("train", 3), ("val", 1)):
            folder = root / split / synset
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{synset}_{i}.JPEG").write_bytes(data[(k + i) % 4])
    return root


def _one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_class_list_is_cmcs():
    classes = imagenet100_classes()
    assert len(classes) == len(set(classes)) == 100
    assert classes[:3] == ("n02869837", "n01749939", "n02488291") and classes[-1] == "n02090622"
    assert all(c.startswith("n") and len(c) == 9 for c in classes)


def test_check_counts_a_complete_copy(imagenet):
    counts = check_imagenet100(imagenet, **SMALL)
    assert set(counts["train"]) == set(imagenet100_classes()) and set(counts["train"].values()) == {3}
    assert set(counts["val"].values()) == {1}


def test_missing_synsets_are_named(imagenet):
    gone = imagenet100_classes()[5:7]
    for synset in gone:
        shutil.rmtree(imagenet / "train" / synset)
    with pytest.raises(DataValidationError) as exc:
        check_imagenet100(imagenet, **SMALL)
    text = _one_line(exc)
    assert "lacks 2 of the 100" in text and all(s in text for s in gone) and "image-net.org" in text


def test_short_counts_are_named(imagenet):
    synset = imagenet100_classes()[10]
    for f in sorted((imagenet / "train" / synset).iterdir())[1:]:
        f.unlink()
    with pytest.raises(DataValidationError) as exc:
        check_imagenet100(imagenet, **SMALL)
    assert f"train/{synset} has 1" in _one_line(exc)
    with pytest.raises(DataValidationError) as exc:
        check_imagenet100(imagenet)  # the real expectations: 50 val images per synset, 732-1300 train
    assert "100" in _one_line(exc) and "val/" in str(exc.value) and "50 per val folder" in str(exc.value)


def test_flat_val_folder_is_explained(imagenet):
    shutil.rmtree(imagenet / "val")
    (imagenet / "val").mkdir()
    for i in range(3):
        (imagenet / "val" / f"ILSVRC2012_val_{i:08d}.JPEG").write_bytes(_jpeg(i))
    with pytest.raises(DataValidationError) as exc:
        check_imagenet100(imagenet, **SMALL)
    text = _one_line(exc)
    assert "flat layout" in text and "torchvision.datasets.ImageNet" in text and "ILSVRC2012_devkit_t12" in text


def test_missing_copy_says_it_is_never_downloaded(tmp_path):
    with pytest.raises(DataUnavailableError) as exc:
        check_imagenet100(tmp_path / "nowhere")
    assert "never downloads" in _one_line(exc) and "image-net.org" in str(exc.value)
    (tmp_path / "only_train" / "train").mkdir(parents=True)
    with pytest.raises(DataUnavailableError) as exc:
        check_imagenet100(tmp_path / "only_train")
    assert "val" in _one_line(exc)


def test_prepare_packs_the_100_classes(imagenet, tmp_path):
    check_imagenet100(imagenet, **SMALL)
    out = prepare_imagenet100(imagenet, tmp_path / "in100", check=False, workers=0)
    manifest = read_manifest(out)
    assert manifest["classes"] == sorted(imagenet100_classes()) and manifest["name"] == "imagenet100"
    assert manifest["splits"]["test"]["counts_per_class"] == [1] * 100  # val/ is the test split
    assert manifest["splits"]["train"]["count"] + manifest["splits"]["dev"]["count"] == 300  # n09999999 left out
    test = PackedImages(out, "test")
    assert test.decode(0).shape == (12, 16, 3) and test.source(0).startswith("val/")
