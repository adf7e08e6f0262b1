# Training: one job per run of the run table (every domain, both objectives). Checkpoints live under
# checkpoints/, outside the job's outputs, so a killed job resumes instead of restarting when Snakemake
# re-runs it. The domain (deepaug/domains/<name>) gives the inputs and the command.


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"results/{RUN_DIR}/model.pt",
        metrics=f"results/{RUN_DIR}/train_metrics.jsonl",
        provenance=f"results/{RUN_DIR}/provenance.json",
    log:
        f"logs/train/{RUN_DIR}.log",
    benchmark:
        f"benchmarks/train/{RUN_DIR}.tsv"
    retries: (config.get("resources") or {}).get("retries", 2)
    conda:
        conda_env
    threads: job_threads(dataloader=True)
    resources:
        **run_job(runtime=720),
    params:
        cmd=train_command,
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} > {log:q} 2>&1"
