"""What a figure's score axis and caption call a metric, from the settings that made it and the table that
holds it, never from prose written for one config (light: the Snakefile imports it; no pandas, no torch).

``svm_acc`` names the SVM and the scheme that the graph evaluation settings chose (``eval.svm``,
``eval.scheme``, ``eval.folds``): an RBF SVM is not called linear, one split is not called cross-validation.
``sts_avg`` names the tasks actually scored (the table's ``sts_*`` columns, else the ``test_tasks`` setting):
the demo's Lee documents and SimLex-999 are not called STS.
"""

from __future__ import annotations

# the STS benchmarks (SentEval's names): an average over only these may be called "STS"
STS_TASKS = frozenset({"sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"})
# graph `eval.svm` -> the classifier's name
SVM_NAMES = {
    "linearsvc": "linear SVM (LinearSVC)",
    "svc_linear": "linear SVM (SVC, linear kernel)",
    "svc_rbf": "RBF-kernel SVM",
}
FIXED_LABELS = {
    "linear_top1": "linear probe top-1 (%)",
    "knn_top1": "kNN top-1 (%)",
    "classifier_top1": "supervised classifier top-1 (%)",
    "classifier_acc": "supervised classifier accuracy (%)",
}


def tasks_phrase(tasks: list[str]) -> str:
    """'lee_docs, simlex999'; seven STS tasks as 'the 7 STS tasks (sts12, ...)'."""
    names = ", ".join(tasks)
    if len(tasks) > 1 and set(tasks) <= STS_TASKS:
        return f"{len(tasks)} STS tasks ({names})"
    return names


def metric_label(
    metric: str,
    tasks: list[str] | None = None,
    svm: str | None = None,
    folds: int | None = None,
    scheme: str | None = None,
) -> str:
    """The label of ``metric`` (a table column). ``tasks``: the tasks averaged in ``sts_avg``; ``svm``,
    ``scheme`` and ``folds``: the graph evaluation's classifier, scheme (``split``: one random 80/10/10 split;
    ``kfold``) and outer folds. What is not known is not named (an SVM whose kind was not given is 'SVM', not
    'linear SVM')."""
    if metric in FIXED_LABELS:
        return FIXED_LABELS[metric]
    if metric == "sts_avg":
        if not tasks:
            return "average Spearman x100 over the test tasks"
        if len(tasks) == 1:
            kind = "STS " if tasks[0] in STS_TASKS else ""
            return f"{kind}Spearman x100 on {tasks[0]}"
        return f"average Spearman x100 over {tasks_phrase(tasks)}"
    if metric == "svm_acc":
        name = SVM_NAMES.get(svm, f"SVM ({svm})" if svm else "SVM")
        if scheme == "split":
            return f"{name} accuracy, test part of one 80/10/10 split (%)"
        cv = f"{folds}-fold CV" if folds else "cross-validation"
        return f"{name} accuracy, {cv} (%)"
    return metric


def section_metric_label(metric: str, section: dict) -> str:
    """:func:`metric_label` from a domain's config section (resolved for the objective: the supervised
    overrides merged, as ``deepaug.workflow.runs.resolve_section`` makes it)."""
    evaluation = section.get("eval") or {}
    return metric_label(
        metric,
        tasks=list(section.get("test_tasks") or []) or None,
        svm=evaluation.get("svm"),
        folds=evaluation.get("folds"),
        scheme=evaluation.get("scheme"),
    )


def table_tasks(columns, prefix: str = "sts_") -> list[str]:
    """The tasks a table scored: its ``sts_<task>`` columns (not the average)."""
    return [c[len(prefix) :] for c in columns if c.startswith(prefix) and c != f"{prefix}avg"]
