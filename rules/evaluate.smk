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
    threads: resource("vision", "cpus", 4)
    resources:
        gpu=resource("vision", "gpu", 1),
        mem_mb=resource("vision", "mem_mb", 32000),
    params:
        flags=vision_eval_flags,
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug eval-vision --model {input.model} --data {input.data} "
        "--out {output} {params.flags} > {log} 2>&1"


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
    threads: resource("text", "cpus", 4)
    resources:
        gpu=resource("text", "gpu", 1),
        mem_mb=resource("text", "mem_mb", 32000),
    params:
        flags=text_eval_flags,
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug eval-text --model {input.model} "
        "--tasks {input.tasks} --out {output} {params.flags} > {log} 2>&1"


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
    params:
        flags=text_sup_eval_flags,
