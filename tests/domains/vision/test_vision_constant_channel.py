"""Input data that normalisation turns non-finite: a constant image channel (std 0) is refused when the dataset is
prepared and when a prepared file is loaded, naming the dataset and the channel, before a run can stop with a
NaN loss and the advice to lower the learning rate."""

import numpy as np
import pytest

from deepaug.domains.vision import data as V
from deepaug.domains.vision.datasets import DATASETS, Registered
from deepaug.errors import DataValidationError

ADVICE = r"training would stop with a NaN loss \(the data is at fault, not the learning rate\)"


def _blank_green(raw_dir, download):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 8, 8, 3), dtype=np.uint8)
    x[..., 1] = 128  # the green channel holds one value in every image
    y = np.arange(60, dtype=np.int64) % 2
    return {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:], "y_test": y[40:], "classes": np.asarray(["a", "b"])}


BLANK = V.ImageDataset("blank", "a constant green channel", _blank_green)


def test_a_constant_channel_is_refused_when_preparing(tmp_path, monkeypatch):
    monkeypatch.setitem(DATASETS, "blank", Registered(f"{__name__}:BLANK"))
    with pytest.raises(
        DataValidationError,
        match=r"^dataset 'blank': channel 1 \(green\) of the training images is "
        r"constant \(every pixel 128, std 0\), and the images are "
        rf"normalised by that std: {ADVICE}; check its images",
    ) as info:
        V.prepare_image_dataset("blank", tmp_path / "blank.npz", tmp_path / "raw")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "blank.npz").exists()


def _digits_with(digits_npz, tmp_path, change):
    with np.load(digits_npz) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    change(arrays)
    path = tmp_path / "digits.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("std, what", [(0.0, "has mean .* and std 0"), (float("nan"), "has mean .* and std nan")])
def test_a_prepared_file_with_a_zero_or_nan_std_is_refused_at_load(tmp_path, digits_npz, std, what):
    path = _digits_with(digits_npz, tmp_path, lambda a: a["std"].__setitem__(2, std))
    with pytest.raises(
        DataValidationError,
        match=rf"^{path} \(dataset 'digits'\): channel 2 \(blue\) of the training "
        rf"images {what}, .*{ADVICE}; delete it and re-run the data rule",
    ):
        V.load_prepared(path)


def test_a_prepared_file_with_a_constant_channel_is_refused_at_load(tmp_path, digits_npz):
    """Whatever float std was stored for it (0, or a rounding residue): the uint8 pixels say it is constant."""
    path = _digits_with(digits_npz, tmp_path, lambda a: a["x_train"].__setitem__((..., 0), 7))
    with pytest.raises(
        DataValidationError,
        match=rf"^{path} \(dataset 'digits'\): channel 0 \(red\) of the training "
        rf"images is constant \(every pixel 7, std 0\), .*{ADVICE}",
    ):
        V.load_prepared(path)
