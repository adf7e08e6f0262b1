"""Per-run analyses of a trained encoder (no Deep Augmentation applied): layer-by-layer CKA on a fixed
held-out sample, and alignment / uniformity of the learned embeddings.

Vision: the first ``n_samples`` test images; every layer 0-6 (flattened); positive pairs are two
SimCLR augmentations of each image (fixed seed); embeddings are the pooled features (layer 5).
Text: the first ``n_samples`` distinct sentences of a similarity task; the mean over each sentence's
tokens after the embeddings and after every block, then the MLP-pooled [CLS] vector; positive pairs are the task's pairs
scored at least ``min_score``; embeddings are the [CLS] vectors used for evaluation.
"""

from __future__ import annotations


import numpy as np
import torch

from deepaug.engine import training as T
from deepaug.errors import NonFiniteError
from deepaug.workflow.io import atomic_path, write_json
from deepaug.analysis.layer_choice import neighbour_similarity
from deepaug.analysis.similarity import alignment, cka_matrix, uniformity


def _collect(model, forward, n_layers: int) -> list[torch.Tensor]:
    """Run ``forward()`` with a hook on every layer of the map; return each layer's output."""
    outs: dict[int, torch.Tensor] = {}
    handles = []
    for i, (_, module) in enumerate(model.deepaug_layers()[:n_layers]):
        def hook(mod, args, out, i=i):
            outs[i] = (out[0] if isinstance(out, (tuple, list)) else out).detach().float().cpu()
        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in handles:
            h.remove()
    return [outs[i] for i in range(n_layers)]


def vision_analysis(model_path, data_path, n_samples: int, device, seed: int = 0) -> tuple[dict, dict]:
    from deepaug.domains.vision.batched_augment import BatchedSimCLRAugment
    from deepaug.domains.vision.data import load_prepared
    from deepaug.domains.vision.evaluate import extract_features
    from deepaug.domains.vision.train import load_encoder

    data = load_prepared(data_path)
    model = load_encoder(model_path, device)
    images = data["x_test"][:n_samples]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    mean = torch.as_tensor(data["mean"]).view(1, -1, 1, 1)
    std = torch.as_tensor(data["std"]).view(1, -1, 1, 1)
    clean = ((x - mean) / std).to(device)
    feats = _collect(model, lambda: model(clean), 7)
    aug = BatchedSimCLRAugment(images.shape[1], data["mean"], data["std"])
    g = torch.Generator().manual_seed(seed)
    u8 = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        v1 = model.encode(aug(u8, g).to(device)).float().cpu()
        v2 = model.encode(aug(u8, g).to(device)).float().cpu()
    emb = extract_features(model, images, data["mean"], data["std"], 512, device)
    scalars, matrices = _summaries(feats, alignment(v1, v2), uniformity(emb))
    scalars.update(analysis_samples=len(images), alignment_pairs=len(images))  # what was actually used
    return scalars, matrices


def text_analysis(model_path, task_path, n_samples: int, min_score: float, device) -> tuple[dict, dict]:
    from deepaug.domains.text.evaluate import encode, load_trained
    from deepaug.domains.text.data import load_task

    model, tokenizer = load_trained(model_path, device)
    task = load_task(task_path)
    sentences = list(dict.fromkeys(list(task["sentence1"]) + list(task["sentence2"])))[:n_samples]
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    n_blocks = model.num_blocks
    feats = _collect(model, lambda: model(**batch), n_blocks + 1)  # embeddings and blocks (eval skips the MLP)
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
    scalars, matrices = _summaries(reps, alignment(a, b), uniformity(emb))
    scalars.update(analysis_samples=len(sentences), alignment_pairs=len(positives))  # what was actually used
    return scalars, matrices


def _summaries(feats, align: float, uniform: float) -> tuple[dict, dict]:
    matrices = {"linear": cka_matrix(feats, "linear"), "rbf": cka_matrix(feats, "rbf")}
    return {"alignment": align, "uniformity": uniform}, matrices


def analyze(domain: str, model_path, data_path, out_json, out_npz, n_samples: int, min_score: float = 4.0,
            device_name: str = "auto", seed: int = 0, layer: int | None = None, extra: dict | None = None) -> dict:
    """CKA between every pair of layers, alignment and uniformity of one run's encoder; ``layer`` is the
    layer its Deep Augmentation targeted (None for the baseline: no neighbourhood score). ``extra``:
    recorded alongside (which candidate run was analysed, and why)."""
    device = T.resolve_device(device_name)
    T.seed_everything(seed)
    if domain == "vision":
        scalars, matrices = vision_analysis(model_path, data_path, n_samples, device, seed)
    elif domain == "text":
        scalars, matrices = text_analysis(model_path, data_path, n_samples, min_score, device)
    else:  # a plug-in domain brings its own: deepaug.domains.<name>.analysis.<name>_analysis
        from importlib import import_module

        own = getattr(import_module(f"deepaug.domains.{domain}.analysis"), f"{domain}_analysis")
        scalars, matrices = own(model_path, data_path, n_samples, device, seed)
    n = matrices["linear"].shape[0]
    off = ~np.eye(n, dtype=bool)
    scalars.update({
        "cka_mean_linear": float(matrices["linear"][off].mean()),
        "cka_mean_rbf": float(matrices["rbf"][off].mean()),
        "cka_target_neighbours_linear": neighbour_similarity(matrices["linear"], layer) if layer is not None else None,
        "cka_target_neighbours_rbf": neighbour_similarity(matrices["rbf"], layer) if layer is not None else None,
        "analysis_samples_requested": int(n_samples),
        **(extra or {}),
    })
    bad = [k for k, v in scalars.items() if isinstance(v, float) and not np.isfinite(v)]
    bad += [f"cka {k}" for k, m in matrices.items() if not np.isfinite(m).all()]
    if bad:
        raise NonFiniteError(f"analysis of {model_path}: {', '.join(bad)} not finite (NaN/inf); the model's "
                             f"activations are not finite or constant, so nothing is recorded")
    with atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **matrices)
    write_json(out_json, scalars)
    return scalars
