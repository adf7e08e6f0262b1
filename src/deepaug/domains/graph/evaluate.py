"""Frozen-embedding evaluation of a trained GIN (no Deep Augmentation: eval mode): an SVM on the graph
vectors (layer L+1, the sum-pooled concatenation of the GIN layers, no scaling), C chosen without looking at a
test graph, in one of two schemes (``scheme``; ``graph.protocol`` picks it):

* ``split`` (PyGCL@0e1bacb, the protocol the paper follows: ``examples/GraphCL.py`` L105-106,
  ``GCL/eval/eval.py`` L9-18 and L61-77, ``GCL/eval/svm.py`` L5-13): one random split of the graphs,
  ``get_split(n, train_ratio=0.8, test_ratio=0.1)``: a permutation (``torch.randperm``, not stratified), the
  first ``int(0.8 n)`` graphs train, the next ``int(0.1 n)`` validate (PyGCL's ``test_ratio`` sizes its
  "valid" part) and the rest, about 10%, test. ``GridSearchCV(svm, {"C": grid}, cv=PredefinedSplit)`` fits each C
  on the training part and scores its accuracy on the validation part; the best (the first of ties) is refit on
  training + validation graphs (``get_predefined_split`` concatenates them, L38-45; ``refit=True``) and scored
  on the test part: micro-F1 (which, one label per graph, is the accuracy: ``svm_acc``) and macro-F1. The
  permutation is drawn from a generator seeded with the evaluation's seed (the run's seed in the workflow;
  PyGCL's example leaves torch's generator unseeded). Dev metric: the chosen C's validation accuracy.
* ``kfold`` (Shen-Lab/GraphCL@5003879 ``unsupervised_TU/evaluate_embedding.py`` L132-166 and L241-276, the code
  behind GraphCL's published numbers): ``StratifiedKFold(10, shuffle=True)``; in each outer fold
  ``GridSearchCV(svm, {"C": grid}, cv=5, scoring="accuracy")`` on the nine training folds (written out as
  loops here; ``cv=5`` is an unshuffled ``StratifiedKFold(5)``), refit with the chosen C and scored on the
  held-out fold; the mean and standard deviation of the ten accuracies are reported. The outer folds are seeded
  with the evaluation's seed (GraphCL's ``random_state=None`` draws from numpy's generator, which ``gsimclr.py``
  seeds with the run's seed). Dev metric: the inner-CV accuracy of the chosen C, averaged over the outer folds:
  computed on training folds only, so choosing a run by it never looks at a test fold. (GraphCL's own "val"
  accuracy, L150-164, re-fits on part of each training fold and selects nothing.)

The solvers' convergence warnings are silenced, as in GraphCL (L217-218). The SVM (``svm``):

* ``linearsvc``: ``LinearSVC``, PyGCL's ``SVMEvaluator(linear=True)`` (``GCL/eval/svm.py`` L7-8), with
  ``dual=True``, scikit-learn's default before 1.3, i.e. when PyGCL and GraphCL were written (liblinear's dual
  solver, squared hinge loss, one-vs-rest, stopped at its default 1,000 iterations).
* ``svc_linear``: ``SVC(kernel="linear")`` (libsvm: hinge loss, one-vs-one), a linear SVM that is
  several times faster on a few hundred graphs.
* ``svc_rbf``: ``SVC()``, the RBF kernel of GraphCL's ``svc_classify`` (L144).

Both ``SVC`` variants stop after ``SVC_MAX_ITER`` iterations (libsvm has no limit by default).

Supervised runs are scored the same way on their frozen graph vectors, and additionally by their own
classifier on the fixed held-out split of :func:`deepaug.domains.graph.train.supervised_split`:
``classifier_acc`` (test graphs) and ``dev_classifier_acc`` (dev graphs). The SVM's graphs there
include graphs whose labels trained the encoder.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepaug.core.schema_defaults import domain_schema, schema_defaults
from deepaug.core.vocabulary import check_device
from deepaug.domains.graph.data import GraphSet, load_graphs
from deepaug.domains.graph.train import load_encoder
from deepaug.engine import training as T
from deepaug.errors import NonFiniteError
from deepaug.io import read_json, write_json

SVMS = ("linearsvc", "svc_linear", "svc_rbf")
SCHEMES = ("split", "kfold")
SPLIT_RATIOS = (0.8, 0.1)  # examples/GraphCL.py L105: get_split(train_ratio=0.8, test_ratio=0.1)
SVC_MAX_ITER = 1_000_000
C_GRID = "0.001,0.01,0.1,1,10,100,1000"  # GraphCL evaluate_embedding.py L143 and PyGCL GCL/eval/svm.py L12


# The defaults of these settings, from the config schema (each written once there; deepaug.core.schema_defaults)
_EVAL = schema_defaults(domain_schema(__file__), "eval")


@dataclass
class GraphEvalSettings:
    scheme: str = _EVAL["scheme"]  # split (PyGCL) or kfold (GraphCL)
    folds: int = _EVAL["folds"]
    inner_folds: int = _EVAL["inner_folds"]
    svm: str = _EVAL["svm"]
    c_grid: str = _EVAL["c_grid"]  # comma-separated values of C
    batch_size: int = _EVAL["batch_size"]
    seed: int = 0
    device: str = "auto"

    def c_values(self) -> list[float]:
        return [float(c) for c in str(self.c_grid).split(",") if c.strip()]

    def validate(self) -> None:
        for name in ("folds", "inner_folds", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if "folds" in name else 1):
                raise ValueError(f"{name} must be a whole number >= {2 if 'folds' in name else 1}, got {value!r}")
        if self.svm not in SVMS:
            raise ValueError(f"svm must be one of {SVMS}, got {self.svm!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        try:
            cs = self.c_values()
        except ValueError:
            raise ValueError(f"c_grid must be comma-separated numbers, got {self.c_grid!r}") from None
        if not cs or any(not (c > 0 and np.isfinite(c)) for c in cs):
            raise ValueError(f"c_grid must list finite values of C > 0, got {self.c_grid!r}")
        check_device(self.device)


def run_name(model_path: str | Path) -> str:
    """The run a model belongs to (from its provenance.json), for error messages."""
    try:
        return read_json(Path(model_path).with_name("provenance.json"))["settings"]["run"]
    except Exception:
        return str(Path(model_path).parent)


@torch.no_grad()
def embed(
    model, graphs: GraphSet, index=None, batch_size: int = 512, device: torch.device | str = "cpu", logits: bool = False
) -> torch.Tensor:
    """Graph vectors (layer L+1), or the head's output with ``logits``, of graphs ``index`` (default: all),
    in eval mode (the Deep Augmentation op is the identity there)."""
    model.eval()
    index = torch.arange(len(graphs)) if index is None else torch.as_tensor(index, dtype=torch.long)
    data = graphs.to(device)
    out = []
    for i in range(0, index.shape[0], batch_size):
        b = model.inputs(data.batch(index[i : i + batch_size].to(device)))  # with its training's self-loops
        fn = model if logits else model.encode
        out.append(fn(b.x, b.edge_index, b.batch, b.num_graphs).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.graph_dim)


def check_finite_embeddings(emb: torch.Tensor, run: str) -> None:
    bad = int((~torch.isfinite(emb)).any(dim=1).sum())
    if bad:
        raise NonFiniteError(
            f"run {run}: {bad} of {emb.shape[0]} graph embeddings are not finite (NaN/inf); the "
            f"model diverged, so it is not evaluated"
        )


def _make_svm(svm: str, c: float, seed: int):
    from sklearn.svm import SVC, LinearSVC

    if svm == "linearsvc":  # dual=True: LinearSVC's default when GraphCL and PyGCL ran (scikit-learn < 1.3)
        return LinearSVC(C=c, dual=True, random_state=seed)
    # libsvm iterates without limit by default; on features an SVM cannot separate (e.g. an untrained
    # encoder's unscaled sums) a large C then runs for many minutes: stop at SVC_MAX_ITER (~1 s here)
    return SVC(C=c, kernel="linear" if svm == "svc_linear" else "rbf", max_iter=SVC_MAX_ITER)


def _predict(svm: str, c: float, seed: int, x_fit, y_fit, x_score) -> np.ndarray:
    import sklearn

    # the inputs are checked once (finite, numeric) by the caller: skip scikit-learn's per-call checks
    with warnings.catch_warnings(), sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        warnings.simplefilter("ignore")  # liblinear's ConvergenceWarning, as GraphCL (L217-218)
        return _make_svm(svm, c, seed).fit(x_fit, y_fit).predict(x_score)


def _accuracy(svm: str, c: float, seed: int, x_fit, y_fit, x_score, y_score) -> float:
    return float((_predict(svm, c, seed, x_fit, y_fit, x_score) == y_score).mean())


def svm_cv(
    x: np.ndarray,
    y: np.ndarray,
    folds: int = 10,
    inner_folds: int = 5,
    svm: str = "linearsvc",
    c_grid: list[float] | None = None,
    seed: int = 0,
) -> dict:
    """Outer stratified k-fold accuracy of an SVM whose C is chosen by inner CV on each training part.

    The search is GridSearchCV's (``refit=True``, ``scoring="accuracy"``: the C with the highest mean
    inner-fold accuracy, the first of ties, refit on the whole training part), written out as loops:
    GridSearchCV's per-fit bookkeeping costs ~30 ms, 10-30x an SVM fit on a few hundred graphs.
    Returns fractions: ``acc`` (mean over folds), ``acc_std`` (population std, as ``np.std``),
    ``dev_acc`` (the chosen C's inner-CV accuracy, averaged over folds), ``fold_acc``, ``chosen_c``.
    """
    from sklearn.model_selection import StratifiedKFold

    if svm not in SVMS:
        raise ValueError(f"svm must be one of {SVMS}, got {svm!r}")
    c_grid = c_grid or [float(c) for c in C_GRID.split(",")]
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if not np.isfinite(x).all():
        raise ValueError("svm_cv: the features are not finite")
    smallest = int(np.bincount(y).min())
    if smallest < folds:
        raise ValueError(
            f"{folds}-fold stratified CV needs at least {folds} graphs per class; the smallest class has {smallest}"
        )
    outer = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_acc, dev_acc, chosen = [], [], []
    for train, test in outer.split(x, y):
        xt, yt = x[train], y[train]
        # GridSearchCV(cv=5) with a classifier: StratifiedKFold(5), unshuffled (evaluate_embedding.py L144)
        inner = list(StratifiedKFold(n_splits=inner_folds).split(xt, yt))
        scores = [np.mean([_accuracy(svm, c, seed, xt[a], yt[a], xt[b], yt[b]) for a, b in inner]) for c in c_grid]
        best = int(np.argmax(scores))  # the first of ties, as GridSearchCV's best_index_
        chosen.append(float(c_grid[best]))
        dev_acc.append(float(scores[best]))
        fold_acc.append(_accuracy(svm, c_grid[best], seed, x[train], y[train], x[test], y[test]))
    return {
        "acc": float(np.mean(fold_acc)),
        "acc_std": float(np.std(fold_acc)),
        "dev_acc": float(np.mean(dev_acc)),
        "fold_acc": fold_acc,
        "chosen_c": chosen,
    }


def pygcl_split(n: int, seed: int, ratios: tuple[float, float] = SPLIT_RATIOS) -> dict[str, np.ndarray]:
    """PyGCL's ``get_split(n, train_ratio, test_ratio)`` (``GCL/eval/eval.py`` L9-18) with a seeded permutation:
    ``train`` the first ``int(n * train_ratio)`` graphs of it, ``valid`` the next ``int(n * test_ratio)``, ``test``
    the rest (indices, in the permutation's order; not stratified)."""
    train_size, valid_size = int(n * ratios[0]), int(n * ratios[1])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return {
        "train": perm[:train_size],
        "valid": perm[train_size : train_size + valid_size],
        "test": perm[train_size + valid_size :],
    }


def svm_split(
    x: np.ndarray, y: np.ndarray, split: dict, svm: str = "linearsvc", c_grid: list[float] | None = None, seed: int = 0
) -> dict:
    """PyGCL's ``BaseSKLearnEvaluator.evaluate`` (``GCL/eval/eval.py`` L66-77), ``GridSearchCV`` with a
    ``PredefinedSplit`` written out: every C fit on ``train`` and scored (accuracy) on ``valid``; the best, the
    first of ties, refit on ``train`` then ``valid`` (concatenated in that order, L38-45) and scored on ``test``.
    Returns fractions: ``micro_f1`` (= the test accuracy), ``macro_f1``, ``dev_acc`` (the chosen C's validation
    accuracy), ``c``, ``valid_acc`` (every C's)."""
    from sklearn.metrics import f1_score

    if svm not in SVMS:
        raise ValueError(f"svm must be one of {SVMS}, got {svm!r}")
    c_grid = c_grid or [float(c) for c in C_GRID.split(",")]
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if not np.isfinite(x).all():
        raise ValueError("svm_split: the features are not finite")
    tr, va, te = (np.asarray(split[k]) for k in ("train", "valid", "test"))
    if len(tr) < 2 or len(np.unique(y[tr])) < 2 or not len(va) or not len(te):
        raise ValueError(
            f"the split has {len(tr)} training graphs of {len(np.unique(y[tr]))} classes, {len(va)} validation and "
            f"{len(te)} test graphs: it needs two classes to train on and one graph in each other part"
        )
    scores = [_accuracy(svm, c, seed, x[tr], y[tr], x[va], y[va]) for c in c_grid]
    best = int(np.argmax(scores))  # the first of ties, as GridSearchCV's best_index_
    fit = np.concatenate([tr, va])
    pred = _predict(svm, c_grid[best], seed, x[fit], y[fit], x[te])
    return {
        "micro_f1": float(f1_score(y[te], pred, average="micro")),
        "macro_f1": float(f1_score(y[te], pred, average="macro")),
        "dev_acc": float(scores[best]),
        "c": float(c_grid[best]),
        "valid_acc": [float(v) for v in scores],
    }


def evaluate(s: GraphEvalSettings, model_path: str | Path, data_path: str | Path, out: str | Path) -> dict:
    """eval.json (x100): ``svm_acc`` (test accuracy) and ``dev_svm_acc`` in both schemes; ``split``: also
    ``svm_micro_f1`` (= ``svm_acc``), ``svm_macro_f1``, the chosen ``svm_c`` and the parts' sizes; ``kfold``:
    ``svm_acc_std`` (over the outer folds) and ``svm_c_median``. For supervised models also
    ``classifier_acc``/``dev_classifier_acc`` (held-out split)."""
    s.validate()
    t0 = time.time()
    device = T.resolve_device(s.device)
    T.seed_everything(s.seed)
    graphs = load_graphs(data_path)
    model = load_encoder(model_path, device)
    run = run_name(model_path)
    T.check_finite_state(model.state_dict(), run, f"the weights in {model_path}")
    emb = embed(model, graphs, batch_size=s.batch_size, device=device)
    check_finite_embeddings(emb, run)
    y = graphs.y.numpy()
    if s.scheme == "split":
        split = pygcl_split(len(y), s.seed)
        res = svm_split(emb.double().numpy(), y, split, s.svm, s.c_values(), s.seed)
        scored = y[split["test"]]
        result = {
            "svm_acc": 100 * res["micro_f1"],
            "dev_svm_acc": 100 * res["dev_acc"],
            "svm_micro_f1": 100 * res["micro_f1"],
            "svm_macro_f1": 100 * res["macro_f1"],
            "svm_c": res["c"],
            "n_train": len(split["train"]),
            "n_dev": len(split["valid"]),
            "n_test": len(split["test"]),
        }
    else:
        cv = svm_cv(emb.double().numpy(), y, s.folds, s.inner_folds, s.svm, s.c_values(), s.seed)
        scored = y
        result = {
            "svm_acc": 100 * cv["acc"],
            "svm_acc_std": 100 * cv["acc_std"],
            "dev_svm_acc": 100 * cv["dev_acc"],
            "svm_c_median": float(np.median(cv["chosen_c"])),
        }
    result.update(
        eval_scheme=s.scheme,
        n_graphs=int(len(graphs)),
        # chance level (the majority-class rate of the scored labels, %): see deepaug.analysis.summary.baseline_check
        chance_svm_acc=100 * int(np.bincount(scored).max()) / len(scored),
    )
    if model.objective == "supervised":
        for split, key in (("dev", "dev_classifier_acc"), ("test", "classifier_acc")):
            index = model.split[split]
            pred = embed(model, graphs, index, s.batch_size, device, logits=True).argmax(1)
            result[key] = 100 * float((pred == graphs.y[torch.as_tensor(index, dtype=torch.long)]).float().mean())
        test_y = y[np.asarray(model.split["test"])]
        result["chance_classifier_acc"] = 100 * int(np.bincount(test_y).max()) / len(test_y)
    result["eval_time_s"] = round(time.time() - t0, 3)
    prov_path = Path(model_path).with_name("provenance.json")
    if prov_path.exists():
        result["train_time_s"] = read_json(prov_path).get("train_time_s")
    write_json(out, result)
    return result
