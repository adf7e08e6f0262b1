"""Training objectives registered by name (:data:`OBJECTIVES`), beside the losses (:data:`deepaug.core.losses.LOSSES`).

An objective says what a batch must carry and what the loss is; a domain's trainer reads the run's
``objective`` setting here instead of branching on it. A new method is one :class:`Objective` and one line
that registers it (:func:`register`); the hooks below give it its own modules (a predictor, a target network),
a step after each optimiser step (an EMA update) and, through those modules, its own state in the checkpoint.

The text domain's objectives shape sentence pairs rather than views, so it keeps its losses beside its trainer
(``deepaug.domains.text.train``) under these names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deepaug.core.losses import contrastive_loss


@dataclass(frozen=True)
class Objective:
    """One training objective.

    * ``views``: augmented views of each example in a batch (2: ``cat([view1, view2])``, 1: one view);
    * ``labels``: the model's head gives class logits, trained on the labels (the head's width is the
      number of classes, and the graph domain trains on its fixed training split);
    * ``loss(out, labels, s, extras, apply)``: the batch's loss, ``out`` the model's output on the batch, ``s`` the
      run's settings (``s.loss``, ``s.temperature``, ...), ``extras`` the modules ``build`` made (or None),
      ``apply(net)`` runs another network of the model's shape (e.g. a target network) on the batch's inputs;
    * ``build(model, s)``: the method's own modules (an ``nn.Module``, e.g. a predictor and a target network),
      made after the model and its Deep Augmentation hook; the parameters that need gradients join the
      optimiser, and the whole module is checkpointed beside the model. None: no modules of its own;
    * ``after_step(model, extras, s, step)``: called after each optimiser step (e.g. an EMA update of a
      target network); ``step`` counts the steps done before this one (``extras.total_steps``, when the
      modules have it, is set by the trainer to the run's steps, e.g. for a momentum schedule);
    * ``head(features, hidden, out)``: the method's projector, the model's head (layer 6); None: SimCLR's;
    * ``settings``: the run settings only this method has (:mod:`deepaug.core.ssl` refuses them elsewhere).
    """

    name: str
    about: str
    views: int
    labels: bool
    loss: Callable[..., torch.Tensor]
    build: Callable[..., torch.nn.Module] | None = None
    after_step: Callable[..., None] | None = None
    head: Callable[[int, int, int], torch.nn.Module] | None = None
    settings: tuple[str, ...] = ()

    def extras(self, model: torch.nn.Module, s, device: torch.device) -> torch.nn.Module | None:
        """The method's own modules on ``device`` (None for a method without ``build``)."""
        return self.build(model, s).to(device) if self.build is not None else None

    def step_done(self, model: torch.nn.Module, extras, s, step: int) -> None:
        """Call ``after_step`` (if the method has one) after an optimiser step."""
        if self.after_step is not None:
            self.after_step(model, extras, s, step)


def trained_parameters(model: torch.nn.Module, extras: torch.nn.Module | None) -> list:
    """What the optimiser trains: the model's parameters, then those of the method's modules that need gradients
    (a target network has none)."""
    params = list(model.parameters())
    if extras is not None:
        params += [q for q in extras.parameters() if q.requires_grad]
    return params


def _contrastive(out: torch.Tensor, labels, s, extras=None, apply=None) -> torch.Tensor:
    """The run's contrastive loss (``s.loss``, :data:`deepaug.core.losses.LOSSES`) over both views."""
    return contrastive_loss(s.loss, out.float(), s.temperature)


def _supervised(out: torch.Tensor, labels: torch.Tensor, s, extras=None, apply=None) -> torch.Tensor:
    """Cross-entropy of the head's logits on the labels."""
    return F.cross_entropy(out.float(), labels)


OBJECTIVES: dict[str, Objective] = {}


def register(objective: Objective) -> Objective:
    """Add ``objective`` to :data:`OBJECTIVES` under its name (the run setting ``objective`` then accepts it)."""
    OBJECTIVES[objective.name] = objective
    return objective


register(
    Objective("contrastive", "the paper's setting: a contrastive loss over two augmented views", 2, False, _contrastive)
)
register(
    Objective("supervised", "the supervised counterpart: cross-entropy on the labels, one view", 1, True, _supervised)
)


import deepaug.core.ssl  # noqa: E402,F401  (registers the SSL methods beyond SimCLR)


def objective(name: str) -> Objective:
    """The objective registered as ``name``; ValueError naming the registered ones otherwise."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {tuple(OBJECTIVES)}, got {name!r}")
    return OBJECTIVES[name]
