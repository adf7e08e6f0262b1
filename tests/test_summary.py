import math

import pandas as pd
import pytest
from scipy.stats import ttest_rel

from deepaug.summary import baseline_vs_best, claims, paired_test


def _table():
    rows = []
    base = [70.0, 72.0, 71.0]
    for seed, b in enumerate(base):
        rows.append(dict(domain="vision", dataset="d", method="none", layer=None, stop_gradient=None, seed=seed, linear_top1=b))
        for layer, bonus in ((0, 1.0), (3, 4.0)):
            rows.append(dict(domain="vision", dataset="d", method="dropout", layer=layer, stop_gradient="sg", seed=seed,
                             linear_top1=b + bonus + 0.1 * seed))
            rows.append(dict(domain="vision", dataset="d", method="dropout", layer=layer, stop_gradient="nosg", seed=seed,
                             linear_top1=b - 2))
            rows.append(dict(domain="vision", dataset="d", method="pca", layer=layer, stop_gradient="sg", seed=seed,
                             linear_top1=b + bonus - 0.3))
    return pd.DataFrame(rows)


def test_baseline_vs_best_with_paired_test():
    s = baseline_vs_best(_table()).iloc[0]
    assert s["best_setting"] == "dropout layer 3 sg"
    assert s["baseline_mean"] == pytest.approx(71.0) and s["best_mean"] == pytest.approx(75.1)
    best = [74.0, 76.1, 75.2]
    assert s["paired_t_p"] == pytest.approx(ttest_rel(best, [70, 72, 71]).pvalue)
    assert s["paired_seeds"] == 3


def test_claims_verdicts():
    c = claims(_table()).set_index("claim")["verdict"]
    assert c.filter(like="deeper layers").iloc[0] == "supported"
    assert c.filter(like="stop-gradient").iloc[0] == "supported"
    assert c.filter(like="PCA matches").iloc[0] == "supported"  # 74.7 vs 75.1, within the baseline std 1.0
    assert c.filter(like="supervised").iloc[0].startswith("not tested")


def test_claims_can_be_refuted_and_untested():
    t = _table()
    t.loc[(t["method"] == "dropout") & (t["stop_gradient"] == "nosg"), "linear_top1"] += 10
    t = t[t["layer"] != 0]
    c = claims(t).set_index("claim")["verdict"]
    assert c.filter(like="stop-gradient").iloc[0] == "not supported"
    assert c.filter(like="deeper layers").iloc[0] == "not tested"


def test_paired_test_needs_two_seeds():
    n, p = paired_test(pd.Series([1.0], index=[0]), pd.Series([2.0], index=[0]))
    assert n == 1 and math.isnan(p)


def test_inversion_compares_layer_trends():
    from deepaug.summary import inversion

    def table(domain, metric, slope):
        rows = [dict(domain=domain, dataset="d", method="none", layer=None, stop_gradient=None, seed=s, **{metric: 50.0})
                for s in (0, 1)]
        rows += [dict(domain=domain, dataset="d", method="dropout", layer=l, stop_gradient="sg", seed=s,
                      **{metric: 50.0 + slope * l}) for l in (0, 2, 4) for s in (0, 1)]
        return pd.DataFrame(rows)

    inv = inversion(table("vision", "linear_top1", 1.0), table("vision_sup", "classifier_top1", -1.0)).iloc[0]
    assert inv["verdict"] == "inverted" and inv["contrastive_trend"] == 1.0 and inv["supervised_trend"] == -1.0
    assert inv["contrastive_best_minus_baseline"] == 4.0 and inv["supervised_best_minus_baseline"] == 0.0
    same = inversion(table("vision", "linear_top1", 1.0), table("vision_sup", "classifier_top1", 2.0)).iloc[0]
    assert same["verdict"] == "not inverted"
