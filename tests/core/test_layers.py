import pytest
import torch
import torchvision

from deepaug import LayerIndexError, target_module
from deepaug.domains.vision.models import build_vision_model


@pytest.mark.parametrize("arch,expansion", [("resnet18", 1), ("resnet50", 4)])
def test_resnet_layer_map_every_index(arch, expansion):
    w = 4
    model = build_vision_model(arch, width=w, proj_dim=16)
    shapes = {}
    for i in range(7):
        target_module(model, i).register_forward_hook(lambda m, a, o, i=i: shapes.__setitem__(i, tuple(o.shape)))
    model(torch.randn(2, 3, 16, 16))
    assert shapes == {
        0: (2, w, 16, 16),  # stem: 3x3 stride-1 conv, no max-pool
        1: (2, w * expansion, 16, 16),
        2: (2, 2 * w * expansion, 8, 8),
        3: (2, 4 * w * expansion, 4, 4),
        4: (2, 8 * w * expansion, 2, 2),
        5: (2, 8 * w * expansion),  # pooled features
        6: (2, 16),  # projection head
    }


@pytest.mark.parametrize("bad", [-1, 7, 13])
def test_out_of_range_layer_names_the_valid_range(bad):
    model = build_vision_model("resnet18", width=4)
    with pytest.raises(LayerIndexError, match=r"valid indices are 0-6 \(0 stem, 1 stage 1"):
        target_module(model, bad)


def test_width_64_stages_are_torchvisions_resnet18():
    ours = build_vision_model("resnet18", width=64)
    ref = torchvision.models.resnet18()
    for name in ("layer1", "layer2", "layer3", "layer4"):
        a = {k: v.shape for k, v in getattr(ours, name).state_dict().items()}
        b = {k: v.shape for k, v in getattr(ref, name).state_dict().items()}
        assert a == b
    assert ours.stem[0].kernel_size == (3, 3) and ours.stem[0].stride == (1, 1)
