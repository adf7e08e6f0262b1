"""The graph layer map, stated once (light: the spec, the GIN's deepaug_layers() and the docs read it): for a GIN
with L layers, 0 input node features, 1..L GIN layers (node level), L+1 pooled graph vector, L+2 head."""

from deepaug.domains import Layer


def layers(num_layers: int, head: str = "head") -> tuple[Layer, ...]:
    """The map of a GIN with ``num_layers`` layers; ``head``: the last layer's description (the model says
    projection head or classifier logits)."""
    return (
        Layer("input", "input node features"),
        *(Layer(f"gin{i}", f"GIN layer {i}", "GIN layers") for i in range(1, num_layers + 1)),
        Layer("pool", "pooled graph vector"),
        Layer("head", head),
    )


def gin_layers(n_layers: int) -> int:
    """The GIN layers L of a map with ``n_layers`` indices."""
    return n_layers - len(layers(0))
