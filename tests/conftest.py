import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory):
    """The real demo dataset (scikit-learn digits) in the prepared on-disk form."""
    from deepaug.data import prepare_image_dataset

    out = tmp_path_factory.mktemp("data") / "digits.npz"
    return prepare_image_dataset("digits", out, tmp_path_factory.mktemp("raw"), download=False)
