"""Deep Augmentation in a Hugging Face encoder: dropout on one transformer block's output during unsupervised
SimCSE (the same sentence twice, in-batch negatives).

    python examples/hf_encoder.py --model bert-base-uncased --block 6 --steps 5

Needs torch, transformers and deepaug (`pip install deepaug transformers`); `--model` is a hub id or a local
folder (offline: any folder saved with save_pretrained, e.g. the all-MiniLM-L6-v2 of the demo).
"""

from __future__ import annotations

import argparse
import math

import torch
from transformers import AutoModel, AutoTokenizer

from deepaug import DeepAugment, rank_layers, simcse_loss

SENTENCES = [
    "A man is playing a guitar.",
    "Two dogs run through a snowy field.",
    "The stock market fell sharply on Monday.",
    "She is reading a book in the garden.",
    "A child rides a bicycle down the street.",
    "The chef prepares a meal in the kitchen.",
    "Heavy rain flooded the old bridge.",
    "The orchestra played to a full hall.",
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bert-base-uncased", help="hub id or local folder of a BERT-like encoder")
    ap.add_argument("--block", type=int, default=None, help="the block whose output is transformed (default: middle)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    encoder = AutoModel.from_pretrained(a.model).to(a.device)
    blocks = encoder.encoder.layer  # BERT, RoBERTa, MiniLM, ELECTRA
    block = len(blocks) // 2 if a.block is None else a.block

    def tokens(sentences):
        return tokenizer(sentences, padding=True, truncation=True, max_length=32, return_tensors="pt")

    # Which block? The CKA-based ranking of every block's output (token means), on the sentences
    names = [f"encoder.layer.{i}" for i in range(len(blocks))]
    ranking = rank_layers(encoder, [tokens(SENTENCES)], names, n_samples=len(SENTENCES))
    print("ranked layers:\n" + str(ranking))

    # Dropout 0.1 on each row (one sentence of one view) with probability 0.5, gradient stopped
    aug = DeepAugment(kind="dropout", rate=0.1, p=0.5, stop_gradient=True, seed=0)
    handle = aug.attach(blocks[block])  # a block returns a tuple or a tensor: the hidden states are transformed
    opt = torch.optim.AdamW(encoder.parameters(), lr=3e-5)
    encoder.train()  # the encoder's own dropout makes the two views differ (SimCSE)
    batch = {k: v.to(a.device) for k, v in tokens(SENTENCES + SENTENCES).items()}  # view 1, then view 2
    for step in range(a.steps):
        cls = encoder(**batch).last_hidden_state[:, 0]
        loss = simcse_loss(cls, temperature=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step} loss {loss.item():.4f} (block {block}, rows transformed: {int(aug.last_mask.sum())})")
        assert math.isfinite(loss.item())
    handle.remove()
    encoder.eval()
    with torch.no_grad():
        emb = encoder(**{k: v.to(a.device) for k, v in tokens(SENTENCES[:2]).items()}).last_hidden_state[:, 0]
    print(f"done: cosine of the first two sentences {torch.cosine_similarity(emb[0], emb[1], dim=0).item():.3f}")


if __name__ == "__main__":
    main()
