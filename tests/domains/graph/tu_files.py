"""Writing graphs in the TU file format, and the toy MUTAG-like set of the graph tests."""

import numpy as np


def write_tu(folder, name, graphs, node_labels=True):
    """Write ``graphs`` [(n_nodes, undirected edge list, graph label, node labels)] as TU files under
    ``folder/name/raw`` (the layout TUDataset expects): ``{name}_A.txt`` (1-based node ids, both
    directions), ``_graph_indicator``, ``_graph_labels`` and, with ``node_labels``, ``_node_labels``."""
    raw = folder / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    a, indicator, glabels, nlabels = [], [], [], []
    offset = 0
    for g, (n, edges, label, labels) in enumerate(graphs, 1):
        for u, v in edges:
            a += [f"{u + offset + 1}, {v + offset + 1}", f"{v + offset + 1}, {u + offset + 1}"]
        indicator += [str(g)] * n
        glabels.append(str(label))
        nlabels += [str(x) for x in labels]
        offset += n
    (raw / f"{name}_A.txt").write_text("\n".join(a) + "\n")
    (raw / f"{name}_graph_indicator.txt").write_text("\n".join(indicator) + "\n")
    (raw / f"{name}_graph_labels.txt").write_text("\n".join(glabels) + "\n")
    if node_labels:
        (raw / f"{name}_node_labels.txt").write_text("\n".join(nlabels) + "\n")
    return raw


def toy_graphs(n_graphs=60, seed=0):
    """MUTAG-like: labels -1/+1 (as MUTAG's file has), 3 node labels drawn independently of the class;
    class -1 are rings of 6-12 nodes, class +1 random trees of 6-12 nodes (learnable from structure only)."""
    rng = np.random.RandomState(seed)
    graphs = []
    for i in range(n_graphs):
        n = int(rng.randint(6, 13))
        if i % 2 == 0:
            edges = [(k, (k + 1) % n) for k in range(n)]
            label = -1
        else:
            edges = [(int(rng.randint(k)), k) for k in range(1, n)]
            label = 1
        graphs.append((n, edges, label, rng.randint(0, 3, size=n).tolist()))
    return graphs
