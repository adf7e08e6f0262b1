"""What every pre-training run is told: which run, the Deep Augmentation settings, seed, device."""

from __future__ import annotations

from dataclasses import dataclass

from deepaug.core.schema_defaults import COMMON_SCHEMA, schema_defaults
from deepaug.core.vocabulary import (
    KEEP_POLICIES,
    LAYERS_AT_ONCE,
    METHODS,
    PCA_GRADS,
    PRECISIONS,
    REUSE_POLICIES,
    TRACKERS,
    check_device,
)

# The defaults of these settings, from the config schema (each written once there; deepaug.core.schema_defaults)
_AUGMENT = schema_defaults(COMMON_SCHEMA, "augment")

# Settings that came after runs were made: at their default they are left out of a job's command
# (deepaug.workflow.runs.Run.augment) and of a run's fingerprint (deepaug.engine.fingerprint), so that
# the runs made before they existed keep their commands (Snakemake does not run them again) and their
# checkpoints (checkpoints.reuse: settings).
QUIET_DEFAULTS = {
    "detach_p": _AUGMENT["detach_p"],
    LAYERS_AT_ONCE: None,
    # vision's SSL methods beyond SimCLR (deepaug.core.ssl): the default method, and the settings only some
    # methods have (None: not this run's method's, or its recipe's)
    "ssl_method": "simclr",
    "knn_monitor": 0,
    **dict.fromkeys(
        ("pred_hidden_dim", "tau_base", "tau_final", "target_augment", "vicreg_sim_weight", "vicreg_var_weight",
         "vicreg_cov_weight", "barlow_lambda", "barlow_scale"),
    ),
}  # fmt: skip


def add_quiet_defaults(defaults: dict) -> None:
    """Declare a domain's own settings that came after runs were made, with their defaults (from its schema):
    at those values they are left out of job commands and fingerprints like :data:`QUIET_DEFAULTS`. Called
    by the domain's light ``__init__.py``, which both the workflow and the domain's trainers import first."""
    for key, value in defaults.items():
        if key in QUIET_DEFAULTS and QUIET_DEFAULTS[key] != value:
            raise ValueError(f"quiet setting {key!r} has two defaults: {QUIET_DEFAULTS[key]!r} and {value!r}")
        QUIET_DEFAULTS[key] = value


def without_quiet_defaults(settings: dict) -> dict:
    """``settings`` without the :data:`QUIET_DEFAULTS` that are at their default."""
    return {k: v for k, v in settings.items() if not (k in QUIET_DEFAULTS and v == QUIET_DEFAULTS[k])}


