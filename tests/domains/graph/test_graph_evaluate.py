"""Graph evaluation in both schemes, against scikit-learn's own search: ``split`` (PyGCL: one seeded 80/10/10
split, C chosen on the validation part, micro/macro-F1 on the test part) and ``kfold`` (GraphCL: stratified
10-fold, C chosen by an unshuffled 5-fold inner CV); eval.json of contrastive and supervised runs, refusal of
non-finite embeddings."""

import numpy as np
import pytest
import torch

from deepaug.domains.graph.data import load_graphs
from deepaug.domains.graph.evaluate import GraphEvalSettings, evaluate, pygcl_split, svm_cv, svm_split
from deepaug.domains.graph.train import GraphPretrainSettings, pretrain
from deepaug.errors import NonFiniteError

FAST = dict(svm="svc_linear", c_grid="0.01,1", device="cpu")


def _blobs(n, seed, d=8, spread=1.0):
    g = np.random.RandomState(seed)
    y = np.arange(n) % 2
    return np.array([[3.0] * d, [-3.0] * d])[y] + spread * g.randn(n, d), y


def test_svm_cv_separates_separable_data_and_is_at_chance_on_random_labels():
    x, y = _blobs(80, 0)
    good = svm_cv(x, y, svm="svc_linear", c_grid=[0.1, 1.0])
    assert good["acc"] > 0.95 and good["dev_acc"] > 0.95 and len(good["fold_acc"]) == 10
    assert good["acc_std"] == pytest.approx(np.std(good["fold_acc"]))
    noise = svm_cv(np.random.RandomState(1).randn(80, 8), y, svm="svc_linear", c_grid=[0.01])
    assert noise["acc"] < 0.7


def _svm(svm, seed):
    from sklearn.svm import SVC, LinearSVC

    if svm == "linearsvc":
        return LinearSVC(dual=True, random_state=seed)
    return SVC(kernel="linear")


@pytest.mark.parametrize("svm", ["linearsvc", "svc_linear"])
def test_kfold_chooses_c_as_graphcl_s_grid_search_and_its_dev_metric_is_the_inner_cv_score(svm):
    """Per outer fold, GraphCL's GridSearchCV(svm, {"C": grid}, cv=5, scoring="accuracy") on the training folds
    (evaluate_embedding.py L142-148): the same C, its inner-CV score (the dev metric, averaged) and the refit's
    accuracy on the held-out fold."""
    import warnings

    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    x, y = _blobs(60, 2, spread=4.0)
    x = 0.1 * x  # overlapping and small: C matters
    grid = [0.001, 0.1, 10.0]
    got = svm_cv(x, y, svm=svm, c_grid=grid, seed=5)
    dev, acc, chosen = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train, test in StratifiedKFold(10, shuffle=True, random_state=5).split(x, y):
            search = GridSearchCV(_svm(svm, 5), {"C": grid}, cv=5, scoring="accuracy").fit(x[train], y[train])
            chosen.append(search.best_params_["C"])
            dev.append(search.best_score_)
            acc.append(search.score(x[test], y[test]))
    assert got["chosen_c"] == chosen and set(chosen) != {grid[0]}
    assert got["dev_acc"] == pytest.approx(np.mean(dev)) and got["acc"] == pytest.approx(np.mean(acc))
    assert got["acc_std"] == pytest.approx(np.std(got["fold_acc"]))


def test_pygcl_split_is_a_seeded_permutation_cut_80_10_rest():
    for n in (188, 300, 61):
        split = pygcl_split(n, seed=4)
        train, valid, test = int(n * 0.8), int(n * 0.1), n - int(n * 0.8) - int(n * 0.1)
        assert [len(split[k]) for k in ("train", "valid", "test")] == [train, valid, test]
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(4)).tolist()
        assert list(split["train"]) + list(split["valid"]) + list(split["test"]) == perm  # not stratified: no labels
    assert [len(pygcl_split(188, 0)[k]) for k in ("train", "valid", "test")] == [150, 18, 20]  # MUTAG
    assert list(pygcl_split(300, 1)["test"]) != list(pygcl_split(300, 2)["test"])  # the run's seed moves it
    assert list(pygcl_split(300, 1)["test"]) == list(pygcl_split(300, 1)["test"])


