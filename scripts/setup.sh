#!/usr/bin/env bash
# Installs what vecdex needs to build and test, on a fresh Debian machine as
# root (or with sudo).  Safe to run again: it skips what is already there.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

need_apt=""
for pkg in build-essential cmake libopenblas-openmp-dev libomp-dev clang libclang-rt-14-dev python3-dev libsimde-dev \
           libsqlite3-dev libjansson-dev libmicrohttpd-dev libopenmpi-dev openmpi-bin iproute2 pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt="$need_apt $pkg"
done
if [ -n "$need_apt" ]; then
  echo "[setup] apt-get install$need_apt"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need_apt >/dev/null
fi

PY=${PYTHON:-python3}
# build + runtime: numpy, scikit-build-core; tests: pytest, hypothesis (the
# property suite) and the reference libraries (faiss-cpu, hnswlib) the
# results are compared with
want_py="numpy scikit-build-core pytest hypothesis faiss-cpu"
missing=""
for mod in $want_py; do
  imp=${mod//-/_}
  [ "$imp" = faiss_cpu ] && imp=faiss
  $PY -c "import $imp" >/dev/null 2>&1 || missing="$missing $mod"
done
if [ -n "$missing" ]; then
  echo "[setup] pip install$missing"
  $PY -m pip install -q --root-user-action=ignore $missing
fi
# optional: mpi4py (built against Debian's Open MPI) for vecdex.contrib.dist's
# test; without it tests/python/test_contrib_dist.py skips
if command -v mpicc >/dev/null && ! $PY -c "import mpi4py" >/dev/null 2>&1; then
  echo "[setup] pip install mpi4py (optional)"
  $PY -m pip install -q --root-user-action=ignore mpi4py ||
    echo "[setup] mpi4py did not install: the contrib.dist test will skip"
fi
