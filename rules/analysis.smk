# Analyses of the trained encoders (the `analysis` target, not part of `all`): layer-by-layer CKA
# (co-adaptation), alignment and uniformity, and the layer-selection rule.


rule analyze_vision:
    input:
        model="results/vision/{dataset}/{variant}/seed{seed}/model.pt",
        data="data/prepared/{dataset}.npz",
    output:
        json="results/vision/{dataset}/{variant}/seed{seed}/analysis.json",
        cka="results/vision/{dataset}/{variant}/seed{seed}/cka.npz",
    log:
        "logs/analysis/vision/{dataset}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/vision/{dataset}/{variant}/seed{seed}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: job_threads("vision")
    resources:
        **gpu_job("vision"),
    params:
        n=ANALYSIS.get("vision_samples", 512),
        device=config.get("device", "auto"),
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug analyze --domain vision --model {input.model:q} "
        "--data {input.data:q} --out {output.json:q} --cka {output.cka:q} --n-samples {params.n:q} "
        "--device {params.device:q} --seed {wildcards.seed:q} > {log:q} 2>&1"


rule analyze_text:
    input:
        model="results/text/{dataset}/{variant}/seed{seed}/model.pt",
        data=f"data/text/tasks/{ANALYSIS.get('text_task', 'stsb')}.parquet",
    output:
        json="results/text/{dataset}/{variant}/seed{seed}/analysis.json",
        cka="results/text/{dataset}/{variant}/seed{seed}/cka.npz",
    log:
        "logs/analysis/text/{dataset}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/text/{dataset}/{variant}/seed{seed}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: job_threads("text")
    resources:
        **gpu_job("text"),
    params:
        n=ANALYSIS.get("text_samples", 1000),
        min_score=ANALYSIS.get("text_min_score", 4.0),
        device=config.get("device", "auto"),
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug analyze --domain text --model {input.model:q} "
        "--data {input.data:q} --out {output.json:q} --cka {output.cka:q} --n-samples {params.n:q} "
        "--min-score {params.min_score:q} --device {params.device:q} > {log:q} 2>&1"


rule analysis_table:
    input:
        all_run_files("analysis.json"),
    output:
        "results/analysis/table.csv",
    log:
        "logs/analysis/table.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    shell:
        "python -m deepaug aggregate {input:q} --out {output:q} > {log:q} 2>&1"


rule layer_selection:
    input:
        table=TABLE,
        cka=baseline_cka_files(),
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
        "python -m deepaug select-layer --table {input.table:q} --baseline-cka {input.cka:q} "
        "--out {output:q} > {log:q} 2>&1"


rule figures_analysis:
    input:
        table=TABLE,
        analysis="results/analysis/table.csv",
        selection="results/analysis/layer_selection.csv",
        cka=all_run_files("cka.npz"),
        notebook=f"{workflow.basedir}/notebooks/analysis.ipynb",
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


use rule aggregate as aggregate_supervised with:
    input:
        supervised_evals(),
    output:
        SUPERVISED_TABLE,
    log:
        "logs/aggregate_supervised.log",


rule figures_vision_sup:
    input:
        table=SUPERVISED_TABLE,
        notebook=f"{workflow.basedir}/notebooks/layer_sweep.ipynb",
    output:
        figures=as_report(supervised_figures("vision_sup")),
        notebook="results/notebooks/vision_sup_figures.ipynb",
        html="results/notebooks/vision_sup_figures.html",
    log:
        "logs/figures/vision_sup.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    params:
        domain="vision_sup",
        metric="classifier_top1",
        top_layer=6,
        datasets=",".join(section("vision_sup").get("datasets", [])),
        out_dir=lambda w, output: os.path.dirname(output.figures[0]),
    shell:
        "(papermill {input.notebook:q} {output.notebook:q} -k python3 -p table {input.table:q} "
        "-p domain {params.domain:q} -p datasets {params.datasets:q} -p metric {params.metric:q} "
        "-p top_layer {params.top_layer:q} -p out_dir {params.out_dir:q} "
        '&& jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})") > {log:q} 2>&1'


use rule figures_vision_sup as figures_text_sup with:
    output:
        figures=as_report(supervised_figures("text_sup")),
        notebook="results/notebooks/text_sup_figures.ipynb",
        html="results/notebooks/text_sup_figures.html",
    log:
        "logs/figures/text_sup.log",
    params:
        domain="text_sup",
        metric="sts_avg",
        top_layer=lambda w: text_top_layer(),
        datasets=",".join(section("text_sup").get("datasets", [])),
        out_dir=lambda w, output: os.path.dirname(output.figures[0]),


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
