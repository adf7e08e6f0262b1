"""The layer-selection table: an agreement with one swept layer is said to be trivial."""

import numpy as np
import pandas as pd

from deepaug.analysis.layer_choice import agreement, layer_selection


def _table(layers_by_setting):
    rows = []
    for (method, sg), layers in layers_by_setting.items():
        for layer in layers:
            for seed in (0, 1):
                rows.append(
                    dict(
                        domain="text",
                        dataset="lee",
                        method=method,
                        stop_gradient=sg,
                        layer=layer,
                        seed=seed,
                        sts_avg=40.0 + layer,
                        dev_spearman=50.0 + layer,
                    )
                )
    return pd.DataFrame(rows)


def test_one_swept_layer_agrees_trivially_and_the_row_says_so():
    matrix = np.eye(8) + 0.5 * (np.eye(8, k=1) + np.eye(8, k=-1))
    table = _table({("dropout", "sg"): [7], ("dropout", "nosg"): [2, 5], ("pca", "sg"): [2, 7]})
    out = layer_selection(table, {("text", "lee"): [matrix]}, {"text": "sts_avg"}, {"text": "dev_spearman"})
    rows = out.set_index(["method", "stop_gradient"])
    one = rows.loc[("dropout", "sg")]
    assert one["n_layers_swept"] == 1 and one["recommended_layer"] == one["best_layer"] == 7
    assert one["agree"] == "trivially (only layer 7 was swept: nothing to choose)"
    # two layers: a real comparison, yes or no (the rule prefers the deeper of equally co-adapted layers)
    assert rows.loc[("dropout", "nosg"), "agree"] == "yes" and rows.loc[("dropout", "nosg"), "n_layers_swept"] == 2
    assert rows.loc[("pca", "sg"), "agree"] == "yes"


def test_agreement_words():
    assert agreement(3, 3, [1, 3]) == "yes" and agreement(1, 3, [1, 3]) == "no"
    assert agreement(3, None, [1, 3]).startswith("not compared")
    assert agreement(4, 4, [4]).startswith("trivially")
