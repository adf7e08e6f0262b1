import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from deepaug.analysis import summary
from deepaug.analysis.summary import holm, paired_stats, paired_test
from deepaug.domains import metric_table

METRICS = metric_table()  # what the CLI hands in: {(domain, objective): Metrics(test, dev)}


def baseline_vs_best(table):
    return summary.baseline_vs_best(table, METRICS)


def claims(table):
    return summary.claims(table, METRICS)


def inversion(contrastive, supervised):
    return summary.inversion(contrastive, supervised, METRICS)


BASE = [70.0, 72.0, 71.0]


def _rows(domain, setting, test, dev, dataset="d", test_metric="linear_top1", dev_metric="dev_linear_top1"):
    method, sg, layer = setting
    return [
        dict(
            domain=domain,
            dataset=dataset,
            method=method,
            layer=layer,
            stop_gradient=sg,
            seed=seed,
            **{test_metric: t, dev_metric: v},
        )
        for seed, (t, v) in enumerate(zip(test, dev))
    ]


def _table(settings: dict, domain="vision", **kw) -> pd.DataFrame:
    """settings: {(method, sg, layer): (test per seed, dev per seed)}; the baseline is (BASE, BASE)."""
    rows = _rows(domain, ("none", None, None), BASE, BASE, **kw)
    for setting, (test, dev) in settings.items():
        rows += _rows(domain, setting, test, dev, **kw)
    return pd.DataFrame(rows)


def _shift(values, by):
    return [v + b for v, b in zip(values, by if isinstance(by, list) else [by] * len(values))]


def _paper_like():
    """Deeper layers and stop-gradient clearly better (+4, consistent over seeds), PCA = dropout."""
    return _table(
        {
            ("dropout", "sg", 0): (_shift(BASE, [1.0, 1.1, 1.2]), _shift(BASE, 1.0)),
            ("dropout", "sg", 3): (_shift(BASE, [4.0, 4.1, 4.2]), _shift(BASE, 4.0)),
            ("dropout", "nosg", 0): (_shift(BASE, -2), _shift(BASE, -2)),
            ("dropout", "nosg", 3): (_shift(BASE, [-2.0, -1.9, -2.1]), _shift(BASE, -2)),
            ("pca", "sg", 3): (_shift(BASE, [4.0, 4.15, 4.1]), _shift(BASE, 3.9)),
        }
    )


