"""SupContrast's linear-evaluation protocol (``probe: supcon``) beside the precomputed-feature probe."""

import numpy as np
import pytest
import torch

import deepaug.domains.vision.evaluate as ev
from deepaug.domains.vision.batched_augment import BatchedCropFlip
from deepaug.domains.vision.models import CifarResNet, build_vision_model


def test_step_schedule_is_supcontrasts():
    """util.py adjust_learning_rate (no --cosine): lr * 0.2 ** #{decay epochs < epoch}, set at the start of
    each 1-based epoch; written out here for SupContrast's 60,75,90 of 100 epochs at lr 1."""
    expected = [1.0] * 60 + [0.2] * 15 + [0.2**2] * 15 + [0.2**3] * 10
    got = [ev.step_lr(1.0, e, ev.parse_decay_epochs("60,75,90"), 0.2) for e in range(1, 101)]
    assert got == pytest.approx(expected, rel=1e-12, abs=0)
    assert ev.parse_decay_epochs("") == [] and ev.step_lr(0.5, 99, [], 0.2) == 0.5
    assert ev.parse_decay_epochs([60, 75, 90]) == ev.parse_decay_epochs("[60, 75, 90]") == [60, 75, 90]


@pytest.mark.parametrize(
    "bad,message",
    [
        (dict(probe="svm"), "probe must be one of features, supcon"),
        (dict(probe="supcon", linear_epochs=30), "never decay"),  # 60,75,90 would silently leave lr 1 throughout
        (dict(linear_lr_decay_epochs="60,x"), "comma-separated whole numbers"),
        (dict(linear_lr_decay_epochs="75,60"), "increasing"),
        (dict(linear_lr_decay_rate=0.0), "linear_lr_decay_rate must be > 0"),
    ],
)
def test_impossible_probe_settings_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        ev.VisionEvalSettings(**bad).validate()
    ev.VisionEvalSettings(probe="features", linear_epochs=30).validate()  # milestones only matter for supcon
    ev.VisionEvalSettings(probe="supcon").validate()  # SupContrast's 60,75,90 of 100


class MeanColour(torch.nn.Module):
    """A stand-in encoder: the mean colour of the image (unchanged by crops and flips of a one-colour image)."""

    def encode(self, x):
        return x.mean(dim=(2, 3))


def _coloured(n, seed):
    """Images of one colour per class (plus noise), so the mean colour predicts the label."""
    g = np.random.default_rng(seed)
    colours = np.array([[220, 30, 30], [30, 220, 30], [30, 30, 220], [200, 200, 40]])
    y = g.integers(0, 4, n)
    x = np.clip(colours[y][:, None, None, :] + g.normal(0, 25, (n, 12, 12, 3)), 0, 255).astype(np.uint8)
    return x, torch.from_numpy(y)


