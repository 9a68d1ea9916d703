#!/usr/bin/env bash
# The main job: installs what is needed, builds and installs vecdex (the
# Python module and the `vecdex` command, on PATH) and runs `vecdex demo`:
# built-in synthetic data through Flat, IVF, SQ and PQ indexes, printing build
# time, QPS, recall@1, recall@10 and bytes per vector.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
$PY -m pip install -q --root-user-action=ignore --no-build-isolation . >/dev/null
BIN=$(command -v vecdex || true)
if [ -z "$BIN" ]; then # pip's script folder not on PATH: ask Python where it is
  BIN="$($PY -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/vecdex"
fi
"$BIN" demo "$@"
