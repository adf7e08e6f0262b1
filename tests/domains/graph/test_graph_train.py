"""Graph pre-training: outputs and provenance, exact resumption after an interruption (in both protocols'
recipes), NaN stop, the supervised counterpart, Deep Augmentation at node- and graph-level layers, the batch
order of each protocol, and the two losses computed by hand."""

import json
import math

import pytest
import torch
from interrupt import killed_after_checkpoint

from deepaug.core.losses import graphcl_loss, simcse_loss, symmetric_infonce
from deepaug.domains.graph.train import (
    GraphPretrainSettings,
    pretrain,
    supervised_split,
)
from deepaug.engine.training import NonFiniteLossError

SMALL = dict(hidden_dim=8, num_layers=2, epochs=3, batch_size=32, device="cpu", checkpoint_every=1)
# GraphCL's recipe (deepaug.domains.graph.protocols), small
GRAPHCL = dict(
    num_layers=3, init="xavier", self_loops="graphcl", shuffle="once", loss="graphcl", aug2="random4", aug_ratio=0.1
)


def _weights(path):
    return torch.load(path, weights_only=False)["model"]


def _losses(path):
    return [json.loads(line)["loss"] for line in open(path)]


def test_baseline_writes_model_metrics_and_provenance(tmp_path, toy_pt):
    prov = pretrain(
        GraphPretrainSettings(**SMALL, run="graph/MUTAG/none/seed0"), toy_pt, tmp_path / "out", tmp_path / "ckpt"
    )
    state = torch.load(tmp_path / "out" / "model.pt", weights_only=False)
    assert state["meta"] == {
        "in_dim": 3,
        "hidden_dim": 8,
        "num_layers": 2,
        "out_dim": 16,
        "head": "projection",
        "self_loops": "none",
    }
    assert state["objective"] == "contrastive" and state["split"] is None and state["dataset"] == "MUTAG"
    losses = _losses(tmp_path / "out" / "train_metrics.jsonl")
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    saved = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert saved["settings"]["aug2"] == "random_choice" and saved["settings"]["shuffle"] == "never"
    assert saved["torch_geometric"].startswith("2.8")
    assert saved["node_features"].startswith("node labels") and prov["steps"] == 3 * 2
    assert (tmp_path / "ckpt" / "FINISHED.json").is_file()


@pytest.mark.parametrize(
    "method, layer, extra",
    [
        ("dropout", 1, {}),
        ("pca", 2, {"pca_over": "graphs"}),
        ("dropout", 3, GRAPHCL),
        ("dropout", None, {"layers_at_once": (0, 1, 3)}),  # node-level 0 and 1 with graph-level 3, one op each
    ],
    ids=["pygcl-dropout", "pygcl-pca", "graphcl-dropout", "pygcl-layers-at-once"],
)
def test_interrupted_run_resumes_to_the_uninterrupted_weights(tmp_path, toy_pt, monkeypatch, method, layer, extra):
    settings = {**SMALL, "epochs": 4, "method": method, "layer": layer, "stop_gradient": True, "seed": 3, **extra}
    pretrain(GraphPretrainSettings(**settings), toy_pt, tmp_path / "ref", tmp_path / "ref_ckpt")

    with killed_after_checkpoint(monkeypatch, at=2):  # as if the job died right after its checkpoint of epoch 2
        pretrain(GraphPretrainSettings(**settings), toy_pt, tmp_path / "run", tmp_path / "ckpt")
    assert not (tmp_path / "run" / "model.pt").exists()
    prov = pretrain(GraphPretrainSettings(**settings), toy_pt, tmp_path / "run", tmp_path / "ckpt")
    a, b = _weights(tmp_path / "run" / "model.pt"), _weights(tmp_path / "ref" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)  # BN running statistics included
    assert _losses(tmp_path / "run" / "train_metrics.jsonl") == _losses(tmp_path / "ref" / "train_metrics.jsonl")
    first, second = prov["segments"]
    assert first["to"] == 2 == second["from"] and second["to"] == 4


