"""Data throughput for ImageNet-sized images: two augmented 224-pixel views per image, the packed fast path against
torchvision's ImageFolder, plus the rate a ResNet-18 training step consumes.

It writes a folder of real JPEGs (``--images`` images in ``--classes`` class folders, sizes varying +-25% around
``--height`` x ``--width``, ImageNet's ~350 x 400 by default; smooth colour fields, shapes and sensor-like noise,
PIL quality 90, 4:2:0), packs it (:func:`deepaug.domains.vision.imagefolder.pack_image_folder`), and times, on
one device, interleaved after a warm-up of each (reference, candidate, reference, ...):

  reference  "torchvision": ``torchvision.datasets.ImageFolder`` + DataLoader, per-image v2 transforms in
             ``--workers`` workers: RandomResizedCrop(224, scale 0.08-1), flip, ColorJitter p 0.8, grayscale 0.2,
             GaussianBlur, RandomSolarize (:class:`~deepaug.domains.vision.fast_loader.AugmentParams`), two views
             per image, normalised floats, moved to the device;
  candidate  the fast path in the layout for the device, the other layout as a variant:
             "packed" (on a GPU): the pack read by the same number of workers (one simplejpeg decode, two crops
             resized in the worker, uint8), flip, jitter, grayscale, blur, solarisation and normalisation batched
             on the device (:class:`~deepaug.domains.vision.fast_loader.TwoViewBatchAugment`);
             "packed+worker-aug" (on a CPU): the same, but the workers also run the second half, one view at a
             time (on a CPU the "device" half would otherwise run in the main process alone, one core).

Each timed block is one short epoch of ``--steps`` batches of each loader (persistent workers, so nothing runs
in the background while the other loop is timed; the block includes filling the loader's pipeline once). The
rate is source images per second (each gives two views). Figures: the rates and the ratios to torchvision
(criterion on a CPU: the packed path at least 2x torchvision), the images/s one ResNet-18 training step on both
views consumes at ``--model-batch`` (torchvision ``resnet18``; SGD; NT-Xent; bf16 autocast + channels_last on
CUDA), whether the packed loader keeps up with it, the packing time and sizes.

  deepaug bench data --device cpu --images 256 --batch-size 32 --workers 2 --steps 2 --pairs 3   # laptop
  deepaug bench data --device cuda --images 4096 --batch-size 256 --workers 16 --steps 4 --pairs 5
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deepaug.bench.core import Loop, add_common_arguments, compare, positive_int, require
from deepaug.bench.train import draws_loader as _loader
from deepaug.domains.vision.fast_loader import (
    AugmentParams,
    PackedTwoCrops,
    TwoViewBatchAugment,
    torchvision_two_view_dataset,
)
from deepaug.domains.vision.imagefolder import DEFAULT_MAX_SHORT_SIDE, PackedImages, pack_image_folder

NAME = "data"
HELP = "images/s of two augmented 224 views per image: packed JPEGs + batched device augmentation vs ImageFolder"
UNIT = "images/s"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p, steps=2, warmup=1, pairs=3, unit=UNIT)
    g = p.add_argument_group("the generated JPEG folder")
    g.add_argument("--images", type=positive_int, default=256, help="JPEG files to generate")
    g.add_argument("--classes", type=positive_int, default=4, help="class folders")
    g.add_argument("--height", type=positive_int, default=350, help="mean image height (each varies +-25%%)")
    g.add_argument("--width", type=positive_int, default=400, help="mean image width (each varies +-25%%)")
    g.add_argument(
        "--data-dir", default=None, help="write the folder and the pack here and keep them (default: a temp folder)"
    )
    g.add_argument("--max-short-side", type=positive_int, default=DEFAULT_MAX_SHORT_SIDE, help="the pack's resize cap")
    g = p.add_argument_group("the loops")
    g.add_argument("--batch-size", type=positive_int, default=32, help="images per batch (two views each)")
    g.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="DataLoader worker processes of both loaders (and the packing processes); default: min(8, CPUs)",
    )
    g.add_argument("--augment", default="simclr", choices=["simclr", "byol"], help="AugmentParams preset")
    g.add_argument(
        "--model-batch",
        type=positive_int,
        default=8,
        help="images per ResNet-18 training step (two views each); CPU: keep it small",
    )
    g.add_argument("--model-steps", type=positive_int, default=2, help="timed ResNet-18 steps (after one warm-up)")


def validate(args: argparse.Namespace) -> None:
    require(args.workers >= 0, f"--workers {args.workers}: must be 0 or more")
    require(args.batch_size >= 2, f"--batch-size {args.batch_size}: a contrastive batch needs at least 2 images")
    require(
        args.images >= 4 * args.classes,
        f"--images {args.images}: needs at least 4 per class ({4 * args.classes}) for the train/dev/test split",
    )


def synthetic_photo(rng: np.random.Generator, height: int, width: int):
    """A PIL image with photo-like JPEG statistics: a smooth random colour field, a dozen filled shapes (edges),
    a slight blur and Gaussian noise (sigma 6 of 255)."""
    from PIL import Image, ImageDraw, ImageFilter

    low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(low).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(10, max(11, width // 2))), y0 + int(rng.integers(10, max(11, height // 2)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    pixels = np.asarray(img.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.int16)
    pixels = pixels + rng.normal(0, 6, pixels.shape).astype(np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_jpeg_folder(
    root: str | Path, images: int, classes: int, height: int = 350, width: int = 400, seed: int = 0, quality: int = 90
) -> Path:
    """``root/class_k/img_i.jpg``: ``images`` real JPEGs (PIL, ``quality``, 4:2:0) spread over ``classes`` folders,
    each side drawn uniformly within +-25% of ``height`` x ``width``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for i in range(images):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        h, w = (max(8, int(s * rng.uniform(0.75, 1.25))) for s in (height, width))
        buf = io.BytesIO()
        synthetic_photo(rng, h, w).save(buf, "JPEG", quality=quality)
        (folder / f"img_{i:06d}.jpg").write_bytes(buf.getvalue())
    return root


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def torchvision_block(root: Path, params: AugmentParams, batch: int, workers: int, device):
    """``block(n)``: one epoch of ``n`` batches of ImageFolder + v2 transforms, both views moved to the device."""
    loader, sampler = _loader(torchvision_two_view_dataset(root, params), batch, workers, device)

    def block(n: int) -> None:
        sampler.count = n * batch
        for (v1, v2), _ in loader:
            v1.to(device, non_blocking=True), v2.to(device, non_blocking=True)
        _sync(device)

    return block


