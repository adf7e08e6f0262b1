"""Deep Augmentation at several layers at once (layers_at_once): one op per layer, hooked there, each with
its own rows and random stream; stop-gradient at each layer; identity at eval; the settings' checks."""

import pytest
import torch
from torch import nn

from deepaug import target_module
from deepaug.core.at_layers import AugmentAtLayers, layer_ops, layer_seed
from deepaug.core.augment import DeepAugment
from deepaug.core.settings import RunSettings


class Chain(nn.Module):
    """Row-independent blocks (no batch statistics) with a layer map like the backbones'."""

    def __init__(self, n=5, d=8):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(d, d), nn.Tanh()) for _ in range(n)])

    def deepaug_layers(self):
        return [(f"block {i}", b) for i, b in enumerate(self.blocks)]

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


def attached(model, layers, **settings):
    s = RunSettings(method=settings.pop("method", "dropout"), layers_at_once=tuple(layers), **settings)
    s.validate()
    return s.attach_augment(lambda layer: target_module(model, layer))


def test_the_op_is_hooked_at_every_listed_layer_and_each_draws_its_own_rows():
    torch.manual_seed(0)
    model = Chain()
    aug = attached(model, (0, 2, 4), p=0.5, seed=3)
    assert isinstance(aug, AugmentAtLayers) and aug.layers == (0, 2, 4)
    hooked = [i for i, b in enumerate(model.blocks) if b._forward_hooks]
    assert hooked == [0, 2, 4] and all(len(model.blocks[i]._forward_hooks) == 1 for i in hooked)
    model(torch.randn(256, 8))
    masks = {layer: op.last_mask for layer, op in aug.items()}
    assert all(m is not None and 0 < int(m.sum()) < 256 for m in masks.values())
    assert not torch.equal(masks[0], masks[2]) and not torch.equal(masks[2], masks[4]), "each layer its own rows"
    assert len({op.seed for _, op in aug.items()}) == 3
    assert {op.extra_repr() for _, op in aug.items()} == {aug.extra_repr()}, "the same settings at every layer"


def test_a_layer_s_stream_depends_on_the_run_seed_and_the_layer_only():
    x = torch.randn(64, 8)
    a = AugmentAtLayers((0, 3), lambda seed: DeepAugment(seed=seed), seed=5)
    b = AugmentAtLayers((3, 6), lambda seed: DeepAugment(seed=seed), seed=5)
    c = AugmentAtLayers((0, 3), lambda seed: DeepAugment(seed=seed), seed=6)
    assert torch.equal(a.ops["3"](x), b.ops["3"](x)), "layer 3 draws the same whatever the other layers"
    c.ops["3"](x)
    assert not torch.equal(a.ops["3"].last_mask, c.ops["3"].last_mask), "another run seed, another stream"
    assert layer_seed(5, 3) != layer_seed(6, 3) and layer_seed(5, 3) != layer_seed(5, 4)
    assert all(0 <= layer_seed(s, layer) < 2**63 for s in (0, 2**40) for layer in range(20))


def test_reseed_and_the_generators_state_round_trip_every_layer():
    x = torch.randn(32, 8)
    aug = AugmentAtLayers((1, 2), lambda seed: DeepAugment(seed=seed), seed=0)
    first = [op(x) for _, op in aug.items()]
    aug.reseed(0)
    assert all(torch.equal(op(x), y) for (_, op), y in zip(aug.items(), first)), "reseed restarts each stream"
    state = aug.rng_state()
    assert set(state) == {"1", "2"}
    after = [op(x) for _, op in aug.items()]
    aug.set_rng_state(state)
    assert all(torch.equal(op(x), y) for (_, op), y in zip(aug.items(), after))


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_stop_gradient_at_each_layer_of_a_3_layer_toy(stop_gradient):
    """Block j's parameters get gradient from row r exactly when no op at a layer k >= j transformed r
    (with stop-gradient); without it, every block gets gradient from every row."""
    torch.manual_seed(0)
    model = Chain(n=3, d=8)
    aug = attached(model, (0, 1, 2), p=0.5, rate=0.25, stop_gradient=stop_gradient, seed=1)
    n = 48
    out = model(torch.randn(n, 8))
    masks = torch.stack([op.last_mask for _, op in aug.items()])  # (layer, row)
    assert all(0 < int(m.sum()) < n for m in masks)
    for j, block in enumerate(model.blocks):
        params = list(block.parameters())
        reached_above = masks[j:].any(dim=0)  # transformed at layer j or above
        for r in range(n):
            grads = torch.autograd.grad(out[r].sum(), params, retain_graph=True, allow_unused=True)
            got = any(g is not None and g.abs().sum() > 0 for g in grads)
            expected = not (stop_gradient and bool(reached_above[r]))
            assert got == expected, f"block {j}, row {r}: gradient {got}, masks {masks[:, r].tolist()}"


def test_eval_mode_is_the_identity_at_every_layer():
    torch.manual_seed(0)
    model = Chain().eval()
    x = torch.randn(16, 8)
    ref = model(x)
    attached(model, (0, 1, 2, 3, 4), p=1.0, rate=0.5)
    assert torch.equal(model(x), ref)


def test_layer_ops_lists_the_pairs_of_either_kind_of_op():
    single = DeepAugment()
    assert layer_ops(single, 3) == [(3, single)] and layer_ops(None, None) == []
    many = AugmentAtLayers((0, 2), lambda seed: DeepAugment(seed=seed))
    assert [layer for layer, _ in layer_ops(many, None)] == [0, 2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(method="dropout", layer=3, layers_at_once=(0, 3)),
            r"a layer index \(layer\) or several \(layers_at_once\), got both",
        ),
        (dict(method="dropout"), r"a layer index \(layer\) or several \(layers_at_once\), got neither"),
        (dict(method="dropout", layers_at_once=(3,)), r"two or more distinct layers, got \[3\]"),
        (dict(method="dropout", layers_at_once=(3, 3)), r"two or more distinct layers, got \[3, 3\]"),
        (dict(method="dropout", layers_at_once=(0, -1)), "layer -1 is not a layer index"),
        (dict(method="none", layers_at_once=(0, 1)), "takes no layer"),
    ],
)
def test_settings_refuse_an_impossible_set_of_layers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RunSettings(**kwargs).validate()


def test_settings_name_their_layers():
    assert RunSettings(method="dropout", layer=3).where() == "layer 3"
    at_once = RunSettings(method="pca", layers_at_once=(0, 3, 6))
    assert at_once.where() == "layers 0, 3, 6 at once" and at_once.target_layers() == (0, 3, 6)
    assert RunSettings().target_layers() == () and RunSettings().build_augment() is None


def test_the_trainers_flag_reads_a_list_of_layers():
    from deepaug.domains.arguments import domain_parser, settings_from_args
    from deepaug.domains.vision.cli import COMMANDS
    from deepaug.domains.vision.train import VisionPretrainSettings

    flags = ["--data", "d.npz", "--out-dir", "o", "--ckpt-dir", "c", "--method", "dropout", "--layers-at-once"]
    args = domain_parser(COMMANDS).parse_args(["pretrain-vision", *flags, "0,3,6"])
    s = settings_from_args(VisionPretrainSettings, args)
    assert s.layers_at_once == (0, 3, 6) and s.layer is None


def test_a_graph_run_refuses_a_layer_at_once_out_of_its_range():
    from deepaug.domains.graph.train import GraphPretrainSettings

    with pytest.raises(ValueError, match="layer 9 is out of range; a GIN with 3 layers has layers 0-5"):
        GraphPretrainSettings(method="dropout", layers_at_once=(0, 9), num_layers=3).validate()
