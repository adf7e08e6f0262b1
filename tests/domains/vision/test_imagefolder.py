"""Image folders: scanning, splits, the packed form (write, read back, damage detection) and one-line errors."""

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepaug.bench.data import make_jpeg_folder
from deepaug.domains.vision.imagefolder import (
    PackedImages,
    image_folder_splits,
    pack_image_folder,
    read_manifest,
    resized_size,
    scan_image_folder,
)
from deepaug.errors import DataUnavailableError, DataValidationError


def _jpeg(h=24, w=32, seed=0, quality=90) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """48 real JPEGs (about 48 x 64, varied sizes) in 4 class folders, plus a hidden file that must be ignored."""
    root = make_jpeg_folder(tmp_path_factory.mktemp("jpegs") / "imgs", 48, 4, height=48, width=64)
    (root / "class_0" / ".DS_Store").write_bytes(b"\0\1junk")
    return root


@pytest.fixture(scope="module")
def pack(folder, tmp_path_factory):
    return pack_image_folder(folder, tmp_path_factory.mktemp("packs") / "p", workers=0, val_fraction=0.25)


def _one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text and len(text) < 600
    return text


def test_scan_sorts_classes_and_files_like_imagefolder(folder):
    from torchvision.datasets import ImageFolder

    samples, classes = scan_image_folder(folder)
    ref = ImageFolder(str(folder))
    assert classes == ref.classes == ["class_0", "class_1", "class_2", "class_3"]
    assert [(str(p), y) for p, y in samples] == ref.samples  # .DS_Store ignored, same order and labels


def test_pack_round_trip(folder, pack):
    manifest = read_manifest(pack)
    splits = manifest["splits"]
    assert sum(s["count"] for s in splits.values()) == 48
    assert splits["test"]["counts_per_class"] == [3, 3, 3, 3]  # a stratified quarter of 12 per class
    assert manifest["skipped_corrupt"]["count"] == 0 and manifest["classes"] == [f"class_{k}" for k in range(4)]
    train = PackedImages(pack, "train")
    train.verify()
    assert (
        len(train) == splits["train"]["count"]
        and np.bincount(train.labels).tolist() == splits["train"]["counts_per_class"]
    )
    for i in range(len(train)):
        img = train.decode(i)
        assert img.dtype == np.uint8 and img.shape == (*train.sizes[i], 3)
        src = np.asarray(Image.open(folder / train.source(i)).convert("RGB"), dtype=np.float64)
        assert img.shape == src.shape and np.abs(img - src).mean() < 4  # re-encoded at quality 90, not resized
        assert f"class_{train.labels[i]}" == Path(train.source(i)).parent.name


def test_mean_std_are_the_train_pixels(folder, pack):
    train = PackedImages(pack, "train")
    pixels = (
        np.concatenate(
            [np.asarray(Image.open(folder / train.source(i)).convert("RGB")).reshape(-1, 3) for i in range(len(train))]
        )
        / 255.0
    )
    np.testing.assert_allclose(train.mean, pixels.mean(0), atol=1e-5)
    np.testing.assert_allclose(train.std, pixels.std(0), atol=1e-5)


def test_seeded_split_is_deterministic_and_stratified(folder):
    a = image_folder_splits(folder, val_fraction=0.25, seed=1)
    b = image_folder_splits(folder, val_fraction=0.25, seed=1)
    c = image_folder_splits(folder, val_fraction=0.25, seed=2)
    assert a.test == b.test and a.train == b.train and a.dev == b.dev
    assert a.test != c.test
    assert np.bincount([y for _, y in a.test]).tolist() == [3, 3, 3, 3]
    assert not set(a.test) & set(a.train) and not set(a.dev) & set(a.train) and not set(a.dev) & set(a.test)
    assert len(a.train) + len(a.dev) + len(a.test) == 48
    rows = sorted(set(range(len(a.train) + len(a.dev))) - set(a.dev_index.tolist()))
    assert len(rows) == len(a.train)  # dev_index: the dev rows of train + dev


def test_train_and_val_folders_are_the_split(tmp_path):
    for split, n in (("train", 6), ("val", 2)):
        make_jpeg_folder(tmp_path / split, 2 * n, 2, height=20, width=24, seed=n)
    (tmp_path / "README.txt").write_text("not part of the data")  # a loose non-image file at the root is ignored
    s = image_folder_splits(tmp_path, dev_fraction=0.25)
    assert [Path(p).parts[-3] for p, _ in s.test] == ["val"] * 4
    assert all(Path(p).parts[-3] == "train" for p, _ in s.train + s.dev)
    assert len(s.train) + len(s.dev) == 12 and len(s.dev) == 3
    assert s.rule["test"] == "the val/ folder"


def test_train_folder_without_val_is_refused(tmp_path):
    make_jpeg_folder(tmp_path / "train", 4, 2, height=20, width=24)
    with pytest.raises(DataValidationError) as exc:
        image_folder_splits(tmp_path)
    assert "no val/" in _one_line(exc) and str(tmp_path / "train") in str(exc.value)
    assert len(image_folder_splits(tmp_path / "train", val_fraction=0.5).test) == 2


def test_resize_rule_caps_the_shorter_side(folder, tmp_path):
    assert resized_size(300, 500, 256) == (256, 426)  # torchvision's Resize(256): int(256 * 500 / 300)
    assert resized_size(500, 300, 256) == (426, 256)
    assert resized_size(200, 900, 256) == (200, 900)  # never enlarged
    p = pack_image_folder(folder, tmp_path / "small", workers=0, max_short_side=20)
    train = PackedImages(p, "train")
    assert (train.sizes.min(axis=1) == 20).all()
    for i in range(4):
        assert tuple(train.sizes[i]) == resized_size(*train.original_sizes[i], 20)
        assert train.decode(i).shape[:2] == tuple(train.sizes[i])
    assert read_manifest(p)["resize"]["max_short_side"] == 20


