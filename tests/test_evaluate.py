import torch

from deepaug.evaluate_vision import knn_top1, linear_probe


def _blobs(n, seed, d=16, classes=4, spread=0.3):
    """Well-separated Gaussian blobs around fixed class centres; ``seed`` draws the sample."""
    centers = torch.randn(classes, d, generator=torch.Generator().manual_seed(0)) * 3
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    return centers[y] + spread * torch.randn(n, d, generator=g), y


def test_linear_probe_and_knn_on_separable_data():
    xtr, ytr = _blobs(400, seed=1)
    xte, yte = _blobs(200, seed=2)
    assert linear_probe(xtr, ytr, xte, yte, epochs=20, batch_size=64) > 0.95
    assert knn_top1(xtr, ytr, xte, yte, k=10) > 0.95


def test_random_labels_give_chance():
    g = torch.Generator().manual_seed(0)
    xtr, xte = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    ytr, yte = torch.randint(0, 4, (400,), generator=g), torch.randint(0, 4, (400,), generator=g)
    assert linear_probe(xtr, ytr, xte, yte, epochs=20, batch_size=64) < 0.4
    assert knn_top1(xtr, ytr, xte, yte, k=10) < 0.4
