"""Representation analyses of a trained sentence encoder (eval mode, no Deep Augmentation), for
:func:`deepaug.analysis.analyze.analyze`: the first ``n_samples`` distinct sentences of a similarity task;
the mean over each sentence's tokens after the embeddings and after every block, then the MLP-pooled
[CLS] vector, for CKA; the task's pairs scored at least ``min_score`` as positive pairs for alignment;
the [CLS] vectors used for evaluation for uniformity.

Two options follow the author's analysis code instead (README "Deviations"):
``alignment_uniformity="author"``: positives are the pairs scored *above* ``min_score`` and uniformity is over
every sentence of the task's pairs (both sides, repeats kept) with the un-squared distance
(bruel-gabrielsson/SimCSE ``SentEval/senteval/sts.py`` L162-169, L200-206, L251-253).
``cka_rows="token_rows"``: CKA over every token's row instead of each sentence's mean (his ``CKA_run.py``
L240-243: ``hidden_states[l].view(-1, 768)`` of STS-B dev); the pooled layer L+1, which his code does not have,
gives each token its sentence's vector."""

from __future__ import annotations

import torch

from deepaug.analysis.analyze import layer_outputs, layer_summaries
from deepaug.analysis.similarity import alignment, uniformity

ALIGNMENT_UNIFORMITY = ("wang_isola", "author")
CKA_ROWS = ("token_means", "token_rows")


def text_analysis(
    model_path,
    task_path,
    n_samples: int,
    device,
    seed: int = 0,
    min_score: float = 4.0,
    alignment_uniformity: str = "wang_isola",
    cka_rows: str = "token_means",
) -> tuple[dict, dict]:
    """(scalars, matrices) of :func:`deepaug.analysis.analyze.analyze` (``seed`` is unused: nothing is drawn)."""
    from deepaug.domains.text.data import load_task
    from deepaug.domains.text.evaluate import encode, load_trained

    if alignment_uniformity not in ALIGNMENT_UNIFORMITY or cka_rows not in CKA_ROWS:
        raise ValueError(
            f"text analysis: alignment_uniformity must be one of {ALIGNMENT_UNIFORMITY} (got "
            f"{alignment_uniformity!r}) and cka_rows one of {CKA_ROWS} (got {cka_rows!r})"
        )
    author = alignment_uniformity == "author"

    model, tokenizer = load_trained(model_path, device)
    task = load_task(task_path)
    sentences = list(dict.fromkeys(list(task["sentence1"]) + list(task["sentence2"])))[:n_samples]
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    n_blocks = model.num_blocks
    feats = layer_outputs(model, lambda: model(**batch), n_blocks + 1)  # embeddings and blocks (eval skips the MLP)
    with torch.no_grad():
        pooled = model.mlp(feats[-1][:, 0].to(device)).float().cpu()  # layer L+1: the pooled sentence vector
    mask = batch["attention_mask"].cpu().bool()
    if cka_rows == "token_rows":
        # every (non-padding) token a row; the pooled vector repeated over its sentence's tokens
        reps = [f[mask] for f in feats] + [pooled.unsqueeze(1).expand(-1, mask.shape[1], -1)[mask]]
    else:
        # the mean over each sentence's tokens ([CLS] alone is constant after the embeddings)
        weights = mask.unsqueeze(-1).float()
        reps = [(f * weights).sum(1) / weights.sum(1) for f in feats] + [pooled]
    positives = task[task["score"] > min_score] if author else task[task["score"] >= min_score]
    if len(positives) < 2:
        raise ValueError(
            f"{task_path}: fewer than two pairs scored {'above' if author else 'at least'} {min_score} for alignment"
        )
    a = encode(model, tokenizer, list(positives["sentence1"]), 128, device)
    b = encode(model, tokenizer, list(positives["sentence2"]), 128, device)
    uniform_over = list(task["sentence1"]) + list(task["sentence2"]) if author else sentences
    emb = encode(model, tokenizer, uniform_over, 128, device)
    scalars, matrices = layer_summaries(reps, alignment(a, b), uniformity(emb, squared=not author))
    scalars.update(  # what was actually used
        analysis_samples=len(sentences),
        alignment_pairs=len(positives),
        uniformity_rows=len(uniform_over),
        cka_rows_used=int(reps[0].shape[0]),
        alignment_uniformity=alignment_uniformity,
        cka_rows=cka_rows,
    )
    return scalars, matrices
