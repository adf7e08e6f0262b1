"""Vision: images (CIFAR-10/100; scikit-learn's digits for the demo), ResNets with their layer map,
SimCLR views, training, linear probe and kNN (the heavy modules: data, models, train, evaluate).

This file is the domain's workflow spec and stays light (no torch): the Snakefile imports it.
"""

from __future__ import annotations

from pathlib import Path

from deepaug.domains import Domain, Metrics, command, describe, register
from deepaug.domains.vision.layers import LAYERS


class Vision(Domain):
    def layers(self, section):
        return LAYERS

    def layers_of_length(self, n_layers):
        return LAYERS

    def fill_section(self, section):
        from deepaug.domains.vision.recipes import apply_recipe

        apply_recipe(section)

    def run_axes(self, resolved, objective, axes):
        """An ``ssl_method`` axis: ignored by the supervised counterpart; for a contrastive run, the method's recipe
        (recipes.py SSL_RECIPES) is written into the run's settings, except the block's own axes and the settings
        whose value in the section differs from the section's recipe (the section set them itself)."""
        names = [k for k in axes if k in ("ssl_method", "train.ssl_method")]
        if not names:
            return axes
        if objective != "contrastive":
            return {k: v for k, v in axes.items() if k not in names}
        from deepaug.domains.vision.recipes import SSL_RECIPES, apply_method_recipe, section_recipe

        method = axes[names[0]]
        before = (resolved.get("train") or {}).get("ssl_method", "simclr")
        if method != before:
            plain = section_recipe(resolved)  # the section's values had it written none
            # undo the section's own method's recipe where the section kept its values (a section of barlow_twins
            # with a simclr or byol axis: those runs get neither its lr nor its barlow_lambda)
            for sub, values in SSL_RECIPES[before].items():
                own = resolved.setdefault(sub, {})
                for key, value in values.items():
                    if own.get(key) == value and key not in axes and f"{sub}.{key}" not in axes:
                        own[key] = plain.get(sub, {}).get(key)
            apply_method_recipe(resolved, method, keep=frozenset(axes), base=plain)
        return axes

    def run_errors(self, name, section, runs):
        """A setting only some SSL methods have (recipes.py ``own_settings``) given to a contrastive run of another
        method (the trainer would refuse it after the job starts)."""
        from deepaug.domains.vision.recipes import SSL_RECIPES, own_settings

        owners: dict[str, list[str]] = {}
        for method in SSL_RECIPES:
            for key in own_settings(method):
                owners.setdefault(key, []).append(method)
        out: dict[str, None] = {}
        for run in runs:
            train = run.section.get("train") or {}
            method = train.get("ssl_method", "simclr")
            if run.objective != "contrastive":
                continue
            for key, methods in owners.items():
                if train.get(key) is not None and method not in methods:
                    swept = any(axis.rsplit(".", 1)[-1] == key for axis, _ in run.axes)
                    where = f"vision.sweep[{run.block}]" if swept else "vision.train"
                    out[
                        f"config key '{where}.{key}': {key} is a setting of ssl_method {' and '.join(methods)} only, "
                        f"but run {run.path} trains {method}; give it in a sweep block whose ssl_method is "
                        f"{methods[0]}"
                    ] = None
        return list(out)

    def data_path(self, dataset: str, section: dict | None = None) -> str:
        """``data/vision/<dataset>.npz`` (arrays), or the manifest of ``data/vision/<dataset>/`` (a packed folder)."""
        from deepaug.paths import safe_name

        safe_name(dataset, "config key 'vision.datasets'")  # a file of data/vision/, never a path out of it
        if _is_folder(section or {}, dataset):
            return f"data/vision/{dataset}/manifest.json"
        return f"data/vision/{dataset}.npz"

    def config_errors(self, config: dict) -> list[str]:
        """Every dataset registered or an image folder of the section; ImageNet-100's root given."""
        from deepaug.domains.vision.datasets import DATASETS

        section = config.get("vision") or {}
        folders = section.get("image_folders") or {}
        out = []
        for i, name in enumerate(section.get("datasets") or []):
            if name not in DATASETS and name not in folders:
                out.append(
                    f"config key 'vision.datasets[{i}]': {name!r} is neither a registered dataset "
                    f"({', '.join(DATASETS)}) nor a key of vision.image_folders (name: the folder of your images)"
                )
        for name, root in folders.items():
            if name in DATASETS:
                out.append(
                    f"config key 'vision.image_folders.{name}': {name!r} is a registered dataset; name it otherwise"
                )
            elif name in (section.get("datasets") or []) and not Path(root).is_dir():
                out.append(f"config key 'vision.image_folders.{name}': {root} is not a folder (root/<class>/*.jpg)")
        needs_root = [d for d in section.get("datasets") or [] if d in DATASETS and DATASETS[d].kind == "imagenet"]
        if needs_root and not (config.get("data") or {}).get("imagenet_root"):
            out.append(
                f"config key 'data.imagenet_root': {', '.join(needs_root)} is read from your own licensed copy of "
                f"ILSVRC-2012 (train/ and val/ in synset folders; deepaug never downloads ImageNet): give its folder "
                f"in a second config file (data: {{imagenet_root: /path/to/ILSVRC2012}}) after this one"
            )
        return out

    def train_inputs(self, section, run):
        return {"data": self.data_path(run.dataset, section)}

    def train_command(self, run, inputs, out_dir, ckpt_dir, settings):
        return command("pretrain-vision", settings, data=inputs["data"], out_dir=out_dir, ckpt_dir=ckpt_dir)

    def eval_inputs(self, section, run):
        return {"data": self.data_path(run.dataset, section)}

    def eval_command(self, run, inputs, out, settings):
        return command("eval-vision", settings, model=inputs["model"], data=inputs["data"], out=out)

    def analysis_inputs(self, config, section, run):
        return {"data": self.data_path(run.dataset, section)}

    def analysis_flags(self, run, config):
        return {"n_samples": (config.get("analysis") or {}).get("vision_samples", 512), "seed": run.seed}

    def prepare_command(self, item, out, config):
        if item.endswith("/manifest.json") and item.count("/") == 1:  # a packed image folder
            name = item.split("/")[0]
            folders = (config.get("vision") or {}).get("image_folders") or {}
            root = folders[name] if name in folders else (config.get("data") or {}).get("imagenet_root")
            return command("prepare-image-folder", dataset=name, root=root, out=f"data/vision/{name}")
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


def _is_folder(section: dict, dataset: str) -> bool:
    """A packed image folder: one of the section's image_folders, or a registered folder dataset (ImageNet-100)."""
    from deepaug.domains.vision.datasets import DATASETS

    registered = DATASETS.get(dataset)
    return dataset in (section.get("image_folders") or {}) or (registered is not None and registered.kind != "arrays")


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
