"""``deepaug bench``: the loops are timed interleaved after a warm-up of each, the ratio's statistics, the
JSON layout every benchmark shares, the documented flags. Nothing here asserts on speed."""

import json
import re
import types
from pathlib import Path

import pytest

from deepaug import bench
from deepaug.bench.core import LAYOUT_KEYS, LOOP_KEYS, STATS_KEYS, Loop, compare, summarize

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """Time advances only when a fake loop runs: ``durations[name]`` gives one block's seconds in turn."""

    def __init__(self, durations: dict[str, list[float]]):
        self.now, self.durations, self.calls = 0.0, {k: list(v) for k, v in durations.items()}, []

    def __call__(self) -> float:
        return self.now

    def loop(self, name: str) -> Loop:
        def block(n: int) -> None:
            self.calls.append((name, n))
            self.now += self.durations[name].pop(0)

        return Loop(name, f"fake {name}", block)


def test_loops_are_warmed_up_then_timed_in_turn():
    clock = FakeClock({"A": [9.0] + [2.0] * 3, "B": [9.0] + [1.0] * 3, "C": [9.0] + [1.5] * 3})
    out = compare(
        clock.loop("A"), clock.loop("B"), [clock.loop("C")], steps=5, warmup=2, pairs=3, items_per_step=4, clock=clock
    )
    assert clock.calls == [("A", 2), ("B", 2), ("C", 2)] + [("A", 5), ("B", 5), ("C", 5)] * 3
    assert out["pairs"] == 3 and out["steps_per_block"] == 5 and out["warmup_steps"] == 2
    # the warm-up's 9 s never enter the figures
    assert out["reference"]["seconds"]["max"] == 2.0 and out["candidate"]["seconds"]["max"] == 1.0
    assert out["ratio"] == {"median": 2.0, "q1": 2.0, "q3": 2.0, "min": 2.0, "max": 2.0}
    assert out["variants"]["C"]["ratio_to_candidate"]["median"] == 1.5
    assert out["candidate"]["rate"]["median"] == 4 * 5 / 1.0  # items per step x steps / seconds


def test_no_warmup_means_no_untimed_block():
    clock = FakeClock({"A": [1.0, 1.0], "B": [1.0, 1.0]})
    compare(clock.loop("A"), clock.loop("B"), steps=3, warmup=0, pairs=2, items_per_step=1, clock=clock)
    assert clock.calls == [("A", 3), ("B", 3), ("A", 3), ("B", 3)]


def test_a_load_that_hits_both_halves_of_a_pair_leaves_the_ratio_alone():
    """The failure of timing one loop after the other: load comes and goes (x1, x5, x1, x3, x1)."""
    load = [1, 5, 1, 3, 1]
    clock = FakeClock({"ref": [1.0] + [2.4 * f for f in load], "cand": [1.0] + [2.0 * f for f in load]})
    out = compare(clock.loop("ref"), clock.loop("cand"), steps=1, warmup=1, pairs=5, items_per_step=1, clock=clock)
    assert out["ratio"]["median"] == pytest.approx(1.2) and out["ratio"]["min"] == pytest.approx(1.2)
    assert out["ratio"]["max"] == pytest.approx(1.2)
    assert out["reference"]["seconds"]["max"] == pytest.approx(12.0)  # while each loop's own times spread 5x


def test_statistics_on_known_numbers():
    assert summarize([5, 1, 4, 2, 3]) == {"median": 3.0, "q1": 2.0, "q3": 4.0, "min": 1.0, "max": 5.0}
    assert summarize([4, 1, 3, 2]) == {"median": 2.5, "q1": 1.75, "q3": 3.25, "min": 1.0, "max": 4.0}
    assert summarize([7]) == dict.fromkeys(STATS_KEYS, 7.0)
    with pytest.raises(ValueError):
        summarize([])
    # per-pair ratios: reference [2, 4, 6] s over candidate [1, 1, 2] s -> [2, 4, 3]
    clock = FakeClock({"r": [2.0, 4.0, 6.0], "c": [1.0, 1.0, 2.0]})
    out = compare(clock.loop("r"), clock.loop("c"), steps=1, warmup=0, pairs=3, items_per_step=10, clock=clock)
    assert out["ratio"] == {"median": 3.0, "q1": 2.5, "q3": 3.5, "min": 2.0, "max": 4.0}
    assert out["reference"]["seconds"] == {"median": 4.0, "q1": 3.0, "q3": 5.0, "min": 2.0, "max": 6.0}
    assert out["candidate"]["rate"] == {"median": 10.0, "q1": 7.5, "q3": 10.0, "min": 5.0, "max": 10.0}


