"""Text side: layer map, stop-gradient inside a transformer, Spearman, offline data, resume."""

import json

import numpy as np
import pytest
import scipy.stats
import torch
from transformers import BertConfig, BertModel

import deepaug.domains.text.train as pretrain_text_module
from deepaug import DeepAugment, LayerIndexError, target_module
from deepaug.domains.text.data import model_source, prepare_corpus, prepare_task
from deepaug.domains.text.evaluate import spearman
from deepaug.domains.text.models import SimCSEEncoder, build_text_model
from deepaug.domains.text.train import TextPretrainSettings, pretrain
from deepaug.errors import DataUnavailableError


def tiny_bert(layers=4, hidden=32, dropout=0.0):
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=100,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return SimCSEEncoder(BertModel(cfg, add_pooling_layer=False))


def _batch(n=6, t=7):
    g = torch.Generator().manual_seed(1)
    return {
        "input_ids": torch.randint(1, 100, (n, t), generator=g),
        "attention_mask": torch.ones(n, t, dtype=torch.long),
    }


def test_bert_base_layer_map_has_14_indices():
    model = tiny_bert(layers=12, hidden=16)  # BERT-base depth (12 blocks), small width
    names = [n for n, _ in model.deepaug_layers()]
    assert (
        len(names) == 14
        and names[0] == "embeddings"
        and names[12] == "block 12"
        and names[13] == "pooled sentence vector"
    )
    assert target_module(model, 0) is model.encoder.embeddings
    for i in range(1, 13):
        assert target_module(model, i) is model.encoder.encoder.layer[i - 1]
    assert target_module(model, 13) is model.mlp
    with pytest.raises(LayerIndexError, match="valid indices are 0-13"):
        target_module(model, 14)


def test_minilm_from_its_package_has_layers_0_to_7():
    model = build_text_model(model_source("all-MiniLM-L6-v2"))
    assert len(model.deepaug_layers()) == 8
    with pytest.raises(LayerIndexError, match=r"0-7 \(0 embeddings, 1 block 1"):
        target_module(model, 8)


def _layer_of_params(model):
    out = {}
    for i, (_, module) in enumerate(model.deepaug_layers()):
        for p in module.parameters():
            out[id(p)] = i
    return out


@pytest.mark.parametrize("k", [0, 1, 3, 4])
def test_stop_gradient_inside_transformer(k):
    """p = 1 with stop-gradient at layer k: embeddings/blocks <= k get exactly zero gradient."""
    model = tiny_bert().train()
    DeepAugment(kind="dropout", rate=0.25, p=1.0, stop_gradient=True, seed=0).attach(target_module(model, k))
    model(**_batch()).pow(2).sum().backward()
    layer_of = _layer_of_params(model)
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        if layer_of[id(p)] <= k:
            assert torch.count_nonzero(g) == 0, f"{name} (layer {layer_of[id(p)]}) got gradient; target {k}"
        elif "token_type" not in name:
            assert g.abs().sum() > 0, f"{name} (layer {layer_of[id(p)]}) got none; target {k}"


@pytest.mark.parametrize("kind", ["dropout", "pca"])
def test_transformer_mixed_rows_match_untransformed_rows_alone(kind):
    """p = 0.5, stop-gradient at block 2: the gradient of everything at or below it equals the
    backprop of dL/dh through the untransformed rows only."""
    model = tiny_bert().train()
    k = 2
    target = target_module(model, k)
    seen = {}
    target.register_forward_hook(lambda m, a, o: seen.__setitem__("pre", o))
    aug = DeepAugment(kind=kind, p=0.5, stop_gradient=True, seed=4, pca_over="tokens")
    aug.attach(target)

    def keep_post(m, a, o):
        o.retain_grad()
        seen["post"] = o

    target.register_forward_hook(keep_post)
    batch = _batch(n=12)
    model(**batch).pow(2).sum().backward(retain_graph=True)
    mask = aug.last_mask
    assert 0 < int(mask.sum()) < 12
    lower = [p for p in model.parameters() if _layer_of_params(model)[id(p)] <= k and p.grad is not None]
    upstream = seen["post"].grad * (~mask).view(-1, 1, 1)
    expected = torch.autograd.grad(seen["pre"], lower, grad_outputs=upstream, allow_unused=True)
    for p, e in zip(lower, expected):
        torch.testing.assert_close(p.grad, e if e is not None else torch.zeros_like(p), rtol=1e-4, atol=1e-6)


def test_spearman_matches_scipy_including_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.integers(0, 6, 200).astype(float)  # many ties, like STS scores
        y = x + rng.normal(0, 2, 200)
        assert abs(spearman(x, y) - scipy.stats.spearmanr(x, y).statistic) < 1e-12
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        spearman([1.0], [2.0])


def test_offline_text_data_from_gensims_wheel(tmp_path):
    import pandas as pd

    lee = pd.read_parquet(prepare_task("lee_docs", tmp_path / "lee_docs.parquet"))
    assert len(lee) == 50 * 49 // 2 and lee["score"].between(0, 1).all()
    ws = pd.read_parquet(prepare_task("wordsim353", tmp_path / "ws.parquet"))
    sl = pd.read_parquet(prepare_task("simlex999", tmp_path / "sl.parquet"))
    assert len(ws) == 353 and len(sl) == 999
    assert ws.iloc[0].tolist() == ["love", "sex", 6.77]
    corpus = pd.read_parquet(prepare_corpus("lee", tmp_path / "lee.parquet"))
    assert len(corpus) > 1000 and corpus["text"].str.split().str.len().min() >= 4


