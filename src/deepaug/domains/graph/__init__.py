"""Graphs: TU graph-classification datasets (and an offline synthetic set), a GIN encoder with its layer
map, GraphCL-style contrastive training with Deep Augmentation, and SVM scores of frozen graph embeddings
(the heavy modules: data, views, models, train, evaluate, analysis; the stages in cli.COMMANDS). Two named
recipes (``graph.protocol``: ``pygcl``, the paper's, or ``graphcl``) are stated in :mod:`.protocols`.

Layer map for a GIN with L layers: 0 input node features, 1..L GIN layers (node level), L+1 pooled
graph vector, L+2 projection head (or the classifier's logits in supervised runs): L is 2 under ``pygcl``
and 3 under ``graphcl``.

Metrics: ``svm_acc`` is the SVM's accuracy on the test graphs (``pygcl``: the 10% test part of one split,
where it equals the micro-F1 that PyGCL prints; ``graphcl``: the mean over the outer folds), and
``dev_svm_acc`` the score its C was chosen by, which never looks at a test graph (``pygcl``: the accuracy on
the 10% validation part; ``graphcl``: the inner-CV accuracy on the training folds).
"""

import warnings

# An expected warning, filtered for every process that loads this domain (its jobs, `deepaug --help`, which
# builds every command's arguments): torch_geometric 2.8 decorates functions with `torch.jit.script` when
# it is imported (torch_geometric.nn.pool.select), which torch 2.14 deprecates with a FutureWarning on
# the first import. Nothing here scripts a module; only this domain's heavy modules import torch_geometric.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

# ---------------------------------------------------------------- the domain's workflow spec (light: no torch)
from deepaug.domains import Domain, Metrics, command, register  # noqa: E402


class Graph(Domain):
    def fill_section(self, section):
        from deepaug.domains.graph.protocols import apply_protocol

        apply_protocol(section)

    def layers(self, section):
        from deepaug.domains.graph.layers import layers
        from deepaug.domains.graph.protocols import protocol_value

        return layers(int(protocol_value(section, "model", "num_layers")))

    def layers_of_length(self, n_layers):
        from deepaug.domains.graph.layers import gin_layers, layers

        return layers(gin_layers(n_layers))

    def data_path(self, dataset: str) -> str:
        from deepaug.paths import safe_name

        safe_name(dataset, "config key 'graph.datasets'")  # a file of data/graph/, never a path out of it
        return f"data/graph/{dataset}.pt"

    def train_inputs(self, section, run):
        return {"data": self.data_path(run.dataset)}

    def train_command(self, run, inputs, out_dir, ckpt_dir, settings):
        return command("pretrain-graph", settings, data=inputs["data"], out_dir=out_dir, ckpt_dir=ckpt_dir)

    def eval_inputs(self, section, run):
        return {"data": self.data_path(run.dataset)}

    def eval_command(self, run, inputs, out, settings):
        return command("eval-graph", settings, model=inputs["model"], data=inputs["data"], out=out)

    def analysis_inputs(self, config, section, run):
        return {"data": self.data_path(run.dataset)}

    def analysis_flags(self, run, config):
        return {"n_samples": (config.get("analysis") or {}).get("graph_samples", 256), "seed": run.seed}

    def prepare_command(self, item, out, config):
        if not item.endswith(".pt") or "/" in item:
            raise ValueError(f"graph has no data item {item!r} (expected <dataset>.pt)")
        data = config.get("data") or {}
        return command(
            "prepare-graph",
            dataset=item[:-3],
            out=out,
            raw_dir=data.get("raw_dir", "data/raw"),
            download=bool(data.get("download", True)),
        )


register(
    Graph(
        name="graph",
        layer_map="0 input node features, 1-L GIN layers, L+1 pooled graph vector, L+2 projection head",
        metrics={
            "contrastive": Metrics("svm_acc", "dev_svm_acc"),
            "supervised": Metrics("classifier_acc", "dev_classifier_acc"),
        },
        env="graph.yaml",
        data_env="graph.yaml",
        # the evaluation's split (pygcl) or folds (graphcl) follow the run's seed: GraphCL's
        # StratifiedKFold(random_state=None) draws from numpy's generator, which gsimclr.py L139-151 seeds with the
        # run's seed; PyGCL's get_split (GCL/eval/eval.py L13) from torch's, which examples/GraphCL.py leaves
        # unseeded. Runs of one seed share them, so a setting and its baseline are still scored on the same split
        eval_seeded=True,
    )
)
