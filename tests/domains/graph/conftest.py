"""Fixtures of the graph tests: a tiny dataset in the TU file format (read through PyG's TUDataset, so the
real loading code runs without a download) and the prepared synthetic demo set."""

import pytest
from tu_files import toy_graphs, write_tu


@pytest.fixture(scope="session")
def toy_tu(tmp_path_factory):
    """(raw_dir, graphs): the toy set written in the TU format as dataset "MUTAG"."""
    raw_dir = tmp_path_factory.mktemp("tu_raw")
    graphs = toy_graphs()
    write_tu(raw_dir, "MUTAG", graphs)
    return raw_dir, graphs


@pytest.fixture(scope="session")
def toy_pt(toy_tu, tmp_path_factory):
    """The toy TU set prepared (through TUDataset) into the graph domain's file."""
    from deepaug.domains.graph.data import prepare_graph_dataset

    raw_dir, _ = toy_tu
    return prepare_graph_dataset("MUTAG", tmp_path_factory.mktemp("graph_data") / "MUTAG.pt", raw_dir, download=False)


@pytest.fixture(scope="session")
def synthetic_pt(tmp_path_factory):
    from deepaug.domains.graph.data import prepare_graph_dataset

    return prepare_graph_dataset("synthetic", tmp_path_factory.mktemp("graph_synth") / "synthetic.pt")


@pytest.fixture(autouse=True)
def one_thread():
    """The graph models are tiny (a few thousand parameters, a few thousand nodes per batch): intra-op
    threads only add synchronisation, and on a loaded 2-core machine two OpenMP threads make a GIN step
    ~100x slower (1.1 s instead of 8 ms, measured). The graph tests run on one thread; the setting of
    the rest of the suite is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
