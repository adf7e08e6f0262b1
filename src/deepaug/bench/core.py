"""What every benchmark shares: interleaved timing, the statistics of the per-pair ratio, one JSON layout,
the common flags and the console summary.

A benchmark compares a **reference** loop with a **candidate** loop (and optionally **variants** of the
candidate, e.g. the candidate with a Deep Augmentation hook). Each loop is a :class:`Loop` whose
``block(n)`` runs ``n`` steps and returns when the device is idle. After one warm-up block of each loop,
the loops are timed **interleaved** in one process: reference, candidate[, variants], reference,
candidate, ... Each round gives one pair, and the figure is the median of the per-pair ratio
(reference seconds / candidate seconds), with its quartiles and range: a load that comes and goes hits
both halves of a pair, so the ratio holds on a busy machine where timing one loop after the other does
not.

The layout of every benchmark's JSON (``deepaug bench <name> --out FILE``)::

    {"benchmark": name, "description": ..., "device": ..., "created_at": ISO time (UTC),
     "settings": {every flag},
     "unit": "images/s", "steps_per_block": n, "warmup_steps": n, "pairs": n,
     "ratio_definition": "reference seconds / candidate seconds of one pair (above 1: the candidate is faster)",
     "reference": LOOP, "candidate": LOOP,
     "ratio": STATS,
     "variants": {name: LOOP + {"ratio_to_candidate": STATS}},   # variant seconds / candidate seconds
     "figures": {benchmark-specific numbers, e.g. TFLOP/s, peak memory},
     "env": {python, torch, threads, cpu, gpu, cuda, load average at start and end, ...}}

    LOOP  = {"name", "description", "seconds": STATS (per block of steps_per_block steps), "rate": STATS (unit)}
    STATS = {"median", "q1", "q3", "min", "max"}
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from deepaug.core.vocabulary import check_device
from deepaug.errors import UsageError

LAYOUT_KEYS = (
    "benchmark",
    "description",
    "device",
    "created_at",
    "settings",
    "unit",
    "steps_per_block",
    "warmup_steps",
    "pairs",
    "ratio_definition",
    "reference",
    "candidate",
    "ratio",
    "variants",
    "figures",
    "env",
)
STATS_KEYS = ("median", "q1", "q3", "min", "max")
LOOP_KEYS = ("name", "description", "seconds", "rate")
RATIO_DEFINITION = "reference seconds / candidate seconds of one pair (above 1: the candidate is faster)"
VARIANT_RATIO_DEFINITION = "variant seconds / candidate seconds of one round (above 1: the variant is slower)"


@dataclass
class Loop:
    """One timed loop: ``block(n)`` runs ``n`` steps and returns once the device is idle (synchronised)."""

    name: str
    description: str
    block: Callable[[int], object]


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles (linear interpolation, as ``numpy.percentile``), min and max."""
    import numpy as np

    if len(values) == 0:
        raise ValueError("no values to summarise")
    a = np.asarray(values, dtype=float)
    q1, median, q3 = np.percentile(a, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "min": float(a.min()), "max": float(a.max())}


def _rounded(stats: dict[str, float], digits: int) -> dict[str, float]:
    return {k: round(v, digits) for k, v in stats.items()}


def warm_up(loops: Iterable[Loop], steps: int) -> None:
    """One untimed block of ``steps`` steps of each loop, in order (compilation, autotuning, workers)."""
    if steps > 0:
        for loop in loops:
            loop.block(steps)


def interleave(
    loops: Sequence[Loop], steps: int, rounds: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, list[float]]:
    """Seconds of each block of ``steps`` steps, the loops taking turns: ``rounds`` times A, B[, C ...]."""
    seconds: dict[str, list[float]] = {loop.name: [] for loop in loops}
    for _ in range(rounds):
        for loop in loops:
            t0 = clock()
            loop.block(steps)
            seconds[loop.name].append(clock() - t0)
    return seconds


