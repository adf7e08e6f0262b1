"""Unsupervised SimCSE with Deep Augmentation at one transformer layer (and its supervised counterpart).

``objective="supervised"``: fine-tuning on a similarity task's training pairs (STS-B train in the
paper config), the cosine similarity of the two sentence vectors regressed on the gold score.

Each sentence appears twice in the batch (``cat([batch, batch])``): the encoder's own dropout makes
the two views, as in SimCSE; Deep Augmentation transforms each of the 2N rows with probability p at
the targeted layer. AdamW with linear decay; the dev task is scored every ``eval_every`` steps and
the best weights are kept; checkpoints (with every RNG state) make a killed run resume exactly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from deepaug.engine import training as T
from deepaug.domains.text.evaluate import spearman_on_task
from deepaug.workflow.io import save_torch, write_json, write_jsonl
from deepaug.errors import CheckpointMismatchError, NonFiniteError
from deepaug.core.layers import LayerIndexError, describe_layers, target_module
from deepaug.core.losses import simcse_loss
from deepaug.domains.text.models import build_text_model, encoder_bundle
from deepaug.engine.provenance import provenance
from deepaug.core.settings import RunSettings
from deepaug.domains.text.data import load_corpus, load_task

@dataclass
class TextPretrainSettings(RunSettings):
    rate: float = 0.125
    pca_over: str = "tokens"
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 64
    max_len: int = 32
    lr: float = 3e-5
    weight_decay: float = 0.0
    temperature: float = 0.05
    eval_every: int = 125  # steps between dev checks (and checkpoints)
    eval_max_len: int = 512
    # SimCSE trains with the Hugging Face Trainer, which clips the gradient norm at
    # TrainingArguments.max_grad_norm = 1.0 (princeton-nlp/SimCSE simcse/trainers.py L473-488).
    max_grad_norm: float = 1.0


def _tokenize(tokenizer, sentences, max_len, device):
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


def pretrain(s: TextPretrainSettings, model_dir: str | Path, corpus: str | Path, dev_task: str | Path,
             out_dir: str | Path, ckpt_dir: str | Path) -> dict:
    from transformers import AutoTokenizer

    s.validate()
    t_start = time.time()
    device = T.resolve_device(s.device)
    T.set_deterministic(s.deterministic)
    T.seed_everything(s.seed)
    supervised = s.objective == "supervised"
    if supervised:  # the "corpus" is a similarity task: pairs with gold scores
        pairs = load_task(corpus)
        first, second = pairs["sentence1"].tolist(), pairs["sentence2"].tolist()
        targets = torch.tensor((pairs["score"] / pairs["score"].max()).to_numpy(), dtype=torch.float32)
        sentences = first
    else:
        sentences = load_corpus(corpus)
    dev = load_task(dev_task)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = build_text_model(str(model_dir)).to(device)
    bundle = encoder_bundle(model_dir)  # config + tokenizer files: model.pt loads from any directory

    aug = None
    if s.method != "none":
        try:
            target = target_module(model, s.layer)
        except LayerIndexError as exc:
            raise LayerIndexError(f"{exc} ({model_dir} has {model.num_blocks} blocks)") from None
        aug = s.build_augment()
        aug.attach(target)
        T.log(f"{s.run}: Deep Augmentation {aug.extra_repr()} at layer {s.layer} of {describe_layers(model)}")

    steps_per_epoch = len(sentences) // s.batch_size
    total = steps_per_epoch * s.epochs
    if s.max_steps is not None:
        total = min(total, s.max_steps)
    if total < 1:
        raise ValueError(f"{corpus} has {len(sentences)} rows: fewer than one batch of {s.batch_size}")
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)], "weight_decay": s.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=s.lr, **({"fused": True} if device.type == "cuda" else {}))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and s.precision == "fp16")

    settings = asdict(s)
    inputs = {"model": model_dir, "corpus": corpus, "dev_task": dev_task}
    ckpt = T.Checkpointer(ckpt_dir, settings, s.run, inputs, s.keep_checkpoints).lock()
    step, best, history, train_time = 0, float("-inf"), [], 0.0
    state = ckpt.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, best, history, train_time = state["step"], state["best"], state["history"], state["train_time_s"]
        T.restore_rng_states(state["rng"])
        if aug is not None:
            aug.set_rng_state(state["aug_rng"])
        T.log(f"{s.run}: resuming from {ckpt.path} at step {step}")

    dev_name = Path(dev_task).name.removesuffix(".parquet")

    def evaluate_dev() -> float:
        """STS dev Spearman; a NaN/constant encoder fails here, naming the run and the task, rather
        than never writing best.pt (``NaN > best`` is false) and failing after all the training."""
        try:
            return spearman_on_task(model, tokenizer, dev, s.eval_max_len, device, s.precision, name=dev_name)
        except NonFiniteError as exc:
            raise NonFiniteError(f"run {s.run}, dev check at step {step}: {exc}") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=step, desc=s.run, mininterval=10)
    model.train()
    loss_sum = torch.zeros((), device=device)
    t0 = time.time()
    while step < total:
        epoch, pos = divmod(step, steps_per_epoch)
        g = torch.Generator().manual_seed(T.epoch_seed(s.seed, epoch, stream=2))
        order = torch.randperm(len(sentences), generator=g)
        idx = order[pos * s.batch_size : (pos + 1) * s.batch_size].tolist()
        if supervised:  # rows: first sentences, then second sentences of the batch's pairs
            rows = _tokenize(tokenizer, [first[i] for i in idx] + [second[i] for i in idx], s.max_len, device)
        else:  # each sentence twice: the encoder's dropout makes the two views
            batch = _tokenize(tokenizer, [sentences[i] for i in idx], s.max_len, device)
            rows = {k: torch.cat([v, v]) for k, v in batch.items()}
        lr = s.lr * (1 - step / total)  # linear decay to 0, no warm-up (SimCSE)
        with T.autocast_context(device, s.precision):
            z = model(**rows)
        if supervised:  # cosine similarity regressed on the gold score scaled to [0, 1] (SBERT's STS loss)
            a, b = z.float().chunk(2)
            loss = torch.nn.functional.mse_loss(torch.cosine_similarity(a, b), targets[idx].to(device))
        else:
            loss = simcse_loss(z, s.temperature)
        T.optimizer_step(optimizer, scaler, loss, lr, s.max_grad_norm)
        loss_sum += loss.detach()
        step += 1
        bar.update(1)
        if step % s.eval_every == 0 or step == total:
            n_steps = s.eval_every if step % s.eval_every == 0 else step % s.eval_every
            mean_loss = T.check_finite(loss_sum, s.run, step) / n_steps
            loss_sum.zero_()
            dev_score = 100 * evaluate_dev()
            model.train()
            train_time += time.time() - t0
            t0 = time.time()
            history.append({"step": step, "loss": mean_loss, "lr": lr, "dev_spearman": dev_score})
            if dev_score > best:
                best = dev_score
                ckpt.save_best({"model": model.encoder.state_dict(), "step": step, "dev_spearman": dev_score}, step)
            ckpt.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                       "step": step, "best": best, "history": history, "train_time_s": train_time,
                       "rng": T.rng_states(), "aug_rng": aug.rng_state() if aug is not None else {}}, step)
            write_jsonl(out_dir / "train_metrics.jsonl", history)
    bar.close()

    best_state = ckpt.load_best()  # only this run's best.pt (same fingerprint) is ever shipped
    if best_state is None:
        raise CheckpointMismatchError(
            f"run {s.run}: the dev-best weights {ckpt.best_path} are missing or belong to another run; "
            f"re-run this job to train it again")
    T.check_finite_state(best_state["model"], s.run, "the dev-best weights")
    save_torch({"encoder": best_state["model"], "source": str(model_dir), "encoder_bundle": bundle, "step": best_state["step"],
                "dev_spearman": best_state["dev_spearman"]}, out_dir / "model.pt")
    write_jsonl(out_dir / "train_metrics.jsonl", history)
    prov = provenance(settings, device, time.time() - t_start, {
        "train_time_s": round(train_time, 3), "final_loss": history[-1]["loss"], "steps": step,
        "best_step": best_state["step"], "dev_spearman": best_state["dev_spearman"],
        "n_layers": model.num_blocks + 2, "model_dir": str(model_dir), "corpus": str(corpus),
        "dev_task": dev_name, "fingerprint": ckpt.fingerprint, "segments": ckpt.all_segments(),
    })
    write_json(out_dir / "provenance.json", prov)
    ckpt.finish(model.state_dict())
    ckpt.unlock()
    return prov
