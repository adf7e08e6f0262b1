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
    threads: resource("vision", "cpus", 4)
    resources:
        gpu=resource("vision", "gpu", 1),
        mem_mb=resource("vision", "mem_mb", 32000),
    params:
        n=ANALYSIS.get("vision_samples", 512),
        device=config.get("device", "auto"),
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug analyze --domain vision --model {input.model} "
        "--data {input.data} --out {output.json} --cka {output.cka} --n-samples {params.n} "
        "--device {params.device} --seed {wildcards.seed} > {log} 2>&1"


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
    threads: resource("text", "cpus", 4)
    resources:
        gpu=resource("text", "gpu", 1),
        mem_mb=resource("text", "mem_mb", 32000),
    params:
        n=ANALYSIS.get("text_samples", 1000),
        min_score=ANALYSIS.get("text_min_score", 4.0),
        device=config.get("device", "auto"),
    shell:
        "OMP_NUM_THREADS={threads} python -m deepaug analyze --domain text --model {input.model} "
        "--data {input.data} --out {output.json} --cka {output.cka} --n-samples {params.n} "
        "--min-score {params.min_score} --device {params.device} > {log} 2>&1"


rule analysis_table:
    input:
        all_run_files("analysis.json"),
    output:
        "results/analysis/table.csv",
    log:
        "logs/analysis/table.log",
    conda:
        "../envs/figures.yaml"
    shell:
        "python -m deepaug aggregate {input} --out {output} > {log} 2>&1"


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
    shell:
        "python -m deepaug select-layer --table {input.table} --baseline-cka {input.cka} "
        "--out {output} > {log} 2>&1"


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
    params:
        out_dir=lambda w, output: os.path.dirname(output.figures[0]),
    shell:
        "(papermill {input.notebook} {output.notebook} -k python3 -p table {input.table} "
        "-p analysis_table {input.analysis} -p selection {input.selection} -p results_dir results "
        "-p out_dir {params.out_dir} "
        "&& jupyter nbconvert --to html {output.notebook} --output-dir $(dirname {output.html})) > {log} 2>&1"


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
    params:
        domain="vision_sup",
        metric="classifier_top1",
        top_layer=6,
        datasets=",".join(section("vision_sup").get("datasets", [])),
        out_dir=lambda w, output: os.path.dirname(output.figures[0]),
    shell:
        "(papermill {input.notebook} {output.notebook} -k python3 -p table {input.table} "
        "-p domain {params.domain} -p datasets {params.datasets} -p metric {params.metric} "
        "-p top_layer {params.top_layer} -p out_dir {params.out_dir} "
        "&& jupyter nbconvert --to html {output.notebook} --output-dir $(dirname {output.html})) > {log} 2>&1"


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
        top_layer=section("text").get("model", {}).get("num_layers", 12) + 1,
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
    shell:
        "python -m deepaug inversion --contrastive {input.contrastive} --supervised {input.supervised} "
        "--out {output} > {log} 2>&1"


rule analysis:
    input:
        analysis_targets(),