# ----------------------------------------------------------------------------------------- Holm
def _holm_step_down(p, alpha):
    """Holm's procedure written directly: walk the p-values from the smallest; reject while
    p_(i) <= alpha / (m - i) (i = 0, 1, ...), stop at the first that is not."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = set()
    for rank, i in enumerate(order):
        if p[i] > alpha / (len(p) - rank):
            break
        rejected.add(i)
    return rejected


def test_holm_against_hand_computed_values():
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])  # one test: nothing to correct
    out = holm([math.nan, 0.02, 0.04])  # an untestable comparison is not in the family
    assert math.isnan(out[0]) and out[1:] == pytest.approx([0.04, 0.04])


def test_holm_agrees_with_the_step_down_procedure():
    rng = np.random.default_rng(0)
    for _ in range(300):
        p = list(rng.uniform(0, 0.08, size=rng.integers(1, 9)))
        for alpha in (0.01, 0.05, 0.1):
            assert {i for i, q in enumerate(holm(p)) if q <= alpha} == _holm_step_down(p, alpha)


def test_paired_stats_match_scipy():
    a, b = pd.Series([74.0, 76.1, 75.2]), pd.Series([70.0, 72.0, 71.0])
    r = paired_stats(a, b)
    ref = ttest_rel(a, b)
    lo, hi = ref.confidence_interval(0.95)
    assert r["n"] == 3 and r["p"] == pytest.approx(ref.pvalue) and r["difference"] == pytest.approx(4.1)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi))
    # seeds are matched by index, not by position
    assert paired_stats(a, b.iloc[::-1].set_axis([2, 1, 0]))["difference"] == pytest.approx(4.1)


def test_paired_test_needs_two_seeds():
    n, p = paired_test(pd.Series([1.0], index=[0]), pd.Series([2.0], index=[0]))
    assert n == 1 and math.isnan(p)


# ------------------------------------------------------------------------------------ selection
def test_best_setting_is_chosen_on_dev_even_when_test_would_choose_another():
    t = _table(
        {
            ("dropout", "sg", 3): (_shift(BASE, [2.0, 2.1, 2.2]), _shift(BASE, 5.0)),  # dev-best
            ("dropout", "sg", 5): (_shift(BASE, [6.0, 6.1, 6.2]), _shift(BASE, 1.0)),  # test-best
        }
    )
    s = baseline_vs_best(t).iloc[0]
    assert s["best_setting"] == "dropout layer 3 sg"
    assert s["best_mean"] == pytest.approx(73.1) and s["best_dev_mean"] == pytest.approx(76.0)
    assert s["difference"] == pytest.approx(2.1) and s["baseline_mean"] == pytest.approx(71.0)
    assert s["selection"] == "selected on dev (dev_linear_top1), reported on test (linear_top1)"
    assert s["paired_t_p"] == pytest.approx(ttest_rel([72.0, 74.1, 73.2], BASE).pvalue)
    assert s["n_compared"] == 2 and s["paired_seeds"] == 3
    # the claims choose on dev too: the deeper side is layer 3 (dev) although layer 5 is better on test
    t2 = pd.concat([t, _table({("dropout", "sg", 0): (BASE, _shift(BASE, 0.5))}).query("method != 'none'")])
    deeper = claims(t2).set_index("claim").filter(like="deeper layers", axis=0).iloc[0]
    assert deeper["value_setting"] == "dropout layer 3 sg" and deeper["reference_setting"] == "dropout layer 0 sg"
    assert deeper["selection"] == "selected on dev (dev_linear_top1), reported on test (linear_top1)"


def test_text_selects_on_dev_spearman():
    kw = dict(domain="text", test_metric="sts_avg", dev_metric="dev_spearman")
    t = _table(
        {
            ("dropout", "sg", 8): (_shift(BASE, 1.0), _shift(BASE, 3.0)),
            ("dropout", "nosg", 10): (_shift(BASE, 3.0), _shift(BASE, 1.0)),
        },
        **kw,
    )
    s = baseline_vs_best(t).iloc[0]
    assert s["best_setting"] == "dropout layer 8 sg" and s["dev_metric"] == "dev_spearman"


def test_no_dev_metric_means_no_choice_and_says_so():
    t = _paper_like().drop(columns=["dev_linear_top1"])
    s = baseline_vs_best(t).iloc[0]
    assert s["selection"].startswith("no dev metric (dev_linear_top1 is not in the table")
    assert "best_setting" not in s or pd.isna(s["best_setting"])
    c = claims(t)
    assert (c["verdict"].iloc[:3] == "not tested (no dev metric to choose by)").all()
    assert c["selection"].str.startswith("no dev metric").all()


def test_dev_task_that_is_also_a_test_task_is_flagged():
    kw = dict(domain="text", test_metric="sts_avg", dev_metric="dev_spearman")
    t = _table({("dropout", "sg", 2): (_shift(BASE, 1.0), _shift(BASE, 1.0))}, **kw)
    t["sts_wordsim353"], t["dev_task"] = 1.0, "wordsim353"
    assert "the dev task (wordsim353) is also a test task" in baseline_vs_best(t).iloc[0]["selection"]
    t["dev_task"] = "stsb_dev"
    assert "caution" not in baseline_vs_best(t).iloc[0]["selection"]


# -------------------------------------------------------------------------------------- verdicts
def test_claims_verdicts_with_statistics():
    c = claims(_paper_like()).set_index("claim")
    deeper = c.filter(like="deeper layers", axis=0).iloc[0]
    assert deeper["verdict"] == "supported"  # +3, consistent over seeds: significant after Holm
    assert deeper["difference"] == pytest.approx(3.0) and deeper["ci_low"] > 0
    assert deeper["p_holm"] >= deeper["p"] and deeper["n_compared"] == 3  # dropout sg/nosg L3, pca sg L3
    assert c.filter(like="stop-gradient", axis=0).iloc[0]["verdict"] == "supported"
    pca = c.filter(like="PCA matches", axis=0).iloc[0]
    assert pca["value_setting"] == "pca layer 3 sg" and pca["reference_setting"] == "dropout layer 3 sg"
    assert pca["verdict"] == "supported"  # differences 0, +0.05, -0.1: within +-1.0 (the baseline seed std)
    assert c.filter(like="supervised", axis=0).iloc[0]["verdict"].startswith("not tested")


def test_large_consistent_effect_survives_holm_noisy_small_one_does_not():
    """Eight deeper settings compared with layer 0 (Holm multiplies the smallest p by 8)."""

    def table(chosen_effect):
        settings = {("dropout", "sg", 0): (BASE, BASE)}
        for layer in range(1, 9):  # seven filler settings at the baseline's level, low on dev
            settings[("dropout", "sg", layer)] = (_shift(BASE, [0.3, -0.2, 0.1]), _shift(BASE, -1.0))
        settings[("dropout", "sg", 4)] = (_shift(BASE, chosen_effect), _shift(BASE, 2.0))  # dev-best
        return _table(settings)

    big = claims(table([5.0, 5.1, 4.9])).set_index("claim").filter(like="deeper", axis=0).iloc[0]
    assert big["verdict"] == "supported" and big["p_holm"] < 0.05 and big["n_compared"] == 8
    # raw p 0.013 (t = 8.7, df 2) would pass a lone test, but not after correcting for 8 settings (x8)
    small = claims(table([1.0, 0.8, 1.2])).set_index("claim").filter(like="deeper", axis=0).iloc[0]
    assert small["p"] < 0.05 and small["p_holm"] >= 0.05
    assert small["verdict"] == "not significant (n = 3)"
    assert small["ci_low"] < small["difference"] < small["ci_high"]
    noisy = claims(table([2.0, -1.5, 1.9])).set_index("claim").filter(like="deeper", axis=0).iloc[0]
    assert noisy["verdict"] == "not significant (n = 3)" and noisy["ci_low"] < 0 < noisy["ci_high"]


def test_a_claim_is_refuted_only_by_a_significant_opposite_effect():
    t = _paper_like()
    nosg = t["stop_gradient"] == "nosg"
    t.loc[nosg, "linear_top1"] += 10 + 0.01 * t.loc[nosg, "seed"]
    t.loc[nosg, "dev_linear_top1"] += 10
    c = claims(t).set_index("claim")
    sg = c.filter(like="stop-gradient", axis=0).iloc[0]
    assert sg["verdict"] == "not supported" and sg["difference"] < 0
    assert (
        claims(t[t["layer"] != 0])
        .set_index("claim")
        .filter(like="deeper", axis=0)
        .iloc[0]["verdict"]
        .startswith("not tested")
    )


def test_pca_equivalence_refuted_or_inconclusive():
    t = _paper_like()
    pca = t["method"] == "pca"
    worse = t.copy()
    worse.loc[pca, "linear_top1"] -= 5 + 0.1 * worse.loc[pca, "seed"]
    c = claims(worse).set_index("claim").filter(like="PCA matches", axis=0).iloc[0]
    assert c["verdict"] == "not supported" and c["difference"] < -1.0
    noisy = t.copy()
    noisy.loc[pca, "linear_top1"] += noisy.loc[pca, "seed"].map({0: -1.5, 1: 1.5, 2: 0.0})
    c = claims(noisy).set_index("claim").filter(like="PCA matches", axis=0).iloc[0]
    assert c["verdict"] == "not significant (n = 3)"


def test_one_seed_is_not_tested():
    t = _paper_like()
    c = claims(t[t["seed"] == 0]).set_index("claim").filter(like="deeper", axis=0).iloc[0]
    assert c["verdict"] == "not tested (n = 1: a paired test needs two or more seeds)"


# ------------------------------------------------------------------------------------- inversion
def test_inversion_compares_layer_trends():
    def table(domain, metric, dev, slope):
        rows = [
            dict(
                domain=domain,
                dataset="d",
                method="none",
                layer=None,
                stop_gradient=None,
                seed=s,
                **{metric: 50.0, dev: 50.0},
            )
            for s in (0, 1)
        ]
        # dev prefers layer 2; test follows the slope
        rows += [
            dict(
                domain=domain,
                dataset="d",
                method="dropout",
                layer=l,
                stop_gradient="sg",
                seed=s,
                **{metric: 50.0 + slope * l, dev: 60.0 if l == 2 else 50.0},
            )
            for l in (0, 2, 4)
            for s in (0, 1)
        ]
        return pd.DataFrame(rows)

    inv = inversion(
        table("vision", "linear_top1", "dev_linear_top1", 1.0),
        table("vision", "classifier_top1", "dev_classifier_top1", -1.0),
    ).iloc[0]
    assert inv["verdict"] == "inverted" and inv["contrastive_trend"] == 1.0 and inv["supervised_trend"] == -1.0
    # the best layer is chosen on dev (layer 2), its test score reported (not the test-best layer 4 / 0)
    assert inv["contrastive_best_layer"] == 2 and inv["supervised_best_layer"] == 2
    assert inv["contrastive_best_minus_baseline"] == 2.0 and inv["supervised_best_minus_baseline"] == -2.0
    same = inversion(
        table("vision", "linear_top1", "dev_linear_top1", 1.0),
        table("vision", "classifier_top1", "dev_classifier_top1", 2.0),
    ).iloc[0]
    assert same["verdict"] == "not inverted"
    no_dev = inversion(
        table("vision", "linear_top1", "dev_linear_top1", 1.0).drop(columns="dev_linear_top1"),
        table("vision", "classifier_top1", "dev_classifier_top1", -1.0),
    ).iloc[0]
    assert math.isnan(no_dev["contrastive_best_minus_baseline"]) and no_dev["verdict"] == "inverted"


def _inversion_tables(sup_base: float, sup_metric="classifier_top1", chance=None, domain="vision"):
    """A contrastive sweep that learned and a supervised one whose baseline scores ``sup_base`` (the
    supervised dropout runs 23.3 points above it); ``chance``: the supervised table's chance column."""
    metric, dev = ("linear_top1", "dev_linear_top1") if domain == "vision" else ("sts_avg", "dev_spearman")
    s_dev = "dev_classifier_top1" if domain == "vision" else "dev_spearman"

    def rows(study, m, d, base, step, extra):
        out = [
            dict(
                domain=study,
                dataset="d",
                method="none",
                layer=None,
                stop_gradient=None,
                seed=s,
                **{m: base, d: base},
                **extra,
            )
            for s in (0, 1)
        ]
        out += [
            dict(
                domain=study,
                dataset="d",
                method="dropout",
                layer=l,
                stop_gradient="sg",
                seed=s,
                **{m: base + step * (l + 1), d: base + step * (l + 1)},
                **extra,
            )
            for l in (0, 2)
            for s in (0, 1)
        ]
        return pd.DataFrame(out)

    contrastive = rows(domain, metric, dev, 80.0, 1.0, {})
    supervised = rows(
        domain,
        sup_metric,
        s_dev,
        sup_base,
        23.3 / 3,
        {} if chance is None else {f"chance_{sup_metric}": chance},
    )
    return contrastive, supervised