def packed_block(pack: Path, params: AugmentParams, batch: int, workers: int, device, mean, std, in_workers=False):
    """``block(n)``: one epoch of ``n`` batches of the pack (two crops per image made by the workers), the rest of
    the augmentation batched on the device, or with ``in_workers`` done by the workers, one view at a time."""
    augment = TwoViewBatchAugment(params, tuple(map(float, mean)), tuple(map(float, std)))
    ds = PackedTwoCrops(pack, "train", params, augment=augment if in_workers else None)
    loader, sampler = _loader(ds, batch, workers, device)
    g = torch.Generator(device=device).manual_seed(0)

    def block(n: int) -> None:
        sampler.count = n * batch
        for v1, v2, _ in loader:
            v1, v2 = v1.to(device, non_blocking=True), v2.to(device, non_blocking=True)
            if not in_workers:
                augment(v1, v2, g)
        _sync(device)

    return block


def resnet18_images_per_s(batch: int, steps: int, device, size: int = 224) -> float:
    """Source images per second of a SimCLR step of torchvision's ResNet-18 on ``2 x batch`` views (random
    inputs; SGD, NT-Xent; bf16 autocast and channels_last on CUDA): the rate the loader has to keep up with."""
    from torchvision.models import resnet18

    from deepaug.core.losses import nt_xent

    torch.manual_seed(0)
    cuda = device.type == "cuda"
    model = resnet18(num_classes=128).to(device)
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(2 * batch, 3, size, size, device=device).contiguous(memory_format=fmt)

    def step() -> None:
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast(device.type, enabled=False)
        with ctx:
            z = model(x)
        loss = nt_xent(z.float(), 0.2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def run(args: argparse.Namespace, device: torch.device) -> tuple[dict, dict]:
    """(the comparison, the figures) of the shared layout."""
    keep = args.data_dir is not None
    base = Path(args.data_dir) if keep else Path(tempfile.mkdtemp(prefix="deepaug-bench-data-"))
    try:
        folder = base / "jpegs"
        if not folder.exists():
            make_jpeg_folder(folder, args.images, args.classes, args.height, args.width)
        t0 = time.perf_counter()
        pack = pack_image_folder(
            folder, base / "pack", max_short_side=args.max_short_side, workers=args.workers, val_fraction=0.05
        )
        pack_s = time.perf_counter() - t0
        train = PackedImages(pack, "train")
        params = AugmentParams.byol() if args.augment == "byol" else AugmentParams()
        require(
            len(train) >= args.batch_size,
            f"--batch-size {args.batch_size}: the packed train split has only {len(train)} images (raise --images)",
        )
        reference = Loop(
            "torchvision",
            f"ImageFolder + per-image v2 transforms in {args.workers} DataLoader workers, two views",
            torchvision_block(folder, params, args.batch_size, args.workers, device),
        )
        # the fast path's two layouts: the candidate is the one for this device, the variant the other
        layouts = {
            False: ("packed", "augmentation batched on the device"),
            True: ("packed+worker-aug", "the workers run all of it, one view at a time"),
        }
        cpu = device.type == "cpu"
        candidate, variant = (
            Loop(
                layouts[in_workers][0],
                f"pack + {args.workers} workers (decode once, two crops); {layouts[in_workers][1]}",
                packed_block(pack, params, args.batch_size, args.workers, device, train.mean, train.std, in_workers),
            )
            for in_workers in (cpu, not cpu)
        )
        comparison = compare(
            reference,
            candidate,
            [variant],
            steps=args.steps,
            warmup=args.warmup,
            pairs=args.pairs,
            items_per_step=args.batch_size,
        )
        model_rate = resnet18_images_per_s(args.model_batch, args.model_steps, device)
        packed_rate = comparison["candidate"]["rate"]["median"]
        other = comparison["variants"][variant.name]
        reference_s = comparison["reference"]["seconds"]["median"]
        figures = {
            "fast_path_layout": candidate.name,
            "fast_path_images_per_s": packed_rate,
            "torchvision_images_per_s": comparison["reference"]["rate"]["median"],
            "speedup_fast_path_vs_torchvision": comparison["ratio"]["median"],
            "criterion_cpu_speedup_at_least": 2.0,
            f"{variant.name}_images_per_s": other["rate"]["median"],
            f"speedup_{variant.name}_vs_torchvision": round(reference_s / other["seconds"]["median"], 4),
            "views_per_image": 2,
            "resnet18_step_images_per_s": round(model_rate, 2),
            "resnet18_model_batch": args.model_batch,
            "fast_path_keeps_up_with_resnet18": bool(packed_rate >= model_rate),
            "pack_seconds": round(pack_s, 2),
            "pack_images_per_s": round(args.images / pack_s, 1),
            "folder_mb": round(_folder_bytes(folder) / 1e6, 2),
            "pack_mb": round(_folder_bytes(Path(pack)) / 1e6, 2),
            "images": args.images,
            "augment": args.augment,
        }
        return comparison, figures
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
