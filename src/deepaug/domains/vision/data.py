"""Image datasets, prepared once into one fast on-disk form.

Every dataset becomes an uncompressed ``.npz`` with ``x_train``/``x_dev``/``x_test`` (uint8,
N x H x W x 3), ``y_train``/``y_dev``/``y_test`` (int64), ``classes`` and the per-channel
``mean``/``std`` of the training images (in [0, 1]). CIFAR-10/100 come from torchvision (archive md5
checked); the offline demo set is scikit-learn's handwritten digits, which ship inside the library.

The dev split is held out of the dataset's training set once, here: a stratified 10% (5,000 of
CIFAR's 50,000 images; 135 of the digits' 1,347), drawn with ``DEV_SEED``. ``dev_index`` records which
rows of the original training set it holds and ``dev_seed`` the seed. Every choice (the probe's epoch,
the best setting, the claims) is made on dev; test is only reported. ``x_train`` is the rest: the
pre-training images and the linear probe's training set. The dev images are therefore seen by no
model, contrastive or supervised: the supervised counterpart trains with labels (its dev score would
otherwise be a training score), and an unseen dev ranks settings the way the unseen test set does.
The cost is a deviation from SupContrast/SimCLR, which pre-train on all 50,000 CIFAR images:
:func:`training_set_with_dev` gives that full set back in its original order for whoever wants it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepaug.errors import DataUnavailableError, DataValidationError
from deepaug.io import atomic_path


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
        "x_train": x_tr,
        "y_train": y_tr,
        "x_test": x_te,
        "y_test": y_te,
        "classes": np.asarray([str(c) for c in digits.target_names]),
    }


# Registered by name in deepaug.domains.vision.datasets (one line each).
CIFAR10 = ImageDataset("cifar10", "CIFAR-10 (torchvision)", lambda r, d: _cifar("cifar10", r, d))
CIFAR100 = ImageDataset("cifar100", "CIFAR-100 (torchvision)", lambda r, d: _cifar("cifar100", r, d))
DIGITS = ImageDataset("digits", "scikit-learn handwritten digits, 16x16", lambda r, d: _digits("digits", r, d))

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes", "mean", "std")
DEV_KEYS = ("x_dev", "y_dev", "dev_index", "dev_seed")
DEV_FRACTION = 0.1  # of the training set: 5,000 of CIFAR-10/100's 50,000 images
DEV_SEED = 0


def stratified_dev_index(labels: np.ndarray, n_dev: int, seed: int = DEV_SEED) -> np.ndarray:
    """Sorted row indices of a stratified sample of ``n_dev`` labels: each class gets its share of
    ``n_dev`` (largest remainder, so the shares add up exactly; 500 per class for CIFAR-10), drawn
    with a fixed seed, and keeps at least one image outside the sample."""
    labels = np.asarray(labels)
    if not 0 < n_dev < len(labels):
        raise ValueError(f"a dev split needs 1 to {len(labels) - 1} of {len(labels)} images, got {n_dev}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_dev / len(labels)
    quota = np.floor(exact).astype(np.int64)
    by_remainder = np.argsort(-(exact - quota), kind="stable")
    quota[by_remainder[: n_dev - int(quota.sum())]] += 1
    quota = np.minimum(quota, counts - 1)
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def hold_out_dev(arrays: dict, fraction: float = DEV_FRACTION, seed: int = DEV_SEED) -> dict:
    """Move a stratified ``fraction`` of the training images into ``x_dev``/``y_dev``, recording the
    rows (``dev_index``, into the original training set) and the seed."""
    n_train = len(arrays["y_train"])
    dev_index = stratified_dev_index(arrays["y_train"], max(1, round(fraction * n_train)), seed)
    rest = np.setdiff1d(np.arange(n_train), dev_index)
    x, y = arrays["x_train"], arrays["y_train"]
    return dict(
        arrays,
        x_train=x[rest],
        y_train=y[rest],
        x_dev=x[dev_index],
        y_dev=y[dev_index],
        dev_index=dev_index,
        dev_seed=np.int64(seed),
    )


def training_set_with_dev(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's whole training set (``x_train`` and ``x_dev`` together) in its original order,
    for pre-training on every training image as SupContrast does (its dev score is then a score on
    images the encoder has seen)."""
    n = len(data["x_train"]) + len(data["x_dev"])
    dev_index = data["dev_index"]
    if len(dev_index) and dev_index.max() >= n:
        raise DataValidationError(
            f"dev_index points past the {n} training images (x_train + x_dev); the prepared "
            f"file is inconsistent: re-run the data rule"
        )
    is_dev = np.zeros(n, dtype=bool)
    is_dev[dev_index] = True
    x = np.empty((n, *data["x_train"].shape[1:]), dtype=data["x_train"].dtype)
    y = np.empty(n, dtype=data["y_train"].dtype)
    x[is_dev], y[is_dev] = data["x_dev"], data["y_dev"]
    x[~is_dev], y[~is_dev] = data["x_train"], data["y_train"]
    return x, y


