# Cheap figure rules: papermill runs a parameterised notebook that reads only the aggregated table.


rule figures_vision:
    input:
        table=TABLE,
        notebook=f"{workflow.basedir}/notebooks/layer_sweep.ipynb",
    output:
        figures=as_report(
            expand(
                f"{FIGURES}/vision_{{dataset}}.{{ext}}",
                dataset=section("vision").get("datasets", []),
                ext=["png", "pdf"],
            )
        ),
        notebook="results/notebooks/vision_figures.ipynb",
        html="results/notebooks/vision_figures.html",
    log:
        "logs/figures/vision.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    params:
        datasets=",".join(section("vision").get("datasets", [])),
        metric=config.get("figures", {}).get("vision_metric", "linear_top1"),
        out_dir=lambda w, output: os.path.dirname(output.figures[0]),
    shell:
        "(papermill {input.notebook:q} {output.notebook:q} -k python3 -p table {input.table:q} "
        "-p domain vision -p datasets {params.datasets:q} -p metric {params.metric:q} -p out_dir {params.out_dir:q} "
        '&& jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})") > {log:q} 2>&1'


rule figures_text:
    input:
        table=TABLE,
        notebook=f"{workflow.basedir}/notebooks/layer_sweep.ipynb",
    output:
        figures=as_report(text_figures()),
        notebook="results/notebooks/text_figures.ipynb",
        html="results/notebooks/text_figures.html",
    log:
        "logs/figures/text.log",
    conda:
        "../envs/figures.yaml"
    resources:
        **cpu_job(),
    params:
        datasets=",".join(section("text").get("datasets", [])),
        top_layer=lambda w: text_top_layer(),
        out_dir=lambda w, output: os.path.dirname(output.figures[0]),
    shell:
        "(papermill {input.notebook:q} {output.notebook:q} -k python3 -p table {input.table:q} "
        "-p domain text -p datasets {params.datasets:q} -p metric sts_avg -p top_layer {params.top_layer:q} "
        "-p out_dir {params.out_dir:q} "
        '&& jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})") > {log:q} 2>&1'
