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
    resources:
        **cpu_job(),
    shell:
        "python -m deepaug aggregate {input:q} --out {output:q} > {log:q} 2>&1"


rule summarize:
    input:
        TABLE,
    output:
        summary=report(SUMMARY, caption="../report/summary.rst", category="Summary"),
        claims=report(CLAIMS, caption="../report/claims.rst", category="Summary"),
    log:
        "logs/summarize.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    shell:
        "python -m deepaug summarize {input:q} --summary {output.summary:q} --claims {output.claims:q} > {log:q} 2>&1"
