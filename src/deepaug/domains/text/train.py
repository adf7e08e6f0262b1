"""Unsupervised SimCSE with Deep Augmentation at one transformer layer, or several at once (and its supervised
counterpart).

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

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from deepaug.core.layers import describe_layers, target_module
from deepaug.core.losses import simcse_loss
from deepaug.core.schema_defaults import domain_schema, schema_defaults
from deepaug.core.settings import RunSettings
from deepaug.domains.text.data import load_corpus, load_task
from deepaug.domains.text.evaluate import relatedness_spearman, spearman_on_task
from deepaug.domains.text.models import (
    RelatednessHead,
    build_text_model,
    dropout_rates,
    encode_labels,
    encoder_bundle,
    keep_standard_dropout_at,
)
from deepaug.engine import training as T
from deepaug.engine.loop import PeriodEnd, Progress, Task, train
from deepaug.errors import DataValidationError, LayerIndexError

# The defaults of these settings, from the config schema (each written once there; deepaug.core.schema_defaults)
_SETTINGS = schema_defaults(domain_schema(__file__), "augment", "model", "train")
STANDARD_DROPOUT = ("all", "none", "target_layer")  # or a layer index (schema.yaml model.standard_dropout)


@dataclass
class TextPretrainSettings(RunSettings):
    rate: float = _SETTINGS["rate"]  # text's own default (schema.yaml augment_own): the authors' 0.125
    # The author's text PCA (layer sweeps scripts/PCA/run_uni_hyper_REG.sh, ..._REGTrain.sh: PCA_size=-1 with
    # PCA_type left at "normal"): remove the last (6th) of the components torch.pca_lowrank computes with
    # q=None (min(6, rows, features)), each sentence's whole activation (tokens x hidden) flattened to one row
    # (bruel-gabrielsson/SimCSE simcse/models.py L85-129). The op's pca_rank is 6 (DeepAugment's default).
    # pca_over="tokens" (PCA_type "per_token") and pca_component=1 (PCA_size=1) stay available.
    pca_component: int = _SETTINGS["pca_component"]  # text's own default (schema.yaml augment_own): -1
    pca_over: str = _SETTINGS["pca_over"]
    epochs: int = _SETTINGS["epochs"]
    max_steps: int | None = _SETTINGS["max_steps"]
    batch_size: int = _SETTINGS["batch_size"]
    max_len: int = _SETTINGS["max_len"]
    lr: float = _SETTINGS["lr"]
    weight_decay: float = _SETTINGS["weight_decay"]
    temperature: float = _SETTINGS["temperature"]
    eval_every: int = _SETTINGS["eval_every"]  # steps between dev checks (and checkpoints)
    eval_max_len: int = _SETTINGS["eval_max_len"]
    # SimCSE trains with the Hugging Face Trainer, which clips the gradient norm at
    # TrainingArguments.max_grad_norm = 1.0 (princeton-nlp/SimCSE simcse/trainers.py L473-488).
    max_grad_norm: float = _SETTINGS["max_grad_norm"]
    # objective="supervised": the head. "cosine" (cosine similarity regressed on the score) or "relatedness"
    # (SentEval's relatedness head, as the author ran it; uses lr, batch_size, epochs as given, with Adam at a
    # constant lr, no weight decay; the author: lr 1e-4, batch 64, at most 100 epochs, no clipping).
    sup_head: str = _SETTINGS["sup_head"]
    sup_eval_epochs: int = _SETTINGS[
        "sup_eval_epochs"
    ]  # relatedness: epochs per round, a dev check after each (relatedness.py L223)
    sup_patience: int = _SETTINGS[
        "sup_patience"
    ]  # relatedness: SentEval's early stop: non-improving dev checks tolerated (L229-236)
    precision: str = _SETTINGS["precision"]  # declared in RunSettings; the default is this domain's
    deterministic: bool = _SETTINGS["deterministic"]  # declared in RunSettings; the default is this domain's
    # The encoder's own dropout (schema.yaml model.*): its rates (None: the pretrained config's) and where it acts:
    # all, none, target_layer (the layer(s) Deep Augmentation targets) or a layer index, as text ("3").
    hidden_dropout: float | None = _SETTINGS["hidden_dropout"]
    attention_dropout: float | None = _SETTINGS["attention_dropout"]
    standard_dropout: str = _SETTINGS["standard_dropout"]
    # The MLM auxiliary objective (deepaug.domains.text.mlm): its weight (0: off), MLM alone, the masked fraction.
    mlm_weight: float = _SETTINGS["mlm_weight"]
    mlm_only: bool = _SETTINGS["mlm_only"]
    mlm_probability: float = _SETTINGS["mlm_probability"]

    def __post_init__(self) -> None:
        if isinstance(self.standard_dropout, int) and not isinstance(self.standard_dropout, bool):
            self.standard_dropout = str(self.standard_dropout)  # as the flag spells it (--standard-dropout 3)

    def standard_dropout_layers(self) -> tuple[int, ...] | None:
        """The layers whose standard dropout is kept: None (all, the pretrained model as it is), () (none), the
        targeted layer(s), or the one layer given."""
        where = self.standard_dropout
        if where == "all":
            return None
        if where == "none":
            return ()
        return self.target_layers() if where == "target_layer" else (int(where),)

    @property
    def mlm(self) -> bool:
        """Whether this run trains with the MLM objective."""
        return self.mlm_weight > 0 or self.mlm_only

    def validate(self) -> None:
        super().validate()
        for name in ("hidden_dropout", "attention_dropout"):
            rate = getattr(self, name)
            if rate is not None and not (isinstance(rate, (int, float)) and 0.0 <= rate < 1.0):
                raise ValueError(f"{name} must be in [0, 1) or none (the pretrained config's), got {rate!r}")
        where = str(self.standard_dropout)
        if where not in STANDARD_DROPOUT and not where.isdigit():
            raise ValueError(
                f"standard_dropout must be one of {STANDARD_DROPOUT} or a layer index (0 embeddings, 1-L blocks), "
                f"got {self.standard_dropout!r}"
            )
        if where == "target_layer" and self.method == "none":
            raise ValueError(
                "standard_dropout target_layer keeps the encoder's dropout only at the layer Deep Augmentation "
                "targets, but the baseline (method none) targets none; give a layer index instead"
            )
        weight = self.mlm_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            raise ValueError(f"mlm_weight must be a finite number >= 0 (0: no MLM), got {weight!r}")
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability!r}")
        if self.mlm_only and weight == 0:
            raise ValueError(
                "mlm_only trains on mlm_weight x the MLM loss alone, but mlm_weight is 0; give mlm_weight > 0 "
                "(SimCSE's 0.1)"
            )
        if self.mlm and self.objective != "contrastive":
            raise ValueError(
                f"mlm_weight / mlm_only are for the contrastive objective; the {self.objective} counterpart has no "
                f"MLM objective"
            )
        if self.sup_head not in SUP_HEADS:
            raise ValueError(
                f"sup_head must be one of {SUP_HEADS} (the supervised counterpart's head), got {self.sup_head!r}"
            )
        epochs = self.sup_eval_epochs
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"sup_eval_epochs must be a whole number >= 1, got {self.sup_eval_epochs!r}")
        if isinstance(self.sup_patience, bool) or not isinstance(self.sup_patience, int) or self.sup_patience < 0:
            raise ValueError(f"sup_patience must be a whole number >= 0, got {self.sup_patience!r}")


SUP_HEADS = ("cosine", "relatedness")


def _tokenize(tokenizer, sentences, max_len, device):
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


def _build_model(s: TextPretrainSettings, model_dir, device):
    """The encoder with the run's standard dropout: its rates (``hidden_dropout``, ``attention_dropout``; None
    keeps the pretrained config's) and where it acts (``standard_dropout``); the default is the pretrained model
    exactly as before these settings existed."""
    model = build_text_model(str(model_dir), s.hidden_dropout, s.attention_dropout)
    layers = s.standard_dropout_layers()
    if s.hidden_dropout is not None or s.attention_dropout is not None or layers is not None:
        kept = None if layers is None else keep_standard_dropout_at(model, layers)
        config = model.encoder.config
        rates = ", ".join(
            f"{key} {getattr(config, key)}"
            for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout")
            if isinstance(getattr(config, key, None), float)
        )
        where = (
            "at every layer"
            if layers is None
            else "nowhere (p = 0 in every dropout)"
            if not layers
            else f"only at layer(s) {', '.join(map(str, layers))} ({len(kept)} of {len(dropout_rates(model))} "
            f"dropouts kept, the others p = 0)"
        )
        T.log(f"{s.run}: the encoder's standard dropout ({rates}) {where}")
    return model.to(device)


def _attach_augment(s: TextPretrainSettings, model, model_dir, head_input: bool = False):
    """The run's op hooked on layer ``s.layer`` (or on each of ``s.layers_at_once``); None for the baseline.

    ``head_input``: the sentence vector is the bare [CLS] (the relatedness head's input), so the top index
    L+1, SimCSE's MLP pooler in the contrastive runs, targets that vector instead. The author's supervised
    runs never ran the MLP (``sent_emb=True`` with ``mlp_only_train``), so his layer-13 transform there was
    a no-op (``simcse/models.py`` L352-361); here L+1 transforms the vector fed to the head."""
    top = model.num_blocks + 1

    def target(layer: int):
        try:
            module = target_module(model, layer)
        except LayerIndexError as exc:
            raise LayerIndexError(f"{exc} ({model_dir} has {model.num_blocks} blocks)") from None
        return model.cls_out if head_input and layer == top else module

    aug = s.attach_augment(target)
    if aug is not None:
        where = f"{s.where()} of {describe_layers(model)}"
        if head_input and top in s.target_layers():
            where += f"; layer {top} is the [CLS] vector fed to the relatedness head (no MLP pooler in this objective)"
        T.log(f"{s.run}: Deep Augmentation {aug.extra_repr()} at {where}")
    return aug


def pretrain(
    s: TextPretrainSettings,
    model_dir: str | Path,
    corpus: str | Path,
    dev_task: str | Path,
    out_dir: str | Path,
    ckpt_dir: str | Path,
    mlm_head: str | Path | None = None,
) -> dict:
    """Train, checkpointing to ``ckpt_dir`` (resumed if present); write model, metrics, provenance to ``out_dir``.

    ``corpus`` is the training corpus (contrastive) or the similarity task trained on (supervised); ``mlm_head``
    the encoder's prepared MLM head (``prepare-text --mlm-head``), which a run with ``mlm_weight`` > 0 needs."""
    relatedness = s.objective == "supervised" and s.sup_head == "relatedness"
    if relatedness:
        task = RelatednessTask(s, model_dir, corpus, dev_task)
    else:
        task = TextTask(s, model_dir, corpus, dev_task, mlm_head)
    return train(task, out_dir, ckpt_dir)


class _SimCSE:
    """``objective="contrastive"``: unsupervised SimCSE. Each sentence twice in the batch (the encoder's
    dropout, and Deep Augmentation, make the two views); InfoNCE over the 2N rows."""

    def __init__(self, corpus: str | Path) -> None:
        self.sentences = load_corpus(corpus)

    def __len__(self) -> int:
        return len(self.sentences)

    def rows(self, tokenizer, idx: list[int], max_len: int, device) -> dict:
        batch = _tokenize(tokenizer, [self.sentences[i] for i in idx], max_len, device)
        return {k: torch.cat([v, v]) for k, v in batch.items()}

    def loss(self, z: torch.Tensor, idx: list[int], s: TextPretrainSettings) -> torch.Tensor:
        return simcse_loss(z, s.temperature)


class _CosineRegression:
    """``objective="supervised"``, ``sup_head="cosine"``: the cosine similarity of a pair's sentence vectors
    regressed on its gold score scaled to [0, 1] (SBERT's STS loss). Rows: the batch's first sentences, then
    its second sentences."""

    def __init__(self, task: str | Path) -> None:
        pairs = load_task(task)
        self.first, self.second = pairs["sentence1"].tolist(), pairs["sentence2"].tolist()
        self.targets = torch.tensor((pairs["score"] / pairs["score"].max()).to_numpy(), dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.first)

    def rows(self, tokenizer, idx: list[int], max_len: int, device) -> dict:
        return _tokenize(tokenizer, [self.first[i] for i in idx] + [self.second[i] for i in idx], max_len, device)

    def loss(self, z: torch.Tensor, idx: list[int], s: TextPretrainSettings) -> torch.Tensor:
        a, b = z.float().chunk(2)
        return torch.nn.functional.mse_loss(torch.cosine_similarity(a, b), self.targets[idx].to(a.device))


# objective -> what the step-based trainer trains on (the relatedness head is its own task, RelatednessTask)
TEXT_OBJECTIVES = {"contrastive": _SimCSE, "supervised": _CosineRegression}


class TextTask(Task):
    """SimCSE (or the cosine regression of the supervised counterpart), step-based: AdamW with linear decay,
    a dev check every ``eval_every`` steps (and at the end) keeping the best weights, which ``model.pt`` ships.
    The generators run on and are checkpointed (see :class:`deepaug.engine.loop.Task`)."""

    unit = "steps"
    reseed_each_period = False
    keeps_best = True

    def __init__(self, s: TextPretrainSettings, model_dir, corpus, dev_task, mlm_head=None) -> None:
        self.s, self.model_dir, self.corpus, self.dev_task = s, model_dir, corpus, dev_task
        self.inputs = {"model": model_dir, "corpus": corpus, "dev_task": dev_task}
        self.dev_name = Path(dev_task).name.removesuffix(".parquet")
        self.mlm_head_file, self.mlm_head = mlm_head, None
        if s.mlm:
            if mlm_head is None:
                raise ValueError(
                    f"run {s.run}: mlm_weight {s.mlm_weight} needs the encoder's MLM head file (--mlm-head FILE, made "
                    f"by python -m deepaug prepare-text --mlm-head NAME --out FILE)"
                )
            self.inputs["mlm_head"] = mlm_head  # fingerprinted only where used: other runs keep theirs

    def build(self, device: torch.device) -> None:
        from transformers import AutoTokenizer

        s = self.s
        self.device = device
        self.data = TEXT_OBJECTIVES[s.objective](self.corpus)
        self.dev = load_task(self.dev_task)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        self.model = _build_model(s, self.model_dir, device)
        if s.mlm:
            from deepaug.domains.text.mlm import build_mlm_head

            self.mlm_head = build_mlm_head(self.model.encoder, self.mlm_head_file, log=lambda m: T.log(f"{s.run}: {m}"))
            self.mlm_head.to(device)
            vocab = self.model.encoder.config.vocab_size
            if len(self.tokenizer) > vocab:
                raise DataValidationError(
                    f"run {s.run}: MLM draws random tokens from the tokenizer's {len(self.tokenizer)} ids, but the "
                    f"encoder has {vocab} embeddings"
                )
            T.log(
                f"{s.run}: MLM {'alone' if s.mlm_only else 'auxiliary'}: loss = "
                f"{'' if s.mlm_only else 'contrastive + '}{s.mlm_weight} x MLM, {s.mlm_probability:.0%} of the tokens "
                f"masked (80% [MASK], 10% random, 10% kept)"
            )
        self.bundle = encoder_bundle(self.model_dir)  # config + tokenizer files: model.pt loads from any directory
        self.aug = _attach_augment(s, self.model, self.model_dir)
        self.steps_per_epoch = len(self.data) // s.batch_size
        total = self.steps_per_epoch * s.epochs
        self.total = total if s.max_steps is None else min(total, s.max_steps)
        if self.total < 1:
            raise ValueError(f"{self.corpus} has {len(self.data)} rows: fewer than one batch of {s.batch_size}")

    def optimizer(self, device: torch.device) -> torch.optim.Optimizer:
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
        named = list(self.model.named_parameters())
        if self.mlm_head is not None:
            named += [(f"mlm_head.{n}", p) for n, p in self.mlm_head.named_parameters()]
        groups = [
            {"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": self.s.weight_decay},
            {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=self.s.lr, **({"fused": True} if device.type == "cuda" else {}))

    def parts(self) -> dict:
        # the MLM head is trained and checkpointed with the encoder (last.pt), so a resumed MLM run goes on with it
        return {"model": self.model} if self.mlm_head is None else {"model": self.model, "mlm_head": self.mlm_head}

    def finished(self, p: Progress) -> bool:
        return p.step >= self.total

    def total_steps(self) -> int:
        return self.total

    def batches(self, p: Progress, seed: int):
        """The steps up to the next dev check; each step's rows are those of its position in its epoch's
        permutation (seeded by the epoch), so a run resumed at any check replays the same order."""
        s = self.s
        end = min((p.step // s.eval_every + 1) * s.eval_every, self.total)
        self.mlm_sum, self.mlm_steps = torch.zeros((), device=self.device), 0  # the period's MLM loss (mlm_loss)
        for step in range(p.step, end):
            epoch, pos = divmod(step, self.steps_per_epoch)
            g = torch.Generator().manual_seed(T.epoch_seed(s.seed, epoch, stream=2))
            order = torch.randperm(len(self.data), generator=g)
            idx = order[pos * s.batch_size : (pos + 1) * s.batch_size].tolist()
            rows = self.data.rows(self.tokenizer, idx, s.max_len, self.device)
            if self.mlm_head is None:
                yield idx, rows
                continue
            from deepaug.domains.text.mlm import mask_tokens, step_generator

            # every one of the 2N rows masked on its own draws (SimCSE masks the flat batch of both copies)
            masked, labels = mask_tokens(
                rows["input_ids"], self.tokenizer, s.mlm_probability, step_generator(s.seed, step)
            )
            yield idx, rows, masked, labels

    def lr(self, step: int) -> float:
        return self.s.lr * (1 - step / self.total)  # linear decay to 0, no warm-up (SimCSE)

    def forward(self, batch):
        if self.mlm_head is None:
            return self.model(**batch[1])
        from deepaug.domains.text.mlm import mlm_predictions

        _, rows, masked, labels = batch
        # SimCSE's order: the contrastive pass, then the masked copy's (simcse/models.py L175-199); MLM alone skips
        # the contrastive pass, whose loss the author multiplied by 0
        z = None if self.s.mlm_only else self.model(**rows)
        states = self.model.token_states(masked, rows["attention_mask"], rows.get("token_type_ids"))
        return z, mlm_predictions(self.mlm_head, states, labels)

    def loss(self, out, batch) -> torch.Tensor:
        if self.mlm_head is None:
            return self.data.loss(out, batch[0], self.s)
        from deepaug.domains.text.mlm import mlm_loss

        z, (logits, targets) = out
        mlm = mlm_loss(logits, targets)
        self.mlm_sum += mlm.detach()
        self.mlm_steps += 1
        weighted = self.s.mlm_weight * mlm  # simcse/models.py L308: loss + mlm_weight * masked_lm_loss
        return weighted if self.s.mlm_only else self.data.loss(z, batch[0], self.s) + weighted

    def dev_score(self, p: Progress) -> float:
        """The STS dev Spearman (x 100); a NaN/constant encoder fails here, naming the run and the task, rather
        than never writing best.pt (``NaN > best`` is false) and failing after all the training."""
        s = self.s
        return 100 * spearman_on_task(
            self.model, self.tokenizer, self.dev, s.eval_max_len, self.device, s.precision, name=self.dev_name
        )

    def best_state(self, p: Progress, score: float) -> dict:
        return {"model": self.model.encoder.state_dict(), "step": p.step, "dev_spearman": score}

    def record(self, p: Progress, end: PeriodEnd) -> dict:
        row = {"step": p.step, "loss": end.loss, "lr": end.lr, "dev_spearman": end.dev}
        if self.mlm_head is not None:
            row["mlm_loss"] = float(self.mlm_sum) / max(self.mlm_steps, 1)
        return row

    def final_weights(self, best: dict) -> dict:
        return {"the dev-best weights": best["model"]}

    def payload(self, best: dict) -> dict:
        return {
            "encoder": best["model"],
            "source": str(self.model_dir),
            "encoder_bundle": self.bundle,
            "step": best["step"],
            "dev_spearman": best["dev_spearman"],
        }

    def provenance(self, p: Progress, best: dict) -> dict:
        return {
            "best_step": best["step"],
            "dev_spearman": best["dev_spearman"],
            "n_layers": len(self.model.deepaug_layers()),
            "model_dir": str(self.model_dir),
            "corpus": str(self.corpus),
            "dev_task": self.dev_name,
            **({"mlm_head": str(self.mlm_head_file)} if self.mlm_head is not None else {}),
        }


class RelatednessTask(Task):
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

    A period is a round; ``self.epoch`` counts the epochs done (checkpointed as ``epoch``).
    """

    unit = "steps"
    reseed_each_period = False
    keeps_best = True

    def __init__(self, s: TextPretrainSettings, model_dir, train_task, dev_task) -> None:
        self.s, self.model_dir, self.train_task, self.dev_task = s, model_dir, train_task, dev_task
        self.inputs = {"model": model_dir, "corpus": train_task, "dev_task": dev_task}
        self.dev_name = Path(dev_task).name.removesuffix(".parquet")
        self.patience = s.sup_patience
        self.epoch = 0

    def build(self, device: torch.device) -> None:
        from transformers import AutoTokenizer

        s = self.s
        self.device = device
        pairs = load_task(self.train_task)
        self.first, self.second = pairs["sentence1"].tolist(), pairs["sentence2"].tolist()
        low, high = float(pairs["score"].min()), float(pairs["score"].max())
        if low < 0 or high > 5:  # a score above 5 would get an all-zero target (no class 6..), silently
            raise DataValidationError(
                f"run {s.run}: the relatedness head's 5-bin label encoding (classes 1-5, SentEval) needs gold scores "
                f"in [0, 5], but {self.train_task} has scores in [{low:g}, {high:g}]; train this task with sup_head "
                f"cosine"
            )
        self.labels = encode_labels(pairs["score"].to_numpy())  # (pairs, 5): SentEval's targets
        self.dev = load_task(self.dev_task)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        self.model = _build_model(s, self.model_dir, device)
        self.head = RelatednessHead(self.model.encoder.config.hidden_size).to(device)
        self.bundle = encoder_bundle(self.model_dir)
        self.aug = _attach_augment(s, self.model, self.model_dir, head_input=True)
        steps = math.ceil(len(self.first) / s.batch_size) * s.epochs
        self.total = steps if s.max_steps is None else min(steps, s.max_steps)

    def optimizer(self, device: torch.device) -> torch.optim.Optimizer:
        params = list(self.model.parameters()) + list(self.head.parameters())
        return torch.optim.Adam(
            params, lr=self.s.lr, weight_decay=self.s.weight_decay, **({"fused": True} if device.type == "cuda" else {})
        )

    def parts(self) -> dict:
        return {"model": self.model, "head": self.head}

    def state(self, p: Progress) -> dict:
        return {"epoch": self.epoch}

    def load_state(self, state: dict) -> None:
        self.epoch = state["epoch"]

    def finished(self, p: Progress) -> bool:
        return self.epoch >= self.s.epochs or p.step >= self.total

    def total_steps(self) -> int:
        return self.total

    def batches(self, p: Progress, seed: int):
        """A round: ``sup_eval_epochs`` epochs (at most ``epochs`` in all and ``max_steps`` steps), each a fresh
        permutation of the pairs (seeded by the epoch) in batches, the last smaller one kept."""
        s, n, step = self.s, len(self.first), p.step
        round_end = min(self.epoch + s.sup_eval_epochs, s.epochs)
        while self.epoch < round_end and step < self.total:
            g = torch.Generator().manual_seed(T.epoch_seed(s.seed, self.epoch, stream=2))
            order = torch.randperm(n, generator=g).tolist()
            for pos in range(0, n, s.batch_size):
                if step >= self.total:
                    break
                idx = order[pos : pos + s.batch_size]
                yield (
                    idx,
                    _tokenize(self.tokenizer, [self.first[i] for i in idx], s.max_len, self.device),
                    _tokenize(self.tokenizer, [self.second[i] for i in idx], s.max_len, self.device),
                )
                step += 1
            self.epoch += 1

    def forward(self, batch):
        _, side_a, side_b = batch
        return self.model(**side_a, use_mlp=False), self.model(**side_b, use_mlp=False)

    def loss(self, out, batch) -> torch.Tensor:
        import torch.nn.functional as F

        u, v = out
        return F.mse_loss(self.head(u.float(), v.float()), self.labels[batch[0]].to(self.device))

    def dev_score(self, p: Progress) -> float:
        s = self.s
        return 100 * relatedness_spearman(
            self.model,
            self.head,
            self.tokenizer,
            self.dev,
            s.eval_max_len,
            self.device,
            s.precision,
            name=self.dev_name,
            constant_is_zero=True,
        )

    def best_state(self, p: Progress, score: float) -> dict:
        return {
            "model": self.model.encoder.state_dict(),
            "head": self.head.state_dict(),
            "step": p.step,
            "epoch": self.epoch,
            "dev_spearman": score,
        }

    def record(self, p: Progress, end: PeriodEnd) -> dict:
        return {
            "epoch": self.epoch,
            "step": p.step,
            "loss": end.loss,
            "lr": end.lr,
            "dev_spearman": end.dev,
            "bad_checks": p.bad_checks,
        }

    def final_weights(self, best: dict) -> dict:
        return {"the dev-best weights": best["model"], "the dev-best relatedness head": best["head"]}

    def payload(self, best: dict) -> dict:
        return {
            "encoder": best["model"],
            "relatedness_head": best["head"],
            "sup_head": "relatedness",
            "source": str(self.model_dir),
            "encoder_bundle": self.bundle,
            "step": best["step"],
            "epoch": best["epoch"],
            "dev_spearman": best["dev_spearman"],
        }

    def provenance(self, p: Progress, best: dict) -> dict:
        return {
            "epochs": self.epoch,
            "stopped_early": p.stopped,
            "best_step": best["step"],
            "best_epoch": best["epoch"],
            "dev_spearman": best["dev_spearman"],
            "sup_head": "relatedness",
            "n_layers": len(self.model.deepaug_layers()),
            "model_dir": str(self.model_dir),
            "corpus": str(self.train_task),
            "dev_task": self.dev_name,
        }
