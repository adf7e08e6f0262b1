"""Training of a GIN with Deep Augmentation at one layer (or several at once).

``objective="contrastive"`` (the paper's setting): two views of each graph, a graph-level contrastive loss on
the projection head's output, Adam, in the recipe of ``graph.protocol`` (:mod:`deepaug.domains.graph.protocols`
states both with their sources): ``pygcl`` (PyGCL ``examples/GraphCL.py``: 2 GIN layers, 100 epochs, batches in
the dataset's order, view 1 the graph and view 2 one PyGCL augmentor per batch at 0.1, symmetric InfoNCE at
0.2) or ``graphcl`` (GraphCL ``unsupervised_TU``: 3 layers, 20 epochs, one shuffle, self-loops, view 2 one
GraphCL augmentation per graph, ``loss_cal``). Views: :mod:`deepaug.domains.graph.views`.
``objective="supervised"`` (the supervised counterpart): cross-entropy of a linear classifier on the
graph vector (layer L+2 = the logits), on the graphs of a fixed stratified training split (80%; 10%
dev and 10% test are held out and scored by :mod:`deepaug.domains.graph.evaluate`), without input
augmentation (GraphCL's supervised GIN, ``unsupervised_TU/gin.py`` L132-155, trains on the graphs
as they are).

Both views of a batch go through the encoder in one forward pass, view 1's graphs first (as the
vision trainer concatenates its views): the Deep Augmentation op then sees every row of the batch
(``one_sided`` selection and the PCA basis need both views), and the batch norms normalise over both
views' nodes. Both references call the encoder once per view instead (PyGCL ``examples/GraphCL.py`` L63-65,
which also runs the original graph a third time, in training mode; GraphCL ``gsimclr.py`` L209, L241), so
their batch statistics, and the running statistics that evaluation uses, are per view: a deviation this
trainer keeps for every run, the baseline included, so that runs differ only in the op.

At a node-level layer (0..L) the op is given the batch vector (node -> graph) before the forward
pass, so that a row is one view of one graph (:meth:`deepaug.core.augment.DeepAugment.grouped`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepaug.core.at_layers import layer_ops
from deepaug.core.layers import target_module
from deepaug.core.losses import check_loss
from deepaug.core.objectives import trained_parameters
from deepaug.core.schema_defaults import domain_schema, schema_defaults
from deepaug.core.settings import RunSettings
from deepaug.domains.graph.data import SELF_LOOPS, concat_batches, load_graphs
from deepaug.domains.graph.models import INITS, build_graph_model
from deepaug.domains.graph.views import AUGMENTATIONS, augment
from deepaug.engine import training as T
from deepaug.engine.loop import DataFileTask, PeriodEnd, Progress, train
from deepaug.errors import NonFiniteLossError
from deepaug.io import load_torch

SHUFFLES = ("never", "once", "epoch")  # train.shuffle (the schema's enum)
LOSSES = ("infonce", "graphcl")  # train.loss (PyGCL's, GraphCL's); the schema's enum (tests/core/test_losses.py)
SPLIT_SEED = 0  # the supervised counterpart's train/dev/test split: one per dataset, shared by every run
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


# The defaults of these settings, from the config schema (each written once there; deepaug.core.schema_defaults)
_SETTINGS = schema_defaults(domain_schema(__file__), "model", "train")


@dataclass
class GraphPretrainSettings(RunSettings):
    """The defaults are the ``pygcl`` recipe (deepaug.domains.graph.protocols); the workflow passes every value."""

    hidden_dim: int = _SETTINGS["hidden_dim"]
    num_layers: int = _SETTINGS["num_layers"]
    init: str = _SETTINGS["init"]  # torch (PyGCL) or xavier (GraphCL's init_emb)
    self_loops: str = _SETTINGS["self_loops"]  # none (PyGCL) or graphcl (GraphCL's dataset; data.with_self_loops)
    epochs: int = _SETTINGS["epochs"]
    batch_size: int = _SETTINGS["batch_size"]
    shuffle: str = _SETTINGS["shuffle"]  # never (PyGCL), once (GraphCL) or epoch
    lr: float = _SETTINGS["lr"]
    weight_decay: float = _SETTINGS["weight_decay"]
    temperature: float = _SETTINGS["temperature"]
    # deepaug.core.losses: infonce (PyGCL's DualBranchContrast(InfoNCE(tau), mode="G2G"), symmetric over
    # the two views) or graphcl (GraphCL's loss_cal: view 1 as anchor, the positive left out of the denominator).
    loss: str = _SETTINGS["loss"]
    aug1: str = _SETTINGS["aug1"]  # view 1: the graph itself in both references
    aug2: str = _SETTINGS["aug2"]  # view 2: random_choice (PyGCL, per batch) or random4 (GraphCL, per graph)
    aug_ratio: float = _SETTINGS["aug_ratio"]
    precision: str = _SETTINGS[
        "precision"
    ]  # a few thousand parameters: bf16 saves nothing and loses the sums' precision
    checkpoint_every: int = _SETTINGS["checkpoint_every"]  # epochs
    max_grad_norm: float = _SETTINGS["max_grad_norm"]  # declared in RunSettings; the default is this domain's
    deterministic: bool = _SETTINGS["deterministic"]  # declared in RunSettings; the default is this domain's

    def validate(self) -> None:
        super().validate()
        for name in ("hidden_dim", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("aug1", "aug2"):
            if getattr(self, name) not in AUGMENTATIONS:
                raise ValueError(f"{name} must be one of {AUGMENTATIONS}, got {getattr(self, name)!r}")
        for name, choices in (("init", INITS), ("self_loops", SELF_LOOPS), ("shuffle", SHUFFLES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if not 0.0 <= self.aug_ratio <= 1.0:
            raise ValueError(f"aug_ratio must be in [0, 1], got {self.aug_ratio}")
        check_loss(self.loss, LOSSES)
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        from deepaug.domains import describe
        from deepaug.domains.graph.layers import layers

        gin_map = layers(self.num_layers)
        for layer in self.target_layers():
            if not 0 <= layer < len(gin_map):
                raise ValueError(
                    f"layer {layer} is out of range; a GIN with {self.num_layers} layers has layers "
                    f"0-{len(gin_map) - 1} ({describe(gin_map)})"
                )


def supervised_split(
    y: torch.Tensor, seed: int = SPLIT_SEED, fractions: tuple[float, float, float] = SPLIT_FRACTIONS
) -> dict[str, list[int]]:
    """A stratified train/dev/test split of the graphs (indices, each sorted): per class, a seeded
    permutation cut at the fractions (at least one dev and one test graph per class with >= 3 graphs)."""
    rng = np.random.RandomState(seed)
    labels = y.cpu().numpy()
    out: dict[str, list[int]] = {"train": [], "dev": [], "test": []}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = len(idx)
        n_dev = max(1, int(round(fractions[1] * n))) if n >= 3 else 0
        n_test = max(1, int(round(fractions[2] * n))) if n >= 3 else 0
        out["dev"] += idx[:n_dev].tolist()
        out["test"] += idx[n_dev : n_dev + n_test].tolist()
        out["train"] += idx[n_dev + n_test :].tolist()
    return {k: sorted(v) for k, v in out.items()}


def _chunks(n: int, batch: int) -> list[tuple[int, int]]:
    """Batch boundaries over ``n`` shuffled graphs; a last batch of a single graph joins the one before
    (a batch needs two graphs: negatives for the loss, more than one value for the batch norms)."""
    bounds = [(i, min(i + batch, n)) for i in range(0, n, batch)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def _pca_failure(s: GraphPretrainSettings, step: int, exc: Exception) -> str:
    why = (
        "the gradient through the PCA basis (pca_grad: through) is not finite where the activations are "
        "rank-deficient (a narrow layer, or node embeddings that take few distinct values, e.g. constant input "
        "features); use pca_grad: constant, a wider layer (hidden_dim) or another layer"
        if s.method == "pca" and s.pca_grad == "through" and not s.stop_gradient
        else "lower the learning rate or use precision: fp32"
    )
    return (
        f"run {s.run}: the activations at {s.where()} became non-finite by step {step} and their PCA failed "
        f"({str(exc).splitlines()[0]}); {why}. The last good checkpoint is kept."
    )


def pretrain(s: GraphPretrainSettings, data_path: str | Path, out_dir: str | Path, ckpt_dir: str | Path) -> dict:
    """Train, checkpointing to ``ckpt_dir`` (resumed if present); write model, metrics, provenance to ``out_dir``."""
    return train(GraphTask(s, data_path), out_dir, ckpt_dir)


class GraphTask(DataFileTask):
    """A GIN trained one period per epoch (see :class:`deepaug.engine.loop.Task`); the objective
    (:mod:`deepaug.core.objectives`) gives the views per graph, the head and the loss."""

    def build(self, device: torch.device) -> None:
        s = self.s
        self.graphs = graphs = load_graphs(self.data_path)
        labels = self.objective.labels  # with labels: a classifier on the graphs of a fixed training split
        self.split = supervised_split(graphs.y) if labels else None
        self.train_idx = torch.tensor(
            self.split["train"] if labels else range(len(graphs)), dtype=torch.long, device=device
        )
        if self.train_idx.shape[0] < 2:
            raise ValueError(
                f"run {s.run}: {self.data_path} has {self.train_idx.shape[0]} training graphs; at least 2 are needed"
            )
        self.model = build_graph_model(
            graphs.num_features,
            s.hidden_dim,
            s.num_layers,
            graphs.num_classes if labels else None,
            "classifier" if labels else "projection",
            s.init,
            s.self_loops,
        ).to(device)
        self.aug = s.attach_augment(lambda layer: target_module(self.model, layer))
        # the ops at node-level layers, which need each forward pass's node -> graph vector
        self.grouped_ops = [op for layer, op in layer_ops(self.aug, s.layer) if self.model.node_level(layer)]
        if self.aug is not None:
            levels = sorted(
                {
                    "node level: one row per graph" if self.model.node_level(l) else "graph level"
                    for l in s.target_layers()
                }
            )
            T.log(f"{s.run}: Deep Augmentation {self.aug.extra_repr()} at {s.where()} ({', '.join(levels)})")
        self.extras = self.objective.extras(self.model, s, device)
        self.data = graphs.to(device)
        self.device = device
        n = self.train_idx.shape[0]
        self.bounds = _chunks(n, min(s.batch_size, n))
        # shuffle "once": one permutation for every epoch, from the run's seed (GraphCL: dataset.shuffle() after
        # setup_seed(seed), gsimclr.py L151 and L163); "never": the dataset's order (PyGCL's DataLoader, L114)
        once = torch.randperm(n, generator=torch.Generator().manual_seed(s.seed)).to(device)
        self.fixed_order = self.train_idx[once] if s.shuffle == "once" else self.train_idx

    def optimizer(self, device: torch.device) -> torch.optim.Optimizer:
        opt_kwargs = {"fused": True} if device.type == "cuda" else {}
        return torch.optim.Adam(
            trained_parameters(self.model, self.extras), lr=self.s.lr, weight_decay=self.s.weight_decay, **opt_kwargs
        )

    def parts(self) -> dict:
        return {"model": self.model} if self.extras is None else {"model": self.model, "extras": self.extras}

    def finished(self, p: Progress) -> bool:
        return p.period >= self.s.epochs

    def total_steps(self) -> int:
        return len(self.bounds) * self.s.epochs

    def batches(self, p: Progress, seed: int):
        """The epoch's batches: the shuffled graphs, in two views (``views`` 2) or as they are (``views`` 1);
        ``self.graphs_seen`` counts the graphs for the history row."""
        s = self.s
        g = torch.Generator(device=self.device).manual_seed(seed)
        n = self.train_idx.shape[0]
        if s.shuffle == "epoch":
            order = self.train_idx[torch.randperm(n, generator=g, device=self.device)]
        else:
            order = self.fixed_order
        self.graphs_seen, start = 0, p.step
        for i, (lo, hi) in enumerate(self.bounds):
            b = self.model.inputs(self.data.batch(order[lo:hi]))  # self-loops first, as GraphCL's dataset adds them
            inputs = (
                b
                if self.objective.views == 1
                else concat_batches(augment(b, s.aug1, s.aug_ratio, g), augment(b, s.aug2, s.aug_ratio, g))
            )
            self.graphs_seen += inputs.num_graphs
            yield inputs, b.y, start + i  # the steps done before this batch (for an error message)

    def forward(self, batch):
        inputs, _, step = batch
        try:
            with contextlib.ExitStack() as groups:
                for op in self.grouped_ops:
                    groups.enter_context(op.grouped(inputs.batch, inputs.num_graphs))
                return self.model(inputs.x, inputs.edge_index, inputs.batch, inputs.num_graphs)
        except torch.linalg.LinAlgError as exc:  # the PCA basis of non-finite activations
            raise NonFiniteLossError(_pca_failure(self.s, step, exc)) from None

    def loss(self, out, batch) -> torch.Tensor:
        inputs, labels, _ = batch
        return self.objective.loss(
            out,
            labels,
            self.s,
            self.extras,
            lambda net: net(inputs.x, inputs.edge_index, inputs.batch, inputs.num_graphs),
        )

    def after_step(self, step: int) -> None:
        self.objective.step_done(self.model, self.extras, self.s, step)

    def record(self, p: Progress, end: PeriodEnd) -> dict:
        return {
            "epoch": p.period - 1,
            "step": p.step,
            "loss": end.loss,
            "lr": end.lr,
            "epoch_time_s": round(end.seconds, 4),
            "graphs_per_s": round(self.graphs_seen / end.seconds, 1),
        }

    def final_weights(self, best: dict | None) -> dict:
        return {"the final weights": self.model.state_dict()}

    def payload(self, best: dict | None) -> dict:
        s, model = self.s, self.model
        meta = {
            "in_dim": self.graphs.num_features,
            "hidden_dim": s.hidden_dim,
            "num_layers": s.num_layers,
            "out_dim": model.out_dim,
            "head": model.head_kind,
            "self_loops": model.self_loops,  # evaluation and analysis read the graphs as training did
        }
        return {
            "model": model.state_dict(),
            "meta": meta,
            "objective": s.objective,
            "split": self.split,
            "dataset": self.graphs.name,
        }

    def provenance(self, p: Progress, best: dict | None) -> dict:
        from importlib import metadata

        return {
            "data": str(self.data_path),
            "torch_geometric": metadata.version("torch_geometric"),
            "node_features": self.graphs.features,
        }


def load_encoder(model_path: str | Path, device: torch.device):
    """The trained model in eval mode, with ``objective``, ``split`` and ``dataset`` attributes."""
    state = load_torch(model_path, "trained graph model")
    model = build_graph_model(**state["meta"])
    model.load_state_dict(state["model"])
    model.objective = state.get("objective", "contrastive")
    model.split = state.get("split")
    model.dataset = state.get("dataset")
    return model.to(device).eval()
