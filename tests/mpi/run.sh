#!/usr/bin/env bash
# Runs tests/mpi/test_dist under mpirun on this machine (ranks as local
# processes): BUILD is the build directory holding test_dist.
# Across network namespaces (the issue's test hosts): tests/mpi/netns.sh.
set -euo pipefail
BUILD=${1:-build/release}
T=$BUILD/test_dist
# under the sanitizer builds, Open MPI's own allocations kept until exit
# are not the library's leaks
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none -x OMP_NUM_THREADS=1
        -x "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
for np in 2 3 4; do
  out=$(timeout 120 "${MPIRUN[@]}" -np $np "$T" equal)
  echo "$out"
  grep -q "test_dist equal ($np ranks): OK" <<<"$out"
done
# writes: routed adds, removal, save; then a fresh mpirun reloads the save
DIR=$(mktemp -d /tmp/vdx_mpi.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
for np in 2 4; do
  rm -rf "$DIR/s$np"
  out=$(timeout 120 "${MPIRUN[@]}" -np $np "$T" write "$DIR/s$np")
  echo "$out"
  grep -q "test_dist write ($np ranks): OK" <<<"$out"
  out=$(timeout 120 "${MPIRUN[@]}" -np $np "$T" reload "$DIR/s$np")
  echo "$out"
  grep -q "test_dist reload ($np ranks): OK" <<<"$out"
done
out=$(timeout 120 "${MPIRUN[@]}" -np 3 "$T" badload "$DIR/s4")
echo "$out"
grep -q "test_dist badload (3 ranks): OK" <<<"$out"
# a killed rank: --enable-recovery keeps the job (and rank 0) alive
out=$(timeout 60 "${MPIRUN[@]}" --enable-recovery -np 3 "$T" kill 2>&1 || true)
echo "$out" | grep -v "^ *$" | head -20
grep -q "test_dist kill (3 ranks): OK" <<<"$out"
echo "tests/mpi: OK"
