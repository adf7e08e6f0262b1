"""NVIDIA DALI for the decode-and-crop half of the image-folder path (``vision.train.loader: dali``): JPEG decoding
on the GPU (nvJPEG, DALI's ``mixed`` backend) fused with the random resized crop, as solo-learn's ImageNet-100
runs do (vturrisi/solo-learn@9187ea3 ``solo/data/dali_dataloader.py``: ``fn.decoders.image_random_crop`` with
``device="mixed"``, then ``fn.resize``). An optional extra (``pip install -e .[dali]``: the wheel is about 1 GB);
the pack's loader (:mod:`deepaug.domains.vision.fast_loader`) is the default and the fallback.

The images come out of the same pack (:class:`~deepaug.domains.vision.imagefolder.PackedImages`, its JPEG bytes fed
through ``fn.external_source``), in the order of the same :class:`~deepaug.domains.vision.fast_loader.EpochSampler`;
each view is one ``image_random_crop`` (area ``scale``, aspect ratio 3/4-4/3, 10 attempts: torchvision's law, drawn
by DALI's own generator seeded by the epoch's seed, so a resumed epoch gets the same crops) resized to
``size x size``. The colour half (flip, jitter, grayscale, blur, solarisation) then runs batched on the device as
for the pack's loader (:class:`~deepaug.domains.vision.fast_loader.TwoViewBatchAugment`). Without a GPU the
pipeline runs on DALI's CPU backend (``device_id=None``), which is how the tests run it.
"""

from __future__ import annotations

import numpy as np
import torch

from deepaug.errors import DataUnavailableError


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


def require_dali() -> None:
    if not dali_available():
        raise DataUnavailableError(
            "train.loader: dali needs NVIDIA DALI: pip install -e '.[dali]' (or nvidia-dali-cuda120), "
            "or use loader: pack (the default)"
        )


class _PackSource:
    """``fn.external_source``'s batch callback: the JPEG bytes and labels of the epoch's batches, in the order of
    the pack loader's sampler."""

    def __init__(self, images, order: list[int], batch: int) -> None:
        self.images, self.order, self.batch = images, order, batch

    def __call__(self, iteration: int):
        start = iteration * self.batch
        rows = self.order[start : start + self.batch]
        if len(rows) < self.batch:
            raise StopIteration
        jpegs = [np.frombuffer(self.images.raw(i), dtype=np.uint8) for i in rows]
        labels = [np.asarray([self.images.labels[i]], dtype=np.int64) for i in rows]
        return jpegs, labels


def dali_epoch(images, params, batch: int, steps: int, seed: int, device: torch.device, threads: int = 4):
    """Yields ``(views1_uint8, views2_uint8, labels)`` on ``device`` (uint8 B x 3 x S x S) for one epoch."""
    require_dali()
    from nvidia.dali import fn, pipeline_def, types
    from nvidia.dali.plugin.pytorch import DALIGenericIterator

    from deepaug.domains.vision.fast_loader import EpochSampler

    sampler = EpochSampler(len(images), seed)
    sampler.set_epoch(0)
    order = [i for _, i in sampler][: steps * batch]
    gpu = device.type == "cuda"
    backend = "mixed" if gpu else "cpu"
    interp = types.INTERP_CUBIC if params.interpolation == "bicubic" else types.INTERP_LINEAR

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=(device.index or 0) if gpu else None, seed=seed)
    def pipeline():
        jpegs, labels = fn.external_source(source=_PackSource(images, order, batch), num_outputs=2, batch=True)
        views = []
        for view in range(2):
            x = fn.decoders.image_random_crop(
                jpegs,
                device=backend,
                output_type=types.RGB,
                random_area=list(params.scale),
                random_aspect_ratio=list(params.ratio),
                num_attempts=10,
                seed=seed * 2 + view,
            )
            x = fn.resize(x, resize_x=params.size, resize_y=params.size, interp_type=interp, antialias=True)
            views.append(fn.transpose(x, perm=[2, 0, 1]))
        return (*views, labels.gpu() if gpu else labels)

    pipe = pipeline()
    pipe.build()
    # the epoch ends when the source raises StopIteration (its batches are the sampler's, full ones only)
    for out in DALIGenericIterator(pipe, ["v1", "v2", "labels"], auto_reset=False):
        got = out[0]
        yield got["v1"].to(device), got["v2"].to(device), got["labels"].view(-1).to(device)
