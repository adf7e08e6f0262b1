"""A packed image folder (:mod:`deepaug.domains.vision.imagefolder`) seen as a prepared dataset: the same keys
as a prepared ``.npz`` (``x_train``, ``y_train``, ``x_dev``, ..., ``mean``, ``std``, ``classes``), where each
``x_<split>`` is a :class:`CenterCrops` view that decodes on demand, so evaluation and analysis run unchanged
on ImageNet-sized data, and ``pack`` names the folder the training reads its random crops from
(:mod:`deepaug.domains.vision.fast_loader`).

Evaluation views are the standard ImageNet ones: the shorter side resized to ``size * 256 / 224`` (256 at 224,
torchvision's ``Resize(256)``), then the centre ``size x size`` crop (``CenterCrop(224)``), as solo-learn's
linear evaluation does (``solo/data/classification_dataloader.py``, ``T.Resize(256)``, ``T.CenterCrop(224)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepaug.domains.vision.imagefolder import MANIFEST, PackedImages, read_manifest

SPLITS = ("train", "dev", "test")


def is_pack(path: str | Path) -> bool:
    """A pack's manifest (the workflow's data file of an image-folder dataset) or its folder."""
    path = Path(path)
    return path.name == MANIFEST or (path.is_dir() and (path / MANIFEST).is_file())


def pack_folder(path: str | Path) -> Path:
    path = Path(path)
    return path.parent if path.name == MANIFEST else path


class CenterCrops:
    """Evaluation views of one split: ``len``, ``shape`` and ``view[i:j]`` / ``view[indices]`` -> uint8
    N x size x size x 3 (decoded, resized, centre-cropped on each access)."""

    def __init__(self, pack: str | Path, split: str, size: int = 224) -> None:
        self.images = PackedImages(pack, split)
        self.size = int(size)
        self.resize_to = round(self.size * 256 / 224)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), self.size, self.size, 3)

    def _one(self, i: int) -> np.ndarray:
        import torch.nn.functional as F

        h, w = (int(v) for v in self.images.sizes[i])
        scale = self.resize_to / min(h, w)
        decoded = self.images.decode(i, min_height=int(h * scale), min_width=int(w * scale))
        x = torch.from_numpy(decoded).permute(2, 0, 1)[None].float()
        nh, nw = max(self.size, round(h * scale)), max(self.size, round(w * scale))
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        top, left = (nh - self.size) // 2, (nw - self.size) // 2
        crop = x[0, :, top : top + self.size, left : left + self.size].round().clamp(0, 255).to(torch.uint8)
        return crop.permute(1, 2, 0).numpy()

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            rows = range(*key.indices(len(self)))
        else:
            rows = np.asarray(key).reshape(-1).tolist()
        if not len(rows):
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        return np.stack([self._one(int(i)) for i in rows])


def load_pack(path: str | Path, size: int = 224) -> dict:
    """The prepared-dataset view of the pack at ``path`` (its folder or its manifest)."""
    folder = pack_folder(path)
    manifest = read_manifest(folder)
    data: dict = {
        "pack": folder,
        "mean": np.asarray(manifest["mean"], dtype=np.float32),
        "std": np.asarray(manifest["std"], dtype=np.float32),
        "classes": np.asarray(manifest["classes"]),
    }
    for split in SPLITS:
        view = CenterCrops(folder, split, size)
        data[f"x_{split}"] = view
        data[f"y_{split}"] = np.asarray(view.images.labels, dtype=np.int64)
    return data


class PackedPIL(torch.utils.data.Dataset):
    """``(transform(PIL image), label)`` per image of a pack split, decoded with PIL (torchvision's way)."""

    def __init__(self, images: PackedImages, transform) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        import io

        from PIL import Image

        image = Image.open(io.BytesIO(self.images.raw(int(i)))).convert("RGB")
        return self.transform(image), int(self.images.labels[int(i)])
