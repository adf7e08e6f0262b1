"""Graphs: TU graph-classification datasets (and an offline synthetic set), a GIN encoder with its layer
map, GraphCL training with Deep Augmentation, and SVM accuracy of frozen graph embeddings (the heavy
modules: data, views, models, train, evaluate, analysis; the stages in cli.COMMANDS).

Layer map for a GIN with L layers: 0 input node features, 1..L GIN layers (node level), L+1 pooled
graph vector, L+2 projection head (or the classifier's logits in supervised runs).
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
    def layers(self, section):
        from deepaug.domains.graph.layers import layers

        return layers(int((section.get("model") or {}).get("num_layers", 3)))

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
    )
)
