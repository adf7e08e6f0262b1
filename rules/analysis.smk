# Analyses of the trained encoders (the `analysis` target): layer-by-layer CKA (co-adaptation),
# alignment and uniformity, the layer-selection rule, and the supervised counterpart's figures and
# inversion check. One analysis per setting and seed of the contrastive sweep, of the run the tables
# report for it (its dev-best over the domain's tuned axes, chosen from the candidates' eval.json).


rule analyze:
    input:
        unpack(analysis_inputs),
    output:
        json=f"{ANALYSIS_DIR}/analysis.json",
        cka=f"{ANALYSIS_DIR}/cka.npz",
    log:
        ANALYSIS_LOG,
    benchmark:
        f"benchmarks/{ANALYSIS_DIR.removeprefix('results/')}.tsv"
    group:
        job_group("analyze")  # on a cluster only (profiles/slurm: group-components)
    conda:
        conda_env
    threads: job_threads()
    resources:
        **run_job(),
    params:
        cmd=analyze_command,
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} > {log:q} 2>&1"


rule analysis_table:
    input:
        runs=RUN_TABLE,
        analyses=setting_files("analysis.json"),
    output:
        "results/analysis/table.csv",
    log:
        "logs/analysis/table.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    shell:
        "python -m deepaug aggregate --runs {input.runs:q} --file analysis.json --per-setting --out {output:q} > {log:q} 2>&1"


rule layer_selection:
    input:
        table=TABLE,
        runs=RUN_TABLE,
        cka=setting_files("cka.npz", baseline_only=True),
    output:
        report(
            "results/analysis/layer_selection.csv",
            caption="../report/layer_selection.rst",
            category="Analyses",
        ),
    log:
        "logs/analysis/layer_selection.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    shell:
        "python -m deepaug select-layer --table {input.table:q} --runs {input.runs:q} "
        "--baseline-cka {input.cka:q} --out {output:q} > {log:q} 2>&1"


rule figures_analysis:
    input:
        table=TABLE,
        analysis="results/analysis/table.csv",
        selection="results/analysis/layer_selection.csv",
        cka=setting_files("cka.npz"),
        notebook=f"{WORKFLOW_ROOT}/notebooks/analysis.ipynb",
    output:
        figures=as_report(analysis_figures()),
        notebook="results/notebooks/analysis.ipynb",
        html="results/notebooks/analysis.html",
    log:
        "logs/figures/analysis.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    params:
        out_dir=lambda w, output: os.path.dirname(output.figures[0]),
    shell:
        "(papermill {input.notebook:q} {output.notebook:q} -k python3 -p table {input.table:q} "
        "-p analysis_table {input.analysis:q} -p selection {input.selection:q} -p results_dir results "
        "-p out_dir {params.out_dir:q} "
        '&& jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})") > {log:q} 2>&1'


rule inversion:
    input:
        contrastive=TABLE,
        supervised=SUPERVISED_TABLE,
    output:
        report(
            "results/analysis/inversion.csv",
            caption="../report/inversion.rst",
            category="Analyses",
        ),
    log:
        "logs/analysis/inversion.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    shell:
        "python -m deepaug inversion --contrastive {input.contrastive:q} --supervised {input.supervised:q} "
        "--out {output:q} > {log:q} 2>&1"


rule analysis:
    input:
        analysis_targets(),
