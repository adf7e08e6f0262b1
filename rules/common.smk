# Shared helpers: config validation, the run grid, and the command that calls the library.
import os
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from deepaug.config import validate_config  # noqa: E402  (light: no torch)
from deepaug.gpus import visible_gpu_ids  # noqa: E402
from deepaug.runs import grid, model_dir_name, variant_name  # noqa: E402

validate_config(config)

# Rules run the library from this checkout (`python -m deepaug ...`): no install step is needed
# inside the rules' conda envs, and cluster jobs (which re-read this file) get the same path.
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.getenv("PYTHONPATH")) if p)
)

# GPUs. Each training job asks for `gpu` GPUs (config resources.gpu, default 1). Unless the command
# line or a profile caps `gpu` (--resources gpu=N; the SLURM profile does), the GPUs of this machine
# cap how many such jobs run at once, and each job claims a device of its own (deepaug.gpus).
# Without GPUs nothing is capped and the jobs train on the CPU (their logs say so).
LOCAL_GPUS = visible_gpu_ids()
if LOCAL_GPUS and workflow.global_resources.get("gpu").value is None:
    workflow.register_resource("gpu", len(LOCAL_GPUS))


ANALYSIS = config.get("analysis") or {}
TABLE = "results/table.csv"
SUMMARY = "results/summary.csv"
CLAIMS = "results/claims.csv"
SUPERVISED_TABLE = "results/analysis/supervised_table.csv"
FIGURES = "results/figures"
VARIANT = r"none|(dropout|pca)-L\d+-(sg|nosg)"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    method="dropout|pca",
    layer=r"\d+",
    sg="sg|nosg",
    seed=r"\d+",
    variant=VARIANT,
    task=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_.\-]+",


def section(domain):
    return config.get(domain) or {}


def runs(domain):
    s = section(domain)
    return grid(domain, s) if s.get("datasets") else []


def cli_flags(settings):
    """{'batch_size': 256, 'stop_gradient': True} -> '--batch-size 256 --stop-gradient true'."""
    out = []
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        out.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(out)


def augment_settings(domain, wildcards):
    """The Deep Augmentation flags of one run, from its wildcards (none for the baseline)."""
    method = wildcards.get("method", "none")
    if method == "none":
        return {"method": "none"}
    aug = section(domain).get("augment", {})
    sg = wildcards.sg
    return {
        "method": method,
        "layer": int(wildcards.layer),
        "stop_gradient": sg == "sg",
        "rate": aug.get("dropout_rate", {}).get(sg, 0.5),
        "p": aug.get("p", 0.5),
        "pca_component": aug.get("pca_component", 1),
        "selection": aug.get("selection", "bernoulli"),
        "pca_over": aug.get("pca_over"),
    }


def run_name(domain, wildcards):
    """'vision/digits/dropout-L3-sg/seed0': names the run in logs and error messages."""
    method = wildcards.get("method", "none")
    variant = variant_name(method, wildcards.get("layer"), wildcards.get("sg"))
    return f"{domain}/{wildcards.dataset}/{variant}/seed{wildcards.seed}"


def resource(domain, key, default):
    return section(domain).get("resources", {}).get(key, default)


# ---- per-rule parameters and targets


def _pretrain_flags(domain, wildcards, model_section, objective):
    settings = {
        "run": run_name(domain, wildcards),
        **augment_settings(domain, wildcards),
        **(
            section(model_section).get("model", {})
            if domain.startswith("vision")
            else {}
        ),
        **section(domain).get("train", {}),
        "objective": objective,
        "seed": int(wildcards.seed),
        "device": config.get("device", "auto"),
    }
    return cli_flags(settings)


def vision_pretrain_flags(wildcards):
    return _pretrain_flags("vision", wildcards, "vision", "contrastive")


def vision_sup_pretrain_flags(wildcards):
    return _pretrain_flags("vision_sup", wildcards, "vision", "supervised")


def text_pretrain_flags(wildcards):
    return _pretrain_flags("text", wildcards, "text", "contrastive")


def text_sup_pretrain_flags(wildcards):
    return _pretrain_flags("text_sup", wildcards, "text", "supervised")


