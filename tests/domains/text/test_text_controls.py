"""Text controls (issue 25): the encoder's own dropout as settings (rates, and where it acts), and the MLM
auxiliary objective and MLM alone (masking, the head, the loss, resume). The offline tiny test model
(tests/conftest.py: tiny_model_dir, a 2-block BERT with BertConfig's dropout 0.1 and no MLM head)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from interrupt import killed_after_checkpoint

import deepaug.domains.text.train as pretrain_text_module
from deepaug.core.losses import simcse_loss
from deepaug.domains.text.mlm import IGNORE, build_mlm_head, mask_tokens, prepare_mlm_head
from deepaug.domains.text.models import dropout_rates
from deepaug.domains.text.train import TextPretrainSettings, TextTask, _build_model, pretrain

CPU = torch.device("cpu")


def _modules(model):
    """The nn.Dropout p of the embeddings and of each BertLayer's attention, attention-output and output."""
    enc = model.encoder
    out = {"embeddings": enc.embeddings.dropout.p}
    for i, block in enumerate(enc.encoder.layer):
        out[f"{i}.attention"] = block.attention.self.dropout.p
        out[f"{i}.attention_output"] = block.attention.output.dropout.p
        out[f"{i}.output"] = block.output.dropout.p
    return out


def _settings(**kw):
    base = dict(precision="fp32", device="cpu", batch_size=8, max_len=12, eval_max_len=8, seed=3)
    return TextPretrainSettings(**{**base, **kw})


# ----------------------------------------------------------------------------- the encoder's own dropout
def test_default_keeps_the_pretrained_configs_dropout_in_every_module(tiny_model_dir):
    rates = _modules(_build_model(_settings(), tiny_model_dir, CPU))
    assert set(rates.values()) == {0.1} and len(rates) == 7  # BertConfig's 0.1, embeddings + 2 blocks x 3


def test_hidden_and_attention_rates_reach_the_modules_of_every_layer(tiny_model_dir):
    rates = _modules(_build_model(_settings(hidden_dropout=0.2, attention_dropout=0.35), tiny_model_dir, CPU))
    assert rates == {
        "embeddings": 0.2,
        **{
            f"{i}.{k}": 0.35 if k == "attention" else 0.2
            for i in (0, 1)
            for k in ("attention", "attention_output", "output")
        },
    }
    model = _build_model(_settings(hidden_dropout=0.2, attention_dropout=0.35), tiny_model_dir, CPU)
    assert model.encoder.config.hidden_dropout_prob == 0.2 and model.encoder.config.attention_probs_dropout_prob == 0.35


@pytest.mark.parametrize(
    "setting, kept",
    [
        (
            dict(method="dropout", layer=2, standard_dropout="target_layer"),
            {"1.attention", "1.attention_output", "1.output"},
        ),
        (dict(method="dropout", layer=0, standard_dropout="target_layer"), {"embeddings"}),
        (dict(method="dropout", layer=3, standard_dropout="target_layer"), set()),  # the MLP pooler has none
        (
            dict(method="pca", layers_at_once=(0, 1), standard_dropout="target_layer"),
            {"embeddings", "0.attention", "0.attention_output", "0.output"},
        ),
        (
            dict(method="none", standard_dropout=1),
            {"0.attention", "0.attention_output", "0.output"},
        ),  # the author's only_layer 0
        (
            dict(method="none", standard_dropout="1"),
            {"0.attention", "0.attention_output", "0.output"},
        ),  # as the flag spells it
        (dict(method="none", standard_dropout="none"), set()),
        (dict(method="none", hidden_dropout=0.0, attention_dropout=0.0), set()),  # the author's spelling of none
        (dict(method="none", hidden_dropout=0.0), {"0.attention", "1.attention"}),  # attention only (rep_att.sh)
        (
            dict(method="none", attention_dropout=0.0),
            {"embeddings", "0.attention_output", "0.output", "1.attention_output", "1.output"},
        ),
    ],
    ids=[
        "target-block2",
        "target-embeddings",
        "target-pooler",
        "target-at-once",
        "layer1-int",
        "layer1-text",
        "none",
        "rates0",
        "attention-only",
        "hidden-only",
    ],
)
def test_standard_dropout_acts_only_where_the_setting_says(tiny_model_dir, setting, kept):
    s = _settings(**setting)
    s.validate()
    rates = _modules(_build_model(s, tiny_model_dir, CPU))
    assert {name for name, p in rates.items() if p > 0} == kept
    assert all(p == 0.1 for name, p in rates.items() if name in kept)
    model = _build_model(s, tiny_model_dir, CPU)
    assert set(dropout_rates(model)) >= {"embeddings.dropout", "encoder.layer.1.attention.self.dropout"}