def test_deep_augmentation_changes_training_at_node_and_graph_layers(tmp_path, toy_pt):
    base = pretrain(GraphPretrainSettings(**SMALL), toy_pt, tmp_path / "base", tmp_path / "c0")
    runs = {"node": dict(method="dropout", layer=1, p=1.0), "graph": dict(method="dropout", layer=3, p=1.0)}
    for name, extra in runs.items():
        pretrain(GraphPretrainSettings(**SMALL, **extra), toy_pt, tmp_path / name, tmp_path / f"c_{name}")
        w, ref = _weights(tmp_path / name / "model.pt"), _weights(tmp_path / "base" / "model.pt")
        assert any(not torch.equal(w[k], ref[k]) for k in ref), f"Deep Augmentation at the {name} layer changed nothing"
    assert base["final_loss"] > 0


def test_non_finite_loss_names_run_and_step(tmp_path, toy_pt):
    s = GraphPretrainSettings(**dict(SMALL, lr=1e30, run="graph/MUTAG/none/seed0"))
    with pytest.raises(NonFiniteLossError, match=r"run graph/MUTAG/none/seed0: the loss became nan by step \d+"):
        pretrain(s, toy_pt, tmp_path / "nan", tmp_path / "nan_ckpt")
    assert not (tmp_path / "nan" / "model.pt").exists()


def test_supervised_counterpart_trains_a_linear_classifier_on_a_held_out_split(tmp_path, toy_pt):
    s = GraphPretrainSettings(**dict(SMALL, epochs=10, objective="supervised"))
    prov = pretrain(s, toy_pt, tmp_path / "sup", tmp_path / "sup_ckpt")
    state = torch.load(tmp_path / "sup" / "model.pt", weights_only=False)
    assert state["meta"]["head"] == "classifier" and state["meta"]["out_dim"] == 2
    split = state["split"]
    assert sorted(split["train"] + split["dev"] + split["test"]) == list(range(60))
    assert len(split["dev"]) == len(split["test"]) == 6  # 10% of each class of 30
    assert prov["final_loss"] < math.log(2) < _losses(tmp_path / "sup" / "train_metrics.jsonl")[0]  # it learns
    y = torch.arange(60) % 2
    assert supervised_split(y) == supervised_split(y)  # fixed: every run of a dataset shares it


def test_both_losses_by_hand_on_two_graphs():
    """View 1 (1, 0), (0, 1); view 2 (1, 0), (1, 1): cosines s11 = 1, s12 = 1/sqrt2, s21 = 0, s22 = 1/sqrt2;
    temperature 0.5. PyGCL's InfoNCE (GCL/losses/infonce.py L42-48: every sample of the other view in the
    denominator), both directions averaged (GCL/models/contrast_model.py L55-56, L72); GraphCL's loss_cal
    (gsimclr.py L122-135): view 1 as anchor, the positive left out of the denominator."""
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    r = math.sqrt(2.0)  # s / 0.5 for s = 1/sqrt2
    forward = -((2 - math.log(math.exp(2) + math.exp(r))) + (r - math.log(1 + math.exp(r)))) / 2
    backward = -((2 - math.log(math.exp(2) + 1)) + (r - math.log(2 * math.exp(r)))) / 2
    assert float(symmetric_infonce(z, 0.5)) == pytest.approx((forward + backward) / 2, rel=1e-6)
    # loss_cal: row 1: -(2 - sqrt2), row 2: -(sqrt2 - log(exp(0))) = -sqrt2; the mean is exactly -1
    assert float(graphcl_loss(z, 0.5)) == pytest.approx(-1.0, rel=1e-6)


