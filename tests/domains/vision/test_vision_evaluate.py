import pytest
import torch

import deepaug.domains.vision.evaluate as ev
from deepaug.domains.vision.evaluate import knn_top1, linear_probe


def _blobs(n, seed, d=16, classes=4, spread=0.3):
    """Well-separated Gaussian blobs around fixed class centres; ``seed`` draws the sample."""
    centers = torch.randn(classes, d, generator=torch.Generator().manual_seed(0)) * 3
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    return centers[y] + spread * torch.randn(n, d, generator=g), y


def test_linear_probe_and_knn_on_separable_data():
    xtr, ytr = _blobs(400, seed=1)
    xdev, ydev = _blobs(100, seed=3)
    xte, yte = _blobs(200, seed=2)
    r = linear_probe(xtr, ytr, xdev, ydev, xte, yte, epochs=20, batch_size=64)
    assert r.test_top1 > 0.95 and r.dev_top1 > 0.95 and 1 <= r.epoch <= 20
    assert knn_top1(xtr, ytr, xte, yte, k=10) > 0.95


def test_random_labels_give_chance():
    g = torch.Generator().manual_seed(0)
    xtr, xdev, xte = (torch.randn(400, 16, generator=g) for _ in range(3))
    ytr, ydev, yte = (torch.randint(0, 4, (400,), generator=g) for _ in range(3))
    assert linear_probe(xtr, ytr, xdev, ydev, xte, yte, epochs=20, batch_size=64).test_top1 < 0.4
    assert knn_top1(xtr, ytr, xte, yte, k=10) < 0.4


def test_probe_epoch_is_chosen_on_dev_and_test_is_scored_once(monkeypatch):
    """Noisy labels and a large lr make the dev accuracy go up and down between epochs: the probe keeps
    the epoch with the best dev accuracy (the latest of ties), and looks at test once, at the end."""
    calls = []
    real = ev._accuracy

    def recording(clf, x, y):
        calls.append((x.shape[0], real(clf, x, y)))
        return calls[-1][1]

    monkeypatch.setattr(ev, "_accuracy", recording)
    xtr, ytr = _blobs(300, seed=1, spread=3.0)
    xdev, ydev = _blobs(97, seed=3, spread=3.0)  # 97 dev and 211 test rows tell the calls apart
    xte, yte = _blobs(211, seed=2, spread=3.0)
    r = linear_probe(xtr, ytr, xdev, ydev, xte, yte, epochs=12, batch_size=32, lr=2.0)
    dev_scores = [acc for n, acc in calls[:-1]]
    assert [n for n, _ in calls] == [97] * 12 + [211]
    assert len(set(dev_scores)) > 2  # the choice is not trivially the last epoch
    best = max(dev_scores)
    assert r.dev_top1 == best and r.epoch == max(i + 1 for i, a in enumerate(dev_scores) if a == best)
    assert r.test_top1 == calls[-1][1]


def test_test_labels_never_change_the_choice():
    xtr, ytr = _blobs(300, seed=1, spread=3.0)
    xdev, ydev = _blobs(100, seed=3, spread=3.0)
    xte, yte = _blobs(200, seed=2, spread=3.0)
    a = linear_probe(xtr, ytr, xdev, ydev, xte, yte, epochs=10, batch_size=32, lr=2.0)
    b = linear_probe(xtr, ytr, xdev, ydev, xte, (yte + 1) % 4, epochs=10, batch_size=32, lr=2.0)
    assert (a.epoch, a.dev_top1) == (b.epoch, b.dev_top1) and a.test_top1 != b.test_top1


@pytest.mark.parametrize("objective", ["contrastive", "supervised"])
def test_eval_json_reports_dev_and_test(tmp_path, digits_npz, objective):
    """An (untrained) encoder evaluated end to end: eval.json carries the dev scores every selection is
    made on beside the test scores that are reported."""
    from deepaug.domains.vision.data import load_prepared
    from deepaug.domains.vision.models import build_vision_model

    torch.manual_seed(0)
    meta = {"arch": "resnet18", "width": 4, "in_channels": 3, "proj_dim": 10}
    torch.save(
        {"model": build_vision_model(**meta).state_dict(), "meta": meta, "objective": objective}, tmp_path / "model.pt"
    )
    result = ev.evaluate(
        ev.VisionEvalSettings(linear_epochs=3, linear_batch_size=256, knn_k=5, device="cpu"),
        tmp_path / "model.pt",
        digits_npz,
        tmp_path / "eval.json",
    )
    keys = {"linear_top1", "dev_linear_top1", "knn_top1", "dev_knn_top1"}
    keys |= {"classifier_top1", "dev_classifier_top1"} if objective == "supervised" else set()
    assert keys <= set(result) and all(0 <= result[k] <= 100 for k in keys)
    assert 1 <= result["linear_epoch"] <= 3
    assert result["probe"] == "features"  # the default protocol, named in eval.json
    # the dev accuracies are fractions of the 135 dev images
    n_dev = len(load_prepared(digits_npz)["y_dev"])
    assert round(result["dev_knn_top1"] * n_dev / 100, 6) == round(result["dev_knn_top1"] * n_dev / 100)
