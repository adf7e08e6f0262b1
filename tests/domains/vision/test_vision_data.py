import hashlib
import pickle
import tarfile

import numpy as np
import pytest
from torchvision import datasets

from deepaug.domains.vision.data import (
    DataUnavailableError,
    DataValidationError,
    load_prepared,
    prepare_image_dataset,
    stratified_dev_index,
    training_set_with_dev,
)


def test_digits_prepared_form(digits_npz):
    d = load_prepared(digits_npz)
    assert d["x_train"].dtype == np.uint8 and d["x_train"].shape[1:] == (16, 16, 3)
    assert d["x_dev"].dtype == np.uint8 and d["x_dev"].shape[1:] == (16, 16, 3)
    assert len(d["x_train"]) + len(d["x_dev"]) + len(d["x_test"]) == 1797
    assert set(np.unique(d["y_test"])) == set(range(10))
    # stratified: every class keeps its share in the test split
    counts = np.bincount(d["y_test"], minlength=10)
    assert counts.min() >= 40
    assert d["mean"].shape == (3,) and np.all(d["std"] > 0)


def _write_cifar_fixture(root, monkeypatch, digits):
    """Real images (the digits) written in CIFAR-10's pickle layout and tar archive, with the
    torchvision class's md5 table pointed at this fixture's checksums (the check itself stays on)."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    x = np.zeros((60, 32, 32, 3), dtype=np.uint8)
    x[:, :16, :16] = digits["x_train"][:60]
    labels = [int(v) for v in digits["y_train"][:60]]
    flat = x.transpose(0, 3, 1, 2).reshape(60, -1)
    files = {}
    for name, sl in [("data_batch_1", slice(0, 50)), ("test_batch", slice(50, 60))]:
        with open(base / name, "wb") as fh:
            pickle.dump({"data": flat[sl], "labels": labels[sl]}, fh)
        files[name] = hashlib.md5((base / name).read_bytes()).hexdigest()
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, fh)
    meta_md5 = hashlib.md5((base / "batches.meta").read_bytes()).hexdigest()
    with tarfile.open(root / datasets.CIFAR10.filename, "w:gz") as tar:
        tar.add(base, arcname="cifar-10-batches-py")
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [["data_batch_1", files["data_batch_1"]]])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", files["test_batch"]]])
    monkeypatch.setattr(datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": meta_md5})
    monkeypatch.setattr(
        datasets.CIFAR10, "tgz_md5", hashlib.md5((root / datasets.CIFAR10.filename).read_bytes()).hexdigest()
    )
    return x, labels


def test_cifar_through_torchvision_with_checksums(tmp_path, monkeypatch, digits_npz):
    x, labels = _write_cifar_fixture(tmp_path / "raw", monkeypatch, load_prepared(digits_npz))
    out = prepare_image_dataset("cifar10", tmp_path / "cifar10.npz", tmp_path / "raw", download=True)
    d = load_prepared(out)
    assert np.array_equal(d["x_test"], x[50:])
    # 10% of the 50 training images held out as dev; together they are torchvision's training set
    assert len(d["x_dev"]) == 5 and len(d["x_train"]) == 45
    x_all, y_all = training_set_with_dev(d)
    assert np.array_equal(x_all, x[:50]) and y_all.tolist() == labels[:50]
    assert np.array_equal(d["x_dev"], x[:50][d["dev_index"]])
    # a corrupted batch fails the md5 check with a message naming the dataset
    (tmp_path / "raw" / "cifar-10-batches-py" / "test_batch").write_bytes(b"corrupt")
    with pytest.raises(DataUnavailableError, match="cifar10"):
        prepare_image_dataset("cifar10", tmp_path / "again.npz", tmp_path / "raw", download=False)


def test_missing_dataset_offline_says_what_to_do(tmp_path):
    with pytest.raises(DataUnavailableError, match=r"cifar100.*cifar-100-python.tar.gz"):
        prepare_image_dataset("cifar100", tmp_path / "c.npz", tmp_path / "raw", download=False)
    with pytest.raises(DataUnavailableError, match="unknown image dataset 'svhn'"):
        prepare_image_dataset("svhn", tmp_path / "s.npz", tmp_path / "raw")
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_prepared(tmp_path / "nothing.npz")


def test_dev_split_is_stratified_recorded_and_disjoint(digits_npz):
    from deepaug.domains.vision.data import DEV_SEED, _digits

    d = load_prepared(digits_npz)
    original = _digits("digits", None, False)  # the train/test split before the dev split is held out
    n_train = len(original["y_train"])
    assert len(d["dev_index"]) == len(d["x_dev"]) == round(0.1 * n_train) == 135
    assert int(d["dev_seed"]) == DEV_SEED
    # the recorded rows are the dev images; the rest of train is x_train; nothing is lost or shared
    assert np.array_equal(d["x_dev"], original["x_train"][d["dev_index"]])
    rest = np.setdiff1d(np.arange(n_train), d["dev_index"])
    assert np.array_equal(d["x_train"], original["x_train"][rest]) and np.array_equal(d["x_test"], original["x_test"])
    x_all, y_all = training_set_with_dev(d)
    assert np.array_equal(x_all, original["x_train"]) and np.array_equal(y_all, original["y_train"])
    # stratified: every class's dev count is its share of 135, to within one image
    share = np.bincount(original["y_train"], minlength=10) * 135 / n_train
    assert np.abs(np.bincount(d["y_dev"], minlength=10) - share).max() < 1


def test_cifar_sized_dev_split_is_5000_stratified_and_reproducible():
    labels10 = np.repeat(np.arange(10), 5000)
    rng = np.random.default_rng(1)
    rng.shuffle(labels10)
    idx = stratified_dev_index(labels10, 5000)
    assert len(idx) == 5000 == len(np.unique(idx)) and np.all(np.diff(idx) > 0)
    assert np.bincount(labels10[idx]).tolist() == [500] * 10
    assert np.array_equal(idx, stratified_dev_index(labels10, 5000))  # fixed seed: the same split every time
    assert not np.array_equal(idx, stratified_dev_index(labels10, 5000, seed=1))
    labels100 = np.repeat(np.arange(100), 500)
    assert np.bincount(labels100[stratified_dev_index(labels100, 5000)]).tolist() == [50] * 100
    # unequal classes: the shares add up to exactly n_dev (largest remainder)
    uneven = np.array([0] * 7 + [1] * 2 + [2] * 1)
    assert len(stratified_dev_index(uneven, 3)) == 3


def _save(path, data):
    with open(path, "wb") as fh:
        np.savez(fh, **data)
    return path


def test_prepared_file_without_dev_split_says_rerun_the_data_rule(tmp_path, digits_npz):
    d = load_prepared(digits_npz)
    old = _save(
        tmp_path / "old.npz", {k: v for k, v in d.items() if k not in ("x_dev", "y_dev", "dev_index", "dev_seed")}
    )
    with pytest.raises(DataValidationError, match="no held-out dev split") as exc:
        load_prepared(old)
    assert str(old) in str(exc.value) and "re-run the data rule" in str(exc.value)
    dup = _save(tmp_path / "dup.npz", dict(d, dev_index=np.zeros_like(d["dev_index"])))
    with pytest.raises(DataValidationError, match="dev_index must hold 135 distinct"):
        load_prepared(dup)
    short = _save(tmp_path / "short.npz", dict(d, y_dev=d["y_dev"][:-1]))
    with pytest.raises(DataValidationError, match="y_dev has"):
        load_prepared(short)
