"""Training-throughput benchmark: this project's SimCLR step against a SupContrast-style reference loop.

In ONE run on the same device, for the same model, batch and number of steps:

* ``project``: uint8 dataset resident on the device, SimCLR augmentations batched on the device,
  bf16 autocast + channels_last + fused SGD on CUDA, no host sync inside the step;
* ``reference``: per-image torchvision v2 transforms in DataLoader workers, fp32, plain SGD
  (the SupContrast way);
* ``project + Deep Augmentation``: the project's step with dropout at a layer (the hook's overhead).

Prints images/s for each and the ratios; on CUDA also the achieved TFLOP/s (FLOPs counted by
``torch.utils.flop_counter`` on one step) against the device's dense bf16 peak, and the peak GPU
memory. Also times ``snakemake -n`` on the full paper config.

    python -m deepaug.bench --device cuda --batch-size 1024 --steps 20
    python -m deepaug.bench --device cpu --width 16 --batch-size 128 --steps 5     # laptop
    python -m deepaug.bench --device cpu --width 16 --batch-size 8 --steps 2 --memory-batch 1024  # memory at 1024
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deepaug.core.augment import DeepAugment
from deepaug.domains.vision.augmentations import TwoViews, simclr_transform
from deepaug.domains.vision.batched_augment import BatchedSimCLRAugment
from deepaug.core.layers import target_module
from deepaug.core.losses import nt_xent
from deepaug.domains.vision.models import build_vision_model

# Dense bf16 tensor-core peaks (TFLOP/s), by substring of the CUDA device name.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0, "V100": 125.0}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_cifar(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Random uint8 images shaped like CIFAR (the step's cost does not depend on the pixels)."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def project_step_fn(model, images_u8, batch, device, precision="bf16"):
    """One training step of the project's loop (returns a closure, no host sync)."""
    mean, std = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]
    aug = BatchedSimCLRAugment(images_u8.shape[1], mean, std)
    images = torch.from_numpy(images_u8).to(device).permute(0, 3, 1, 2).contiguous()
    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, **fused)
    g = torch.Generator(device=device).manual_seed(0)
    cl = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(memory_format=cl)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (device.type == "cuda" and precision == "bf16") else torch.autocast(device.type, enabled=False)

    def step():
        idx = torch.randint(0, images.shape[0], (batch,), device=device, generator=g)
        views = images[idx]
        x = torch.cat([aug(views, g), aug(views, g)]).contiguous(memory_format=cl)
        with autocast:
            z = model(x)
        loss = nt_xent(z, 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def reference_batches(images_u8, batch, workers, seed=0):
    from torch.utils.data import DataLoader, RandomSampler

    ds = TwoViews(images_u8, simclr_transform(images_u8.shape[1], [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]))
    sampler = RandomSampler(ds, replacement=True, num_samples=10**9, generator=torch.Generator().manual_seed(seed))
    return iter(DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers, drop_last=True,
                           persistent_workers=workers > 0, pin_memory=torch.cuda.is_available()))


def reference_step_fn(model, images_u8, batch, device, workers):
    """SupContrast's loop: per-image transforms in workers, fp32, plain SGD, .item() every step."""
    it = reference_batches(images_u8, batch, workers)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def step():
        v1, v2 = next(it)
        x = torch.cat([v1, v2]).to(device, non_blocking=True)
        z = model(x)
        loss = nt_xent(z, 0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def time_steps(step, steps, warmup, device) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - t0


def count_flops(model, batch, size, device) -> float:
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


def run(args) -> dict:
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    images = synthetic_cifar(args.dataset_size, args.image_size)
    results = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
               "batch_size": args.batch_size, "width": args.width, "steps": args.steps, "images_per_step": 2 * args.batch_size}

    def fresh():
        torch.manual_seed(0)
        return build_vision_model(args.arch, args.width).to(device)

    timings = {}
    model = fresh()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timings["project"] = time_steps(project_step_fn(model, images, args.batch_size, device, args.precision), args.steps, args.warmup, device)
    if device.type == "cuda":
        results["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    model = fresh()
    DeepAugment(kind="dropout", rate=0.5, p=0.5, seed=0).attach(target_module(model, args.hook_layer))
    timings["project_deepaug"] = time_steps(project_step_fn(model, images, args.batch_size, device, args.precision), args.steps, args.warmup, device)
    model = fresh()
    timings["reference"] = time_steps(reference_step_fn(model, images, args.batch_size, device, args.workers), args.steps, args.warmup, device)

    for name, seconds in timings.items():
        results[f"{name}_images_per_s"] = round(2 * args.batch_size * args.steps / seconds, 1)
    results["speedup_vs_reference"] = round(timings["reference"] / timings["project"], 2)
    results["deepaug_hook_overhead_pct"] = round(100 * (timings["project_deepaug"] / timings["project"] - 1), 1)
    epoch_images = 2 * 50_000
    results["cifar10_epoch_s_project"] = round(epoch_images / results["project_images_per_s"], 2)
    flops = count_flops(fresh(), args.batch_size, args.image_size, device)
    tflops = flops * args.steps / timings["project"] / 1e12
    results["gflop_per_step"] = round(flops / 1e9, 2)
    results["achieved_tflops"] = round(tflops, 4 if device.type == "cpu" else 1)
    if device.type == "cuda":
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in results["device"]), None)
        if peak:
            results["peak_bf16_tflops"] = peak
            results["fraction_of_peak"] = round(tflops / peak, 3)
    if args.memory_batch:
        m = fresh()
        results["memory_batch_size"] = args.memory_batch
        results["saved_activations_gib"] = round(saved_activation_gib(m, args.memory_batch, args.image_size, device, args.precision), 2)
        params = sum(p.numel() for p in m.parameters())
        results["params_grads_momentum_gib"] = round(3 * 4 * params / 2**30, 3)
    if not args.skip_snakemake:
        from deepaug.workflow.dag_bench import snakemake_dry_run_seconds

        dry = snakemake_dry_run_seconds(Path(args.root))
        results["snakemake_dry_run_full_config_s"] = None if dry is None else round(dry, 2)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m deepaug.bench", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--dataset-size", type=int, default=8192)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--hook-layer", type=int, default=3)
    p.add_argument("--root", default=str(Path(__file__).resolve().parents[2]), help="workflow root for the dry-run timing")
    p.add_argument("--skip-snakemake", action="store_true")
    p.add_argument("--memory-batch", type=int, default=0,
                   help="also measure the activations autograd saves at this batch (e.g. 1024; device-independent)")
    p.add_argument("--out", help="also write the figures as JSON here")
    args = p.parse_args(argv)
    results = run(args)
    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {v}")
    if args.out:
        from deepaug.workflow.io import write_json

        write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
