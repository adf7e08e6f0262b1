# Downstream evaluation on frozen features (Deep Augmentation is never applied here).


rule evaluate_vision:
    input:
        model="results/vision/{dataset}/{variant}/seed{seed}/model.pt",
        data="data/prepared/{dataset}.npz",
    output:
        "results/vision/{dataset}/{variant}/seed{seed}/eval.json",
    log:
        "logs/evaluate/vision/{dataset}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/vision/{dataset}/{variant}/seed{seed}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: job_threads("vision")
    resources:
        **gpu_job("vision"),
    params:
        flags=vision_eval_flags,
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug eval-vision --model {input.model:q} --data {input.data:q} "
        "--out {output:q} {params.flags} > {log:q} 2>&1"


rule evaluate_text:
    input:
        model="results/text/{dataset}/{variant}/seed{seed}/model.pt",
        tasks=text_task_files(),
    output:
        "results/text/{dataset}/{variant}/seed{seed}/eval.json",
    log:
        "logs/evaluate/text/{dataset}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/text/{dataset}/{variant}/seed{seed}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: job_threads("text")
    resources:
        **gpu_job("text"),
    params:
        flags=text_eval_flags,
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug eval-text --model {input.model:q} "
        "--tasks {input.tasks:q} --out {output:q} {params.flags} > {log:q} 2>&1"


use rule evaluate_vision as evaluate_vision_sup with:
    input:
        model="results/vision_sup/{dataset}/{variant}/seed{seed}/model.pt",
        data="data/prepared/{dataset}.npz",
    output:
        "results/vision_sup/{dataset}/{variant}/seed{seed}/eval.json",
    log:
        "logs/evaluate/vision_sup/{dataset}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/vision_sup/{dataset}/{variant}/seed{seed}.tsv"
    threads: job_threads("vision_sup")
    resources:
        **gpu_job("vision_sup"),
    params:
        flags=vision_sup_eval_flags,


use rule evaluate_text as evaluate_text_sup with:
    input:
        model="results/text_sup/{dataset}/{variant}/seed{seed}/model.pt",
        tasks=text_task_files("text_sup"),
    output:
        "results/text_sup/{dataset}/{variant}/seed{seed}/eval.json",
    log:
        "logs/evaluate/text_sup/{dataset}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/text_sup/{dataset}/{variant}/seed{seed}.tsv"
    threads: job_threads("text_sup")
    resources:
        **gpu_job("text_sup"),
    params:
        flags=text_sup_eval_flags,
