# Data preparation: each dataset is fetched once and stored in the fast on-disk form.


rule prepare_image_data:
    output:
        "data/prepared/{dataset}.npz",
    log:
        "logs/data/{dataset}.log",
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job(),
    params:
        raw_dir=config.get("data", {}).get("raw_dir", "data/raw"),
        download=str(config.get("data", {}).get("download", True)).lower(),
    shell:
        "python -m deepaug prepare-data --dataset {wildcards.dataset:q} --out {output:q} "
        "--raw-dir {params.raw_dir:q} --download {params.download:q} > {log:q} 2>&1"


rule prepare_text_corpus:
    output:
        "data/text/corpus/{dataset}.parquet",
    log:
        "logs/data/text_corpus_{dataset}.log",
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job(),
    shell:
        "python -m deepaug prepare-text --corpus {wildcards.dataset:q} --out {output:q} > {log:q} 2>&1"


rule prepare_text_task:
    output:
        "data/text/tasks/{task}.parquet",
    log:
        "logs/data/text_task_{task}.log",
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job(),
    shell:
        "python -m deepaug prepare-text --task {wildcards.task:q} --out {output:q} > {log:q} 2>&1"


rule prepare_text_model:
    output:
        directory("data/models/{model}"),
    log:
        "logs/data/text_model_{model}.log",
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job(),
    params:
        name=lambda w: w.model.replace("--", "/"),  # inverse of model_dir_name
    shell:
        "python -m deepaug prepare-text --model {params.name:q} --out {output:q} > {log:q} 2>&1"


rule data:
    """Only the downloads: run this where there is internet (e.g. a login node), then train offline."""
    input:
        expand(
            "data/prepared/{dataset}.npz",
            dataset=section("vision").get("datasets", []),
        ),
        expand(
            "data/text/corpus/{dataset}.parquet",
            dataset=section("text").get("datasets", []),
        ),
        text_task_files()
        + (
            [f"data/text/tasks/{section('text')['dev_task']}.parquet"]
            if runs("text")
            else []
        ),
        [text_model_dir()] if runs("text") else [],