def _check_layout(report: dict) -> None:
    assert set(report) == set(LAYOUT_KEYS)
    for loop in [report["reference"], report["candidate"], *report["variants"].values()]:
        assert set(LOOP_KEYS) <= set(loop)
        assert set(loop["seconds"]) == set(STATS_KEYS) and set(loop["rate"]) == set(STATS_KEYS)
    assert set(report["ratio"]) == set(STATS_KEYS)
    for v in report["variants"].values():
        assert set(v["ratio_to_candidate"]) == set(STATS_KEYS)
    assert {
        "python",
        "torch",
        "torch_threads",
        "cpu",
        "gpu",
        "load_average_1min_at_start",
        "load_average_1min_at_end",
    } <= set(report["env"])
    assert re.match(r"\d{4}-\d\d-\d\dT", report["created_at"])


def _fake_benchmark():
    """A benchmark module as a later issue would add one (e.g. `bench data`), with instant fake loops."""

    def add_arguments(p):
        from deepaug.bench.core import add_common_arguments

        add_common_arguments(p, steps=2, warmup=1, pairs=3, unit="batches/s")
        p.add_argument("--size", type=int, default=7, help="a setting of its own")

    def run(args, device):
        loops = [Loop(n, n, lambda k: None) for n in ("slow", "fast")]
        return compare(*loops, steps=args.steps, warmup=args.warmup, pairs=args.pairs, items_per_step=1), {
            "size": args.size
        }

    return types.SimpleNamespace(
        NAME="fake", HELP="a fake benchmark", UNIT="batches/s", DESCRIPTION="fake", add_arguments=add_arguments, run=run
    )


