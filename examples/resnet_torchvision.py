"""Deep Augmentation in a torchvision ResNet: dropout on the output of a named layer during SimCLR training.

    python examples/resnet_torchvision.py --layer layer3 --steps 5

Needs torch, torchvision and deepaug (`pip install deepaug torchvision`). Random images stand in for your
data: replace `batches()` with your DataLoader of two augmented views per image.
"""

from __future__ import annotations

import argparse
import math

import torch
import torchvision
from torch import nn

from deepaug import DeepAugment, nt_xent, rank_layers


def batches(n_batches: int, batch_size: int, size: int, seed: int = 0):
    """Pairs of views: an image and a noisy, flipped copy (a stand-in for SimCLR's augmentations)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_batches):
        x = torch.rand(batch_size, 3, size, size, generator=g)
        view2 = (x + 0.1 * torch.randn(x.shape, generator=g)).flip(-1)
        yield x, view2


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="layer3", help="the module whose output is transformed (a name in the model)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--size", type=int, default=32, help="image side in pixels")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    torch.manual_seed(0)

    # The encoder: ResNet-18 with a SimCLR projection head instead of the classifier
    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
    model = model.to(a.device)
    try:
        target = model.get_submodule(a.layer)  # e.g. layer3, layer3.1, layer3.1.conv2
    except AttributeError:
        names = ", ".join(n for n, _ in model.named_children())
        raise SystemExit(f"--layer {a.layer}: ResNet-18 has no such module; its top-level modules: {names}") from None

    # Which layer? The CKA-based layer ranking on the (untrained, here) model and some data
    loader = [(x,) for x, _ in batches(4, a.batch_size, a.size, seed=1)]
    ranking = rank_layers(model, loader, ["layer1", "layer2", "layer3", "layer4"], n_samples=64)
    print("ranked layers:\n" + str(ranking))

    # Dropout 0.5 on each row's activations at the chosen layer with probability p = 0.5, gradient stopped
    aug = DeepAugment(kind="dropout", rate=0.5, p=0.5, stop_gradient=True, seed=0)
    handle = aug.attach(target)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for step, (v1, v2) in enumerate(batches(a.steps, a.batch_size, a.size)):
        z = model(torch.cat([v1, v2]).to(a.device))  # rows = views: view 1 of every image, then view 2
        loss = nt_xent(z, temperature=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step} loss {loss.item():.4f} (rows transformed: {int(aug.last_mask.sum())} of {z.shape[0]})")
        assert math.isfinite(loss.item())
    handle.remove()  # the model is a plain ResNet again
    model.eval()
    with torch.no_grad():
        features = nn.Sequential(*list(model.children())[:-1])(v1.to(a.device)).flatten(1)
    print(f"done: features {tuple(features.shape)}")


if __name__ == "__main__":
    main()
