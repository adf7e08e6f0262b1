"""Two augmented views per image for ImageNet-sized data: the fast path (pack + DataLoader workers + batched
augmentation on the device) and the torchvision fallback (``ImageFolder`` + per-image v2 transforms), both
reading their numbers from one :class:`AugmentParams`.

Fast path, per image, in a DataLoader worker (:class:`PackedTwoCrops`):

1. two RandomResizedCrop boxes drawn with torchvision's ``RandomResizedCrop.get_params`` law, call for call
   (:func:`rrc_params`; ``transforms/transforms.py:929-``, torchvision 0.29.1), from a generator seeded by
   (seed, epoch, image index): the crops do not depend on which worker runs, how many there are, or the
   order batches come back in;
2. one JPEG decode (simplejpeg, libjpeg-turbo), shrunk in the DCT domain by 1/2, 1/4 or 1/8 when both crops
   stay at least ``size`` pixels on each side at that scale (only those factors: measured, the others decode
   slower than full size);
3. each crop resized to ``size x size`` with PyTorch's antialiased bilinear interpolation of the uint8 crop (the
   tensor path of ``v2.RandomResizedCrop``; measured faster than PIL's ``resize(box=...)``: 0.4 vs 0.85 ms per
   224 view on one core), returned as uint8 C x H x W.

Then on the device, per batch (:class:`TwoViewBatchAugment`, :class:`~deepaug.domains.vision.batched_augment.
BatchedColorAugment`): flip, colour jitter, grayscale, Gaussian blur, solarisation, normalisation. Training on a
CPU, pass the :class:`TwoViewBatchAugment` to the workers instead (``PackedTwoCrops(augment=...)``,
``packed_loader(augment_in_workers=...)``): the same operations on each view in the worker, which spreads them
over the workers instead of leaving them to the main process alone (``deepaug bench data`` on 2 CPU cores:
about 4x torchvision's images/s this way; the main-process layout fell from about 4x to below 1x when the
machine was loaded).

The crop law equals torchvision's exactly (same draws from the same generator state,
tests/domains/vision/test_fast_loader.py); the pixels do not, to the last bit: a DCT-shrunk decode is not a
resize of the full decode, and after shrinking by ``r`` the box is rounded to whole pixels of the shrunk image
(at most ``r / 2`` source pixels at each edge; only for crops at least ``2 * size`` pixels on each side).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from deepaug.domains.vision.batched_augment import BatchedColorAugment, blur_kernel_size
from deepaug.domains.vision.imagefolder import PackedImages

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet weights; solo-learn's imagenet100 (timm's constants)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AugmentParams:
    """The two-view augmentation of ImageNet(-100) contrastive pre-training; both data paths read these numbers.

    Defaults: solo-learn's SimCLR ImageNet-100 recipe (vturrisi/solo-learn, commit 9187ea3,
    ``scripts/pretrain/imagenet-100/simclr.yaml:3`` uses ``augmentations/symmetric.yaml``): RandomResizedCrop
    scale (0.08, 1.0) (``symmetric.yaml:2-4``) with torchvision's default ratio (3/4, 4/3); ColorJitter
    (0.8, 0.8, 0.8, 0.2) with p 0.8 (``symmetric.yaml:5-10``; SimCLR's strength 1.0: 0.8 s, 0.8 s, 0.8 s, 0.2 s,
    google-research/simclr ``data_util.py:74-77``, commit 383d414); grayscale p 0.2 (``symmetric.yaml:11-12``);
    Gaussian blur p 0.5 on both views (``symmetric.yaml:13-14``; SimCLR ``data_util.py:417``), sigma U(0.1, 2.0)
    (``solo/data/pretrain_dataloader.py:87``, ``dali_dataloader.py:152``), kernel 23 at 224
    (:func:`~deepaug.domains.vision.batched_augment.blur_kernel_size`); solarisation p 0 (``symmetric.yaml:15-16``);
    flip p 0.5 (``symmetric.yaml:19-20``); 224-pixel crops, two of them (``symmetric.yaml:21-22``).

    ``p_blur`` and ``p_solarize`` are per view (view 1, view 2) so that BYOL's asymmetric views fit:
    :meth:`byol` (``augmentations/asymmetric.yaml``: jitter (0.4, 0.4, 0.2, 0.1), blur 1.0 / 0.1, solarisation
    0 / 0.2). Interpolation: bilinear (torchvision's default); solo-learn resizes with bicubic
    (``pretrain_dataloader.py:221-225``), which both paths also support (``interpolation="bicubic"``).
    """

    size: int = 224
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    p_flip: float = 0.5
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2)  # brightness, contrast, saturation, hue
    p_jitter: float = 0.8
    p_gray: float = 0.2
    p_blur: tuple[float, float] = (0.5, 0.5)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: int | None = None  # None: SimCLR's rule, 23 at 224
    p_solarize: tuple[float, float] = (0.0, 0.0)
    solarize_threshold: float = 0.5  # on [0, 1]; 128 of 255 on uint8 images (solo-learn dali_dataloader.py:160)
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {self.ratio}")
        if any(not 0 <= v <= 1 for v in self.jitter[:3]) or not 0 <= self.jitter[3] <= 0.5:
            raise ValueError(f"jitter must be (b, c, s in [0, 1], hue in [0, 0.5]), got {self.jitter}")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise ValueError(f"interpolation must be bilinear or bicubic, got {self.interpolation!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"the blur kernel must be odd (torchvision's rule), got {self.kernel_size}")

    @property
    def kernel_size(self) -> int:
        return self.blur_kernel if self.blur_kernel is not None else blur_kernel_size(self.size)

    @classmethod
    def simclr(cls, **changes) -> AugmentParams:
        """solo-learn's SimCLR ImageNet-100 recipe (the defaults)."""
        return cls(**changes)

    @classmethod
    def byol(cls, **changes) -> AugmentParams:
        """solo-learn's asymmetric (BYOL) ImageNet-100 views: ``scripts/pretrain/imagenet-100/augmentations/
        asymmetric.yaml:1-45`` (jitter (0.4, 0.4, 0.2, 0.1) p 0.8, grayscale 0.2, blur 1.0 / 0.1, solarisation
        0 / 0.2, flip 0.5, scale (0.08, 1), 224)."""
        base = dict(jitter=(0.4, 0.4, 0.2, 0.1), p_blur=(1.0, 0.1), p_solarize=(0.0, 0.2))
        return cls(**{**base, **changes})

    def with_(self, **changes) -> AugmentParams:
        return replace(self, **changes)

    # ---- the two data paths' augmentations, built from these numbers -------------------------------------------

    def batched(self, view: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> BatchedColorAugment:
        """The device half of view ``view`` (0 or 1) of the fast path."""
        return BatchedColorAugment(
            mean,
            std,
            jitter=self.jitter,
            p_jitter=self.p_jitter,
            p_gray=self.p_gray,
            p_flip=self.p_flip,
            p_blur=self.p_blur[view],
            kernel_size=self.kernel_size,
            blur_sigma=self.blur_sigma,
            p_solarize=self.p_solarize[view],
            threshold=self.solarize_threshold,
        )

    def torchvision_transform(self, view: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        """View ``view`` as per-image torchvision v2 transforms of a PIL image (the fallback path): the same
        operations in the same order as the fast path, ending in a normalised float tensor."""
        from torchvision.transforms import v2

        mode = {"bilinear": v2.InterpolationMode.BILINEAR, "bicubic": v2.InterpolationMode.BICUBIC}
        steps = [
            v2.RandomResizedCrop(
                self.size, scale=self.scale, ratio=self.ratio, interpolation=mode[self.interpolation], antialias=True
            ),
            v2.RandomHorizontalFlip(self.p_flip),
            v2.RandomApply([v2.ColorJitter(*self.jitter)], p=self.p_jitter),
            v2.RandomGrayscale(self.p_gray),
        ]
        if self.p_blur[view] > 0:
            steps.append(v2.RandomApply([v2.GaussianBlur(self.kernel_size, self.blur_sigma)], p=self.p_blur[view]))
        if self.p_solarize[view] > 0:  # on PIL images the threshold is in 0-255 (128 for 0.5: the same pixels)
            steps.append(v2.RandomSolarize(math.ceil(self.solarize_threshold * 255), p=self.p_solarize[view]))
        steps += [
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(map(float, mean)), list(map(float, std))),
        ]
        return v2.Compose(steps)


# ---- crop parameters ------------------------------------------------------------------------------------------------


def rrc_params(height: int, width: int, scale, ratio, generator: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a RandomResizedCrop of a ``height x width`` image, drawn exactly as torchvision's
    ``RandomResizedCrop.get_params`` draws it (``transforms/transforms.py:929-``, 0.29.1: up to 10 tries of a
    uniform area fraction and a log-uniform aspect ratio, then uniform integer offsets; else the centre crop
    with the ratio clamped), the same draws in the same order, from ``generator`` instead of the global RNG:
    with equal generator states both give the same box."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,), generator=generator).item()
            j = torch.randint(0, width - w + 1, size=(1,), generator=generator).item()
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator determined by (seed, epoch, image index) alone (numpy's ``SeedSequence`` mixes them; index
    -1 is the epoch's shuffle)."""
    a, b = np.random.SeedSequence([seed, epoch, index + 1]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(a) | (int(b) & 0x7FFFFFFF) << 32)


def dct_reduction(boxes, size: int) -> int:
    """The largest of 1, 2, 4, 8 by which the image can be shrunk while decoding with every box still at least
    ``size`` pixels high and wide (so each crop is still downsampled, never upsampled, to ``size``)."""
    r = 1
    while r < 8 and all(min(h, w) >= 2 * r * size for _, _, h, w in boxes):
        r *= 2
    return r


def resized_crops(image: torch.Tensor, boxes, r: int, size: int, interpolation: str = "bilinear") -> list:
    """Crop each (top, left, h, w) box (in full-size pixels) out of ``image`` (uint8 3 x H' x W', decoded at
    1/``r``) and resize it to ``size x size`` (antialiased, uint8 in and out)."""
    _, hh, ww = image.shape
    out = []
    for top, left, h, w in boxes:
        if r == 1:
            t, l, b, rt = top, left, top + h, left + w
        else:
            t, l = min(round(top / r), hh - 1), min(round(left / r), ww - 1)
            b, rt = max(min(round((top + h) / r), hh), t + 1), max(min(round((left + w) / r), ww), l + 1)
        crop = image[None, :, t:b, l:rt]
        out.append(
            torch.nn.functional.interpolate(crop, size=(size, size), mode=interpolation, antialias=True)[0].contiguous()
        )
    return out


class PackedTwoCrops(Dataset):
    """``(view1, view2, label)`` for each image of a pack split: two RandomResizedCrops, uint8 3 x size x size.

    Index it with ``(epoch, index)`` (what :class:`EpochSampler` yields) or a plain index (epoch
    ``self.epoch``); the crops depend only on (``seed``, epoch, index). Safe in DataLoader workers (the pack's
    mmap opens in each).

    ``augment`` (a :class:`TwoViewBatchAugment`): also run the rest of the augmentation here, in the worker, on
    each view alone (a batch of one) with the image's own generator, and return normalised float views. For
    training on a CPU, where the "device" half would otherwise run in the main process alone; on a GPU leave it
    out and augment whole batches on the device.
    """

    def __init__(
        self,
        pack,
        split: str = "train",
        params: AugmentParams | None = None,
        seed: int = 0,
        epoch: int = 0,
        augment: TwoViewBatchAugment | None = None,
    ):
        self.images = pack if isinstance(pack, PackedImages) else PackedImages(pack, split)
        self.params = params or AugmentParams()
        self.seed, self.epoch = int(seed), int(epoch)
        self.labels = self.images.labels
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key):
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        i = int(i)
        p = self.params
        g = item_generator(self.seed, int(epoch), i)
        height, width = (int(v) for v in self.images.sizes[i])
        boxes = [rrc_params(height, width, p.scale, p.ratio, g) for _ in range(2)]
        r = dct_reduction(boxes, p.size)
        hint = (math.ceil(height / r), math.ceil(width / r)) if r > 1 else (0, 0)
        decoded = self.images.decode(i, *hint)
        if r > 1 and decoded.shape[:2] != hint:  # a decoder that shrinks differently: crop the full-size image
            decoded, r = self.images.decode(i), 1
        image = torch.from_numpy(decoded).permute(2, 0, 1)
        a, b = resized_crops(image, boxes, r, p.size, p.interpolation)
        if self.augment is not None:
            a, b = (view(crop[None], g)[0] for view, crop in zip(self.augment.views, (a, b)))
        return a, b, int(self.labels[i])


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` for every image once per epoch, shuffled with (``seed``, epoch) unless
    ``shuffle=False``; call :meth:`set_epoch` before each epoch (persistent workers see the epoch through the
    keys, not through a dataset attribute)."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, int(seed), shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=item_generator(self.seed, self.epoch, -1))
        else:
            order = torch.arange(self.n)
        return ((self.epoch, i) for i in order.tolist())


@dataclass
class TwoViewBatchAugment:
    """The device half of the fast path: ``(views1_uint8, views2_uint8, generator) -> (x1, x2)``, normalised
    float batches; view 1 and view 2 get :meth:`AugmentParams.batched` of view 0 and 1."""

    params: AugmentParams = field(default_factory=AugmentParams)
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def __post_init__(self) -> None:
        self.views = [self.params.batched(v, self.mean, self.std) for v in (0, 1)]

    def __call__(self, v1: torch.Tensor, v2: torch.Tensor, generator: torch.Generator):
        return self.views[0](v1, generator), self.views[1](v2, generator)


def packed_loader(
    pack,
    split: str = "train",
    *,
    params: AugmentParams | None = None,
    batch_size: int = 256,
    workers: int = 8,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = True,
    pin_memory: bool = False,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = None,
    augment_in_workers: TwoViewBatchAugment | None = None,
):
    """A DataLoader of ``(views1_uint8, views2_uint8, labels)`` batches over a pack split, with an
    :class:`EpochSampler` (``loader.sampler.set_epoch(e)`` before each epoch). Apply :class:`TwoViewBatchAugment`
    to each batch on the device; or, for training on a CPU, pass it as ``augment_in_workers`` and get normalised
    float views (see :class:`PackedTwoCrops`)."""
    from torch.utils.data import DataLoader

    ds = PackedTwoCrops(pack, split, params, seed, augment=augment_in_workers)
    extra = {"prefetch_factor": prefetch_factor} if workers > 0 and prefetch_factor else {}
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=EpochSampler(len(ds), seed, shuffle),
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=(workers > 0) if persistent_workers is None else persistent_workers,
        **extra,
    )


# ---- the torchvision fallback ---------------------------------------------------------------------------------------


class TorchvisionTwoViews:
    """A ``transform`` for ``torchvision.datasets.ImageFolder``: a PIL image -> (view 1, view 2), normalised floats."""

    def __init__(self, params: AugmentParams | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        self.params = params or AugmentParams()
        self.transforms = [self.params.torchvision_transform(v, mean, std) for v in (0, 1)]

    def __call__(self, image):
        return self.transforms[0](image), self.transforms[1](image)


class _FolderSamples(Dataset):
    """``(path, label)`` pairs read like ``ImageFolder`` reads them (torchvision's ``default_loader``)."""

    def __init__(self, samples, transform) -> None:
        self.samples = [(str(p), int(y)) for p, y in samples]
        self.targets = [y for _, y in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from torchvision.datasets.folder import default_loader

        path, label = self.samples[i]
        return self.transform(default_loader(path)), label


def torchvision_two_view_dataset(
    root: str | Path | None = None,
    params: AugmentParams | None = None,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    samples=None,
):
    """The fallback's dataset, items ``((view1, view2), label)``: ``torchvision.datasets.ImageFolder(root)``, or,
    given ``samples`` (``(path, label)`` pairs, e.g. one split of
    :func:`~deepaug.domains.vision.imagefolder.image_folder_splits`), those images read the same way."""
    transform = TorchvisionTwoViews(params, mean, std)
    if samples is not None:
        return _FolderSamples(samples, transform)
    from torchvision.datasets import ImageFolder

    return ImageFolder(str(root), transform=transform)
