#!/usr/bin/env bash
# The issue's "across hosts" test: 4 test hosts made as network namespaces on
# this machine, joined by veth pairs to a bridge (in a fifth namespace, so
# the machine's own network is not touched), one MPI rank in each.  mpirun
# runs in host 0; the other hosts are reached through an rsh agent that runs
# `ip netns exec HOST ...` instead of ssh, and Open MPI's out-of-band and
# byte-transfer layers are told to use TCP over the namespaces' interfaces
# only (no shared memory between the "hosts").  Runs tests/mpi/test_dist:
# equal (exact vs one Flat), write then reload on a fresh mpirun, and kill
# (a rank SIGKILLed: errors / partial results within the deadline).
#
# Needs root and `ip netns` (iproute2); exits 77 (ctest: skipped) with a
# message where namespaces cannot be made.  The namespaces (named after this
# script's pid, so that concurrent runs do not meet) are always removed.
set -euo pipefail
BUILD=$(cd "${1:-build/release}" && pwd)
T=$BUILD/test_dist
N=4
P=vdx$$
skip() { echo "tests/mpi/netns.sh: SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (ip netns)"
command -v ip >/dev/null || skip "no ip command (iproute2)"
command -v mpirun >/dev/null || skip "no mpirun (openmpi-bin)"
[ -x "$T" ] || { echo "no $T"; exit 1; }

WORK=$(mktemp -d /tmp/vdx_netns.XXXXXX)
cleanup() {
  for i in $(seq 0 $((N - 1))); do ip netns del "${P}h$i" 2>/dev/null || true; done
  ip netns del "${P}sw" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "${P}sw" 2>/dev/null || skip "ip netns add is not permitted here"
ip -n "${P}sw" link add br0 type bridge
ip -n "${P}sw" link set br0 up
: >"$WORK/hosts"
for i in $(seq 0 $((N - 1))); do
  h=${P}h$i
  ip netns add "$h"
  ip link add "${P}a$i" type veth peer name "${P}b$i"
  ip link set "${P}a$i" netns "$h"
  ip link set "${P}b$i" netns "${P}sw"
  ip -n "$h" link set lo up
  ip -n "$h" link set "${P}a$i" name eth0
  ip -n "$h" addr add "10.210.0.$((i + 1))/24" dev eth0
  ip -n "$h" link set eth0 up
  ip -n "${P}sw" link set "${P}b$i" master br0 up
  echo "10.210.0.$((i + 1)) slots=1" >>"$WORK/hosts"
done

# the rsh agent: `agent [options] HOST COMMAND...` -> the namespace of HOST,
# with a host name of its own (a UTS namespace) and its own TMPDIR, as a
# real host has: Open MPI keys its session directories by host name, and
# four daemons on one name and one /tmp race on them
for i in $(seq 0 $((N - 1))); do mkdir -p "$WORK/tmp$i"; done
cat >"$WORK/agent" <<AGENT
#!/bin/sh
while [ \$# -gt 0 ]; do case "\$1" in -*) shift;; *) break;; esac; done
host=\$1; shift
i=\$(( \${host##*.} - 1 ))
export TMPDIR="$WORK/tmp\$i"
exec ip netns exec "${P}h\$i" unshare --uts /bin/sh -c "hostname vdxhost\$i; \$*"
AGENT
chmod +x "$WORK/agent"
command -v unshare >/dev/null || skip "no unshare (util-linux)"

MPIRUN=(env TMPDIR="$WORK/tmp0" ip netns exec "${P}h0" unshare --uts
        /bin/sh -c 'hostname vdxhost0 && exec "$@"' sh mpirun --allow-run-as-root --bind-to none --hostfile "$WORK/hosts"
        --mca plm_rsh_agent "$WORK/agent" --mca oob_tcp_if_include 10.210.0.0/24
        --mca btl self,tcp --mca btl_tcp_if_include 10.210.0.0/24
        -x OMP_NUM_THREADS=1 -x "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
        -np $N)
run() { # MODE expected-line [mpirun options...]
  local mode=$1 want=$2; shift 2
  local out
  out=$(timeout 120 "${MPIRUN[@]}" "$@" 2>&1) || true
  echo "$out" | grep -v "PMIX ERROR\|^ *$" | head -20
  grep -q "$want" <<<"$out" || { echo "tests/mpi/netns.sh: FAILED: $mode"; exit 1; }
}
# one rank per host, each on its own network stack
run hosts "rank $((N - 1)) on vdxhost$((N - 1)) 10.210.0.$N" "$T" hostinfo
run equal "test_dist equal ($N ranks): OK" "$T" equal
run write "test_dist write ($N ranks): OK" "$T" write "$WORK/sh"
run reload "test_dist reload ($N ranks): OK" "$T" reload "$WORK/sh"
run kill "test_dist kill ($N ranks): OK" --enable-recovery "$T" kill
echo "tests/mpi/netns.sh: OK ($N hosts as network namespaces)"
