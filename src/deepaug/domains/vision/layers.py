"""The vision layer map, stated once (light: the spec, the ResNet's deepaug_layers() and the docs read it)."""

from deepaug.domains import Layer

LAYERS = (
    Layer("stem", "stem"),
    *(Layer(f"stage{i}", f"stage {i}", "residual stages") for i in range(1, 5)),
    Layer("pool", "pooled features"),
    Layer("head", "projection head"),
)