def test_no_inversion_is_reported_against_a_supervised_baseline_at_chance_level():
    """A supervised baseline at 30% on a balanced binary task (chance 50%) did not learn: the change against
    it is not reported (it would read +23.3 points) and the row says why."""
    row = inversion(*_inversion_tables(30.0, chance=50.0)).iloc[0]
    assert math.isnan(row["supervised_best_minus_baseline"]) and row["supervised_chance"] == 50.0
    assert row["verdict"].startswith("not tested (the supervised baseline did not learn")
    assert "classifier_top1 30.0 is at chance level (50.0, majority-class rate" in row["baseline_check"]
    assert row["contrastive_best_minus_baseline"] == pytest.approx(3.0)  # the contrastive side learned
    # within 5 points of chance is not learning either; 1/num_classes where the table records only that
    assert inversion(*_inversion_tables(54.0, chance=50.0)).iloc[0]["verdict"].startswith("not tested")
    c, s = _inversion_tables(12.0)
    flagged = inversion(c, s.assign(num_classes=10)).iloc[0]
    assert flagged["supervised_chance"] == 10.0 and "1/10 classes" in flagged["baseline_check"]


def test_a_baseline_above_chance_level_is_a_reference_and_an_unknown_chance_level_is_said():
    c, s = _inversion_tables(70.0, chance=50.0)
    ok = inversion(c.assign(chance_linear_top1=10.0), s).iloc[0]
    assert ok["supervised_best_minus_baseline"] == pytest.approx(23.3) and ok["verdict"] in ("inverted", "not inverted")
    assert ok["baseline_check"].startswith("ok: both baselines above chance level")
    unknown = inversion(*_inversion_tables(70.0)).iloc[0]  # no chance column: not flagged, but not claimed checked
    assert unknown["supervised_best_minus_baseline"] == pytest.approx(23.3)
    assert (
        "chance level not checked for the contrastive (linear_top1) and supervised (classifier_top1) baseline"
        in unknown["baseline_check"]
    )


