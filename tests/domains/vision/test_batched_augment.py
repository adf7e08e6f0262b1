"""The batched (on-device) SimCLR augmentation draws from the same distributions as torchvision's."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision import transforms as T1
from torchvision.transforms.v2 import functional as TF

from deepaug.domains.vision.augmentations import simclr_transform
from deepaug.domains.vision.batched_augment import (
    BatchedCropFlip,
    BatchedSimCLRAugment,
    _adjust,
    resized_crop_flip,
    sample_crops,
)
from deepaug.domains.vision.data import load_prepared


def test_crop_parameters_follow_torchvisions_law():
    n, h, w = 4000, 32, 32
    torch.manual_seed(0)
    img = torch.zeros(3, h, w)
    ref = torch.tensor(
        [T1.RandomResizedCrop.get_params(img, (0.2, 1.0), (3 / 4, 4 / 3)) for _ in range(n)], dtype=torch.float
    )
    top, left, ch, cw = sample_crops(n, h, w, torch.Generator().manual_seed(1), "cpu")
    ours = torch.stack([top, left, ch, cw], 1)

    def stats(p):
        area = p[:, 2] * p[:, 3] / (h * w)
        return torch.stack(
            [
                area.mean(),
                area.std(),
                torch.log(p[:, 3] / p[:, 2]).mean(),
                torch.log(p[:, 3] / p[:, 2]).std(),
                (p[:, 0] / (h - p[:, 2] + 1)).mean(),
                (p[:, 1] / (w - p[:, 3] + 1)).mean(),
            ]
        )

    torch.testing.assert_close(stats(ours), stats(ref), atol=0.02, rtol=0)
    assert (ours[:, 0] + ours[:, 2] <= h).all() and (ours[:, 1] + ours[:, 3] <= w).all()


@pytest.mark.parametrize(
    "op,fn,factor",
    [
        (0, TF.adjust_brightness, 1.3),
        (1, TF.adjust_contrast, 0.7),
        (2, TF.adjust_saturation, 1.4),
        (3, TF.adjust_hue, -0.08),
    ],
)
def test_colour_adjustments_equal_torchvision(op, fn, factor):
    x = torch.rand(5, 3, 9, 9, generator=torch.Generator().manual_seed(op))
    torch.testing.assert_close(_adjust(x, op, torch.full((5,), factor)), fn(x, factor), atol=1e-5, rtol=0)


# (top, left, height, width, output size) on a 32 x 32 image
CROPS = {
    "identity": (0, 0, 32, 32, 32),
    "upsampled, inside": (3, 5, 10, 14, 32),
    "upsampled, top-left corner": (0, 0, 7, 9, 32),
    "upsampled, bottom-right corner": (25, 27, 7, 5, 32),
    "full-width strip": (11, 0, 6, 32, 32),
    "downsampled (antialiased)": (4, 2, 20, 28, 16),
    "downsampled, whole image": (0, 0, 32, 32, 12),
    "non-square, up in one axis, down in the other": (1, 0, 31, 17, 24),
    "upsampled, touching the right edge": (10, 3, 13, 29, 40),
}


def _clamped_grid_sample(x, top, left, h, w, size):
    """The previous batched crop: ``grid_sample`` over the whole image with the crop box as an affine map
    (border padding), which blends pixels from outside the crop into its border rows and columns."""
    n, _, height, width = x.shape
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w / width, (2 * left + w) / width - 1
    theta[:, 1, 1], theta[:, 1, 2] = h / height, (2 * top + h) / height - 1
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@pytest.mark.parametrize("crop", CROPS.values(), ids=list(CROPS))
def test_resized_crop_equals_torchvision_at_every_pixel(crop):
    """Float images in [0, 1] (the batched pipeline scales before cropping): every output pixel, borders
    included, within 1e-5 of torchvision's ``resized_crop`` (bilinear, antialias=True, the tensor path of
    ``v2.RandomResizedCrop``), flipped or not, on uniform noise (the worst case for the borders)."""
    top, left, h, w, size = crop
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(sum(crop)))
    flip = torch.tensor([False, True] * 3)
    ref = TF.resized_crop(x, top, left, h, w, [size, size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    ref = torch.where(flip.view(-1, 1, 1, 1), TF.horizontal_flip(ref), ref)
    full = lambda v: torch.full((6,), float(v))  # noqa: E731
    ours = resized_crop_flip(x, full(top), full(left), full(h), full(w), flip, size)
    assert ours.shape == ref.shape == (6, 3, size, size)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    if crop != CROPS["identity"]:  # the tolerance tells the two samplers apart: the old one misses by > 0.1
        old = _clamped_grid_sample(x, full(top), full(left), full(h), full(w), size)
        assert (old - torch.where(flip.view(-1, 1, 1, 1), TF.horizontal_flip(ref), ref)).abs().max() > 0.1


def test_resized_crop_of_a_non_square_image():
    """A 20 x 36 image (rows and columns of different lengths) cropped at its bottom-right corner and inside."""
    x = torch.rand(4, 3, 20, 36, generator=torch.Generator().manual_seed(1))
    flip = torch.tensor([False, True, True, False])
    for top, left, h, w, size in [(13, 30, 7, 6, 16), (2, 4, 18, 25, 10)]:
        ref = TF.resized_crop(x, top, left, h, w, [size, size], antialias=True)
        ref = torch.where(flip.view(-1, 1, 1, 1), TF.horizontal_flip(ref), ref)
        full = lambda v: torch.full((4,), float(v))  # noqa: E731
        torch.testing.assert_close(
            resized_crop_flip(x, full(top), full(left), full(h), full(w), flip, size), ref, atol=1e-5, rtol=0
        )


def test_crop_flip_applies_the_sampled_boxes_like_torchvision():
    """The whole geometric step (per-image boxes from the generator, then flips) equals torchvision's
    resized_crop + horizontal_flip with the same boxes, image by image, every pixel."""
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    aug = BatchedCropFlip(32, [0.0] * 3, [1.0] * 3)
    ours = aug(x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the same draws, in the same order
    top, left, h, w = (v.long().tolist() for v in sample_crops(64, 32, 32, g, "cpu", aug.scale))
    flip = (torch.rand(64, generator=g) < 0.5).tolist()
    assert 5 < sum(flip) < 59 and len({(a, b) for a, b in zip(h, w)}) > 30
    xf = x.float() / 255
    for i in range(64):
        ref = TF.resized_crop(xf[i], top[i], left[i], h[i], w[i], [32, 32], antialias=True)
        torch.testing.assert_close(ours[i], TF.horizontal_flip(ref) if flip[i] else ref, atol=1e-5, rtol=0)


def test_output_statistics_match_the_per_image_pipeline(digits_npz):
    d = load_prepared(digits_npz)
    # the real digits, each tinted with its own colour so that colour jitter and grayscale matter
    tint = torch.rand(600, 3, 1, 1, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.2
    images = (torch.from_numpy(d["x_train"][:600]).permute(0, 3, 1, 2).float() * tint).round().to(torch.uint8)
    mean, std = [0.3] * 3, [0.3] * 3
    torch.manual_seed(0)
    ref_tf = simclr_transform(16, mean, std)
    ref = torch.stack([ref_tf(img) for _ in range(4) for img in images])
    batched = BatchedSimCLRAugment(16, mean, std)
    g = torch.Generator().manual_seed(0)
    ours = torch.cat([batched(images, g) for _ in range(4)])

    def summary(x):
        per_image_mean = x.mean(dim=(1, 2, 3))
        channel_spread = x.std(dim=1).mean(dim=(1, 2))  # 0 for grey images
        return torch.stack(
            [
                x.mean(),
                x.std(),
                per_image_mean.std(),
                (channel_spread < 1e-3).float().mean(),
                x[:, :, :, :8].mean() - x[:, :, :, 8:].mean(),
            ]
        )

    s_ref, s_ours = summary(ref), summary(ours)
    torch.testing.assert_close(s_ours, s_ref, atol=0.06, rtol=0.06)
    assert abs(float(s_ours[3]) - 0.2) < 0.05  # grayscale with p = 0.2


def test_reproducible_with_a_generator():
    x = torch.randint(0, 256, (8, 3, 12, 12), dtype=torch.uint8)
    aug = BatchedSimCLRAugment(12, [0.5] * 3, [0.2] * 3)
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (8, 3, 12, 12) and a.dtype == torch.float32 and math.isfinite(float(a.sum()))
    assert np.isfinite(a.numpy()).all()
