# Data preparation: each dataset is fetched once and stored in the fast on-disk form.


rule prepare_image_data:
    output:
        "data/prepared/{dataset}.npz",
    log:
        "logs/data/{dataset}.log",
    conda:
        "../envs/data.yaml"
    params:
        raw_dir=config.get("data", {}).get("raw_dir", "data/raw"),
        download=str(config.get("data", {}).get("download", True)).lower(),
    shell:
        "python -m deepaug prepare-data --dataset {wildcards.dataset} --out {output} "
        "--raw-dir {params.raw_dir} --download {params.download} > {log} 2>&1"


rule prepare_text_corpus:
    output:
        "data/text/corpus/{dataset}.parquet",
    log:
        "logs/data/text_corpus_{dataset}.log",
    conda:
        "../envs/data.yaml"
    shell:
        "python -m deepaug prepare-text --corpus {wildcards.dataset} --out {output} > {log} 2>&1"


rule prepare_text_task:
    output:
        "data/text/tasks/{task}.parquet",
    log:
        "logs/data/text_task_{task}.log",
    conda:
        "../envs/data.yaml"
    shell:
        "python -m deepaug prepare-text --task {wildcards.task} --out {output} > {log} 2>&1"


rule prepare_text_model:
    output:
        directory("data/models/{model}"),
    params:
        name=lambda w: w.model.replace("--", "/"),
    log:
        "logs/data/text_model_{model}.log",
    conda:
        "../envs/data.yaml"
    shell:
        "python -m deepaug prepare-text --model {params.name} --out {output} > {log} 2>&1"
