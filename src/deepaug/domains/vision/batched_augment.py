"""SimCLR's CIFAR augmentations for a whole batch at once, on whatever device the images live on.

Same distributions as the per-image torchvision.transforms.v2 pipeline in ``augmentations.py``
(each image gets its own random parameters):

* RandomResizedCrop(size, scale=(0.2, 1), ratio=(3/4, 4/3)): torchvision's 10-attempt sampler,
  falling back to the centre crop with the ratio clamped, then torchvision's antialiased bilinear
  resize of the crop, pixel for pixel (:func:`resize_weights`; two batched matrix products);
* RandomHorizontalFlip(0.5) (folded into the same resize matrices);
* RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), p=0.8), the four adjustments in a random order
  per image, with torchvision's formulas (brightness, contrast around the grey mean, saturation
  against the grey image, hue shift in HSV);
* RandomGrayscale(0.2);
* scaling to [0, 1] and normalisation.

The images stay uint8 on the device; nothing is sent back to the host, nothing synchronises.

The crop works on the float image (uint8 / 255) and equals torchvision's float-path ``resized_crop``
at every pixel, borders included (to float32 rounding, tests/domains/vision/test_batched_augment.py).
The per-image pipeline crops the uint8 image instead, so its crop comes out in whole uint8 levels:
on CUDA torchvision interpolates in float32 and rounds (within 0.5/255 of the float result); on a
CPU with AVX2 it uses int16 fixed-point weights (measured: within 1/255, 16% of pixels differ from
the rounded float result).
"""

from __future__ import annotations

import math

import torch

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


