#!/usr/bin/env bash
# Runs every test: the C unit tests (-Werror), the C tests again under
# AddressSanitizer + UBSan and once more with the AVX-512 kernels emulated,
# the libFuzzer targets (file reader, factory strings, the command's vector
# files, operation sequences) from a fixed seed, then the Python
# module's and the vecdex command's tests (compared with numpy and faiss),
# including the property suite (VECDEX_PROP_EXAMPLES examples per test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
JOBS=$(nproc)
PY=${PYTHON:-python3}

echo "== C unit tests (Release, -Werror; the CUDA kernels too where nvcc is)"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DVDX_WERROR=ON >/dev/null
cmake --build build/release -j"$JOBS" >/dev/null
ctest --test-dir build/release --output-on-failure -j"$JOBS"

echo "== C unit tests, scalar kernels forced, every parallel path taken"
# (small calls run serially by default, threads.h: VECDEX_PAR_MIN_WORK=1
# sends the tests' small searches down the parallel and split paths again)
VECDEX_SIMD=scalar VECDEX_PAR_MIN_WORK=1 ctest --test-dir build/release --output-on-failure -j"$JOBS"

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
  OPENBLAS_NUM_THREADS=1 VECDEX_PAR_MIN_WORK=1 ctest --test-dir build/asan --output-on-failure -j"$JOBS"

echo "== C unit tests with the AVX-512 kernels emulated (SIMDe), ASan + UBSan"
# This machine class has no AVX-512: the level tests would skip it.  Here the
# AVX-512 sources run on SIMDe's portable intrinsics, so their results (and
# their masked tails, under ASan) are checked against the scalar reference.
cmake -S . -B build/emu-asan -DCMAKE_BUILD_TYPE=Release -DVDX_WERROR=ON -DVDX_SANITIZE=ON \
      -DVDX_BUILD_CLI=OFF -DVDX_EMULATE_AVX512=ON >/dev/null
cmake --build build/emu-asan -j"$JOBS" >/dev/null
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  OPENBLAS_NUM_THREADS=1 ctest --test-dir build/emu-asan --output-on-failure -j"$JOBS"

# (no GPU part: nvcc's objects would make CMake link libFuzzer with g++)
# By default each libFuzzer target makes a fixed number of runs from a fixed
# seed, over a fresh copy of its seed corpus, with the scalar kernels: the
# same commit explores the same inputs on every machine (-reload=0: no
# timed re-reads of the corpus directory), so CI cannot turn
# red by luck (new finds come from exploratory runs: FUZZ_SECONDS=600 runs
# each target that long from a random seed, keeping its corpus).  A crash, a
# sanitizer report or a broken invariant fails the run; its input is left in
# build/fuzz/ as crash-* / timeout-* (add it to the target's seed corpus,
# which fuzz_replay_<target> replays in every ctest pass, once fixed).
FUZZ_TARGETS="read_index factory vecio ops"
declare -A FUZZ_RUNS=([read_index]=1500000 [factory]=100000 [vecio]=60000 [ops]=5000)
echo "== fuzz: $FUZZ_TARGETS (${FUZZ_SECONDS:+${FUZZ_SECONDS}s each, random seed}${FUZZ_SECONDS:-fixed seed and run counts})"
CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDX_BUILD_FUZZ=ON \
      -DVDX_BUILD_TESTS=OFF -DVDX_BUILD_CLI=OFF -DVDX_GPU=OFF >/dev/null
for t in $FUZZ_TARGETS; do
  cmake --build build/fuzz -j"$JOBS" --target "fuzz_$t" >/dev/null
done
for t in $FUZZ_TARGETS; do
  seeds=tests/fuzz/corpus_$t
  [ "$t" = read_index ] && seeds=tests/fuzz/corpus
  work=build/fuzz/corpus_$t
  if [ -n "${FUZZ_SECONDS:-}" ]; then
    how="-max_total_time=$FUZZ_SECONDS"
  else
    how="-seed=1 -runs=${FUZZ_RUNS[$t]} -reload=0"
    rm -rf "$work"
  fi
  mkdir -p "$work"
  cp "$seeds"/* "$work"/ 2>/dev/null || true
  dict=""
  [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
  echo "-- fuzz_$t"
  # OpenBLAS picks its kernels by CPU (OPENBLAS_CORETYPE pins one that every
  # x86-64 machine here runs), and their rounding steers which inputs the
  # fuzzer keeps: pinned, a fixed seed explores the same inputs everywhere.
  log=build/fuzz/log_$t.txt
  rc=0
  VECDEX_SIMD=scalar OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell \
  LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp \
    ./build/fuzz/fuzz_"$t" $dict $how -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -artifact_prefix=build/fuzz/ -print_final_stats=1 "$work" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    # the broken invariant or sanitizer report, its stack, and the input
    grep -n -m1 -A40 -E "^fuzz_$t: |ERROR: |runtime error" "$log" || true
    for a in build/fuzz/crash-* build/fuzz/timeout-* build/fuzz/oom-* build/fuzz/leak-*; do
      [ -f "$a" ] && { echo "input $a (base64):"; head -c 65536 "$a" | base64 -w 0; echo; }
    done
    tail -n 12 "$log"
    exit "$rc"
  fi
  tail -n 6 "$log"
done

echo "== Python module"
$PY -m pip install -q --root-user-action=ignore --no-build-isolation . 
# run from outside the source tree so that the installed module is imported
# tests/cli runs the installed `vecdex` command (or $VECDEX_CLI)
(cd tests/python && $PY -m pytest -q -p no:cacheprovider . ../cli)
