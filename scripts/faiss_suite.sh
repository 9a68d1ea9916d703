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
# pytest, pytest-timeout and scipy there when they are missing (test-only tools).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 PATH_TO_FAISS_CHECKOUT [--files a.py,b.py] [--timeout S] [--json FILE]" >&2
  exit 2
fi
PY=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
# scipy: FAISS's test_extra_distances compares with scipy.spatial.distance
for mod in pytest pytest_timeout scipy; do
  if ! $PY -c "import $mod" >/dev/null 2>&1; then
    pkg=${mod//_/-}
    echo "[faiss_suite] pip install $pkg (test-only tool)" >&2
    $PY -m pip install -q --root-user-action=ignore "$pkg"
  fi
done
exec $PY "$here/faiss_suite.py" "$@"
