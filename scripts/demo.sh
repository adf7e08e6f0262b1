#!/usr/bin/env bash
# One command for the demo: set up .venv, then run the whole DAG on the CPU (offline, a few minutes), then
# the HTML report. Extra arguments go to snakemake (e.g. --cores 4). The console shows one line per job
# (profiles/default/config.yaml); each job's output is in demo/logs/, Snakemake's in demo/.snakemake/log/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
start=$(date +%s)
snakemake --cores 2 --configfile config/demo.yaml --directory demo "$@"
# the runs this target trained: the contrastive rows of the run table (the supervised ones are for `analysis`)
runs=$(awk -F '\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "objective") c = i; next } $c == "contrastive"' \
  demo/results/runs.tsv | wc -l)
echo "demo: $runs runs in $(( $(date +%s) - start )) s: table demo/results/table.csv, summary demo/results/summary.csv, figures demo/results/figures/"
# The report step: its output goes to demo/logs/report.log; here, what it made and how long it took.
report_start=$(date +%s)
mkdir -p demo/logs
if snakemake --configfile config/demo.yaml --directory demo --report results/report.html > demo/logs/report.log 2>&1; then
  echo "demo: report demo/results/report.html ($(grep -c '^Adding ' demo/logs/report.log) results with captions:" \
    "figures, summary, the paper's claims; $(( $(date +%s) - report_start )) s)"
else
  echo "demo: the report failed (see demo/logs/report.log): $(tail -n 1 demo/logs/report.log)" >&2
  exit 1
fi
echo "demo: finished in $(( $(date +%s) - start )) s; the analyses are a separate target (README: 'snakemake analysis')"
