"""Training throughput: this project's SimCLR step against a SupContrast-style reference loop.

On one device, for the same model, batch and number of steps, timed interleaved (reference, candidate,
variant, reference, ...) after a warm-up of each:

  reference  "supcontrast": per-image torchvision v2 transforms in DataLoader workers, fp32, plain SGD,
             loss.item() every step (the SupContrast way); each timed block is one short epoch of the
             loader (persistent workers, so nothing runs in the background while another loop is timed;
             the block includes filling the loader's pipeline once);
  candidate  "project": uint8 dataset resident on the device, SimCLR augmentations batched on the device,
             bf16 autocast + channels_last + fused SGD on CUDA, no host sync inside the step;
  variant    "project+<method>": the project's step with Deep Augmentation at --hook-layer (the hook's
             overhead); --hook-method none leaves it out;
  variants   "project+ssl:<method>" (--ssl-methods): the project's step of an SSL method beyond SimCLR
             (deepaug.core.ssl: its projector and predictor at its CIFAR recipe's sizes, its loss, its
             momentum target's forward and EMA; the same SGD as the candidate's, so only the method differs),
             no Deep Augmentation: each method's cost per step relative to SimCLR's (``ssl_<method>_step_vs_simclr``)
             and the FLOPs of its whole step (``ssl_<method>_gflop_per_step``, beside SimCLR's ``gflop_per_step``).

Figures: images/s of each loop, the ratio reference s / candidate s per pair (the speed-up), the hook's
overhead, the GFLOP of one step (counted by torch.utils.flop_counter) and the achieved TFLOP/s; on CUDA
the device's dense bf16 peak, the fraction of it reached and the peak GPU memory of the project's step
(measured alone, before the timing); with --memory-batch the activations autograd keeps at that batch;
unless --skip-snakemake, the time of `snakemake -n` on the full paper config.

  deepaug bench train --device cuda --batch-size 1024 --steps 20 --pairs 10
  deepaug bench train --device cpu --width 16 --batch-size 64 --steps 3 --pairs 7 --skip-snakemake   # laptop
  deepaug bench train --device cpu --width 16 --batch-size 8 --steps 2 --memory-batch 1024 --skip-snakemake
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from deepaug.bench.core import Loop, add_common_arguments, compare, non_negative_int, positive_int, require
from deepaug.core.augment import DeepAugment
from deepaug.core.layers import target_module
from deepaug.core.losses import nt_xent
from deepaug.domains.vision.augmentations import TwoViews, simclr_transform
from deepaug.domains.vision.batched_augment import BatchedSimCLRAugment
from deepaug.domains.vision.models import ARCHS, build_vision_model

NAME = "train"
HELP = "images/s of this project's SimCLR training step against a SupContrast-style loop"
UNIT = "images/s"
DESCRIPTION = __doc__

# Dense bf16 tensor-core peaks (TFLOP/s), by substring of the CUDA device name.
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "4090": 165.0,
    "V100": 125.0,
}
MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]
ROOT = Path(__file__).resolve().parents[3]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p, steps=20, warmup=3, pairs=10, unit=UNIT)
    g = p.add_argument_group("model and data (the same for every loop)")
    g.add_argument("--arch", default="resnet18", choices=sorted(ARCHS), help="CIFAR ResNet backbone")
    g.add_argument(
        "--width", type=positive_int, default=64, help="channels of the backbone's first stage (64: the paper's)"
    )
    g.add_argument(
        "--batch-size",
        type=positive_int,
        default=1024,
        help="images per step; each step trains on two views of each (2 x batch rows)",
    )
    g.add_argument(
        "--image-size", type=positive_int, default=32, help="side of the synthetic square images (CIFAR: 32)"
    )
    g.add_argument(
        "--dataset-size",
        type=positive_int,
        default=8192,
        help="synthetic uint8 images the batches are drawn from (with replacement)",
    )
    g = p.add_argument_group("the loops")
    g.add_argument(
        "--workers",
        type=non_negative_int,
        default=min(8, os.cpu_count() or 1),
        help="reference loop: DataLoader worker processes (0: transforms in the main process); "
        "default: the smaller of 8 and the CPU count, %(default)s here",
    )
    g.add_argument(
        "--precision",
        default="bf16",
        choices=["bf16", "fp32"],
        help="bf16 autocast or fp32: the project loops on CUDA (on the CPU they run fp32) and --memory-batch; "
        "the reference loop is always fp32",
    )
    g.add_argument(
        "--hook-method",
        default="dropout",
        choices=["dropout", "pca", "none"],
        help="Deep Augmentation of the variant loop (none: no variant, only reference and project)",
    )
    g.add_argument(
        "--hook-layer", type=non_negative_int, default=3, help="the layer the variant's Deep Augmentation transforms"
    )
    g.add_argument(
        "--ssl-methods",
        nargs="*",
        default=[],
        choices=["byol", "simsiam", "vicreg", "barlow_twins"],
        help="also time the step of these SSL methods beyond SimCLR, each a variant loop (cost per step vs SimCLR)",
    )
    g = p.add_argument_group("other figures")
    g.add_argument(
        "--memory-batch",
        type=non_negative_int,
        default=0,
        help="also measure the activations autograd saves at this batch (e.g. 1024; device-independent; 0: skip)",
    )
    g.add_argument(
        "--skip-snakemake",
        action="store_true",
        help="do not time `snakemake -n` on the full paper config (python -m deepaug.workflow.dag_bench)",
    )
    g.add_argument("--root", default=str(ROOT), help="workflow root for the `snakemake -n` timing")


def validate(args: argparse.Namespace) -> None:
    """Fail before any timing: a layer out of range names the valid ones (exit 1), impossible sizes exit 2."""
    require(args.batch_size >= 2, f"--batch-size {args.batch_size}: a contrastive batch needs at least 2 images")
    if args.hook_method != "none":
        target_module(build_vision_model(args.arch, 1), args.hook_layer)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_cifar(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Random uint8 images shaped like CIFAR (the step's cost does not depend on the pixels)."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def project_step_fn(model, images, batch: int, device, precision: str = "bf16", seed: int = 0):
    """One training step of the project's loop (a closure, no host sync).

    ``images``: uint8 N x C x H x W on ``device``.
    """
    aug = BatchedSimCLRAugment(images.shape[-1], MEAN, STD)
    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, **fused)
    g = torch.Generator(device=device).manual_seed(seed)
    cl = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(memory_format=cl)
    bf16 = device.type == "cuda" and precision == "bf16"

    def step():
        idx = torch.randint(0, images.shape[0], (batch,), device=device, generator=g)
        views = images[idx]
        x = torch.cat([aug(views, g), aug(views, g)]).contiguous(memory_format=cl)
        with torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False):
            z = model(x)
        loss = nt_xent(z, 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def ssl_step_fn(method: str, arch: str, width: int, images, batch: int, device, precision: str = "bf16", seed: int = 0):
    """One training step of SSL method ``method`` (deepaug.core.ssl) as :func:`project_step_fn` (same augmentations,
    precision and SGD): the model with the method's projector, its own modules, its loss and its step after each
    optimiser step, at its CIFAR recipe's sizes (recipes.py SSL_RECIPES)."""
    from deepaug.core.objectives import trained_parameters
    from deepaug.core.ssl import method_objective
    from deepaug.domains.vision.recipes import SSL_RECIPES
    from deepaug.domains.vision.train import VisionPretrainSettings

    sizes = SSL_RECIPES[method]["model"]
    s = VisionPretrainSettings(
        arch=arch, width=width, ssl_method=method, precision=precision if device.type == "cuda" else "fp32", **sizes
    ).resolved()
    torch.manual_seed(seed)
    model = build_vision_model(arch, width, 3, s.proj_dim, "cifar", s.proj_hidden_dim, method).to(device)
    obj = method_objective(method)
    extras = obj.extras(model, s, device)
    if extras is not None and hasattr(extras, "total_steps"):
        extras.total_steps = 10_000
    aug = BatchedSimCLRAugment(images.shape[-1], MEAN, STD)
    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.SGD(trained_parameters(model, extras), lr=0.1, momentum=0.9, weight_decay=1e-4, **fused)
    g = torch.Generator(device=device).manual_seed(seed)
    cl = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(memory_format=cl)
    if extras is not None and hasattr(extras, "target"):
        extras.target.to(memory_format=cl)
    bf16 = device.type == "cuda" and precision == "bf16"
    count = [0]

    def step():
        idx = torch.randint(0, images.shape[0], (batch,), device=device, generator=g)
        views = images[idx]
        x = torch.cat([aug(views, g), aug(views, g)]).contiguous(memory_format=cl)
        with torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False):
            z = model(x)
        loss = obj.loss(z, None, s, extras, lambda net: net(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        obj.step_done(model, extras, s, count[0])
        count[0] += 1
        return loss.detach()

    model.train()
    if extras is not None:
        extras.train()
    return step


def project_block(step, device):
    def block(n: int) -> None:
        for _ in range(n):
            step()
        _sync(device)

    return block


class _Draws(torch.utils.data.Sampler):
    """Indices drawn with replacement; how many is set before each block (one short epoch per block)."""

    def __init__(self, n_items: int, seed: int = 0) -> None:
        self.n_items, self.count = n_items, 0
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return iter(torch.randint(self.n_items, (self.count,), generator=self.generator).tolist())


def draws_loader(ds, batch: int, workers: int, device, seed: int = 0):
    """A DataLoader over ``ds`` in :class:`_Draws` order (persistent workers, full batches), and its sampler."""
    from torch.utils.data import DataLoader

    sampler = _Draws(len(ds), seed)
    loader = DataLoader(
        ds,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )
    return loader, sampler


def reference_block(model, images_u8: np.ndarray, batch: int, device, workers: int, seed: int = 0):
    """SupContrast's loop: per-image transforms in workers, fp32, plain SGD, ``.item()`` every step.

    ``block(n)`` iterates one epoch of exactly ``n`` batches; the workers persist between blocks and
    are idle once the epoch is consumed, so no prefetching overlaps another loop's timing and no block
    starts with batches made while another loop was timed."""

    ds = TwoViews(images_u8, simclr_transform(images_u8.shape[1], MEAN, STD))
    loader, sampler = draws_loader(ds, batch, workers, device, seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def block(n: int) -> None:
        sampler.count = n * batch
        for v1, v2 in loader:
            x = torch.cat([v1, v2]).to(device, non_blocking=True)
            loss = nt_xent(model(x), 0.5)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
        _sync(device)

    return block


def count_flops(model, batch: int, size: int, device) -> float:
    """FLOPs of one forward+backward at 2 x batch rows (both views)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(2 * batch, 3, size, size, device=device)
    with FlopCounterMode(display=False) as counter:
        nt_xent(model(x), 0.5).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def saved_activation_gib(model, batch: int, size: int, device, precision: str = "bf16") -> float:
    """Bytes autograd keeps for backward in one step at 2 x batch rows (unique storages), in GiB.

    Device-independent: measured with ``saved_tensors_hooks``, so a CPU run estimates what a GPU
    step holds (plus parameters, gradients and optimiser state, which are small for ResNet-18).
    """
    seen: dict[int, int] = {}
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in weights:  # parameters are counted separately
            seen[st.data_ptr()] = st.nbytes()
        return t

    x = torch.randn(2 * batch, 3, size, size, device=device)
    dtype = torch.bfloat16 if precision == "bf16" else None
    ctx = torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ctx:
        loss = nt_xent(model(x), 0.5)
    del loss
    return sum(seen.values()) / 2**30


def run(args: argparse.Namespace, device: torch.device) -> tuple[dict, dict]:
    """(the comparison, the figures) of the shared layout."""
    images_u8 = synthetic_cifar(args.dataset_size, args.image_size)
    images = torch.from_numpy(images_u8).to(device).permute(0, 3, 1, 2).contiguous()

    def fresh():
        torch.manual_seed(0)
        return build_vision_model(args.arch, args.width).to(device)

    figures: dict = {}
    if device.type == "cuda":  # the project step's own peak, before the other loops hold memory
        step = project_step_fn(fresh(), images, args.batch_size, device, args.precision)
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        project_block(step, device)(max(args.warmup, 1))
        peak_memory = torch.cuda.max_memory_allocated(device) / 2**30
        del step
        torch.cuda.empty_cache()

    reference = Loop(
        "supcontrast",
        f"per-image torchvision transforms in {args.workers} DataLoader workers, fp32, plain SGD",
        reference_block(fresh(), images_u8, args.batch_size, device, args.workers),
    )
    candidate = Loop(
        "project",
        "data on the device, batched augmentations"
        + (f", {args.precision} autocast, channels_last, fused SGD" if device.type == "cuda" else ", fp32"),
        project_block(project_step_fn(fresh(), images, args.batch_size, device, args.precision), device),
    )
    variants = []
    if args.hook_method != "none":
        model = fresh()
        DeepAugment(kind=args.hook_method, rate=0.5, p=0.5, seed=0).attach(target_module(model, args.hook_layer))
        variants.append(
            Loop(
                f"project+{args.hook_method}",
                f"the project's step with {args.hook_method} at layer {args.hook_layer}",
                project_block(project_step_fn(model, images, args.batch_size, device, args.precision), device),
            )
        )
    for method in args.ssl_methods:
        variants.append(
            Loop(
                f"project+ssl:{method}",
                f"the project's step of {method} (its recipe's projector and predictor sizes), no Deep Augmentation",
                project_block(
                    ssl_step_fn(method, args.arch, args.width, images, args.batch_size, device, args.precision), device
                ),
            )
        )
    images_per_step = 2 * args.batch_size
    comparison = compare(
        reference,
        candidate,
        variants,
        steps=args.steps,
        warmup=args.warmup,
        pairs=args.pairs,
        items_per_step=images_per_step,
    )

    project_rate = comparison["candidate"]["rate"]["median"]
    figures["images_per_step"] = images_per_step
    figures["project_images_per_s"] = project_rate
    figures["reference_images_per_s"] = comparison["reference"]["rate"]["median"]
    figures["speedup_vs_reference"] = comparison["ratio"]["median"]
    for name, v in comparison["variants"].items():
        if name.startswith("project+ssl:"):  # seconds per step relative to SimCLR's (the candidate's)
            figures[f"ssl_{name.split(':', 1)[1]}_step_vs_simclr"] = round(v["ratio_to_candidate"]["median"], 3)
        else:
            figures["deepaug_hook_overhead_pct"] = round(100 * (v["ratio_to_candidate"]["median"] - 1), 1)
    figures["cifar10_epoch_s_project"] = round(2 * 50_000 / project_rate, 2)
    flops = count_flops(fresh(), args.batch_size, args.image_size, device)
    for method in args.ssl_methods:  # the FLOPs of one whole step (the timings on a loaded CPU are noisy)
        from torch.utils.flop_counter import FlopCounterMode

        step = ssl_step_fn(method, args.arch, args.width, images, args.batch_size, device, args.precision)
        with FlopCounterMode(display=False) as counter:
            step()
        figures[f"ssl_{method}_gflop_per_step"] = round(counter.get_total_flops() / 1e9, 2)
    tflops = flops * args.steps / comparison["candidate"]["seconds"]["median"] / 1e12
    figures["gflop_per_step"] = round(flops / 1e9, 2)
    figures["achieved_tflops"] = round(tflops, 4 if device.type == "cpu" else 1)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        if peak:
            figures["peak_bf16_tflops"] = peak
            figures["fraction_of_peak"] = round(tflops / peak, 3)
        figures["peak_memory_gib"] = round(peak_memory, 2)
    if args.memory_batch:
        m = fresh()
        figures["memory_batch_size"] = args.memory_batch
        figures["saved_activations_gib"] = round(
            saved_activation_gib(m, args.memory_batch, args.image_size, device, args.precision), 2
        )
        figures["params_grads_momentum_gib"] = round(3 * 4 * sum(p.numel() for p in m.parameters()) / 2**30, 3)
    if not args.skip_snakemake:
        from deepaug.workflow.dag_bench import snakemake_dry_run_seconds

        dry = snakemake_dry_run_seconds(Path(args.root))
        figures["snakemake_dry_run_full_config_s"] = None if dry is None else round(dry, 2)
    return comparison, figures
