"""Image folders (``root/<class>/*.jpg``: ImageNet-100, any torchvision ``ImageFolder`` dataset), packed once into a
form that DataLoader workers read fast.

Layout of a folder (:func:`image_folder_splits`):

* ``root/train/<class>/...`` and ``root/val/<class>/...`` (or ``root/test/<class>/...`` when there is no ``val/``):
  the split the dataset ships with; ``val`` becomes the project's **test** split (only reported);
* otherwise ``root/<class>/...``: a stratified test split of ``val_fraction`` of each class is drawn with ``seed``
  (:func:`deepaug.domains.vision.data.stratified_dev_index`; the same seed gives the same split).

The **dev** split (every selection is made on it, never on test) is then held out of train exactly as for CIFAR
(:func:`deepaug.domains.vision.data.hold_out_dev`: a stratified ``dev_fraction`` drawn with ``dev_seed``).

The packed form (:func:`pack_image_folder`) is a folder::

    manifest.json             classes, counts per class and split, how the splits were made, the resize rule,
                              the train split's per-channel mean/std, the sha256 of every file, skipped files
    <split>.bin               the split's images, re-encoded as baseline JPEG (4:2:0), one after the other
    <split>.index.npz         per image: offset, length, crc32 of its bytes, label, packed and original size,
                              the source path (relative to the source root); dev also ``dev_index``

for ``split`` in train, dev, test. :class:`PackedImages` reads one split through ``mmap`` and decodes one image
with simplejpeg (libjpeg-turbo), optionally shrunk in the DCT domain.

**Resize rule**: the shorter side at most ``max_short_side`` (default 384; sizes as torchvision's ``Resize(int)``,
PIL's antialiased bilinear filter; smaller images are never enlarged), re-encoded at JPEG ``quality`` 90. FFCV's
ImageNet recipe caps the *longer* side at 500 px for ResNet-50 and 400 px for ResNet-18, quality 90
(libffcv/ffcv-imagenet ``README.md:62-65,89-90``, ``write_imagenet.py:21``, commit 4dd291a; the cap is
``ffcv/fields/rgb_image.py:37-44`` in libffcv/ffcv, commit 3a12966): for a 4:3 photo, 500 px on the longer side is
375 px on the shorter. solo-learn's ImageNet-100 runs read the original JPEGs (``scripts/pretrain/imagenet-100/
simclr.yaml:22-26``, vturrisi/solo-learn commit 9187ea3). Capping the shorter side at 384 keeps typical ImageNet
photos (around 400 x 350) at their original resolution, as solo-learn sees them, and only shrinks the few large
ones, which dominate decoding time; capping the shorter rather than the longer side keeps panoramas from being
squeezed below what a 224-pixel crop needs. 256 (a cheaper pack, about half the pixels to decode) is one flag
away; RandomResizedCrop then upsamples more of its crops.

**Corrupt files** (cannot be opened or decoded to the end: truncated, not an image despite the extension) are
found when packing, where every image is decoded once. By default packing reads every image and then refuses with
one line naming the first few and their count (nothing is written). ``skip_corrupt=True`` leaves them out and
records them (count and paths) in the manifest. Images are decoded with PIL like torchvision's ``ImageFolder``
(``convert("RGB")``; libjpeg's warnings about recoverable damage are not errors, as there; EXIF orientation is
ignored, as there), so both data paths see the same pixels.

**Files that are not images**: accepted extensions are .jpg, .jpeg and .png, in any case. Any other file inside a
class folder is refused, named, so that nothing is silently left out; hidden files and folders (names starting
with ``.``: ``.DS_Store``, ``._x.jpg``, ``.ipynb_checkpoints``) are ignored, and so are files that are not images
directly in ``root`` or a split folder (a README, ImageNet's ``LOC_*.csv``). Class folders are read recursively in
torchvision's order (``datasets/folder.py``'s ``make_dataset``: sorted walk, sorted file names), so the image
indices equal ``ImageFolder``'s when the folder is not split.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepaug.domains.vision.data import DEV_FRACTION, DEV_SEED, check_normalisation, hold_out_dev, stratified_dev_index
from deepaug.errors import DataUnavailableError, DataValidationError, DiskFullError
from deepaug.io import is_disk_full

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
TEST_FOLDERS = ("val", "test")  # the first present one is the test split of a pre-split folder
SPLITS = ("train", "dev", "test")
DEFAULT_MAX_SHORT_SIDE = 384
DEFAULT_QUALITY = 90  # FFCV's ImageNet default (ffcv-imagenet write_imagenet.py:21)
DEFAULT_VAL_FRACTION = 0.1
PACK_FORMAT = "deepaug-jpeg-pack"
PACK_VERSION = 1
MANIFEST = "manifest.json"
_LIST = 3  # how many offending names an error message lists before the count

Sample = tuple[Path, int]


def _listing(items: Sequence, n: int = _LIST) -> str:
    shown = ", ".join(str(x) for x in items[:n])
    return shown + (f" and {len(items) - n} more ({len(items)} in all)" if len(items) > n else "")


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _class_files(folder: Path) -> list[Path]:
    """The image files under one class folder, in torchvision's ``make_dataset`` order (sorted ``os.walk``,
    following links, sorted names), hidden files and folders left out; any other file is refused."""
    walked = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        walked.append((dirpath, sorted(f for f in filenames if not _hidden(f))))
    files = [Path(d) / f for d, names in sorted(walked) for f in names]
    others = [p for p in files if not _is_image(p.name)]
    if others:
        raise DataValidationError(
            f"{others[0]} is not an image deepaug reads (accepted: {' '.join(IMAGE_EXTENSIONS)}, in any case)"
            + (f"; {len(others)} such files in {folder}" if len(others) > 1 else "")
            + ": delete it or move it out of the class folder (hidden files such as .DS_Store are ignored)"
        )
    return files


def scan_image_folder(root: str | os.PathLike, classes: Sequence[str] | None = None) -> tuple[list[Sample], list[str]]:
    """The images of one ImageFolder tree ``root/<class>/...``: ``([(path, class_index), ...], classes)``.

    ``classes`` are the sorted class folders (torchvision's ``find_classes``), or the given ones (sorted; all must
    exist; other folders are ignored: how ImageNet-100 is read out of ImageNet). Raises one-line errors naming the
    folder or file and the fix: :class:`DataUnavailableError` for a missing ``root``; :class:`DataValidationError`
    for no class folders, an image lying directly in ``root`` (it has no class), a missing or empty class folder,
    or a file that is not an image (see the module's docstring for what is ignored).
    """
    root = Path(root)
    if not root.exists():
        raise DataUnavailableError(
            f"image folder {root} does not exist: point the dataset's root at a folder with one sub-folder of "
            f"images per class (root/<class>/*.jpg)"
        )
    if not root.is_dir():
        raise DataValidationError(f"{root} is a file, not a folder of class folders (root/<class>/*.jpg)")
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    folders = [e.name for e in entries if e.is_dir() and not _hidden(e.name)]
    loose = [e.name for e in entries if e.is_file() and not _hidden(e.name) and _is_image(e.name)]
    if classes is None:
        if not folders:
            hint = (
                f" ({len(loose)} images lie directly in it: a flat folder such as ImageNet's original val/ needs "
                f"sorting into one folder per class first)"
                if loose
                else ""
            )
            raise DataValidationError(
                f"{root} has no class folders{hint}: an image folder holds one sub-folder of images per class "
                f"(root/<class>/*.jpg), or train/ and val/ folders laid out that way"
            )
        if loose:
            raise DataValidationError(
                f"{root / loose[0]} lies directly in {root}, outside every class folder"
                + (f" ({len(loose)} such images)" if len(loose) > 1 else "")
                + ": move it into the folder of its class, or out of the dataset"
            )
        classes = folders
    else:
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct, got {len(classes)} names for {len(set(classes))} classes")
        missing = [c for c in classes if c not in set(folders)]
        if missing:
            raise DataValidationError(
                f"{root} lacks the class folder(s) {_listing(missing)} of the {len(classes)} requested: "
                f"put each class's images into {root}/<class>/"
            )
        classes = sorted(classes)
    samples: list[Sample] = []
    for label, name in enumerate(classes):
        files = _class_files(root / name)
        if not files:
            raise DataValidationError(
                f"class folder {root / name} holds no images ({' '.join(IMAGE_EXTENSIONS)}): put the class's "
                f"images there, or delete the folder to drop the class"
            )
        samples.extend((p, label) for p in files)
    return samples, list(classes)


@dataclass
class FolderSplits:
    """Train, dev and test images of an image folder (``(path, label)`` lists) and how they were made."""

    root: str
    classes: list[str]
    train: list[Sample]
    dev: list[Sample]
    test: list[Sample]
    rule: dict = field(default_factory=dict)  # JSON-ready: how the splits were made (goes into the manifest)
    dev_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # rows of train + dev

    def split(self, name: str) -> list[Sample]:
        return {"train": self.train, "dev": self.dev, "test": self.test}[name]


def _check_fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")


def _stratified(labels: np.ndarray, fraction: float, seed: int, what: str, where) -> np.ndarray:
    try:
        return stratified_dev_index(labels, max(1, round(fraction * len(labels))), seed)
    except ValueError as exc:
        raise DataValidationError(f"{where}: cannot draw the {what} split ({exc}); add images") from None


def image_folder_splits(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    dev_fraction: float = DEV_FRACTION,
    dev_seed: int = DEV_SEED,
) -> FolderSplits:
    """Scan ``root`` (see the module's docstring for the two layouts) and make the train, dev and test splits.

    Pre-split folders: ``root/train`` is train + dev, ``root/val`` (else ``root/test``) is test; both must hold the
    same classes (one-line error naming the first missing ones). Otherwise a stratified ``val_fraction`` of every
    class is the test split, drawn with ``seed`` (deterministic: the same seed, the same split). Then ``dev_fraction``
    of train becomes dev (``hold_out_dev``, ``dev_seed``); ``dev_index`` holds its rows in train + dev.
    """
    _check_fraction("dev_fraction", dev_fraction)
    root = Path(root)
    if not root.exists():
        scan_image_folder(root)  # raises the missing-root error
    train_dir = root / "train"
    test_dir = next((root / name for name in TEST_FOLDERS if (root / name).is_dir()), None)
    if train_dir.is_dir() and test_dir is not None:
        chosen = classes
        train, classes = scan_image_folder(train_dir, classes)
        if chosen is None:  # every class of train/: test/ must hold the same (a chosen subset ignores the others)
            extra = sorted(
                e.name for e in os.scandir(test_dir) if e.is_dir() and not _hidden(e.name) and e.name not in classes
            )
            if extra:
                raise DataValidationError(
                    f"{test_dir} has class folder(s) {_listing(extra)} that {train_dir} lacks: both splits need "
                    f"the same classes"
                )
        test, _ = scan_image_folder(test_dir, classes)
        rule = {"test": f"the {test_dir.name}/ folder", "train": "the train/ folder, less dev"}
    elif train_dir.is_dir() and classes is None:
        raise DataValidationError(
            f"{root} has a train/ folder but no val/ or test/ beside it: add the held-out split as val/<class>/, "
            f"or point the root at {train_dir} to draw a seeded test split out of it"
        )
    else:
        _check_fraction("val_fraction", val_fraction)
        samples, classes = scan_image_folder(root, classes)
        labels = np.array([y for _, y in samples], dtype=np.int64)
        test_index = _stratified(labels, val_fraction, seed, "test", root)
        is_test = np.zeros(len(samples), dtype=bool)
        is_test[test_index] = True
        test = [s for s, t in zip(samples, is_test) if t]
        train = [s for s, t in zip(samples, is_test) if not t]
        rule = {
            "test": f"a stratified {val_fraction:g} of every class of {root.name}/ (seed {seed})",
            "train": "the rest, less dev",
            "val_fraction": val_fraction,
            "seed": seed,
        }
    labels = np.array([y for _, y in train], dtype=np.int64)
    if len(labels) < 2:
        raise DataValidationError(f"{root}: {len(labels)} training image(s) cannot be split into train and dev")
    rows = hold_out_dev({"x_train": np.arange(len(train)), "y_train": labels}, dev_fraction, dev_seed)
    rule.update(dev=f"a stratified {dev_fraction:g} of train (seed {dev_seed})", dev_fraction=dev_fraction)
    rule["dev_seed"] = dev_seed
    return FolderSplits(
        root=str(root),
        classes=list(classes),
        train=[train[i] for i in rows["x_train"]],
        dev=[train[i] for i in rows["x_dev"]],
        test=test,
        rule=rule,
        dev_index=rows["dev_index"],
    )


# ---- packing -----------------------------------------------------------------------------------------------------


def resized_size(height: int, width: int, max_short_side: int) -> tuple[int, int]:
    """(height, width) after the pack's resize: the shorter side at most ``max_short_side``, sizes as torchvision's
    ``Resize(int)`` (``transforms/functional.py:368-370``: ``new_long = int(size * long / short)``); never enlarged."""
    short, long = min(height, width), max(height, width)
    if short <= max_short_side:
        return height, width
    new_long = int(max_short_side * long / short)
    return (max_short_side, new_long) if height <= width else (new_long, max_short_side)


def prepare_image(task: tuple[str, int, int]):
    """Decode one source image (PIL, ``convert("RGB")`` as torchvision's ``pil_loader``), resize it by the pack's
    rule and re-encode it with simplejpeg (baseline, 4:2:0). Returns ``("ok", jpeg, (orig_h, orig_w), (h, w),
    sums, sums of squares, minima, maxima)`` (per channel, exact integers, over the resized pixels before
    encoding) or ``("error", reason)``: run in the packing processes."""
    path, max_short_side, quality = task
    import simplejpeg
    from PIL import Image, ImageFile

    lenient, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False  # truncated: an error,
    try:  # not a grey bottom half
        with open(path, "rb") as fh:
            img = Image.open(fh)
            img.load()
            rgb = img.convert("RGB")
    except Exception as exc:  # UnidentifiedImageError, OSError("image file is truncated"), SyntaxError, ...
        return ("error", f"{type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient
    orig_w, orig_h = rgb.size
    h, w = resized_size(orig_h, orig_w, max_short_side)
    if (h, w) != (orig_h, orig_w):
        rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)  # antialiased when shrinking
    pixels = np.asarray(rgb)
    data = simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB", colorsubsampling="420")
    flat = pixels.reshape(-1, 3)
    wide = flat.astype(np.int64)
    return ("ok", data, (orig_h, orig_w), (h, w), wide.sum(0), (wide * wide).sum(0), flat.min(0), flat.max(0))


def _default_workers() -> int:
    try:
        return min(8, len(os.sched_getaffinity(0)))
    except AttributeError:
        return min(8, os.cpu_count() or 1)


def _results(tasks: list, workers: int, pool) -> Iterable:
    if pool is None:
        return map(prepare_image, tasks)
    return pool.map(prepare_image, tasks, chunksize=max(1, min(64, len(tasks) // (8 * workers))))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pack_image_folder(
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    dev_fraction: float = DEV_FRACTION,
    dev_seed: int = DEV_SEED,
    **pack_options,
) -> Path:
    """Split the image folder ``root`` (:func:`image_folder_splits`) and pack it into the folder ``out``
    (:func:`pack_splits`, which takes ``pack_options``). Returns ``out``."""
    splits = image_folder_splits(
        root, classes=classes, val_fraction=val_fraction, seed=seed, dev_fraction=dev_fraction, dev_seed=dev_seed
    )
    return pack_splits(splits, out, **pack_options)


def pack_splits(
    splits: FolderSplits,
    out: str | os.PathLike,
    *,
    max_short_side: int = DEFAULT_MAX_SHORT_SIDE,
    quality: int = DEFAULT_QUALITY,
    workers: int | None = None,
    skip_corrupt: bool = False,
    name: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Decode every image of ``splits`` once, resize (shorter side at most ``max_short_side``), re-encode as JPEG
    ``quality`` and write the pack folder ``out`` (layout in the module's docstring). Returns ``out``.

    ``workers`` processes decode and encode in parallel (default: the usable CPUs, at most 8; 0: in this process).
    Corrupt images: see the module's docstring (refused, naming them, unless ``skip_corrupt``). The train split's
    per-channel mean and std (in [0, 1], of the resized pixels) go into the manifest, refused like the prepared
    ``.npz`` files when a channel is constant. The pack is written into a temporary folder next to ``out`` and
    renamed into place when complete, manifest last: an interrupted run never leaves a pack that looks finished,
    and a pack that was there stays until the new one replaces it. ``progress(split, done, total)`` is called
    now and then.
    """
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be 1-100, got {quality}")
    if max_short_side < 1:
        raise ValueError(f"max_short_side must be positive, got {max_short_side}")
    import simplejpeg

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    workers = _default_workers() if workers is None else int(workers)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    pool = None
    try:
        if workers > 0:  # never a fork of this process (it may hold torch's threads); a dead worker raises
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
        manifest_splits, corrupt, stats = {}, [], None
        for split in SPLITS:
            samples = splits.split(split)
            rows = _pack_split(tmp, split, samples, splits, max_short_side, quality, workers, pool, progress)
            corrupt += rows.pop("corrupt")
            if split == "train":
                stats = rows.pop("stats")
            manifest_splits[split] = rows
        if corrupt and not skip_corrupt:
            raise DataValidationError(
                f"{_listing([f'{p} ({why})' for p, why in corrupt], 2)} cannot be decoded: replace "
                + ("them" if len(corrupt) > 1 else "it")
                + " with an intact copy or delete "
                + ("them" if len(corrupt) > 1 else "it")
                + ", or pack with skip_corrupt=True to leave such files out (the manifest records them)"
            )
        mean, std = _mean_std(stats, out)
        manifest = {
            "format": PACK_FORMAT,
            "version": PACK_VERSION,
            "name": name or out.name,
            "source_root": splits.root,
            "classes": splits.classes,
            "splits": manifest_splits,
            "split_rule": splits.rule,
            "resize": {
                "rule": "shorter side at most max_short_side (torchvision Resize(int) sizes), PIL bilinear "
                "antialiased; never enlarged",
                "max_short_side": int(max_short_side),
                "jpeg_quality": int(quality),
                "encoder": f"simplejpeg {simplejpeg.__version__}, baseline, 4:2:0",
            },
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "mean_std_of": "the train split's resized pixels in [0, 1], before JPEG encoding",
            "skipped_corrupt": {"count": len(corrupt), "files": [f"{p} ({why})" for p, why in corrupt[:1000]]},
            "created_by": "deepaug.domains.vision.imagefolder.pack_splits",
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; a pack is read by the group like any result
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return out
    except (OSError, RuntimeError) as exc:
        if is_disk_full(exc):
            raise DiskFullError(f"no space left on {out.parent} (packing {out.name}): free space, re-run") from None
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _pack_split(tmp, split, samples, splits, max_short_side, quality, workers, pool, progress) -> dict:
    n_classes = len(splits.classes)
    tasks = [(str(p), int(max_short_side), int(quality)) for p, _ in samples]
    offsets, lengths, crcs, labels, sizes, orig_sizes, sources, corrupt = [], [], [], [], [], [], [], []
    sums = np.zeros(3, np.int64)
    squares = np.zeros(3, np.int64)
    low, high, pixels = np.full(3, 255, np.int64), np.zeros(3, np.int64), 0
    sha = hashlib.sha256()
    pos = 0
    bin_name = f"{split}.bin"
    with open(tmp / bin_name, "wb") as fh:
        for k, result in enumerate(_results(tasks, workers, pool)):
            path, label = samples[k]
            if result[0] == "error":
                corrupt.append((str(path), result[1]))
                continue
            _, data, orig, size, s, sq, lo, hi = result
            fh.write(data)
            sha.update(data)
            offsets.append(pos)
            lengths.append(len(data))
            crcs.append(zlib.crc32(data))
            pos += len(data)
            labels.append(label)
            sizes.append(size)
            orig_sizes.append(orig)
            sources.append(_relative(path, Path(splits.root)))
            if split == "train":
                sums += s
                squares += sq
                low, high = np.minimum(low, lo), np.maximum(high, hi)
                pixels += size[0] * size[1]
            if progress is not None and (k + 1) % 1000 == 0:
                progress(split, k + 1, len(tasks))
    if progress is not None:
        progress(split, len(tasks), len(tasks))
    labels_a = np.asarray(labels, dtype=np.int64)
    index = {
        "offsets": np.asarray(offsets, dtype=np.int64),
        "lengths": np.asarray(lengths, dtype=np.int64),
        "crc32": np.asarray(crcs, dtype=np.uint32),
        "labels": labels_a,
        "sizes": np.asarray(sizes, dtype=np.int32).reshape(-1, 2),
        "original_sizes": np.asarray(orig_sizes, dtype=np.int32).reshape(-1, 2),
        "sources": np.asarray(sources, dtype=str),
    }
    if split == "dev":
        index["dev_index"] = np.asarray(splits.dev_index, dtype=np.int64)
    index_name = f"{split}.index.npz"
    with open(tmp / index_name, "wb") as ih:
        np.savez(ih, **index)
    rows = {
        "count": len(labels),
        "counts_per_class": np.bincount(labels_a, minlength=n_classes).tolist(),
        "bin": bin_name,
        "bytes": pos,
        "sha256": sha.hexdigest(),
        "index": index_name,
        "index_sha256": _sha256(tmp / index_name),
        "corrupt": corrupt,
    }
    if split == "train":
        rows["stats"] = (sums, squares, low, high, pixels)
    return rows


def _relative(path: Path, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return str(path)


def _mean_std(stats, out: Path) -> tuple[np.ndarray, np.ndarray]:
    sums, squares, low, high, pixels = stats
    if pixels == 0:
        raise DataValidationError(f"{out}: the train split has no decodable images; nothing to pack")
    mean = sums / pixels / 255.0
    var = np.maximum(squares / pixels / 255.0**2 - mean**2, 0.0)
    std = np.sqrt(var)
    extremes = np.stack([low, high]).astype(np.uint8)[:, None, :]  # a 2-pixel image with each channel's range
    check_normalisation(extremes, mean, std, f"image folder packed into {out}", "check its images")
    return mean.astype(np.float32), std.astype(np.float32)


# ---- reading -----------------------------------------------------------------------------------------------------


def read_manifest(pack: str | os.PathLike) -> dict:
    """The manifest of the pack folder ``pack``, checked for format and version (one-line errors)."""
    pack = Path(pack)
    path = pack / MANIFEST
    fix = f"pack the image folder again (the pack folder {pack} is incomplete or not a pack)"
    if not pack.exists():
        raise DataUnavailableError(f"packed image folder {pack} does not exist: pack the image folder first")
    if not path.is_file():
        raise DataValidationError(f"{pack} has no {MANIFEST}: {fix}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path} cannot be read ({type(exc).__name__}: {exc}): {fix}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        raise DataValidationError(f"{path} is not a deepaug image pack manifest: {fix}")
    if manifest.get("version") != PACK_VERSION:
        raise DataValidationError(
            f"{path} is pack format version {manifest.get('version')}; this deepaug reads version {PACK_VERSION}: {fix}"
        )
    return manifest


class PackedImages:
    """One split of a pack folder: ``len``, ``labels``, ``sizes`` (packed height, width), ``classes``, ``mean`` /
    ``std`` (the train split's), ``raw(i)`` (the JPEG bytes, a zero-copy view of the ``mmap``) and ``decode(i)``
    (uint8 H x W x 3).

    Opening checks the manifest, that the index matches the split's count and the ``.bin`` file its size (a
    truncated copy); every ``decode`` checks the image's crc32 (about 1% of the decoding time; ``check_crc=False``
    skips it); :meth:`verify` checks the sha256 of the whole split. Damage raises :class:`DataValidationError`
    naming the file and saying to pack again. The ``mmap`` is opened lazily in each process, so the object can be
    handed to DataLoader workers (forked or spawned).
    """

    def __init__(self, pack: str | os.PathLike, split: str = "train", check_crc: bool = True) -> None:
        self.pack = Path(pack)
        self.split = split
        self.check_crc = check_crc
        self.manifest = read_manifest(self.pack)
        if split not in self.manifest["splits"]:
            raise DataValidationError(
                f"{self.pack} has no split {split!r} (it has {', '.join(self.manifest['splits'])}): pack it again"
            )
        self.info = self.manifest["splits"][split]
        self.bin_path = self.pack / self.info["bin"]
        self._fix = f"the pack is damaged: delete {self.pack} and pack the image folder again"
        try:
            with np.load(self.pack / self.info["index"], allow_pickle=False) as npz:
                index = {k: npz[k] for k in ("offsets", "lengths", "crc32", "labels", "sizes", "original_sizes")}
        except Exception as exc:  # missing, truncated, not an npz, a key missing
            raise DataValidationError(
                f"{self.pack / self.info['index']} cannot be read ({type(exc).__name__}: {exc}); {self._fix}"
            ) from None
        self.offsets, self.lengths, self.crc32 = index["offsets"], index["lengths"], index["crc32"]
        self.labels, self.sizes, self.original_sizes = index["labels"], index["sizes"], index["original_sizes"]
        n = int(self.info["count"])
        if any(len(a) != n for a in index.values()):
            raise DataValidationError(f"{self.pack / self.info['index']} does not hold {n} images; {self._fix}")
        size = self.bin_path.stat().st_size if self.bin_path.exists() else -1
        if size != int(self.info["bytes"]) or (n and int(self.offsets[-1] + self.lengths[-1]) != size):
            raise DataValidationError(
                f"{self.bin_path} has {size} bytes, the manifest says {self.info['bytes']}; {self._fix}"
            )
        self._mmap = None
        self._pid = None

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.manifest["mean"], dtype=np.float32)

    @property
    def std(self) -> np.ndarray:
        return np.asarray(self.manifest["std"], dtype=np.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_mmap"], state["_pid"] = None, None
        return state

    def _buffer(self):
        if self._mmap is None or self._pid != os.getpid():
            import mmap

            with open(self.bin_path, "rb") as fh:
                self._mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if self.info["bytes"] else b""
            self._pid = os.getpid()
        return self._mmap

    def raw(self, i: int) -> memoryview:
        start = int(self.offsets[i])
        data = memoryview(self._buffer())[start : start + int(self.lengths[i])]
        if self.check_crc and zlib.crc32(data) != int(self.crc32[i]):
            raise DataValidationError(f"image {i} of {self.bin_path} fails its crc32 check; {self._fix}")
        return data

    def decode(self, i: int, min_height: int = 0, min_width: int = 0) -> np.ndarray:
        """Image ``i`` as uint8 H x W x 3. ``min_height``/``min_width``: let libjpeg-turbo shrink it while decoding
        (DCT scaling by 1/2, 1/4 or 1/8) as far as the result stays at least that large."""
        import simplejpeg

        data = self.raw(i)
        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=min_height, min_width=min_width)
        except ValueError as exc:
            raise DataValidationError(f"image {i} of {self.bin_path} cannot be decoded ({exc}); {self._fix}") from None

    def verify(self) -> None:
        """Check the sha256 of the split's ``.bin`` and ``.index.npz`` against the manifest (reads the whole split)."""
        for path, key in ((self.bin_path, "sha256"), (self.pack / self.info["index"], "index_sha256")):
            if _sha256(path) != self.info[key]:
                raise DataValidationError(f"{path} does not match the sha256 in its manifest; {self._fix}")

    def source(self, i: int) -> str:
        """Where image ``i`` came from (relative to the source root)."""
        with np.load(self.pack / self.info["index"], allow_pickle=False) as npz:
            return str(npz["sources"][i])
