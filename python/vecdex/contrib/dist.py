"""Sharded search and writes over MPI ranks from Python, with mpi4py (for
users who already run MPI; vecdex itself does not need mpi4py).

The same design as the C part (include/vecdex_dist.h): every rank holds one
shard (any vecdex index); rank 0 takes the calls and sends each to every
other rank point to point; the ranks answer; rank 0 merges.  Every call has
a deadline: a rank that does not answer in time raises :class:`DistError`
naming the shard, or, for a search with ``allow_partial=True``, the result
merges the shards that answered and ``answered`` says how many.  No call
waits past its deadline (messages are polled with ``Iprobe``; sends are
nonblocking), so a dead rank never hangs rank 0.

Writes need shards whose ids are global: ``IndexIDMap`` shards (the
default), or an IVF index with ``global_ids=True`` (an IVF shard filled by
``add()`` holds positions, which are offset as IndexShards' successive ids):
adds without ids go round robin and get ids from a counter; adds with ids
go to ``route_id(id, size)`` (splitmix64's finaliser mod size, the C
part's routing); removal is sent to every rank.  A write is done only when
every shard confirmed it; otherwise :class:`DistError` says how far it got
(``.applied``, ``.answered``).  ``save(dir)`` writes ``shard-<r>.faissindex``
on every rank (staged, then renamed) and the manifest on rank 0: the layout
``vecdex.read_index(dir)``, ``vdx_dist_load`` and ``vecdex serve --sharded``
read.

    from mpi4py import MPI
    from vecdex.contrib.dist import DistIndex
    d = DistIndex(MPI.COMM_WORLD, vecdex.IndexIDMap(vecdex.IndexFlatL2(64)))
    if d.rank == 0:
        d.add(xb); D, I = d.search(xq, 10); d.close()
    else:
        d.serve()            # until rank 0 closes
"""
import os
import time

import numpy as np

import vecdex

TAG_CALL, TAG_REPLY = 7201, 7202
MANIFEST = "vecdex-manifest.txt"


class DistError(RuntimeError):
    """A call that not every shard answered in time.  ``shard``: the first
    shard that did not; ``answered``: how many did; ``applied``: for a
    write, the vectors stored (add) or removed (remove) by those that did."""

    def __init__(self, message, shard, answered, applied=0):
        super().__init__(message)
        self.shard, self.answered, self.applied = shard, answered, applied


def route_id(ids, size):
    """The rank each id goes to: splitmix64's finaliser of the id (as
    uint64) mod size, as vdx_dist_route_id."""
    z = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(size)).astype(np.int64)


def _carries_ids(ix):
    return isinstance(ix, (vecdex.IndexIDMap, getattr(vecdex, "IndexIDMap2", ()))) or \
        type(ix).__name__.startswith("IndexIVF")


def merge(Dall, Iall, keep_max=False):
    """(nshard, nq, k) tables -> (nq, k): best first, ties to the lower id
    (as the C part: a sharded exact index answers as one exact index)."""
    ns, nq, k = Dall.shape
    D = Dall.transpose(1, 0, 2).reshape(nq, ns * k)
    I = Iall.transpose(1, 0, 2).reshape(nq, ns * k)
    key = np.where(I < 0, np.inf, -D if keep_max else D)
    idkey = np.where(I < 0, np.iinfo(np.int64).max, I)
    o = np.lexsort((idkey, key), axis=1)[:, :k]
    return np.take_along_axis(D, o, 1), np.take_along_axis(I, o, 1)


