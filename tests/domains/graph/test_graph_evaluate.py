"""Graph evaluation: SVM accuracy under stratified k-fold CV with C chosen by inner CV (the dev metric),
eval.json of contrastive and supervised runs, refusal of non-finite embeddings."""

import numpy as np
import pytest
import torch

from deepaug.domains.graph.evaluate import GraphEvalSettings, evaluate, svm_cv
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


@pytest.mark.parametrize("svm", ["linearsvc", "svc_linear"])
def test_dev_metric_is_the_inner_cv_score_of_the_c_chosen_on_training_folds(svm):
    """Recomputed by hand: per outer fold, every C's mean inner-CV accuracy on the training folds; the
    best (first of ties) is chosen, its score averaged over folds is dev_acc, and only the chosen C's
    refit sees the test fold."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.svm import SVC, LinearSVC

    x, y = _blobs(60, 2, spread=4.0)  # overlapping: C matters
    grid = [0.001, 0.1, 10.0]
    got = svm_cv(x, y, svm=svm, c_grid=grid, seed=5)
    if svm == "linearsvc":

        def make(c):
            return LinearSVC(C=c, dual=True, random_state=5)
    else:

        def make(c):
            return SVC(C=c, kernel="linear")

    dev, acc, chosen = [], [], []
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, (train, test) in enumerate(StratifiedKFold(10, shuffle=True, random_state=5).split(x, y)):
            inner = StratifiedKFold(5, shuffle=True, random_state=6 + k)
            scores = [cross_val_score(make(c), x[train], y[train], cv=inner).mean() for c in grid]
            best = int(np.argmax(scores))
            dev.append(scores[best])
            chosen.append(grid[best])
            acc.append((make(grid[best]).fit(x[train], y[train]).predict(x[test]) == y[test]).mean())
    assert got["chosen_c"] == chosen
    assert got["dev_acc"] == pytest.approx(np.mean(dev)) and got["acc"] == pytest.approx(np.mean(acc))


def test_eval_json_of_a_contrastive_run(tmp_path, toy_pt):
    pretrain(
        GraphPretrainSettings(hidden_dim=16, num_layers=3, epochs=4, batch_size=32, device="cpu"),
        toy_pt,
        tmp_path / "run",
        tmp_path / "ckpt",
    )
    result = evaluate(GraphEvalSettings(**FAST), tmp_path / "run" / "model.pt", toy_pt, tmp_path / "run" / "eval.json")
    assert set(result) >= {"svm_acc", "svm_acc_std", "dev_svm_acc", "n_graphs", "eval_time_s", "train_time_s"}
    assert 0 <= result["svm_acc_std"] < 50 and result["n_graphs"] == 60
    assert result["svm_acc"] > 85  # rings vs trees, from structure (an untrained encoder: ~68)
    assert "classifier_acc" not in result
    assert (tmp_path / "run" / "eval.json").is_file()


def test_supervised_run_reports_its_classifier_on_the_held_out_split(tmp_path, toy_pt):
    from deepaug.domains.graph.data import load_graphs
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
    with pytest.raises(ValueError, match="svm must be one of"):
        GraphEvalSettings(svm="logreg").validate()
    with pytest.raises(ValueError, match="c_grid must"):
        GraphEvalSettings(c_grid="1,-2").validate()
    with pytest.raises(ValueError, match="folds must be a whole number >= 2"):
        GraphEvalSettings(folds=1).validate()
