"""Deep Augmentation at several layers in one run (a sweep block's ``layers_at_once``): one
:class:`~deepaug.core.augment.DeepAugment` per layer, each drawing its own rows from its own generator.

The abstract's "uniformly applying dropout across layers does not help", read as the op at every layer of
one network at once: each listed layer gets its own op with the run's settings, hooked on that layer, with
a seed of its own derived from the run's seed and the layer (:func:`layer_seed`), so that no two layers
share a random stream and a layer's draws do not depend on which other layers are listed. Stop-gradient
detaches the transformed rows at each layer: a layer's parameters get gradient from a row only when no op
at or above it transformed (and detached) that row.

:class:`AugmentAtLayers` is what a trainer holds as its ``aug`` (reseeded per epoch, its generators'
states checkpointed) for such a run; a run at one layer keeps its single ``DeepAugment``, whose random
stream, checkpoints and numbers are those of every earlier version. :func:`layer_ops` lists the
(layer, op) pairs of either (:meth:`deepaug.core.settings.RunSettings.attach_augment` hooks them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import torch
from torch import nn

from deepaug.core.augment import DeepAugment


def layer_seed(seed: int, layer: int) -> int:
    """The seed of the op at ``layer`` in a run (or an epoch) seeded ``seed``: a hash of both, so distinct
    layers never share a stream and the layer's stream does not depend on the other layers listed."""
    digest = hashlib.sha256(f"deepaug layers_at_once: seed {int(seed)}, layer {int(layer)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # < 2**63: a valid torch seed


class AugmentAtLayers(nn.Module):
    """One :class:`DeepAugment` per layer, made by ``make(seed)`` with the seed of each layer.

    It has the single op's run-level interface (:meth:`reseed`, :meth:`rng_state`,
    :meth:`set_rng_state`, :meth:`extra_repr`) so that the training loop treats both alike.
    """

    def __init__(self, layers: Iterable[int], make: Callable[[int], DeepAugment], seed: int = 0) -> None:
        super().__init__()
        self.layers = tuple(int(layer) for layer in layers)
        if len(self.layers) < 2 or len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers at once must be two or more distinct layers, got {list(self.layers)}")
        self.ops = nn.ModuleDict({str(layer): make(layer_seed(seed, layer)) for layer in self.layers})

    def items(self) -> list[tuple[int, DeepAugment]]:
        return [(layer, self.ops[str(layer)]) for layer in self.layers]

    def reseed(self, seed: int) -> None:
        """Restart every layer's stream from ``seed`` (each layer at :func:`layer_seed` of it)."""
        for layer, op in self.items():
            op.reseed(layer_seed(seed, layer))

    def rng_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {str(layer): op.rng_state() for layer, op in self.items()}

    def set_rng_state(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        for layer, op in self.items():
            op.set_rng_state(state[str(layer)])

    def extra_repr(self) -> str:
        """The settings every layer's op shares (they differ only in their seeds)."""
        return self.items()[0][1].extra_repr()


def layer_ops(aug: DeepAugment | AugmentAtLayers | None, layer: int | None) -> list[tuple[int, DeepAugment]]:
    """The (layer, op) pairs of a run's op: one per layer at once, ``[(layer, aug)]`` for a single op at
    ``layer``, none for the baseline."""
    if aug is None:
        return []
    if isinstance(aug, AugmentAtLayers):
        return aug.items()
    return [(layer, aug)]