def test_the_attention_rate_acts_in_the_forward_pass(tiny_model_dir):
    """BERT's SDPA attention reads its rate from the nn.Dropout at each call: attention-only dropout makes two
    training passes differ, no standard dropout at all makes them equal."""
    batch = {"input_ids": torch.randint(1000, 2000, (4, 9), generator=torch.Generator().manual_seed(0))}
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    outs = {}
    for name, kw in {
        "attention": dict(hidden_dropout=0.0, attention_dropout=0.5),
        "off": dict(standard_dropout="none"),
    }.items():
        model = _build_model(_settings(**kw), tiny_model_dir, CPU).train()
        outs[name] = model(**batch), model(**batch)
    assert not torch.allclose(*outs["attention"]) and torch.equal(*outs["off"])


def test_standard_dropout_settings_refuse_what_cannot_be(tiny_model_dir):
    with pytest.raises(ValueError, match="target_layer.*baseline"):
        _settings(method="none", standard_dropout="target_layer").validate()
    with pytest.raises(ValueError, match="standard_dropout must be one of"):
        _settings(standard_dropout="middle").validate()
    with pytest.raises(ValueError, match="hidden_dropout must be in"):
        _settings(hidden_dropout=1.0).validate()
    with pytest.raises(ValueError, match="layer 4 is out of range; this encoder has layers 0-3"):
        _build_model(_settings(standard_dropout=4), tiny_model_dir, CPU)


# ----------------------------------------------------------------------------- MLM: masking
def test_masking_statistics_on_a_fixed_generator(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, tok.vocab_size, (400, 50), generator=g)
    ids[:, 0], ids[:, -1], ids[:200, -10:] = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    special = (ids == tok.cls_token_id) | (ids == tok.sep_token_id) | (ids == tok.pad_token_id)
    masked, labels = mask_tokens(ids, tok, 0.15, torch.Generator().manual_seed(7))
    chosen = labels != IGNORE
    assert not chosen[special].any() and torch.equal(masked[special], ids[special])  # special tokens never masked
    assert torch.equal(labels[chosen], ids[chosen]) and (labels[~chosen] == IGNORE).all()
    assert torch.equal(masked[~chosen], ids[~chosen])  # only chosen tokens change
    n = int(chosen.sum())
    assert abs(n / int((~special).sum()) - 0.15) < 0.01  # ~16,000 candidate tokens: sd ~0.003
    as_mask = (masked[chosen] == tok.mask_token_id).float().mean().item()
    kept = (masked[chosen] == ids[chosen]).float().mean().item()
    assert abs(as_mask - 0.8) < 0.03 and abs(kept - 0.1) < 0.025 and abs(1 - as_mask - kept - 0.1) < 0.025
    again = mask_tokens(ids, tok, 0.15, torch.Generator().manual_seed(7))
    assert torch.equal(again[0], masked) and torch.equal(again[1], labels)
    other = mask_tokens(ids, tok, 0.15, torch.Generator().manual_seed(8))
    assert not torch.equal(other[1], labels)


# ----------------------------------------------------------------------------- MLM: the head
def test_the_offline_model_has_no_mlm_head_so_one_is_initialised_and_said(tiny_model_dir, tmp_path, capsys):
    head_file = prepare_mlm_head(str(tiny_model_dir), tmp_path / "head.pt")
    stored = torch.load(head_file, weights_only=True)
    assert stored["state"] is None and "cls.predictions" in stored["note"]
    model = _build_model(_settings(), tiny_model_dir, CPU)
    head = build_mlm_head(model.encoder, head_file)
    assert "MLM head: randomly initialised" in capsys.readouterr().err
    assert torch.equal(head.decoder.weight, model.encoder.get_input_embeddings().weight)
    assert head.decoder.weight is not model.encoder.get_input_embeddings().weight  # a copy, not tied
    assert head.decoder.bias is head.bias and not head.bias.any()


def test_a_pretrained_mlm_head_is_loaded_from_the_checkpoint(tmp_path, capsys):
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    full = BertForPreTraining(cfg)
    with torch.no_grad():
        full.cls.predictions.bias.normal_()
    full.save_pretrained(tmp_path / "ckpt")
    head_file = prepare_mlm_head(str(tmp_path / "ckpt"), tmp_path / "head.pt")
    assert torch.load(head_file, weights_only=True)["state"] is not None
    head = build_mlm_head(full.bert, head_file)
    assert "MLM head: loaded from" in capsys.readouterr().err
    for key, value in full.cls.predictions.state_dict().items():
        torch.testing.assert_close(head.state_dict()[key], value, rtol=0, atol=0)


