# The run table, and one tidy table per objective (one row per run: its table row and its scores), the
# only inputs of the figure rules.


rule run_table:
    output:
        RUN_TABLE,
    log:
        "logs/run_table.log",
    resources:
        **cpu_job(),
    params:
        # the text of results/runs.tsv (deepaug.workflow.runs): a changed sweep changes it, and Snakemake
        # writes the table again, this text (one writer of the run table)
        table=table_text(RUNS),
    run:
        from deepaug.io import write_text

        write_text(output[0], params.table)


# Per objective: every run's scores (aggregate_<objective>), then the selection of tuned axes on dev
# (select_<objective>: per setting and seed the dev-best of a domain's `tuned:` axes, or every run when
# none are tuned), whose table is what the summary and the figures read.
for _objective, _table in TABLES.items():

    rule:
        name:
            f"aggregate_{_objective}"
        input:
            runs=RUN_TABLE,
            evals=run_files("eval.json", _objective),
        output:
            f"results/tables/{_objective}_runs.csv",
        log:
            f"logs/aggregate_{_objective}.log",
        conda:
            "../envs/figures.yaml"
        resources:
            **cpu_job(),
        params:
            objective=_objective,
        shell:
            "python -m deepaug aggregate --runs {input.runs:q} --objective {params.objective:q} "
            "--out {output:q} > {log:q} 2>&1"

    rule:
        name:
            f"select_{_objective}"
        input:
            f"results/tables/{_objective}_runs.csv",
        output:
            _table,
        log:
            f"logs/select_{_objective}.log",
        conda:
            "../envs/figures.yaml"
        resources:
            **cpu_job(),
        params:
            tuned=tuned_flags(),
        shell:
            "python -m deepaug select-tuned --table {input:q} --out {output:q} {params.tuned} > {log:q} 2>&1"


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


# How close the baselines (no Deep Augmentation) come to the published numbers: each one's mean and 95%
# interval over seeds against the numbers of src/deepaug/analysis/published.yaml (each with its source),
# compared only where the settings those numbers were made with are the baselines' (deepaug.analysis.fidelity).
rule fidelity:
    input:
        table=TABLE,
        published=PUBLISHED_NUMBERS,
    output:
        report(FIDELITY, caption="../report/fidelity.rst", category="Summary"),
    log:
        "logs/fidelity.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    params:
        # each baseline's settings that a published number requires (deepaug.workflow.plan: JSON)
        settings=PLAN.fidelity_settings(),
    shell:
        "python -m deepaug fidelity --table {input.table:q} --published {input.published:q} "
        "--settings {params.settings:q} --out {output:q} > {log:q} 2>&1"
