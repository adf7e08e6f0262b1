"""The layer-selection rule (numpy only): recommend the layer whose representation is most similar to
its neighbours in the baseline (mean linear CKA with layers k-1 and k+1), i.e. the most co-adapted
layer among the candidates, and compare it with the best layer found by the sweep. Where the sweep has
one layer the rule can only recommend that layer: the row's ``agree`` says the agreement is trivial."""

from __future__ import annotations

import numpy as np


def neighbour_similarity(matrix: np.ndarray, layer: int) -> float:
    """Mean similarity of ``layer`` with its existing neighbours (layer-1, layer+1)."""
    idx = [j for j in (layer - 1, layer + 1) if 0 <= j < matrix.shape[0]]
    return float(np.mean([matrix[layer, j] for j in idx]))


def recommend_layer(matrix: np.ndarray, candidates: list[int]) -> int:
    """The layer-selection rule: the candidate most similar to its neighbours (ties: the deeper)."""
    scores = [(neighbour_similarity(matrix, k), k) for k in candidates]
    return max(scores)[1]


def layer_selection(table, baseline_matrices: dict, metric_of: dict, select_of: dict | None = None):
    """Recommended (rule above, from the mean baseline linear-CKA matrix over seeds) vs best layer
    of the sweep, per (domain, dataset, transform, stop-gradient).

    The sweep's best layer is chosen by ``select_of[domain]`` (the dev metric), never by the test
    metric ``metric_of[domain]`` that is reported; without a dev metric in the table no best layer is
    chosen (NaN) rather than one chosen on test."""
    import pandas as pd

    rows = []
    for (domain, dataset), mats in sorted(baseline_matrices.items()):
        mean_matrix = np.mean(mats, axis=0)
        metric = metric_of[domain]
        part = table[(table["domain"] == domain) & (table["dataset"] == dataset) & (table["method"] != "none")]
        for (method, sg), runs in part.groupby(["method", "stop_gradient"]):
            scores = runs.groupby("layer")[metric].mean()
            candidates = [int(l) for l in scores.index if int(l) < mean_matrix.shape[0]]
            if not candidates:
                continue
            rec = recommend_layer(mean_matrix, candidates)
            select = (select_of or metric_of)[domain]
            dev = runs.groupby("layer")[select].mean() if select in runs else pd.Series(dtype=float)
            best = int(dev.idxmax()) if dev.notna().any() else None
            rows.append(
                {
                    "domain": domain,
                    "dataset": dataset,
                    "method": method,
                    "stop_gradient": sg,
                    "metric": metric,
                    "selected_by": select if best is not None else "no dev metric: not chosen",
                    "recommended_layer": rec,
                    "best_layer": best,
                    "score_recommended": float(scores.loc[rec]),
                    "score_best": float(scores.loc[best]) if best is not None else float("nan"),
                    "agree": agreement(rec, best, candidates),
                    "n_layers_swept": len(candidates),
                    "baseline_seeds": len(mats),
                }
            )
    return pd.DataFrame(rows)


def agreement(recommended: int, best: int | None, candidates: list[int]) -> str:
    """'yes', 'no', or why the comparison says nothing: one swept layer (the rule and the sweep cannot
    differ) or no best layer (no dev metric)."""
    if best is None:
        return "not compared (no best layer: no dev metric)"
    if len(candidates) == 1:
        return f"trivially (only layer {candidates[0]} was swept: nothing to choose)"
    return "yes" if recommended == best else "no"
