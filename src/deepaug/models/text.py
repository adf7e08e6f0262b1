"""SimCSE sentence encoder around a Hugging Face transformer, with the Deep Augmentation layer map.

Layer indices: 0 = embedding-layer output, 1..L = outputs of the L encoder blocks, L+1 = the
sentence vector after SimCSE's [CLS] MLP pooler (the vector fed to the loss). The MLP is used only
in training; evaluation takes the [CLS] vector before it (SimCSE's ``cls_before_pooler``).
"""

from __future__ import annotations

import torch
from torch import nn


def _blocks(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's list of transformer blocks (BERT/RoBERTa/MiniLM/ELECTRA: encoder.layer; DistilBERT: transformer.layer)."""
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

    @property
    def blocks(self) -> nn.ModuleList:
        return _blocks(self.encoder)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def deepaug_layers(self) -> list[tuple[str, nn.Module]]:
        return (
            [("embeddings", self.encoder.embeddings)]
            + [(f"block {i + 1}", block) for i, block in enumerate(self.blocks)]
            + [("pooled sentence vector", self.mlp)]
        )

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        cls = self.encoder(**kwargs).last_hidden_state[:, 0]
        return self.mlp(cls) if self.training else cls


def load_encoder_backbone(source: str) -> nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(source, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_pretrained(source)


def build_text_model(source: str) -> SimCSEEncoder:
    return SimCSEEncoder(load_encoder_backbone(source))