# ----------------------------------------------------------------------------- MLM: the loss
def _task(tiny_model_dir, text_files, head_file, **kw):
    corpus, dev = text_files
    s = _settings(hidden_dropout=0.0, attention_dropout=0.0, **kw)  # deterministic forward passes
    s.validate()
    task = TextTask(s, tiny_model_dir, corpus, dev, head_file)
    torch.manual_seed(0)
    task.build(CPU)
    for m in task.modules():
        m.train()
    from deepaug.engine.loop import Progress

    return task, next(iter(task.batches(Progress(), 0)))


@pytest.mark.parametrize("mlm_only", [False, True], ids=["auxiliary", "alone"])
def test_loss_is_contrastive_plus_weight_times_mlm_and_reaches_the_encoder(
    tiny_model_dir, text_files, tmp_path, monkeypatch, mlm_only
):
    head_file = prepare_mlm_head(str(tiny_model_dir), tmp_path / "head.pt")
    task, batch = _task(tiny_model_dir, text_files, head_file, mlm_weight=0.3, mlm_only=mlm_only)
    idx, rows, masked, labels = batch
    assert (labels != IGNORE).any() and torch.equal(masked[labels == IGNORE], rows["input_ids"][labels == IGNORE])
    if mlm_only:  # no contrastive term: the contrastive loss is never computed
        monkeypatch.setattr(pretrain_text_module, "simcse_loss", lambda *a, **k: pytest.fail("contrastive loss"))
    loss = task.loss(task.forward(batch), batch)
    # by hand: the author's computation, logits at every position and -100 ignored (simcse/models.py L304-308)
    with torch.no_grad():
        states = task.model.encoder(input_ids=masked, attention_mask=rows["attention_mask"]).last_hidden_state
        logits = task.mlm_head(states)
        mlm = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=IGNORE)
        contrastive = 0.0 if mlm_only else simcse_loss(task.model(**rows), 0.05)
    torch.testing.assert_close(loss.detach(), contrastive + 0.3 * mlm, rtol=1e-5, atol=1e-6)
    loss.backward()
    grads = {n: p.grad for n, p in task.model.encoder.named_parameters()}
    assert grads["embeddings.word_embeddings.weight"].abs().sum() > 0
    assert grads["encoder.layer.0.attention.self.query.weight"].abs().sum() > 0
    assert task.mlm_head.transform.dense.weight.grad.abs().sum() > 0 and task.mlm_head.bias.grad.abs().sum() > 0
    mlp_grad = task.model.mlp[0].weight.grad
    assert (mlp_grad is None) if mlm_only else (mlp_grad.abs().sum() > 0)


def test_mlm_settings_refuse_what_cannot_be(tiny_model_dir, text_files):
    with pytest.raises(ValueError, match="mlm_only.*mlm_weight is 0"):
        _settings(mlm_only=True).validate()
    with pytest.raises(ValueError, match="contrastive objective"):
        _settings(mlm_weight=0.1, objective="supervised").validate()
    with pytest.raises(ValueError, match="needs the encoder's MLM head file"):
        TextTask(_settings(mlm_weight=0.1), tiny_model_dir, *text_files)


def test_mlm_training_resumes_exactly_with_the_heads_state(tmp_path, tiny_model_dir, text_files, monkeypatch):
    """The head is checkpointed with the encoder (last.pt): a run killed after a checkpoint and resumed gives the
    uninterrupted run's history (with its MLM loss) and weights; without the head's state it would not."""
    corpus, dev = text_files
    head_file = prepare_mlm_head(str(tiny_model_dir), tmp_path / "head.pt")
    s = dict(method="dropout", layer=1, rate=0.25, batch_size=8, max_steps=6, eval_every=2, eval_max_len=8,
             precision="fp32", device="cpu", deterministic=True, seed=3, mlm_weight=0.5)  # fmt: skip
    ref = pretrain(TextPretrainSettings(**s), tiny_model_dir, corpus, dev, tmp_path / "ref", tmp_path / "rc", head_file)
    with killed_after_checkpoint(monkeypatch, at=4):  # right after the step-4 checkpoint
        pretrain(TextPretrainSettings(**s), tiny_model_dir, corpus, dev, tmp_path / "run", tmp_path / "ckpt", head_file)
    last = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=False)
    assert "mlm_head" in last and "transform.dense.weight" in last["mlm_head"]
    resumed = pretrain(
        TextPretrainSettings(**s), tiny_model_dir, corpus, dev, tmp_path / "run", tmp_path / "ckpt", head_file
    )

    hist = lambda p: [json.loads(line) for line in open(p / "train_metrics.jsonl")]  # noqa: E731
    assert hist(tmp_path / "run") == hist(tmp_path / "ref") and all("mlm_loss" in row for row in hist(tmp_path / "ref"))
    a = torch.load(tmp_path / "run" / "model.pt", weights_only=False)["encoder"]
    b = torch.load(tmp_path / "ref" / "model.pt", weights_only=False)["encoder"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["best_step"] == ref["best_step"] and ref["mlm_head"] == str(head_file)
