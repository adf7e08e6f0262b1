"""Image datasets, prepared once into one fast on-disk form.

Every dataset becomes an uncompressed ``.npz`` with ``x_train``/``x_test`` (uint8, N x H x W x 3),
``y_train``/``y_test`` (int64), ``classes`` and the per-channel ``mean``/``std`` of the training
images (in [0, 1]). CIFAR-10/100 come from torchvision (archive md5 checked); the offline demo set is
scikit-learn's handwritten digits, which ship inside the library.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .io import atomic_path


from .errors import DataUnavailableError, DataValidationError  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class ImageDataset:
    name: str
    description: str
    loader: Callable[..., dict]


def _cifar(name: str, raw_dir: Path, download: bool) -> dict:
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    try:
        train = cls(root=str(raw_dir), train=True, download=download)
        test = cls(root=str(raw_dir), train=False, download=False)
    except Exception as exc:  # URLError, RuntimeError("Dataset not found or corrupted"), ...
        raise DataUnavailableError(
            f"could not obtain dataset {name!r} into {raw_dir}: {exc}. Either run on a machine "
            f"with internet access (torchvision downloads and md5-checks {cls.filename}), or put "
            f"{cls.filename} (from {cls.url}) into {raw_dir} yourself."
        ) from exc
    return {
        "x_train": np.asarray(train.data, dtype=np.uint8),
        "y_train": np.asarray(train.targets, dtype=np.int64),
        "x_test": np.asarray(test.data, dtype=np.uint8),
        "y_test": np.asarray(test.targets, dtype=np.int64),
        "classes": np.asarray(train.classes),
    }


def _digits(name: str, raw_dir: Path, download: bool, size: int = 16, test_fraction: float = 0.25) -> dict:
    """scikit-learn's 1,797 handwritten 8x8 digits, upsampled to ``size`` and made 3-channel."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8).repeat(1, 3, 1, 1)
    x = images.permute(0, 2, 3, 1).numpy()
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=0, stratify=y)
    return {
        "x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te,
        "classes": np.asarray([str(c) for c in digits.target_names]),
    }


DATASETS: dict[str, ImageDataset] = {
    "cifar10": ImageDataset("cifar10", "CIFAR-10 (torchvision)", lambda r, d: _cifar("cifar10", r, d)),
    "cifar100": ImageDataset("cifar100", "CIFAR-100 (torchvision)", lambda r, d: _cifar("cifar100", r, d)),
    "digits": ImageDataset("digits", "scikit-learn handwritten digits, 16x16", lambda r, d: _digits("digits", r, d)),
}

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes", "mean", "std")


def prepare_image_dataset(name: str, out: str | Path, raw_dir: str | Path = "data/raw", download: bool = True) -> Path:
    """Fetch ``name`` and write it in the prepared form to ``out`` (atomically)."""
    if name not in DATASETS:
        raise DataUnavailableError(f"unknown image dataset {name!r}; known: {', '.join(DATASETS)}")
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    arrays = DATASETS[name].loader(raw_dir, download)
    pixels = arrays["x_train"].reshape(-1, arrays["x_train"].shape[-1]).astype(np.float64) / 255.0
    arrays["mean"] = pixels.mean(axis=0).astype(np.float32)
    arrays["std"] = pixels.std(axis=0).astype(np.float32)
    out = Path(out)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return out


def load_prepared(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise DataUnavailableError(
            f"prepared dataset {path} does not exist: run the workflow's data rule "
            f"(snakemake {path}) or `deepaug prepare-data`"
        )
    fix = f"delete it and re-run the data rule (snakemake {path})"
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zero bytes, truncated zip, not an npz
        raise DataValidationError(f"{path} cannot be read as a prepared dataset ({type(exc).__name__}: {exc}); "
                                  f"{fix}") from None
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise DataValidationError(f"{path} is not a prepared dataset (missing {missing}); {fix}")
    validate_prepared(data, path, fix)
    return data


def validate_prepared(data: dict, path, fix: str) -> None:
    """Shapes and types of a prepared dataset: uint8 N x H x W x 3 images (channels last), one integer
    label per image in 0..classes-1, a mean/std per channel."""
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataValidationError(f"{path}: x_{split} has dtype {x.dtype}; images must be uint8 (0-255); {fix}")
        if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[1] != x.shape[2]:
            hint = " (channels first? they must be last: N x H x W x C)" if x.ndim == 4 and x.shape[1] in (1, 3) else ""
            raise DataValidationError(f"{path}: x_{split} has shape {x.shape}; expected N x H x W x C with C 1 or 3"
                                      f"{hint}; {fix}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataValidationError(f"{path}: y_{split} has {y.shape} labels for {len(x)} images; {fix}")
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() >= len(data["classes"]))):
            raise DataValidationError(f"{path}: y_{split} must hold integer labels 0-{len(data['classes']) - 1}; {fix}")
        if len(x) == 0:
            raise DataValidationError(f"{path}: x_{split} is empty; {fix}")
    channels = data["x_train"].shape[-1]
    if data["mean"].shape != (channels,) or data["std"].shape != (channels,):
        raise DataValidationError(f"{path}: mean/std must have one value per channel ({channels}); {fix}")