def test_supcon_probe_learns_with_labels_aligned_to_the_augmented_images():
    """Trained through augmented batches: an index mix-up between images and labels would give chance (25%)."""
    x, y = _coloured(300, 0)
    xd, yd = _coloured(80, 1)
    xt, yt = _coloured(120, 2)
    mean, std = [0.5] * 3, [0.25] * 3
    enc = MeanColour()

    def feats(images):
        return enc.encode((torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25)

    r = ev.supcon_linear_probe(
        enc,
        x,
        y,
        feats(xd),
        yd,
        feats(xt),
        yt,
        mean,
        std,
        torch.device("cpu"),
        epochs=6,
        batch_size=64,
        lr=1.0,
        decay_epochs=[3, 5],
    )
    assert r.dev_top1 > 0.95 and r.test_top1 > 0.95 and 1 <= r.epoch <= 6


def _encoder_file(tmp_path):
    torch.manual_seed(0)
    meta = {"arch": "resnet18", "width": 4, "in_channels": 3, "proj_dim": 10}
    torch.save(
        {"model": build_vision_model(**meta).state_dict(), "meta": meta, "objective": "contrastive"},
        tmp_path / "model.pt",
    )
    return tmp_path / "model.pt"


def test_supcon_option_runs_records_its_protocol_and_chooses_on_dev(tmp_path, tiny_digits_npz, monkeypatch):
    """On the tiny digits (32 training, 135 dev, 16 test images): eval.json says ``probe: supcon``; the
    classifier is scored on dev after each of the 3 epochs and on test once, with the weights of the
    dev-best epoch. The dev scores are scripted (0.5, 0.9, 0.3) so that neither the last epoch nor the
    first would be the right choice; test is scored for real."""
    from deepaug.domains.vision.data import load_prepared

    calls = []
    real = ev._accuracy
    scripted = iter([0.5, 0.9, 0.3])

    def recording(clf, x, y):
        calls.append((x.shape[0], clf.weight.detach().clone()))
        return next(scripted) if x.shape[0] == 135 else real(clf, x, y)

    monkeypatch.setattr(ev, "_accuracy", recording)
    s = ev.VisionEvalSettings(
        probe="supcon",
        linear_epochs=3,
        linear_batch_size=16,
        linear_lr=1.0,
        linear_lr_decay_epochs="1,2",
        knn_k=5,
        device="cpu",
    )
    s.validate()
    result = ev.evaluate(s, _encoder_file(tmp_path), tiny_digits_npz, tmp_path / "eval.json")
    data = load_prepared(tiny_digits_npz)
    assert (len(data["y_dev"]), len(data["y_test"])) == (135, 16)
    assert [n for n, _ in calls] == [135] * 3 + [16]
    assert result["probe"] == "supcon" and ev.read_json(tmp_path / "eval.json")["probe"] == "supcon"
    assert result["linear_epoch"] == 2 and result["dev_linear_top1"] == pytest.approx(90.0)
    weights = [w for _, w in calls]
    assert not torch.equal(weights[1], weights[2])  # the classifier moved in epoch 3 ...
    assert torch.equal(weights[3], weights[1])  # ... and test was scored with epoch 2's weights
    assert 0 <= result["linear_top1"] <= 100 and result["linear_top1"] * 16 / 100 == pytest.approx(
        round(result["linear_top1"] * 16 / 100)
    )


@pytest.mark.parametrize("probe", ["features", "supcon"])
def test_the_two_probes_differ_in_protocol(tmp_path, tiny_digits_npz, monkeypatch, probe):
    """What the frozen encoder sees: ``features`` encodes each training image once, un-augmented;
    ``supcon`` also encodes every training image once per epoch, through a fresh crop + flip each time,
    and the optimiser's lr follows the step schedule (1, 0.2, 0.04 with decays after epochs 1 and 2)."""
    seen, lrs = [], []
    real_encode, real_call, real_step = CifarResNet.encode, BatchedCropFlip.__call__, torch.optim.SGD.step

    def encode(self, x):
        seen.append(("encode", x.shape[0]))
        return real_encode(self, x)

    def augment(self, images, g):
        out = real_call(self, images, g)
        seen.append(("augmented", out.clone()))
        return out

    def step(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(CifarResNet, "encode", encode)
    monkeypatch.setattr(BatchedCropFlip, "__call__", augment)
    monkeypatch.setattr(torch.optim.SGD, "step", step)
    s = ev.VisionEvalSettings(
        probe=probe,
        linear_epochs=3,
        linear_batch_size=32,
        linear_lr=1.0,
        linear_lr_decay_epochs="1,2",
        knn_k=5,
        device="cpu",
    )
    result = ev.evaluate(s, _encoder_file(tmp_path), tiny_digits_npz, tmp_path / "eval.json")
    assert result["probe"] == probe
    augmented = [x for kind, x in seen if kind == "augmented"]
    encoded = [n for kind, n in seen if kind == "encode"]
    plain = 32 + 135 + 16  # train, dev and test once each, un-augmented (batch_size 1024 > every split)
    if probe == "features":
        assert augmented == [] and sum(encoded) == plain
        assert lrs == pytest.approx([1.0, 0.75, 0.25])  # its cosine over the 3 steps, not the step schedule
    else:
        assert sum(encoded) == plain + 3 * 32 and len(augmented) == 3
        assert all(not torch.equal(a, b) for i, a in enumerate(augmented) for b in augmented[i + 1 :])
        assert lrs == pytest.approx([1.0, 0.2, 0.04])  # one batch of 32 per epoch
