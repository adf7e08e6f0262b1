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

    def token_states(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """The encoder's last hidden states (rows x tokens x hidden), e.g. of a masked copy for the MLM head (SimCSE's
        second forward pass, ``simcse/models.py`` L187-199); Deep Augmentation hooked at the embeddings or a block
        acts here too, the MLP pooler is not run."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.encoder(**kwargs).last_hidden_state


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


# The encoder's own dropout rates as the Hugging Face configs name them: BERT, RoBERTa, ELECTRA, MiniLM first,
# then DistilBERT's names.
DROPOUT_CONFIG_KEYS = {
    "hidden_dropout": ("hidden_dropout_prob", "dropout"),
    "attention_dropout": ("attention_probs_dropout_prob", "attention_dropout"),
}


def dropout_config(config, **rates) -> dict:
    """``{config key: rate}`` for the given settings (``hidden_dropout=0.0`` -> ``{"hidden_dropout_prob": 0.0}``
    on a BERT config); a rate of None is left at the config's value. ValueError naming the setting when the
    config has no such key."""
    out = {}
    for setting, rate in rates.items():
        if rate is None:
            continue
        key = next((k for k in DROPOUT_CONFIG_KEYS[setting] if hasattr(config, k)), None)
        if key is None:
            raise ValueError(
                f"model.{setting}: the encoder's config ({type(config).__name__}) has none of "
                f"{', '.join(DROPOUT_CONFIG_KEYS[setting])}; leave {setting} null for this model"
            )
        out[key] = float(rate)
    return out


def load_encoder_backbone(source: str, hidden_dropout: float | None = None, attention_dropout: float | None = None):
    """The pretrained encoder (no BERT pooler), with its config's dropout rates replaced where given (the author's
    ``config.attention_probs_dropout_prob = ...`` before ``from_pretrained``, bruel-gabrielsson/SimCSE
    ``train.py`` L465-466, L487-495); with neither given, exactly the pretrained config."""
    from transformers import AutoConfig, AutoModel

    extra = {}
    if hidden_dropout is not None or attention_dropout is not None:
        config = AutoConfig.from_pretrained(source)
        for key, rate in dropout_config(
            config, hidden_dropout=hidden_dropout, attention_dropout=attention_dropout
        ).items():
            setattr(config, key, rate)
        extra["config"] = config
    try:
        return AutoModel.from_pretrained(source, add_pooling_layer=False, **extra)
    except TypeError:
        return AutoModel.from_pretrained(source, **extra)


def build_text_model(
    source: str, hidden_dropout: float | None = None, attention_dropout: float | None = None
) -> SimCSEEncoder:
    return SimCSEEncoder(load_encoder_backbone(source, hidden_dropout, attention_dropout))


def dropout_rates(model: SimCSEEncoder) -> dict[str, float]:
    """``{module name: p}`` of every ``nn.Dropout`` of the encoder (what its standard dropout does in training)."""
    return {name: m.p for name, m in model.encoder.named_modules() if isinstance(m, nn.Dropout)}


def keep_standard_dropout_at(model: SimCSEEncoder, layers: tuple[int, ...]) -> list[str]:
    """Switch the encoder's standard dropout off (p = 0) everywhere but in the modules of ``layers`` (the layer map:
    0 embeddings, 1..L blocks; L+1, the MLP pooler, has none); returns the names of the dropouts kept.

    The author's ``--dropout_only_layer k`` (bruel-gabrielsson/SimCSE ``train.py`` L142-147, L467, and
    ``scripts/run_uni_hyper_only_layer.sh``: BERT layers 0-11, "only 12 such layers") set a config field that his
    modified transformers read; that code is not in the repository, so the rule here is the plain one: every
    ``nn.Dropout`` inside the kept layers' modules keeps its rate, every other one gets p = 0. BERT's attention
    reads its rate from its ``nn.Dropout`` at each call (``dropout=self.dropout.p``), so this reaches the
    attention too; a module holding a dropout rate in another form is refused rather than left on."""
    modules = dict(enumerate(module for _, module in model.deepaug_layers()))
    for layer in layers:
        if layer not in modules:
            raise ValueError(
                f"model.standard_dropout: layer {layer} is out of range; this encoder has layers 0-{len(modules) - 1}"
            )
    kept_ids = {id(m) for layer in layers for m in modules[layer].modules()}
    kept = []
    for name, module in model.encoder.named_modules():
        if isinstance(module, nn.Dropout):
            if id(module) in kept_ids:
                kept.append(name)
            else:
                module.p = 0.0
            continue
        if id(module) in kept_ids:
            continue
        for attr, value in vars(module).items():
            if "dropout" in attr and isinstance(value, float) and value > 0:
                raise TypeError(
                    f"model.standard_dropout: {name or type(module).__name__}.{attr} = {value} is a dropout rate "
                    f"this pipeline cannot switch off per layer ({type(module).__name__}); use standard_dropout all "
                    f"or none (hidden_dropout / attention_dropout 0) for this model"
                )
    return kept


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
