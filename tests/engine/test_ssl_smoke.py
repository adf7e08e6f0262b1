"""CPU smoke check (slow; not a unit test): each SSL method learns on the demo's digits and does not collapse.

Each method trains a width-8 ResNet-18 for a few epochs on scikit-learn's digits with its recipe (optimiser, lr,
loss weights, momentum schedule; projector and predictor narrowed to the demo's widths), then the pooled features
(layer 5) of the test images are scored by a kNN on the training images' (the evaluation's knn_top1) and the spread
of the features and of the projections (layer 6) is measured: the std over the images of the L2-normalised
vectors, averaged over the dimensions (a collapse gives ~0; solo-learn logs it on the projections, ``train_z_std``).
The margins are wide:
chance is 10%, and the untrained encoder's kNN and std are printed beside each method's (random features of digits
are already far above chance in kNN, but bunched: all positive after the last ReLU, so their normalised std is low;
learning is judged against chance and collapse, not against the untrained encoder).

    python -m pytest -m slow -s tests/engine/test_ssl_smoke.py
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepaug.domains.vision.evaluate import extract_features, knn_top1
from deepaug.domains.vision.models import build_vision_model
from deepaug.domains.vision.recipes import SSL_RECIPES
from deepaug.domains.vision.train import VisionPretrainSettings, load_encoder, pretrain

METHODS = ("simclr", "byol", "simsiam", "vicreg", "barlow_twins")
# a collapse sends both stds to ~0; 32-dimensional projections spread evenly give 32 ** -0.5 = 0.177
CHANCE, KNN_FLOOR, STD_FLOOR, Z_STD_FLOOR = 0.10, 0.30, 0.01, 0.03


def smoke(method: str, data_path, out, epochs: int = 5) -> dict:
    """Train ``method`` on the digits; return its test kNN top-1, its feature std and its final loss."""
    recipe = {k: v for k, v in SSL_RECIPES[method].get("train", {}).items() if k not in ("epochs", "batch_size")}
    s = VisionPretrainSettings(
        **{**dict(width=8, proj_dim=32, proj_hidden_dim=128, epochs=epochs, batch_size=128, warmup_epochs=1,
                  loss="nt_xent", precision="fp32", device="cpu", num_workers=0, seed=0, ssl_method=method),
           **recipe, **({"pred_hidden_dim": 64} if "pred_hidden_dim" in recipe else {})}
    )  # fmt: skip
    prov = pretrain(s, data_path, out / "out", out / "ckpt")
    model = load_encoder(out / "out" / "model.pt", torch.device("cpu"))
    return {"final_loss": prov["final_loss"], **score(model, data_path)}


def score(model, data_path) -> dict:
    d = np.load(data_path)
    cpu = torch.device("cpu")
    train = extract_features(model, d["x_train"], d["mean"], d["std"], 256, cpu)
    test = extract_features(model, d["x_test"], d["mean"], d["std"], 256, cpu)
    knn = knn_top1(train, torch.from_numpy(d["y_train"]).long(), test, torch.from_numpy(d["y_test"]).long(), k=20)
    with torch.no_grad():
        z = model.head(test)  # the projections (layer 6), what the methods' losses see
    return {
        "knn_top1": knn,
        "feature_std": float(F.normalize(test, dim=1).std(dim=0).mean()),
        "z_std": float(F.normalize(z, dim=1).std(dim=0).mean()),
    }


@pytest.mark.slow
def test_each_ssl_method_learns_and_does_not_collapse(digits_npz, tmp_path):
    torch.manual_seed(0)
    u = score(build_vision_model("resnet18", 8, 3, 32).eval(), digits_npz)
    print(
        f"\nuntrained: kNN {100 * u['knn_top1']:.1f}%, feature std {u['feature_std']:.3f}, projection {u['z_std']:.3f}"
    )
    for method in METHODS:
        r = smoke(method, digits_npz, tmp_path / method)
        print(
            f"{method}: kNN {100 * r['knn_top1']:.1f}%, feature std {r['feature_std']:.3f}, projection std "
            f"{r['z_std']:.3f} (spread evenly: {32**-0.5:.3f}), loss {r['final_loss']:.3f}"
        )
        assert r["knn_top1"] > KNN_FLOOR > CHANCE, (method, r)
        assert r["feature_std"] > STD_FLOOR and r["z_std"] > Z_STD_FLOOR, (method, r)
