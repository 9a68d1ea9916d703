"""`vecdex serve`: search answers equal brute force (numpy) and faiss on the
same file; every kind of bad request gets a 4xx JSON error naming the
problem and changes nothing; the token guards writes; /metrics counts what
happened; a sharded directory and a store are served; a 20k-request burst
over 16 connections on loopback gets no error (its timing is in
bench/bench_serve.py, not asserted here).

The binary is $VECDEX_CLI, else `vecdex` on PATH (pip install .), else a
build tree's.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess

import numpy as np
import pytest

import vecdex
from vecdex.contrib.serve import Client, ServeError, load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
D = 16
TOKEN = "s3cret-token"


def find_cli():
    if os.environ.get("VECDEX_CLI"):
        return os.environ["VECDEX_CLI"]
    w = shutil.which("vecdex")
    if w:
        return w
    for c in sorted(glob.glob(os.path.join(ROOT, "build*", "vecdex"))
                    + glob.glob(os.path.join(ROOT, "build", "*", "vecdex"))):
        if os.access(c, os.X_OK):
            return c
    pytest.skip("the vecdex command is not built")


class Server:
    def __init__(self, path, *args):
        self.p = subprocess.Popen([find_cli(), "serve", str(path), "--port", "0", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        m = re.search(r"http://(\S+):(\d+)", line)
        if not m:
            self.p.kill()
            raise AssertionError("no address printed: " + line + self.p.stderr.read())
        self.host, self.port = m.group(1), int(m.group(2))

    def client(self, token=None):
        return Client(self.host, self.port, token=token)

    def stop(self):
        self.p.terminate()
        rc = self.p.wait(timeout=30)
        assert rc == 0, (rc, self.p.stderr.read())  # a clean stop, no crash


@pytest.fixture
def faiss_ref():
    return pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def data():
    rs = np.random.RandomState(7)
    return rs.rand(3000, D).astype("float32"), rs.rand(40, D).astype("float32")


def brute(xb, ids, xq, k):
    d2 = ((xq[:, None, :].astype("float64") - xb[None, :, :]) ** 2).sum(-1)
    order = np.lexsort((np.broadcast_to(ids, d2.shape), d2), axis=1)[:, :k]
    return np.take_along_axis(d2, order, 1), ids[order]


@pytest.fixture
def idmap_server(data, tmp_path):
    xb, _ = data
    ids = np.arange(len(xb), dtype="int64") * 3 + 1
    ix = vecdex.IndexIDMap(vecdex.IndexFlatL2(D))
    ix.add_with_ids(xb, ids)
    path = tmp_path / "idmap.index"
    vecdex.write_index(ix, str(path))
    s = Server(path, "--token", TOKEN, "--max-body", "200000")
    yield s, ids, path
    s.stop()


def test_search_equals_brute_force_and_faiss(idmap_server, data, faiss_ref):
    s, ids, path = idmap_server
    xb, xq = data
    assert s.host == "127.0.0.1"  # loopback unless told otherwise
    c = s.client()
    Ds, Is = c.search(xq, k=7)
    Db, Ib = brute(xb, ids, xq, 7)
    np.testing.assert_array_equal(Is, Ib)
    np.testing.assert_allclose(Ds, Db, rtol=1e-4, atol=1e-5)
    fx = faiss_ref.read_index(str(path))
    Df, If = fx.search(xq, 7)
    np.testing.assert_array_equal(Is, If)
    # an allow-list of ids reaches the index as a selector
    allow = ids[::10]
    Ds, Is = c.search(xq[:5], k=4, ids=allow.tolist())
    Db, Ib = brute(xb[::10], allow, xq[:5], 4)
    np.testing.assert_array_equal(Is, Ib)
    info = c.info()
    assert info["d"] == D and info["ntotal"] == len(xb) and info["type"] == "IndexIDMap"
    assert c.health() == {"status": "ok"}


BAD = [
    ("POST", "/search", "{\"vectors\": [[1, 2", 400, "malformed JSON"),
    ("POST", "/search", "[1, 2]", 400, "JSON object"),
    ("POST", "/search", json.dumps({"vectors": [[0.5] * (D - 1)]}), 400, "wrong dimension"),
    ("POST", "/search", json.dumps({"vectors": [[0.5] * D], "k": 0}), 400, "'k'"),
    ("POST", "/search", json.dumps({"vectors": [[0.5] * D], "k": 10 ** 9}), 400, "'k'"),
    ("POST", "/search", json.dumps({"vectors": [[0.5] * D], "k": "ten"}), 400, "'k'"),
    ("POST", "/search", json.dumps({"k": 3}), 400, "missing field 'vectors'"),
    ("POST", "/search", json.dumps({"vectors": []}), 400, "empty"),
    ("POST", "/search", json.dumps({"vectors": [["a"] * D]}), 400, "not a number"),
    ("POST", "/search", json.dumps({"vectors": [[1e39] * D]}), 400, "out of range"),
    ("POST", "/search", "{\"vectors\": [[" + ",".join(["0"] * D) + "]], \"k\": 1, \"k\": 2}",
     400, "malformed JSON"),
    ("POST", "/search", json.dumps({"vectors": [[0.5] * D], "filter": {"a": 1}}), 400, "store"),
    ("POST", "/search", json.dumps({"vectors": [[0.5] * D]}).ljust(200001), 413, "too large"),
    ("GET", "/nowhere", None, 404, "no such route"),
    ("DELETE", "/search", None, 404, "no such route"),
]


def test_bad_requests_get_4xx_json(idmap_server, data):
    s, ids, _ = idmap_server
    c = s.client(TOKEN)
    before = c.metrics()
    for method, path, body, code, words in BAD:
        status, out = c.request(method, path, body)
        assert status == code, (method, path, body and body[:60], status, out)
        assert out["status"] == code and words in out["error"], out
    # a chunked body over the limit is refused too
    import http.client

    def chunks():
        for _ in range(30):
            yield b" " * 10000
    h = http.client.HTTPConnection(s.host, s.port, timeout=10)
    h.request("POST", "/search", body=chunks(), encode_chunked=True)
    r = h.getresponse()
    assert r.status == 413 and b"too large" in r.read()
    # writes that fail change nothing
    n0 = c.info()["ntotal"]
    for path, body in [("/add", {"vectors": [[0.1] * (D + 1)], "ids": [5]}),
                       ("/add", {"vectors": [[0.1] * D], "ids": [5, 6]}),
                       ("/add", {"vectors": [[0.1] * D], "ids": [-1]}),
                       ("/upsert", {"vectors": [[0.1] * D]}),
                       ("/delete", {"ids": "all"})]:
        status, out = c.request("POST", path, body)
        assert status == 400 and out["error"], (path, out)
    assert c.info()["ntotal"] == n0
    after = c.metrics()
    assert (after['vecdex_errors_total{route="search",class="4xx"}']
            - before['vecdex_errors_total{route="search",class="4xx"}']) >= 13
    assert c.health()["status"] == "ok"  # still serving


def test_token_guards_writes(idmap_server, data):
    s, ids, _ = idmap_server
    xb, xq = data
    anon, wrong, ok = s.client(), s.client("nope"), s.client(TOKEN)
    for c in (anon, wrong):
        with pytest.raises(ServeError) as e:
            c.add(xq[:2], ids=[10 ** 9, 10 ** 9 + 1])
        assert e.value.status == 401 and "Bearer" in e.value.message
        with pytest.raises(ServeError) as e:
            c.delete([1])
        assert e.value.status == 401
    assert anon.info()["ntotal"] == len(xb)  # reads stay open
    r = ok.add(xq[:2], ids=[10 ** 9, 10 ** 9 + 1])
    assert r["ntotal"] == len(xb) + 2
    Ds, Is = anon.search(xq[:2], k=1)
    assert Is[:, 0].tolist() == [10 ** 9, 10 ** 9 + 1]
    # upsert replaces: id 1 (row 0) moves onto query 3
    r = ok.upsert([1], xq[3:4])
    assert r["ntotal"] == len(xb) + 2
    Ds, Is = anon.search(xq[3:4], k=1)
    assert Is[0, 0] == 1 and Ds[0, 0] == pytest.approx(0, abs=1e-6)
    r = ok.delete([1, 4, 999999])
    assert r["deleted"] == 2 and r["ntotal"] == len(xb)
    m = anon.metrics()
    assert m['vecdex_errors_total{route="add",class="4xx"}'] >= 2
    assert m['vecdex_requests_total{route="upsert"}'] == 1
    assert m['vecdex_request_duration_seconds_count{route="search"}'] >= 2
    assert m["vecdex_index_vectors"] == len(xb)


def test_sharded_directory(data, tmp_path):
    xb, xq = data
    sh = vecdex.IndexShards(D, True, True)
    for _ in range(3):
        sh.add_shard(vecdex.IndexFlatL2(D))
    sh.add(xb)
    vecdex.write_index(sh, str(tmp_path / "sharded"))
    s = Server(tmp_path / "sharded")
    try:
        c = s.client()
        assert c.info()["shards"] == 3
        Ds, Is = c.search(xq, k=5)
        Db, Ib = brute(xb, np.arange(len(xb)), xq, 5)
        np.testing.assert_array_equal(Is, Ib)
    finally:
        s.stop()


def test_store(tmp_path):
    rs = np.random.RandomState(3)
    x = rs.rand(200, 8).astype("float32")
    st = vecdex.Store.create(str(tmp_path / "st"), 8, metric="l2", index="Flat")
    st.upsert(list(range(200)), x)
    st.close()
    s = Server(tmp_path / "st")
    try:
        c = s.client()
        assert c.info()["kind"] == "store"
        status, out = c.request("POST", "/search", {"vectors": x[:3].tolist(), "k": 2})
        assert status == 200 and [r[0] for r in out["ids"]] == [0, 1, 2]
        status, out = c.request("POST", "/upsert", {"ids": ["a"], "vectors": [[0.0] * 8],
                                                     "metadata": [{"tag": 1}]})
        assert status == 200, out
        status, out = c.request("POST", "/search", {"vector": [0.0] * 8, "k": 1})
        assert out["ids"][0] == ["a"]
        status, out = c.request("POST", "/search", {"vector": [0.0] * 7})
        assert status == 400 and "wrong dimension" in out["error"]
        status, out = c.request("POST", "/delete", {"ids": ["a", 0]})
        assert status == 200 and out["deleted"] == 2
    finally:
        s.stop()


def test_load_burst_has_no_errors(idmap_server, data):
    """20k requests over 16 keep-alive connections on loopback."""
    s, ids, _ = idmap_server
    _, xq = data
    bodies = [json.dumps({"vector": q.tolist(), "k": 10}) for q in xq]
    r = load(s.host, s.port, bodies, connections=16, requests=20000)
    print(f"\nload: {r['requests']} requests, 16 connections: {r['qps']:.0f} req/s, "
          f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms")
    assert r["errors"] == 0 and r["statuses"] == {200: 20000}, r
    m = s.client().metrics()
    assert m['vecdex_requests_total{route="search"}'] >= 20000
    assert m['vecdex_errors_total{route="search",class="5xx"}'] == 0


def rank_pids(mpirun_pid):
    """{rank: pid} of the processes mpirun started on this machine."""
    out = {}
    for pid in subprocess.run(["pgrep", "-P", str(mpirun_pid)], capture_output=True,
                              text=True).stdout.split():
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for e in env:
            if e.startswith(b"OMPI_COMM_WORLD_RANK="):
                out[int(e.split(b"=")[1])] = int(pid)
    return out


def test_mpi_sharded_server(data, tmp_path):
    """mpirun -np 3 vecdex serve --sharded DIR: rank r holds shard r; the
    answers equal one Flat index; a rank killed mid-run gives 504 naming the
    shard within the deadline, or a result flagged partial."""
    if not shutil.which("mpirun"):
        pytest.skip("no mpirun (openmpi-bin)")
    cli = find_cli()
    xb, xq = data
    sh = vecdex.IndexShards(D)
    for _ in range(3):
        sh.add_shard(vecdex.IndexFlatL2(D))
    sh.add(xb)
    vecdex.write_index(sh, str(tmp_path / "sh"))
    cmd = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
           "--enable-recovery", "-x", "OMP_NUM_THREADS=1", "-np", "3", cli, "serve",
           "--sharded", str(tmp_path / "sh"), "--port", "0", "--deadline-ms", "1500"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        m = re.search(r"http://(\S+):(\d+)", line)
        if not m and "needs a vecdex built with MPI" in p.stderr.read():
            pytest.skip("vecdex built without MPI")
        assert m, line
        c = Client(m.group(1), int(m.group(2)))
        assert c.info() == {"kind": "mpi-sharded", "d": D, "ntotal": len(xb)}
        status, out = c.request("POST", "/search", {"vectors": xq.tolist(), "k": 8})
        assert status == 200 and out["_shards"] == {"total": 3, "successful": 3,
                                                    "failed": 0, "partial": False}
        Db, Ib = brute(xb, np.arange(len(xb)), xq, 8)
        np.testing.assert_array_equal(np.array(out["ids"]), Ib)
        status, out = c.request("POST", "/add", {"vectors": xq[:1].tolist()})
        assert status == 400 and "searches only" in out["error"]
        pids = rank_pids(p.pid)
        assert sorted(pids) == [0, 1, 2], pids
        os.kill(pids[2], 9)
        import time
        t0 = time.time()
        status, out = c.request("POST", "/search", {"vectors": xq.tolist(), "k": 8})
        assert time.time() - t0 < 3.0
        assert status == 504 and "shard 2 of 3" in out["error"], out
        status, out = c.request("POST", "/search", {"vectors": xq.tolist(), "k": 8,
                                                     "allow_partial": True})
        assert status == 200 and out["_shards"]["partial"] and out["_shards"]["successful"] == 2
        n2 = 2 * len(xb) // 3
        Db, Ib = brute(xb[:n2], np.arange(n2), xq, 8)
        np.testing.assert_array_equal(np.array(out["ids"]), Ib)
    finally:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class MpiServer:
    """mpirun -np N vecdex serve --sharded DIR ARGS (skips without MPI)."""

    def __init__(self, n, dir_, *args):
        if not shutil.which("mpirun"):
            pytest.skip("no mpirun (openmpi-bin)")
        cmd = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
               "--enable-recovery", "-x", "OMP_NUM_THREADS=1", "-np", str(n), find_cli(),
               "serve", "--sharded", str(dir_), "--port", "0", *args]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        line = self.p.stdout.readline()
        m = re.search(r"http://(\S+):(\d+)", line)
        if not m:
            err = self.p.stderr.read() if self.p.poll() is not None else ""
            self.kill()
            if "needs a vecdex built with MPI" in err:
                pytest.skip("vecdex built without MPI")
            raise AssertionError("no address printed: " + line + err)
        self.client = Client(m.group(1), int(m.group(2)))

    def stop(self, sig=15):
        """A signal to mpirun (SIGUSR1: forwarded, the job left to end
        itself; SIGTERM: the job killed); (rc, stderr)."""
        self.p.send_signal(sig)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.p.returncode, self.p.stderr.read()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def test_mpi_sharded_writes(data, tmp_path):
    """mpirun -np 3 vecdex serve --sharded DIR --create Flat: adds routed to
    the ranks (round robin, or by id hash with ids), delete and upsert sent
    to all; every answer equals brute force over the vectors the writes
    left; POST /save and --save-on-exit write DIR, which a fresh mpirun
    serves with the same answers and faiss reads shard by shard; a killed
    rank makes a write fail with 504 naming the shard and saying it is
    partial."""
    import faiss
    import time
    xb, xq = data
    d = tmp_path / "sh"
    s = MpiServer(3, d, "--create", "Flat", "--dim", str(D), "--deadline-ms", "1500",
                  "--save-on-exit")
    try:
        c = s.client
        assert c.info() == {"kind": "mpi-sharded", "d": D, "ntotal": 0}
        assert c.add(xb[:1000]) == {"result": "added", "count": 1000, "ntotal": 1000}
        ids2 = np.arange(2000, dtype="int64") * 5 + 100000
        assert c.add(xb[1000:], ids2)["ntotal"] == 3000
        ids = np.concatenate([np.arange(1000), ids2])
        gone = np.concatenate([np.arange(0, 1000, 3), ids2[::4], [77777777]])
        assert c.delete(gone) == {"deleted": 334 + 500, "ntotal": 3000 - 834}
        keep = ~np.isin(ids, gone)
        up = np.array([1, 2, int(ids2[1])])  # ids present, given new vectors
        assert c.upsert(up, xq[:3])["ntotal"] == 3000 - 834
        vecs = xb.copy()
        vecs[np.searchsorted(ids, up)] = xq[:3]
        Db, Ib = brute(vecs[keep], ids[keep], xq, 10)
        D_, I_ = c.search(xq, k=10)
        np.testing.assert_array_equal(I_, Ib)
        np.testing.assert_allclose(D_, Db, rtol=1e-4, atol=1e-5)
        # bad writes: 4xx naming the problem, nothing changed
        status, out = c.request("POST", "/add", {"vectors": [[0.5] * (D - 1)]})
        assert status == 400 and "dimension" in out["error"]
        status, out = c.request("POST", "/add", {"vectors": [[0.5] * D], "ids": [-1]})
        assert status == 400 and "-1" in out["error"]
        assert c.info()["ntotal"] == 3000 - 834
        assert c.save() == {"result": "saved", "ntotal": 3000 - 834}
        assert (d / "vecdex-manifest.txt").exists()
        # one more write, kept by --save-on-exit
        assert c.delete([int(ids2[-1])])["deleted"] == 1
        keep &= ids != ids2[-1]
        rc, err = s.stop(signal.SIGUSR1)
        assert rc == 0 and "saved 2165 vectors" in err, err
    finally:
        s.kill()
    # faiss reads each shard; together they hold the vectors left
    got = []
    for r in range(3):
        ix = faiss.read_index(str(d / f"shard-{r}.faissindex"))
        got.append(faiss.vector_to_array(ix.id_map))
    assert sorted(np.concatenate(got).tolist()) == sorted(ids[keep].tolist())
    # a fresh mpirun on the saved directory answers the same
    s = MpiServer(3, d, "--deadline-ms", "1500")
    try:
        c = s.client
        assert c.info()["ntotal"] == keep.sum()
        Db, Ib = brute(vecs[keep], ids[keep], xq, 10)
        np.testing.assert_array_equal(c.search(xq, k=10)[1], Ib)
        pids = rank_pids(s.p.pid)
        os.kill(pids[1], 9)
        t0 = time.time()
        status, out = c.request("POST", "/add", {"vectors": xq[:9].tolist()})
        assert time.time() - t0 < 3.0
        assert status == 504 and "shard 1 of 3" in out["error"] and "partial" in out["error"], out
        status, out = c.request("POST", "/save")
        assert status == 504 and "nothing in" in out["error"], out
    finally:
        s.kill()


def test_mpi_sharded_create_trains_on_rank0(data, tmp_path):
    """--create IVF16,Flat --train FILE: rank 0 trains, the trained index is
    broadcast; with nprobe = nlist the answers are brute force's."""
    xb, xq = data
    train = tmp_path / "train.npy"
    np.save(train, xb)
    s = MpiServer(2, tmp_path / "ivf", "--create", "IVF16,Flat", "--dim", str(D),
                  "--train", str(train))
    try:
        c = s.client
        c.add(xb)
        Db, Ib = brute(xb, np.arange(len(xb)), xq, 10)
        _, I_ = c.search(xq, k=10, nprobe=16)
        assert (I_ == Ib).mean() > 0.99
    finally:
        s.kill()
    # without --train it refuses, naming the option
    p = subprocess.run(["mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "2",
                        find_cli(), "serve", "--sharded", str(tmp_path / "ivf2"), "--create",
                        "IVF16,Flat", "--dim", str(D), "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "--train" in p.stderr, p.stderr
