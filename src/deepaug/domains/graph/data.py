"""Graph-classification datasets, prepared once into one file, and their batches.

TU datasets (MUTAG, PROTEINS, NCI1, IMDB-BINARY, ...) come through PyTorch Geometric's
``TUDataset`` (the data rule is the only place that downloads). Node features are the node labels'
one-hot encoding (``use_node_attr=False``: continuous node attributes are dropped, as in GraphCL's
``unsupervised_TU/aug.py`` L74-76 and PyG's default). A dataset without node labels (IMDB-BINARY)
gets the features of ``missing_features``:

* ``"constant"`` (default): one feature equal to 1 on every node. This is GraphCL's rule for the
  unsupervised TU table whose numbers we compare with: Shen-Lab/GraphCL ``unsupervised_TU/aug.py``
  L80-94 keeps the node labels of MUTAG, PTC_MR, DD, PROTEINS, NCI1 and NCI109 and sets
  ``x = torch.ones((num_node, 1))`` for every other dataset; PyGCL's ``examples/GraphCL.py`` L76-78
  does the same for a dataset without ``x``. (GIN's first sum aggregation turns it into the degree.)
* ``"degree"``: the one-hot node degree, capped at the dataset's largest degree (the "odeg" features
  of GraphCL's semi-supervised code, ``semisupervised_TU/pre-training/datasets.py`` L18-20 with
  ``feature_expansion.py``'s ``onehot_maxdeg``).

For the four datasets of the paper config the labelled/unlabelled split coincides with GraphCL's
list. The offline demo set ``synthetic`` is generated here (see :func:`synthetic_graphs`).

The prepared file (``torch.save`` of a dict, written atomically) holds the graphs concatenated:
``x`` (nodes x features, float32), ``edge_index`` (2 x edges, node ids local to each graph, both
directions of an undirected edge), ``node_ptr``/``edge_ptr`` (graph g owns nodes
``node_ptr[g]:node_ptr[g+1]`` and edges ``edge_ptr[g]:edge_ptr[g+1]``), ``y`` (graph labels 0..C-1)
and a description. :func:`load_graphs` reads it into a :class:`GraphSet`, whose :meth:`GraphSet.batch`
collates any subset of graphs into one :class:`GraphBatch` (the PyG ``Batch`` layout: a disjoint
union with a ``batch`` vector mapping nodes to graphs) with tensor operations only.

Both ends are checked, since PyG's reader trusts its files and ``torch.load`` trusts its archive: the TU
text files against each other before PyG reads them (:func:`check_tu_files`), and a prepared file when it
is loaded (a whole, undamaged archive; tensors that agree; finite node features: :func:`check_prepared`).
Each fault is a :class:`~deepaug.errors.DataValidationError` of one line naming the file and the fault.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepaug.errors import DataUnavailableError, DataValidationError
from deepaug.io import load_torch, save_torch

FORMAT = 1
# The paper config's TU datasets (and a few other common TU graph-classification benchmarks).
TU_DATASETS = {
    "MUTAG": "188 nitro compounds, 2 classes, 7 node labels",
    "PROTEINS": "1,113 proteins, 2 classes, 3 node labels",
    "NCI1": "4,110 chemical compounds, 2 classes, 37 node labels",
    "IMDB-BINARY": "1,000 ego-networks of actors, 2 classes, no node labels",
    "PTC_MR": "344 compounds, 2 classes, 18 node labels",
    "NCI109": "4,127 compounds, 2 classes, 38 node labels",
    "DD": "1,178 proteins, 2 classes, 89 node labels",
    "IMDB-MULTI": "1,500 ego-networks, 3 classes, no node labels",
    "REDDIT-BINARY": "2,000 discussion threads, 2 classes, no node labels",
    "COLLAB": "5,000 ego-networks, 3 classes, no node labels",
}
SYNTHETIC = "synthetic"
MISSING_FEATURES = ("constant", "degree")


@dataclass
class GraphBatch:
    """A disjoint union of graphs (PyG's ``Batch`` layout) on one device."""

    x: torch.Tensor  # (nodes, features)
    edge_index: torch.Tensor  # (2, edges), global node ids
    batch: torch.Tensor  # (nodes,), node -> graph (0 .. num_graphs - 1)
    num_graphs: int
    y: torch.Tensor | None = None  # (num_graphs,)

    def to(self, device) -> GraphBatch:
        return GraphBatch(
            self.x.to(device),
            self.edge_index.to(device),
            self.batch.to(device),
            self.num_graphs,
            None if self.y is None else self.y.to(device),
        )


def concat_batches(first: GraphBatch, second: GraphBatch) -> GraphBatch:
    """``first``'s graphs, then ``second``'s, as one batch (e.g. view 1 then view 2 of the same graphs)."""
    offset = first.x.shape[0]
    y = None if first.y is None or second.y is None else torch.cat([first.y, second.y])
    return GraphBatch(
        torch.cat([first.x, second.x]),
        torch.cat([first.edge_index, second.edge_index + offset], dim=1),
        torch.cat([first.batch, second.batch + first.num_graphs]),
        first.num_graphs + second.num_graphs,
        y,
    )


SELF_LOOPS = ("none", "graphcl", "all")  # model.self_loops (the schema's enum)


def with_self_loops(b: GraphBatch, mode: str) -> GraphBatch:
    """``b`` with self-loops added after its edges (``mode`` ``none``: ``b`` itself).

    ``graphcl``: GraphCL's unsupervised TU dataset adds ``[n, n]`` for ``n in range(edge_index.max())`` to
    every graph it hands out, for training and for the evaluation's embeddings alike (Shen-Lab/GraphCL@5003879
    ``unsupervised_TU/aug.py`` L227-229): every node below the largest node id of the graph's edge list gets
    one, the node of that largest id does not (an off-by-one of the reference, reproduced: its published numbers
    were made so), nor does any node above it. A graph without edges gets none (GraphCL's ``max()`` of an empty
    tensor fails there). ``all``: every node gets one."""
    if mode not in SELF_LOOPS:
        raise ValueError(f"self_loops must be one of {SELF_LOOPS}, got {mode!r}")
    if mode == "none":
        return b
    n = b.x.shape[0]
    device = b.x.device
    counts = torch.bincount(b.batch, minlength=b.num_graphs)
    start = _exclusive_cumsum(counts)
    if mode == "all":
        looped = torch.ones(n, dtype=torch.bool, device=device)
    else:
        # the largest node id of each graph's edge list, local to the graph (-1: no edges)
        ends = b.edge_index.reshape(-1)
        largest = torch.full((b.num_graphs,), -1, dtype=torch.long, device=device)
        largest = largest.scatter_reduce(0, b.batch[ends], ends - start[b.batch[ends]], reduce="amax")
        local = torch.arange(n, device=device) - start[b.batch]
        looped = local < largest[b.batch]
    nodes = torch.arange(n, device=device)[looped]
    return GraphBatch(b.x, torch.cat([b.edge_index, nodes.expand(2, -1)], dim=1), b.batch, b.num_graphs, b.y)


def _exclusive_cumsum(counts: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(counts, 0) - counts


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``cat([arange(s, s + c) for s, c in zip(starts, counts)])`` without a Python loop."""
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts, output_size=total)
    return starts[owner] + torch.arange(total, device=counts.device) - _exclusive_cumsum(counts)[owner]


@dataclass
class GraphSet:
    """Every graph of a prepared dataset, concatenated (see the module docstring)."""

    name: str
    x: torch.Tensor
    edge_index: torch.Tensor
    node_ptr: torch.Tensor
    edge_ptr: torch.Tensor
    y: torch.Tensor
    num_classes: int
    features: str = ""

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])

    def to(self, device) -> GraphSet:
        return GraphSet(
            self.name,
            self.x.to(device),
            self.edge_index.to(device),
            self.node_ptr.to(device),
            self.edge_ptr.to(device),
            self.y.to(device),
            self.num_classes,
            self.features,
        )

    def batch(self, index: torch.Tensor | list[int] | np.ndarray) -> GraphBatch:
        """The graphs ``index`` (in that order) as one :class:`GraphBatch`, on this set's device."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.y.device)
        n_nodes = self.node_ptr[index + 1] - self.node_ptr[index]
        n_edges = self.edge_ptr[index + 1] - self.edge_ptr[index]
        nodes = _ranges(self.node_ptr[index], n_nodes)
        edges = _ranges(self.edge_ptr[index], n_edges)
        graph = torch.arange(index.shape[0], device=index.device)
        edge_graph = torch.repeat_interleave(graph, n_edges, output_size=edges.shape[0])
        offsets = _exclusive_cumsum(n_nodes)
        return GraphBatch(
            x=self.x[nodes],
            edge_index=self.edge_index[:, edges] + offsets[edge_graph],
            batch=torch.repeat_interleave(graph, n_nodes, output_size=nodes.shape[0]),
            num_graphs=int(index.shape[0]),
            y=self.y[index],
        )


# ----------------------------------------------------------------------------- preparing
def _from_graphs(
    name: str, graphs: list[tuple[torch.Tensor | None, torch.Tensor, int, int]], missing_features: str, source: str
) -> dict:
    """The prepared dict from ``(x or None, local edge_index, num_nodes, label)`` per graph."""
    if missing_features not in MISSING_FEATURES:
        raise ValueError(f"missing_features must be one of {MISSING_FEATURES}, got {missing_features!r}")
    if not graphs:
        raise DataValidationError(f"dataset {name!r} has no graphs")
    has_x = [g[0] is not None for g in graphs]
    if any(has_x) and not all(has_x):
        raise DataValidationError(f"dataset {name!r}: some graphs have node features and some do not")
    counts = torch.tensor([g[2] for g in graphs], dtype=torch.long)
    edges = [g[1].long().reshape(2, -1) for g in graphs]
    edge_index = torch.cat(edges, dim=1)
    node_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
    edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.tensor([e.shape[1] for e in edges]), 0)])
    if all(has_x):
        x = torch.cat([g[0].float() for g in graphs])
        features = "node labels (one-hot)"
    elif missing_features == "constant":
        x = torch.ones(int(counts.sum()), 1)
        features = "constant 1 (no node labels; GraphCL unsupervised_TU/aug.py L80-94)"
    else:
        owner = torch.repeat_interleave(torch.arange(len(graphs)), torch.tensor([e.shape[1] for e in edges]))
        src = edge_index[0] + node_ptr[owner]
        degree = torch.bincount(src, minlength=int(counts.sum()))
        x = torch.nn.functional.one_hot(degree, int(degree.max()) + 1).float()
        features = f"one-hot degree 0-{int(degree.max())} (no node labels)"
    y_raw = torch.tensor([g[3] for g in graphs], dtype=torch.long)
    classes, y = torch.unique(y_raw, sorted=True, return_inverse=True)
    if len(classes) < 2:
        raise DataValidationError(f"dataset {name!r} has a single class ({classes.tolist()}); nothing to classify")
    bad = [i for i, e in enumerate(edges) if e.numel() and (int(e.min()) < 0 or int(e.max()) >= int(counts[i]))]
    if bad:
        raise DataValidationError(f"dataset {name!r}: graph {bad[0]} has an edge to a node it does not have")
    return {
        "format": FORMAT,
        "name": name,
        "source": source,
        "features": features,
        "x": x.contiguous(),
        "edge_index": edge_index.contiguous(),
        "node_ptr": node_ptr,
        "edge_ptr": edge_ptr,
        "y": y,
        "num_classes": int(len(classes)),
        "label_values": classes.tolist(),
    }


