"""SimCLR's CIFAR augmentations for a whole batch at once, on whatever device the images live on.

Same distributions as the per-image torchvision.transforms.v2 pipeline in ``augmentations.py``
(each image gets its own random parameters):

* RandomResizedCrop(size, scale=(0.2, 1), ratio=(3/4, 4/3)): torchvision's 10-attempt sampler,
  falling back to the centre crop with the ratio clamped, then a bilinear resize (one
  ``grid_sample`` per batch);
* RandomHorizontalFlip(0.5) (folded into the same sampling grid);
* RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), p=0.8), the four adjustments in a random order
  per image, with torchvision's formulas (brightness, contrast around the grey mean, saturation
  against the grey image, hue shift in HSV);
* RandomGrayscale(0.2);
* scaling to [0, 1] and normalisation.

The images stay uint8 on the device; nothing is sent back to the host, nothing synchronises.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

GRAY = (0.2989, 0.587, 0.114)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (GRAY[0] * r + GRAY[1] * g + GRAY[2] * b).unsqueeze(1)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    cr_divisor = torch.where(eqc, ones, cr)
    rc = (maxc - r) / cr_divisor
    gc = (maxc - g) / cr_divisor
    bc = (maxc - b) / cr_divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((h, s, maxc), dim=1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * f)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0)
    mask = i.unsqueeze(1) == torch.arange(6, device=i.device).view(-1, 1, 1)
    a1 = torch.stack((v, q, p, p, t, v), dim=1)
    a2 = torch.stack((t, v, v, q, p, p), dim=1)
    a3 = torch.stack((p, p, t, v, v, q), dim=1)
    a4 = torch.stack((a1, a2, a3), dim=1)  # (B, 3, 6, H, W)
    return torch.einsum("bjhw,bijhw->bihw", mask.to(x.dtype), a4)


def _adjust(x: torch.Tensor, op: int, f: torch.Tensor) -> torch.Tensor:
    """ColorJitter adjustment ``op`` (0 brightness, 1 contrast, 2 saturation, 3 hue), factor per image."""
    f4 = f.view(-1, 1, 1, 1)
    if op == 0:
        return (x * f4).clamp(0, 1)
    if op == 1:
        mean = _grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
        return (f4 * x + (1 - f4) * mean).clamp(0, 1)
    if op == 2:
        return (f4 * x + (1 - f4) * _grayscale(x)).clamp(0, 1)
    hsv = _rgb_to_hsv(x)
    h = torch.remainder(hsv[:, 0] + f.view(-1, 1, 1), 1.0)
    return _hsv_to_rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), dim=1))


def sample_crops(n: int, height: int, width: int, generator: torch.Generator, device,
                 scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), attempts: int = 10):
    """Per-image crop boxes (top, left, h, w) with torchvision's RandomResizedCrop.get_params law."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    target_area = area * torch.empty(n, attempts, device=device).uniform_(scale[0], scale[1], generator=generator)
    aspect = torch.exp(torch.empty(n, attempts, device=device).uniform_(log_ratio[0], log_ratio[1], generator=generator))
    w = torch.round(torch.sqrt(target_area * aspect))
    h = torch.round(torch.sqrt(target_area / aspect))
    ok = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.argmax(ok.to(torch.int8), dim=1)  # first valid attempt (0 if none)
    any_ok = ok.any(dim=1)
    w = w.gather(1, first[:, None]).squeeze(1)
    h = h.gather(1, first[:, None]).squeeze(1)
    # fallback: centre crop with the ratio clamped (torchvision's rule)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fh, fw = height, round(height * ratio[1])
    else:
        fw, fh = width, height
    w = torch.where(any_ok, w, torch.full_like(w, fw))
    h = torch.where(any_ok, h, torch.full_like(h, fh))
    u_top = torch.rand(n, device=device, generator=generator)
    u_left = torch.rand(n, device=device, generator=generator)
    top = torch.where(any_ok, torch.floor(u_top * (height - h + 1)), torch.full_like(h, (height - fh) // 2))
    left = torch.where(any_ok, torch.floor(u_left * (width - w + 1)), torch.full_like(w, (width - fw) // 2))
    return top, left, h, w


class BatchedSimCLRAugment:
    """Call on a uint8 batch (B x C x H x W, any device) -> one augmented, normalised float batch.

    ``generator`` (a ``torch.Generator`` on the images' device) makes it reproducible.
    """

    def __init__(self, size: int, mean, std, scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.1),
                 p_jitter: float = 0.8, p_gray: float = 0.2, p_flip: float = 0.5) -> None:
        self.size = size
        self.mean = torch.as_tensor(list(map(float, mean))).view(1, -1, 1, 1)
        self.std = torch.as_tensor(list(map(float, std))).view(1, -1, 1, 1)
        self.scale = scale
        self.jitter = jitter
        self.p_jitter, self.p_gray, self.p_flip = p_jitter, p_gray, p_flip

    def crop_flip(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, height, width = x.shape
        top, left, h, w = sample_crops(n, height, width, g, x.device, self.scale)
        flip = torch.rand(n, device=x.device, generator=g) < self.p_flip
        sx = w / width
        sy = h / height
        tx = (2 * left + w) / width - 1
        ty = (2 * top + h) / height - 1
        sx = torch.where(flip, -sx, sx)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=torch.float32)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, sy, ty
        grid = F.affine_grid(theta, [n, x.shape[1], self.size, self.size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def color(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        b, c, s, hue = self.jitter
        lows = torch.tensor([1 - b, 1 - c, 1 - s, -hue], device=x.device)
        highs = torch.tensor([1 + b, 1 + c, 1 + s, hue], device=x.device)
        factors = lows + (highs - lows) * torch.rand(n, 4, device=x.device, generator=g)
        order = torch.argsort(torch.rand(n, 4, device=x.device, generator=g), dim=1)  # a random permutation per image
        apply = torch.rand(n, device=x.device, generator=g) < self.p_jitter
        y = x
        for pos in range(4):
            for op in range(4):
                sel = apply & (order[:, pos] == op)
                if y.device.type == "cpu":  # compute only the selected images (no device to sync with)
                    idx = sel.nonzero(as_tuple=True)[0]
                    if idx.numel():
                        y = y.index_copy(0, idx, _adjust(y[idx], op, factors[idx, op]))
                else:  # sync-free on accelerators: compute for all, keep the selected
                    y = torch.where(sel.view(-1, 1, 1, 1), _adjust(y, op, factors[:, op]), y)
        gray = (torch.rand(n, device=x.device, generator=g) < self.p_gray).view(-1, 1, 1, 1)
        return torch.where(gray, _grayscale(y).expand_as(y), y)

    def __call__(self, images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = images_uint8.float().div_(255.0)
        x = self.crop_flip(x, generator)
        x = self.color(x, generator)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)
