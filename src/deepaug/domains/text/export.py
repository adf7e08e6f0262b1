"""A trained text encoder for use outside the pipeline: a sentence-transformers model that is also a plain
Hugging Face ``save_pretrained`` folder.

The exported model gives the embeddings this pipeline scores (:func:`deepaug.domains.text.evaluate.encode`):
the [CLS] vector of the encoder's last hidden state, *before* SimCSE's MLP pooler (SimCSE's
``cls_before_pooler``, the unsupervised models' evaluation), no normalisation. In sentence-transformers
terms: a ``Transformer`` module followed by ``Pooling(pooling_mode="cls")``, nothing else (no ``Dense``
for the MLP, no ``Normalize``; cosine similarity is the model's similarity function, as the evaluator's).
sentence-transformers (v3 on) saves the transformer's weights, config and tokenizer at the folder's top,
so ``transformers.AutoModel.from_pretrained(out)`` loads the same encoder (take ``last_hidden_state[:, 0]``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from deepaug.errors import DataUnavailableError

# The evaluator's default truncation (text schema ``eval.eval_max_len``): sentences are tokenised up to it
DEFAULT_MAX_SEQ_LENGTH = 512


def _model_path(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    path = run_dir if run_dir.is_file() else run_dir / "model.pt"
    if not path.is_file():
        raise DataUnavailableError(
            f"{run_dir}: no model.pt there; give a finished text run's folder "
            "(results/text/<dataset>/<run>/seed<k>/) or its model.pt"
        )
    return path


def _modules():
    try:  # sentence-transformers 6 moved the modules; 3-5 have them in sentence_transformers.models
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer
    return Transformer, Pooling


def export_pretrained(run_dir: str | Path, out: str | Path) -> Path:
    """The trained encoder (without SimCSE's MLP, which evaluation does not use) and its tokenizer, written with
    ``save_pretrained`` to ``out``; returns ``out``."""
    from deepaug.domains.text.evaluate import load_trained

    model, tokenizer = load_trained(_model_path(run_dir), torch.device("cpu"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def export_sentence_transformers(
    run_dir: str | Path, out: str | Path, max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
) -> Path:
    """A text run's trained encoder as a sentence-transformers model in ``out`` (see the module's docstring):
    ``SentenceTransformer(out).encode(sentences)`` gives the evaluator's embeddings. Returns ``out``."""
    from sentence_transformers import SentenceTransformer

    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 2:
        raise ValueError(f"max_seq_length must be a whole number >= 2, got {max_seq_length!r}")
    Transformer, Pooling = _modules()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; give a new folder for the exported model")
    with tempfile.TemporaryDirectory(prefix="deepaug-export-") as tmp:
        hf = export_pretrained(run_dir, Path(tmp) / "hf")
        hidden = json.loads((hf / "config.json").read_text())["hidden_size"]
        # (transformers reports the BERT pooler as newly initialised: the [CLS] pooling never uses it)
        word = Transformer(str(hf), max_seq_length=max_seq_length)
        # [CLS] of the last hidden state, before any MLP, as evaluate.encode and SimCSE's evaluation of its
        # unsupervised models (princeton-nlp/SimCSE evaluation.py @206d7ae L123-124, --pooler cls_before_pooler:
        # last_hidden[:, 0]); sentence-transformers' "cls" pooling takes token 0 of the token embeddings
        pool = Pooling(hidden, pooling_mode="cls")
        model = SentenceTransformer(modules=[word, pool], device="cpu", similarity_fn_name="cosine")
        model.save(str(out))
    return out