# ----------------------------------------------------------------------------- TU text files, checked
# PyG's reader (torch_geometric/io/tu.py) trusts its files: a missing last line end drops that line, too few
# graph labels end in an IndexError, extra ones are ignored, node ids past the node count or joining two graphs
# become edges of the wrong graph (or a negative local id), and a graph indicator that skips a graph makes an
# empty graph. So every file is read and checked here first; a fault is one line naming the file and the line.
TU_REQUIRED = ("A", "graph_indicator", "graph_labels")
TU_PER_NODE = ("node_labels", "node_attributes")
TU_PER_EDGE = ("edge_labels", "edge_attributes")


def _tu_fix(raw: Path) -> str:
    return f"fix the file, or delete {raw} and run the data rule again to download the dataset afresh"


def _read_tu_file(path: Path, integer: bool, columns: int | None = None) -> np.ndarray:
    """The numbers of one TU text file as a (lines, columns) array: one line per node, edge or graph, values
    separated by commas, every line (the last one too) ended by a newline."""
    fix = _tu_fix(path.parent)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DataValidationError(f"{path} is not a text file (not UTF-8); {fix}") from None
    if not text.strip():
        raise DataValidationError(f"{path} is empty ({path.stat().st_size} bytes); {fix}")
    lines = text.split("\n")
    if lines[-1] != "":
        raise DataValidationError(
            f"{path}: the last line (line {len(lines)}) has no line end, and PyG's TU reader drops such a line; "
            f"end the file with a newline"
        )
    lines.pop()
    blank = next((i for i, line in enumerate(lines) if not line.strip()), None)
    if blank is not None:
        raise DataValidationError(
            f"{path}: line {blank + 1} is blank; every line holds one {'edge' if columns == 2 else 'value'}; {fix}"
        )
    commas = np.fromiter((line.count(",") for line in lines), dtype=np.int64, count=len(lines))
    width = columns if columns is not None else int(commas[0]) + 1
    wrong = np.flatnonzero(commas != width - 1)
    if wrong.size:
        i = int(wrong[0])
        what = "two node ids, 'u, v'" if columns == 2 else f"{width} value{'s' if width > 1 else ''} (as line 1)"
        raise DataValidationError(
            f"{path}: line {i + 1} ({lines[i].strip()!r}) has {int(commas[i]) + 1} "
            f"comma-separated values, expected {what}; {fix}"
        )
    dtype = np.int64 if integer else np.float64
    try:
        values = np.array(",".join(lines).split(","))
        return values.astype(dtype).reshape(len(lines), width)
    except (ValueError, OverflowError):
        pass
    for i, line in enumerate(lines):  # the slow way, only to name the line at fault
        for token in line.split(","):
            try:
                np.array([token]).astype(dtype)
            except (ValueError, OverflowError):
                raise DataValidationError(
                    f"{path}: line {i + 1} holds {token.strip()!r}, not "
                    f"{'a whole number' if integer else 'a number'}; {fix}"
                ) from None
    raise DataValidationError(f"{path} cannot be read as numbers; {fix}")  # not reached