class DistIndex:
    """A sharded index on the ranks of comm (collective constructor: every
    rank passes its shard, same d and metric).  Rank 0 calls search / add /
    remove_ids / save / close; the others call serve()."""

    def __init__(self, comm, shard, deadline=10.0, global_ids=None):
        """global_ids: None = IDMap shards yes, other kinds no (successive
        ids); True needs shards that carry ids (IDMap, IVF)."""
        self.comm, self.shard, self.deadline = comm, shard, float(deadline)
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        if global_ids is None:
            gid = isinstance(shard, (vecdex.IndexIDMap, getattr(vecdex, "IndexIDMap2", ())))
        elif global_ids and not _carries_ids(shard):
            raise ValueError(f"DistIndex: global ids asked of a {type(shard).__name__}, "
                             "which numbers vectors by position: wrap it in IndexIDMap")
        else:
            gid = bool(global_ids)
        mine = (int(shard.d), int(shard.metric_type), gid, int(shard.ntotal))
        allv = comm.allgather(mine)
        if len({(a[0], a[1]) for a in allv}) != 1:
            raise ValueError(f"DistIndex: the shards differ in d / metric: {allv}")
        if len({a[2] for a in allv}) != 1:
            raise ValueError("DistIndex: some shards carry their ids and others "
                             "number vectors by position: use one kind everywhere")
        self.writable = allv[0][2]
        self.nt = [a[3] for a in allv]
        # without ids, shard r numbers from the vectors of the shards before it
        self.offset = 0 if self.writable else sum(self.nt[:self.rank])
        self.next_id = sum(self.nt)
        self.rr = 0
        self.seq = 0
        self._pending = []  # sends not yet complete (buffers kept alive)

    # ---- rank 0 -----------------------------------------------------------
    @property
    def ntotal(self):
        return sum(self.nt)

    def _call(self, calls, local, deadline):
        """Sends calls[r] (a dict) to every rank r >= 1, runs local() for rank
        0, polls the replies until the deadline.  -> {rank: reply}."""
        from mpi4py import MPI
        if self.rank != 0:
            raise RuntimeError(f"only rank 0 takes calls (this is rank {self.rank})")
        deadline = self.deadline if deadline is None else float(deadline)
        if not deadline > 0:
            raise ValueError(f"deadline {deadline} s must be > 0")
        t_end = time.monotonic() + deadline
        self.seq += 1
        seq = self.seq
        self._pending = [r for r in self._pending if not r.Test()]
        for r in range(1, self.size):
            c = dict(calls[r], seq=seq)
            self._pending.append(self.comm.isend(c, dest=r, tag=TAG_CALL))
        replies = {0: local()}
        waiting = set(range(1, self.size))
        while waiting:
            for r in list(waiting):
                st = MPI.Status()
                if self.comm.Iprobe(source=r, tag=TAG_REPLY, status=st):
                    rep = self.comm.recv(source=r, tag=TAG_REPLY)
                    if rep.get("seq") != seq:
                        continue  # a late answer to an earlier call
                    replies[r] = rep
                    waiting.discard(r)
                    if "ntotal" in rep:
                        self.nt[r] = rep["ntotal"]
            if not waiting or time.monotonic() >= t_end:
                break
            time.sleep(0.0002)
        return replies

    def _bad(self, replies, what, deadline, partial_info=None):
        """The first shard that did not answer well, as a message, or None."""
        for r in range(self.size):
            rep = replies.get(r)
            if rep is None:
                cause = (f"shard {r} of {self.size} (rank {r}) did not answer within "
                         f"the deadline of {self.deadline if deadline is None else deadline:.3f} s")
            elif rep.get("error"):
                cause = f"shard {r} of {self.size} (rank {r}) failed: {rep['error']}"
            else:
                continue
            return r, f"{what}: {cause}"
        return None

    def search(self, x, k, allow_partial=False, deadline=None, **params):
        """(D, I) of the k nearest over every shard; with allow_partial,
        (D, I, answered).  params: nprobe, efSearch (forwarded)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.shard.d:
            raise ValueError(f"search: expected a (n, {self.shard.d}) array, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("search: the query vectors hold NaN or Inf")
        if not 1 <= k <= 1 << 30:
            raise ValueError(f"search: k={k} must be in 1..2^30")
        call = dict(op="search", x=x, k=int(k), params=params)
        replies = self._call([call] * self.size, lambda: self._do(call), deadline)
        ok = [r for r in range(self.size) if r in replies and not replies[r].get("error")]
        bad = self._bad(replies, "dist search", deadline)
        if bad and not allow_partial:
            r, msg = bad
            raise DistError(f"{msg} ({len(ok)} of {self.size} shards answered)", r, len(ok))
        keep_max = self.shard.metric_type == vecdex.METRIC_INNER_PRODUCT
        fill = -np.finfo(np.float32).max if keep_max else np.finfo(np.float32).max
        n = len(x)
        Dall = np.full((self.size, n, k), fill, dtype=np.float32)
        Iall = np.full((self.size, n, k), -1, dtype=np.int64)
        for r in ok:
            Dall[r], Iall[r] = replies[r]["D"], replies[r]["I"]
        D, I = merge(Dall, Iall, keep_max)
        return (D, I, len(ok)) if allow_partial else (D, I)

    def _write(self, calls, local, what, deadline, unit, report_partial=True):
        replies = self._call(calls, local, deadline)
        bad = self._bad(replies, what, deadline)
        ok = [r for r in range(self.size) if r in replies and not replies[r].get("error")]
        done = sum(replies[r].get("count", 0) for r in ok)
        if bad:
            r, msg = bad
            missing = [s for s in range(self.size) if s not in ok]
            if not report_partial:
                raise DistError(msg, r, len(ok), done)
            raise DistError(f"{msg}; the write is partial: {len(ok)} of {self.size} shards "
                            f"applied it ({done} {unit}), not confirmed by shards {missing} "
                            "(a shard that missed the deadline may still apply it)"
                            if ok else f"{msg}; no shard confirmed it", r, len(ok), done)
        return done

    def _need_writable(self, what):
        if not self.writable:
            raise RuntimeError(f"{what}: the shards ({type(self.shard).__name__}) use "
                               "successive ids, so a write on one would renumber the "
                               "others; give every rank a shard that carries its ids "
                               "(IndexIDMap around it, or IVF with global_ids=True)")

    def add(self, x, ids=None, deadline=None):
        """Routes the n vectors to the shards; returns their ids."""
        self._need_writable("add")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.shard.d:
            raise ValueError(f"add: expected a (n, {self.shard.d}) array, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("add: the vectors hold NaN or Inf")
        if not self.shard.is_trained:
            raise RuntimeError("add: the shards must be trained first (train one, "
                               "then broadcast it)")
        n = len(x)
        if ids is None:
            gid = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
            dest = (self.rr + np.arange(n)) % self.size
            self.next_id += n
            self.rr = (self.rr + n) % self.size
        else:
            gid = np.ascontiguousarray(ids, dtype=np.int64)
            if gid.shape != (n,):
                raise ValueError(f"add: {len(gid)} ids for {n} vectors")
            if (gid == -1).any():
                raise ValueError("add: id -1 marks empty result slots; use another id")
            dest = route_id(gid, self.size)
            if n:
                self.next_id = max(self.next_id, int(gid.max()) + 1)
        calls = [dict(op="add", x=x[dest == r], ids=gid[dest == r]) for r in range(self.size)]
        self._write(calls, lambda: self._do(calls[0]), "dist add", deadline, "vectors stored")
        return gid

    def remove_ids(self, ids, deadline=None):
        """Removes the ids from every shard; returns the count removed."""
        self._need_writable("remove_ids")
        call = dict(op="remove", ids=np.ascontiguousarray(ids, dtype=np.int64))
        return self._write([call] * self.size, lambda: self._do(call), "dist remove",
                           deadline, "vectors removed")

    def save(self, dirname, deadline=None):
        """Every rank writes shard-<rank>.faissindex into dirname (staged,
        renamed when all wrote), rank 0 the manifest last."""
        dirname = os.fspath(dirname)
        call = dict(op="save", dir=dirname)
        try:
            self._write([call] * self.size, lambda: self._do(call), "dist save", deadline, "",
                        report_partial=False)
        except DistError as e:
            abort = dict(op="abort", dir=dirname)
            try:
                self._call([abort] * self.size, lambda: self._do(abort), 1.0)
            finally:
                raise DistError(f"{e}; nothing in '{dirname}' was replaced", e.shard,
                                e.answered) from None
        man = os.path.join(dirname, MANIFEST)
        if os.path.exists(man):
            os.unlink(man)
        commit = dict(op="commit", dir=dirname)
        self._write([commit] * self.size, lambda: self._do(commit), "dist save", deadline,
                    "shard files replaced")
        lines = ["vecdex-sharded 1", "kind IndexShards", f"d {self.shard.d}",
                 f"metric {int(self.shard.metric_type)}", "threaded 0",
                 f"successive_ids {0 if self.writable else 1}", f"count {self.size}"]
        lines += [f"shard {r} file shard-{r}.faissindex {self.nt[r]}" for r in range(self.size)]
        tmp = f"{man}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, man)

    def close(self):
        """Rank 0: tells every rank to leave serve() (not waiting for one
        that stopped answering)."""
        if self.rank == 0:
            for r in range(1, self.size):
                self._pending.append(self.comm.isend(dict(op="stop"), dest=r, tag=TAG_CALL))
            t_end = time.monotonic() + 1.0
            while self._pending and time.monotonic() < t_end:
                self._pending = [q for q in self._pending if not q.Test()]
                time.sleep(0.001)

    # ---- every rank -------------------------------------------------------
    def _do(self, c):
        """One call on this rank's shard -> its reply."""
        op = c["op"]
        try:
            if op == "search":
                p = c["params"]
                params = None
                if p:
                    params = (vecdex.SearchParametersIVF() if "nprobe" in p
                              else vecdex.SearchParametersHNSW())
                    for key, v in p.items():
                        setattr(params, key, v)
                D, I = self.shard.search(c["x"], c["k"], params=params)
                if self.offset:
                    I = np.where(I >= 0, I + self.offset, I)
                return dict(D=D, I=I)
            if op == "add":
                if len(c["x"]):
                    self.shard.add_with_ids(c["x"], c["ids"])
                out = dict(count=len(c["x"]))
            elif op == "remove":
                out = dict(count=int(self.shard.remove_ids(c["ids"])))
            else:
                base = os.path.join(c["dir"], f"shard-{self.rank}.faissindex")
                if op == "save":
                    os.makedirs(c["dir"], exist_ok=True)
                    vecdex.write_index(self.shard, base + ".new")
                elif op == "commit":
                    os.replace(base + ".new", base)
                elif op == "abort" and os.path.exists(base + ".new"):
                    os.unlink(base + ".new")
                out = {}
            out["ntotal"] = int(self.shard.ntotal)
            if self.rank == 0:
                self.nt[0] = out["ntotal"]
            return out
        except Exception as e:  # the reply names it; the rank keeps serving
            return dict(error=f"rank {self.rank}: {type(e).__name__}: {e}",
                        ntotal=int(self.shard.ntotal))

    def serve(self):
        """Ranks other than 0: answers rank 0's calls until it closes."""
        from mpi4py import MPI
        if self.rank == 0:
            raise RuntimeError("rank 0 takes the calls, it does not serve them")
        nap = 1e-5
        while True:
            if not self.comm.Iprobe(source=0, tag=TAG_CALL, status=MPI.Status()):
                time.sleep(nap)
                nap = min(nap + 1e-5, 2e-4)  # idle ranks back off to 0.2 ms
                continue
            nap = 1e-5
            c = self.comm.recv(source=0, tag=TAG_CALL)
            if c["op"] == "stop":
                return
            rep = self._do(c)
            rep["seq"] = c["seq"]
            self.comm.send(rep, dest=0, tag=TAG_REPLY)


def load(comm, dirname):
    """Collective: rank r reads shard r of a sharded directory (written by
    DistIndex.save, vdx_dist_save or write_index of an IndexShards).
    Returns (shard, global_ids) for DistIndex (from the manifest's
    successive_ids)."""
    dirname = os.fspath(dirname)
    count, successive = -1, True
    try:
        with open(os.path.join(dirname, MANIFEST)) as f:
            for line in f:
                if line.startswith("count "):
                    count = int(line.split()[1])
                if line.startswith("successive_ids "):
                    successive = line.split()[1] != "0"
    except OSError:
        pass
    err = None
    shard = None
    if count != comm.Get_size():
        err = (f"'{dirname}' holds {count} shards (its {MANIFEST}), the communicator "
               f"has {comm.Get_size()} ranks")
    else:
        try:
            shard = vecdex.read_index(os.path.join(dirname, f"shard-{comm.Get_rank()}.faissindex"))
        except Exception as e:
            err = f"rank {comm.Get_rank()}: {e}"
    errs = [e for e in comm.allgather(err) if e]
    if errs:
        raise RuntimeError(f"dist load: {errs[0]}")
    return shard, not successive
