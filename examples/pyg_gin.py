"""Deep Augmentation in a PyTorch Geometric GIN: dropout on one GIN layer's node outputs, one decision per
graph (every node of a selected graph is transformed), during graph contrastive learning.

    python examples/pyg_gin.py --layer 1 --steps 5

Needs torch, torch-geometric and deepaug (`pip install deepaug torch-geometric`). Random graphs stand in for
your dataset (e.g. torch_geometric.datasets.TUDataset).
"""

from __future__ import annotations

import argparse
import math

import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GIN, global_add_pool
from torch_geometric.utils import dropout_edge, erdos_renyi_graph

from deepaug import DeepAugment, nt_xent, rank_layers


def random_graphs(n: int, features: int, seed: int = 0) -> list[Data]:
    torch.manual_seed(seed)
    graphs = []
    for i in range(n):
        nodes = 6 + i % 10
        edge_index = erdos_renyi_graph(nodes, 0.2 + 0.3 * (i % 3) / 2)
        graphs.append(Data(x=torch.randn(nodes, features), edge_index=edge_index))
    return graphs


def two_views(graphs: list[Data]) -> Batch:
    """View 1: the graphs; view 2: each graph with 20% of its edges dropped (GraphCL's edge perturbation).
    One batch, view 1's graphs first, as nt_xent expects."""
    view2 = [Data(x=g.x, edge_index=dropout_edge(g.edge_index, p=0.2)[0]) for g in graphs]
    return Batch.from_data_list(graphs + view2)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", type=int, default=1, help="the GIN layer (0-based index into model.convs)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--graphs", type=int, default=32)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    graphs = random_graphs(a.graphs, features=8)
    model = GIN(in_channels=8, hidden_channels=32, num_layers=3).to(a.device)

    def embed(batch: Batch) -> torch.Tensor:
        return global_add_pool(model(batch.x, batch.edge_index), batch.batch, batch.num_graphs)

    # Which layer? The ranking pools each node-level layer per graph (a Batch has `batch` and `num_graphs`)
    ranking = rank_layers(
        model,
        [Batch.from_data_list(graphs)],
        [f"convs.{i}" for i in range(len(model.convs))],
        n_samples=a.graphs,
        forward=lambda m, b: m(b.x, b.edge_index),
    )
    print("ranked layers:\n" + str(ranking))

    aug = DeepAugment(kind="dropout", rate=0.5, p=0.5, stop_gradient=True, seed=0)
    handle = aug.attach(model.convs[a.layer])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for step in range(a.steps):
        batch = two_views(graphs).to(a.device)
        with aug.grouped(batch.batch, batch.num_graphs):  # a row of the op = all nodes of one view of a graph
            z = embed(batch)
        loss = nt_xent(z, temperature=0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        chosen = int(aug.last_group_mask.sum())
        print(f"step {step} loss {loss.item():.4f} (graphs transformed: {chosen} of {batch.num_graphs})")
        assert math.isfinite(loss.item())
    handle.remove()
    model.eval()
    with torch.no_grad():
        print(f"done: graph embeddings {tuple(embed(Batch.from_data_list(graphs).to(a.device)).shape)}")


if __name__ == "__main__":
    main()
