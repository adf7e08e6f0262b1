"""SimCSE sentence encoder around a Hugging Face transformer, with the Deep Augmentation layer map.

Layer indices: 0 = embedding-layer output, 1..L = outputs of the L encoder blocks, L+1 = the
sentence vector after SimCSE's [CLS] MLP pooler (the vector fed to the loss). The MLP is used only
in training; evaluation takes the [CLS] vector before it (SimCSE's ``cls_before_pooler``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _blocks(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's list of transformer blocks.

    BERT/RoBERTa/MiniLM/ELECTRA: encoder.layer; DistilBERT: transformer.layer.
    """
    for path in ("encoder.layer", "transformer.layer", "layers"):
        obj = encoder
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, nn.ModuleList):
            return obj
    raise TypeError(f"cannot find the transformer blocks of {type(encoder).__name__}; supported: BERT-like encoders")


class SimCSEEncoder(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        # The [CLS] vector when it is used without the MLP (the relatedness head's input): an identity with
        # no weights, so that Deep Augmentation can target that vector (see forward's ``use_mlp``).
        self.cls_out = nn.Identity()

    @property
    def blocks(self) -> nn.ModuleList:
        return _blocks(self.encoder)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def deepaug_layers(self) -> list[tuple[str, nn.Module]]:
        from deepaug.domains.text.layers import layers  # the map, stated once

        modules = (self.encoder.embeddings, *self.blocks, self.mlp)
        return [(layer.description, module) for layer, module in zip(layers(len(self.blocks)), modules, strict=True)]

    def forward(self, input_ids, attention_mask, token_type_ids=None, use_mlp: bool | None = None) -> torch.Tensor:
        """The sentence vector: [CLS] through the MLP in training, the bare [CLS] in eval (SimCSE's
        ``mlp_only_train``). ``use_mlp=False`` gives the bare [CLS] in training too (through ``cls_out``),
        as the author's supervised runs use it: ``sent_emb=True`` with ``mlp_only_train`` skips the MLP
        (bruel-gabrielsson/SimCSE ``simcse/models.py`` L351-353, called by ``simcse/trainers.py`` L343-348)."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        cls = self.encoder(**kwargs).last_hidden_state[:, 0]
        if use_mlp is None:
            use_mlp = self.training
        return self.mlp(cls) if use_mlp else self.cls_out(cls)


# ----------------------------------------------------------------------------- SentEval's relatedness head
RELATEDNESS_CLASSES = 5


def encode_labels(scores, nclass: int = RELATEDNESS_CLASSES) -> torch.Tensor:
    """SentEval's label encoding for relatedness (Tai, Socher and Manning's Tree-LSTM): a score y puts
    ``floor(y) - y + 1`` on class ``floor(y)`` and ``y - floor(y)`` on class ``floor(y) + 1`` (classes
    1..nclass; facebookresearch/SentEval ``senteval/sick.py`` L123-134, the author's fork the same,
    ``SentEval/senteval/sick.py`` L122-133, used by ``sts.py`` STSBenchmarkFulltrain L427). As in SentEval,
    STS-B's raw 0-5 scores go in unchanged: a score below 1 keeps only ``y`` (on class 1) and its remaining
    mass falls on the missing class 0, so that row sums to ``y``."""
    y = torch.tensor(np.asarray(scores, dtype=np.float64)).reshape(-1)
    floor = torch.floor(y)
    classes = torch.arange(1, nclass + 1, dtype=torch.float64)
    upper = torch.where(classes == floor[:, None] + 1, (y - floor)[:, None], torch.zeros(()))
    lower = torch.where(classes == floor[:, None], (floor - y + 1)[:, None], torch.zeros(()))
    return (upper + lower).float()


class RelatednessHead(nn.Module):
    """SentEval's relatedness classifier on a pair of sentence vectors: ``Linear(2 * hidden -> 5)`` and a
    softmax over ``[|u - v|, u * v]``; the predicted score is ``sum(probs * [1..5])``.

    SentEval ``senteval/tools/relatedness.py`` RelatednessPytorch L45-48 (the head), ``sick.py`` L87 (the
    features), L74/L99 (``np.dot(probs, r)``, r = 1..5); the author's end-to-end variant feeds it the
    encoder's vectors of each batch (bruel-gabrielsson/SimCSE ``SentEval/senteval/tools/relatedness.py``
    RelatednessPytorchFull L160, L169-172, L273-274)."""

    def __init__(self, hidden: int, nclass: int = RELATEDNESS_CLASSES) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * hidden, nclass)
        self.register_buffer("levels", torch.arange(1, nclass + 1, dtype=torch.float32), persistent=False)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Class probabilities, (pairs, 5), computed in float32."""
        features = torch.cat([(u - v).abs(), u * v], dim=-1).float()
        with torch.autocast(features.device.type, enabled=False):
            return torch.softmax(self.linear(features), dim=-1)

    def predict(self, probs: torch.Tensor) -> torch.Tensor:
        """The predicted relatedness score of each pair: ``probs @ [1, ..., 5]``."""
        return probs @ self.levels.to(probs.dtype)