def test_infonce_is_pygcl_symmetric_and_graphcl_loss_is_loss_cal():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 5, generator=g)
    z1, z2 = z.chunk(2)
    both = 0.5 * (simcse_loss(z, 0.2) + simcse_loss(torch.cat([z2, z1]), 0.2))
    torch.testing.assert_close(symmetric_infonce(z, 0.2), both)
    # GraphCL's loss_cal, transcribed (unsupervised_TU/gsimclr.py L122-135)
    x, x_aug = z1, z2
    sim = torch.einsum("ik,jk->ij", x, x_aug) / torch.einsum("i,j->ij", x.norm(dim=1), x_aug.norm(dim=1))
    sim = torch.exp(sim / 0.2)
    pos = sim[range(8), range(8)]
    ref = -torch.log(pos / (sim.sum(dim=1) - pos)).mean()
    torch.testing.assert_close(graphcl_loss(z, 0.2), ref)
    assert float(symmetric_infonce(torch.cat([z1, z1]), 0.2)) < float(symmetric_infonce(z, 0.2))


def test_batches_follow_the_protocol_s_order(tmp_path, toy_pt, monkeypatch):
    """never: the dataset's order every epoch (PyGCL's DataLoader); once: one seeded permutation for every epoch
    (GraphCL's dataset.shuffle()); epoch: a new one each epoch. GraphCL's self-loops are added to every batch."""
    from deepaug.domains.graph.data import GraphSet
    from deepaug.domains.graph.train import GraphTask
    from deepaug.engine.loop import Progress

    seen = []
    real = GraphSet.batch
    monkeypatch.setattr(GraphSet, "batch", lambda self, index: seen.append(index.tolist()) or real(self, index))

    def orders(**extra):
        task = GraphTask(GraphPretrainSettings(**{**SMALL, "seed": 5, **extra}), toy_pt)
        task.build(torch.device("cpu"))
        out = []
        for epoch in range(2):
            seen.clear()
            batches = list(task.batches(Progress(period=epoch), seed=100 + epoch))
            out.append(sum(seen, []))
        return out, batches

    (a, b), batches = orders(shuffle="never")
    assert a == b == list(range(60))
    (a, b), _ = orders(shuffle="once")
    assert a == b != list(range(60)) and sorted(a) == list(range(60))
    assert a == torch.randperm(60, generator=torch.Generator().manual_seed(5)).tolist()
    (a, b), _ = orders(shuffle="epoch")
    assert a != b and sorted(a) == sorted(b) == list(range(60))
    _, batches = orders(shuffle="once", self_loops="graphcl", aug1="none", aug2="pedges", aug_ratio=0.0)
    view1 = batches[0][0]
    assert bool((view1.edge_index[0] == view1.edge_index[1]).any())  # the views carry GraphCL's self-loops


def test_settings_are_validated():
    with pytest.raises(ValueError, match="aug2 must be one of"):
        GraphPretrainSettings(aug2="rotate").validate()
    with pytest.raises(ValueError, match=r"layer 5 is out of range; a GIN with 2 layers has layers 0-4"):
        GraphPretrainSettings(method="dropout", layer=5).validate()
    with pytest.raises(ValueError, match=r"layer 6 is out of range; a GIN with 3 layers has layers 0-5"):
        GraphPretrainSettings(method="dropout", layer=6, num_layers=3).validate()
    for name in ("init", "self_loops", "shuffle"):
        with pytest.raises(ValueError, match=f"{name} must be one of"):
            GraphPretrainSettings(**{name: "sometimes"}).validate()
    with pytest.raises(ValueError, match="loss must be one of"):
        GraphPretrainSettings(loss="nt_xent").validate()
    with pytest.raises(ValueError, match="num_layers must be a whole number"):
        GraphPretrainSettings(num_layers=0).validate()
    GraphPretrainSettings(method="pca", layer=4, pca_over="graphs").validate()


