# One job per run of the run table (every domain, both objectives): it trains the run, then evaluates
# the trained model on frozen features (Deep Augmentation is never applied there), in one process
# (`python -m deepaug pretrain-<domain> ... :: eval-<domain> ...`). Checkpoints live under checkpoints/,
# outside the job's outputs, so a killed job resumes instead of restarting when Snakemake re-runs it,
# and a finished training is kept there: a job re-run for its evaluation settings (or a retry after
# the evaluation failed) gets the trained model back and only evaluates (config checkpoints.reuse).
# The domain (deepaug/domains/<name>) gives the inputs and the command.


rule train:
    input:
        run_inputs,
    output:
        model=f"results/{RUN_DIR}/model.pt",
        metrics=f"results/{RUN_DIR}/train_metrics.jsonl",
        provenance=f"results/{RUN_DIR}/provenance.json",
        eval=f"results/{RUN_DIR}/eval.json",
    log:
        TRAIN_LOG,
    benchmark:
        f"benchmarks/train/{RUN_DIR}.tsv"
    retries: (config.get("resources") or {}).get("retries", 2)
    group:
        job_group("train")  # on a cluster only: deepaug.workflow.resources.JobResources.group
    conda:
        conda_env
    threads: job_threads(dataloader=True)
    resources:
        **run_job(runtime=720, packed=True),
    params:
        cmd=run_command,
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} > {log:q} 2>&1"
