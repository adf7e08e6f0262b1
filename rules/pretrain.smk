# Contrastive pre-training: one job per distinct run. Checkpoints live under checkpoints/, outside
# the job's outputs, so a killed job resumes instead of restarting when Snakemake re-runs it.


rule pretrain_vision:
    input:
        data="data/prepared/{dataset}.npz",
    output:
        model="results/vision/{dataset}/{method}-L{layer}-{sg}/seed{seed}/model.pt",
        metrics="results/vision/{dataset}/{method}-L{layer}-{sg}/seed{seed}/train_metrics.jsonl",
        provenance="results/vision/{dataset}/{method}-L{layer}-{sg}/seed{seed}/provenance.json",
    log:
        "logs/pretrain/vision/{dataset}/{method}-L{layer}-{sg}/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/vision/{dataset}/{method}-L{layer}-{sg}/seed{seed}.tsv"
    conda:
        "../envs/train.yaml"
    threads: resource("vision", "cpus", 4)
    resources:
        gpu=resource("vision", "gpu", 1),
        mem_mb=resource("vision", "mem_mb", 32000),
        runtime=resource("vision", "runtime", 1440),
    params:
        ckpt="checkpoints/vision/{dataset}/{method}-L{layer}-{sg}/seed{seed}",
        flags=vision_pretrain_flags,
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug pretrain-vision --data {input.data} "
        "--out-dir $(dirname {output.model}) --ckpt-dir {params.ckpt} {params.flags} > {log} 2>&1"


use rule pretrain_vision as pretrain_vision_baseline with:
    output:
        model="results/vision/{dataset}/none/seed{seed}/model.pt",
        metrics="results/vision/{dataset}/none/seed{seed}/train_metrics.jsonl",
        provenance="results/vision/{dataset}/none/seed{seed}/provenance.json",
    log:
        "logs/pretrain/vision/{dataset}/none/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/vision/{dataset}/none/seed{seed}.tsv"
    params:
        ckpt="checkpoints/vision/{dataset}/none/seed{seed}",
        flags=vision_pretrain_flags,
