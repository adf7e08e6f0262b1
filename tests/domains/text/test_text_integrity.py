"""Text integrity: nothing NaN is scored, task and corpus files are validated, model.pt is self-contained."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from transformers import AutoTokenizer, BertConfig, BertModel

import deepaug.domains.text.data as text_data
from deepaug.domains.text.data import load_corpus, load_task, model_source, prepare_corpus, prepare_task
from deepaug.domains.text.evaluate import TextEvalSettings, encode, evaluate, load_trained, spearman, spearman_on_task
from deepaug.domains.text.models import SimCSEEncoder, encoder_bundle
from deepaug.errors import DataUnavailableError, DataValidationError, NonFiniteError
from deepaug.io import save_torch, write_json

RUN = "text/lee/none/seed0"


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(model_source("all-MiniLM-L6-v2"))


def _tiny_backbone(vocab_size: int) -> BertModel:
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    return BertModel(cfg, add_pooling_layer=False)


def _save_model_dir(out, tokenizer):
    """A random 2-block BERT with the real MiniLM tokenizer, saved like prepare_model does."""
    _tiny_backbone(tokenizer.vocab_size).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _save_run(run_dir, model_dir, backbone, run=RUN, with_provenance=True):
    """model.pt (as pretrain_text writes it) and provenance.json of a text run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_torch(
        {
            "encoder": backbone.state_dict(),
            "source": str(model_dir),
            "encoder_bundle": encoder_bundle(model_dir),
            "step": 1,
            "dev_spearman": 0.0,
        },
        run_dir / "model.pt",
    )
    if with_provenance:
        write_json(run_dir / "provenance.json", {"settings": {"run": run}})
    return run_dir / "model.pt"


@pytest.fixture(scope="module")
def wordsim(tmp_path_factory):
    return prepare_task("wordsim353", tmp_path_factory.mktemp("tasks") / "wordsim353.parquet")


def _nan_encoder(vocab_size: int) -> SimCSEEncoder:
    backbone = _tiny_backbone(vocab_size)
    with torch.no_grad():
        for p in backbone.parameters():
            p.fill_(float("nan"))
    return SimCSEEncoder(backbone)


class ConstantEncoder(nn.Module):
    """Collapsed encoder: the same vector for every sentence."""

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return torch.ones(input_ids.shape[0], 4)


# ----------------------------------------------------------------------------- 1. nothing NaN is scored
def test_spearman_rejects_nan_instead_of_ranking_it():
    with pytest.raises(NonFiniteError, match="100 of 100 values of x are NaN"):
        spearman([float("nan")] * 100, range(100))  # the old code returned 1.0
    with pytest.raises(NonFiniteError, match="1 of 3 values of y"):
        spearman([1.0, 2.0, 3.0], [1.0, float("inf"), 2.0])


def test_spearman_rejects_constant_input():
    with pytest.raises(NonFiniteError, match=r"all 5 values of x are equal \(0.5\)"):
        spearman([0.5] * 5, range(5))  # the old code returned NaN


def test_nan_encoder_names_the_run_and_the_task(tokenizer, wordsim):
    task = load_task(wordsim)
    with pytest.raises(NonFiniteError, match=rf"^run {RUN}: task wordsim353: the encoder's embeddings are NaN/inf"):
        spearman_on_task(
            _nan_encoder(tokenizer.vocab_size), tokenizer, task, 8, torch.device("cpu"), name="wordsim353", run=RUN
        )


def test_constant_similarity_is_an_error(tokenizer, wordsim):
    with pytest.raises(
        NonFiniteError, match=r"^task wordsim353: the encoder gives the same similarity \(1\) to every one"
    ):
        spearman_on_task(ConstantEncoder(), tokenizer, load_task(wordsim), 8, torch.device("cpu"), name="wordsim353")


def test_nan_gold_scores_in_a_dataframe_are_an_error(tokenizer):
    """A task built in code (not through load_task) with a NaN score is not scored either."""
    df = pd.DataFrame(
        {
            "sentence1": ["a cat", "a dog", "the sun"],
            "sentence2": ["a car", "a log", "the moon"],
            "score": [1.0, float("nan"), 3.0],
        }
    )
    encoder = SimCSEEncoder(_tiny_backbone(tokenizer.vocab_size))
    with pytest.raises(NonFiniteError, match="task dev: gold scores: spearman: 1 of 3 values of y"):
        spearman_on_task(encoder, tokenizer, df, 8, torch.device("cpu"), name="dev")


