"""The text layer map, stated once (light: the spec, the encoder's deepaug_layers() and the docs read it): for an
encoder with L blocks, 0 embeddings, 1..L blocks, L+1 pooled sentence vector."""

from deepaug.domains import Layer


def layers(blocks: int) -> tuple[Layer, ...]:
    """The map of an encoder with ``blocks`` transformer blocks."""
    return (
        Layer("emb", "embeddings"),
        *(Layer(f"block{i}", f"block {i}", "blocks") for i in range(1, blocks + 1)),
        Layer("pooled", "pooled sentence vector"),
    )


def blocks(n_layers: int) -> int:
    """The blocks L of a map with ``n_layers`` indices."""
    return n_layers - len(layers(0))
