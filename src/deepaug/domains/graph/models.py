"""GIN encoder in the GraphCL/PyGCL protocol, with a projection head and the Deep Augmentation layer map.

Architecture (Shen-Lab/GraphCL@5003879 ``unsupervised_TU/gin.py`` L21-61; PyGCL@0e1bacb ``examples/GraphCL.py``
L17-50, the same form): ``L`` GIN layers, each ``GINConv(Linear(d_in, h) -> ReLU -> Linear(h, h))`` (sum
aggregation, eps = 0), then ReLU, then ``BatchNorm1d(h)``; every layer's node embeddings are sum-pooled per graph
(``global_add_pool``) and the ``L`` pooled vectors are concatenated into the graph vector (``L * h``
features: the embedding that evaluation uses). The projection head is ``Linear(L h, L h) -> ReLU ->
Linear(L h, L h)`` (GraphCL ``unsupervised_TU/gsimclr.py`` L97, PyGCL ``examples/GraphCL.py`` L35-38).
``init``: ``torch`` leaves PyTorch's default initialisation (PyGCL's GConv sets none); ``xavier`` is GraphCL's
``init_emb`` (``gsimclr.py`` L99-107: Xavier-uniform weights and zero biases of every Linear, the encoder's
included). ``self_loops`` (:func:`deepaug.domains.graph.data.with_self_loops`) is what the encoder was trained
with and so must be evaluated with: :meth:`GIN.inputs` applies it to a batch (training applies it before the
views are drawn, as GraphCL's dataset does). The supervised counterpart replaces the head by one linear
classifier on the graph vector (its output: the class logits).

Layer map (the paper's indices for a GIN with ``L`` layers):

* 0: the input node embedding. Neither reference embeds the node features before the first GIN
  layer (``gin.py`` L38 and ``GraphCL.py`` L29 feed the raw features to the first ``GINConv``), so
  layer 0 is the input features themselves (an identity module): adding a linear embedding would
  change the baseline architecture whose numbers we compare with. Dropout there masks node features
  (akin to GraphCL's attribute masking); PCA removes a direction of the feature space.
* 1..L: the outputs of the GIN layers (node level, after the batch norm: what is pooled).
* L+1: the pooled graph vector (one row per graph).
* L+2: the projection head's output (contrastive) or the logits (supervised).

Layers 0..L are node level: a "row" of the Deep Augmentation op is then a graph's set of nodes (see
:meth:`GIN.node_level` and :meth:`deepaug.core.augment.DeepAugment.set_groups`).

Stop-gradient in this architecture: every GIN layer's output is pooled into the graph vector, so a
layer below the targeted node-level layer k reaches the loss both through layer k and through its own
pooled sum. Detaching the selected graphs' nodes at layer k cuts the first path only: layer k's own
parameters get no gradient from them, the layers below still learn from their pooled outputs (and
from the unselected graphs). At k = L+1 (the pooled vector) every GIN layer is cut off for the
selected graphs. (tests/domains/graph/test_graph_deepaug.py checks both against direct computations.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GINConv, global_add_pool

from deepaug.domains.graph.data import SELF_LOOPS, GraphBatch, with_self_loops

INITS = ("torch", "xavier")  # model.init (the schema's enum)


class GINLayer(nn.Module):
    """``BN(ReLU(GINConv(x)))``: one layer of GraphCL's encoder (``gin.py`` L52-53)."""

    def __init__(self, in_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.conv = GINConv(nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim)))
        self.bn = nn.BatchNorm1d(hidden_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x, edge_index)))


class SumPoolConcat(nn.Module):
    """Sum-pool each layer's node embeddings per graph and concatenate (``gin.py`` L58-59)."""

    def forward(self, layers: list[torch.Tensor], batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        return torch.cat([global_add_pool(z, batch, size=num_graphs) for z in layers], dim=1)


class GIN(nn.Module):
    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 32,
        num_layers: int = 2,
        out_dim: int | None = None,
        head: str = "projection",
        init: str = "torch",
        self_loops: str = "none",
    ) -> None:
        super().__init__()
        if num_layers < 1 or hidden_dim < 1 or in_dim < 1:
            raise ValueError(
                f"GIN needs in_dim, hidden_dim and num_layers >= 1, got {in_dim}, {hidden_dim}, {num_layers}"
            )
        if head not in ("projection", "classifier"):
            raise ValueError(f"head must be 'projection' or 'classifier', got {head!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if self_loops not in SELF_LOOPS:
            raise ValueError(f"self_loops must be one of {SELF_LOOPS}, got {self_loops!r}")
        self.in_dim, self.hidden_dim, self.num_layers, self.head_kind = in_dim, hidden_dim, num_layers, head
        self.self_loops = self_loops
        graph_dim = hidden_dim * num_layers
        self.out_dim = out_dim or graph_dim
        self.input = nn.Identity()
        self.layers = nn.ModuleList([GINLayer(in_dim if i == 0 else hidden_dim, hidden_dim) for i in range(num_layers)])
        self.pool = SumPoolConcat()
        if head == "projection":
            self.head = nn.Sequential(
                nn.Linear(graph_dim, graph_dim), nn.ReLU(inplace=True), nn.Linear(graph_dim, self.out_dim)
            )
        else:
            self.head = nn.Linear(graph_dim, self.out_dim)
        if init == "xavier":  # GraphCL's init_emb over every module (gsimclr.py L101-107)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def inputs(self, b: GraphBatch) -> GraphBatch:
        """The batch as this encoder reads it: with the self-loops it was trained with."""
        return with_self_loops(b, self.self_loops)

    @property
    def graph_dim(self) -> int:
        return self.hidden_dim * self.num_layers

    def deepaug_layers(self) -> list[tuple[str, nn.Module]]:
        from deepaug.domains.graph.layers import layers  # the map, stated once

        head = "projection head" if self.head_kind == "projection" else "classifier logits"
        modules = (self.input, *self.layers, self.pool, self.head)
        return [
            (layer.description, module) for layer, module in zip(layers(self.num_layers, head), modules, strict=True)
        ]

    def node_level(self, index: int) -> bool:
        """Whether layer ``index`` has one activation row per node (0..L) rather than per graph."""
        return 0 <= index <= self.num_layers

    def encode(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """The graph vector (layer L+1): what evaluation uses."""
        z = self.input(x)
        outs = []
        for layer in self.layers:
            z = layer(z, edge_index)
            outs.append(z)
        return self.pool(outs, batch, num_graphs)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        return self.head(self.encode(x, edge_index, batch, num_graphs))


def build_graph_model(
    in_dim: int,
    hidden_dim: int = 32,
    num_layers: int = 2,
    out_dim: int | None = None,
    head: str = "projection",
    init: str = "torch",
    self_loops: str = "none",
) -> GIN:
    return GIN(in_dim, hidden_dim, num_layers, out_dim, head, init, self_loops)