def sample_crops(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    device,
    scale=(0.2, 1.0),
    ratio=(3 / 4, 4 / 3),
    attempts: int = 10,
):
    """Per-image crop boxes (top, left, h, w) with torchvision's RandomResizedCrop.get_params law."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    target_area = area * torch.empty(n, attempts, device=device).uniform_(scale[0], scale[1], generator=generator)
    aspect = torch.exp(
        torch.empty(n, attempts, device=device).uniform_(log_ratio[0], log_ratio[1], generator=generator)
    )
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


def resize_weights(start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int) -> torch.Tensor:
    """Per-image resize matrices (n x out_size x in_size, float32) of torchvision's resized crop along one axis.

    Row ``i`` of image ``b`` holds the weights that
    ``torchvision.transforms.v2.functional.resized_crop(..., interpolation=BILINEAR, antialias=True)`` gives
    the input pixels ``0 .. in_size-1`` for output pixel ``i``, when the crop on this axis is
    ``[start[b], start[b] + length[b])``: torchvision 0.29.1 crops first and resizes the crop alone
    (``transforms/v2/functional/_geometry.py:2738-2739``, ``resized_crop_image``), so pixels outside the
    crop get weight 0, also at its border. The resize is ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False, antialias=True)`` on float images (same file, ``resize_image``, lines 344-350;
    ``RandomResizedCrop`` passes ``antialias=True`` by default, ``_geometry.py:261,318-321``). Its weights are
    PyTorch's ``HelperInterpBase::_compute_indices_min_size_weights_aa`` with ``HelperInterpLinear::aa_filter``
    (``aten/src/ATen/native/cpu/UpSampleKernel.cpp``; the CUDA kernel ``upsample_bilinear2d_aa`` computes the
    same): ``scale = in / out`` (float32), ``support = scale`` if ``scale >= 1`` else 1, ``center = scale *
    (i + 0.5)``, weight of crop pixel ``j`` = ``max(0, 1 - |(j - center + 0.5) * invscale|)`` with ``invscale =
    1 / scale`` if ``scale >= 1`` else 1, over the taps ``[center - support, center + support)`` clipped to the
    crop, normalised to sum 1. Upsampling (``scale < 1``) is plain bilinear with the edge clamped to the
    crop; downsampling widens the triangle to ``scale`` pixels (the antialiasing).
    """
    dev = start.device
    length = length.to(torch.float32)
    scale = length / out_size  # area_pixel_compute_scale<float>: float(input_size) / output_size
    invscale = torch.where(scale >= 1.0, 1.0 / scale, torch.ones_like(scale))
    center = scale[:, None] * (torch.arange(out_size, device=dev, dtype=torch.float32) + 0.5)  # (n, out)
    j = torch.arange(in_size, device=dev, dtype=torch.float32) - start.to(torch.float32)[:, None]  # crop coords (n, in)
    # the filter is non-zero exactly on the taps PyTorch visits (|j + 0.5 - center| < support), so no window is needed
    w = (1.0 - (((j[:, None, :] - center[:, :, None]) + 0.5) * invscale[:, None, None]).abs()).clamp_min(0.0)
    w = w * ((j >= 0) & (j < length[:, None])).to(torch.float32)[:, None, :]  # never read outside the crop
    return w / w.sum(dim=2, keepdim=True)


def resized_crop_flip(x: torch.Tensor, top, left, h, w, flip, size: int) -> torch.Tensor:
    """Each image ``x[b]`` (float, n x C x H x W) cropped to ``(top, left, h, w)[b]``, resized to ``size x size`` as
    torchvision's antialiased bilinear ``resized_crop`` does, and flipped left-right where ``flip[b]``.

    ``out = Wy @ x @ Wx^T`` per image and channel (:func:`resize_weights`), as two ``bmm`` over the batch
    (the channels folded into the matrices): the flip reverses the rows of ``Wx`` (``horizontal_flip_image``
    is ``image.flip(-1)``, ``functional/_geometry.py:67-68``). Matrix products run in the default float32
    precision; with TF32 matmuls enabled on CUDA (``torch.backends.cuda.matmul.allow_tf32``) they would
    carry TF32's ~1e-3 relative error.
    """
    n, c, height, width = x.shape
    wy = resize_weights(top, h, height, size)
    wx = resize_weights(left, w, width, size)
    wx = torch.where(flip.view(-1, 1, 1), wx.flip(1), wx)
    rows = torch.bmm(wy, x.transpose(1, 2).reshape(n, height, c * width))  # (n, size, C * W)
    rows = rows.view(n, size, c, width).transpose(1, 2).reshape(n, c * size, width)
    return torch.bmm(rows, wx.transpose(1, 2)).view(n, c, size, size)


class BatchedCropFlip:
    """RandomResizedCrop + RandomHorizontalFlip(0.5), scaling to [0, 1] and normalisation, for a uint8 batch:
    SupContrast's linear-evaluation transform (``main_ce.py:130-135``, imported by ``main_linear.py:11``), and
    the geometric half of :class:`BatchedSimCLRAugment`.

    ``generator`` (a ``torch.Generator`` on the images' device) makes it reproducible.
    """

    def __init__(self, size: int, mean, std, scale=(0.2, 1.0), p_flip: float = 0.5) -> None:
        self.size = size
        self.mean = torch.as_tensor(list(map(float, mean))).view(1, -1, 1, 1)
        self.std = torch.as_tensor(list(map(float, std))).view(1, -1, 1, 1)
        self.scale = scale
        self.p_flip = p_flip

    def crop_flip(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, height, width = x.shape
        top, left, h, w = sample_crops(n, height, width, g, x.device, self.scale)
        flip = torch.rand(n, device=x.device, generator=g) < self.p_flip
        return resized_crop_flip(x, top, left, h, w, flip, self.size)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def __call__(self, images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.normalise(self.crop_flip(images_uint8.float().div_(255.0), generator))


class BatchedSimCLRAugment(BatchedCropFlip):
    """Call on a uint8 batch (B x C x H x W, any device) -> one augmented, normalised float batch.

    ``generator`` (a ``torch.Generator`` on the images' device) makes it reproducible.
    """

    def __init__(
        self,
        size: int,
        mean,
        std,
        scale=(0.2, 1.0),
        jitter=(0.4, 0.4, 0.4, 0.1),
        p_jitter: float = 0.8,
        p_gray: float = 0.2,
        p_flip: float = 0.5,
    ) -> None:
        super().__init__(size, mean, std, scale, p_flip)
        self.jitter = jitter
        self.p_jitter, self.p_gray = p_jitter, p_gray

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
        x = self.crop_flip(images_uint8.float().div_(255.0), generator)
        return self.normalise(self.color(x, generator))


# ---- ImageNet-style views: blur and solarisation on fixed-size crops made in the DataLoader workers ----------------


def blur_kernel_size(size: int) -> int:
    """SimCLR's Gaussian-blur kernel for ``size``-pixel crops: 10% of the side, made odd (23 at 224).

    SimCLR passes ``kernel_size=height // 10`` (google-research/simclr ``data_util.py:413``, commit 383d414) and
    builds a ``2 * radius + 1`` kernel with ``radius = kernel_size // 2`` (``data_util.py:343-344``); solo-learn's
    DALI blur uses ``window_size=23`` at 224 (vturrisi/solo-learn ``solo/data/dali_dataloader.py:134``, commit
    9187ea3). torchvision's ``GaussianBlur`` needs an odd kernel, which this is.
    """
    return 2 * ((size // 10) // 2) + 1


def gaussian_kernels(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """One normalised 1-D Gaussian per image (n x kernel_size, float32): torchvision's ``_get_gaussian_kernel1d``
    (``transforms/v2/functional/_misc.py:86-90``, 0.29.1): ``softmax(-(x / sigma)^2)`` over ``kernel_size`` points
    ``x`` spaced ``1 / sqrt(2)`` apart, i.e. ``exp(-k^2 / (2 sigma^2))`` at the integer offsets ``k``."""
    half = kernel_size // 2
    k = torch.arange(-half, half + 1, device=sigma.device, dtype=torch.float32)
    return torch.softmax(-(k[None, :] ** 2) / (2.0 * sigma.to(torch.float32)[:, None] ** 2), dim=1)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Each float image ``x[b]`` (n x C x H x W) blurred with its own ``sigma[b]``, as torchvision's
    ``gaussian_blur(image, [k, k], [sigma, sigma])`` does (reflect padding of ``k // 2`` on every side, then the
    Gaussian; ``transforms/v2/functional/_misc.py:146-155``), as two 1-D depthwise convolutions (the 2-D kernel
    is their outer product, ``_get_gaussian_kernel2d``): 2k instead of k^2 multiplications per pixel."""
    n, c, h, w = x.shape
    pad = kernel_size // 2
    if pad >= min(h, w):
        raise ValueError(f"a {kernel_size}-pixel blur needs images larger than {pad} pixels; got {h} x {w}")
    k = gaussian_kernels(sigma, kernel_size).repeat_interleave(c, dim=0)  # (n * c, k): one per image and channel
    y = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect").reshape(1, n * c, h + 2 * pad, w + 2 * pad)
    y = torch.nn.functional.conv2d(y, k.view(n * c, 1, 1, kernel_size), groups=n * c)  # along the rows
    y = torch.nn.functional.conv2d(y, k.view(n * c, 1, kernel_size, 1), groups=n * c)  # along the columns
    return y.view(n, c, h, w)


def solarize(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """torchvision's ``solarize`` of float images in [0, 1]: every value ``>= threshold`` becomes ``1 - value``
    (``transforms/v2/functional/_color.py:497-501``, ``invert`` of a float image is ``1 - x``)."""
    return torch.where(x >= threshold, 1.0 - x, x)


def hue_shift(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_hue`` of float images in [0, 1] (per-image ``f`` in [-0.5, 0.5]), in fewer passes
    than :func:`_adjust`'s HSV round trip: the hue from the same case analysis as ``_rgb_to_hsv``
    (``transforms/v2/functional/_color.py``), shifted, and the RGB channels from the closed form of HSV -> RGB,
    ``max - chroma * clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6 h) mod 6`` for ``n`` = 5, 3, 1 (value and
    chroma are what a hue shift keeps). Equal to torchvision to float32 rounding (about 1e-6,
    tests/domains/vision/test_fast_loader.py); about 4x faster on a CPU (measured, 16 images of 224 x 224)."""
    r, g, b = x.unbind(1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    chroma = maxc - torch.minimum(torch.minimum(r, g), b)
    safe = torch.where(chroma == 0, torch.ones_like(chroma), chroma)
    h6 = torch.where(
        maxc == r, (g - b) / safe, torch.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    )  # the hue in sixths of a turn, in (-1, 5]
    h6 = torch.remainder(h6 + 6.0 * f.view(-1, 1, 1), 6.0)
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h6 + n, 6.0)
        out.append(maxc - chroma * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return torch.stack(out, dim=1)


def adjust_fast(x: torch.Tensor, op: int, f: torch.Tensor) -> torch.Tensor:
    """:func:`_adjust` with the hue by :func:`hue_shift`."""
    return hue_shift(x, f) if op == 3 else _adjust(x, op, f)


class BatchedColorAugment(BatchedSimCLRAugment):
    """The non-geometric half of an ImageNet SimCLR/BYOL view, for a uint8 batch of crops that already have their
    final size (B x 3 x S x S, made by the DataLoader workers of :mod:`deepaug.domains.vision.fast_loader`):

    RandomHorizontalFlip(p_flip); RandomApply(ColorJitter(*jitter), p_jitter), the four adjustments in a random
    order per image with torchvision's formulas (:func:`_adjust`, the hue by :func:`hue_shift`);
    RandomGrayscale(p_gray); RandomApply(GaussianBlur(kernel_size, blur_sigma), p_blur), sigma U(blur_sigma) per
    image; RandomSolarize(threshold, p_solarize); scaling to [0, 1] first and normalisation last. The order is
    solo-learn's (``solo/data/pretrain_dataloader.py:235-263``: jitter, grayscale, blur, solarisation; its flip
    comes last, and a flip commutes with all of them).

    Every image gets its own parameters, drawn for the whole batch up front from ``generator`` (on the images'
    device; :meth:`draw`, in this order: flip, jitter factors, jitter order, jitter applied, grayscale, blur
    sigma, blur applied, solarisation applied; blur and solarisation draw nothing when their probability is 0).
    On an accelerator every step runs on the whole batch and ``where`` keeps the selected images (no host sync);
    on a CPU each image runs only its own steps, one image at a time (the same result, to float rounding: no
    work on the images a step leaves alone, no batch-sized copies).
    """

    def __init__(
        self,
        mean,
        std,
        jitter=(0.8, 0.8, 0.8, 0.2),
        p_jitter: float = 0.8,
        p_gray: float = 0.2,
        p_flip: float = 0.5,
        p_blur: float = 0.5,
        kernel_size: int = 23,
        blur_sigma=(0.1, 2.0),
        p_solarize: float = 0.0,
        threshold: float = 0.5,
    ) -> None:
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"the blur kernel must be odd and positive (torchvision's rule), got {kernel_size}")
        super().__init__(0, mean, std, jitter=jitter, p_jitter=p_jitter, p_gray=p_gray, p_flip=p_flip)
        self.p_blur, self.kernel_size, self.blur_sigma = p_blur, kernel_size, tuple(blur_sigma)
        self.p_solarize, self.threshold = p_solarize, threshold

    def draw(self, n: int, device, g: torch.Generator) -> dict[str, torch.Tensor]:
        """Every random parameter of ``n`` images (see the class docstring for the order)."""

        def u(*shape):
            return torch.rand(*shape, device=device, generator=g)

        d = {"flip": u(n) < self.p_flip}
        b, c, s, hue = self.jitter
        lows = torch.tensor([1 - b, 1 - c, 1 - s, -hue], device=device)
        highs = torch.tensor([1 + b, 1 + c, 1 + s, hue], device=device)
        d["factors"] = lows + (highs - lows) * u(n, 4)
        d["order"] = torch.argsort(u(n, 4), dim=1)  # a random permutation of the four adjustments per image
        d["jitter"] = u(n) < self.p_jitter
        d["gray"] = u(n) < self.p_gray
        if self.p_blur > 0:
            lo, hi = self.blur_sigma
            d["sigma"] = lo + (hi - lo) * u(n)
            d["blur"] = u(n) < self.p_blur
        if self.p_solarize > 0:
            d["solarize"] = u(n) < self.p_solarize
        return d

    def apply(self, x: torch.Tensor, d: dict[str, torch.Tensor], per_image: bool | None = None) -> torch.Tensor:
        """The drawn steps on float images ``x`` in [0, 1] (not normalised). ``per_image``: one image at a time
        (default on a CPU) or whole-batch ``where`` (default elsewhere)."""
        if per_image is None:
            per_image = x.device.type == "cpu"
        if per_image:
            return self._apply_per_image(x, d)
        keep = lambda key: d[key].view(-1, 1, 1, 1)  # noqa: E731
        x = torch.where(keep("flip"), x.flip(-1), x)
        for pos in range(4):
            for op in range(4):
                sel = d["jitter"] & (d["order"][:, pos] == op)
                x = torch.where(sel.view(-1, 1, 1, 1), adjust_fast(x, op, d["factors"][:, op]), x)
        x = torch.where(keep("gray"), _grayscale(x).expand_as(x), x)
        if "blur" in d:
            x = torch.where(keep("blur"), gaussian_blur(x, d["sigma"], self.kernel_size), x)
        if "solarize" in d:
            x = torch.where(keep("solarize"), solarize(x, self.threshold), x)
        return x

    def _apply_per_image(self, x: torch.Tensor, d: dict[str, torch.Tensor]) -> torch.Tensor:
        flags = {k: d[k].tolist() for k in ("flip", "jitter", "gray", "blur", "solarize") if k in d}
        order = d["order"].tolist()
        out = torch.empty_like(x)
        for i in range(x.shape[0]):
            y = x[i : i + 1]
            if flags["flip"][i]:
                y = y.flip(-1)
            if flags["jitter"][i]:
                for op in order[i]:
                    y = adjust_fast(y, op, d["factors"][i : i + 1, op])
            if flags["gray"][i]:
                y = _grayscale(y).expand_as(y)
            if "blur" in flags and flags["blur"][i]:
                y = gaussian_blur(y, d["sigma"][i : i + 1], self.kernel_size)
            if "solarize" in flags and flags["solarize"][i]:
                y = solarize(y, self.threshold)
            out[i] = y[0]
        return out

    def __call__(self, images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = images_uint8.float().div_(255.0)
        return self.normalise(self.apply(x, self.draw(x.shape[0], x.device, generator)))
