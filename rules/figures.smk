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
    params:
        datasets=",".join(section("vision").get("datasets", [])),
        metric=config.get("figures", {}).get("vision_metric", "linear_top1"),
        out_dir=lambda w, output: os.path.dirname(output.figures[0]),
    shell:
        "(papermill {input.notebook} {output.notebook} -k python3 -p table {input.table} "
        "-p domain vision -p datasets {params.datasets} -p metric {params.metric} -p out_dir {params.out_dir} "
        "&& jupyter nbconvert --to html {output.notebook} --output-dir $(dirname {output.html})) > {log} 2>&1"


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
    params:
        datasets=",".join(section("text").get("datasets", [])),
        top_layer=section("text").get("model", {}).get("num_layers", 12) + 1,
        out_dir=lambda w, output: os.path.dirname(output.figures[0]),
    shell:
        "(papermill {input.notebook} {output.notebook} -k python3 -p table {input.table} "
        "-p domain text -p datasets {params.datasets} -p metric sts_avg -p top_layer {params.top_layer} "
        "-p out_dir {params.out_dir} "
        "&& jupyter nbconvert --to html {output.notebook} --output-dir $(dirname {output.html})) > {log} 2>&1"
