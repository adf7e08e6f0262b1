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
    retries: resource("vision", "retries", TRAIN_RETRIES)
    conda:
        "../envs/train.yaml"
    threads: job_threads("vision", dataloader=True)
    resources:
        **gpu_job("vision", runtime=1440),
    params:
        ckpt="checkpoints/vision/{dataset}/{method}-L{layer}-{sg}/seed{seed}",
        flags=vision_pretrain_flags,
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug pretrain-vision --data {input.data:q} "
        '--out-dir "$(dirname {output.model:q})" --ckpt-dir {params.ckpt:q} {params.flags} > {log:q} 2>&1'


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


rule pretrain_text:
    input:
        model=lambda w: text_model_dir(),
        corpus="data/text/corpus/{dataset}.parquet",
        dev=lambda w: f"data/text/tasks/{section('text')['dev_task']}.parquet",
    output:
        model="results/text/{dataset}/{method}-L{layer}-{sg}/seed{seed}/model.pt",
        metrics="results/text/{dataset}/{method}-L{layer}-{sg}/seed{seed}/train_metrics.jsonl",
        provenance="results/text/{dataset}/{method}-L{layer}-{sg}/seed{seed}/provenance.json",
    log:
        "logs/pretrain/text/{dataset}/{method}-L{layer}-{sg}/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/text/{dataset}/{method}-L{layer}-{sg}/seed{seed}.tsv"
    retries: resource("text", "retries", TRAIN_RETRIES)
    conda:
        "../envs/train.yaml"
    threads: job_threads("text")
    resources:
        **gpu_job("text", runtime=720),
    params:
        ckpt="checkpoints/text/{dataset}/{method}-L{layer}-{sg}/seed{seed}",
        flags=text_pretrain_flags,
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug pretrain-text --model-dir {input.model:q} "
        '--corpus {input.corpus:q} --dev-task {input.dev:q} --out-dir "$(dirname {output.model:q})" '
        "--ckpt-dir {params.ckpt:q} {params.flags} > {log:q} 2>&1"


use rule pretrain_text as pretrain_text_baseline with:
    output:
        model="results/text/{dataset}/none/seed{seed}/model.pt",
        metrics="results/text/{dataset}/none/seed{seed}/train_metrics.jsonl",
        provenance="results/text/{dataset}/none/seed{seed}/provenance.json",
    log:
        "logs/pretrain/text/{dataset}/none/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/text/{dataset}/none/seed{seed}.tsv"
    params:
        ckpt="checkpoints/text/{dataset}/none/seed{seed}",
        flags=text_pretrain_flags,


# The supervised counterparts (the `analysis` target): the same rules, another objective, and the
# resources of their own config sections.
use rule pretrain_vision as pretrain_vision_sup with:
    output:
        model="results/vision_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}/model.pt",
        metrics="results/vision_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}/train_metrics.jsonl",
        provenance="results/vision_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}/provenance.json",
    log:
        "logs/pretrain/vision_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/vision_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}.tsv"
    retries: resource("vision_sup", "retries", TRAIN_RETRIES)
    threads: job_threads("vision_sup", dataloader=True)
    resources:
        **gpu_job("vision_sup", runtime=720),
    params:
        ckpt="checkpoints/vision_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}",
        flags=vision_sup_pretrain_flags,


use rule pretrain_vision as pretrain_vision_sup_baseline with:
    output:
        model="results/vision_sup/{dataset}/none/seed{seed}/model.pt",
        metrics="results/vision_sup/{dataset}/none/seed{seed}/train_metrics.jsonl",
        provenance="results/vision_sup/{dataset}/none/seed{seed}/provenance.json",
    log:
        "logs/pretrain/vision_sup/{dataset}/none/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/vision_sup/{dataset}/none/seed{seed}.tsv"
    retries: resource("vision_sup", "retries", TRAIN_RETRIES)
    threads: job_threads("vision_sup", dataloader=True)
    resources:
        **gpu_job("vision_sup", runtime=720),
    params:
        ckpt="checkpoints/vision_sup/{dataset}/none/seed{seed}",
        flags=vision_sup_pretrain_flags,


use rule pretrain_text as pretrain_text_sup with:
    input:
        model=lambda w: text_model_dir(),
        corpus="data/text/tasks/{dataset}.parquet",
        dev=lambda w: f"data/text/tasks/{section('text_sup')['dev_task']}.parquet",
    output:
        model="results/text_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}/model.pt",
        metrics="results/text_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}/train_metrics.jsonl",
        provenance="results/text_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}/provenance.json",
    log:
        "logs/pretrain/text_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/text_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}.tsv"
    retries: resource("text_sup", "retries", TRAIN_RETRIES)
    threads: job_threads("text_sup")
    resources:
        **gpu_job("text_sup", runtime=240),
    params:
        ckpt="checkpoints/text_sup/{dataset}/{method}-L{layer}-{sg}/seed{seed}",
        flags=text_sup_pretrain_flags,


use rule pretrain_text_sup as pretrain_text_sup_baseline with:
    output:
        model="results/text_sup/{dataset}/none/seed{seed}/model.pt",
        metrics="results/text_sup/{dataset}/none/seed{seed}/train_metrics.jsonl",
        provenance="results/text_sup/{dataset}/none/seed{seed}/provenance.json",
    log:
        "logs/pretrain/text_sup/{dataset}/none/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/text_sup/{dataset}/none/seed{seed}.tsv"
    params:
        ckpt="checkpoints/text_sup/{dataset}/none/seed{seed}",
        flags=text_sup_pretrain_flags,