def test_parallel_pack_writes_the_same_bytes(folder, pack, tmp_path):
    p = pack_image_folder(folder, tmp_path / "par", workers=2, val_fraction=0.25)
    for split in ("train", "dev", "test"):
        assert (p / f"{split}.bin").read_bytes() == (pack / f"{split}.bin").read_bytes()
        assert read_manifest(p)["splits"][split]["sha256"] == read_manifest(pack)["splits"][split]["sha256"]


# ---- errors: one line, naming the file or folder -----------------------------------------------------------------


def _tree(tmp_path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "data"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_missing_root(tmp_path):
    with pytest.raises(DataUnavailableError) as exc:
        pack_image_folder(tmp_path / "nowhere", tmp_path / "out")
    assert str(tmp_path / "nowhere") in _one_line(exc)


def test_no_class_folders(tmp_path):
    root = _tree(tmp_path, {"a.jpg": _jpeg(), "b.jpg": _jpeg()})
    with pytest.raises(DataValidationError) as exc:
        scan_image_folder(root)
    assert "no class folders" in _one_line(exc) and "2 images lie directly" in str(exc.value)


def test_empty_class_folder(tmp_path):
    root = _tree(tmp_path, {"cat/a.jpg": _jpeg(), "dog/.DS_Store": b"x"})
    with pytest.raises(DataValidationError) as exc:
        scan_image_folder(root)
    assert str(root / "dog") in _one_line(exc) and "holds no images" in str(exc.value)


def test_non_image_file_is_refused_by_name(tmp_path):
    root = _tree(tmp_path, {"cat/a.jpg": _jpeg(), "cat/notes.txt": b"hello", "cat/b.JPEG": _jpeg(seed=1)})
    with pytest.raises(DataValidationError) as exc:
        scan_image_folder(root)
    assert str(root / "cat" / "notes.txt") in _one_line(exc)
    os.remove(root / "cat" / "notes.txt")
    samples, _ = scan_image_folder(root)  # upper-case extensions are images
    assert [p.name for p, _ in samples] == ["a.jpg", "b.JPEG"]


def test_image_outside_class_folders(tmp_path):
    root = _tree(tmp_path, {"cat/a.jpg": _jpeg(), "stray.png": _jpeg()})
    with pytest.raises(DataValidationError) as exc:
        scan_image_folder(root)
    assert str(root / "stray.png") in _one_line(exc)


def _corrupt_tree(tmp_path):
    good = {f"{c}/{k}.jpg": _jpeg(seed=k) for c in ("cat", "dog") for k in range(4)}
    whole = _jpeg(48, 64, seed=9)
    return _tree(
        tmp_path, {**good, "cat/garbage.jpg": b"this is not a jpeg" * 20, "dog/cut.jpg": whole[: len(whole) // 2]}
    )


def test_corrupt_and_truncated_jpegs_are_refused_by_name(tmp_path):
    root = _corrupt_tree(tmp_path)
    out = tmp_path / "pack"
    with pytest.raises(DataValidationError) as exc:
        pack_image_folder(root, out, workers=0)
    text = _one_line(exc)
    assert "garbage.jpg" in text and "cut.jpg" in text and "skip_corrupt" in text
    assert not out.exists() and os.listdir(tmp_path) == ["data"]  # nothing half-written, no temporary folder left


def test_skip_corrupt_records_the_files(tmp_path):
    root = _corrupt_tree(tmp_path)
    p = pack_image_folder(root, tmp_path / "pack", workers=0, skip_corrupt=True, val_fraction=0.25)
    skipped = read_manifest(p)["skipped_corrupt"]
    assert skipped["count"] == 2 and sum("garbage.jpg" in f or "cut.jpg" in f for f in skipped["files"]) == 2
    assert sum(s["count"] for s in read_manifest(p)["splits"].values()) == 8


def test_failed_repack_keeps_the_old_pack(tmp_path, folder):
    out = pack_image_folder(folder, tmp_path / "pack", workers=0)
    before = (out / "manifest.json").read_text()
    with pytest.raises(DataValidationError):
        pack_image_folder(_corrupt_tree(tmp_path), out, workers=0)
    assert (out / "manifest.json").read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["data", "pack"]


def test_damaged_pack_is_detected(tmp_path, folder):
    out = pack_image_folder(folder, tmp_path / "pack", workers=0)
    data = bytearray((out / "train.bin").read_bytes())
    data[100] ^= 0xFF
    (out / "train.bin").write_bytes(bytes(data))
    train = PackedImages(out, "train")
    with pytest.raises(DataValidationError) as exc:
        train.decode(0)
    assert "crc32" in _one_line(exc) and "pack the image folder again" in str(exc.value)
    with pytest.raises(DataValidationError):
        train.verify()
    (out / "train.bin").write_bytes(bytes(data[:-10]))  # a truncated copy
    with pytest.raises(DataValidationError) as exc:
        PackedImages(out, "train")
    assert "bytes" in _one_line(exc)
    (out / "manifest.json").unlink()
    with pytest.raises(DataValidationError) as exc:
        PackedImages(out, "train")
    assert "manifest.json" in _one_line(exc)
    with pytest.raises(DataUnavailableError):
        PackedImages(tmp_path / "missing")


def test_manifest_is_json_with_the_documented_keys(pack):
    manifest = json.loads((pack / "manifest.json").read_text())
    for key in ("classes", "splits", "split_rule", "resize", "mean", "std", "skipped_corrupt"):
        assert key in manifest
    for info in manifest["splits"].values():
        assert {"count", "counts_per_class", "bin", "bytes", "sha256", "index", "index_sha256"} <= set(info)
