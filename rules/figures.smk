# Cheap figure rules, one per row of the figure table (deepaug.workflow.plan figure_table: a domain and
# an objective): papermill runs the layer-sweep notebook, which reads only the aggregated table and the run
# table, draws one figure per dataset and one panel per value of every other swept axis. What the score
# axis and the caption (report/layer_sweep.rst, supervised_sweep.rst: `snakemake.params`) call the metric
# comes from the settings (deepaug.workflow.labels: the graph SVM, the text tasks), not from prose.


for _fig in FIGURE_TABLE:

    rule:
        name:
            f"figures_{_fig['name']}"
        input:
            table=_fig["table"],
            runs=RUN_TABLE,
            notebook=f"{WORKFLOW_ROOT}/notebooks/layer_sweep.ipynb",
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
            objective=_fig["objective"],
            metric=_fig["metric"],
            metric_label=_fig["metric_label"],
            tuned=_fig["tuned"],  # axis names (schema-checked setting names: quoted as they are, '' when none)
            datasets=",".join(_fig["datasets"]),
            top_layer=lambda w, fig=_fig: top_layer(fig["domain"], fig["objective"]),
            out_dir=lambda w, output: os.path.dirname(output.figures[0]),
        shell:
            "(papermill {input.notebook:q} {output.notebook:q} -k python3 -p table {input.table:q} "
            "-p runs {input.runs:q} -p name {params.name:q} -p domain {params.domain:q} -p objective {params.objective:q} "
            "-p datasets {params.datasets:q} -p metric {params.metric:q} -r metric_label {params.metric_label:q} "
            "-r tuned '{params.tuned}' -p top_layer {params.top_layer:q} "
            "-p out_dir {params.out_dir:q} "
            '&& jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})") > {log:q} 2>&1'
