# Cheap figure rules, one per row of the figure table (rules/common.smk figure_table: a domain and an
# objective): papermill runs the layer-sweep notebook, which reads only the aggregated table and the run
# table, draws one figure per dataset and one panel per value of every other swept axis.
for _fig in FIGURE_TABLE:

    rule:
        name:
            f"figures_{_fig['name']}"
        input:
            table=_fig["table"],
            runs=RUN_TABLE,
            notebook=f"{workflow.basedir}/notebooks/layer_sweep.ipynb",
        output:
            figures=as_report(_fig["files"]),
            notebook=f"results/notebooks/{_fig['name']}_figures.ipynb",
            html=f"results/notebooks/{_fig['name']}_figures.html",
        log:
            f"logs/figures/{_fig['name']}.log",
        conda:
            "../envs/figures.yaml"
        resources:
            **cpu_job(),
        params:
            name=_fig["name"],
            domain=_fig["domain"],
            metric=_fig["metric"],
            datasets=",".join(_fig["datasets"]),
            top_layer=lambda w, fig=_fig: top_layer(fig["domain"], fig["objective"]),
            out_dir=lambda w, output: os.path.dirname(output.figures[0]),
        shell:
            "(papermill {input.notebook:q} {output.notebook:q} -k python3 -p table {input.table:q} "
            "-p runs {input.runs:q} -p name {params.name:q} -p domain {params.domain:q} "
            "-p datasets {params.datasets:q} -p metric {params.metric:q} -p top_layer {params.top_layer:q} "
            "-p out_dir {params.out_dir:q} "
            '&& jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})") > {log:q} 2>&1'