@pytest.mark.parametrize("svm", ["linearsvc", "svc_linear"])
def test_split_chooses_c_on_the_validation_part_as_pygcl_s_predefined_split_search(svm):
    """PyGCL's BaseSKLearnEvaluator (GCL/eval/eval.py L66-77): GridSearchCV with a PredefinedSplit of train then
    valid, refit on both, micro- and macro-F1 on the test part."""
    import warnings

    from sklearn.metrics import f1_score
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    g = np.random.RandomState(3)
    y = np.where(np.arange(120) % 5 == 0, 2, np.arange(120) % 2)  # a third, smaller class: macro-F1 is not micro
    x = 0.01 * (3 * np.eye(3, 4)[y] + 1.5 * g.randn(120, 4))  # small features: a small C underfits
    split = pygcl_split(120, seed=7)
    grid = [0.001, 0.1, 10.0]
    got = svm_split(x, y, split, svm=svm, c_grid=grid, seed=7)
    tr, va, te = split["train"], split["valid"], split["test"]
    fold = np.concatenate([-np.ones(len(tr)), np.zeros(len(va))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(_svm(svm, 7), {"C": grid}, cv=PredefinedSplit(fold), scoring="accuracy")
        search.fit(np.concatenate([x[tr], x[va]]), np.concatenate([y[tr], y[va]]))
    pred = search.predict(x[te])
    assert got["c"] == search.best_params_["C"] and got["dev_acc"] == pytest.approx(search.best_score_)
    assert got["valid_acc"] == pytest.approx(list(search.cv_results_["mean_test_score"]))
    assert got["micro_f1"] == pytest.approx(f1_score(y[te], pred, average="micro"))
    assert got["macro_f1"] == pytest.approx(f1_score(y[te], pred, average="macro"))
    assert got["micro_f1"] == pytest.approx(float((pred == y[te]).mean()))  # one label per graph: the accuracy
    assert got["c"] != grid[0] and got["macro_f1"] < got["micro_f1"]
    # the C is chosen on the validation part alone: relabelling the test part changes no choice
    moved = y.copy()
    moved[te] = (moved[te] + 1) % 3
    assert svm_split(x, moved, split, svm=svm, c_grid=grid, seed=7)["c"] == got["c"]


def test_eval_json_of_a_contrastive_run(tmp_path, toy_pt):
    pretrain(
        GraphPretrainSettings(hidden_dim=16, num_layers=3, epochs=4, batch_size=32, device="cpu"),
        toy_pt,
        tmp_path / "run",
        tmp_path / "ckpt",
    )
    model = tmp_path / "run" / "model.pt"
    result = evaluate(GraphEvalSettings(**FAST, scheme="kfold"), model, toy_pt, tmp_path / "run" / "eval.json")
    assert set(result) >= {"svm_acc", "svm_acc_std", "dev_svm_acc", "n_graphs", "eval_time_s", "train_time_s"}
    assert 0 <= result["svm_acc_std"] < 50 and result["n_graphs"] == 60 and result["eval_scheme"] == "kfold"
    assert result["svm_acc"] > 85  # rings vs trees, from structure (an untrained encoder: ~68)
    assert "classifier_acc" not in result
    assert (tmp_path / "run" / "eval.json").is_file()
    split = evaluate(GraphEvalSettings(**FAST, seed=3), model, toy_pt, tmp_path / "split.json")
    assert split["eval_scheme"] == "split" and (split["n_train"], split["n_dev"], split["n_test"]) == (48, 6, 6)
    assert split["svm_acc"] == split["svm_micro_f1"] and 0 <= split["svm_macro_f1"] <= 100
    assert "svm_acc_std" not in split and split["svm_c"] in (0.01, 1.0)
    test_y = np.asarray(load_graphs(toy_pt).y)[pygcl_split(60, 3)["test"]]
    assert split["chance_svm_acc"] == pytest.approx(100 * np.bincount(test_y).max() / 6)  # of the scored graphs


def test_supervised_run_reports_its_classifier_on_the_held_out_split(tmp_path, toy_pt):
    from deepaug.domains.graph.train import load_encoder

    pretrain(
        GraphPretrainSettings(
            hidden_dim=8, num_layers=2, epochs=4, batch_size=32, device="cpu", objective="supervised"
        ),
        toy_pt,
        tmp_path / "sup",
        tmp_path / "ckpt",
    )
    result = evaluate(GraphEvalSettings(**FAST), tmp_path / "sup" / "model.pt", toy_pt, tmp_path / "eval.json")
    model, gs = load_encoder(tmp_path / "sup" / "model.pt", "cpu"), load_graphs(toy_pt)
    test = model.split["test"]
    b = gs.batch(test)
    with torch.no_grad():
        pred = model(b.x, b.edge_index, b.batch, b.num_graphs).argmax(1)
    assert result["classifier_acc"] == pytest.approx(100 * float((pred == b.y).float().mean()))
    assert 0 <= result["dev_classifier_acc"] <= 100 and "svm_acc" in result


def test_non_finite_embeddings_are_refused_naming_the_run(tmp_path, toy_pt):
    pretrain(
        GraphPretrainSettings(
            hidden_dim=8, num_layers=2, epochs=1, batch_size=32, device="cpu", run="graph/MUTAG/none/seed0"
        ),
        toy_pt,
        tmp_path / "run",
        tmp_path / "ckpt",
    )
    path = tmp_path / "run" / "model.pt"
    state = torch.load(path, weights_only=False)
    state["model"]["layers.1.bn.weight"].fill_(3e38)  # finite weights; the sum over a graph's nodes overflows
    torch.save(state, path)
    with pytest.raises(NonFiniteError, match=r"run graph/MUTAG/none/seed0: \d+ of 60 graph embeddings are not finite"):
        evaluate(GraphEvalSettings(**FAST), path, toy_pt, tmp_path / "eval.json")
    assert not (tmp_path / "eval.json").exists()


def test_eval_settings_are_validated():
    with pytest.raises(ValueError, match="scheme must be one of"):
        GraphEvalSettings(scheme="loo").validate()
    with pytest.raises(ValueError, match="svm must be one of"):
        GraphEvalSettings(svm="logreg").validate()
    with pytest.raises(ValueError, match="c_grid must"):
        GraphEvalSettings(c_grid="1,-2").validate()
    with pytest.raises(ValueError, match="folds must be a whole number >= 2"):
        GraphEvalSettings(folds=1).validate()