def test_pca_through_a_rank_deficient_layer_stops_with_advice(tmp_path, synthetic_pt, monkeypatch):
    """Constant input features make a narrow GIN layer's node embeddings low-rank; the gradient through
    torch.pca_lowrank can then be non-finite, the weights become NaN, the next forward's PCA fails, and the run
    stops naming the cure (pca_grad constant trains). Whether SVD's backward gives a non-finite value there
    depends on the CPU's kernels (some x86 machines give finite ones at the same exact rank), and so does
    whether LAPACK's SVD raises on NaN input: both are injected here, so what is tested is the advice."""
    real_pca, injected = torch.pca_lowrank, []

    def pca_lowrank(a, *args, **kwargs):
        if not bool(torch.isfinite(a).all()):  # what linalg.svd raises on non-finite input (on most LAPACKs)
            raise torch.linalg.LinAlgError(
                "linalg.svd: The algorithm failed to converge because the input matrix contained non-finite values."
            )
        u, s, v = real_pca(a, *args, **kwargs)
        if v.requires_grad:  # pca_grad: through: the gradient through the basis, made non-finite
            v.register_hook(lambda grad: injected.append(1) or torch.full_like(grad, float("nan")))
        return u, s, v

    s = dict(
        SMALL,
        hidden_dim=8,
        num_layers=2,
        epochs=1,
        batch_size=128,
        method="pca",
        layer=1,
        stop_gradient=False,
        pca_grad="through",
        pca_over="graphs",
        run="graph/synthetic/pca-L1-nosg/seed0",
    )
    with monkeypatch.context() as m:
        m.setattr(torch, "pca_lowrank", pca_lowrank)
        with pytest.raises(
            NonFiniteLossError,
            match=r"^run graph/synthetic/pca-L1-nosg/seed0: the activations at "
            r"layer 1 became non-finite by step 1 and their PCA failed "
            r"\(linalg.svd: .*\); the gradient through the PCA basis "
            r"\(pca_grad: through\) is not finite .*use pca_grad: constant",
        ):
            pretrain(GraphPretrainSettings(**s), synthetic_pt, tmp_path / "a", tmp_path / "ca")
    assert injected, "the gradient did not go through the PCA basis"
    assert not (tmp_path / "a" / "model.pt").exists()
    prov = pretrain(
        GraphPretrainSettings(**dict(s, pca_grad="constant")), synthetic_pt, tmp_path / "b", tmp_path / "cb"
    )
    assert math.isfinite(prov["final_loss"])


@pytest.mark.parametrize(
    "objective,method,layer,stop_gradient,extra",
    [
        ("contrastive", "pca", 1, True, {}),  # node level: rows grouped by graph
        ("contrastive", "pca", 2, False, {"pca_over": "graphs"}),  # the gradient through the basis, in float32
        ("contrastive", "dropout", 3, True, {}),  # the pooled graph vector
        ("supervised", "pca", 4, False, {}),  # the classifier's logits
    ],
)
def test_graph_step_under_emulated_cuda_bf16(
    tmp_path, toy_pt, cuda_like_autocast, objective, method, layer, stop_gradient, extra
):
    """bf16 graph training as on a GPU: the GIN's sums and pooling under autocast, the op's PCA basis in float32
    (CUDA autocast would hand bf16 to linalg.qr and crash), finite losses, float32 weights saved."""
    s = GraphPretrainSettings(
        **dict(
            SMALL,
            epochs=1,
            precision="bf16",
            objective=objective,
            method=method,
            layer=layer,
            stop_gradient=stop_gradient,
            pca_grad="through",
            **extra,
        )
    )
    prov = pretrain(s, toy_pt, tmp_path / "out", tmp_path / "ckpt")
    assert prov["steps"] >= 1 and math.isfinite(prov["final_loss"])
    assert set(cuda_like_autocast.autocast_calls) == {("cpu", "bf16")}
    if method == "pca":
        assert cuda_like_autocast.linalg_dtypes, "the PCA op did not run"
        assert {d for _, d in cuda_like_autocast.linalg_dtypes} == {torch.float32}
    weights = torch.load(tmp_path / "out" / "model.pt", weights_only=False)["model"]
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
