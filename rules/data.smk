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
