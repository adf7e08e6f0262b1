"""Each domain's layer map is stated once (domains/<name>/layers.py): the spec's names and count, the model's
hooked modules (deepaug_layers) and the config's messages all read it; these check that they agree."""

import pytest
import torch

from deepaug.domains import describe, get


def _model_map(model):
    return [description for description, _ in model.deepaug_layers()]


def test_vision_model_hooks_the_spec_s_layers():
    from deepaug.domains.vision.layers import LAYERS
    from deepaug.domains.vision.models import build_vision_model

    spec = get("vision")
    model = build_vision_model(width=4, proj_dim=8)
    assert _model_map(model) == [layer.description for layer in LAYERS]
    assert spec.n_layers({}) == len(model.deepaug_layers())
    assert [spec.layer_name(i, spec.n_layers({})) for i in range(len(LAYERS))] == [layer.name for layer in LAYERS]
    assert spec.describe_layers({}) == describe(LAYERS) == spec.layer_map
    assert [m for _, m in model.deepaug_layers()] == [
        model.stem,
        model.layer1,
        model.layer2,
        model.layer3,
        model.layer4,
        model.pool,
        model.head,
    ]


@pytest.mark.parametrize("num_layers", [1, 3, 5])
def test_graph_model_hooks_the_spec_s_layers(num_layers):
    pytest.importorskip("torch_geometric")
    from deepaug.domains.graph.models import GIN

    spec = get("graph")
    section = {"model": {"num_layers": num_layers}}
    model = GIN(in_dim=3, hidden_dim=4, num_layers=num_layers)
    hooked = model.deepaug_layers()
    assert len(hooked) == spec.n_layers(section)
    layers = spec.layers(section)
    assert [d for d, _ in hooked][:-1] == [layer.description for layer in layers][:-1]  # the head: its kind
    assert (
        hooked[-1][0] == "projection head"
        and _model_map(GIN(3, 4, num_layers, head="classifier"))[-1] == "classifier logits"
    )
    assert [m for _, m in hooked] == [model.input, *model.layers, model.pool, model.head]
    assert spec.layers_of_length(len(hooked)) == layers


@pytest.mark.parametrize("blocks", [2, 12])
def test_text_model_hooks_the_spec_s_layers(blocks):
    transformers = pytest.importorskip("transformers")
    from deepaug.domains.text.layers import layers
    from deepaug.domains.text.models import SimCSEEncoder

    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=blocks, num_attention_heads=2, intermediate_size=16
    )
    model = SimCSEEncoder(transformers.BertModel(cfg, add_pooling_layer=False))
    assert _model_map(model) == [layer.description for layer in layers(blocks)]
    spec = get("text")
    n = len(model.deepaug_layers())
    assert [spec.layer_name(i, n) for i in range(n)] == [layer.name for layer in layers(blocks)]
    assert spec.describe_layers({"model": {"name": "bert-base-uncased"}}) == describe(layers(12))
