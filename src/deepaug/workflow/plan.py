"""What the workflow's targets are made of, and how many jobs Snakemake plans for each (no heavy imports:
rules/common.smk takes its target lists from here, and ``deepaug check-config`` counts the jobs).

The target lists (the files of ``all``, ``analysis``, ``data``) are the ones the rules use. The job
graph (:meth:`Plan.jobs`) restates each rule's outputs and inputs (rules/*.smk) so that check-config can
print what ``snakemake -n`` plans in a fresh work directory, per target, without starting Snakemake;
tests/workflow/test_check_config.py compares the two on the demo config.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from deepaug.analysis.fidelity import PUBLISHED, published_rows, required_keys
from deepaug.workflow.labels import section_metric_label
from deepaug.workflow.runs import analysis_dir, resolve_section

RUN_TABLE = "results/runs.tsv"
TABLE = "results/table.csv"  # the contrastive runs' scores
SUMMARY = "results/summary.csv"
CLAIMS = "results/claims.csv"
FIDELITY = "results/fidelity.csv"  # the baselines against the published numbers (deepaug.analysis.fidelity)
PUBLISHED_NUMBERS = str(PUBLISHED)  # those numbers with their sources (package data; an input of the fidelity rule)
SUPERVISED_TABLE = "results/analysis/supervised_table.csv"
TABLES = {"contrastive": TABLE, "supervised": SUPERVISED_TABLE}
FIGURES = "results/figures"
ANALYSIS_TABLE = "results/analysis/table.csv"
LAYER_SELECTION = "results/analysis/layer_selection.csv"
INVERSION = "results/analysis/inversion.csv"
ANALYSIS_NOTEBOOK = "results/notebooks/analysis"
BENCH = "results/bench/throughput.json"
# The caption (report/<name>.rst) of a figure whose name ends so; any other is a layer sweep (Plan.caption).
CAPTIONS = (
    ("_tasks.png", "tasks"),
    ("_cka.png", "cka"),
    ("_align_uniform.png", "align_uniform"),
    ("_layer_selection.png", "layer_selection"),
)
TARGETS = ("all", "analysis", "data")  # the targets check-config counts (bench: one job, not a sweep's)


@dataclass(frozen=True)
class Job:
    rule: str
    outputs: tuple
    inputs: tuple


def runs_csv(objective: str) -> str:
    """The aggregate rule's output: every run's scores of one objective."""
    return f"results/tables/{objective}_runs.csv"


class Plan:
    """The targets and jobs of one validated config (its run table ``runs``, from runs.expand)."""

    def __init__(self, config: dict, runs: list, domains: dict | None = None):
        from deepaug.domains import registry

        self.config, self.runs = config, runs
        self.domains = registry() if domains is None else domains
        self.analysis = config.get("analysis") or {}
        # one analysis per setting and seed of the contrastive runs, of its dev-selected candidate
        self.settings: dict[tuple, list] = {}
        for r in runs:
            if r.objective == "contrastive":
                self.settings.setdefault((r.domain, r.dataset, r.setting, r.seed), []).append(r)
        self.figure_table = self._figure_table()

    # ---- the run table's parts
    def runs_of(self, domain=None, objective=None) -> list:
        return [
            r
            for r in self.runs
            if (domain is None or r.domain == domain) and (objective is None or r.objective == objective)
        ]

    def run_files(self, name: str, objective="contrastive", runs_=None) -> list[str]:
        """One file per run, e.g. every eval.json of the contrastive runs."""
        return [f"results/{r.path}/{name}" for r in (self.runs_of(objective=objective) if runs_ is None else runs_)]

    def setting_files(self, name: str, baseline_only=False) -> list[str]:
        """One file per analysis (setting and seed), e.g. every analysis.json."""
        return [
            f"{analysis_dir(*key)}/{name}"
            for key, candidates in self.settings.items()
            if not baseline_only or candidates[0].method == "none"
        ]

    # ---- figures
    def _figure_table(self) -> list[dict]:
        """One layer-sweep figure job per domain and objective that has runs (`vision`, `text_sup`, ...): its
        name, table, metric and its label, the domain's tuned axes, datasets and files (rules/figures.smk)."""
        out = []
        for name, domain in self.domains.items():
            for objective in domain.objectives:
                rs = self.runs_of(name, objective)
                if not rs:
                    continue
                key = name if objective == "contrastive" else f"{name}_sup"
                metric = domain.metrics[objective].test
                if objective == "contrastive":  # a domain's figures.<name>_metric, where its schema has one
                    metric = (self.config.get("figures") or {}).get(f"{name}_metric", metric)
                datasets = list(dict.fromkeys(r.dataset for r in rs))
                kinds = ["", "_tasks"] if domain.task_figure else [""]
                files = [
                    f"{FIGURES}/{key}_{d}{kind}.{ext}" for d in datasets for kind in kinds for ext in ("png", "pdf")
                ]
                # what the score axis and the caption call the metric, from the settings (deepaug.workflow.labels),
                # and the tuned axes (schema-checked setting names)
                label = section_metric_label(metric, resolve_section(self.config.get(name) or {}, objective))
                tuned = ",".join((self.config.get(name) or {}).get("tuned") or [])
                out.append(
                    dict(
                        name=key,
                        domain=name,
                        objective=objective,
                        table=TABLES[objective],
                        metric=metric,
                        metric_label=label,
                        tuned=tuned,
                        datasets=datasets,
                        files=files,
                    )
                )
        return out

    def figure_outputs(self, objective="contrastive") -> list[str]:
        out = []
        for fig in self.figure_table:
            if fig["objective"] == objective:
                out += fig["files"] + [f"results/notebooks/{fig['name']}_figures.html"]
        return out

    def analysis_figures(self) -> list[str]:
        out = []
        for name in self.domains:
            for dataset in dict.fromkeys(r.dataset for r in self.runs_of(name, "contrastive")):
                for kind in ("cka", "align_uniform"):
                    out += [f"{FIGURES}/analysis_{name}_{dataset}_{kind}.{ext}" for ext in ("png", "pdf")]
        return out + [f"{FIGURES}/analysis_layer_selection.{ext}" for ext in ("png", "pdf")]

    # ---- the report (`snakemake --report`): each figure's caption, report/<name>.rst
    def caption(self, png: str) -> str:
        """The caption of a figure, relative to rules/: by its kind (the ending the analysis and task figures'
        names have), else a layer sweep of the contrastive runs or of the supervised counterpart, as the
        figure table says (not read back from the name)."""
        name = png.rsplit("/", 1)[-1]
        rst = next((rst for end, rst in CAPTIONS if name.endswith(end)), None)
        if rst is None:
            supervised = {
                f.rsplit("/", 1)[-1]
                for fig in self.figure_table
                if fig["objective"] == "supervised"
                for f in fig["files"]
            }
            rst = "supervised_sweep" if name in supervised else "layer_sweep"
        return f"../report/{rst}.rst"

    def as_report(self, paths: list[str], report) -> list:
        """The figure list with its PNGs marked for the report (``report``: Snakemake's function of that name),
        each with its caption (the PDFs are the same figures)."""
        return [report(p, caption=self.caption(p), category="Figures") if p.endswith(".png") else p for p in paths]

    # ---- targets
    def supervised_targets(self) -> list[str]:
        """The supervised counterpart's figures and notebooks and the inversion check (when configured)."""
        out = self.figure_outputs("supervised")
        return out + ([INVERSION] if out else [])

    def analysis_targets(self) -> list[str]:
        """Everything the `analysis` target makes; part of `all` when analysis.in_default_target is set."""
        if not self.runs_of(objective="contrastive"):
            return []
        return [LAYER_SELECTION, f"{ANALYSIS_NOTEBOOK}.html"] + self.supervised_targets()

    def all_targets(self) -> list[str]:
        """The default target's inputs (the Snakefile's `rule all`)."""
        extra = self.analysis_targets() if self.analysis.get("in_default_target") else []
        return [RUN_TABLE, TABLE, SUMMARY, CLAIMS, FIDELITY, *self.figure_outputs(), *extra]

    # ---- the fidelity table's settings (rules/aggregate.smk: the fidelity rule's params)
    def fidelity_settings(self, published: str = PUBLISHED_NUMBERS) -> str:
        """JSON ``{"domain/dataset/setting": {key: value}}``: per baseline (the contrastive runs without Deep
        Augmentation, per setting) the value of every setting some published number requires (``train.epochs``,
        ``model.arch``, ``test_tasks``: a subsection's key dotted, or a key of the section), as the runs were
        configured (the schema's defaults and recipe filled in, the sweep block's axes applied). A setting its runs
        do not share (a tuned lr) or do not have is left out; the fidelity table then says it is not known."""
        keys = required_keys(published_rows(published))
        values: dict[str, dict] = {}
        for r in self.runs_of(objective="contrastive"):
            if r.method != "none":
                continue
            name = f"{r.domain}/{r.dataset}/{r.setting}"
            seen = {key: _setting_value(r.section, key) for key in keys}
            if name not in values:
                values[name] = {k: v for k, v in seen.items() if v is not _MISSING}
            else:  # several runs of one setting (seeds, tuned axes): keep what they share
                values[name] = {k: v for k, v in values[name].items() if seen.get(k) == v}
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def data_files(self) -> list[str]:
        """Every data file and folder the runs need (the `data` target)."""
        out = []
        for name, domain in self.domains.items():
            for objective in domain.objectives:
                rs = self.runs_of(name, objective)
                if rs:
                    out += domain.data_files(rs[0].section, rs)
        if self.analysis.get("in_default_target"):  # what the analyses read (text: their similarity task)
            for name, domain in self.domains.items():
                for run in self.runs_of(name, "contrastive"):
                    inputs = domain.analysis_inputs(self.config, run.section, run).values()
                    out += [path for path in inputs if path.startswith("data/")]
        return list(dict.fromkeys(out))

    def target_files(self, target: str) -> list[str]:
        return {"all": self.all_targets, "analysis": self.analysis_targets, "data": self.data_files}[target]()

    # ---- the job graph (rules/*.smk, restated)
    def analysis_input_files(self, candidates: list) -> dict:
        """The analyze rule's named inputs (deepaug.workflow.jobs.Jobs.analysis_inputs): the candidates' models
        and, when there are several, their eval.json (the dev score chooses among them), and the domain's data."""
        run = candidates[0]
        out = {"models": [f"results/{r.path}/model.pt" for r in candidates]}
        if len(candidates) > 1:
            out["evals"] = [f"results/{r.path}/eval.json" for r in candidates]
        return {**out, **self.domains[run.domain].analysis_inputs(self.config, run.section, run)}

    def analysis_inputs(self, candidates: list) -> list[str]:
        """The analyze rule's inputs, as one list."""
        out: list[str] = []
        for value in self.analysis_input_files(candidates).values():
            out += value if isinstance(value, list) else [value]
        return out

    def jobs(self) -> list[Job]:
        """Every job the rules can make for this config, but the data jobs (see :meth:`count`)."""
        out = [Job("run_table", (RUN_TABLE,), ())]
        for objective, table in TABLES.items():
            scores = runs_csv(objective)
            out.append(Job(f"aggregate_{objective}", (scores,), (RUN_TABLE, *self.run_files("eval.json", objective))))
            out.append(Job(f"select_{objective}", (table,), (scores,)))
        out.append(Job("summarize", (SUMMARY, CLAIMS), (TABLE,)))
        out.append(Job("fidelity", (FIDELITY,), (TABLE,)))
        for r in self.runs:
            files = ("model.pt", "train_metrics.jsonl", "provenance.json", "eval.json")
            out.append(
                Job(
                    "train",
                    tuple(f"results/{r.path}/{f}" for f in files),
                    tuple(self.domains[r.domain].run_inputs(r.section, r)),
                )
            )
        for fig in self.figure_table:
            notebooks = tuple(f"results/notebooks/{fig['name']}_figures.{ext}" for ext in ("ipynb", "html"))
            out.append(Job(f"figures_{fig['name']}", (*fig["files"], *notebooks), (fig["table"], RUN_TABLE)))
        for candidates in self.settings.values():
            where = candidates[0].analysis_dir
            out.append(
                Job("analyze", (f"{where}/analysis.json", f"{where}/cka.npz"), tuple(self.analysis_inputs(candidates)))
            )
        out.append(Job("analysis_table", (ANALYSIS_TABLE,), (RUN_TABLE, *self.setting_files("analysis.json"))))
        out.append(
            Job(
                "layer_selection",
                (LAYER_SELECTION,),
                (TABLE, RUN_TABLE, *self.setting_files("cka.npz", baseline_only=True)),
            )
        )
        out.append(
            Job(
                "figures_analysis",
                (*self.analysis_figures(), f"{ANALYSIS_NOTEBOOK}.ipynb", f"{ANALYSIS_NOTEBOOK}.html"),
                (TABLE, ANALYSIS_TABLE, LAYER_SELECTION, *self.setting_files("cka.npz")),
            )
        )
        out.append(Job("inversion", (INVERSION,), (TABLE, SUPERVISED_TABLE)))
        out.append(Job("bench", (BENCH,), ()))
        return out

    def count(self, target: str) -> Counter:
        """Jobs per rule that ``snakemake <target> -n`` plans in a fresh work directory: the target's own
        job, every job whose output it needs (transitively), and one data job per data file or model
        folder they read (rules/data.smk: prepare_model for data/<domain>/models/<name>, else prepare_data)."""
        producers = {}
        for job in self.jobs():
            for path in job.outputs:
                producers[path] = job
        planned: Counter = Counter({target: 1})
        seen_jobs, seen_files = set(), set()
        todo = list(self.target_files(target))
        while todo:
            path = todo.pop()
            if path in seen_files:
                continue
            seen_files.add(path)
            job = producers.get(path)
            if job is None:
                if path.startswith("data/"):
                    planned[_data_rule(path)] += 1
                continue  # a source file (a notebook)
            if id(job) not in seen_jobs:
                seen_jobs.add(id(job))
                planned[job.rule] += 1
                todo += job.inputs
        return planned


