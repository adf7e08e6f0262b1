"""The batched (on-device) SimCLR augmentation draws from the same distributions as torchvision's."""

import math

import numpy as np
import pytest
import torch
from torchvision import transforms as T1
from torchvision.transforms.v2 import functional as TF

from deepaug.domains.vision.augmentations import simclr_transform
from deepaug.domains.vision.batched_augment import BatchedSimCLRAugment, _adjust, sample_crops
from deepaug.domains.vision.data import load_prepared


def test_crop_parameters_follow_torchvisions_law():
    n, h, w = 4000, 32, 32
    torch.manual_seed(0)
    img = torch.zeros(3, h, w)
    ref = torch.tensor([T1.RandomResizedCrop.get_params(img, (0.2, 1.0), (3 / 4, 4 / 3)) for _ in range(n)], dtype=torch.float)
    top, left, ch, cw = sample_crops(n, h, w, torch.Generator().manual_seed(1), "cpu")
    ours = torch.stack([top, left, ch, cw], 1)

    def stats(p):
        area = p[:, 2] * p[:, 3] / (h * w)
        return torch.stack([area.mean(), area.std(), torch.log(p[:, 3] / p[:, 2]).mean(), torch.log(p[:, 3] / p[:, 2]).std(),
                            (p[:, 0] / (h - p[:, 2] + 1)).mean(), (p[:, 1] / (w - p[:, 3] + 1)).mean()])

    torch.testing.assert_close(stats(ours), stats(ref), atol=0.02, rtol=0)
    assert (ours[:, 0] + ours[:, 2] <= h).all() and (ours[:, 1] + ours[:, 3] <= w).all()


@pytest.mark.parametrize("op,fn,factor", [(0, TF.adjust_brightness, 1.3), (1, TF.adjust_contrast, 0.7),
                                          (2, TF.adjust_saturation, 1.4), (3, TF.adjust_hue, -0.08)])
def test_colour_adjustments_equal_torchvision(op, fn, factor):
    x = torch.rand(5, 3, 9, 9, generator=torch.Generator().manual_seed(op))
    torch.testing.assert_close(_adjust(x, op, torch.full((5,), factor)), fn(x, factor), atol=1e-5, rtol=0)


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
        return torch.stack([x.mean(), x.std(), per_image_mean.std(), (channel_spread < 1e-3).float().mean(),
                            x[:, :, :, :8].mean() - x[:, :, :, 8:].mean()])

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
