"""What every pre-training run is told: which run, the Deep Augmentation settings, seed, device."""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("none", "dropout", "pca")
PRECISIONS = ("fp32", "bf16", "fp16")
OBJECTIVES = ("contrastive", "supervised")


@dataclass
class RunSettings:
    run: str = "run"
    method: str = "none"
    layer: int | None = None
    stop_gradient: bool = True
    rate: float = 0.5
    p: float = 0.5
    pca_component: int = 1
    pca_over: str = "rows"
    selection: str = "bernoulli"
    precision: str = "bf16"
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    objective: str = "contrastive"  # or "supervised": the paper's supervised counterpart

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.method == "none" and self.layer is not None:
            raise ValueError("method 'none' (the baseline) takes no layer")
        if self.method != "none" and self.layer is None:
            raise ValueError(f"method {self.method!r} needs a layer index")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def build_augment(self):
        """The run's :class:`DeepAugment` (None for the baseline), seeded with the run's seed."""
        if self.method == "none":
            return None
        from .augment import DeepAugment

        return DeepAugment(kind=self.method, rate=self.rate, p=self.p, stop_gradient=self.stop_gradient,
                           pca_component=self.pca_component, pca_over=self.pca_over, selection=self.selection,
                           seed=self.seed)
