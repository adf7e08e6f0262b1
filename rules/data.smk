# Data preparation: each dataset, task or model is fetched once and stored in a fast on-disk form under
# data/<domain>/; the domain gives the command (the only jobs that download).


rule prepare_data:
    output:
        "data/{domain}/{item}",
    log:
        "logs/data/{domain}/{item}.log",
    wildcard_constraints:
        item=r"(?!models/)[A-Za-z0-9_./\-]+\.[a-z]+",
    conda:
        data_conda_env
    resources:
        **cpu_job(),
    params:
        # of the wildcards only (not `output`), so that Snakemake's params trigger sees a change
        cmd=lambda w: prepare_command(w.domain, w.item),
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule prepare_model:
    output:
        directory("data/{domain}/models/{model}"),
    log:
        "logs/data/{domain}/models/{model}.log",
    wildcard_constraints:
        model=r"[A-Za-z0-9_.\-]+",
    conda:
        data_conda_env
    resources:
        **cpu_job(),
    params:
        cmd=lambda w: prepare_command(w.domain, f"models/{w.model}"),
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule data:
    """Only the downloads: run this where there is internet (e.g. a login node), then train offline."""
    input:
        data_files(),