def test_a_text_baseline_below_the_spearman_floor_did_not_learn():
    """Text scores are Spearman x100 (no classes): below 10 the baseline ranks pairs about as well as an
    unrelated model, and the row says which threshold was used."""
    from deepaug.analysis.summary import SPEARMAN_FLOOR

    row = inversion(*_inversion_tables(4.0, sup_metric="sts_avg", domain="text")).iloc[0]
    assert math.isnan(row["supervised_best_minus_baseline"]) and row["verdict"].startswith("not tested")
    assert f"sts_avg 4.0 is below {SPEARMAN_FLOOR:g} (Spearman x100" in row["baseline_check"]
    learned = inversion(*_inversion_tables(40.0, sup_metric="sts_avg", domain="text")).iloc[0]
    assert learned["supervised_best_minus_baseline"] == pytest.approx(23.3)
    assert learned["baseline_check"].startswith("ok")


# ------------------------------------------------------------------------------ layers at once
def _at_once(shift, dev_shift, layers="all"):
    rows = pd.DataFrame(_rows("vision", ("dropout", "sg", None), _shift(BASE, shift), _shift(BASE, dev_shift)))
    return rows.assign(layers_at_once=layers, run=f"dropout-L{layers}-sg")


def test_a_run_at_several_layers_is_a_setting_compared_with_the_best_single_layer():
    """It counts as a setting of its own (no layer), the summary can choose it, and a claim compares the
    best single layer with it; the layer claims leave it out."""
    single = summary.with_run_ids(_paper_like())
    worse = pd.concat([single, _at_once([2.0, 2.1, 2.2], 2.0)], ignore_index=True)
    assert baseline_vs_best(worse).iloc[0]["best_setting"] == "dropout layer 3 sg"
    rows = claims(worse).set_index("claim")
    at_once = rows.filter(like="at several layers at once", axis=0).iloc[0]
    assert at_once["value_setting"] == "dropout layer 3 sg"
    assert at_once["reference_setting"] == "dropout all layers at once sg"
    assert at_once["difference"] == pytest.approx(2.0) and at_once["verdict"] == "supported"
    without = claims(single).set_index("claim")
    assert not without.index.str.contains("at once").any(), "no such claim without such runs"
    for claim in without.index:  # the other claims see the same settings as before
        assert rows.loc[claim, "verdict"] == without.loc[claim, "verdict"], claim

    better = pd.concat([single, _at_once([6.0, 6.2, 6.1], 6.0, layers="0-3")], ignore_index=True)
    best = baseline_vs_best(better).iloc[0]
    assert best["best_setting"] == "dropout layers 0, 3 at once sg" and best["best_mean"] == pytest.approx(77.1)
    verdict = claims(better).set_index("claim").filter(like="at once", axis=0).iloc[0]["verdict"]
    assert verdict == "not supported", "the layers at once beat the best single layer"