@pytest.mark.parametrize("with_provenance", [True, False])
def test_evaluate_refuses_a_nan_encoder(tmp_path, tokenizer, wordsim, with_provenance):
    """The old code wrote a plausible sts_avg (NaNs ranked as the largest values) and exited 0."""
    model_dir = _save_model_dir(tmp_path / "model", tokenizer)
    model_pt = _save_run(
        tmp_path / "run", model_dir, _nan_encoder(tokenizer.vocab_size).encoder, with_provenance=with_provenance
    )
    run = RUN if with_provenance else str(model_pt)
    s = TextEvalSettings(eval_max_len=8, precision="fp32", device="cpu")
    with pytest.raises(NonFiniteError, match=rf"^run {run}: task wordsim353: the encoder's embeddings are NaN/inf"):
        evaluate(s, model_pt, {"wordsim353": wordsim}, tmp_path / "eval.json")
    assert not (tmp_path / "eval.json").exists()


# ----------------------------------------------------------------------------- 2. data files are validated
def _write(df, path):
    df.to_parquet(path, index=False)
    return path


def test_nan_gold_scores_are_rejected_when_loaded(tmp_path, wordsim):
    df = pd.read_parquet(wordsim)
    df.loc[df.index[::10][:36], "score"] = np.nan  # 36 of 353, as in the reported case
    path = _write(df, tmp_path / "wordsim353.parquet")
    with pytest.raises(
        DataValidationError,
        match=rf"{path}: column score: 36 of 353 rows are not a finite number.*"
        r"prepare-text --task wordsim353",
    ):
        load_task(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda df: df.drop(columns="score"), r"missing column\(s\) score"),
        (
            lambda df: df.assign(sentence2=[""] + list(df.sentence2[1:])),
            "column sentence2: 1 of 353 rows are not a non-empty string",
        ),
        (lambda df: df.assign(sentence1=[None, "  "] + list(df.sentence1[2:])), "column sentence1: 2 of 353 rows"),
        (
            lambda df: df.assign(score=["high"] + list(df.score[1:].astype(str))),
            "column score: 1 of 353 rows are not a finite number",
        ),
        (lambda df: df.assign(score=np.inf), "column score: 353 of 353 rows"),
        (lambda df: df.assign(score=2.0), "all 353 scores are 2; Spearman needs scores that vary"),
        (lambda df: df.head(1), r"1 row\(s\); a similarity task needs at least 2 pairs"),
    ],
)
def test_bad_task_files_are_rejected_when_loaded(tmp_path, wordsim, change, message):
    path = _write(change(pd.read_parquet(wordsim)), tmp_path / "wordsim353.parquet")
    with pytest.raises(DataValidationError, match=message):
        load_task(path)


def test_numeric_text_scores_still_load_as_floats(tmp_path, wordsim):
    df = pd.read_parquet(wordsim)
    path = _write(df.assign(score=df.score.astype(str)), tmp_path / "wordsim353.parquet")
    assert load_task(path)["score"].dtype == np.float64


def test_nan_gold_scores_are_rejected_when_prepared(tmp_path, monkeypatch):
    pairs = [("a", "b", 1.0), ("c", "d", float("nan")), ("e", "f", 3.0)]
    monkeypatch.setitem(text_data.LOCAL_TASKS, "broken", lambda: pairs)
    out = tmp_path / "broken.parquet"
    with pytest.raises(DataValidationError, match=r"similarity task 'broken' .*column score: 1 of 3 rows"):
        prepare_task("broken", out)
    assert not out.exists()


def test_corpus_blank_lines_are_dropped_when_prepared(tmp_path, monkeypatch):
    monkeypatch.setitem(
        text_data.LOCAL_CORPORA, "blanky", lambda: ["one two three four", "", "   ", "five six seven eight"]
    )
    out = prepare_corpus("blanky", tmp_path / "blanky.parquet")
    assert load_corpus(out) == ["one two three four", "five six seven eight"]
    monkeypatch.setitem(text_data.LOCAL_CORPORA, "empty", lambda: ["", " "])
    with pytest.raises(DataValidationError, match="text corpus 'empty' .*no rows"):
        prepare_corpus("empty", tmp_path / "empty.parquet")


