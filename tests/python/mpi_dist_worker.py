"""Run under mpirun by test_contrib_dist.py: vecdex.contrib.dist on the
ranks of MPI.COMM_WORLD.  MODE (argv[1]):

  write DIR   IDMap,Flat shards: round-robin and hashed adds, removal; the
              search equals brute force over the vectors left (numpy) and
              one IDMap,Flat index given the same writes (ids exactly,
              distances to float rounding); the
              ranks' shards hold what route_id says; save to DIR, which
              vecdex.read_index reads in one process with the same results
  reload DIR  a fresh mpirun: load(DIR) answers the same
  kill        the last rank is SIGKILLed: search raises DistError naming it
              within the deadline, allow_partial gives S-1 shards, an add
              is reported partial
Prints "mpi_dist_worker MODE (S ranks): OK" on rank 0.
"""
import os
import signal
import sys
import time

import numpy as np
from mpi4py import MPI

import vecdex
from vecdex.contrib.dist import DistError, DistIndex, load, route_id

D, K = 16, 10
comm = MPI.COMM_WORLD
rank, S = comm.Get_rank(), comm.Get_size()
mode = sys.argv[1]
rs = np.random.RandomState(3)
xb = rs.rand(4000, D).astype("float32")
xq = rs.rand(30, D).astype("float32")


def brute(xb, ids, xq, k):
    d2 = ((xq[:, None, :].astype("float64") - xb[None, :, :]) ** 2).sum(-1)
    order = np.lexsort((np.broadcast_to(ids, d2.shape), d2), axis=1)[:, :k]
    return ids[order]


def reference():
    """The vectors and ids the writes of "write" leave."""
    ids = np.concatenate([np.arange(2000), 50000 + 3 * np.arange(2000)])
    gone = np.concatenate([np.arange(0, 2000, 5), ids[2000::7]])
    keep = ~np.isin(ids, gone)
    return xb[keep], ids[keep], gone


def one_index(x, ids):
    ix = vecdex.IndexIDMap(vecdex.IndexFlatL2(D))
    ix.add_with_ids(x, ids)
    return ix


def check_equal(Dd, Id, x, ids):
    np.testing.assert_array_equal(Id, brute(x, ids, xq, K))
    D1, I1 = one_index(x, ids).search(xq, K)
    np.testing.assert_array_equal(Id, I1)
    # shards' sgemms run over other row counts than one index's: OpenBLAS's
    # blocking (its Haswell kernels) may round the last bit differently
    np.testing.assert_allclose(Dd, D1, rtol=1e-5, atol=1e-5)


def _abort_on_error(kind, value, tb):
    """A failed check on one rank ends every rank at once (the others would
    wait in serve() until mpirun's timeout)."""
    sys.__excepthook__(kind, value, tb)
    sys.stderr.flush()
    comm.Abort(1)


sys.excepthook = _abort_on_error


if mode == "write":
    g = DistIndex(comm, vecdex.IndexIDMap(vecdex.IndexFlatL2(D)), deadline=10)
    assert g.writable
    if rank == 0:
        ids_a = g.add(xb[:2000])
        assert (ids_a == np.arange(2000)).all()
        ids_b = 50000 + 3 * np.arange(2000)
        g.add(xb[2000:], ids_b)
        assert g.ntotal == 4000
        rr = np.bincount(np.arange(2000) % S, minlength=S)
        hashed = np.bincount(route_id(ids_b, S), minlength=S)
        assert g.nt == list(rr + hashed), (g.nt, rr + hashed)
        x, ids, gone = reference()
        assert g.remove_ids(gone) == len(gone)
        Dd, Id = g.search(xq, K)
        check_equal(Dd, Id, x, ids)
        # bad input refused before anything is sent
        for bad in (lambda: g.add(np.full((1, D), np.nan, "float32")),
                    lambda: g.add(xb[:1], [-1]), lambda: g.search(xq[:, :3], K)):
            try:
                bad()
                raise AssertionError("accepted")
            except ValueError:
                pass
        assert g.ntotal == len(ids)
        g.save(sys.argv[2])
        back = vecdex.read_index(sys.argv[2])
        D2, I2 = back.search(xq, K)
        check_equal(D2, I2, x, ids)
        g.close()
    else:
        g.serve()
elif mode == "reload":
    shard, gid = load(comm, sys.argv[2])
    assert gid
    g = DistIndex(comm, shard, global_ids=gid)
    if rank == 0:
        x, ids, _ = reference()
        assert g.ntotal == len(ids)
        Dd, Id = g.search(xq, K)
        check_equal(Dd, Id, x, ids)
        g.close()
    else:
        g.serve()
elif mode == "kill":
    lo, hi = rank * len(xb) // S, (rank + 1) * len(xb) // S
    g = DistIndex(comm, one_index(xb[lo:hi], np.arange(lo, hi)), deadline=1.0)
    comm.Barrier()
    if rank == S - 1:
        os.kill(os.getpid(), signal.SIGKILL)
    if rank != 0:
        g.serve()
        os._exit(0)
    time.sleep(0.3)
    t0 = time.monotonic()
    try:
        g.search(xq, K)
        raise AssertionError("no error")
    except DistError as e:
        assert time.monotonic() - t0 < 1.5
        assert f"shard {S - 1} of {S}" in str(e) and e.answered == S - 1, e
    Dd, Id, answered = g.search(xq, K, allow_partial=True)
    assert answered == S - 1
    n2 = (S - 1) * len(xb) // S
    np.testing.assert_array_equal(Id, brute(xb[:n2], np.arange(n2), xq, K))
    try:
        g.add(xq[:9])
        raise AssertionError("no error")
    except DistError as e:
        assert "partial" in str(e) and e.applied == 9 - 9 // S, (e, e.applied)
        print("  add:", e)
    g.close()
    print(f"mpi_dist_worker {mode} ({S} ranks): OK", flush=True)
    os._exit(0)
if rank == 0:
    print(f"mpi_dist_worker {mode} ({S} ranks): OK", flush=True)
