"""Deep Augmentation (arXiv 2303.14537) as a library and a reproducible pipeline.

``from deepaug import DeepAugment`` gives the operation; ``rank_layers``, ``linear_cka``, ``alignment`` and
``uniformity`` the analyses a user applies to a model of their own. These need torch and numpy only (the
wheel's core requirements); the pipeline's modules need its extras (``pip install 'deepaug[pipeline]'``).
Every name is imported lazily, so the workflow's Snakefile can import the light helpers (config, run
names) without torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "DeepAugment": "deepaug.core.augment",
    "HookHandle": "deepaug.core.augment",
    "nt_xent": "deepaug.core.losses",
    "simcse_loss": "deepaug.core.losses",
    "target_module": "deepaug.core.layers",
    "layer_names": "deepaug.core.layers",
    "LayerIndexError": "deepaug.core.layers",
    "AugmentAtLayers": "deepaug.core.at_layers",
    "rank_layers": "deepaug.analysis.layer_ranking",
    "LayerRanking": "deepaug.analysis.layer_ranking",
    "linear_cka": "deepaug.analysis.similarity",
    "rbf_cka": "deepaug.analysis.similarity",
    "cka_matrix": "deepaug.analysis.similarity",
    "alignment": "deepaug.analysis.similarity",
    "uniformity": "deepaug.analysis.similarity",
    # the pipeline's models (needs the `pipeline` extra: torchvision)
    "build_vision_model": "deepaug.domains.vision.models",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepaug' has no attribute {name!r}")
