"""Representation analyses of a trained ResNet (eval mode, no Deep Augmentation), for
:func:`deepaug.analysis.analyze.analyze`: the first ``n_samples`` test images; every layer 0-6 (flattened)
for CKA; positive pairs are two SimCLR augmentations of each image (fixed seed) for alignment; the
pooled features (layer 5) for uniformity."""

from __future__ import annotations

import torch

from deepaug.analysis.analyze import layer_outputs, layer_summaries
from deepaug.analysis.similarity import alignment, uniformity
from deepaug.domains.vision.layers import LAYERS


def vision_analysis(model_path, data_path, n_samples: int, device, seed: int = 0) -> tuple[dict, dict]:
    """(scalars, matrices) of :func:`deepaug.analysis.analyze.analyze`."""
    from deepaug.domains.vision.batched_augment import BatchedSimCLRAugment
    from deepaug.domains.vision.data import load_prepared
    from deepaug.domains.vision.evaluate import extract_features
    from deepaug.domains.vision.train import load_encoder

    model = load_encoder(model_path, device)
    data = load_prepared(data_path, size=model.input_size)
    images = data["x_test"][:n_samples]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    mean = torch.as_tensor(data["mean"]).view(1, -1, 1, 1)
    std = torch.as_tensor(data["std"]).view(1, -1, 1, 1)
    clean = ((x - mean) / std).to(device)
    feats = layer_outputs(model, lambda: model(clean), len(LAYERS))
    aug = BatchedSimCLRAugment(images.shape[1], data["mean"], data["std"])
    g = torch.Generator().manual_seed(seed)
    u8 = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        v1 = model.encode(aug(u8, g).to(device)).float().cpu()
        v2 = model.encode(aug(u8, g).to(device)).float().cpu()
    emb = extract_features(model, images, data["mean"], data["std"], 512, device)
    scalars, matrices = layer_summaries(feats, alignment(v1, v2), uniformity(emb))
    scalars.update(analysis_samples=len(images), alignment_pairs=len(images))  # what was actually used
    return scalars, matrices