def load_encoder_backbone(source: str) -> nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(source, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_pretrained(source)


def build_text_model(source: str) -> SimCSEEncoder:
    return SimCSEEncoder(load_encoder_backbone(source))


# ----------------------------------------------------------------------------- self-contained model.pt
# A trained text model must load from any working directory, after data/models/ is moved or deleted:
# model.pt therefore carries the encoder's config and tokenizer files (a few hundred KB for BERT),
# not a path to the folder they came from. Weights are left out: model.pt stores the trained ones.
BUNDLE_FORMAT = 1
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".onnx", ".ot", ".index.json")


def _is_weight_file(name: str) -> bool:
    return name.endswith(_WEIGHT_SUFFIXES)


def encoder_bundle(model_dir) -> dict:
    """The small files of a prepared encoder folder (config.json and the tokenizer files, no weights),
    as ``{"format", "source", "files": {name: bytes}}`` to store in model.pt beside the trained weights.

    ``load_bundle`` rebuilds the architecture and tokenizer from it without the folder."""
    from pathlib import Path

    from deepaug.errors import DataUnavailableError

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise DataUnavailableError(
            f"{model_dir} is not a saved encoder folder (no config.json): run the workflow's data rule "
            f"(python -m deepaug prepare-text --model NAME --out {model_dir})"
        )
    files = {
        p.name: p.read_bytes()
        for p in sorted(model_dir.iterdir())
        if p.is_file() and not p.name.startswith(".") and not _is_weight_file(p.name)
    }
    return {"format": BUNDLE_FORMAT, "source": str(model_dir), "files": files}


def backbone_from_config(config) -> nn.Module:
    """A randomly initialised backbone of ``config`` without BERT's pooler (SimCSE uses its own MLP)."""
    from transformers import AutoModel

    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


def load_bundle(bundle: dict):
    """(SimCSEEncoder with random weights, tokenizer) rebuilt from ``encoder_bundle``'s dict.

    The files are written to a temporary folder because ``from_pretrained`` reads folders; the config and
    tokenizer are fully in memory afterwards, so the folder is removed before returning."""
    import tempfile
    from pathlib import Path

    from transformers import AutoConfig, AutoTokenizer

    if bundle.get("format") != BUNDLE_FORMAT:
        raise ValueError(
            f"encoder bundle format {bundle.get('format')!r} is not supported (expected {BUNDLE_FORMAT}); "
            f"upgrade deepaug or re-train"
        )
    with tempfile.TemporaryDirectory(prefix="deepaug-encoder-") as tmp:
        for name, data in bundle["files"].items():
            (Path(tmp) / Path(name).name).write_bytes(data)
        config = AutoConfig.from_pretrained(tmp)
        tokenizer = AutoTokenizer.from_pretrained(tmp)
    return SimCSEEncoder(backbone_from_config(config)), tokenizer
