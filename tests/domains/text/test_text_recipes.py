"""The author's text recipes (issue 11): the layer sweeps' PCA variant (item 4), SentEval's SICK-R test
split (item 7) and SentEval's relatedness head for the supervised counterpart (item 9)."""

import io
import json
import tarfile

import numpy as np
import pytest
import torch

import deepaug.domains.text.data as text_data
from deepaug.core.layers import target_module
from deepaug.domains.text.train import TextPretrainSettings
from deepaug.errors import DataUnavailableError, DataValidationError


# ============================================================================ item 4: the author's PCA
def _authors_pca_rows(x, this_x, size):
    """The author's ``PCA_augment(x, this_x, size, type="normal")``, recomputed from its formula
    (bruel-gabrielsson/SimCSE ``simcse/models.py`` L85-129): every example's whole activation is one row
    (``x.reshape(len(x), -1)``, L92-93: tokens x hidden flattened), ``torch.pca_lowrank(A, q=None,
    center=True, niter=2)`` (L98; q=None is min(6, rows, features)), ``size=-1`` keeps ``V[:, -1:]``, the
    last of the computed components (L104-105), and the projection on it is removed from the centred rows
    before the mean is added back (L118-127)."""
    a = x.reshape(len(x), -1)
    mean = a.mean(dim=0)
    _, _, v = torch.pca_lowrank(a, q=None, center=True, niter=2)
    c = v[:, size:] if size < 0 else v[:, :size]
    centred = this_x.reshape(len(this_x), -1) - mean
    return (centred - (centred @ c) @ c.T + mean).reshape(this_x.shape)


def _authors_masked(x, mask, size):
    """How the author applies it to the selected rows (``simcse/models.py`` L218-231): the basis from the
    whole batch, then ``x + (PCA_augment(x, x) - x) * big_mask`` with big_mask 1 on the selected rows."""
    big_mask = mask.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
    return x + (_authors_pca_rows(x, x, size) - x) * big_mask


def _paper_text_pca(**overrides):
    """A text PCA run with the trainer's defaults: component -1 of q = 6, whole-sentence rows."""
    s = TextPretrainSettings(method="pca", layer=3, seed=11, **overrides)
    assert (s.pca_component, s.pca_over) == (-1, "rows"), "the text defaults are the author's PCA variant"
    s.validate()
    return s.build_augment()


@pytest.mark.parametrize("rows", [16, 4])  # 4 rows: q = min(6, 4, features) = 4, the last is the 4th
@pytest.mark.parametrize("stop_gradient", [True, False])
def test_paper_text_pca_is_the_authors_pca_augment_with_size_minus_1_over_whole_sentence_rows(rows, stop_gradient):
    """At the op's own row selection, the output equals the author's formula on (sentences, tokens, hidden)
    activations: the 6th of 6 computed components of the flattened sentences, centred by the batch mean."""
    torch.manual_seed(0)
    x = (torch.randn(rows, 7, 10) * torch.linspace(0.5, 3, 10)).double()
    op = _paper_text_pca(stop_gradient=stop_gradient).train()
    assert (op.kind, op.pca_component, op.pca_rank, op.pca_over) == ("pca", -1, 6, "rows")
    torch.manual_seed(5)  # torch.pca_lowrank's random test matrix (global RNG); the rows use the op's generator
    got = op(x)
    mask = op.last_mask
    assert 0 < int(mask.sum()) < rows, "the check needs selected and unselected rows"
    torch.manual_seed(5)
    expected = _authors_masked(x, mask, -1)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert torch.equal(got[~mask], x[~mask])
    if rows <= 6:  # q = rows, but centred rows span only rows - 1 dimensions: the last component is null
        assert (got - x).abs().max() < 1e-9  # (so the author's op is a no-op on batches of <= 6 rows)
        return
    # it removes something, and not the top component per token (the project's earlier text default)
    assert (got[mask] - x[mask]).abs().max() > 1e-3
    torch.manual_seed(5)
    per_token_top = (
        TextPretrainSettings(method="pca", layer=3, pca_component=1, pca_over="tokens", seed=11)
        .build_augment()
        .train()(x)
    )
    assert (per_token_top - got).abs().max() > 1e-3


