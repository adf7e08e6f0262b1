import hashlib
import pickle
import tarfile

import numpy as np
import pytest
from torchvision import datasets

from deepaug.data import DataUnavailableError, load_prepared, prepare_image_dataset


def test_digits_prepared_form(digits_npz):
    d = load_prepared(digits_npz)
    assert d["x_train"].dtype == np.uint8 and d["x_train"].shape[1:] == (16, 16, 3)
    assert len(d["x_train"]) + len(d["x_test"]) == 1797
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
    monkeypatch.setattr(datasets.CIFAR10, "tgz_md5", hashlib.md5((root / datasets.CIFAR10.filename).read_bytes()).hexdigest())
    return x, labels


def test_cifar_through_torchvision_with_checksums(tmp_path, monkeypatch, digits_npz):
    x, labels = _write_cifar_fixture(tmp_path / "raw", monkeypatch, load_prepared(digits_npz))
    out = prepare_image_dataset("cifar10", tmp_path / "cifar10.npz", tmp_path / "raw", download=True)
    d = load_prepared(out)
    assert np.array_equal(d["x_train"], x[:50]) and np.array_equal(d["x_test"], x[50:])
    assert d["y_train"].tolist() == labels[:50]
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
