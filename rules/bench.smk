# Throughput benchmark (not part of `all`): snakemake bench --cores 8 [--config ...]
# Times this project's SimCLR step and a SupContrast-style reference interleaved (reference, project,
# reference, ... after a warm-up of each) in one process on one device: `deepaug bench train --help`.


rule bench:
    output:
        "results/bench/throughput.json",
    log:
        "logs/bench.log",
    benchmark:
        "benchmarks/bench.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        gpu=whole_gpu(),
        slurm_partition=partition(1),
    params:
        flags="--batch-size 1024 --steps 20 --pairs 10 --skip-snakemake",  # the DAG: python -m deepaug.workflow.dag_bench
    shell:
        "python -m deepaug bench train {params.flags} --out {output:q} > {log:q} 2>&1"
