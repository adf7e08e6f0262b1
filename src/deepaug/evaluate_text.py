"""Sentence-similarity evaluation: Spearman correlation (x100) of cosine similarity with human scores.

The SimCSE protocol: [CLS] vector before the MLP pooler, cosine similarity of each pair, Spearman's
rho against the gold scores per task; the report gives each task and their average.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import training as T
from .io import read_json, write_json
from .text_data import load_task


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
    """Spearman's rank correlation (Pearson correlation of the tie-averaged ranks)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"spearman needs two 1-D sequences of equal length >= 2, got {x.shape} and {y.shape}")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


@torch.no_grad()
def encode(model, tokenizer, sentences: list[str], max_len: int, device, precision: str = "fp32", batch_size: int = 128):
    model.eval()
    out = []
    for i in range(0, len(sentences), batch_size):
        batch = tokenizer(sentences[i : i + batch_size], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        with T.autocast_context(device, precision):
            out.append(model(**batch).float().cpu())
    return torch.cat(out)


def spearman_on_task(model, tokenizer, task_df, max_len: int, device, precision: str = "fp32") -> float:
    unique = sorted(set(task_df["sentence1"]) | set(task_df["sentence2"]))
    index = {s: i for i, s in enumerate(unique)}
    emb = encode(model, tokenizer, unique, max_len, device, precision)
    a = emb[[index[s] for s in task_df["sentence1"]]]
    b = emb[[index[s] for s in task_df["sentence2"]]]
    sims = F.cosine_similarity(a, b, dim=1).numpy()
    return spearman(sims, task_df["score"].to_numpy())


@dataclass
class TextEvalSettings:
    eval_max_len: int = 512
    precision: str = "bf16"
    device: str = "auto"


def load_trained(model_path: str | Path, device):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from .models.text import SimCSEEncoder

    state = torch.load(model_path, map_location="cpu", weights_only=False)
    config = AutoConfig.from_pretrained(state["source"])
    try:
        backbone = AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        backbone = AutoModel.from_config(config)
    backbone.load_state_dict(state["encoder"])
    model = SimCSEEncoder(backbone).to(device).eval()
    return model, AutoTokenizer.from_pretrained(state["source"])


def evaluate(s: TextEvalSettings, model_path: str | Path, tasks: dict[str, str | Path], out: str | Path) -> dict:
    t0 = time.time()
    device = T.resolve_device(s.device)
    model, tokenizer = load_trained(model_path, device)
    result = {}
    for name, path in tasks.items():
        result[f"sts_{name}"] = 100 * spearman_on_task(model, tokenizer, load_task(path), s.eval_max_len, device, s.precision)
    result["sts_avg"] = float(np.mean([result[f"sts_{n}"] for n in tasks]))
    result["eval_time_s"] = round(time.time() - t0, 3)
    prov_path = Path(model_path).with_name("provenance.json")
    if prov_path.exists():
        prov = read_json(prov_path)
        result.update({k: prov.get(k) for k in ("train_time_s", "dev_spearman", "best_step", "n_layers")})
    write_json(out, result)
    return result
