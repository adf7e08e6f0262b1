"""Training of a GIN with Deep Augmentation at one layer.

``objective="contrastive"`` (the paper's setting, GraphCL in PyGCL's protocol): two GraphCL views of
each graph (by default the graph itself and a ``random4`` view at ratio 0.2, see
:mod:`deepaug.domains.graph.views`), graph-level InfoNCE at temperature 0.2 on the projection head's
output, Adam at lr 0.01, batch 128 graphs (PyGCL ``examples/GraphCL.py`` L114-126; GraphCL
``unsupervised_TU/gsimclr.py`` L154-178 and ``go.sh``: 20 epochs, lr 0.01, 3 layers of 32 units).
``objective="supervised"`` (the supervised counterpart): cross-entropy of a linear classifier on the
graph vector (layer L+2 = the logits), on the graphs of a fixed stratified training split (80%; 10%
dev and 10% test are held out and scored by :mod:`deepaug.domains.graph.evaluate`), without input
augmentation (GraphCL's supervised GIN, ``unsupervised_TU/gin.py`` L132-155, trains on the graphs
as they are).

Both views of a batch go through the encoder in one forward pass, view 1's graphs first (as the
vision trainer concatenates its views): the Deep Augmentation op then sees every row of the batch
(``one_sided`` selection and the PCA basis need both views), and the batch norms normalise over both
views' nodes (PyGCL calls the encoder once per view, so its statistics are per view).

At a node-level layer (0..L) the op is given the batch vector (node -> graph) before the forward
pass, so that a row is one view of one graph (:meth:`deepaug.core.augment.DeepAugment.grouped`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepaug.core.layers import target_module
from deepaug.core.losses import check_loss, contrastive_loss
from deepaug.core.settings import RunSettings
from deepaug.domains.graph.data import concat_batches, load_graphs
from deepaug.domains.graph.models import build_graph_model
from deepaug.domains.graph.views import AUGMENTATIONS, augment
from deepaug.engine import training as T
from deepaug.engine.provenance import provenance
from deepaug.workflow.io import load_torch, save_torch, write_jsonl

LOSSES = ("infonce", "graphcl")  # train.loss (PyGCL's, GraphCL's); the schema's enum (tests/core/test_losses.py)
SPLIT_SEED = 0  # the supervised counterpart's train/dev/test split: one per dataset, shared by every run
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass
class GraphPretrainSettings(RunSettings):
    hidden_dim: int = 32
    num_layers: int = 3
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.01
    weight_decay: float = 0.0
    temperature: float = 0.2
    # deepaug.core.losses: infonce (PyGCL's DualBranchContrast(InfoNCE(tau), mode="G2G"), symmetric over
    # the two views) or graphcl (GraphCL's loss_cal: view 1 as anchor, the positive left out of the denominator).
    loss: str = "infonce"
    aug1: str = "none"  # view 1: the graph itself, as in GraphCL's unsupervised TU code and PyGCL
    aug2: str = "random4"  # view 2: one of dropN, subgraph, permE, maskN per graph
    aug_ratio: float = 0.2
    precision: str = "fp32"  # a few thousand parameters: bf16 saves nothing and loses the sums' precision
    checkpoint_every: int = 1  # epochs

    def validate(self) -> None:
        super().validate()
        for name in ("hidden_dim", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("aug1", "aug2"):
            if getattr(self, name) not in AUGMENTATIONS:
                raise ValueError(f"{name} must be one of {AUGMENTATIONS}, got {getattr(self, name)!r}")
        if not 0.0 <= self.aug_ratio <= 1.0:
            raise ValueError(f"aug_ratio must be in [0, 1], got {self.aug_ratio}")
        check_loss(self.loss, LOSSES)
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        n_layers = self.num_layers + 3
        if self.layer is not None and not 0 <= self.layer < n_layers:
            raise ValueError(f"layer {self.layer} is out of range; a GIN with {self.num_layers} layers has layers "
                             f"0-{n_layers - 1} (0 input, 1-{self.num_layers} GIN layers, {self.num_layers + 1} pooled "
                             f"graph vector, {self.num_layers + 2} head)")


def supervised_split(y: torch.Tensor, seed: int = SPLIT_SEED,
                     fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, list[int]]:
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
        out["test"] += idx[n_dev:n_dev + n_test].tolist()
        out["train"] += idx[n_dev + n_test:].tolist()
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
    why = ("the gradient through the PCA basis (pca_grad: through) is not finite where the activations are "
           "rank-deficient (a narrow layer, or node embeddings that take few distinct values, e.g. constant input "
           "features); use pca_grad: constant, a wider layer (hidden_dim) or another layer"
           if s.method == "pca" and s.pca_grad == "through" and not s.stop_gradient
           else "lower the learning rate or use precision: fp32")
    return (f"run {s.run}: the activations at layer {s.layer} became non-finite by step {step} and their PCA failed "
            f"({str(exc).splitlines()[0]}); {why}. The last good checkpoint is kept.")


def pretrain(s: GraphPretrainSettings, data_path: str | Path, out_dir: str | Path, ckpt_dir: str | Path) -> dict:
    """Train, checkpointing to ``ckpt_dir`` (resumed if present); write model, metrics, provenance to ``out_dir``."""
    t_start = time.time()
    ckpt = T.open_run(s, ckpt_dir, {"data": data_path})
    if (done := ckpt.reuse(out_dir, s.reuse_finished)) is not None:
        return done
    device = T.prepare(s)
    graphs = load_graphs(data_path)
    supervised = s.objective == "supervised"
    split = supervised_split(graphs.y) if supervised else None
    train_idx = torch.tensor(split["train"] if supervised else range(len(graphs)), dtype=torch.long, device=device)
    if train_idx.shape[0] < 2:
        raise ValueError(f"run {s.run}: {data_path} has {train_idx.shape[0]} training graphs; at least 2 are needed")

    model = build_graph_model(graphs.num_features, s.hidden_dim, s.num_layers,
                              graphs.num_classes if supervised else None,
                              "classifier" if supervised else "projection").to(device)
    aug = s.build_augment()
    node_level = False
    if aug is not None:
        aug.attach(target_module(model, s.layer))
        node_level = model.node_level(s.layer)
        T.log(f"{s.run}: Deep Augmentation {aug.extra_repr()} at layer {s.layer} "
              f"({'node level: one row per graph' if node_level else 'graph level'})")
    opt_kwargs = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr, weight_decay=s.weight_decay, **opt_kwargs)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and s.precision == "fp16")
    data = graphs.to(device)

    history, start_epoch, elapsed_before = T.resume_epochs(ckpt, model=model, optimizer=optimizer, scaler=scaler)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = train_idx.shape[0]
    bounds = _chunks(n, min(s.batch_size, n))
    train_time = elapsed_before
    step = start_epoch * len(bounds)
    for epoch in range(start_epoch, s.epochs):
        t0 = time.time()
        # Each epoch is a pure function of (weights, optimiser, seed, epoch): resuming replays it exactly.
        T.seed_everything(T.epoch_seed(s.seed, epoch))
        if aug is not None:
            aug.reseed(T.epoch_seed(s.seed, epoch, stream=1))
        g = torch.Generator(device=device).manual_seed(T.epoch_seed(s.seed, epoch, stream=2))
        order = train_idx[torch.randperm(n, generator=g, device=device)]
        model.train()
        loss_sum = torch.zeros((), device=device)
        graphs_seen = 0
        for lo, hi in bounds:
            b = data.batch(order[lo:hi])
            inputs = b if supervised else concat_batches(augment(b, s.aug1, s.aug_ratio, g),
                                                         augment(b, s.aug2, s.aug_ratio, g))
            groups = aug.grouped(inputs.batch, inputs.num_graphs) if node_level else contextlib.nullcontext()
            try:
                with groups, T.autocast_context(device, s.precision):
                    z = model(inputs.x, inputs.edge_index, inputs.batch, inputs.num_graphs)
            except torch.linalg.LinAlgError as exc:  # the PCA basis of non-finite activations
                raise T.NonFiniteLossError(_pca_failure(s, step, exc)) from None
            if supervised:
                loss = F.cross_entropy(z.float(), b.y)
            else:
                loss = contrastive_loss(s.loss, z.float(), s.temperature)
            T.optimizer_step(optimizer, scaler, loss, s.lr, s.max_grad_norm)
            loss_sum += loss.detach()
            graphs_seen += inputs.num_graphs
            step += 1
        mean_loss = T.check_finite(loss_sum, s.run, step) / len(bounds)
        dt = time.time() - t0
        train_time += dt
        history.append({"epoch": epoch, "step": step, "loss": mean_loss, "lr": s.lr, "epoch_time_s": round(dt, 4),
                        "graphs_per_s": round(graphs_seen / dt, 1)})
        last = epoch == s.epochs - 1
        if last or (epoch + 1) % s.checkpoint_every == 0:
            ckpt.save(T.snapshot(model=model, optimizer=optimizer, scaler=scaler, epoch=epoch, history=history,
                                 train_time_s=train_time), progress=epoch + 1)
            write_jsonl(out_dir / "train_metrics.jsonl", history)

    # The loss is checked before each update; the last update itself can still diverge.
    T.check_finite_state(model.state_dict(), s.run)
    meta = {"in_dim": graphs.num_features, "hidden_dim": s.hidden_dim, "num_layers": s.num_layers,
            "out_dim": model.out_dim, "head": model.head_kind}
    save_torch({"model": model.state_dict(), "meta": meta, "objective": s.objective, "split": split,
                "dataset": graphs.name}, out_dir / "model.pt")
    write_jsonl(out_dir / "train_metrics.jsonl", history)
    from importlib import metadata

    prov = provenance(ckpt.settings, device, time.time() - t_start, {
        "train_time_s": round(train_time, 3), "final_loss": history[-1]["loss"] if history else None,
        "data": str(data_path), "steps": step, "fingerprint": ckpt.fingerprint, "segments": ckpt.all_segments(),
        "torch_geometric": metadata.version("torch_geometric"), "node_features": graphs.features,
    })
    return ckpt.complete(out_dir, prov)


def load_encoder(model_path: str | Path, device: torch.device):
    """The trained model in eval mode, with ``objective``, ``split`` and ``dataset`` attributes."""
    state = load_torch(model_path, "trained graph model")
    model = build_graph_model(**state["meta"])
    model.load_state_dict(state["model"])
    model.objective = state.get("objective", "contrastive")
    model.split = state.get("split")
    model.dataset = state.get("dataset")
    return model.to(device).eval()
