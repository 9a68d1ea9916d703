#!/usr/bin/env bash
# The main job: installs what is needed, builds vecdex and runs `vecdex demo`
# (indexes built-in synthetic data and prints recall and speed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVDX_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target vecdex_cli >/dev/null
./build/vecdex demo "$@"
