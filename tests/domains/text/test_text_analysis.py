"""The text domain's analysis, through the shared entry point: CKA over embeddings, blocks and the pooled
vector, positives = the task's pairs scored at least ``min_score`` (the domain's own option)."""

import numpy as np
import pandas as pd


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
