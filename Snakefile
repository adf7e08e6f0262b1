# Deep Augmentation (arXiv 2303.14537): the reproducibility workflow.
#   snakemake --cores 8 --use-conda                          # the paper's sweep (config.yaml), on GPUs
#   snakemake --cores 2 --configfile config/demo.yaml        # the few-minute CPU demo
import os

from snakemake.utils import min_version

# rules/common.smk relies on Snakemake 9's internals (pyproject.toml: snakemake>=9,<10)
min_version("9.0")

# Rules live in rules/; shared helpers in rules/common.smk; the library in src/deepaug.


configfile: os.path.join(workflow.basedir, "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"
include: "rules/analysis.smk"
include: "rules/bench.smk"


rule all:
    default_target: True
    input:
        # the tables, the summary, the figures and (analysis.in_default_target) the analyses
        PLAN.all_targets(),


onerror:
    print_failed_jobs()


onsuccess:
    # Snakemake re-runs nothing when only src/ changed: say so when a table mixes code versions.
    from deepaug.workflow.aggregate import code_version_warnings

    for _warning in code_version_warnings(
        f"results/tables/{o}_runs.csv" for o in TABLES
    ):
        print(_warning, file=sys.stderr)
