#!/usr/bin/env bash
# Runs every test: the C unit tests (-Werror), the C tests again under
# AddressSanitizer + UBSan and once more with the AVX-512 kernels emulated,
# the file-reader fuzz target for a bounded time, then the Python module's and
# the vecdex command's tests (compared with numpy and faiss).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
JOBS=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
PY=${PYTHON:-python3}

echo "== C unit tests (Release, -Werror; the CUDA kernels too where nvcc is)"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DVDX_WERROR=ON >/dev/null
cmake --build build/release -j"$JOBS" >/dev/null
ctest --test-dir build/release --output-on-failure -j"$JOBS"

echo "== C unit tests, scalar kernels forced"
VECDEX_SIMD=scalar ctest --test-dir build/release --output-on-failure -j"$JOBS"

echo "== C unit tests under AddressSanitizer + UBSan"
# (with the GPU host code over the CPU emulation of the device, when the
# CUDA headers are there: test_gpu then checks it under the sanitizers)
GPU_MODE=OFF
[ -e /usr/local/cuda/include/cuda_runtime_api.h ] && GPU_MODE=EMULATE
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DVDX_WERROR=ON -DVDX_SANITIZE=ON \
      -DVDX_BUILD_CLI=OFF -DVDX_GPU=$GPU_MODE >/dev/null
cmake --build build/asan -j"$JOBS" >/dev/null
# OpenBLAS' threads and libomp confuse LeakSanitizer's stack scanning; leaks
# are still reported for the library's own allocations.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  OPENBLAS_NUM_THREADS=1 ctest --test-dir build/asan --output-on-failure -j"$JOBS"

echo "== C unit tests with the AVX-512 kernels emulated (SIMDe), ASan + UBSan"
# This machine class has no AVX-512: the level tests would skip it.  Here the
# AVX-512 sources run on SIMDe's portable intrinsics, so their results (and
# their masked tails, under ASan) are checked against the scalar reference.
cmake -S . -B build/emu-asan -DCMAKE_BUILD_TYPE=Release -DVDX_WERROR=ON -DVDX_SANITIZE=ON \
      -DVDX_BUILD_CLI=OFF -DVDX_EMULATE_AVX512=ON >/dev/null
cmake --build build/emu-asan -j"$JOBS" >/dev/null
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  OPENBLAS_NUM_THREADS=1 ctest --test-dir build/emu-asan --output-on-failure -j"$JOBS"

echo "== fuzz: file reader (${FUZZ_SECONDS}s)"
# (no GPU part: nvcc's objects would make CMake link libFuzzer with g++)
CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDX_BUILD_FUZZ=ON \
      -DVDX_BUILD_TESTS=OFF -DVDX_BUILD_CLI=OFF -DVDX_GPU=OFF >/dev/null
cmake --build build/fuzz -j"$JOBS" --target fuzz_read_index >/dev/null
mkdir -p build/fuzz/corpus
cp tests/fuzz/corpus/* build/fuzz/corpus/ 2>/dev/null || true
OPENBLAS_NUM_THREADS=1 ./build/fuzz/fuzz_read_index -max_total_time="$FUZZ_SECONDS" \
  -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 build/fuzz/corpus 2>&1 | tail -n 12

echo "== Python module"
$PY -m pip install -q --root-user-action=ignore --no-build-isolation . 
# run from outside the source tree so that the installed module is imported
# tests/cli runs the installed `vecdex` command (or $VECDEX_CLI)
(cd tests/python && $PY -m pytest -q -p no:cacheprovider . ../cli)
