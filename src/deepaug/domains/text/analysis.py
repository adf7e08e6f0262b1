"""Representation analyses of a trained sentence encoder (eval mode, no Deep Augmentation), for
:func:`deepaug.analysis.analyze.analyze`: the first ``n_samples`` distinct sentences of a similarity task;
the mean over each sentence's tokens after the embeddings and after every block, then the MLP-pooled
[CLS] vector, for CKA; the task's pairs scored at least ``min_score`` as positive pairs for alignment;
the [CLS] vectors used for evaluation for uniformity."""

from __future__ import annotations

import torch

from deepaug.analysis.analyze import layer_outputs, layer_summaries
from deepaug.analysis.similarity import alignment, uniformity


def text_analysis(
    model_path, task_path, n_samples: int, device, seed: int = 0, min_score: float = 4.0
) -> tuple[dict, dict]:
    """(scalars, matrices) of :func:`deepaug.analysis.analyze.analyze` (``seed`` is unused: nothing is drawn)."""
    from deepaug.domains.text.data import load_task
    from deepaug.domains.text.evaluate import encode, load_trained

    model, tokenizer = load_trained(model_path, device)
    task = load_task(task_path)
    sentences = list(dict.fromkeys(list(task["sentence1"]) + list(task["sentence2"])))[:n_samples]
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    n_blocks = model.num_blocks
    feats = layer_outputs(model, lambda: model(**batch), n_blocks + 1)  # embeddings and blocks (eval skips the MLP)
    # token layers: the mean over each sentence's tokens ([CLS] alone is constant after the embeddings)
    mask = batch["attention_mask"].cpu().unsqueeze(-1).float()
    reps = [(f * mask).sum(1) / mask.sum(1) for f in feats]
    with torch.no_grad():
        reps.append(model.mlp(feats[-1][:, 0].to(device)).float().cpu())  # layer L+1: the pooled sentence vector
    positives = task[task["score"] >= min_score]
    if len(positives) < 2:
        raise ValueError(f"{task_path}: fewer than two pairs scored >= {min_score} for alignment")
    a = encode(model, tokenizer, list(positives["sentence1"]), 128, device)
    b = encode(model, tokenizer, list(positives["sentence2"]), 128, device)
    emb = encode(model, tokenizer, sentences, 128, device)
    scalars, matrices = layer_summaries(reps, alignment(a, b), uniformity(emb))
    scalars.update(analysis_samples=len(sentences), alignment_pairs=len(positives))  # what was actually used
    return scalars, matrices