def test_runs_at_several_layers_leave_the_layer_analyses_as_they_were(tmp_path):
    """Read back from the tidy CSV as the workflow does: the summary files are written, and the layer trend
    (inversion) and the layer-selection rule, which need a layer, give what they give without those runs."""
    import numpy as np

    from deepaug.analysis.layer_choice import layer_selection

    single = summary.with_run_ids(_paper_like())
    for name, table in (("single", single), ("both", pd.concat([single, _at_once([2.0, 2.1, 2.2], 2.0)]))):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        summary.write_summary(tmp_path / f"{name}.csv", tmp_path / f"{name}_s.csv", tmp_path / f"{name}_c.csv", METRICS)
    single, both = pd.read_csv(tmp_path / "single.csv"), pd.read_csv(tmp_path / "both.csv")
    assert "dropout all layers at once sg" in pd.read_csv(tmp_path / "both_c.csv")["reference_setting"].tolist()

    def sup(t):
        return t.rename(columns={"linear_top1": "classifier_top1", "dev_linear_top1": "dev_classifier_top1"})

    pd.testing.assert_frame_equal(inversion(both, sup(both)), inversion(single, sup(single)))
    matrix = np.eye(7) * 0.5 + 0.5
    args = ({("vision", "d"): [matrix]}, {"vision": "linear_top1"}, {"vision": "dev_linear_top1"})
    pd.testing.assert_frame_equal(layer_selection(both, *args), layer_selection(single, *args))