def _eval_flags(domain, wildcards):
    extra = {"seed": int(wildcards.seed)} if domain.startswith("vision") else {}
    return cli_flags(
        {
            **section(domain).get("eval", {}),
            **extra,
            "device": config.get("device", "auto"),
        }
    )


def vision_eval_flags(wildcards):
    return _eval_flags("vision", wildcards)


def vision_sup_eval_flags(wildcards):
    return _eval_flags("vision_sup", wildcards)


def all_run_files(name):
    """One file per run, e.g. every eval.json of the grid."""
    return [f"results/{r.path}/{name}" for d in ("vision", "text") for r in runs(d)]


def all_evals():
    return all_run_files("eval.json")


def baseline_cka_files():
    return [
        f"results/{r.path}/cka.npz"
        for d in ("vision", "text")
        for r in runs(d)
        if r.method == "none"
    ]


def analysis_figures():
    out = []
    for domain in ("vision", "text"):
        if runs(domain):
            for name in section(domain)["datasets"]:
                for kind in ("cka", "align_uniform"):
                    out += [
                        f"{FIGURES}/analysis_{domain}_{name}_{kind}.{ext}"
                        for ext in ("png", "pdf")
                    ]
    return out + [f"{FIGURES}/analysis_layer_selection.{ext}" for ext in ("png", "pdf")]


def figure_outputs():
    out = []
    v = section("vision")
    if runs("vision"):
        out += expand(
            f"{FIGURES}/vision_{{dataset}}.{{ext}}",
            dataset=v["datasets"],
            ext=["png", "pdf"],
        )
        out += ["results/notebooks/vision_figures.html"]
    if runs("text"):
        out += text_figures()
        out += ["results/notebooks/text_figures.html"]
    return out


def text_figures():
    names = section("text").get("datasets", [])
    sweep = expand(
        f"{FIGURES}/text_{{dataset}}.{{ext}}", dataset=names, ext=["png", "pdf"]
    )
    tasks = expand(
        f"{FIGURES}/text_{{dataset}}_tasks.{{ext}}", dataset=names, ext=["png", "pdf"]
    )
    return sweep + tasks


def text_model_dir():
    """Local copy of the encoder (prepared once by the data rule)."""
    return f"data/models/{model_dir_name(section('text')['model']['name'])}"


def text_eval_flags(wildcards):
    return _eval_flags("text", wildcards)


def text_sup_eval_flags(wildcards):
    return _eval_flags("text_sup", wildcards)


def text_task_files(domain="text"):
    return [
        f"data/text/tasks/{t}.parquet" for t in section(domain).get("test_tasks", [])
    ]


def supervised_evals():
    return [
        f"results/{r.path}/eval.json"
        for d in ("vision_sup", "text_sup")
        for r in runs(d)
    ]


def supervised_figures(domain):
    names = section(domain).get("datasets", [])
    return expand(
        f"{FIGURES}/{domain}_{{dataset}}.{{ext}}", dataset=names, ext=["png", "pdf"]
    )


def analysis_targets():
    """Everything the `analysis` target makes; part of `all` when analysis.in_default_target is set."""
    if not (runs("vision") or runs("text")):
        return []
    return [
        "results/analysis/layer_selection.csv",
        "results/notebooks/analysis.html",
    ] + supervised_targets()


def supervised_targets():
    """The supervised counterpart's table check, figures and notebooks (when configured)."""
    out = [
        f"results/notebooks/{d}_figures.html"
        for d in ("vision_sup", "text_sup")
        if runs(d)
    ]
    return out + (["results/analysis/inversion.csv"] if out else [])


def as_report(paths):
    """Mark the PNGs of a figure list for `snakemake --report` (the PDFs are the same figures)."""
    out = []
    for path in paths:
        if path.endswith(".png"):
            caption = (
                "../report/tasks.rst"
                if path.endswith("_tasks.png")
                else "../report/layer_sweep.rst"
            )
            path = report(path, caption=caption, category="Figures")
        out.append(path)
    return out


def _caption(png):
    name = os.path.basename(png)
    for suffix, caption in (
        ("_tasks.png", "tasks"),
        ("_cka.png", "cka"),
        ("_align_uniform.png", "align_uniform"),
        ("layer_selection.png", "layer_selection"),
    ):
        if name.endswith(suffix):
            return f"../report/{caption}.rst"
    return "../report/layer_sweep.rst"
