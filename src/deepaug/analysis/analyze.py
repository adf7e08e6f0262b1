"""Per-run analyses of a trained encoder (no Deep Augmentation applied): layer-by-layer CKA on a fixed
held-out sample, and alignment / uniformity of the learned embeddings.

What a domain's sample, layers and positive pairs are is the domain's own:
``deepaug.domains.<name>.analysis.<name>_analysis(model_path, data_path, n_samples, device, seed, **options)``
returns ``(scalars, matrices)`` (usually through :func:`layer_outputs` and :func:`layer_summaries`);
:func:`analyze` adds the summaries every domain shares, refuses non-finite results and writes the files.
"""

from __future__ import annotations

import inspect
from importlib import import_module

import numpy as np
import torch

from deepaug.analysis.layer_choice import neighbour_similarity
from deepaug.analysis.similarity import cka_matrix
from deepaug.engine import training as T
from deepaug.errors import NonFiniteError
from deepaug.io import atomic_path, write_json


def layer_outputs(model, forward, n_layers: int) -> list[torch.Tensor]:
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


def layer_summaries(feats, align: float, uniform: float) -> tuple[dict, dict]:
    """(scalars, matrices) of a domain's analysis: linear and RBF CKA between every pair of ``feats`` (one
    matrix per layer, rows = the same examples), with the embeddings' alignment and uniformity."""
    matrices = {"linear": cka_matrix(feats, "linear"), "rbf": cka_matrix(feats, "rbf")}
    return {"alignment": align, "uniformity": uniform}, matrices


def analyze(
    domain: str,
    model_path,
    data_path,
    out_json,
    out_npz,
    n_samples: int,
    device_name: str = "auto",
    seed: int = 0,
    layer: int | None = None,
    extra: dict | None = None,
    options: dict | None = None,
) -> dict:
    """CKA between every pair of layers, alignment and uniformity of one run's encoder; ``layer`` is the
    layer its Deep Augmentation targeted (None for the baseline: no neighbourhood score). ``extra``:
    recorded alongside (which candidate run was analysed, and why). ``options``: the domain's own keyword
    arguments (text: ``min_score``)."""
    device = T.resolve_device(device_name)
    T.seed_everything(seed)
    own = getattr(import_module(f"deepaug.domains.{domain}.analysis"), f"{domain}_analysis")
    fixed = ("model_path", "data_path", "n_samples", "device", "seed")
    unknown = sorted(set(options or {}) - (set(inspect.signature(own).parameters) - set(fixed)))
    if unknown:
        raise ValueError(f"the {domain} analysis takes no option {', '.join(unknown)}")
    scalars, matrices = own(model_path, data_path, n_samples, device, seed, **(options or {}))
    n = matrices["linear"].shape[0]
    off = ~np.eye(n, dtype=bool)
    scalars.update(
        {
            "cka_mean_linear": float(matrices["linear"][off].mean()),
            "cka_mean_rbf": float(matrices["rbf"][off].mean()),
            "cka_target_neighbours_linear": neighbour_similarity(matrices["linear"], layer)
            if layer is not None
            else None,
            "cka_target_neighbours_rbf": neighbour_similarity(matrices["rbf"], layer) if layer is not None else None,
            "analysis_samples_requested": int(n_samples),
            **(extra or {}),
        }
    )
    bad = [k for k, v in scalars.items() if isinstance(v, float) and not np.isfinite(v)]
    bad += [f"cka {k}" for k, m in matrices.items() if not np.isfinite(m).all()]
    if bad:
        raise NonFiniteError(
            f"analysis of {model_path}: {', '.join(bad)} not finite (NaN/inf); the model's "
            f"activations are not finite or constant, so nothing is recorded"
        )
    with atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **matrices)
    write_json(out_json, scalars)
    return scalars