def test_a_setting_s_name_splits_its_id_at_the_table_s_settings():
    """A spelled setting whose name holds '_' stays whole: 'detach_p0.5', 'batch_size64'."""
    table = summary.with_run_ids(_paper_like())
    tail = "_detach_p0.5_batch_size64_p1.0"
    table.loc[(table["layer"] == 3) & (table["method"] == "dropout") & (table["stop_gradient"] == "sg"), "run"] += tail
    table = table.assign(detach_p=0.5, batch_size=64, p=1.0)
    best = baseline_vs_best(table).iloc[0]
    assert best["best_setting"] == "dropout layer 3 sg (detach_p0.5, batch_size64, p1.0)"
    assert summary._setting_name(("dropout", "sg", 3, None, "dropout-L3-sg_p1.0_rate0.25")) == (
        "dropout layer 3 sg (p1.0, rate0.25)"
    )


# ------------------------------------------------------------------------ the same-rate stop-gradient control
def _with_rates(settings: dict) -> pd.DataFrame:
    """settings: {(method, sg, layer, rate): (test per seed, dev per seed)}, beside the baseline."""
    frames = [_table({}).assign(run="none")]
    for (method, sg, layer, rate), (test, dev) in settings.items():
        rows = pd.DataFrame(_rows("vision", (method, sg, layer), test, dev))
        frames.append(rows.assign(rate=rate, run=f"{method}-L{layer}-{sg}_rate{rate}"))  # as the run table names them
    return pd.concat(frames, ignore_index=True)


