from deepaug.bench import main


def test_bench_runs_both_loops_and_prints_the_ratio(capsys, tmp_path):
    assert main(["--device", "cpu", "--width", "4", "--batch-size", "8", "--image-size", "16", "--dataset-size", "64",
                 "--steps", "2", "--warmup", "1", "--workers", "0", "--skip-snakemake", "--out", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    for key in ("project_images_per_s", "reference_images_per_s", "speedup_vs_reference", "deepaug_hook_overhead_pct"):
        assert key in out
    assert (tmp_path / "b.json").exists()
