"""SimCLR ResNets: torchvision's residual blocks with the CIFAR stem or the ImageNet stem.

``stem="cifar"`` replaces the ImageNet stem (7x7 stride-2 conv + max-pool) with a 3x3 stride-1 conv and no
max-pool, as SupContrast's ``networks/resnet_big.py:80-81`` (at 66a8fe5) and solo-learn for CIFAR
(``solo/methods/base.py:198-203``); ``stem="imagenet"`` is torchvision's (``torchvision/models/resnet.py``:
``conv1`` 7x7/2, ``bn1``, ``relu``, ``maxpool`` 3x3/2), for ImageNet-100 and image folders. ``width`` scales
every stage (64 = torchvision's ResNet). Either way the layer map is the same (``vision/layers.py``): 0 the
stem's output (after the max-pool for the ImageNet stem), 1-4 the residual stages, 5 the pooled features,
6 the projection head.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

STEMS = ("cifar", "imagenet")
ARCHS: dict[str, tuple[type[nn.Module], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


def _stage(block: type[nn.Module], inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            conv1x1(inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
        )
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class CifarResNet(nn.Module):
    """ResNet encoder + SimCLR MLP projection head.

    Layer map (the paper's indices): 0 stem output (conv+BN+ReLU), 1-4 residual stages,
    5 pooled feature vector (the encoder output used for evaluation), 6 projection-head output.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        width: int = 64,
        in_channels: int = 3,
        proj_dim: int = 128,
        stem: str = "cifar",
        proj_hidden_dim: int = 0,
        head: str = "simclr",
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown backbone {arch!r}; known: {', '.join(ARCHS)}")
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; known: {', '.join(STEMS)}")
        block, counts = ARCHS[arch]
        self.arch, self.stem_kind = arch, stem
        if stem == "cifar":
            conv = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
            self.stem = nn.Sequential(conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        else:
            conv = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
            pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.stem = nn.Sequential(conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True), pool)
        inplanes = width
        stages = []
        for i, n in enumerate(counts):
            planes = width * 2**i
            stages.append(_stage(block, inplanes, planes, n, stride=1 if i == 0 else 2))
            inplanes = planes * block.expansion
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = inplanes
        # SimCLR's head: Linear -> ReLU -> Linear(proj_dim); hidden width the features' (SupContrast
        # resnet_big.py:174-178) unless proj_hidden_dim says otherwise (solo-learn's simclr.py:48-52: 4096)
        hidden = proj_hidden_dim or inplanes
        self.head_kind = head
        if head == "simclr":
            self.head = nn.Sequential(nn.Linear(inplanes, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, proj_dim))
        else:  # an SSL method's own projector (deepaug.core.ssl: BYOL's, SimSiam's, ...)
            from deepaug.core.ssl import method_objective

            self.head = method_objective(head).head(inplanes, hidden, proj_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def deepaug_layers(self) -> list[tuple[str, nn.Module]]:
        from deepaug.domains.vision.layers import LAYERS  # the map, stated once

        modules = (self.stem, self.layer1, self.layer2, self.layer3, self.layer4, self.pool, self.head)
        return [(layer.description, module) for layer, module in zip(LAYERS, modules, strict=True)]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (layer 5): what evaluation uses."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))


def build_vision_model(
    arch: str = "resnet18",
    width: int = 64,
    in_channels: int = 3,
    proj_dim: int = 128,
    stem: str = "cifar",
    proj_hidden_dim: int = 0,
    head: str = "simclr",
) -> CifarResNet:
    return CifarResNet(arch, width, in_channels, proj_dim, stem, proj_hidden_dim, head)
