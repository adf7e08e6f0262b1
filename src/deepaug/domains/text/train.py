"""Unsupervised SimCSE with Deep Augmentation at one transformer layer (and its supervised counterpart).

``objective="supervised"``: fine-tuning on a similarity task's training pairs (STS-B train in the
paper config), with one of two heads (``sup_head``):

* ``cosine``: the cosine similarity of the two sentence vectors regressed on the gold score (SBERT's STS
  loss), with this module's step-based loop (AdamW, linear decay, a dev check every ``eval_every`` steps);
* ``relatedness``: the author's supervised runs (bruel-gabrielsson/SimCSE ``simcse/trainers.py``
  ``train_supervised`` L121-377 -> SentEval ``STSBenchmarkFulltrain`` (``SentEval/senteval/sts.py``
  L369-477) -> ``RelatednessPytorchFull`` (``SentEval/senteval/tools/relatedness.py`` L143-310)): SentEval's
  relatedness head (Linear(2 x hidden -> 5) + softmax on ``[|u - v|, u * v]``) on the bare [CLS] vectors,
  trained with the whole encoder end to end against SentEval's 5-bin label encoding (MSE), Adam at a
  constant learning rate, rounds of ``sup_eval_epochs`` epochs, each followed by a dev check (Spearman of
  ``sum(probs * [1..5])``), early stopping with SentEval's rule (``sup_patience``); see
  :func:`_pretrain_relatedness`.

Each sentence appears twice in the batch (``cat([batch, batch])``): the encoder's own dropout makes
the two views, as in SimCSE; Deep Augmentation transforms each of the 2N rows with probability p at
the targeted layer. AdamW with linear decay; the dev task is scored every ``eval_every`` steps and
the best weights are kept; checkpoints (with every RNG state) make a killed run resume exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from deepaug.engine import training as T
from deepaug.domains.text.evaluate import relatedness_spearman, spearman_on_task
from deepaug.workflow.io import save_torch, write_jsonl
from deepaug.errors import DataValidationError, NonFiniteError
from deepaug.core.layers import LayerIndexError, describe_layers, target_module
from deepaug.core.losses import simcse_loss
from deepaug.domains.text.models import RelatednessHead, build_text_model, encode_labels, encoder_bundle
from deepaug.engine.provenance import provenance
from deepaug.core.settings import RunSettings
from deepaug.domains.text.data import load_corpus, load_task

@dataclass
class TextPretrainSettings(RunSettings):
    rate: float = 0.125
    # The author's text PCA (layer sweeps scripts/PCA/run_uni_hyper_REG.sh, ..._REGTrain.sh: PCA_size=-1 with
    # PCA_type left at "normal"): remove the last (6th) of the components torch.pca_lowrank computes with
    # q=None (min(6, rows, features)), each sentence's whole activation (tokens x hidden) flattened to one row
    # (bruel-gabrielsson/SimCSE simcse/models.py L85-129). The op's pca_rank is 6 (DeepAugment's default).
    # pca_over="tokens" (PCA_type "per_token") and pca_component=1 (PCA_size=1) stay available.
    pca_component: int = -1
    pca_over: str = "rows"
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
    # objective="supervised": the head. "cosine" (cosine similarity regressed on the score) or "relatedness"
    # (SentEval's relatedness head, as the author ran it; uses lr, batch_size, epochs as given, with Adam at a
    # constant lr, no weight decay; the author: lr 1e-4, batch 64, at most 100 epochs, no clipping).
    sup_head: str = "cosine"
    sup_eval_epochs: int = 2  # relatedness: epochs per round, a dev check after each (relatedness.py L223)
    sup_patience: int = 3  # relatedness: SentEval's early stop: non-improving dev checks tolerated (L229-236)

    def validate(self) -> None:
        super().validate()
        if self.sup_head not in SUP_HEADS:
            raise ValueError(f"sup_head must be one of {SUP_HEADS} (the supervised counterpart's head), "
                             f"got {self.sup_head!r}")
        if isinstance(self.sup_eval_epochs, bool) or not isinstance(self.sup_eval_epochs, int) or self.sup_eval_epochs < 1:
            raise ValueError(f"sup_eval_epochs must be a whole number >= 1, got {self.sup_eval_epochs!r}")
        if isinstance(self.sup_patience, bool) or not isinstance(self.sup_patience, int) or self.sup_patience < 0:
            raise ValueError(f"sup_patience must be a whole number >= 0, got {self.sup_patience!r}")


SUP_HEADS = ("cosine", "relatedness")


def _tokenize(tokenizer, sentences, max_len, device):
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


def _attach_augment(s: TextPretrainSettings, model, model_dir, head_input: bool = False):
    """The run's DeepAugment hooked on layer ``s.layer`` (None for the baseline).

    ``head_input``: the sentence vector is the bare [CLS] (the relatedness head's input), so the top index
    L+1, SimCSE's MLP pooler in the contrastive runs, targets that vector instead. The author's supervised
    runs never ran the MLP (``sent_emb=True`` with ``mlp_only_train``), so his layer-13 transform there was
    a no-op (``simcse/models.py`` L352-361); here L+1 transforms the vector fed to the head."""
    if s.method == "none":
        return None
    try:
        target = target_module(model, s.layer)
    except LayerIndexError as exc:
        raise LayerIndexError(f"{exc} ({model_dir} has {model.num_blocks} blocks)") from None
    where = f"layer {s.layer} of {describe_layers(model)}"
    if head_input and s.layer == model.num_blocks + 1:
        target = model.cls_out
        where = f"layer {s.layer} (the [CLS] vector fed to the relatedness head; no MLP pooler in this objective)"
    aug = s.build_augment()
    aug.attach(target)
    T.log(f"{s.run}: Deep Augmentation {aug.extra_repr()} at {where}")
    return aug


def pretrain(s: TextPretrainSettings, model_dir: str | Path, corpus: str | Path, dev_task: str | Path,
             out_dir: str | Path, ckpt_dir: str | Path) -> dict:
    from transformers import AutoTokenizer

    ckpt = T.open_run(s, ckpt_dir, {"model": model_dir, "corpus": corpus, "dev_task": dev_task})
    if (done := ckpt.reuse(out_dir, s.reuse_finished)) is not None:
        return done
    if s.objective == "supervised" and s.sup_head == "relatedness":
        return _pretrain_relatedness(s, model_dir, corpus, dev_task, out_dir, ckpt)
    t_start = time.time()
    device = T.prepare(s)
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

    aug = _attach_augment(s, model, model_dir)

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

    step, best, history, train_time = 0, float("-inf"), [], 0.0
    state = ckpt.load()
    if state is not None:
        T.restore(state, model=model, optimizer=optimizer, scaler=scaler)
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
            ckpt.save(T.snapshot(model=model, optimizer=optimizer, scaler=scaler, step=step, best=best, history=history,
                                 train_time_s=train_time, rng=T.rng_states(),
                                 aug_rng=aug.rng_state() if aug is not None else {}), step)
            write_jsonl(out_dir / "train_metrics.jsonl", history)
    bar.close()

    best_state = ckpt.require_best()  # only this run's best.pt (same fingerprint) is ever shipped
    T.check_finite_state(best_state["model"], s.run, "the dev-best weights")
    save_torch({"encoder": best_state["model"], "source": str(model_dir), "encoder_bundle": bundle, "step": best_state["step"],
                "dev_spearman": best_state["dev_spearman"]}, out_dir / "model.pt")
    write_jsonl(out_dir / "train_metrics.jsonl", history)
    prov = provenance(ckpt.settings, device, time.time() - t_start, {
        "train_time_s": round(train_time, 3), "final_loss": history[-1]["loss"], "steps": step,
        "best_step": best_state["step"], "dev_spearman": best_state["dev_spearman"],
        "n_layers": model.num_blocks + 2, "model_dir": str(model_dir), "corpus": str(corpus),
        "dev_task": dev_name, "fingerprint": ckpt.fingerprint, "segments": ckpt.all_segments(),
    })
    return ckpt.complete(out_dir, prov)


def _pretrain_relatedness(s: TextPretrainSettings, model_dir: str | Path, train_task: str | Path,
                          dev_task: str | Path, out_dir: str | Path, ckpt: T.Checkpointer) -> dict:
    """The supervised counterpart as the author ran it: SentEval's relatedness head, trained end to end.

    Follows bruel-gabrielsson/SimCSE ``SentEval/senteval/tools/relatedness.py`` RelatednessPytorchFull:

    * the encoder's bare [CLS] vectors u, v (``sent_emb=True``, no MLP: ``simcse/trainers.py`` L343-348,
      ``simcse/models.py`` L351-353); each side of a batch is tokenized (padded to its longest sentence)
      and encoded by its own forward pass (L269-270), so Deep Augmentation draws its rows, and PCA its
      basis, per side, as there;
    * ``probs = softmax(Linear([|u - v|, u * v]))`` (L169-172, L273-274) against SentEval's 5-bin encoding
      of the gold score (``sts.py`` L427, ``sick.py`` L122-133), MSE averaged over the batch's pairs x 5
      classes (L173-179: ``size_average = False`` is set after ``nn.MSELoss()`` is built, and the loss
      reads only the reduction fixed at construction, "mean");
    * one Adam over the head and the whole encoder (L184: lr 1e-4, no weight decay, no schedule, no
      clipping: set ``max_grad_norm`` 0 for the author's), each epoch a fresh permutation in batches of
      ``batch_size`` with the last, smaller batch kept (L254-261);
    * rounds of ``sup_eval_epochs`` epochs (L223: 2), each followed by a dev check, the Spearman of
      ``sum(probs * [1..5])`` with the dev scores (L224-227; constant predictions count as 0 there and
      here), and SentEval's early stop (L229-236): an improving check keeps the weights, a non-improving
      one stops training once ``sup_patience`` non-improving checks came before it (the count is never
      reset), so training ends at the (patience + 1)-th check without improvement; at most ``epochs``.

    One deliberate difference: the author keeps the dev-best *head* only (``bestmodel =
    copy.deepcopy(self.model)``, L232, the backbone is not copied) and predicts the test set with it on top
    of the *last* encoder (L237-241); here the dev-best encoder and head are kept together (model.pt), the
    checkpoint the dev score was measured on.
    """
    import math

    import torch.nn.functional as F
    from transformers import AutoTokenizer

    t_start = time.time()
    device = T.prepare(s)
    pairs = load_task(train_task)
    first, second = pairs["sentence1"].tolist(), pairs["sentence2"].tolist()
    low, high = float(pairs["score"].min()), float(pairs["score"].max())
    if low < 0 or high > 5:  # a score above 5 would get an all-zero target (no class 6..), silently
        raise DataValidationError(
            f"run {s.run}: the relatedness head's 5-bin label encoding (classes 1-5, SentEval) needs gold scores in "
            f"[0, 5], but {train_task} has scores in [{low:g}, {high:g}]; train this task with sup_head cosine")
    labels = encode_labels(pairs["score"].to_numpy())  # (pairs, 5): SentEval's targets
    dev = load_task(dev_task)
    dev_name = Path(dev_task).name.removesuffix(".parquet")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = build_text_model(str(model_dir)).to(device)
    head = RelatednessHead(model.encoder.config.hidden_size).to(device)
    bundle = encoder_bundle(model_dir)
    aug = _attach_augment(s, model, model_dir, head_input=True)

    n = len(first)
    steps_per_epoch = math.ceil(n / s.batch_size)
    total = steps_per_epoch * s.epochs if s.max_steps is None else min(steps_per_epoch * s.epochs, s.max_steps)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay,
                                 **({"fused": True} if device.type == "cuda" else {}))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and s.precision == "fp16")

    epoch, step, best, bad_checks, stopped, history, train_time = 0, 0, float("-inf"), 0, False, [], 0.0
    state = ckpt.load()
    if state is not None:
        T.restore(state, model=model, head=head, optimizer=optimizer, scaler=scaler)
        epoch, step, best, bad_checks = state["epoch"], state["step"], state["best"], state["bad_checks"]
        stopped, history, train_time = state["stopped"], state["history"], state["train_time_s"]
        T.restore_rng_states(state["rng"])
        if aug is not None:
            aug.set_rng_state(state["aug_rng"])
        T.log(f"{s.run}: resuming from {ckpt.path} after epoch {epoch} (step {step})")

    def evaluate_dev() -> float:
        try:
            return relatedness_spearman(model, head, tokenizer, dev, s.eval_max_len, device, s.precision,
                                        name=dev_name, constant_is_zero=True)
        except NonFiniteError as exc:
            raise NonFiniteError(f"run {s.run}, dev check after epoch {epoch}: {exc}") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=step, desc=s.run, mininterval=10)
    loss_sum = torch.zeros((), device=device)
    t0 = time.time()
    while not stopped and epoch < s.epochs and step < total:
        model.train()
        head.train()
        round_end, round_steps = min(epoch + s.sup_eval_epochs, s.epochs), 0
        while epoch < round_end and step < total:
            g = torch.Generator().manual_seed(T.epoch_seed(s.seed, epoch, stream=2))
            order = torch.randperm(n, generator=g).tolist()
            for pos in range(0, n, s.batch_size):
                if step >= total:
                    break
                idx = order[pos : pos + s.batch_size]
                side_a = _tokenize(tokenizer, [first[i] for i in idx], s.max_len, device)
                side_b = _tokenize(tokenizer, [second[i] for i in idx], s.max_len, device)
                with T.autocast_context(device, s.precision):
                    u = model(**side_a, use_mlp=False)
                    v = model(**side_b, use_mlp=False)
                loss = F.mse_loss(head(u.float(), v.float()), labels[idx].to(device))
                T.optimizer_step(optimizer, scaler, loss, s.lr, s.max_grad_norm)
                loss_sum += loss.detach()
                step += 1
                round_steps += 1
                bar.update(1)
            epoch += 1
        mean_loss = T.check_finite(loss_sum, s.run, step) / max(round_steps, 1)
        loss_sum.zero_()
        dev_score = 100 * evaluate_dev()
        train_time += time.time() - t0
        t0 = time.time()
        if dev_score > best:  # SentEval's early stop (relatedness.py L229-236)
            best = dev_score
            ckpt.save_best({"model": model.encoder.state_dict(), "head": head.state_dict(), "step": step,
                            "epoch": epoch, "dev_spearman": dev_score}, step)
        else:
            stopped = bad_checks >= s.sup_patience
            bad_checks += 1
        history.append({"epoch": epoch, "step": step, "loss": mean_loss, "lr": s.lr, "dev_spearman": dev_score,
                        "bad_checks": bad_checks})
        ckpt.save(T.snapshot(model=model, head=head, optimizer=optimizer, scaler=scaler, epoch=epoch, step=step,
                             best=best, bad_checks=bad_checks, stopped=stopped, history=history,
                             train_time_s=train_time, rng=T.rng_states(),
                             aug_rng=aug.rng_state() if aug is not None else {}), step)
        write_jsonl(out_dir / "train_metrics.jsonl", history)
    bar.close()
    if stopped:
        T.log(f"{s.run}: early stop after epoch {epoch}: {bad_checks} dev checks without improvement "
              f"(patience {s.sup_patience}); best dev Spearman {best:.2f}")

    best_state = ckpt.require_best()
    T.check_finite_state(best_state["model"], s.run, "the dev-best weights")
    T.check_finite_state(best_state["head"], s.run, "the dev-best relatedness head")
    save_torch({"encoder": best_state["model"], "relatedness_head": best_state["head"], "sup_head": "relatedness",
                "source": str(model_dir), "encoder_bundle": bundle, "step": best_state["step"],
                "epoch": best_state["epoch"], "dev_spearman": best_state["dev_spearman"]}, out_dir / "model.pt")
    write_jsonl(out_dir / "train_metrics.jsonl", history)
    prov = provenance(ckpt.settings, device, time.time() - t_start, {
        "train_time_s": round(train_time, 3), "final_loss": history[-1]["loss"], "steps": step, "epochs": epoch,
        "stopped_early": stopped, "best_step": best_state["step"], "best_epoch": best_state["epoch"],
        "dev_spearman": best_state["dev_spearman"], "sup_head": "relatedness",
        "n_layers": model.num_blocks + 2, "model_dir": str(model_dir), "corpus": str(train_task),
        "dev_task": dev_name, "fingerprint": ckpt.fingerprint, "segments": ckpt.all_segments(),
    })
    return ckpt.complete(out_dir, prov)