def check_tu_files(name: str, raw: Path) -> np.ndarray:
    """Check the TU files of dataset ``name`` in ``raw`` against each other; returns the node count of
    each graph. Raises :class:`DataValidationError` naming the file, the line and the fault."""
    raw = Path(raw)
    fix = _tu_fix(raw)
    path = {kind: raw / f"{name}_{kind}.txt" for kind in (*TU_REQUIRED, *TU_PER_NODE, *TU_PER_EDGE, "graph_attributes")}
    if not path["graph_labels"].is_file():
        if path["graph_attributes"].is_file():
            raise DataValidationError(
                f"{raw}: dataset {name!r} has graph attributes (a regression target) and no "
                f"{path['graph_labels'].name}; deepaug classifies graphs and needs one label "
                f"per graph"
            )
        raise DataValidationError(f"{raw} has no {path['graph_labels'].name} (one class label per graph); {fix}")
    for kind in ("A", "graph_indicator"):
        if not path[kind].is_file():
            raise DataValidationError(f"{raw} has no {path[kind].name}; {fix}")
    indicator = _read_tu_file(path["graph_indicator"], True, 1)[:, 0]
    where = path["graph_indicator"]
    if int(indicator.min()) < 1:
        i = int(np.argmax(indicator < 1))
        raise DataValidationError(
            f"{where}: line {i + 1} puts node {i + 1} in graph {int(indicator[i])}; graph ids start at 1; {fix}"
        )
    back = np.flatnonzero(np.diff(indicator) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataValidationError(
            f"{where}: line {i + 1} goes back from graph {int(indicator[i - 1])} to graph "
            f"{int(indicator[i])}; nodes must be listed graph by graph, in order; {fix}"
        )
    jump = np.flatnonzero(np.diff(indicator) > 1)
    if int(indicator[0]) != 1 or jump.size:
        i = 0 if int(indicator[0]) != 1 else int(jump[0]) + 1
        missing = 1 if i == 0 else int(indicator[i - 1]) + 1
        raise DataValidationError(
            f"{where}: graph {missing} has no nodes (line {i + 1} jumps to graph {int(indicator[i])}); {fix}"
        )
    n_nodes, n_graphs = int(indicator.shape[0]), int(indicator[-1])
    labels = _read_tu_file(path["graph_labels"], True, 1)
    if labels.shape[0] != n_graphs:
        raise DataValidationError(
            f"{path['graph_labels']} has {labels.shape[0]} labels for the {n_graphs} graphs of "
            f"{where.name} ({'fewer' if labels.shape[0] < n_graphs else 'more'} labels than graphs); {fix}"
        )
    for kind in TU_PER_NODE:
        if path[kind].is_file():
            rows = _read_tu_file(path[kind], kind.endswith("labels")).shape[0]
            if rows != n_nodes:
                raise DataValidationError(
                    f"{path[kind]} has {rows} lines for the {n_nodes} nodes of {where.name}; {fix}"
                )
    edges = _read_tu_file(path["A"], True, 2)
    for col in (0, 1):
        low, high = edges[:, col] < 1, edges[:, col] > n_nodes
        if low.any() or high.any():
            i = int(np.argmax(low | high))
            node = int(edges[i, col])
            why = "TU node ids start at 1" if node < 1 else f"{where.name} has {n_nodes} nodes"
            raise DataValidationError(f"{path['A']}: line {i + 1} has node id {node}, but {why}; {fix}")
    graph_of = indicator[edges - 1]
    across = np.flatnonzero(graph_of[:, 0] != graph_of[:, 1])
    if across.size:
        i = int(across[0])
        raise DataValidationError(
            f"{path['A']}: line {i + 1} joins node {int(edges[i, 0])} (graph {int(graph_of[i, 0])}) to node "
            f"{int(edges[i, 1])} (graph {int(graph_of[i, 1])}) of another graph ({where.name}); {fix}"
        )
    for kind in TU_PER_EDGE:
        if path[kind].is_file():
            rows = _read_tu_file(path[kind], kind.endswith("labels")).shape[0]
            if rows != edges.shape[0]:
                raise DataValidationError(
                    f"{path[kind]} has {rows} lines for the {edges.shape[0]} edges of {path['A'].name}; {fix}"
                )
    return np.bincount(indicator, minlength=n_graphs + 1)[1:]


def _tu_graphs(name: str, raw_dir: Path, download: bool) -> list:
    """Every graph of TU dataset ``name`` read by PyG's ``TUDataset`` from ``raw_dir/name/raw``."""
    from torch_geometric.datasets import TUDataset

    raw = Path(raw_dir) / name / "raw"
    have_raw = (raw / f"{name}_A.txt").is_file() and (raw / f"{name}_graph_indicator.txt").is_file()
    url = f"{TUDataset.url}/{name}.zip"
    how = (
        f"run the data rule on a machine with internet access (PyG downloads {url}), or unzip that "
        f"archive's {name}_*.txt files into {raw}"
    )
    if not have_raw and not download:
        raise DataUnavailableError(
            f"TU dataset {name!r} is not in {raw} and downloads are off (download: false); {how}"
        )
    sizes = check_tu_files(name, raw) if have_raw else None  # before PyG reads them (see check_tu_files)
    try:
        dataset = TUDataset(str(raw_dir), name=name)
    except Exception as exc:  # URLError, socket errors, a bad zip ...
        if sizes is None and (raw / f"{name}_A.txt").is_file():
            check_tu_files(name, raw)  # downloaded files that PyG could not read: the fault, named
        raise DataUnavailableError(
            f"could not obtain TU dataset {name!r} into {raw}: {type(exc).__name__}: {exc}; {how}"
        ) from exc
    if sizes is None:
        sizes = check_tu_files(name, raw)
    graphs = []
    for data in dataset:
        # a dataset with node attributes but no node labels: PyG leaves (n, 0) features once the attributes
        # are dropped (use_node_attr=False); that is a dataset without node labels
        x = data.x if data.x is not None and data.x.shape[1] > 0 else None
        graphs.append((x, data.edge_index, int(data.num_nodes), int(data.y.view(-1)[0])))
    read = [g[2] for g in graphs]
    if read != sizes.tolist():  # PyG reuses processed/ without looking at the raw files again
        differ = (
            f"{len(read)} graphs instead of {len(sizes)}"
            if len(read) != len(sizes)
            else f"graph {next(i for i, (a, b) in enumerate(zip(read, sizes)) if a != b) + 1} differs"
        )
        raise DataValidationError(
            f"{dataset.processed_dir} was made from other {name}_*.txt files than those in "
            f"{raw} ({differ}); delete {dataset.processed_dir} and run the data rule again"
        )
    return graphs


def prepare_graph_dataset(
    name: str,
    out: str | Path,
    raw_dir: str | Path = "data/raw",
    download: bool = True,
    missing_features: str = "constant",
    seed: int = 0,
) -> Path:
    """Write the prepared file of dataset ``name`` (a TU name, or ``synthetic``) to ``out``.

    TU datasets are read from ``raw_dir/<name>/raw`` and downloaded there first when missing and
    ``download``; offline, or for an unknown name, :class:`DataUnavailableError` says what to do.
    ``seed`` only matters for ``synthetic``.
    """
    if missing_features not in MISSING_FEATURES:
        raise ValueError(f"missing_features must be one of {MISSING_FEATURES}, got {missing_features!r}")
    if name == SYNTHETIC:
        prepared = _from_graphs(name, synthetic_graphs(seed=seed), missing_features, f"synthetic (seed {seed})")
    elif name in TU_DATASETS:
        prepared = _from_graphs(
            name, _tu_graphs(name, Path(raw_dir), download), missing_features, "TUDataset (torch_geometric)"
        )
    else:
        raise DataUnavailableError(
            f"unknown graph dataset {name!r}; known: {SYNTHETIC} (offline demo) and the TU datasets "
            f"{', '.join(TU_DATASETS)}. Add other TU names to deepaug.domains.graph.data.TU_DATASETS."
        )
    out = Path(out)
    save_torch(prepared, out)
    return out


def _prepared_fix(path: Path, name: object = None) -> str:
    dataset = name if isinstance(name, str) and name else path.stem
    return f"delete it and run the data rule again (python -m deepaug prepare-graph --dataset {dataset} --out {path})"


def _check_archive(path: Path) -> None:
    """A prepared file is a whole zip archive (what ``torch.save`` writes): not empty, not cut short, every
    member's checksum right. Refused with one line naming the file otherwise."""
    fix = _prepared_fix(path)
    if path.stat().st_size == 0:
        raise DataValidationError(
            f"{path}: the prepared graph dataset is empty (0 bytes: an interrupted write or copy); {fix}"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DataValidationError(
            f"{path}: the prepared graph dataset is truncated or not written by torch.save ({exc}); {fix}"
        ) from None
    if damaged is not None:
        raise DataValidationError(
            f"{path}: the prepared graph dataset is damaged ({damaged} does not match its checksum); {fix}"
        )


def check_prepared(d: dict, path: str | Path) -> None:
    """The tensors of a prepared dict agree with each other (the layout of the module docstring) and the node
    features are finite; :class:`DataValidationError` naming the file and the fault otherwise."""
    path = Path(path)
    name = d.get("name")
    fix = _prepared_fix(path, name)
    for key in ("x", "edge_index", "node_ptr", "edge_ptr", "y"):
        if not isinstance(d.get(key), torch.Tensor):
            raise DataValidationError(f"{path}: {key!r} is missing or not a tensor; {fix}")
    x, ei, node_ptr, edge_ptr, y = (d[k] for k in ("x", "edge_index", "node_ptr", "edge_ptr", "y"))
    num_classes = d.get("num_classes")
    if not isinstance(name, str) or not isinstance(num_classes, int) or isinstance(num_classes, bool):
        raise DataValidationError(f"{path}: 'name' (a string) or 'num_classes' (a whole number) is missing; {fix}")
    if not x.is_floating_point() or x.dim() != 2 or x.shape[1] == 0:
        raise DataValidationError(
            f"{path}: x must be a float (nodes x features) matrix with at least one feature, "
            f"not {x.dtype} of shape {tuple(x.shape)}; {fix}"
        )
    if ei.dtype != torch.long or ei.dim() != 2 or ei.shape[0] != 2:
        raise DataValidationError(
            f"{path}: edge_index must be a 2 x edges int64 tensor, not {ei.dtype} of shape {tuple(ei.shape)}; {fix}"
        )
    if y.dtype != torch.long or y.dim() != 1 or y.shape[0] == 0:
        raise DataValidationError(
            f"{path}: y must hold one int64 label per graph, not {y.dtype} of shape {tuple(y.shape)}; {fix}"
        )
    n_graphs = int(y.shape[0])
    for key, ptr, total, what in (
        ("node_ptr", node_ptr, x.shape[0], "nodes (rows of x)"),
        ("edge_ptr", edge_ptr, ei.shape[1], "edges (columns of edge_index)"),
    ):
        if ptr.dtype != torch.long or ptr.dim() != 1 or ptr.shape[0] != n_graphs + 1:
            raise DataValidationError(
                f"{path}: {key} must hold {n_graphs + 1} int64 offsets (one more than the "
                f"{n_graphs} labels of y), not {ptr.dtype} of shape {tuple(ptr.shape)}; {fix}"
            )
        if int(ptr[0]) != 0 or int(ptr[-1]) != total or bool((ptr[1:] < ptr[:-1]).any()):
            raise DataValidationError(
                f"{path}: {key} does not cut the {total} {what} into {n_graphs} graphs (it "
                f"must rise from 0 to {total}); {fix}"
            )
    n_nodes = node_ptr[1:] - node_ptr[:-1]
    if bool((n_nodes == 0).any()):
        raise DataValidationError(f"{path}: graph {int(torch.nonzero(n_nodes == 0)[0])} has no nodes; {fix}")
    owner = torch.repeat_interleave(torch.arange(n_graphs), edge_ptr[1:] - edge_ptr[:-1])
    outside = ((ei < 0) | (ei >= n_nodes[owner])).any(dim=0)
    if bool(outside.any()):
        e = int(torch.nonzero(outside)[0])
        g = int(owner[e])
        raise DataValidationError(
            f"{path}: graph {g} has an edge from node {int(ei[0, e])} to node {int(ei[1, e])}, "
            f"but its nodes are 0-{int(n_nodes[g]) - 1}; {fix}"
        )
    if num_classes < 2 or int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise DataValidationError(
            f"{path}: y must hold labels 0-{num_classes - 1} of at least 2 classes "
            f"(num_classes {num_classes}), found {int(y.min())}-{int(y.max())}; {fix}"
        )
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        node, feature = (int(v) for v in torch.nonzero(~finite)[0])
        n_bad = int((~finite).any(dim=1).sum())
        g = int(torch.searchsorted(node_ptr, node, right=True)) - 1
        features = d.get("features") or "node features"
        raise DataValidationError(
            f"{path}: dataset {name!r} has non-finite node features (NaN or inf) at "
            f"{n_bad} node{'s' if n_bad != 1 else ''}, first at feature {feature} of {features} of node "
            f"{node - int(node_ptr[g])} in graph {g}; training on them would stop with a NaN loss (the data is at "
            f"fault, not the learning rate); {fix}"
        )


def load_graphs(path: str | Path) -> GraphSet:
    """A prepared file as a :class:`GraphSet` (on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise DataUnavailableError(
            f"{path}: no prepared graph dataset; run the data rule "
            f"(python -m deepaug prepare-graph --dataset NAME --out {path})"
        )
    _check_archive(path)
    d = load_torch(path, "prepared graph dataset")
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise DataValidationError(f"{path} is not a prepared graph dataset (format {FORMAT}); prepare it again")
    check_prepared(d, path)
    return GraphSet(
        d["name"],
        d["x"],
        d["edge_index"],
        d["node_ptr"],
        d["edge_ptr"],
        d["y"],
        d["num_classes"],
        d.get("features", ""),
    )


# ----------------------------------------------------------------------------- the offline demo set
SYNTHETIC_FAMILIES = ("erdos-renyi", "barabasi-albert", "ring of cliques")


def _undirected(pairs: set[tuple[int, int]]) -> torch.Tensor:
    """Both directions of each undirected edge, sorted (PyG's coalesced layout)."""
    both = sorted({(a, b) for a, b in pairs} | {(b, a) for a, b in pairs})
    return torch.tensor(both, dtype=torch.long).reshape(-1, 2).t().contiguous()


def _erdos_renyi(n: int, rng: np.random.RandomState, mean_degree: float = 4.0) -> set:
    p = mean_degree / (n - 1)
    return {(i, j) for i in range(n) for j in range(i + 1, n) if rng.rand() < p}


def _barabasi_albert(n: int, rng: np.random.RandomState, m: int = 2) -> set:
    """Preferential attachment: each new node links to ``m`` existing nodes chosen by degree."""
    edges = {(0, 1), (0, 2), (1, 2)}  # a triangle to start from
    ends = [0, 1, 0, 2, 1, 2]  # every edge end once: sampling from it is sampling by degree
    for new in range(3, n):
        targets: set[int] = set()
        while len(targets) < m:
            targets.add(ends[rng.randint(len(ends))])
        for t in targets:
            edges.add((t, new))
            ends += [t, new]
    return edges


def _ring_of_cliques(n: int, rng: np.random.RandomState) -> set:
    """Cliques of 3-5 nodes covering the ``n`` nodes, each linked to the next by one edge (a ring)."""
    sizes = []
    while sum(sizes) < n:
        sizes.append(int(rng.randint(3, 6)))
    sizes[-1] -= sum(sizes) - n
    if sizes[-1] < 2 and len(sizes) > 1:
        last = sizes.pop()
        sizes[-1] += last
    starts = np.cumsum([0] + sizes[:-1])
    edges = {(s + i, s + j) for s, k in zip(starts, sizes) for i in range(k) for j in range(i + 1, k)}
    for a in range(len(sizes)):
        b = (a + 1) % len(sizes)
        if b != a:
            u = int(starts[a] + rng.randint(sizes[a]))
            v = int(starts[b] + rng.randint(sizes[b]))
            edges.add((min(u, v), max(u, v)))
    return edges


def synthetic_graphs(n_graphs: int = 300, seed: int = 0, min_nodes: int = 10, max_nodes: int = 30) -> list:
    """A deterministic graph-classification set without node labels: class c's graphs come from random
    graph family ``SYNTHETIC_FAMILIES[c]`` (Erdos-Renyi with mean degree 4, Barabasi-Albert with
    m = 2, i.e. mean degree ~4 with hubs, and rings of 3-5-cliques, mean degree ~3-4), 10-30 nodes,
    in a shuffled order. The classes differ in structure (degree spread, clustering), not in size or
    features, so a GIN must learn them from the edges. Returns ``(None, edge_index, n, label)``."""
    rng = np.random.RandomState(seed)
    makers = (_erdos_renyi, _barabasi_albert, _ring_of_cliques)
    labels = np.arange(n_graphs) % len(makers)
    rng.shuffle(labels)
    graphs = []
    for label in labels:
        n = int(rng.randint(min_nodes, max_nodes + 1))
        graphs.append((None, _undirected(makers[label](n, rng)), n, int(label)))
    return graphs
