#!/usr/bin/env bash
# Refresh this platform's lock file, requirements/lock-<os>-<cpu>-py<XY>.txt (the exact versions that
# scripts/setup.sh installs), and the matching pins in envs/*.yaml.
#
#   bash scripts/lock.sh              newest versions that pyproject.toml allows: build a throw-away
#                                     venv (setup.sh with DEEPAUG_UNLOCKED=1), run the quick tests in
#                                     it (-m "not slow and not slurm"), and lock only if they pass
#   bash scripts/lock.sh --from DIR   lock the versions of an existing venv DIR (e.g. .venv, after
#                                     bash scripts/test.sh passed in it); nothing is installed
#
# Then run `python -m pytest tests/test_envs.py -q`, and commit the lock and envs/*.yaml together.
# The lock is specific to the OS, CPU and Python of the venv: run this on each platform you lock.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--from" ]; then
  VENV=${2:?usage: bash scripts/lock.sh [--from VENV_DIR]}
  [ -x "$VENV/bin/python" ] || { echo "lock.sh: $VENV/bin/python does not exist; give the folder of a venv made by scripts/setup.sh" >&2; exit 1; }
else
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/deepaug-lock.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  VENV=$TMP/venv
  DEEPAUG_VENV=$VENV DEEPAUG_UNLOCKED=1 bash scripts/setup.sh
  echo "lock.sh: quick tests in the new venv before locking it"
  HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pytest -x -q -m "not slow and not slurm"
fi

LOCK=$(PYTHONPATH=src "$VENV/bin/python" -m deepaug.engine.provenance lock-path) || true
TAG=$(basename "$LOCK" .txt); TAG=${TAG#lock-}
mkdir -p "$(dirname "$LOCK")"
{
  echo "# Exact versions the test suite passed with on $TAG (OS-CPU-Python), extras [pipeline,text,workflow,demo,dev]."
  echo "# scripts/setup.sh installs them (pip install --no-deps -r this file, then -e ., then pip check);"
  echo "# another platform falls back to pyproject.toml's ranges with a warning. Every run's provenance.json"
  echo "# records this file's name and sha256 (\"lock\"). Refresh: bash scripts/lock.sh (read its header)."
  "$VENV/bin/python" -m pip freeze --all --exclude-editable | grep -v '^#' | grep -viE '^(deepaug|uv)=='
} > "$LOCK.new"
mv "$LOCK.new" "$LOCK"

# The conda envs pin the same versions for the packages they share with the lock.
"$VENV/bin/python" - "$LOCK" envs/*.yaml <<'PY'
import re
import sys
from pathlib import Path

sys.path.insert(0, "src")
from deepaug.engine.provenance import normalize, read_lock  # noqa: E402

lock = read_lock(Path(sys.argv[1]))
pin = re.compile(r'^(\s*-\s*"?)([A-Za-z0-9][A-Za-z0-9._-]*)==([^"\s]+)("?\s*)$')
for env in map(Path, sys.argv[2:]):
    lines = env.read_text().splitlines(keepends=True)
    out = []
    for line in lines:
        m = pin.match(line.rstrip("\n"))
        if m and normalize(m.group(2)) in lock and lock[normalize(m.group(2))] != m.group(3):
            print(f"{env}: {m.group(2)} {m.group(3)} -> {lock[normalize(m.group(2))]}")
            line = f"{m.group(1)}{m.group(2)}=={lock[normalize(m.group(2))]}{m.group(4)}\n"
        out.append(line)
    env.write_text("".join(out))
PY
echo "lock.sh: wrote $LOCK ($(grep -c '==' "$LOCK") packages, sha256 $(sha256sum "$LOCK" | cut -d' ' -f1))"
