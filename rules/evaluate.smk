# Downstream evaluation of every run on frozen features (Deep Augmentation is never applied here).


rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        f"results/{RUN_DIR}/eval.json",
    log:
        f"logs/evaluate/{RUN_DIR}.log",
    benchmark:
        f"benchmarks/evaluate/{RUN_DIR}.tsv"
    conda:
        conda_env
    threads: job_threads()
    resources:
        **run_job(),
    params:
        cmd=eval_command,
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} > {log:q} 2>&1"
