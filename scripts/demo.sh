#!/usr/bin/env bash
# One command for the demo: set up .venv, then run the whole DAG on the CPU (offline, a few minutes).
# Extra arguments go to snakemake (e.g. --cores 4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
start=$(date +%s)
snakemake --cores 2 --configfile config/demo.yaml --directory demo "$@"
echo "demo finished in $(( $(date +%s) - start )) s: table demo/results/table.csv, figures demo/results/figures/"
snakemake --configfile config/demo.yaml --directory demo --report results/report.html >/dev/null 2>&1 \
  && echo "report (figures with captions, summary, the paper's claims): demo/results/report.html"
