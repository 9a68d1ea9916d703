#!/usr/bin/env bash
# gpu_check.sh — the one device check of issue 22, for a machine with an
# NVIDIA GPU (this workplace's nvidia-h200 kind): builds vecdex with CUDA
# (sm_90 + compute_90 PTX, -Werror), runs the C GPU test, the Python GPU
# tests, bench/bench_gpu.py --quick and the C test under compute-sanitizer,
# keeping every log under $OUT (./gpu_check_out when OUT is unset).  Budget:
# about 7 minutes on an H200 with 16 cores (GPU_CHECK_SECONDS=480: the
# benchmark and the sanitizer run only in the time left); each step has its
# own timeout so that the script always finishes and the logs come back.
#
# How to run it from a session that has the device tool (one call):
#
#   optional, for the comparisons with faiss (file readability, the faiss
#   baseline of the benchmark), here in the repo root, once:
#     echo /.whl/ >> .git/info/exclude
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 \
#       --platform manylinux_2_27_x86_64 -d .whl faiss-cpu==1.15.1   # 18 MiB
#   then: run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=540)
#   and read $OUT's files: gpu_check.log (everything), summary.txt.
#
# faiss-gpu itself cannot be carried there as things stand: faiss-gpu 1.15.1
# (129 MiB) and faiss-gpu-cu12 need the CUDA 12 cuBLAS (nvidia-cublas-cu12,
# 554 MiB), faiss-gpu-cu13-cuvs is 77 MiB plus the cuVS libraries, and a call
# carries at most 64 MiB.  This script looks for a CUDA 12 cuBLAS on the
# machine and records what it finds; bench_gpu.py measures faiss-gpu
# whenever `import faiss` has GPUs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1
JOBS=$(nproc)
PY=${PYTHON:-python3}
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"
step() { # name timeout command...
    local name=$1 t=$2
    shift 2
    local t0=$SECONDS
    echo "===== $name (limit ${t}s)"
    timeout "$t" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 40 "$OUT/$name.log"
    summary "$name: rc=$rc in $((SECONDS - t0))s"
    return $rc
}

echo "===== machine"
nvidia-smi || true
nvcc --version | tail -n 2 || true
uname -a
ldconfig -p | grep -E "libcublas\.so\.(12|13)" || echo "no libcublas.so.12/13 in ldconfig"
find / -xdev -name "libcublas.so.12*" 2>/dev/null | head -n 3 || true

if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi

step build 200 bash -c "cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DVDX_WERROR=ON -DVDX_GPU=ON -DVDX_BUILD_CLI=OFF && cmake --build build/gpu -j$JOBS"
step ctest_gpu 60 ctest --test-dir build/gpu -R "test_gpu|test_flat|test_ivf" \
    --output-on-failure
step pip 180 $PY -m pip install -q --no-build-isolation --no-deps \
    -C build-dir=build/py-gpu -C cmake.define.VDX_BUILD_CLI=OFF --target /tmp/vdx --upgrade .
export PYTHONPATH=/tmp/vdx${PYTHONPATH:+:$PYTHONPATH}
step pytest_gpu 150 bash -c "cd tests/python && $PY -m pytest -q -p no:cacheprovider \
    -rs --durations=10 test_gpu.py --junitxml=$OUT/pytest_gpu.xml"
left() { echo $((DEADLINE - SECONDS)); }
DEADLINE=${GPU_CHECK_SECONDS:-480}
if [ "$(left)" -gt 60 ]; then
    step bench "$(( $(left) - 40 < 200 ? $(left) - 40 : 200 ))" \
        $PY bench/bench_gpu.py --quick --out "$OUT/bench.json"
else
    summary "bench: skipped (time)"
fi
if [ "$(left)" -gt 30 ]; then
    step memcheck "$(left)" compute-sanitizer --tool memcheck --error-exitcode 3 \
        build/gpu/test_gpu
else
    summary "memcheck: skipped (time)"
fi
echo "===== summary"
cat "$OUT/summary.txt"