def test_paper_text_pca_gradient_is_the_authors_without_stop_gradient():
    """Without stop-gradient the author's op is differentiated through the batch mean and pca_lowrank
    (``pca_grad="through"``, the default): the input gradient equals autograd through the formula."""
    torch.manual_seed(0)
    x = (torch.randn(12, 5, 6) * torch.linspace(0.5, 3, 6)).double()
    w = torch.randn_like(x)
    op = _paper_text_pca(stop_gradient=False).train()
    assert op.pca_grad == "through"
    xa = x.clone().requires_grad_()
    torch.manual_seed(5)
    (op(xa) * w).sum().backward()
    xb = x.clone().requires_grad_()
    torch.manual_seed(5)
    (_authors_masked(xb, op.last_mask, -1) * w).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-9, atol=1e-10)


def test_paper_text_pca_inside_a_bert_block_flattens_each_sentence():
    """Hooked on a transformer block, the op sees (2N sentences, tokens, hidden) and transforms it as the
    author's code transforms that block's hidden states."""
    from transformers import BertConfig, BertModel

    from deepaug.domains.text.models import SimCSEEncoder

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = SimCSEEncoder(BertModel(cfg, add_pooling_layer=False)).train()
    block = target_module(model, 2)
    seen = {}
    block.register_forward_hook(lambda m, a, o: seen.__setitem__("before", o[0] if isinstance(o, tuple) else o))
    op = _paper_text_pca()
    op.attach(block)
    block.register_forward_hook(lambda m, a, o: seen.__setitem__("after", o[0] if isinstance(o, tuple) else o))
    ids = torch.randint(1, 50, (10, 6), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    model(input_ids=ids, attention_mask=torch.ones_like(ids))
    before, after = seen["before"].detach(), seen["after"].detach()
    assert before.shape == (10, 6, 16)
    torch.manual_seed(5)
    torch.testing.assert_close(after, _authors_masked(before, op.last_mask, -1), rtol=1e-5, atol=1e-5)


# ============================================================================ item 7: SICK-R test split
SICK_HEADER = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
SICK_LINES = [
    "6\tThere is no boy playing outdoors and there is no man smiling\tA group of kids is playing in a yard and an old man is standing in the background\t3.3\tNEUTRAL",  # noqa: E501
    "7\tA group of boys in a yard is playing and a man is standing in the background\tThe young boys are playing outdoors and the man is smiling nearby\t3.7\tNEUTRAL",  # noqa: E501
    "8\tA group of children is playing in the house and there is no man standing in the background\tThe young boys are playing outdoors and the man is smiling nearby\t3\tNEUTRAL",  # noqa: E501
    "10\tA brown dog is attacking another animal in front of the tall man in pants\tA brown dog is attacking another animal in front of the man in pants\t4.9\tENTAILMENT",  # noqa: E501
    "11\tA brown dog is attacking another animal in front of the man in pants\tA brown dog is helping another animal in front of the man in pants\t3.665\tNEUTRAL",  # noqa: E501
]


def _senteval_tar(path, lines=SICK_LINES, member="SICK/SICK_test_annotated.txt"):
    """A senteval.tar in the layout of princeton-nlp/datasets-for-simcse: SentEval's downstream folders,
    SICK's test file with its header line and tab-separated columns (plus a decoy SICK file)."""
    with tarfile.open(path, "w") as tar:
        for name, text in (
            (member, SICK_HEADER + "\n".join(lines) + "\n"),
            ("SICK/SICK_train.txt", SICK_HEADER + "1\ta b\tc d\t4.5\tNEUTRAL\n"),
        ):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def sick_hub(tmp_path, monkeypatch):
    """prepare_task('sickr') with the hub download replaced by a local senteval.tar fixture."""
    calls = []

    def fake_hub_file(task):
        calls.append(task)
        return _senteval_tar(tmp_path / "senteval.tar")

    monkeypatch.setattr(text_data, "_hub_file", fake_hub_file)
    return calls


def test_sickr_is_sentevals_test_file_from_the_simcse_data(sick_hub, tmp_path, monkeypatch):
    task = text_data.STS_TASKS["sickr"]
    assert (task.repo, task.filename, task.member) == (
        "princeton-nlp/datasets-for-simcse",
        "senteval.tar",
        "SICK/SICK_test_annotated.txt",
    )
    assert text_data.EXPECTED_PAIRS["sickr"] == 4927
    monkeypatch.setitem(text_data.EXPECTED_PAIRS, "sickr", len(SICK_LINES))
    out = text_data.prepare_task("sickr", tmp_path / "sickr.parquet")
    df = text_data.load_task(out)
    assert sick_hub == [task]
    assert len(df) == 5 and list(df.columns) == ["sentence1", "sentence2", "score"]
    first = SICK_LINES[0].split("\t")
    assert df.iloc[0].tolist() == [first[1], first[2], 3.3]
    assert df["score"].tolist() == [3.3, 3.7, 3.0, 4.9, 3.665]


def test_sickr_with_the_wrong_pair_count_fails_naming_task_and_counts(sick_hub, tmp_path, monkeypatch):
    monkeypatch.setitem(text_data.EXPECTED_PAIRS, "sickr", 4)
    out = tmp_path / "sickr.parquet"
    with pytest.raises(
        DataValidationError,
        match=r"similarity task 'sickr': expected 4 pairs .*found 5 in "
        r"princeton-nlp/datasets-for-simcse, file senteval.tar",
    ):
        text_data.prepare_task("sickr", out)
    assert not out.exists()
    # the real table: the 5-pair fixture is not SentEval's 4,927-pair test set
    monkeypatch.setitem(text_data.EXPECTED_PAIRS, "sickr", 4927)
    with pytest.raises(DataValidationError, match="expected 4927 pairs .*found 5"):
        text_data.prepare_task("sickr", out)


def test_mteb_tasks_are_count_checked_too(tmp_path, monkeypatch):
    """A hub task loaded with datasets.load_dataset is checked against the same table (e.g. a source that
    returned all of SICK's 9,927 pairs where SentEval scores 4,927 would fail here)."""
    import datasets

    rows = {"sentence1": ["a b", "c d", "e f"], "sentence2": ["a c", "c e", "e g"], "score": [1.0, 2.5, 4.0]}
    monkeypatch.setattr(datasets, "load_dataset", lambda repo, split: datasets.Dataset.from_dict(rows))
    monkeypatch.setitem(text_data.EXPECTED_PAIRS, "sts13", 3)
    assert len(text_data.load_task(text_data.prepare_task("sts13", tmp_path / "ok.parquet"))) == 3
    monkeypatch.setitem(text_data.EXPECTED_PAIRS, "sts13", 1500)
    with pytest.raises(
        DataValidationError, match=r"'sts13': expected 1500 pairs .*found 3 in mteb/sts13-sts, split test"
    ):
        text_data.prepare_task("sts13", tmp_path / "bad.parquet")


def test_sick_archive_without_the_test_file_or_with_a_broken_line_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(
        text_data, "_hub_file", lambda task: _senteval_tar(tmp_path / "a.tar", member="SICK/SICK_trial.txt")
    )
    with pytest.raises(DataValidationError, match="expected one member named SICK/SICK_test_annotated.txt.*found 0"):
        text_data.prepare_task("sickr", tmp_path / "x.parquet")
    monkeypatch.setattr(
        text_data, "_hub_file", lambda task: _senteval_tar(tmp_path / "b.tar", lines=SICK_LINES[:2] + ["12\tonly two"])
    )
    with pytest.raises(DataValidationError, match="line 4: 2 tab-separated column"):
        text_data.prepare_task("sickr", tmp_path / "x.parquet")


def test_sickr_offline_names_the_hub_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(
        DataUnavailableError,
        match=r"STS task 'sickr' \(princeton-nlp/datasets-for-simcse, "
        r"file senteval.tar, split test\)",
    ):
        text_data.prepare_task("sickr", tmp_path / "x.parquet")


# ============================================================================ item 9: relatedness head
def _senteval_encode_labels(labels, nclass=5):
    """SentEval's ``encode_labels``, written out as its loop (facebookresearch/SentEval ``senteval/sick.py``
    L123-134; the same in the author's fork, ``SentEval/senteval/sick.py`` L122-133)."""
    y_out = np.zeros((len(labels), nclass)).astype("float32")
    for j, y in enumerate(labels):
        for i in range(nclass):
            if i + 1 == np.floor(y) + 1:
                y_out[j, i] = y - np.floor(y)
            if i + 1 == np.floor(y):
                y_out[j, i] = np.floor(y) - y + 1
    return y_out


def test_label_encoding_is_sentevals():
    from deepaug.domains.text.models import encode_labels

    scores = [0.0, 0.4, 1.0, 1.2, 2.5, 3.665, 4.0, 4.99, 5.0] + list(np.random.default_rng(0).uniform(0, 5, 200))
    got = encode_labels(scores).numpy()
    np.testing.assert_allclose(got, _senteval_encode_labels(scores), rtol=0, atol=1e-6)
    np.testing.assert_allclose(got[2], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(got[5], [0, 0, 0.335, 0.665, 0], atol=1e-6)
    np.testing.assert_allclose(got[8], [0, 0, 0, 0, 1])
    # STS-B scores below 1 keep only y (SentEval has no class 0): that row sums to y
    np.testing.assert_allclose(got[1], [0.4, 0, 0, 0, 0], atol=1e-7)
    # for y >= 1 the expected class is y itself: sum(Y * [1..5]) = y
    big = np.asarray(scores) >= 1
    np.testing.assert_allclose(got[big] @ np.arange(1, 6), np.asarray(scores)[big], atol=1e-5)


def test_relatedness_head_is_a_softmax_over_abs_diff_and_product_and_predicts_the_expected_level():
    from deepaug.domains.text.models import RelatednessHead

    torch.manual_seed(0)
    head = RelatednessHead(8)
    assert head.linear.in_features == 16 and head.linear.out_features == 5
    u, v = torch.randn(6, 8), torch.randn(6, 8)
    probs = head(u, v)
    features = torch.cat([(u - v).abs(), u * v], dim=1)
    expected = torch.softmax(features @ head.linear.weight.T + head.linear.bias, dim=1)
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(1), torch.ones(6))
    pred = head.predict(probs)
    torch.testing.assert_close(pred, (probs * torch.tensor([1.0, 2, 3, 4, 5])).sum(1))
    # SentEval: yhat = np.dot(probs, r) with r = np.arange(1, 6)
    np.testing.assert_allclose(pred.detach().numpy(), np.dot(probs.detach().numpy(), np.arange(1, 6)), rtol=1e-6)
    assert float(pred.detach().min()) >= 1.0 and float(pred.detach().max()) <= 5.0
    assert torch.equal(head(u, v), head(v, u)), "the features are symmetric in the pair"


def test_relatedness_targets_layer_l_plus_1_at_the_cls_vector_fed_to_the_head(tiny_model_dir):
    from deepaug.domains.text.models import build_text_model
    from deepaug.domains.text.train import _attach_augment

    model = build_text_model(str(tiny_model_dir)).train()
    s = TextPretrainSettings(
        objective="supervised",
        sup_head="relatedness",
        method="dropout",
        rate=0.5,
        p=1.0,
        layer=model.num_blocks + 1,
        seed=0,
    )
    aug = _attach_augment(s, model, tiny_model_dir, head_input=True)
    ids = torch.randint(1, 1000, (4, 5), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    torch.manual_seed(0)
    out = model(input_ids=ids, attention_mask=mask, use_mlp=False)
    assert aug.last_mask is not None and bool(aug.last_mask.all())
    torch.manual_seed(0)
    with torch.no_grad():
        cls = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
    zeroed = out == 0
    assert zeroed.any() and torch.allclose(out[~zeroed], 2 * cls[~zeroed], atol=1e-5)  # inverted dropout 0.5


def test_relatedness_layers_at_once_hook_the_cls_vector_for_l_plus_1_and_the_blocks_for_the_others(tiny_model_dir):
    from deepaug import target_module
    from deepaug.domains.text.models import build_text_model
    from deepaug.domains.text.train import _attach_augment

    model = build_text_model(str(tiny_model_dir)).train()
    top = model.num_blocks + 1
    s = TextPretrainSettings(
        objective="supervised", sup_head="relatedness", method="dropout", p=1.0, layers_at_once=(1, top), seed=0
    )
    aug = _attach_augment(s, model, tiny_model_dir, head_input=True)
    assert [layer for layer, _ in aug.items()] == [1, top]
    assert model.cls_out._forward_hooks and target_module(model, 1)._forward_hooks
    assert not target_module(model, top)._forward_hooks, "no op on the MLP pooler, which this objective never runs"
    ids = torch.randint(1, 1000, (4, 5), generator=torch.Generator().manual_seed(0))
    model(input_ids=ids, attention_mask=torch.ones_like(ids), use_mlp=False)
    assert all(op.last_mask is not None and bool(op.last_mask.all()) for _, op in aug.items())


def _scripted_dev(monkeypatch, scores):
    """Replace the dev check's score with a scripted sequence (after computing the real one), so the early
    stop can be exercised on a model too small to learn anything."""
    import deepaug.domains.text.evaluate as evaluate_module
    import deepaug.domains.text.train as train_module

    real = evaluate_module.relatedness_spearman
    seen = []

    def scripted(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return scores[len(seen) - 1]

    monkeypatch.setattr(train_module, "relatedness_spearman", scripted)
    return seen


@pytest.fixture(scope="module")
def sts_like_tasks(tmp_path_factory):
    """A 16-pair training task (one batch of 16 per epoch) and a 12-pair dev task with 0-5 scores (from
    SimLex-999's real word pairs)."""
    d = tmp_path_factory.mktemp("rel")
    train = text_data.load_task(text_data.prepare_task("simlex999_train", d / "full_train.parquet")).head(16)
    dev = text_data.load_task(text_data.prepare_task("simlex999_test", d / "full_dev.parquet")).head(12)
    for df in (train, dev):
        df["score"] = df["score"] / 2  # SimLex 0-10 -> 0-5, STS-B's range
    train.to_parquet(d / "train.parquet", index=False)
    dev.to_parquet(d / "dev.parquet", index=False)
    return d / "train.parquet", d / "dev.parquet"


def _relatedness_settings(**kw):
    base = dict(
        objective="supervised",
        sup_head="relatedness",
        method="dropout",
        layer=1,
        stop_gradient=True,
        rate=0.25,
        batch_size=16,
        max_len=8,
        eval_max_len=8,
        lr=1e-4,
        max_grad_norm=0.0,
        sup_eval_epochs=1,
        sup_patience=1,
        precision="fp32",
        device="cpu",
        deterministic=True,
        seed=2,
    )
    base.update(kw)
    return TextPretrainSettings(**base)


def test_relatedness_training_stops_early_as_senteval_and_keeps_the_dev_best_weights(
    tmp_path, tiny_model_dir, sts_like_tasks, monkeypatch
):
    """Patience 1, dev scores 0.10, 0.05, 0.30, 0.20: SentEval's count of non-improving checks is not reset
    by the improvement at check 3, so training stops at check 4 (of at most 10 rounds); model.pt holds the
    encoder and head of check 3 (best.pt of that round), not the final weights."""
    from deepaug.domains.text.evaluate import TextEvalSettings, evaluate, load_trained, relatedness_spearman
    from deepaug.domains.text.train import pretrain

    train, dev = sts_like_tasks
    real_scores = _scripted_dev(monkeypatch, [0.10, 0.05, 0.30, 0.20, 0.9, 0.9])
    prov = pretrain(
        _relatedness_settings(epochs=10, keep_checkpoints="all"),
        tiny_model_dir,
        train,
        dev,
        tmp_path / "a",
        tmp_path / "ca",
    )
    history = [json.loads(line) for line in open(tmp_path / "a" / "train_metrics.jsonl")]
    assert [h["dev_spearman"] for h in history] == pytest.approx([10.0, 5.0, 30.0, 20.0])
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and [h["step"] for h in history] == [1, 2, 3, 4]
    assert [h["bad_checks"] for h in history] == [0, 1, 1, 2]
    assert prov["stopped_early"] and prov["epochs"] == 4 and prov["best_epoch"] == 3 and prov["best_step"] == 3
    assert len(real_scores) == 4 and all(np.isfinite(real_scores))
    assert all(np.isfinite(h["loss"]) and h["loss"] > 0 for h in history)

    a = torch.load(tmp_path / "a" / "model.pt", weights_only=False)
    best = torch.load(tmp_path / "ca" / "best.pt", weights_only=False)
    last = torch.load(tmp_path / "ca" / "last.pt", weights_only=False)
    assert a["sup_head"] == "relatedness" and a["step"] == 3 and a["dev_spearman"] == pytest.approx(30.0)
    assert best["epoch"] == 3 and last["epoch"] == 4 and last["stopped"]
    for part, key in (("encoder", "model"), ("relatedness_head", "head")):
        assert all(torch.equal(a[part][k], best[key][k]) for k in a[part]), part
    assert any(not torch.equal(a["encoder"][k], last["model"]["encoder." + k]) for k in a["encoder"]), "best != last"
    assert any(not torch.equal(a["relatedness_head"][k], last["head"][k]) for k in a["relatedness_head"])

    # evaluation scores a relatedness run with its head: Spearman of sum(probs * [1..5]), as SentEval
    monkeypatch.undo()
    result = evaluate(
        TextEvalSettings(eval_max_len=8, precision="fp32", device="cpu"),
        tmp_path / "a" / "model.pt",
        {"dev": dev},
        tmp_path / "eval.json",
    )
    model, tok, head = load_trained(tmp_path / "a" / "model.pt", torch.device("cpu"), with_head=True)
    direct = relatedness_spearman(model, head, tok, text_data.load_task(dev), 8, torch.device("cpu"))
    assert result["scorer"] == "relatedness" and result["sts_dev"] == pytest.approx(100 * direct)


def test_relatedness_step_is_mse_against_the_label_encoding_with_adam(
    tmp_path, tiny_model_dir, sts_like_tasks, monkeypatch
):
    """One training step end to end: the loss logged is the MSE of the head's probabilities against
    encode_labels, recomputed here from the same initial weights, dropout off and the same batch; the head
    and the encoder both take Adam's first step at lr 1e-4 (``lr * g / (|g| + eps)``: fine-tuned end to end)."""
    import shutil

    from transformers import AutoTokenizer

    import deepaug.domains.text.train as train_module
    from deepaug.domains.text.models import RelatednessHead, build_text_model, encode_labels
    from deepaug.engine import training as T

    cfg_path = shutil.copytree(tiny_model_dir, tmp_path / "m")
    cfg = json.loads((cfg_path / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (cfg_path / "config.json").write_text(json.dumps(cfg))
    train, dev = sts_like_tasks
    s = _relatedness_settings(method="none", layer=None, max_steps=1, epochs=1, batch_size=16)
    _scripted_dev(monkeypatch, [0.5])
    prov = train_module.pretrain(s, cfg_path, train, dev, tmp_path / "o", tmp_path / "c")
    logged = json.loads(open(tmp_path / "o" / "train_metrics.jsonl").readline())["loss"]

    T.seed_everything(s.seed)  # the trainer's order of draws: model, then head
    model = build_text_model(str(cfg_path)).train()
    head = RelatednessHead(model.encoder.config.hidden_size).train()
    pairs = text_data.load_task(train)
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(T.epoch_seed(s.seed, 0, stream=2)))
    idx = order[:16].tolist()
    tok = AutoTokenizer.from_pretrained(str(cfg_path))

    def enc(col):
        return tok([pairs[col].iloc[i] for i in idx], padding=True, truncation=True, max_length=8, return_tensors="pt")

    u, v = model(**enc("sentence1"), use_mlp=False), model(**enc("sentence2"), use_mlp=False)
    target = torch.tensor(_senteval_encode_labels(pairs["score"].to_numpy()[idx]))
    expected = ((head(u, v) - target) ** 2).mean()
    assert logged == pytest.approx(float(expected.detach()), rel=1e-5)
    torch.testing.assert_close(encode_labels(pairs["score"].to_numpy()[idx]), target)
    assert prov["steps"] == 1 and prov["sup_head"] == "relatedness"

    expected.backward()
    saved = torch.load(tmp_path / "o" / "model.pt", weights_only=False)
    query = "encoder.layer.0.attention.self.query.weight"
    for after, param in (
        (saved["relatedness_head"]["linear.weight"], head.linear.weight),
        (saved["encoder"][query], model.encoder.get_parameter(query)),
    ):
        g = param.grad
        assert g is not None and g.abs().max() > 1e-6
        adam_first_step = -s.lr * g / (g.abs() + 1e-8)
        torch.testing.assert_close(after - param.detach(), adam_first_step, rtol=2e-3, atol=2e-9)


def test_relatedness_refuses_scores_outside_0_to_5(tmp_path, tiny_model_dir):
    """SimLex-999's 0-10 scores would get all-zero targets above 5: the run stops, naming the fix."""
    from deepaug.domains.text.train import pretrain

    task = text_data.prepare_task("simlex999_test", tmp_path / "simlex.parquet")
    with pytest.raises(
        DataValidationError,
        match=r"needs gold scores in \[0, 5\], but .*simlex.parquet has scores "
        r"in \[0.\d+, \d+(\.\d+)?\]; train this task with sup_head cosine",
    ):
        pretrain(_relatedness_settings(epochs=1), tiny_model_dir, task, task, tmp_path / "o", tmp_path / "c")


def test_sup_head_settings_are_validated():
    with pytest.raises(ValueError, match=r"sup_head must be one of \('cosine', 'relatedness'\)"):
        TextPretrainSettings(sup_head="mlp").validate()
    with pytest.raises(ValueError, match="sup_patience must be a whole number >= 0"):
        TextPretrainSettings(sup_patience=-1).validate()
    with pytest.raises(ValueError, match="sup_eval_epochs must be a whole number >= 1"):
        TextPretrainSettings(sup_eval_epochs=0).validate()
    s = TextPretrainSettings()
    assert (s.sup_head, s.sup_eval_epochs, s.sup_patience) == ("cosine", 2, 3)


def test_relatedness_training_resumes_exactly_after_a_crash(tmp_path, tiny_model_dir, sts_like_tasks, monkeypatch):
    """Killed in round 2, the run resumes from round 1's checkpoint and ends with the history and weights of
    an uninterrupted run (order, dropout, Deep Augmentation and optimizer state restored)."""
    import torch.nn.functional as F

    from deepaug.domains.text.train import pretrain

    train, dev = sts_like_tasks
    s = dict(epochs=2, sup_patience=5)
    _scripted_dev(monkeypatch, [0.1, 0.2])
    pretrain(_relatedness_settings(**s), tiny_model_dir, train, dev, tmp_path / "ref", tmp_path / "cref")

    real_mse, calls = F.mse_loss, {"n": 0}

    def crashing_mse(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the first step of round 2
            raise RuntimeError("simulated crash")
        return real_mse(*args, **kwargs)

    _scripted_dev(monkeypatch, [0.1, 0.2])
    monkeypatch.setattr(F, "mse_loss", crashing_mse)
    with pytest.raises(RuntimeError, match="simulated crash"):
        pretrain(_relatedness_settings(**s), tiny_model_dir, train, dev, tmp_path / "run", tmp_path / "c")
    monkeypatch.setattr(F, "mse_loss", real_mse)
    _scripted_dev(monkeypatch, [0.2])  # only round 2's check is left
    pretrain(_relatedness_settings(**s), tiny_model_dir, train, dev, tmp_path / "run", tmp_path / "c")

    hist = lambda p: [json.loads(line) for line in open(p / "train_metrics.jsonl")]  # noqa: E731
    assert hist(tmp_path / "run") == hist(tmp_path / "ref") and len(hist(tmp_path / "ref")) == 2
    a = torch.load(tmp_path / "run" / "model.pt", weights_only=False)
    b = torch.load(tmp_path / "ref" / "model.pt", weights_only=False)
    for part in ("encoder", "relatedness_head"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
