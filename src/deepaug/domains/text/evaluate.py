"""Sentence-similarity evaluation: Spearman correlation (x100) of cosine similarity with human scores.

The SimCSE protocol: [CLS] vector before the MLP pooler, cosine similarity of each pair, Spearman's
rho against the gold scores per task; the report gives each task and their average.

A supervised run trained with SentEval's relatedness head (``sup_head="relatedness"``) stores the head in
model.pt; its tasks are then scored as SentEval scores STS-B: Spearman of the head's predicted score
``sum(probs * [1..5])`` with the gold scores (``scorer`` in eval.json says which).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepaug.core.schema_defaults import domain_schema, schema_defaults
from deepaug.core.vocabulary import check_device
from deepaug.domains.text.data import load_task
from deepaug.engine import training as T
from deepaug.errors import DataUnavailableError, NonFiniteError
from deepaug.io import load_torch, read_json, write_json


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x, y) -> float:
    """Spearman's rank correlation (Pearson correlation of the tie-averaged ranks).

    NaN/inf inputs are an error, not a rank: argsort puts NaNs last, so an all-NaN encoder would score
    a perfect 1.0 against sorted gold scores. A constant input (every rank tied) is an error too: the
    correlation is undefined there, and a NaN would vanish into an average of tasks."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"spearman needs two 1-D sequences of equal length >= 2, got {x.shape} and {y.shape}")
    for label, v in (("x", x), ("y", y)):
        bad = int((~np.isfinite(v)).sum())
        if bad:
            raise NonFiniteError(
                f"spearman: {bad} of {len(v)} values of {label} are NaN/inf; the correlation is undefined"
            )
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    for label, r, v in (("x", rx, x), ("y", ry, y)):
        if not (r**2).sum() > 0:
            raise NonFiniteError(
                f"spearman: all {len(v)} values of {label} are equal ({v[0]:g}); the correlation is undefined"
            )
    return float((rx * ry).sum() / np.sqrt((rx**2).sum() * (ry**2).sum()))


