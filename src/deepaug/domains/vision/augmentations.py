"""SimCLR's CIFAR input augmentations (torchvision.transforms.v2), one image at a time."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2


def simclr_transform(size: int, mean, std, scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.1)) -> v2.Compose:
    """Random resized crop (SupContrast CIFAR: 0.2-1), flip, colour jitter (0.4/0.4/0.4/0.1, p 0.8), grayscale
    (p 0.2): SupContrast's ``main_supcon.py`` train transform."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=tuple(scale), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(*jitter)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(map(float, mean)), list(map(float, std))),
        ]
    )


def eval_transform(mean, std) -> v2.Compose:
    return v2.Compose(
        [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(map(float, mean)), list(map(float, std)))]
    )


class TwoViews(Dataset):
    """Two independently augmented views of each uint8 image (N x H x W x C array)."""

    def __init__(self, images, transform) -> None:
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        img = self.images[i]
        return self.transform(img), self.transform(img)