@pytest.mark.parametrize(
    "df, message",
    [
        (pd.DataFrame({"sentence": ["a b c d"]}), "no column text"),
        (pd.DataFrame({"text": pd.Series([], dtype=str)}), "the corpus has no rows"),
        (pd.DataFrame({"text": ["a b c d", "", None]}), "column text: 2 of 3 rows are empty or not a string"),
    ],
)
def test_bad_corpus_files_are_rejected_when_loaded(tmp_path, df, message):
    path = _write(df, tmp_path / "lee.parquet")
    with pytest.raises(DataValidationError, match=rf"{path}: {message}.*prepare-text --corpus lee"):
        load_corpus(path)


@pytest.mark.parametrize("loader", [load_task, load_corpus])
@pytest.mark.parametrize("damage", ["zero bytes", "truncated", "not parquet"])
def test_unreadable_parquet_is_one_line_naming_the_file(tmp_path, wordsim, loader, damage):
    path = tmp_path / "x.parquet"
    data = {
        "zero bytes": b"",
        "truncated": wordsim.read_bytes()[: wordsim.stat().st_size // 2],
        "not parquet": b"sentence1,sentence2,score\n",
    }[damage]
    path.write_bytes(data)
    with pytest.raises(DataValidationError) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "not a readable parquet file" in message


# ----------------------------------------------------------------------------- 3. model.pt is self-contained
def test_encoder_bundle_has_config_and_tokenizer_but_no_weights(tmp_path, tokenizer):
    bundle = encoder_bundle(_save_model_dir(tmp_path / "m", tokenizer))
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= set(bundle["files"])
    assert not [n for n in bundle["files"] if n.endswith((".safetensors", ".bin"))]
    assert sum(map(len, bundle["files"].values())) < 2_000_000
    with pytest.raises(DataUnavailableError, match="not a saved encoder folder"):
        encoder_bundle(tmp_path)


def test_trained_model_loads_from_another_directory_after_the_model_folder_moved(tmp_path, tokenizer, monkeypatch):
    """The workflow saves model.pt with a relative model folder (data/models/...); it must load without it."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "data" / "models").mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    _save_model_dir(work / "data" / "models" / "tiny", tokenizer)
    trained = SimCSEEncoder(_tiny_backbone(tokenizer.vocab_size)).eval()
    with torch.no_grad():
        for p in trained.encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))  # not the folder's weights: model.pt's must win
    model_pt = _save_run(work / "results" / "run", "data/models/tiny", trained.encoder)
    shutil.move(str(work / "data"), str(tmp_path / "moved_away"))
    monkeypatch.chdir(elsewhere)

    model, tok = load_trained(model_pt, torch.device("cpu"))
    sentences = ["a cat sat on the mat", "stock markets fell sharply"]
    expected = encode(trained, tokenizer, sentences, 16, torch.device("cpu"))
    torch.testing.assert_close(encode(model, tok, sentences, 16, torch.device("cpu")), expected)
    assert not model.training


def test_old_model_pt_without_bundle_still_loads(tmp_path, tokenizer, monkeypatch):
    model_dir = _save_model_dir(tmp_path / "m", tokenizer)
    trained = SimCSEEncoder(_tiny_backbone(tokenizer.vocab_size)).eval()
    save_torch({"encoder": trained.encoder.state_dict(), "source": str(model_dir)}, tmp_path / "old.pt")
    model, tok = load_trained(tmp_path / "old.pt", torch.device("cpu"))
    cpu = torch.device("cpu")
    torch.testing.assert_close(encode(model, tok, ["a b"], 8, cpu), encode(trained, tokenizer, ["a b"], 8, cpu))

    save_torch({"encoder": trained.encoder.state_dict(), "source": "data/models/gone"}, tmp_path / "older.pt")
    with pytest.raises(DataUnavailableError, match=r"older.pt was saved without its encoder config .*data/models/gone"):
        load_trained(tmp_path / "older.pt", torch.device("cpu"))


def test_evaluate_of_a_good_encoder_writes_finite_scores(tmp_path, tokenizer, wordsim):
    model_dir = _save_model_dir(tmp_path / "model", tokenizer)
    model_pt = _save_run(tmp_path / "run", model_dir, _tiny_backbone(tokenizer.vocab_size))
    shutil.rmtree(model_dir)
    s = TextEvalSettings(eval_max_len=8, precision="fp32", device="cpu")
    result = evaluate(s, model_pt, {"wordsim353": wordsim}, tmp_path / "eval.json")
    assert (
        np.isfinite(result["sts_wordsim353"])
        and json.loads((tmp_path / "eval.json").read_text())["sts_avg"] == result["sts_avg"]
    )