def test_unreachable_hub_data_names_the_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match=r"STS task 'sts13' \(mteb/sts13-sts"):
        prepare_task("sts13", tmp_path / "x.parquet")
    with pytest.raises(DataUnavailableError, match="text corpus 'wiki1m'"):
        prepare_corpus("wiki1m", tmp_path / "w.parquet")
    with pytest.raises(DataUnavailableError, match="unknown similarity task 'sts99'"):
        prepare_task("sts99", tmp_path / "y.parquet")


@pytest.mark.parametrize("where", [{"layer": 1}, {"layers_at_once": (0, 1, 3)}], ids=["layer", "layers-at-once"])
def test_text_training_resumes_exactly_after_a_crash(tmp_path, tiny_model_dir, text_files, monkeypatch, where):
    """Also with the op at several layers at once: each layer's generator state is in the checkpoint."""
    corpus, dev = text_files
    s = dict(
        method="dropout",
        **where,
        stop_gradient=True,
        rate=0.25,
        batch_size=8,
        max_steps=6,
        eval_every=2,
        eval_max_len=8,
        precision="fp32",
        device="cpu",
        deterministic=True,
        seed=3,
    )
    ref = pretrain(TextPretrainSettings(**s), tiny_model_dir, corpus, dev, tmp_path / "ref", tmp_path / "ref_ckpt")

    real_loss = pretrain_text_module.simcse_loss
    calls = {"n": 0}

    def crashing_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # after the step-4 checkpoint
            raise RuntimeError("simulated crash")
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(pretrain_text_module, "simcse_loss", crashing_loss)
    with pytest.raises(RuntimeError, match="simulated crash"):
        pretrain(TextPretrainSettings(**s), tiny_model_dir, corpus, dev, tmp_path / "run", tmp_path / "ckpt")
    monkeypatch.setattr(pretrain_text_module, "simcse_loss", real_loss)
    resumed = pretrain(TextPretrainSettings(**s), tiny_model_dir, corpus, dev, tmp_path / "run", tmp_path / "ckpt")

    hist = lambda p: [json.loads(l) for l in open(p / "train_metrics.jsonl")]  # noqa: E731
    assert hist(tmp_path / "run") == hist(tmp_path / "ref")
    a = torch.load(tmp_path / "run" / "model.pt", weights_only=False)["encoder"]
    b = torch.load(tmp_path / "ref" / "model.pt", weights_only=False)["encoder"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["best_step"] == ref["best_step"] and resumed["n_layers"] == 4


def test_text_layer_out_of_range_is_a_clear_error(tmp_path, tiny_model_dir, text_files):
    corpus, dev = text_files
    s = TextPretrainSettings(method="dropout", layer=9, max_steps=1, batch_size=4, precision="fp32", device="cpu")
    with pytest.raises(LayerIndexError, match=r"layer 9 is out of range.*has 2 blocks"):
        pretrain(s, tiny_model_dir, corpus, dev, tmp_path / "o", tmp_path / "c")


def test_supervised_fine_tuning_on_scored_pairs(tmp_path, tiny_model_dir):
    import pandas as pd

    task = prepare_task("simlex999_train", tmp_path / "train.parquet")
    held_out = prepare_task("simlex999_test", tmp_path / "test.parquet")
    a, b = pd.read_parquet(task), pd.read_parquet(held_out)
    assert (
        len(a) == 749 and len(b) == 250 and not set(zip(a.sentence1, a.sentence2)) & set(zip(b.sentence1, b.sentence2))
    )
    s = TextPretrainSettings(
        objective="supervised",
        method="dropout",
        layer=2,
        stop_gradient=True,
        batch_size=8,
        max_steps=4,
        eval_every=4,
        eval_max_len=8,
        max_len=8,
        precision="fp32",
        device="cpu",
        seed=1,
    )
    prov = pretrain(s, tiny_model_dir, task, held_out, tmp_path / "out", tmp_path / "ckpt")
    history = [json.loads(l) for l in open(tmp_path / "out" / "train_metrics.jsonl")]
    assert history[-1]["step"] == 4 and np.isfinite(history[-1]["loss"]) and prov["n_layers"] == 4


def test_trained_text_model_loads_after_model_dir_moved(tmp_path, tiny_model_dir, text_files, monkeypatch):
    """model.pt of a text run carries its encoder config and tokenizer: it loads from anywhere."""
    import shutil

    from deepaug.domains.text.evaluate import load_trained

    corpus, dev = text_files
    moved = shutil.copytree(tiny_model_dir, tmp_path / "m")
    s = TextPretrainSettings(batch_size=8, max_steps=2, eval_every=2, eval_max_len=8, precision="fp32", device="cpu")
    pretrain(s, moved, corpus, dev, tmp_path / "out", tmp_path / "ckpt")
    shutil.rmtree(moved)
    monkeypatch.chdir(tmp_path)
    model, tok = load_trained(tmp_path / "out" / "model.pt", torch.device("cpu"))
    assert model.num_blocks == 2
