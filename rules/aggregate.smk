# One tidy table (one row per run, both domains): the only input of the figure rules.


rule aggregate:
    input:
        all_evals(),
    output:
        TABLE,
    log:
        "logs/aggregate.log",
    conda:
        "../envs/figures.yaml"
    shell:
        "python -m deepaug aggregate {input} --out {output} > {log} 2>&1"
