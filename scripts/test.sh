#!/usr/bin/env bash
# One command for the tests: set up .venv, check style with ruff (configured in pyproject.toml), then run
# the whole suite on the CPU (nothing downloaded).
# Extra arguments go to pytest (e.g. -m "not slow" for the quick subset).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
ruff check --quiet . && ruff format --check --quiet . \
  || { echo "test.sh: ruff found the problems above; fix them (ruff check --fix . ; ruff format .) and re-run" >&2; exit 1; }
python -m pytest -ra --durations=8 "$@"
