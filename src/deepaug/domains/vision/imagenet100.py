"""ImageNet-100 (CMC's 100-class subset of ILSVRC-2012, the one solo-learn and lightly use), read out of the
user's own licensed ImageNet copy and packed once.

ImageNet is never downloaded: it is licensed per user at image-net.org. :func:`check_imagenet100` checks the
copy (``train/<synset>/`` and ``val/<synset>/``, all 100 synsets, the expected counts) and says in one line what
is missing; :func:`prepare_imagenet100` then packs the 100-class view
(:func:`deepaug.domains.vision.imagefolder.pack_splits`): train less dev, dev, and ``val/`` as the test split.

The class list and its sources are in ``imagenet100_classes.txt`` (next to this file). Expected counts, from the
ILSVRC-2012 devkit's readme (``ILSVRC2012_devkit_t12.tar.gz``, readme.txt): 50 validation images per synset, and
between 732 and 1300 training images per synset. Per-synset training counts could not be verified at a primary
source, so the check is that range (a partly extracted ``train/`` fails it), not exact numbers.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from deepaug.domains.vision.imagefolder import (
    IMAGE_EXTENSIONS,
    FolderSplits,
    _hidden,
    _listing,
    image_folder_splits,
    pack_splits,
)
from deepaug.errors import DataUnavailableError, DataValidationError

CLASSES_FILE = Path(__file__).with_name("imagenet100_classes.txt")
VAL_PER_CLASS = 50  # ILSVRC-2012 devkit readme: "There are 50 validation images for each synset."
TRAIN_PER_CLASS = (732, 1300)  # same readme: "The number of images for each synset ranges from 732 to 1300."
LICENSE = "ImageNet-100 is read from your own licensed copy of ILSVRC-2012 (image-net.org; deepaug never downloads it)"


@cache
def imagenet100_classes() -> tuple[str, ...]:
    """The 100 synsets (WordNet IDs) in the source file's order (labels use sorted order)."""
    lines = [line.strip() for line in CLASSES_FILE.read_text().splitlines()]
    classes = tuple(line for line in lines if line and not line.startswith("#"))
    if len(classes) != 100 or len(set(classes)) != 100:  # the shipped file was edited
        raise DataValidationError(f"{CLASSES_FILE} must list 100 distinct synsets, it lists {len(set(classes))}")
    return classes


def _count_images(folder: Path) -> int:
    n = 0
    for _, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        n += sum(1 for f in filenames if not _hidden(f) and f.lower().endswith(IMAGE_EXTENSIONS))
    return n


def check_imagenet100(
    imagenet_root: str | os.PathLike,
    *,
    val_per_class: int | None = VAL_PER_CLASS,
    train_per_class: tuple[int, int] | None = TRAIN_PER_CLASS,
    classes: tuple[str, ...] | None = None,
) -> dict[str, dict[str, int]]:
    """Check that ``imagenet_root`` holds ImageNet-100: ``train/`` and ``val/`` with one folder per synset, all
    100 synsets in both, ``val_per_class`` images in each val folder and a number within ``train_per_class`` in
    each train folder (``None``: not checked; tests pass small numbers and ``classes``). Returns the counts
    ``{"train": {synset: n}, "val": {...}}``.

    Raises :class:`DataUnavailableError` (no root, no ``train/`` or ``val/``) or :class:`DataValidationError`
    (the original flat ``val/`` layout, missing synsets, unexpected counts), one line naming what is wrong (the
    first few and how many), the fix, and that ImageNet is the user's own licensed copy.
    """
    root = Path(imagenet_root)
    classes = tuple(classes) if classes is not None else imagenet100_classes()
    if not root.is_dir():
        raise DataUnavailableError(
            f"ImageNet folder {root} does not exist: {LICENSE}; point imagenet_root at the folder that holds its "
            f"train/ and val/, each with one sub-folder per synset (train/n01440764/*.JPEG)"
        )
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataUnavailableError(
                f"{root / split} does not exist: {LICENSE}; extract ILSVRC2012_img_{split}.tar into {root / split} "
                f"with one sub-folder per synset"
            )
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "val"):
        folder = root / split
        entries = list(os.scandir(folder))
        present = {e.name for e in entries if e.is_dir() and not _hidden(e.name)}
        flat = [e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
        if split == "val" and flat and not present & set(classes):
            raise DataValidationError(
                f"{folder} holds {len(flat)} images directly (ILSVRC2012_img_val.tar's flat layout) instead of one "
                f"folder per synset: move it aside, put ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz into "
                f"{root} and run python -c \"import torchvision; torchvision.datasets.ImageNet('{root}', "
                f"split='val')\" (it writes val/<synset>/ from the devkit's labels), then re-run ({LICENSE})"
            )
        missing = [c for c in classes if c not in present]
        if missing:
            raise DataValidationError(
                f"{folder} lacks {len(missing)} of the {len(classes)} ImageNet-100 synset folders "
                f"({_listing(missing)}): {LICENSE}; extract the full ILSVRC2012_img_{split}.tar there, one "
                f"folder per synset"
            )
        counts[split] = {c: _count_images(folder / c) for c in classes}
    wrong = []
    if val_per_class is not None:
        wrong += [f"val/{c} has {n}" for c, n in counts["val"].items() if n != val_per_class]
    if train_per_class is not None:
        lo, hi = train_per_class
        wrong += [f"train/{c} has {n}" for c, n in counts["train"].items() if not lo <= n <= hi]
    if wrong:
        expected = []
        if val_per_class is not None:
            expected.append(f"{val_per_class} per val folder")
        if train_per_class is not None:
            expected.append(f"{train_per_class[0]}-{train_per_class[1]} per train folder")
        raise DataValidationError(
            f"{root}: {len(wrong)} synset folder(s) hold an unexpected number of images ({_listing(wrong)}; "
            f"ILSVRC-2012 has {' and '.join(expected)}): the copy is incomplete or mixed with other files; "
            f"extract the archives again ({LICENSE})"
        )
    return counts


def imagenet100_splits(imagenet_root: str | os.PathLike, **split_options) -> FolderSplits:
    """The ImageNet-100 splits of a checked copy: train/ (less dev) and val/ (the test split), 100 classes."""
    return image_folder_splits(imagenet_root, classes=imagenet100_classes(), **split_options)


def prepare_imagenet100(
    imagenet_root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    check: bool = True,
    dev_fraction: float | None = None,
    dev_seed: int | None = None,
    **pack_options,
) -> Path:
    """Check ``imagenet_root`` (:func:`check_imagenet100`), then pack ImageNet-100 into the folder ``out``
    (:func:`~deepaug.domains.vision.imagefolder.pack_splits` with ``pack_options``: ``max_short_side``,
    ``quality``, ``workers``, ``skip_corrupt``, ``progress``). Returns ``out``."""
    if check:
        check_imagenet100(imagenet_root)
    split_options = {k: v for k, v in (("dev_fraction", dev_fraction), ("dev_seed", dev_seed)) if v is not None}
    splits = imagenet100_splits(imagenet_root, **split_options)
    return pack_splits(splits, out, name=pack_options.pop("name", "imagenet100"), **pack_options)
