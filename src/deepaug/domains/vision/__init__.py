"""Vision: images (CIFAR-10/100; scikit-learn's digits for the demo), ResNets with their layer map,
SimCLR views, training, linear probe and kNN (the heavy modules: data, models, train, evaluate).

This file is the domain's workflow spec and stays light (no torch): the Snakefile imports it.
"""

from __future__ import annotations

from deepaug.domains import Domain, Metrics, command, describe, register
from deepaug.domains.vision.layers import LAYERS


class Vision(Domain):
    def layers(self, section):
        return LAYERS

    def layers_of_length(self, n_layers):
        return LAYERS

    def dataset_names(self):
        from deepaug.domains.vision.datasets import dataset_names

        return dataset_names()

    def data_path(self, dataset: str) -> str:
        from deepaug.paths import safe_name

        safe_name(dataset, "config key 'vision.datasets'")  # a file of data/vision/, never a path out of it
        return f"data/vision/{dataset}.npz"

    def train_inputs(self, section, run):
        return {"data": self.data_path(run.dataset)}

    def train_command(self, run, inputs, out_dir, ckpt_dir, settings):
        return command("pretrain-vision", settings, data=inputs["data"], out_dir=out_dir, ckpt_dir=ckpt_dir)

    def eval_inputs(self, section, run):
        return {"data": self.data_path(run.dataset)}

    def eval_command(self, run, inputs, out, settings):
        return command("eval-vision", settings, model=inputs["model"], data=inputs["data"], out=out)

    def analysis_inputs(self, config, section, run):
        return {"data": self.data_path(run.dataset)}

    def analysis_flags(self, run, config):
        return {"n_samples": (config.get("analysis") or {}).get("vision_samples", 512), "seed": run.seed}

    def prepare_command(self, item, out, config):
        if not item.endswith(".npz") or "/" in item:
            raise ValueError(f"vision has no data item {item!r} (expected <dataset>.npz)")
        data = config.get("data") or {}
        return command(
            "prepare-data",
            dataset=item[:-4],
            out=out,
            raw_dir=data.get("raw_dir", "data/raw"),
            download=bool(data.get("download", True)),
        )


register(
    Vision(
        name="vision",
        layer_map=describe(LAYERS),
        metrics={
            "contrastive": Metrics("linear_top1", "dev_linear_top1"),
            "supervised": Metrics("classifier_top1", "dev_classifier_top1"),
        },
        eval_seeded=True,
    )
)