_MISSING = object()


def _setting_value(section: dict, key: str):
    """A run's setting ``train.epochs`` (a subsection's key) or ``test_tasks`` (the section's); _MISSING if none."""
    sub, _, name = key.rpartition(".")
    holder = (section.get(sub) or {}) if sub else section
    return holder.get(name, _MISSING) if isinstance(holder, dict) else _MISSING


def _data_rule(path: str) -> str:
    parts = path.split("/")
    return "prepare_model" if len(parts) == 4 and parts[2] == "models" else "prepare_data"


def describe_counts(counts: Counter) -> str:
    """``40 jobs (24 training runs, 7 data, 8 tables and figures, 1 target)``: a target's planned jobs by kind."""
    runs, analyses = counts.get("train", 0), counts.get("analyze", 0)
    data = sum(n for rule, n in counts.items() if rule.startswith("prepare_"))
    targets = sum(counts.get(t, 0) for t in TARGETS)
    other = sum(counts.values()) - runs - analyses - data - targets
    parts = [
        (runs, "training runs"),
        (analyses, "analyses"),
        (data, "data"),
        (other, "tables and figures"),
        (targets, "target"),
    ]
    return f"{sum(counts.values())} jobs ({', '.join(f'{n} {what}' for n, what in parts if n)})"


def job_counts(config: dict, runs: list) -> dict[str, Counter]:
    """Per target of :data:`TARGETS`, the jobs Snakemake plans in a fresh work directory."""
    plan = Plan(config, runs)
    return {target: plan.count(target) for target in TARGETS}