def prepare_image_dataset(name: str, out: str | Path, raw_dir: str | Path = "data/raw", download: bool = True) -> Path:
    """Fetch ``name`` and write it in the prepared form to ``out`` (atomically)."""
    from deepaug.domains.vision.datasets import load_dataset

    dataset = load_dataset(name)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    arrays = hold_out_dev(dataset.loader(raw_dir, download))
    pixels = arrays["x_train"].reshape(-1, arrays["x_train"].shape[-1]).astype(np.float64) / 255.0
    arrays["mean"] = pixels.mean(axis=0).astype(np.float32)
    arrays["std"] = pixels.std(axis=0).astype(np.float32)
    check_normalisation(
        arrays["x_train"],
        arrays["mean"],
        arrays["std"],
        f"dataset {name!r}",
        "check its images (a blank or single-valued channel?)",
    )
    out = Path(out)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return out


def check_normalisation(x_train: np.ndarray, mean, std, source: str, fix: str) -> None:
    """The per-channel mean and std the images are normalised with, ``(x - mean) / std``: finite, std > 0, and
    no channel constant over the training images (checked on the uint8 pixels, exactly: a constant channel's
    float std may come out as 0 or as a rounding residue like 1e-17). Either would make normalised pixels
    inf, NaN or huge and stop training with a NaN loss whose usual advice (a lower learning rate) cannot
    help, so it is refused here, naming the channel."""
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    pixels = x_train.reshape(-1, x_train.shape[-1])
    low, high = pixels.min(axis=0), pixels.max(axis=0)
    bad = np.flatnonzero((low == high) | ~np.isfinite(mean) | ~np.isfinite(std) | ~(std > 0))
    if bad.size:
        c = int(bad[0])
        name = {1: ("gray",), 3: ("red", "green", "blue")}.get(len(std), ())
        channel = f"channel {c}" + (f" ({name[c]})" if c < len(name) else "")
        what = (
            f"is constant (every pixel {int(low[c])}, std 0)"
            if low[c] == high[c]
            else f"has mean {mean[c]:g} and std {std[c]:g}"
        )
        raise DataValidationError(
            f"{source}: {channel} of the training images {what}, and the images are normalised by that std: "
            f"training would stop with a NaN loss (the data is at fault, not the learning rate); {fix}"
        )


def load_prepared(path: str | Path, size: int = 224) -> dict[str, np.ndarray]:
    """A prepared dataset: the arrays of a ``.npz``, or the views of a packed image folder (``size``: the side of
    its evaluation crops; :mod:`deepaug.domains.vision.packed`)."""
    from deepaug.domains.vision.packed import is_pack, load_pack

    path = Path(path)
    if is_pack(path):
        return load_pack(path, size)
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
        raise DataValidationError(
            f"{path} cannot be read as a prepared dataset ({type(exc).__name__}: {exc}); {fix}"
        ) from None
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise DataValidationError(f"{path} is not a prepared dataset (missing {missing}); {fix}")
    validate_prepared(data, path, fix)
    return data


def validate_prepared(data: dict, path, fix: str) -> None:
    """Shapes and types of a prepared dataset: uint8 N x H x W x 3 images (channels last), one integer
    label per image in 0..classes-1, a mean/std per channel, and the held-out dev split (files
    prepared before it existed are refused: choosing on test is what the dev split prevents)."""
    _validate_splits(data, ("train", "test"), path, fix)
    channels = data["x_train"].shape[-1]
    if data["mean"].shape != (channels,) or data["std"].shape != (channels,):
        raise DataValidationError(f"{path}: mean/std must have one value per channel ({channels}); {fix}")
    check_normalisation(data["x_train"], data["mean"], data["std"], f"{path} (dataset {Path(path).stem!r})", fix)
    missing = [k for k in DEV_KEYS if k not in data]
    if missing:
        raise DataValidationError(
            f"{path} has no held-out dev split (missing {missing}): it was prepared by an older deepaug, before "
            f"the dev split that every selection is made on; {fix}"
        )
    _validate_splits(data, ("dev",), path, fix)
    if data["x_dev"].shape[1:] != data["x_train"].shape[1:]:
        raise DataValidationError(
            f"{path}: x_dev images are {data['x_dev'].shape[1:]}, x_train images {data['x_train'].shape[1:]}; {fix}"
        )
    index = data["dev_index"]
    if (
        index.ndim != 1
        or len(index) != len(data["x_dev"])
        or not np.issubdtype(index.dtype, np.integer)
        or (index < 0).any()
        or len(np.unique(index)) != len(index)
    ):
        raise DataValidationError(
            f"{path}: dev_index must hold {len(data['x_dev'])} distinct non-negative row "
            f"numbers (one per dev image); {fix}"
        )


def _validate_splits(data: dict, splits: tuple[str, ...], path, fix: str) -> None:
    for split in splits:
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataValidationError(f"{path}: x_{split} has dtype {x.dtype}; images must be uint8 (0-255); {fix}")
        if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[1] != x.shape[2]:
            hint = " (channels first? they must be last: N x H x W x C)" if x.ndim == 4 and x.shape[1] in (1, 3) else ""
            raise DataValidationError(
                f"{path}: x_{split} has shape {x.shape}; expected N x H x W x C with C 1 or 3{hint}; {fix}"
            )
        if y.ndim != 1 or len(y) != len(x):
            raise DataValidationError(f"{path}: y_{split} has {y.shape} labels for {len(x)} images; {fix}")
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() >= len(data["classes"]))):
            raise DataValidationError(f"{path}: y_{split} must hold integer labels 0-{len(data['classes']) - 1}; {fix}")
        if len(x) == 0:
            raise DataValidationError(f"{path}: x_{split} is empty; {fix}")
