"""The fast two-view path: crop law (torchvision's, draw for draw), reproducibility, DCT-shrunk decoding, the batched
blur / solarisation / hue against torchvision, and the torchvision fallback built from the same numbers."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

from deepaug.bench.data import make_jpeg_folder, synthetic_photo
from deepaug.domains.vision.batched_augment import (
    BatchedColorAugment,
    blur_kernel_size,
    gaussian_blur,
    hue_shift,
    solarize,
)
from deepaug.domains.vision.fast_loader import (
    AugmentParams,
    EpochSampler,
    PackedTwoCrops,
    TwoViewBatchAugment,
    dct_reduction,
    item_generator,
    packed_loader,
    resized_crops,
    rrc_params,
    torchvision_two_view_dataset,
)
from deepaug.domains.vision.imagefolder import PackedImages, pack_image_folder

SMALL = AugmentParams(size=32)  # 32-pixel views keep the tests fast; kernel 3 by SimCLR's rule


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    root = make_jpeg_folder(tmp_path_factory.mktemp("jpegs") / "imgs", 24, 3, height=60, width=80)
    return pack_image_folder(root, tmp_path_factory.mktemp("packs") / "p", workers=0, val_fraction=0.25)


@pytest.mark.parametrize("shape", [(375, 500), (500, 333), (64, 64), (20, 400), (400, 20), (3, 3)])
def test_crop_boxes_are_torchvisions_draw_for_draw(shape):
    """Same generator state, same box, including the fallback (extreme aspect ratios) and tiny images."""
    h, w = shape
    img = torch.empty(3, h, w)
    for seed in range(150):
        torch.manual_seed(seed)
        ref = RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
        assert rrc_params(h, w, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(seed)) == ref


def test_blur_kernel_follows_simclr():
    assert blur_kernel_size(224) == 23 and blur_kernel_size(96) == 9 and blur_kernel_size(32) == 3
    assert AugmentParams().kernel_size == 23 and SMALL.kernel_size == 3


@pytest.mark.parametrize("kernel", [3, 9, 23])
def test_batched_blur_equals_torchvision_per_image(kernel):
    x = torch.rand(5, 3, 30, 34, generator=torch.Generator().manual_seed(kernel))
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.7, 2.0])
    ours = gaussian_blur(x, sigma, kernel)
    for i in range(5):
        ref = TF.gaussian_blur(x[i], [kernel, kernel], [float(sigma[i])] * 2)
        torch.testing.assert_close(ours[i], ref, atol=1e-5, rtol=0)


def test_solarize_and_hue_equal_torchvision():
    x = torch.rand(6, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    x[0, :, :3] = 0.5  # grey pixels (no hue)
    x[1, 1] = x[1, 0]  # ties between the largest channels
    torch.testing.assert_close(solarize(x, 0.5), TF.solarize(x, 0.5), atol=0, rtol=0)
    f = torch.tensor([-0.5, -0.2, 0.0, 0.05, 0.3, 0.5])
    ref = torch.stack([TF.adjust_hue(x[i], float(f[i])) for i in range(6)])
    torch.testing.assert_close(hue_shift(x, f), ref, atol=1e-5, rtol=0)


def test_color_augment_applies_blur_then_solarise_like_torchvision():
    """p = 1 for blur and solarisation, a fixed sigma, nothing else: torchvision's ops in solo-learn's order."""
    x = torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    aug = BatchedColorAugment(
        [0.0] * 3,
        [1.0] * 3,
        p_jitter=0,
        p_gray=0,
        p_flip=0,
        p_blur=1,
        kernel_size=5,
        blur_sigma=(1.3, 1.3),
        p_solarize=1,
    )
    ours = aug(x, torch.Generator().manual_seed(0))
    ref = TF.solarize(TF.gaussian_blur(x.float() / 255, [5, 5], [1.3, 1.3]), 0.5)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_per_image_and_whole_batch_paths_agree():
    """The CPU path (one image at a time) and the accelerator path (whole-batch where) give the same images."""
    aug = AugmentParams.byol(size=16).batched(1, [0.4] * 3, [0.2] * 3)
    x = torch.rand(32, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    d = aug.draw(32, "cpu", torch.Generator().manual_seed(3))
    assert 0 < int(d["solarize"].sum()) < 32 and 0 < int(d["blur"].sum()) < 32 and 0 < int(d["jitter"].sum()) < 32
    torch.testing.assert_close(aug.apply(x, d, per_image=True), aug.apply(x, d, per_image=False), atol=1e-6, rtol=0)


def test_device_half_matches_torchvision_statistics():
    """Distribution check of the non-geometric half against torchvision v2 on the same uint8 crops (the blur is
    left out: it is checked exactly above, and torchvision's conv per PIL image dominates the test's time)."""
    from torchvision.transforms import v2

    params = AugmentParams(size=16, p_blur=(0.0, 0.0), p_solarize=(0.3, 0.3))
    tint = torch.rand(300, 3, 1, 1, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.2
    base = torch.rand(300, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    images = (base * tint * 255).round().to(torch.uint8)
    mean, std = [0.3] * 3, [0.3] * 3
    t = params.torchvision_transform(0, mean, std).transforms[1:]  # drop the crop: the inputs are the crops
    torch.manual_seed(0)
    ref = torch.stack([v2.Compose(t)(v2.functional.to_pil_image(img)) for _ in range(2) for img in images])
    aug = params.batched(0, mean, std)  # the whole-batch path (the per-image one is equal, tested above)
    draws = [aug.draw(300, "cpu", torch.Generator().manual_seed(k)) for k in range(2)]
    ours = torch.cat([aug.normalise(aug.apply(images.float() / 255, d, per_image=False)) for d in draws])

    def summary(x):
        return torch.stack(
            [x.mean(), x.std(), x.mean(dim=(1, 2, 3)).std(), (x.std(dim=1).mean(dim=(1, 2)) < 1e-3).float().mean()]
        )

    torch.testing.assert_close(summary(ours), summary(ref), atol=0.06, rtol=0.06)


def test_two_crops_are_reproducible_and_follow_the_drawn_boxes(pack):
    ds = PackedTwoCrops(pack, params=SMALL, seed=7)
    images = PackedImages(pack)
    for i in range(3):
        a, b, y = ds[(0, i)]
        assert a.shape == b.shape == (3, 32, 32) and a.dtype == torch.uint8 and y == int(images.labels[i])
        assert all(torch.equal(u, v) for u, v in zip((a, b), ds[(0, i)][:2]))  # the same (seed, epoch, index)
        assert not torch.equal(a, ds[(1, i)][0]) and not torch.equal(a, PackedTwoCrops(pack, params=SMALL)[i][0])
        g = item_generator(7, 0, i)  # replay: the boxes are torchvision's law from the item's generator
        h, w = images.sizes[i]
        boxes = [rrc_params(int(h), int(w), SMALL.scale, SMALL.ratio, g) for _ in range(2)]
        full = torch.from_numpy(images.decode(i)).permute(2, 0, 1)
        for view, (top, left, bh, bw) in zip((a, b), boxes):
            ref = TF.resized_crop(full, top, left, bh, bw, [32, 32], antialias=True)
            assert (view.int() - ref.int()).abs().max() <= 1


def test_crops_do_not_depend_on_workers(pack):
    def batches(workers):
        loader = packed_loader(pack, params=SMALL, batch_size=4, workers=workers, seed=3, persistent_workers=False)
        loader.sampler.set_epoch(2)
        return list(loader)

    one, two = batches(0), batches(2)
    assert len(one) == len(two) == len(PackedImages(pack)) // 4
    for (a1, b1, y1), (a2, b2, y2) in zip(one, two):
        assert torch.equal(a1, a2) and torch.equal(b1, b2) and torch.equal(y1, y2)


def test_epoch_sampler_shuffles_per_epoch():
    s = EpochSampler(10, seed=1)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    assert {e for e, _ in first} == {0} and {e for e, _ in second} == {1}
    assert sorted(i for _, i in first) == list(range(10)) and [i for _, i in first] != [i for _, i in second]
    s.set_epoch(0)
    assert list(s) == first


def test_dct_shrunk_decode_gives_the_same_crop(tmp_path):
    """A large image: crops big enough are decoded at 1/2 or 1/4 and still match the full-size crop closely."""
    buf = io.BytesIO()
    synthetic_photo(np.random.default_rng(0), 900, 1200).save(buf, "JPEG", quality=95)
    import simplejpeg

    data = buf.getvalue()
    boxes = [(10, 20, 880, 1100), (100, 300, 600, 700)]
    assert dct_reduction(boxes, 224) == 2 and dct_reduction(boxes[:1], 224) == 2 and dct_reduction(boxes, 100) == 4
    assert dct_reduction([(0, 0, 300, 300)], 224) == 1
    full = torch.from_numpy(simplejpeg.decode_jpeg(data)).permute(2, 0, 1)
    for r in (2, 4):
        small = torch.from_numpy(simplejpeg.decode_jpeg(data, min_height=900 // r, min_width=1200 // r))
        assert small.shape[:2] == (900 // r, 1200 // r)
        for ours, ref in zip(resized_crops(small.permute(2, 0, 1), boxes, r, 100), resized_crops(full, boxes, 1, 100)):
            assert (ours.float() - ref.float()).abs().mean() < 3.0  # uint8 levels


def test_worker_side_augmentation_returns_normalised_views(pack):
    aug = TwoViewBatchAugment(SMALL, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    ds = PackedTwoCrops(pack, params=SMALL, augment=aug)
    a, b, _ = ds[(0, 1)]
    assert a.dtype == torch.float32 and a.shape == (3, 32, 32) and a.min() >= -2.0 and a.max() <= 2.0
    assert torch.equal(a, ds[(0, 1)][0])


def test_torchvision_fallback_reads_the_same_numbers(pack, tmp_path):
    root = make_jpeg_folder(tmp_path / "imgs", 6, 2, height=40, width=50)
    params = AugmentParams.byol(size=32)
    ds = torchvision_two_view_dataset(root, params)
    (v1, v2), label = ds[0]
    assert v1.shape == v2.shape == (3, 32, 32) and v1.dtype == torch.float32 and label == 0
    names = [type(t).__name__ for t in params.torchvision_transform(1).transforms]
    assert "RandomSolarize" in names and "RandomSolarize" not in str(AugmentParams().torchvision_transform(1))
    crop = params.torchvision_transform(0).transforms[0]
    assert crop.scale == (0.08, 1.0) and tuple(crop.size) == (32, 32)
    blur = params.torchvision_transform(0).transforms[4].transforms[0]
    assert blur.kernel_size == (3, 3) and blur.sigma == [0.1, 2.0]
    assert params.batched(1).p_solarize == 0.2 and params.batched(0).p_blur == 1.0
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch[0][0].shape == (3, 3, 32, 32)
    samples_ds = torchvision_two_view_dataset(params=params, samples=[(p, y) for p, y in ds.samples[:2]])
    assert len(samples_ds) == 2 and samples_ds[1][0][0].shape == (3, 32, 32)


def test_augment_params_presets_and_validation():
    simclr, byol = AugmentParams(), AugmentParams.byol()
    assert simclr.jitter == (0.8, 0.8, 0.8, 0.2) and simclr.p_blur == (0.5, 0.5) and simclr.p_solarize == (0, 0)
    assert byol.jitter == (0.4, 0.4, 0.2, 0.1) and byol.p_blur == (1.0, 0.1) and byol.p_solarize == (0.0, 0.2)
    assert simclr.scale == (0.08, 1.0) and simclr.size == 224
    with pytest.raises(ValueError, match="scale"):
        AugmentParams(scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="odd"):
        AugmentParams(blur_kernel=4)
    assert AugmentParams().with_(size=96).kernel_size == 9


def test_pil_and_packed_paths_agree_on_the_source_pixels(pack):
    """The pack holds what torchvision's loader sees (PIL convert("RGB")), re-encoded at quality 90."""
    images = PackedImages(pack)
    src = Image.open(io.BytesIO(bytes(images.raw(0)))).convert("RGB")
    assert np.abs(np.asarray(src, dtype=np.int16) - images.decode(0).astype(np.int16)).max() <= 3
