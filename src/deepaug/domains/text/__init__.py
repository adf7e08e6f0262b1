"""Text: sentence corpora and similarity tasks, Hugging Face encoders with their layer map, SimCSE
training, Spearman on the STS tasks (the heavy modules: data, models, train, evaluate).

This file is the domain's workflow spec and stays light (no torch, no transformers): the Snakefile
imports it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from deepaug.domains import Domain, Metrics, command, register

# Encoder depths known without a download (blocks); others are read from a local config.json.
KNOWN_BLOCKS = {
    "bert-base-uncased": 12,
    "bert-base-cased": 12,
    "bert-large-uncased": 24,
    "bert-large-cased": 24,
    "roberta-base": 12,
    "roberta-large": 24,
    "all-MiniLM-L6-v2": 6,
    "sentence-transformers/all-MiniLM-L6-v2": 6,
}


def model_dir_name(name: str) -> str:
    """Folder name for an encoder: a hub id's ``/`` becomes ``--`` (``org/model`` -> ``org--model``)."""
    return name.replace("/", "--")


MODELS_DIR = "data/text/models"  # prepared encoders, relative to the work directory (snakemake --directory)


def block_count(name: str | None, search: tuple[str | Path, ...] = (MODELS_DIR,)) -> int | None:
    """Number of transformer blocks of the encoder ``name``, read from the model itself.

    The depth comes from the model, not from a second config key that could disagree with it: a
    known hub id, a local folder with a ``config.json``, or the prepared copy under
    ``data/text/models/``. None when it cannot be known before the model is downloaded (the training
    job then checks).
    """
    import json

    if not name:
        return None
    if name in KNOWN_BLOCKS:
        return KNOWN_BLOCKS[name]
    for folder in (Path(name), *(Path(d) / model_dir_name(name) for d in search)):
        cfg = folder / "config.json"
        if cfg.is_file():
            data = json.loads(cfg.read_text())
            for key in ("num_hidden_layers", "n_layers", "num_layers"):
                if isinstance(data.get(key), int):
                    return data[key]
    return None


@lru_cache(maxsize=64)
def _checked_model_dir(name: str, cwd: str) -> str:
    """Text.model_dir, checked once per name and work directory (the rules ask for it for every text run)."""
    from deepaug.paths import safe_join, safe_name

    what = "config key 'text.model.name'"
    safe_name(name, what, allow_org=True)
    return str(safe_join(MODELS_DIR, model_dir_name(name), what))


def task_path(task: str) -> str:
    return f"data/text/tasks/{task}.parquet"


class Text(Domain):
    def layers(self, section):
        from deepaug.domains.text.layers import layers

        n = block_count((section.get("model") or {}).get("name"))
        return None if n is None else layers(n)

    def layers_of_length(self, n_layers):
        from deepaug.domains.text.layers import blocks, layers

        return layers(blocks(n_layers))

    def model_dir(self, section) -> str:
        """The prepared copy's folder: a failed prepare job's clean-up deletes it, so the name must stay a
        folder of data/text/models (``..`` once made it data/text itself)."""
        import os

        return _checked_model_dir(section["model"]["name"], os.getcwd())

    def train_inputs(self, section, run):
        # the supervised counterpart trains on a similarity task's pairs, the contrastive runs on a corpus
        corpus = task_path(run.dataset) if run.objective == "supervised" else f"data/text/corpus/{run.dataset}.parquet"
        return {"model": self.model_dir(section), "corpus": corpus, "dev": task_path(section["dev_task"])}

    def train_command(self, run, inputs, out_dir, ckpt_dir, settings):
        return command(
            "pretrain-text",
            settings,
            model_dir=inputs["model"],
            corpus=inputs["corpus"],
            dev_task=inputs["dev"],
            out_dir=out_dir,
            ckpt_dir=ckpt_dir,
        )

    def eval_inputs(self, section, run):
        return {"tasks": [task_path(t) for t in section["test_tasks"]]}

    def eval_command(self, run, inputs, out, settings):
        return command("eval-text", settings, model=inputs["model"], tasks=inputs["tasks"], out=out)

    def analysis_inputs(self, config, section, run):
        return {"data": task_path((config.get("analysis") or {}).get("text_task", "stsb"))}

    def analysis_flags(self, run, config):
        a = config.get("analysis") or {}
        flags = {"n_samples": a.get("text_samples", 1000), "min_score": a.get("text_min_score", 4.0)}
        # the author's variants, only when asked for (the default commands stay as they were)
        if a.get("text_alignment_uniformity", "wang_isola") != "wang_isola":
            flags["alignment_uniformity"] = a["text_alignment_uniformity"]
        if a.get("text_cka_rows", "token_means") != "token_means":
            flags["cka_rows"] = a["text_cka_rows"]
        return flags

    def prepare_command(self, item, out, config):
        kind, _, name = item.partition("/")
        if kind == "corpus" and name.endswith(".parquet"):
            return command("prepare-text", corpus=name[:-8], out=out)
        if kind == "tasks" and name.endswith(".parquet"):
            return command("prepare-text", task=name[:-8], out=out)
        if kind == "models" and name:
            return command("prepare-text", model=name.replace("--", "/"), out=out)
        raise ValueError(f"text has no data item {item!r} (corpus/<name>.parquet, tasks/<name>.parquet, models/<name>)")


register(
    Text(
        name="text",
        layer_map="0 embeddings, 1-L blocks, L+1 pooled sentence vector (L blocks of the encoder)",
        metrics={"contrastive": Metrics("sts_avg", "dev_spearman"), "supervised": Metrics("sts_avg", "dev_spearman")},
        task_figure=True,
        model_flags=False,
    )
)
