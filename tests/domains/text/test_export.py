"""A trained text encoder exported as a sentence-transformers model gives the evaluator's embeddings."""

from __future__ import annotations

import pytest
import torch

from deepaug.cli import main
from deepaug.domains.text.evaluate import encode, load_trained
from deepaug.domains.text.train import TextPretrainSettings, pretrain

SENTENCES = [
    "a man is playing a guitar",
    "the stock market fell sharply on monday after the announcement",
    "two dogs run through a field",
    "",
    "short",
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model_dir, text_files):
    corpus, dev = text_files
    d = tmp_path_factory.mktemp("export_run")
    s = TextPretrainSettings(batch_size=8, max_steps=2, eval_every=2, eval_max_len=8, precision="fp32", device="cpu")
    pretrain(s, tiny_model_dir, corpus, dev, d / "run", d / "ckpt")
    return d / "run"


def test_sentence_transformers_round_trip_gives_the_evaluators_embeddings(trained_run, tmp_path, capsys):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    out = tmp_path / "st"
    assert main(["export-sentence-transformers", str(trained_run), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out

    model, tokenizer = load_trained(trained_run / "model.pt", torch.device("cpu"))
    ours = encode(model, tokenizer, SENTENCES, 512, torch.device("cpu"))
    st = sentence_transformers.SentenceTransformer(str(out), device="cpu")
    theirs = st.encode(SENTENCES, convert_to_tensor=True, batch_size=2).cpu()
    assert theirs.shape == ours.shape == (len(SENTENCES), 32)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-4)
    # the MLP pooler is not part of the embedding (it would change every vector)
    with torch.no_grad():
        assert not torch.allclose(model.mlp(ours), theirs, atol=1e-3)

    # the same folder through save_pretrained's loader: [CLS] of the last hidden state
    from transformers import AutoModel, AutoTokenizer

    hf, hf_tok = AutoModel.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        batch = hf_tok(SENTENCES, padding=True, truncation=True, max_length=512, return_tensors="pt")
        cls = hf(**batch).last_hidden_state[:, 0]
    torch.testing.assert_close(cls, ours, atol=1e-5, rtol=1e-4)


def test_a_trained_model_differs_from_its_start(trained_run, tiny_model_dir, tmp_path):
    # the round trip would pass trivially if the export wrote the untrained encoder: it must not
    pytest.importorskip("sentence_transformers")
    from deepaug.domains.text.export import export_pretrained

    out = export_pretrained(trained_run, tmp_path / "hf")
    from transformers import AutoModel

    trained, start = AutoModel.from_pretrained(out), AutoModel.from_pretrained(tiny_model_dir)
    w = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(trained.state_dict()[w], start.state_dict()[w])


def test_export_refuses_a_folder_without_a_model_and_a_used_output(trained_run, tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    assert main(["export-sentence-transformers", str(tmp_path), str(tmp_path / "x")]) == 1
    assert "no model.pt there" in capsys.readouterr().err
    used = tmp_path / "used"
    used.mkdir()
    (used / "f").write_text("x")
    assert main(["export-sentence-transformers", str(trained_run), str(used)]) == 1
    assert "is not empty" in capsys.readouterr().err