def compare(
    reference: Loop,
    candidate: Loop,
    variants: Sequence[Loop] = (),
    *,
    steps: int,
    warmup: int,
    pairs: int,
    items_per_step: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Warm up each loop, time them interleaved, and summarise: the comparison part of the layout."""
    loops = [reference, candidate, *variants]
    if len({loop.name for loop in loops}) != len(loops):
        raise ValueError(f"loop names must differ: {[loop.name for loop in loops]}")
    warm_up(loops, warmup)
    seconds = interleave(loops, steps, pairs, clock)

    def loop_stats(loop: Loop) -> dict:
        s = seconds[loop.name]
        return {
            "name": loop.name,
            "description": loop.description,
            "seconds": _rounded(summarize(s), 6),
            "rate": _rounded(summarize([items_per_step * steps / t for t in s]), 2),
        }

    ref, cand = seconds[reference.name], seconds[candidate.name]
    out = {
        "steps_per_block": steps,
        "warmup_steps": warmup,
        "pairs": pairs,
        "ratio_definition": RATIO_DEFINITION,
        "reference": loop_stats(reference),
        "candidate": loop_stats(candidate),
        "ratio": _rounded(summarize([r / c for r, c in zip(ref, cand)]), 4),
        "variants": {},
    }
    for v in variants:
        ratios = [t / c for t, c in zip(seconds[v.name], cand)]
        out["variants"][v.name] = {
            **loop_stats(v),
            "ratio_to_candidate": _rounded(summarize(ratios), 4),
            "ratio_definition": VARIANT_RATIO_DEFINITION,
        }
    return out


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def environment(device, load_at_start: float | None = None) -> dict:
    """What the figures depend on besides the settings: versions, threads, CPU and GPU, machine load."""
    import torch

    from deepaug.engine.provenance import git_commit

    cuda = getattr(device, "type", str(device)) == "cuda"
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "git_commit": git_commit(),
        "host": platform.node(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "load_average_1min_at_start": load_at_start,
        "load_average_1min_at_end": _load(),
    }


def report(
    benchmark: str, description: str, device: str, settings: dict, unit: str, comparison: dict, figures: dict, env: dict
) -> dict:
    """The JSON layout every benchmark writes (see the module's docstring)."""
    from datetime import datetime, timezone

    out = {
        "benchmark": benchmark,
        "description": description,
        "device": device,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "unit": unit,
        **comparison,
        "figures": figures,
        "env": env,
    }
    return {key: out[key] for key in LAYOUT_KEYS}


# ---- the command line -------------------------------------------------------------------------------


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every flag's help; the description's line breaks kept."""


def positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def non_negative_int(s: str) -> int:
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {v}")
    return v


def _device(s: str) -> str:
    try:
        check_device(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {s!r}") from None
    return s


def add_common_arguments(p: argparse.ArgumentParser, *, steps: int, warmup: int, pairs: int, unit: str) -> None:
    """The flags every benchmark has: device, timing (steps, warm-up, pairs) and output."""
    g = p.add_argument_group("timing (shared by every benchmark)")
    g.add_argument(
        "--device",
        type=_device,
        default="auto",
        help="auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N",
    )
    g.add_argument(
        "--steps",
        type=positive_int,
        default=steps,
        help="steps in one timed block; one pair = a block of the reference loop, then one of the candidate",
    )
    g.add_argument(
        "--warmup",
        type=non_negative_int,
        default=warmup,
        help="untimed steps of each loop before the first pair (compilation, autotuning, workers)",
    )
    g.add_argument(
        "--pairs",
        type=positive_int,
        default=pairs,
        help="interleaved pairs (rounds) timed; the ratio's median and spread are over these",
    )
    g.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help=f"also write the report as JSON here (the layout shared by every benchmark; rates in {unit})",
    )


def resolve(name: str):
    """The device to time on: ``auto`` picks a (free) GPU when there is one, else the CPU, quietly."""
    import torch

    from deepaug.engine.training import resolve_device

    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    return resolve_device(name)


def device_label(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({_cpu_name()}, {torch.get_num_threads()} threads)"


def _fmt_stats(stats: dict, digits: int) -> str:
    f = f"{{:.{digits}f}}"
    return (
        f"median {f.format(stats['median'])}  IQR {f.format(stats['q1'])}-{f.format(stats['q3'])}  "
        f"min-max {f.format(stats['min'])}-{f.format(stats['max'])}"
    )


def format_report(r: dict) -> str:
    """The console summary of a report."""
    lines = [
        f"deepaug bench {r['benchmark']}: {r['device']}; {r['pairs']} interleaved pairs of "
        f"{r['steps_per_block']} step(s) after {r['warmup_steps']} warm-up step(s) of each loop"
    ]
    loops = [r["reference"], r["candidate"], *r["variants"].values()]
    width = max(len(loop["name"]) for loop in loops) + 2
    for role, loop in [("reference", r["reference"]), ("candidate", r["candidate"])] + [
        ("variant", v) for v in r["variants"].values()
    ]:
        lines.append(f"  {role:<9} {loop['name']:<{width}} {r['unit']}: {_fmt_stats(loop['rate'], 1)}")
    lines.append(f"  ratio (reference s / candidate s, per pair): {_fmt_stats(r['ratio'], 3)}  ({r['pairs']} pairs)")
    for name, v in r["variants"].items():
        lines.append(f"  {name} s / candidate s, per round: {_fmt_stats(v['ratio_to_candidate'], 3)}")
    if r["figures"]:
        width = max(len(k) for k in r["figures"])
        lines += [f"  {k:<{width}}  {v}" for k, v in r["figures"].items()]
    env = r["env"]
    lines.append(
        f"  torch {env['torch']}, {env['torch_threads']} threads, load average "
        f"{env['load_average_1min_at_start']} -> {env['load_average_1min_at_end']}"
    )
    return "\n".join(lines)


def run(module, args: argparse.Namespace) -> dict:
    """Run the benchmark ``module`` with its parsed flags: time, report, print, and write ``--out``."""
    load = _load()
    if hasattr(module, "validate"):
        module.validate(args)
    device = resolve(args.device)
    settings = {k: v for k, v in sorted(vars(args).items()) if k not in ("func", "command", "benchmark", "out")}
    comparison, figures = module.run(args, device)
    r = report(
        module.NAME,
        module.HELP,
        device_label(device),
        settings,
        module.UNIT,
        comparison,
        figures,
        environment(device, load),
    )
    print(format_report(r), flush=True)
    if args.out:
        from deepaug.io import write_json

        write_json(args.out, r)
    return r


def require(condition: bool, message: str) -> None:
    """An impossible combination of flags: one line, exit status 2."""
    if not condition:
        raise UsageError(message)
