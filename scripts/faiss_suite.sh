#!/usr/bin/env bash
# Runs FAISS's own Python tests (the 28 files of issue 19) against the real
# faiss and against vecdex through a shim package `faiss` (sys.modules['faiss']
# = vecdex, faiss.contrib.* = vecdex.contrib.*), and prints per file how many
# tests were collected, passed with faiss and passed with vecdex, and vecdex's
# failures grouped by first cause.
#
#   bash scripts/faiss_suite.sh PATH_TO_FAISS_CHECKOUT [options]
#
# PATH_TO_FAISS_CHECKOUT holds FAISS's tests/ (a clone, or `git archive HEAD
# tests` of it).  Options (see scripts/faiss_suite.py --help): --files
# test_a.py,test_b.py to run a subset, --timeout S per test (default 120),
# --json FILE for every test's outcome and message, --no-cache to rerun faiss
# (its results are cached by file content and faiss version).
#
# Needs vecdex and faiss-cpu importable by $PYTHON (default python3); installs
# pytest, pytest-timeout and scipy there when missing, if it is a venv.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 PATH_TO_FAISS_CHECKOUT [--files a.py,b.py] [--timeout S] [--json FILE]" >&2
  exit 2
fi
PY=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
# scipy: FAISS's test_extra_distances compares with scipy.spatial.distance.
# They are installed only into a virtual environment, never into a system
# python.
for mod in pytest pytest_timeout scipy; do
  if ! $PY -c "import $mod" >/dev/null 2>&1; then
    pkg=${mod//_/-}
    if $PY -c "import sys; sys.exit(sys.prefix == sys.base_prefix)"; then
      echo "[faiss_suite] pip install $pkg (test-only tool)" >&2
      $PY -m pip install -q "$pkg"
    else
      echo "faiss_suite: $PY lacks $pkg; run with PYTHON=a virtual" \
           "environment's python (python3 -m venv --system-site-packages V)" >&2
      exit 2
    fi
  fi
done
exec $PY "$here/faiss_suite.py" "$@"