def test_stop_gradient_claim_says_when_its_sides_differ_in_rate_and_adds_a_same_rate_row():
    """The paper's text rates differ with and without stop-gradient (0.125 / 0.5). The main row says so; with sg
    and nosg runs at one shared rate, a row compares them at that rate only. Here sg at 0.125 is far better than
    everything, but at the shared rate 0.5 sg is *worse* than nosg: the same-rate row must see only those runs."""
    t = _with_rates(
        {
            ("dropout", "sg", 3, 0.125): (_shift(BASE, [6.0, 6.1, 6.2]), _shift(BASE, 6.0)),
            ("dropout", "sg", 3, 0.5): (_shift(BASE, [-3.0, -3.1, -2.9]), _shift(BASE, -3.0)),
            ("dropout", "nosg", 3, 0.5): (_shift(BASE, [1.0, 1.1, 0.9]), _shift(BASE, 1.0)),
        }
    )
    c = claims(t)
    sg = c[c["claim"] == "stop-gradient is needed for dropout to act as augmentation"].iloc[0]
    assert sg["comparison"].startswith("each side's dev-best setting at different rates: sg dropout 0.125, nosg")
    assert sg["verdict"] == "supported" and sg["difference"] == pytest.approx(5.1)
    same = c[c["claim"] == "stop-gradient is needed for dropout to act as augmentation (same rate)"]
    assert len(same) == 1
    same = same.iloc[0]
    assert same["comparison"] == "same rate on both sides: dropout 0.5"
    assert same["difference"] == pytest.approx(-4.0) and same["verdict"] == "not supported"
    assert same["n_compared"] == 1  # only the sg run at rate 0.5 was a candidate


def test_stop_gradient_claim_without_a_rate_column_says_one_rate_and_adds_no_row():
    c = claims(_paper_like())
    sg = c[c["claim"].str.startswith("stop-gradient")]
    assert len(sg) == 1
    assert sg.iloc[0]["comparison"] == "each side's dev-best setting (one dropout rate: the table has no rate column)"
    others = c[~c["claim"].str.startswith("stop-gradient") & ~c["claim"].str.contains("inverts")]
    assert (others["comparison"] == "each side's dev-best setting").all() and len(others) == 2


# ----------------------------------------------------------------------------------------- SSL methods
def test_each_ssl_method_is_a_study_with_its_own_baseline_summary_row_and_claims():
    """A table swept over ssl_method: SimCLR as _paper_like; BYOL with its own baseline (10 points lower) where
    stop-gradient hurts. Each method's rows compare with its own baseline, never the other's."""
    simclr = _paper_like().assign(ssl_method="simclr")
    byol = _table(
        {
            ("dropout", "sg", 0): (_shift(BASE, -9.0), _shift(BASE, -9.0)),
            ("dropout", "sg", 3): (_shift(BASE, [-13.0, -12.9, -13.2]), _shift(BASE, -13.0)),
            ("dropout", "nosg", 0): (_shift(BASE, [-8.0, -7.9, -8.1]), _shift(BASE, -8.0)),
            ("dropout", "nosg", 3): (_shift(BASE, [-7.0, -6.8, -7.1]), _shift(BASE, -7.0)),
        }
    )
    byol.loc[byol["method"] == "none", ["linear_top1", "dev_linear_top1"]] -= 10.0
    table = pd.concat([simclr, byol.assign(ssl_method="byol")], ignore_index=True)
    s = baseline_vs_best(table).set_index("ssl_method")
    assert list(s.columns[:2]) == ["domain", "dataset"] and s.loc["byol", "baseline_mean"] == pytest.approx(61.0)
    assert s.loc["simclr", "baseline_mean"] == pytest.approx(71.0) and s.loc["simclr", "n_seeds"] == 3
    assert s.loc["byol", "best_setting"] == "dropout layer 3 nosg" and s.loc["byol", "difference"] == pytest.approx(
        3.0333, abs=1e-3
    )
    c = claims(table)
    sg = c[c["claim"].str.startswith("stop-gradient")].set_index("ssl_method")["verdict"]
    assert sg.to_dict() == {"byol": "not supported", "simclr": "supported"}
    assert list(c.columns[:4]) == ["claim", "domain", "dataset", "ssl_method"]
    # without the column (a table of one method), the rows are as before
    assert "ssl_method" not in claims(_paper_like()) and "ssl_method" not in baseline_vs_best(_paper_like())
