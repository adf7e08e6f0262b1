"""The MLM auxiliary objective of SimCSE, and MLM alone (the author's "ODA" runs).

As in SimCSE (princeton-nlp/SimCSE, kept unchanged in the author's fork bruel-gabrielsson/SimCSE):

* ``--do_mlm`` adds ``mlm_weight`` (0.1) x a masked-language-model loss to the contrastive one
  (``simcse/models.py`` L304-308: ``loss = loss + mlm_weight * masked_lm_loss``); the author's
  ``--skip_contrastive_loss`` sets the contrastive term to 0 (L299-301), so MLM-only training is
  ``mlm_weight`` x the MLM loss (his ``scripts/_run_uni_hyper_REG_MLMonly_ODA.sh``,
  ``_run_uni_hyper_T_MLMonly_ODA.sh``, ``run_uni_hyper_MLM_only.sh``);
* the masked copy of the batch (every row of the 2N, each masked on its own draws) goes through the
  encoder in a second forward pass with the same attention mask (L187-199), and the MLM head reads its
  last hidden states (L306);
* the head is BERT's ``BertLMPredictionHead`` (L9, L384-385) loaded from the pretrained checkpoint's
  ``cls.predictions`` (``train.py`` L499-503: ``BertForPreTraining.from_pretrained(...)``; the decoder is a
  copy of the word embeddings there, not tied to them, its bias tied to the head's ``bias`` as in the
  transformers of the time);
* masking as HF's ``DataCollatorForLanguageModeling`` (``train.py`` L653-686): each token that is not a
  special token (``tokenizer.get_special_tokens_mask(..., already_has_special_tokens=True)``: [CLS], [SEP],
  [PAD], ...) is chosen with probability ``mlm_probability`` (0.15, L252-255); a chosen token becomes [MASK]
  with probability 0.8, else a random token with probability 0.5 (10% in all), else stays (10%); labels are
  the original ids at the chosen tokens and -100 elsewhere.

Differences, none of which changes the loss: the draws come from a generator seeded by (run seed, step) instead
of the global RNG, so a resumed run masks as an uninterrupted one; the head reads only the chosen tokens' states
(the cross-entropy averages over those, -100 being ignored, so the other positions' logits never counted); with
MLM alone the contrastive forward pass is not computed (the author computed it and multiplied it by 0); a batch
in which no token is chosen has MLM loss 0 (the author's would be NaN).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deepaug.engine import training as T

HEAD_FORMAT = 1
IGNORE = -100  # the label of a token that is not predicted (torch's cross_entropy ignore_index)
MASK_STREAM = 3  # the masking generator's stream (engine.training.epoch_seed): 2 is the batch order


# ----------------------------------------------------------------------------- masking
def mask_tokens(
    input_ids: torch.Tensor, tokenizer, probability: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input ids, labels) of HF's ``DataCollatorForLanguageModeling.torch_mask_tokens`` (the draws in its
    order: chosen tokens, [MASK] among them, random among the rest, the random tokens), from ``generator`` (on
    the CPU); the result is on ``input_ids``' device."""
    if tokenizer.mask_token_id is None:
        raise ValueError(f"the tokenizer {type(tokenizer).__name__} has no mask token: MLM needs one")
    ids = input_ids.detach().cpu()
    special = torch.tensor(
        [tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True) for row in ids.tolist()],
        dtype=torch.bool,
    ).reshape(ids.shape)
    chance = torch.full(ids.shape, float(probability)).masked_fill_(special, 0.0)
    chosen = torch.bernoulli(chance, generator=generator).bool()
    labels = ids.masked_fill(~chosen, IGNORE)
    masked = ids.clone()
    replaced = torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool() & chosen
    masked[replaced] = tokenizer.mask_token_id
    randomised = torch.bernoulli(torch.full(ids.shape, 0.5), generator=generator).bool() & chosen & ~replaced
    words = torch.randint(len(tokenizer), ids.shape, dtype=ids.dtype, generator=generator)
    masked[randomised] = words[randomised]
    return masked.to(input_ids.device), labels.to(input_ids.device)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The masking draws of training step ``step``: a pure function of (seed, step), so resuming needs no state."""
    return torch.Generator().manual_seed(T.epoch_seed(seed, step, stream=MASK_STREAM))


# ----------------------------------------------------------------------------- the head
def _bert_head(config) -> nn.Module:
    from transformers.models.bert.modeling_bert import BertLMPredictionHead

    if getattr(config, "model_type", None) != "bert":
        raise ValueError(
            f"mlm_weight / mlm_only: the MLM head is BERT's (BertLMPredictionHead, as in SimCSE's BertForCL), but "
            f"this encoder is a {getattr(config, 'model_type', '?')!r} model; use a BERT encoder for MLM runs"
        )
    head = BertLMPredictionHead(config)
    head.decoder.bias = head.bias  # one output bias, as BertLMPredictionHead had it in the author's transformers
    return head


def prepare_mlm_head(name: str, out: str | Path) -> Path:
    """Store the MLM head (``cls.predictions``) of encoder ``name``'s pretrained checkpoint in ``out``, or, when
    the checkpoint has none (a sentence-transformers model, a randomly initialised test model), a note saying
    so: the trainer then initialises one (:func:`build_mlm_head`)."""
    from transformers import AutoConfig, BertForPreTraining

    from deepaug.domains.text.data import model_source
    from deepaug.errors import DataUnavailableError
    from deepaug.io import save_torch

    source = model_source(name)
    try:
        config = AutoConfig.from_pretrained(source)
        _bert_head(config)  # a clear error for an encoder that has no BERT MLM head
        model, info = BertForPreTraining.from_pretrained(source, output_loading_info=True)
    except ValueError:
        raise
    except Exception as exc:
        raise DataUnavailableError(
            f"could not load the MLM head of encoder {name!r} from {source}: {exc}. A hub model needs internet "
            f"access once (HF_HUB_OFFLINE unset); a local one needs its folder."
        ) from exc
    missing = sorted(k for k in info["missing_keys"] if k.startswith("cls.predictions."))
    state = None if missing else {k: v.detach().clone() for k, v in model.cls.predictions.state_dict().items()}
    note = (
        "cls.predictions of the pretrained checkpoint"
        if state is not None
        else f"none: the checkpoint has no cls.predictions weights ({len(missing)} missing)"
    )
    save_torch({"format": HEAD_FORMAT, "source": name, "state": state, "note": note}, Path(out))
    return Path(out)


def build_mlm_head(encoder: nn.Module, head_file: str | Path, log=T.log) -> nn.Module:
    """The MLM head for ``encoder`` (a Hugging Face BERT): the pretrained one stored by :func:`prepare_mlm_head`,
    or, where the checkpoint has none, one initialised as ``BertForPreTraining.from_pretrained`` would (the
    author's loader): the transform drawn from N(0, initializer_range) with LayerNorm 1/0, the decoder equal to
    the encoder's word embeddings (tied there), the bias 0. Says which in one log line."""
    from deepaug.errors import DataValidationError
    from deepaug.io import load_torch

    config = encoder.config
    head = _bert_head(config)
    stored = load_torch(head_file, "MLM head")
    if not isinstance(stored, dict) or stored.get("format") != HEAD_FORMAT or "state" not in stored:
        raise DataValidationError(
            f"{head_file} is not an MLM head file of this version (format {HEAD_FORMAT}); delete it and run the "
            f"workflow's data rule again (python -m deepaug prepare-text --mlm-head NAME --out {head_file})"
        )
    if stored["state"] is not None:
        try:
            head.load_state_dict(stored["state"])
        except RuntimeError as exc:
            raise DataValidationError(
                f"the MLM head in {head_file} (of {stored.get('source')}) does not fit this encoder: {exc}"
            ) from None
        log(f"MLM head: loaded from {head_file} ({stored.get('note')})")
        return head
    std = getattr(config, "initializer_range", 0.02)
    with torch.no_grad():
        nn.init.normal_(head.transform.dense.weight, mean=0.0, std=std)
        nn.init.zeros_(head.transform.dense.bias)
        nn.init.ones_(head.transform.LayerNorm.weight)
        nn.init.zeros_(head.transform.LayerNorm.bias)
        head.decoder.weight.copy_(encoder.get_input_embeddings().weight)
        nn.init.zeros_(head.bias)
    log(
        f"MLM head: randomly initialised ({head_file} says the pretrained checkpoint {stored.get('source')} has "
        f"{stored.get('note')}); transform ~ N(0, {std}), decoder = the word embeddings, bias 0"
    )
    return head


def mlm_predictions(head: nn.Module, states: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's logits at the chosen tokens (``labels != -100``) of the token states, and their labels."""
    chosen = labels != IGNORE
    return head(states[chosen]), labels[chosen]


def mlm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy over the chosen tokens, in float32 (0, with the graph kept, when none was chosen:
    the sum over no token divided by 1)."""
    total = nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
    return total / max(int(targets.numel()), 1)