@dataclass
class RunSettings:
    run: str = "run"
    method: str = "none"
    layer: int | None = None
    # several layers in one run instead of `layer`, each with its own op (deepaug.core.at_layers)
    layers_at_once: tuple[int, ...] | None = None
    stop_gradient: bool = True
    detach_p: float = _AUGMENT["detach_p"]  # with stop_gradient: the probability that a transformed row is detached
    rate: float = _AUGMENT["rate"]
    p: float = _AUGMENT["p"]
    pca_component: int = _AUGMENT["pca_component"]
    pca_over: str = _AUGMENT["pca_over"]
    pca_grad: str = _AUGMENT["pca_grad"]  # the authors' code backpropagates through the PCA basis; or "constant"
    selection: str = _AUGMENT["selection"]
    precision: str = "bf16"
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    objective: str = "contrastive"  # or "supervised": the paper's supervised counterpart
    keep_checkpoints: str = "last"  # after the run: last (its outputs) | none | all (optimizer state too)
    # a finished run run again: exact (same settings, inputs, code) | settings (any code) | never
    reuse_finished: str = "exact"
    max_grad_norm: float = 0.0  # clip the gradient's global norm to this after unscaling; 0: no clipping
    tracking: str = "none"  # none | tensorboard | mlflow (deepaug.engine.tracking); not fingerprinted

    # Integer settings that must be at least 1 (where a trainer has them).
    POSITIVE = (
        "epochs",
        "batch_size",
        "max_len",
        "eval_every",
        "checkpoint_every",
        "width",
        "proj_dim",
        "eval_max_len",
    )

    def validate(self) -> None:
        """Reject impossible values with a message naming the setting (the CLI exits 2 on these)."""
        for name in self.POSITIVE:
            value = getattr(self, name, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("lr", "temperature"):
            value = getattr(self, name, 1.0)
            if not (isinstance(value, (int, float)) and value > 0 and value == value and value != float("inf")):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if getattr(self, "max_steps", None) is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 (or none), got {self.max_steps}")
        check_device(self.device)
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"rate (the dropout rate) must be in [0, 1), got {self.rate}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p (the probability that a row is transformed) must be in [0, 1], got {self.p}")
        if not 0.0 <= self.detach_p <= 1.0:
            raise ValueError(
                f"detach_p (the probability that a transformed row is detached) must be in [0, 1], got {self.detach_p}"
            )
        if self.detach_p < 1.0 and not self.stop_gradient:
            raise ValueError(
                f"detach_p {self.detach_p} detaches a fraction of the transformed rows, which needs stop_gradient "
                f"true (without it no row is detached); leave detach_p at 1"
            )
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        self._validate_layers()
        from deepaug.core.objectives import OBJECTIVES  # registered by name: a new method is accepted here

        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {tuple(OBJECTIVES)}, got {self.objective!r}")
        if self.objective == "contrastive" and getattr(self, "batch_size", 2) < 2:
            raise ValueError(
                f"batch_size must be at least 2 for a contrastive objective (each example's negatives are "
                f"the other examples of its batch), got {self.batch_size}"
            )
        if self.keep_checkpoints not in KEEP_POLICIES:
            raise ValueError(f"keep_checkpoints must be one of {KEEP_POLICIES}, got {self.keep_checkpoints!r}")
        if self.tracking not in TRACKERS:
            raise ValueError(f"tracking must be one of {TRACKERS}, got {self.tracking!r}")
        if self.reuse_finished not in REUSE_POLICIES:
            raise ValueError(f"reuse_finished must be one of {REUSE_POLICIES}, got {self.reuse_finished!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.pca_grad not in PCA_GRADS:
            raise ValueError(
                f"pca_grad must be one of {PCA_GRADS} (through: gradients flow through the PCA "
                f"basis, as in the authors' code; constant: the basis is a constant), got {self.pca_grad!r}"
            )
        norm = self.max_grad_norm
        if isinstance(norm, bool) or not isinstance(norm, (int, float)) or not 0 <= norm < float("inf"):
            raise ValueError(
                f"max_grad_norm must be a finite number >= 0 (0 turns gradient clipping off), got {norm!r}"
            )

    def _validate_layers(self) -> None:
        """One layer (``layer``) or several at once (``layers_at_once``) for a method, neither for the baseline."""
        at_once = self.layers_at_once
        if self.method == "none" and (self.layer is not None or at_once is not None):
            raise ValueError("method 'none' (the baseline) takes no layer")
        if self.method != "none" and (self.layer is None) == (at_once is None):
            raise ValueError(
                f"method {self.method!r} needs a layer index (layer) or several (layers_at_once), got "
                f"{'both' if at_once is not None else 'neither'}"
            )
        for layer in (self.layer,) if at_once is None else at_once:
            if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
                raise ValueError(
                    f"layer {layer!r} is not a layer index: layers are numbered from 0 (the model's layer "
                    f"map); give 0 or more"
                )
        if at_once is not None and (len(at_once) < 2 or len(set(at_once)) != len(at_once)):
            raise ValueError(
                f"layers_at_once must list two or more distinct layers, got {list(at_once)} (one layer: give layer)"
            )

    def target_layers(self) -> tuple[int, ...]:
        """The layers the run's op transforms: ``(layer,)``, the layers at once, or ``()`` for the baseline."""
        if self.method == "none":
            return ()
        return tuple(self.layers_at_once) if self.layers_at_once is not None else (self.layer,)

    def where(self) -> str:
        """The targeted layer(s) in words, for log lines and messages: ``layer 3``, ``layers 0, 3, 6 at once``."""
        layers = self.target_layers()
        return f"layer {layers[0]}" if self.layers_at_once is None else f"layers {', '.join(map(str, layers))} at once"

    def build_augment(self):
        """The run's op (None for the baseline): a :class:`DeepAugment` seeded with the run's seed, or, with
        ``layers_at_once``, an :class:`~deepaug.core.at_layers.AugmentAtLayers` (one op per layer, each seeded
        from the run's seed and its layer)."""
        if self.method == "none":
            return None
        from deepaug.core.augment import DeepAugment

        def make(seed: int) -> DeepAugment:
            return DeepAugment(
                kind=self.method,
                rate=self.rate,
                p=self.p,
                stop_gradient=self.stop_gradient,
                pca_component=self.pca_component,
                pca_over=self.pca_over,
                selection=self.selection,
                pca_grad=self.pca_grad,
                seed=seed,
                detach_p=self.detach_p,
            )

        if self.layers_at_once is None:
            return make(self.seed)
        from deepaug.core.at_layers import AugmentAtLayers

        return AugmentAtLayers(self.layers_at_once, make, self.seed)

    def attach_augment(self, target):
        """The run's op (:meth:`build_augment`; None for the baseline), hooked on ``target(layer)`` (the
        module whose output is that layer of the model) at each targeted layer."""
        from deepaug.core.at_layers import layer_ops

        aug = self.build_augment()
        for layer, op in layer_ops(aug, self.layer):
            op.attach(target(layer))
        return aug
