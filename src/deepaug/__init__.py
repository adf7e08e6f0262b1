"""Deep Augmentation (arXiv 2303.14537) as a library and a reproducible pipeline.

``from deepaug import DeepAugment`` gives the operation; heavy modules (torch, transformers) are
imported lazily so that the workflow's Snakefile can import the light helpers (config, run names)
without them.
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
    "build_vision_model": "deepaug.domains.vision.models",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepaug' has no attribute {name!r}")
