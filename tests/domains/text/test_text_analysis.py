"""The text domain's analysis, through the shared entry point: CKA over embeddings, blocks and the pooled
vector, positives = the task's pairs scored at least ``min_score`` (the domain's own option)."""

import numpy as np
import pandas as pd
import pytest


def test_analysis_of_a_text_run_uses_the_pairs_above_min_score(tmp_path, tiny_model_dir, text_files):
    from deepaug.analysis.analyze import analyze
    from deepaug.domains.text.train import TextPretrainSettings, pretrain

    corpus, dev = text_files
    s = TextPretrainSettings(
        batch_size=8,
        max_steps=1,
        eval_every=1,
        eval_max_len=8,
        max_len=12,
        precision="fp32",
        device="cpu",
        method="dropout",
        layer=1,
    )
    pretrain(s, tiny_model_dir, corpus, dev, tmp_path / "run", tmp_path / "ckpt")
    task = pd.read_parquet(dev)
    for min_score in (7.0, 8.5):
        scalars = analyze(
            "text",
            tmp_path / "run" / "model.pt",
            dev,
            tmp_path / "a.json",
            tmp_path / "cka.npz",
            n_samples=40,
            device_name="cpu",
            layer=1,
            options={"min_score": min_score},
        )
        assert scalars["alignment_pairs"] == int((task["score"] >= min_score).sum())
    with np.load(tmp_path / "cka.npz") as z:
        assert z["linear"].shape == (4, 4)  # 2-block BERT: embeddings, 2 blocks, the pooled vector
    assert scalars["analysis_samples"] == 40 and np.isfinite(scalars["cka_mean_rbf"])


def test_the_authors_alignment_uniformity_and_token_row_cka(tmp_path, tiny_model_dir, text_files):
    """analysis.text_alignment_uniformity: author takes pairs scored *above* min_score and every sentence of the
    pairs for uniformity (un-squared distances); text_cka_rows: token_rows has one CKA row per real token."""
    import torch

    from deepaug.analysis.analyze import analyze
    from deepaug.analysis.similarity import uniformity
    from deepaug.domains.text.evaluate import encode, load_trained
    from deepaug.domains.text.train import TextPretrainSettings, pretrain

    corpus, dev = text_files
    s = TextPretrainSettings(
        batch_size=8, max_steps=1, eval_every=1, eval_max_len=8, max_len=12, precision="fp32", device="cpu"
    )
    pretrain(s, tiny_model_dir, corpus, dev, tmp_path / "run", tmp_path / "ckpt")
    task = pd.read_parquet(dev)
    threshold = float(task["score"].median())
    model_pt = tmp_path / "run" / "model.pt"

    def run(**options):
        out = analyze("text", model_pt, dev, tmp_path / "a.json", tmp_path / "cka.npz", 12, "cpu", options=options)
        with np.load(tmp_path / "cka.npz") as z:
            return out, z["linear"].copy()

    ours, means_cka = run(min_score=threshold)
    theirs, _ = run(min_score=threshold, alignment_uniformity="author")
    assert ours["alignment_pairs"] == int((task["score"] >= threshold).sum())
    assert theirs["alignment_pairs"] == int((task["score"] > threshold).sum()) < ours["alignment_pairs"]
    assert theirs["uniformity_rows"] == 2 * len(task) and ours["uniformity_rows"] == ours["analysis_samples"] == 12
    cpu = torch.device("cpu")
    model, tokenizer = load_trained(model_pt, cpu)
    every = encode(model, tokenizer, list(task["sentence1"]) + list(task["sentence2"]), 128, cpu)
    assert theirs["uniformity"] == pytest.approx(uniformity(every, squared=False), abs=1e-6)

    rows, rows_cka = run(cka_rows="token_rows")
    sentences = list(dict.fromkeys(list(task["sentence1"]) + list(task["sentence2"])))[:12]
    tokens = tokenizer(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")
    assert rows["cka_rows_used"] == int(tokens["attention_mask"].sum()) > ours["cka_rows_used"] == 12
    assert rows_cka.shape == means_cka.shape and np.allclose(np.diag(rows_cka), 1.0)
    assert not np.allclose(rows_cka, means_cka, atol=1e-3)
    with pytest.raises(ValueError, match="cka_rows one of .* .got .tokens."):
        run(cka_rows="tokens")
    assert torch.isfinite(torch.tensor(rows_cka)).all()


def test_the_analysis_variants_reach_the_command_only_when_asked_for():
    from deepaug.domains import flags, get

    text = get("text")
    default = flags(text.analysis_flags(None, {"analysis": {}}))
    assert default == "--n-samples 1000 --min-score 4.0"  # the commands of every earlier run
    asked = {"analysis": {"text_alignment_uniformity": "author", "text_cka_rows": "token_rows", "text_samples": 512}}
    assert flags(text.analysis_flags(None, asked)) == (
        "--n-samples 512 --min-score 4.0 --alignment-uniformity author --cka-rows token_rows"
    )
