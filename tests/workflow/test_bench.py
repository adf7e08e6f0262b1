from deepaug.bench import main


def test_bench_runs_both_loops_and_prints_the_ratio(capsys, tmp_path):
    assert main(["--device", "cpu", "--width", "4", "--batch-size", "8", "--image-size", "16", "--dataset-size", "64",
                 "--steps", "2", "--warmup", "1", "--workers", "0", "--skip-snakemake", "--out", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    for key in ("project_images_per_s", "reference_images_per_s", "speedup_vs_reference", "deepaug_hook_overhead_pct",
                "gflop_per_step", "achieved_tflops"):
        assert key in out
    assert (tmp_path / "b.json").exists()


def test_saved_activation_memory_scales_with_batch():
    import torch

    from deepaug.bench import saved_activation_gib
    from deepaug.domains.vision.models import build_vision_model

    torch.manual_seed(0)
    model = build_vision_model("resnet18", width=4)
    small = saved_activation_gib(model, 4, 16, torch.device("cpu"), "fp32")
    large = saved_activation_gib(model, 8, 16, torch.device("cpu"), "fp32")
    assert small > 0 and 1.8 < large / small < 2.1
