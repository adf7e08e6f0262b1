import os

import numpy as np
import pytest
import torch
from cuda_emulation import cuda_like_autocast  # noqa: F401  (a fixture: CUDA's autocast dtype flow on the CPU)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory):
    """The real demo dataset (scikit-learn digits) in the prepared on-disk form."""
    from deepaug.domains.vision.data import prepare_image_dataset

    out = tmp_path_factory.mktemp("data") / "digits.npz"
    return prepare_image_dataset("digits", out, tmp_path_factory.mktemp("raw"), download=False)


# Shared by the trainer tests of several modules (text, autocast, recipes): built once per session.
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised 2-block BERT with the real MiniLM tokenizer, saved like prepare_model does."""
    out = tmp_path_factory.mktemp("tiny_bert")
    from transformers import AutoTokenizer, BertConfig, BertModel

    from deepaug.domains.text.data import model_source

    tok = AutoTokenizer.from_pretrained(model_source("all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def text_files(tmp_path_factory):
    from deepaug.domains.text.data import prepare_corpus, prepare_task

    d = tmp_path_factory.mktemp("text")
    return prepare_corpus("lee", d / "lee.parquet"), prepare_task("wordsim353", d / "ws.parquet")


@pytest.fixture(scope="session")
def tiny_digits_npz(digits_npz, tmp_path_factory):
    """The first 32 training and 16 test images of the prepared digits set (all ten classes): one step of
    batch 32. Small because bf16 convolutions on a CPU without bf16 units are ~10x slower than fp32."""
    with np.load(digits_npz) as npz:
        data = {k: npz[k] for k in npz.files}
    for split, n in (("train", 32), ("test", 16)):
        data[f"x_{split}"], data[f"y_{split}"] = data[f"x_{split}"][:n], data[f"y_{split}"][:n]
    out = tmp_path_factory.mktemp("tiny_digits") / "digits32.npz"
    np.savez(out, **data)
    return out
