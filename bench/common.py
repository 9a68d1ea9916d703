"""common.py — shared plumbing of the benchmarks.

Every benchmark runs each library in its own process on the same data: the
parent writes the data once (.npy files in a temporary folder), starts one
worker process per library, collects the JSON each prints on its last line,
and prints a side-by-side table.  Worker functions receive the library
module (vecdex or faiss), so one code path measures both.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np


def synthetic(d, nt, nb, nq, seed=1338):
    """Data made as faiss.contrib.datasets.SyntheticDataset makes it: a
    10-dimensional Gaussian cloud mapped through a random linear map and a
    sine, so that it is not uniform and not trivially easy to index."""
    d1 = 10
    n = nb + nt + nq
    rs = np.random.RandomState(seed)
    x = rs.normal(size=(n, d1))
    x = np.dot(x, rs.rand(d1, d))
    x = x * (rs.rand(d) * 4 + 0.1)
    x = np.sin(x).astype("float32")
    return x[:nt], x[nt:nt + nb], x[nt + nb:]


def tutorial(d=64, nb=100000, nq=10000, nt=None):
    """The FAISS tutorial's data: uniform, column 0 shifted by i/1000."""
    np.random.seed(1234)
    xb = np.random.random((nb, d)).astype("float32")
    xq = np.random.random((nq, d)).astype("float32")
    xb[:, 0] += np.arange(nb) / 1000.0
    xq[:, 0] += np.arange(nq) / 1000.0
    return (xb if nt is None else xb[:nt]), xb, xq


def save(folder, **arrays):
    for k, v in arrays.items():
        np.save(os.path.join(folder, k + ".npy"), v)


def load(folder, name):
    return np.load(os.path.join(folder, name + ".npy"), mmap_mode="r")


def cpu_model():
    """The CPU's model name (/proc/cpuinfo), for the benchmarks' headers."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor()


def import_lib(name):
    if name == "vecdex":
        import vecdex as L
    elif name == "faiss":
        import faiss as L
    else:
        raise SystemExit(f"unknown library {name}")
    return L


def run_worker(script, lib, folder, extra=()):
    """Runs `script --worker lib --data folder` and returns its JSON."""
    cmd = [sys.executable, script, "--worker", lib, "--data", folder, *extra]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{lib} worker failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


class Server:
    """A library's worker kept running: it builds its indexes once, then
    times searches when asked (see serve), so that the libraries can take
    turns a fraction of a second apart.  This machine's speed drifts over
    seconds to minutes; best times taken in alternating turns see the same
    drift, best times taken minutes apart do not."""

    def __init__(self, script, lib, folder, env=None):
        cmd = [sys.executable, script, "--worker", lib, "--data", folder]
        self.lib = lib
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=env)
        self.info = self._answer()

    def _answer(self):
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit(f"{self.lib} worker failed ({self.p.wait()})")
        return json.loads(line)

    def ask(self, *words):
        self.p.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.p.stdin.flush()
        return self._answer()

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait()


def serve(searches, info, lib):
    """Worker side of Server (lib: the library module): prints info (JSON), then answers one JSON
    line per request on stdin:
      time I S T -> {"t": best seconds of searches[I]() over >= S seconds,
                    >= 2 calls, on T threads (omp_set_num_threads)}
      save I F  -> {} after saving the labels searches[I]() returns to F (.npy)
      quit
    The libraries' own output goes to stderr, away from the answers."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def answer(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    answer(info)
    for line in sys.stdin:
        w = line.split()
        if not w or w[0] == "quit":
            break
        fn = searches[int(w[1])]
        if w[0] == "time":
            lib.omp_set_num_threads(int(w[3]))
            best, spent, rep = 1e30, 0.0, 0
            while rep < 2 or spent < float(w[2]):
                t, _ = timed(fn)
                best, spent, rep = min(best, t), spent + t, rep + 1
            answer({"t": best})
        elif w[0] == "save":
            _, I = fn()
            np.save(w[2], I)
            answer({})


def timed(fn, *a, repeat=1):
    best, out = 1e30, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*a)
        best = min(best, time.perf_counter() - t0)
    return best, out


def recall_at(I, gt, k):
    """k-recall@k: share of the true k nearest found in the top k."""
    I = np.asarray(I)[:, :k]
    gt = np.asarray(gt)[:, :k]
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(I, gt))
    return hits / float(gt.size)


def exact_knn(xb, xq, k, ip=False, bs=None):
    """Ground truth by blocked brute force: faiss's IndexFlat when faiss is
    importable (the reference library, fast), numpy otherwise."""
    try:
        import faiss
        index = faiss.IndexFlatIP(xb.shape[1]) if ip else faiss.IndexFlatL2(xb.shape[1])
        index.add(np.ascontiguousarray(xb, dtype="float32"))
        return index.search(np.ascontiguousarray(xq, dtype="float32"), k)[1]
    except ImportError:
        pass
    xb = np.asarray(xb, dtype="float32")
    bs = bs or max(16, int(1e8 // len(xb)))
    nb2 = (xb.astype("float64") ** 2).sum(1) if not ip else None
    out = np.empty((len(xq), k), dtype="int64")
    for i0 in range(0, len(xq), bs):
        q = np.asarray(xq[i0:i0 + bs], dtype="float32")
        s = q @ xb.T
        if ip:
            key = -s
        else:
            key = nb2[None, :] - 2 * s
        part = np.argpartition(key, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(key, part, 1).argsort(1, kind="stable")
        out[i0:i0 + bs] = np.take_along_axis(part, order, 1)
    return out
