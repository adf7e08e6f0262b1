"""The vision domain's analysis, through the shared entry point (deepaug.analysis.analyze dispatches to
deepaug.domains.vision.analysis): CKA over the 7 layers of the map, alignment and uniformity, the files."""

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def trained(tiny_digits_npz, tmp_path_factory):
    from deepaug.domains.vision.train import VisionPretrainSettings, pretrain

    out = tmp_path_factory.mktemp("vision_run")
    s = VisionPretrainSettings(
        width=4,
        proj_dim=16,
        batch_size=32,
        epochs=1,
        warmup_epochs=0,
        lr=0.1,
        precision="fp32",
        device="cpu",
        method="dropout",
        layer=3,
    )
    pretrain(s, tiny_digits_npz, out / "run", out / "ckpt")
    return out / "run" / "model.pt"


def test_analysis_of_a_vision_run_writes_cka_over_its_layer_map(trained, tiny_digits_npz, tmp_path):
    from deepaug.analysis.analyze import analyze

    scalars = analyze(
        "vision",
        trained,
        tiny_digits_npz,
        tmp_path / "a.json",
        tmp_path / "cka.npz",
        n_samples=12,
        device_name="cpu",
        seed=0,
        layer=3,
    )
    with np.load(tmp_path / "cka.npz") as z:
        assert z["linear"].shape == z["rbf"].shape == (7, 7)
        assert np.allclose(np.diag(z["linear"]), 1.0, atol=1e-5) and np.allclose(z["linear"], z["linear"].T)
    assert json.loads((tmp_path / "a.json").read_text()) == scalars
    assert scalars["analysis_samples"] == 12 and np.isfinite(scalars["cka_target_neighbours_linear"])
    assert 0 <= scalars["alignment"] <= 4 and scalars["uniformity"] < 0


def test_an_option_the_domain_does_not_take_is_named(trained, tiny_digits_npz, tmp_path):
    from deepaug.analysis.analyze import analyze

    with pytest.raises(ValueError, match="the vision analysis takes no option min_score"):
        analyze(
            "vision",
            trained,
            tiny_digits_npz,
            tmp_path / "a.json",
            tmp_path / "cka.npz",
            n_samples=8,
            device_name="cpu",
            options={"min_score": 4.0},
        )
    assert not (tmp_path / "a.json").exists()