def test_a_registered_benchmark_gets_the_cli_and_the_shared_layout(monkeypatch, tmp_path, capsys):
    from deepaug.cli import main

    monkeypatch.setitem(bench.BENCHMARKS, "fake", _fake_benchmark())
    out = tmp_path / "fake.json"
    assert main(["bench", "fake", "--device", "cpu", "--pairs", "4", "--size", "9", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    _check_layout(report)
    assert report["benchmark"] == "fake" and report["unit"] == "batches/s" and report["pairs"] == 4
    assert (
        report["settings"]["size"] == 9 and report["settings"]["device"] == "cpu" and report["figures"] == {"size": 9}
    )
    assert "ratio (reference s / candidate s, per pair): median" in capsys.readouterr().out


def test_train_benchmark_end_to_end_and_the_module_alias(tmp_path, capsys):
    """The real loops at a toy size, through ``python -m deepaug.bench`` (no name: train)."""
    out = tmp_path / "b.json"
    assert (
        bench.main(
            [
                "--device",
                "cpu",
                "--width",
                "2",
                "--batch-size",
                "4",
                "--image-size",
                "8",
                "--dataset-size",
                "16",
                "--steps",
                "1",
                "--warmup",
                "1",
                "--pairs",
                "2",
                "--workers",
                "0",
                "--skip-snakemake",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    _check_layout(report)
    assert report["benchmark"] == "train" and report["unit"] == "images/s" and report["pairs"] == 2
    assert report["reference"]["name"] == "supcontrast" and report["candidate"]["name"] == "project"
    assert list(report["variants"]) == ["project+dropout"]
    for key in (
        "project_images_per_s",
        "reference_images_per_s",
        "speedup_vs_reference",
        "deepaug_hook_overhead_pct",
        "gflop_per_step",
        "achieved_tflops",
    ):
        assert key in report["figures"]
    assert report["figures"]["speedup_vs_reference"] == report["ratio"]["median"]
    printed = capsys.readouterr().out
    assert "2 interleaved pairs" in printed and "ratio (reference s / candidate s" in printed


def _help(argv, capsys) -> str:
    from deepaug.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_help_documents_every_flag_of_every_benchmark(capsys):
    from deepaug.cli import build_parser

    listing = _help(["bench", "--help"], capsys)
    assert "bench" in _help(["--help"], capsys)
    top = build_parser("bench")
    bench_parser = top._subparsers._group_actions[0].choices["bench"]
    benchmarks = bench_parser._subparsers._group_actions[0].choices
    assert set(benchmarks) == set(bench.BENCHMARKS) and "train" in benchmarks
    for name, parser in benchmarks.items():
        assert name in listing
        text = _help(["bench", name, "--help"], capsys)
        flags = [a for a in parser._actions if a.option_strings and a.dest != "help"]
        assert len(flags) >= 10 if name == "train" else flags
        for action in flags:
            assert action.help, f"bench {name} {action.option_strings[0]}: no help"
            for option in action.option_strings:
                assert option in text, f"bench {name}: {option} not in --help"
    train_help = _help(["bench", "train", "--help"], capsys)
    for flag in ("--pairs", "--warmup", "--steps", "--device", "--out", "--workers", "--hook-layer", "--memory-batch"):
        assert flag in train_help


@pytest.mark.parametrize(
    "argv, status, words",
    [
        (["--pairs", "0"], 2, "--pairs"),
        (["--warmup", "-1"], 2, "--warmup"),
        (["--device", "tpu"], 2, "--device"),
        (["--batch-size", "1"], 2, "at least 2 images"),
        (["--hook-layer", "99"], 1, "out of range"),
    ],
)
def test_impossible_flags_stop_before_any_timing_with_one_line(argv, status, words, capsys):
    from deepaug.cli import main

    try:
        code = main(["bench", "train", "--device", "cpu", "--skip-snakemake", *argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # argparse prints its usage above
    assert code == status and "Traceback" not in err
    assert last.startswith("deepaug bench") and "error:" in last and words in last


def test_the_snakemake_rule_runs_the_subcommand_with_flags_it_accepts():
    from deepaug.cli import build_parser

    text = (ROOT / "rules" / "bench.smk").read_text()
    command = re.search(r'shell:\s*\n\s*"(.*)"', text).group(1)
    assert command.startswith("python -m deepaug bench train ")
    assert "results/bench/throughput.json" in text
    flags = re.search(r'flags="([^"]*)"', text).group(1).split()
    args = build_parser("bench").parse_args(["bench", "train", *flags, "--out", "x.json"])
    assert args.benchmark == "train" and args.skip_snakemake and args.pairs >= 3


def test_saved_activation_memory_scales_with_batch():
    import torch

    from deepaug.bench.train import saved_activation_gib
    from deepaug.domains.vision.models import build_vision_model

    torch.manual_seed(0)
    model = build_vision_model("resnet18", width=4)
    small = saved_activation_gib(model, 4, 16, torch.device("cpu"), "fp32")
    large = saved_activation_gib(model, 8, 16, torch.device("cpu"), "fp32")
    assert small > 0 and 1.8 < large / small < 2.1


@pytest.mark.parametrize("method", ["byol", "simsiam", "vicreg", "barlow_twins"])
def test_the_train_benchmark_steps_each_ssl_method(method):
    """`deepaug bench train --ssl-methods`: each method's step trains (finite loss, the weights move)."""
    import torch

    from deepaug.bench.train import ssl_step_fn, synthetic_cifar

    images = torch.from_numpy(synthetic_cifar(32, 8)).permute(0, 3, 1, 2).contiguous()
    step = ssl_step_fn(method, "resnet18", 2, images, 8, torch.device("cpu"), "fp32")
    first = step()
    assert torch.isfinite(first) and torch.isfinite(step())
