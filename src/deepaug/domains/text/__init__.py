"""Text: sentence corpora and similarity tasks, Hugging Face encoders with their layer map, SimCSE
training, Spearman on the STS tasks (the heavy modules: data, models, train, evaluate).

This file is the domain's workflow spec and stays light (no torch, no transformers): the Snakefile
imports it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from deepaug.core.schema_defaults import domain_schema, schema_defaults
from deepaug.core.settings import add_quiet_defaults
from deepaug.domains import Domain, Metrics, command, register

# This domain's settings that came after runs were made: at their schema defaults they stay out of job commands
# and fingerprints (deepaug.core.settings.QUIET_DEFAULTS), so every earlier run keeps its command.
LATER_SETTINGS = (
    "hidden_dropout",
    "attention_dropout",
    "standard_dropout",
    "mlm_weight",
    "mlm_only",
    "mlm_probability",
)
add_quiet_defaults(
    {k: v for k, v in schema_defaults(domain_schema(__file__), "model", "train").items() if k in LATER_SETTINGS}
)

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


MLM_HEADS_DIR = "data/text/mlm_heads"  # each encoder's pretrained MLM head (or a note that it has none)


def mlm_head_path(name: str) -> str:
    """The prepared MLM head of encoder ``name`` (``prepare-text --mlm-head``): only MLM runs read it, so the
    encoder folder every other run reads stays as it was."""
    return f"{MLM_HEADS_DIR}/{model_dir_name(name)}.pt"


def uses_mlm(section: dict) -> bool:
    """Whether a run's (resolved) settings train with the MLM objective."""
    train = section.get("train") or {}
    return bool(train.get("mlm_weight") or train.get("mlm_only"))


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
        inputs = {"model": self.model_dir(section), "corpus": corpus, "dev": task_path(section["dev_task"])}
        if uses_mlm(section):
            inputs["mlm_head"] = mlm_head_path(section["model"]["name"])
        return inputs

    def train_command(self, run, inputs, out_dir, ckpt_dir, settings):
        mlm = {"mlm_head": inputs["mlm_head"]} if "mlm_head" in inputs else {}
        return command(
            "pretrain-text",
            settings,
            model_dir=inputs["model"],
            corpus=inputs["corpus"],
            dev_task=inputs["dev"],
            out_dir=out_dir,
            ckpt_dir=ckpt_dir,
            **mlm,
        )

    def run_errors(self, name, section, runs):
        """The text settings that only a whole run can check: standard dropout at the targeted layer needs a
        targeted layer, and the MLM objective is for contrastive runs with a weight."""
        out: dict[str, None] = {}
        n_layers = self.n_layers(section)
        for run in runs:
            model, train = run.section.get("model") or {}, run.section.get("train") or {}
            where = f"config key '{name}.sweep[{run.block}]'"
            at = model.get("standard_dropout")
            if isinstance(at, int) and not isinstance(at, bool) and n_layers is not None and at >= n_layers - 1:
                out[
                    f"{where}: standard_dropout {at} is not a layer with standard dropout; this encoder has it in "
                    f"layers 0-{n_layers - 2} ({self.describe_layers(section)})"
                ] = None
            if model.get("standard_dropout") == "target_layer" and run.method == "none":
                out[
                    f"{where}: standard_dropout target_layer keeps the encoder's dropout only in the layer Deep "
                    f"Augmentation targets, but run {run.id} is a baseline (method none, no layer); give a layer "
                    f"index (e.g. standard_dropout: 3) for standard dropout at one layer without Deep Augmentation"
                ] = None
            if uses_mlm(run.section) and run.objective == "supervised":
                out[
                    f"{where}: mlm_weight / mlm_only are for contrastive runs; the supervised counterpart ({run.id}) "
                    f"has no MLM objective: set them in contrastive blocks only"
                ] = None
            if train.get("mlm_only") and not train.get("mlm_weight"):
                out[
                    f"{where}: mlm_only trains on mlm_weight x the MLM loss alone, but mlm_weight is 0 in run "
                    f"{run.id}; give mlm_weight > 0 (SimCSE's 0.1)"
                ] = None
        return list(out)

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
        if kind == "mlm_heads" and name.endswith(".pt"):
            return command("prepare-text", mlm_head=name[:-3].replace("--", "/"), out=out)
        raise ValueError(
            f"text has no data item {item!r} (corpus/<name>.parquet, tasks/<name>.parquet, models/<name>, "
            f"mlm_heads/<name>.pt)"
        )


register(
    Text(
        name="text",
        layer_map="0 embeddings, 1-L blocks, L+1 pooled sentence vector (L blocks of the encoder)",
        metrics={"contrastive": Metrics("sts_avg", "dev_spearman"), "supervised": Metrics("sts_avg", "dev_spearman")},
        task_figure=True,
        model_files=("name",),
    )
)
