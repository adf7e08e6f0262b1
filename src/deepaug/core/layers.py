"""The paper's integer layer index -> the module whose output Deep Augmentation transforms.

Every backbone in this package exposes ``deepaug_layers()``: an ordered list of
``(description, module)`` pairs, index 0 first (ResNet: 0 stem, 1-4 stages, 5 pooled features,
6 projection head; transformer: 0 embeddings, 1..L blocks, L+1 pooled sentence vector).
"""

from __future__ import annotations

from torch import nn

from deepaug.errors import LayerIndexError


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if not hasattr(model, "deepaug_layers"):
        raise TypeError(
            f"{type(model).__name__} has no layer map: it must define deepaug_layers(); "
            "for your own model, attach DeepAugment to a module directly with aug.attach(module)"
        )
    return list(model.deepaug_layers())


def layer_names(model: nn.Module) -> list[str]:
    """Descriptions of the layers, in index order."""
    return [name for name, _ in _layers(model)]


def describe_layers(model: nn.Module) -> str:
    return ", ".join(f"{i} {name}" for i, name in enumerate(layer_names(model)))


def target_module(model: nn.Module, index: int) -> nn.Module:
    """The module whose output is layer ``index``; a clear error when out of range."""
    layers = _layers(model)
    if isinstance(index, bool) or not isinstance(index, int):
        raise LayerIndexError(f"layer index must be an integer, got {index!r}")
    if not 0 <= index < len(layers):
        raise LayerIndexError(
            f"layer {index} is out of range for {type(model).__name__}: valid indices are "
            f"0-{len(layers) - 1} ({describe_layers(model)})"
        )
    return layers[index][1]
