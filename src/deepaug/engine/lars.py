"""LARS (You, Gitman & Ginsburg 2017, "Large batch training of convolutional networks", Eq. 6), the optimiser
of the ImageNet SimCLR recipes: SGD with momentum whose step for each parameter tensor is scaled by a trust
ratio ``eta * ||w|| / (||g|| + weight_decay * ||w|| + eps)``.

The variant of solo-learn (``solo/utils/lars.py`` at 9187ea39, from Lightning Bolts), used by its
``scripts/pretrain/imagenet-100/simclr.yaml`` (``optimizer.kwargs``: ``eta: 0.02``, ``clip_lr: True``,
``exclude_bias_n_norm: True``; momentum 0.9 from ``solo/args/pretrain.py:162-164``):

* weight decay is added to the gradient, then the sum is scaled by the trust ratio (``lars.py:138-150``);
* ``clip_lr``: the ratio is divided by the group's lr and capped at 1 (``lars.py:145-146``), so the
  effective step never exceeds plain SGD's;
* ``exclude_bias_n_norm``: one-dimensional tensors (biases, batch-norm scales and shifts) get neither the
  ratio nor weight decay (``lars.py:139``);
* a tensor whose weight or gradient norm is zero is left unscaled (``lars.py:140``);
* momentum as PyTorch's SGD (``buf = m * buf + d``, first step ``buf = d``; ``lars.py:152-161``).
"""

from __future__ import annotations

import torch


class LARS(torch.optim.Optimizer):
    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.02,
        eps: float = 1e-8,
        clip_lr: bool = True,
        exclude_bias_n_norm: bool = True,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f"LARS: lr, momentum and weight_decay must be >= 0 and eta > 0, got {lr}, {momentum}, "
                             f"{weight_decay}, {eta}")  # fmt: skip
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            eta=eta,
            eps=eps,
            clip_lr=clip_lr,
            exclude_bias_n_norm=exclude_bias_n_norm,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, momentum = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim != 1 or not group["exclude_bias_n_norm"]:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    if w_norm != 0 and g_norm != 0:
                        ratio = group["eta"] * w_norm / (g_norm + w_norm * wd + group["eps"])
                        if group["clip_lr"]:
                            ratio = torch.clamp(ratio / lr, max=1.0)
                        d = (d + wd * p) * ratio
                if momentum:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = d.detach().clone()
                    else:
                        state["momentum_buffer"].mul_(momentum).add_(d)
                    d = state["momentum_buffer"]
                p.add_(d, alpha=-lr)
        return loss
