"""SimCLR ResNets for small images: torchvision's residual blocks with the CIFAR stem.

The CIFAR variant replaces the ImageNet stem (7x7 stride-2 conv + max-pool) with a 3x3 stride-1
conv and no max-pool. ``width`` scales every stage (64 = torchvision's ResNet).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

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

    def __init__(self, arch: str = "resnet18", width: int = 64, in_channels: int = 3, proj_dim: int = 128) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown backbone {arch!r}; known: {', '.join(ARCHS)}")
        block, counts = ARCHS[arch]
        self.arch = arch
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        inplanes = width
        stages = []
        for i, n in enumerate(counts):
            planes = width * 2**i
            stages.append(_stage(block, inplanes, planes, n, stride=1 if i == 0 else 2))
            inplanes = planes * block.expansion
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = inplanes
        # SupContrast/SimCLR head: Linear -> ReLU -> Linear(128)
        self.head = nn.Sequential(nn.Linear(inplanes, inplanes), nn.ReLU(inplace=True), nn.Linear(inplanes, proj_dim))
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
    arch: str = "resnet18", width: int = 64, in_channels: int = 3, proj_dim: int = 128
) -> CifarResNet:
    return CifarResNet(arch=arch, width=width, in_channels=in_channels, proj_dim=proj_dim)