@torch.no_grad()
def encode(
    model, tokenizer, sentences: list[str], max_len: int, device, precision: str = "fp32", batch_size: int = 128
):
    model.eval()
    out = []
    for i in range(0, len(sentences), batch_size):
        batch = tokenizer(
            sentences[i : i + batch_size], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        batch = {k: v.to(device) for k, v in batch.items()}
        with T.autocast_context(device, precision):
            out.append(model(**batch).float().cpu())
    return torch.cat(out)


def _where(name: str | None, run: str | None) -> str:
    task = f"task {name}" if name else "the similarity task"
    return f"run {run}: {task}" if run else task


def _check_embeddings(emb: torch.Tensor, sentences: list[str], where: str) -> None:
    bad = ~torch.isfinite(emb).all(dim=1)
    if bad.any():
        first = sentences[int(bad.nonzero()[0])]
        raise NonFiniteError(
            f"{where}: the encoder's embeddings are NaN/inf for {int(bad.sum())} of {len(sentences)} sentences "
            f"(first: {first[:60]!r}); its weights are probably NaN (see the run's train_metrics.jsonl) - re-train it, "
            f"e.g. with a lower learning rate or precision fp32"
        )


def _check_similarities(sims: np.ndarray, where: str) -> None:
    bad = int((~np.isfinite(sims)).sum())
    if bad:
        raise NonFiniteError(f"{where}: {bad} of {len(sims)} cosine similarities are NaN/inf; re-train the run")
    if np.ptp(sims) == 0:
        raise NonFiniteError(
            f"{where}: the encoder gives the same similarity ({sims[0]:.4g}) to every one of the {len(sims)} pairs, "
            f"so Spearman is undefined; the encoder has collapsed (e.g. constant [CLS] vectors) - re-train it"
        )


def spearman_on_task(
    model,
    tokenizer,
    task_df,
    max_len: int,
    device,
    precision: str = "fp32",
    name: str | None = None,
    run: str | None = None,
) -> float:
    """Spearman of the pairs' cosine similarities with the gold scores.

    ``name`` (the task) and ``run`` go into the NonFiniteError raised for NaN/inf embeddings or similarities
    or a constant similarity, so that a broken encoder fails loudly instead of getting a plausible score."""
    where = _where(name, run)
    unique = sorted(set(task_df["sentence1"]) | set(task_df["sentence2"]))
    index = {s: i for i, s in enumerate(unique)}
    emb = encode(model, tokenizer, unique, max_len, device, precision)
    _check_embeddings(emb, unique, where)
    a = emb[[index[s] for s in task_df["sentence1"]]]
    b = emb[[index[s] for s in task_df["sentence2"]]]
    sims = F.cosine_similarity(a, b, dim=1).numpy()
    _check_similarities(sims, where)
    try:
        return spearman(sims, task_df["score"].to_numpy())
    except NonFiniteError as exc:  # the gold scores (load_task validates them; a DataFrame built in code may not be)
        raise NonFiniteError(f"{where}: gold scores: {exc}") from None


def _encode_in_batches(model, tokenizer, sentences, max_len, device, precision, batch_size):
    """Sentence vectors (float32, on ``device``) of ``sentences`` in order, ``batch_size`` at a time, no grad."""
    out = []
    with torch.no_grad():
        for i in range(0, len(sentences), batch_size):
            batch = tokenizer(
                sentences[i : i + batch_size], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
            )
            batch = {k: v.to(device) for k, v in batch.items()}
            with T.autocast_context(device, precision):
                out.append(model(**batch, use_mlp=False).float())
    return torch.cat(out)


def relatedness_predictions(
    model, head, tokenizer, task_df, max_len: int, device, precision: str = "fp32", batch_size: int = 64
) -> np.ndarray:
    """The head's predicted score ``sum(probs * [1..5])`` for every pair of ``task_df``, in order.

    As the author's ``predict_proba`` (bruel-gabrielsson/SimCSE ``SentEval/senteval/tools/relatedness.py``
    L292-310): encoder and head in eval mode, first and second sentences encoded in batches of 64, the
    head's probabilities dotted with 1..5 (L224, L239-241)."""
    model.eval()
    head.eval()
    u = _encode_in_batches(model, tokenizer, task_df["sentence1"].tolist(), max_len, device, precision, batch_size)
    v = _encode_in_batches(model, tokenizer, task_df["sentence2"].tolist(), max_len, device, precision, batch_size)
    with torch.no_grad():
        return head.predict(head(u, v)).double().cpu().numpy()


def relatedness_spearman(
    model,
    head,
    tokenizer,
    task_df,
    max_len: int,
    device,
    precision: str = "fp32",
    name: str | None = None,
    run: str | None = None,
    constant_is_zero: bool = False,
) -> float:
    """Spearman of the relatedness head's predicted scores with the gold scores.

    NaN/inf predictions raise :class:`NonFiniteError` naming the task and run. Constant predictions
    (a head whose softmax has saturated) raise too, unless ``constant_is_zero``: the dev checks of
    training then count them as 0, as SentEval does (``pr = 0 if pr != pr``, relatedness.py L227)."""
    where = _where(name, run)
    yhat = relatedness_predictions(model, head, tokenizer, task_df, max_len, device, precision)
    bad = int((~np.isfinite(yhat)).sum())
    if bad:
        raise NonFiniteError(
            f"{where}: {bad} of {len(yhat)} relatedness predictions are NaN/inf; the run diverged - "
            f"re-train it, e.g. with a lower learning rate or precision fp32"
        )
    if np.ptp(yhat) == 0:
        if constant_is_zero:
            return 0.0
        raise NonFiniteError(
            f"{where}: the relatedness head predicts the same score ({yhat[0]:.4g}) for every one "
            f"of the {len(yhat)} pairs, so Spearman is undefined - re-train the run"
        )
    try:
        return spearman(yhat, task_df["score"].to_numpy())
    except NonFiniteError as exc:
        raise NonFiniteError(f"{where}: gold scores: {exc}") from None


# The defaults of these settings, from the config schema (each written once there; deepaug.core.schema_defaults)
_EVAL = schema_defaults(domain_schema(__file__), "eval")


@dataclass
class TextEvalSettings:
    eval_max_len: int = _EVAL["eval_max_len"]
    precision: str = _EVAL["precision"]
    device: str = "auto"

    def validate(self) -> None:
        """Impossible values, named (the CLI turns these into one line and exit status 2)."""
        from deepaug.core.vocabulary import PRECISIONS

        if isinstance(self.eval_max_len, bool) or not isinstance(self.eval_max_len, int) or self.eval_max_len < 2:
            raise ValueError(f"eval_max_len must be a whole number >= 2, got {self.eval_max_len!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        check_device(self.device)


def _load_legacy(state: dict, model_path):
    """model.pt written before encoder bundles: it names the prepared encoder folder, often relative to the
    working directory the run was trained in."""
    from transformers import AutoConfig, AutoTokenizer

    from deepaug.domains.text.models import SimCSEEncoder, backbone_from_config

    source = Path(state["source"])
    if not (source / "config.json").is_file():
        raise DataUnavailableError(
            f"{model_path} was saved without its encoder config and refers to the folder {source}, which is not "
            f"there from {Path.cwd()}: run from the directory it was trained in (the workflow directory), or re-train "
            f"it with this version of deepaug (model.pt then carries its config and tokenizer)"
        )
    config = AutoConfig.from_pretrained(str(source))
    return SimCSEEncoder(backbone_from_config(config)), AutoTokenizer.from_pretrained(str(source))


def load_trained(model_path: str | Path, device, with_head: bool = False):
    """(encoder in eval mode, tokenizer) from a text run's model.pt; with ``with_head``, a third item: the
    run's relatedness head in eval mode, or None when it was not trained with one.

    New model.pt files carry an ``encoder_bundle`` (config and tokenizer files) and load from anywhere;
    older ones name the prepared encoder folder (``source``) and are still read."""
    from deepaug.domains.text.models import RelatednessHead, load_bundle

    state = load_torch(model_path, "trained text model")
    if "encoder_bundle" in state:
        model, tokenizer = load_bundle(state["encoder_bundle"])
    else:
        model, tokenizer = _load_legacy(state, model_path)
    model.encoder.load_state_dict(state["encoder"])
    model = model.to(device).eval()
    if not with_head:
        return model, tokenizer
    head = None
    if state.get("relatedness_head") is not None:
        head = RelatednessHead(model.encoder.config.hidden_size)
        head.load_state_dict(state["relatedness_head"])
        head = head.to(device).eval()
    return model, tokenizer, head


def run_name(model_path: str | Path) -> str:
    """The run's name from provenance.json beside model.pt (``settings.run``), else the model path."""
    prov_path = Path(model_path).with_name("provenance.json")
    try:
        return str(read_json(prov_path)["settings"]["run"])
    except (OSError, ValueError, KeyError, TypeError):
        return str(model_path)


def evaluate(s: TextEvalSettings, model_path: str | Path, tasks: dict[str, str | Path], out: str | Path) -> dict:
    t0 = time.time()
    device = T.resolve_device(s.device)
    model, tokenizer, head = load_trained(model_path, device, with_head=True)
    result = {}
    run = run_name(model_path)
    for name, path in tasks.items():
        if head is None:
            score = spearman_on_task(
                model, tokenizer, load_task(path), s.eval_max_len, device, s.precision, name=name, run=run
            )
        else:  # SentEval's STS-B score for the relatedness head (author's fork sts.py L464-467)
            score = relatedness_spearman(
                model, head, tokenizer, load_task(path), s.eval_max_len, device, s.precision, name=name, run=run
            )
        result[f"sts_{name}"] = 100 * score
    result["sts_avg"] = float(np.mean([result[f"sts_{n}"] for n in tasks]))
    result["scorer"] = "cosine" if head is None else "relatedness"
    result["eval_time_s"] = round(time.time() - t0, 3)
    prov_path = Path(model_path).with_name("provenance.json")
    if prov_path.exists():
        prov = read_json(prov_path)
        result.update({k: prov.get(k) for k in ("train_time_s", "dev_spearman", "dev_task", "best_step", "n_layers")})
    write_json(out, result)
    return result
