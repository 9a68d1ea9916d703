"""Golden tests of the `vecdex` command: every subcommand on small files,
--json output, and bad inputs (non-zero exit and a message, never a crash).

The binary is $VECDEX_CLI, else `vecdex` on PATH (pip install .), else a
build-*/vecdex of the source tree.
"""
import glob
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from vecdex.contrib.vecs_io import (fvecs_read, fvecs_write, ivecs_read,
                                    ivecs_write, bvecs_write)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_cli():
    if os.environ.get("VECDEX_CLI"):
        return os.environ["VECDEX_CLI"]
    w = shutil.which("vecdex")
    if w:
        return w
    for c in sorted(glob.glob(os.path.join(ROOT, "build-*", "vecdex"))):
        if os.access(c, os.X_OK):
            return c
    pytest.skip("the vecdex command is not built")


CLI = None


def run(*args, rc=0):
    global CLI
    CLI = CLI or find_cli()
    p = subprocess.run([CLI] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
    # a crash would be a negative return code (signal)
    assert p.returncode >= 0
    return p


def run_json(*args):
    return json.loads(run(*args, "--json").stdout)


def exact(xq, xb, k, ip=False):
    """Independent brute force in float64."""
    xq, xb = xq.astype("f8"), xb.astype("f8")
    if ip:
        s = -(xq @ xb.T)
    else:
        s = (xq ** 2).sum(1)[:, None] - 2 * xq @ xb.T + (xb ** 2).sum(1)[None]
    return np.argsort(s, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    t = tmp_path_factory.mktemp("cli")
    rs = np.random.RandomState(123)
    d = 16
    xt = rs.rand(3000, d).astype("f4")
    xb = rs.rand(2000, d).astype("f4")
    xq = rs.rand(40, d).astype("f4")
    fvecs_write(t / "xt.fvecs", xt)
    fvecs_write(t / "xb.fvecs", xb)
    np.save(t / "xq.npy", xq)
    xb.tofile(t / "xb.f32")
    gt = exact(xq, xb, 10)
    ivecs_write(t / "gt.ivecs", gt)
    return dict(dir=t, d=d, xt=xt, xb=xb, xq=xq, gt=gt)


def test_version_help():
    assert "vecdex" in run("version").stdout
    out = run("--help").stdout
    for cmd in ("build", "search", "eval", "bench", "info", "demo"):
        assert cmd in out


def test_build_info_search_flat(data):
    t = data["dir"]
    j = run_json("build", "--factory", "Flat", "--add", t / "xb.fvecs",
                 "-o", t / "flat.index")
    assert j["ntotal"] == 2000 and j["d"] == 16 and j["type"].startswith("IndexFlat")
    info = run_json("info", t / "flat.index")
    assert info["ntotal"] == 2000 and info["d"] == 16
    assert info["metric"] == "L2" and info["trained"] is True
    assert info["bytes"] == os.path.getsize(t / "flat.index")
    assert "ntotal:  2000" in run("info", t / "flat.index").stdout
    # ids as .ivecs, distances by default as .dist.fvecs
    j = run_json("search", t / "flat.index", "--queries", t / "xq.npy",
                 "-k", 5, "-o", t / "res.ivecs")
    assert j["nq"] == 40 and j["k"] == 5
    I = ivecs_read(t / "res.ivecs")
    D = fvecs_read(t / "res.dist.fvecs")
    assert I.shape == (40, 5) and D.shape == (40, 5)
    np.testing.assert_array_equal(I, data["gt"][:, :5])
    ref = ((data["xq"][:, None, :].astype("f8") -
            data["xb"][I].astype("f8")) ** 2).sum(-1)
    np.testing.assert_allclose(D, ref, rtol=1e-4, atol=1e-4)
    # .npy outputs, explicit distances path
    run("search", t / "flat.index", "--queries", t / "xq.npy", "-k", 3,
        "-o", t / "res.npy", "--distances", t / "d.npy", "--quiet")
    I2 = np.load(t / "res.npy")
    assert I2.dtype == np.int64 and I2.shape == (40, 3)
    np.testing.assert_array_equal(I2, data["gt"][:, :3])
    assert np.load(t / "d.npy").dtype == np.float32


def test_raw_f32_and_ip(data):
    t = data["dir"]
    run("build", "--factory", "IDMap2,Flat", "--metric", "ip", "--add",
        t / "xb.f32", "--dim", 16, "-o", t / "ip.index")
    info = run_json("info", t / "ip.index")
    assert info["type"] == "IndexIDMap2" and info["metric"] == "INNER_PRODUCT"
    run("search", t / "ip.index", "--queries", t / "xq.npy", "-k", 4,
        "-o", t / "ip.npy")
    np.testing.assert_array_equal(np.load(t / "ip.npy"),
                                  exact(data["xq"], data["xb"], 4, ip=True))


def test_ivf_build_eval(data):
    t = data["dir"]
    j = run_json("build", "--factory", "IVF16,Flat", "--train", t / "xt.fvecs",
                 "--add", t / "xb.fvecs", "-o", t / "ivf.index")
    assert j["type"] == "IndexIVFFlat"
    info = run_json("info", t / "ivf.index")
    assert info["nlist"] == 16 and info["nprobe"] == 1
    assert "nlist:   16" in run("info", t / "ivf.index").stdout
    # full probing is exact: against a ground-truth file and computed
    e1 = run_json("eval", t / "ivf.index", "--queries", t / "xq.npy",
                  "--gt", t / "gt.ivecs", "-k", 10, "--nprobe", 16)
    e2 = run_json("eval", t / "ivf.index", "--queries", t / "xq.npy",
                  "--base", t / "xb.fvecs", "-k", 10, "--nprobe", 16)
    for e in (e1, e2):
        assert e["recall_at_1"] == 1.0 and e["recall_at_k"] == 1.0
        assert e["map"] == pytest.approx(1.0) and e["qps"] > 0
    # nprobe=1 loses some: compare with the same measures in numpy
    run("search", t / "ivf.index", "--queries", t / "xq.npy", "-k", 10,
        "--nprobe", 1, "-o", t / "p1.npy")
    I = np.load(t / "p1.npy")
    gt = data["gt"]
    e = run_json("eval", t / "ivf.index", "--queries", t / "xq.npy",
                 "--gt", t / "gt.ivecs", "-k", 10, "--nprobe", 1)
    r1 = (I[:, 0] == gt[:, 0]).mean()
    rk = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])
    assert e["recall_at_1"] == pytest.approx(r1)
    assert e["recall_at_k"] == pytest.approx(rk)
    assert e["recall_at_k"] < 1.0
    assert "MAP" in run("eval", t / "ivf.index", "--queries", t / "xq.npy",
                        "--gt", t / "gt.ivecs").stdout


def test_bench_sweep(data):
    t = data["dir"]
    j = run_json("bench", "--factory", "IVF16,Flat", "--train", t / "xt.fvecs",
                 "--base", t / "xb.fvecs", "--queries", t / "xq.npy",
                 "--sweep", "nprobe=1,4,16")
    assert j["param"] == "nprobe" and [r["nprobe"] for r in j["rows"]] == [1, 4, 16]
    rec = [r["recall_at_k"] for r in j["rows"]]
    assert rec[0] <= rec[1] <= rec[2] == 1.0
    out = run("bench", "--factory", "Flat", "--base", t / "xb.fvecs",
              "--queries", t / "xq.npy", "--gt", t / "gt.ivecs").stdout
    assert "QPS" in out and "1.0000" in out


def test_bvecs_input(data):
    t = data["dir"]
    xb = (data["xb"] * 255).astype("uint8")
    bvecs_write(t / "xb.bvecs", xb)
    j = run_json("build", "--factory", "Flat", "--add", t / "xb.bvecs",
                 "-o", t / "b.index")
    assert j["ntotal"] == 2000


def test_demo_small():
    out = run("demo", "--nb", 2000, "--nq", 50).stdout
    assert "IVF100,Flat" in out
    # the graph index finds the true neighbours (exact ground truth)
    row = [l for l in out.splitlines() if l.startswith("HNSW32")][0]
    assert float(row.split()[-2]) > 0.9
    run("demo", "--bogus", rc=2)


def test_demo_json_quiet():
    """--help says every subcommand takes --json and --quiet: demo too."""
    text = run("demo", "--nb", 2000, "--nq", 50, "--quiet").stdout
    rows = [l.split() for l in text.splitlines() if l[:1].isupper() and
            len(l.split()) >= 6 and l.split()[-1].isdigit()]
    j = json.loads(run("demo", "--nb", 2000, "--nq", 50, "--json").stdout)
    assert j["nb"] == 2000 and j["nq"] == 50 and j["d"] == 64 and j["k"] == 10
    assert [r["index"] for r in j["rows"]] == [" ".join(r[:-5]) for r in rows]
    for r in j["rows"]:
        assert set(r) >= {"factory", "build_s", "qps", "recall_at_1",
                          "recall_at_10", "bytes_per_vector"}
        assert 0 <= r["recall_at_1"] <= 1 and r["qps"] > 0
    by = {r["index"]: r for r in j["rows"]}
    # exact search against the demo's double-precision ground truth
    assert by["Flat"]["recall_at_1"] == 1.0 and by["Flat"]["recall_at_10"] == 1.0
    assert by["HNSW32 efSearch=64"]["recall_at_10"] > 0.9
    # the deterministic rows agree with the table
    for r in rows:
        name = " ".join(r[:-5])
        if name.startswith(("Flat", "IDMap2", "IVF100,Flat")):
            assert float(r[-3]) == pytest.approx(by[name]["recall_at_1"], abs=1e-3)
    j2 = json.loads(run("demo", "--nb", 2000, "--nq", 50, "--json", "--quiet").stdout)
    assert [r["index"] for r in j2["rows"]] == [r["index"] for r in j["rows"]]


# --- bad inputs ----------------------------------------------------------
def err(p, *needles):
    for n in needles:
        assert n in p.stderr, (n, p.stderr)
    assert "vecdex" in p.stderr


def test_missing_file(data):
    t = data["dir"]
    err(run("build", "--factory", "Flat", "--add", t / "nope.fvecs", "-o",
            t / "x.index", rc=1), "nope.fvecs", "cannot open")
    err(run("info", t / "nope.index", rc=1), "nope.index")
    err(run("search", t / "nope.index", "--queries", t / "xq.npy", "-o",
            t / "r.npy", rc=1), "nope.index")


def test_truncated_fvecs(data):
    t = data["dir"]
    raw = open(t / "xb.fvecs", "rb").read()
    for n in (0, 3, 70, len(raw) - 1):
        open(t / "trunc.fvecs", "wb").write(raw[:n])
        p = run("build", "--factory", "Flat", "--add", t / "trunc.fvecs",
                "-o", t / "x.index", rc=1)
        err(p, "trunc.fvecs")
    # a hostile header asking for a giant dimension
    open(t / "huge.fvecs", "wb").write(np.array([2**31 - 1, 0], "<i4").tobytes())
    err(run("build", "--factory", "Flat", "--add", t / "huge.fvecs", "-o",
            t / "x.index", rc=1), "dimension")
    # inconsistent dimensions between records
    a = np.array([2, 0, 0, 3, 0, 0], "<i4")
    a.tofile(t / "mixed.fvecs")
    err(run("build", "--factory", "Flat", "--add", t / "mixed.fvecs", "-o",
            t / "x.index", rc=1), "mixed.fvecs")


def test_bad_npy(data):
    t = data["dir"]
    np.save(t / "f8.npy", data["xq"].astype("f8"))
    err(run("search", t / "flat.index", "--queries", t / "f8.npy", "-o",
            t / "r.npy", rc=1), "dtype", "<f8")
    np.save(t / "fo.npy", np.asfortranarray(data["xq"]))
    err(run("search", t / "flat.index", "--queries", t / "fo.npy", "-o",
            t / "r.npy", rc=1), "Fortran")
    raw = open(t / "xq.npy", "rb").read()
    open(t / "tr.npy", "wb").write(raw[:-7])
    err(run("search", t / "flat.index", "--queries", t / "tr.npy", "-o",
            t / "r.npy", rc=1), "truncated")
    # shape claims far more data than the file has: no giant allocation
    hdr = raw[:raw.index(b"}") + 1].replace(b"(40, 16)", b"(999999999999, 16)")
    open(t / "big.npy", "wb").write(hdr + b"\n" + raw[-64:])
    err(run("search", t / "flat.index", "--queries", t / "big.npy", "-o",
            t / "r.npy", rc=1), "big.npy")
    open(t / "v3.npy", "wb").write(b"\x93NUMPY\x03\x00" + raw[8:])
    err(run("search", t / "flat.index", "--queries", t / "v3.npy", "-o",
            t / "r.npy", rc=1), "version")
    # the wrong dimension for the index
    np.save(t / "d8.npy", np.zeros((3, 8), "f4"))
    err(run("search", t / "flat.index", "--queries", t / "d8.npy", "-o",
            t / "r.npy", rc=1), "d=16")


def test_npy_v2_and_int_types(data):
    t = data["dir"]
    import numpy.lib.format as fmt
    with open(t / "v2.npy", "wb") as f:
        fmt.write_array(f, data["xq"], version=(2, 0))
    run("search", t / "flat.index", "--queries", t / "v2.npy", "-k", 2,
        "-o", t / "r2.npy")
    np.testing.assert_array_equal(np.load(t / "r2.npy"), data["gt"][:, :2])
    np.save(t / "gt64.npy", data["gt"].astype("int64"))
    e = run_json("eval", t / "flat.index", "--queries", t / "xq.npy",
                 "--gt", t / "gt64.npy")
    assert e["recall_at_k"] == 1.0


def test_unknown_factory(data):
    t = data["dir"]
    p = run("build", "--factory", "IVF100,PQ16x", "--add", t / "xb.fvecs",
            "-o", t / "x.index", rc=2)
    err(p, "PQ16x", "position 7")
    assert not os.path.exists(t / "x.index")


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    [],
    ["build", "--bogus"],
    ["build", "--factory", "Flat"],                      # no --add / -o
    ["search", "--queries", "q.npy", "-o", "r.npy"],     # no INDEX
    ["search", "x.index", "--queries", "q.npy", "-k", "0", "-o", "r.npy"],
    ["search", "x.index", "--queries", "q.npy", "-k", "abc", "-o", "r.npy"],
    ["build", "--factory", "Flat", "--metric", "cosine", "--add", "a", "-o", "b"],
    ["eval", "x.index", "--queries", "q.npy"],           # no --gt / --base
    ["bench", "--factory", "Flat", "--base", "b", "--queries", "q",
     "--sweep", "nlist=3"],
    ["bench", "--factory", "Flat", "--base", "b", "--queries", "q",
     "--sweep", "nprobe=1,x"],
    ["info"],
    ["search", "x.index", "--queries"],                  # option without value
])
def test_usage_errors(args):
    p = run(*args, rc=2)
    assert p.stderr.strip()


def test_bad_output_extension(data):
    t = data["dir"]
    err(run("search", t / "flat.index", "--queries", t / "xq.npy", "-o",
            t / "r.txt", rc=1), "r.txt")


# --- an output that is also an input (issue 17, item 12) -----------------
def flat_index(data):
    """data's Flat index file, built here when no earlier test made it."""
    path = data["dir"] / "flat.index"
    if not os.path.exists(path):
        run("build", "--factory", "Flat", "--add", data["dir"] / "xb.fvecs",
            "-o", path)
    return path


def names_for(path, how, tmp):
    """Another name of `path`: itself, a symlink, a hard link, a detour."""
    if how == "same":
        return path
    n = len(os.listdir(tmp))
    if how == "symlink":
        q = tmp / ("link%d_%s" % (n, path.name))
        os.symlink(path, q)
        return q
    if how == "hardlink":
        q = tmp / ("hard%d_%s" % (n, path.name))
        os.link(path, q)
        return q
    (tmp / "sub").mkdir(exist_ok=True)
    return tmp / "sub" / ".." / path.name          # "detour"


def contents(*paths):
    return [open(p, "rb").read() for p in paths]


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "detour"])
@pytest.mark.parametrize("opt", ["--add", "--train"])
def test_build_output_is_input(data, tmp_path, how, opt):
    src = tmp_path / "xb.fvecs"
    shutil.copy(data["dir"] / "xb.fvecs", src)
    other = data["dir"] / "xb.fvecs"
    args = ["--add", other, "--train", src] if opt == "--train" else ["--add", src]
    before = contents(src)
    p = run("build", "--factory", "Flat", *args, "-o", names_for(src, how, tmp_path),
            rc=2)
    err(p, "-o", opt, "same file")
    assert contents(src) == before


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "detour"])
def test_search_output_is_input(data, tmp_path, how):
    t = data["dir"]
    index, xq = tmp_path / "flat.index", tmp_path / "xq.npy"
    shutil.copy(flat_index(data), index)
    shutil.copy(t / "xq.npy", xq)
    before = contents(index, xq)
    for args, needles in [
            (["-o", names_for(xq, how, tmp_path)], ["-o", "--queries"]),
            (["-o", tmp_path / "ok.npy", "--distances", names_for(index, how, tmp_path)],
             ["--distances", "INDEX"]),
            (["-o", names_for(index, how, tmp_path)], ["-o", "INDEX"])]:
        p = run("search", index, "--queries", xq, *args, rc=2)
        err(p, "same file", *needles)
    assert contents(index, xq) == before
    assert not os.path.exists(tmp_path / "ok.npy")


def test_search_two_outputs_one_file(data, tmp_path):
    t = data["dir"]
    base = ["search", flat_index(data), "--queries", t / "xq.npy", "-k", 3]
    # ids and distances in one (new) file: distances would overwrite the ids
    err(run(*base, "-o", tmp_path / "r.npy", "--distances", tmp_path / "r.npy",
            rc=2), "--distances", "-o", "same file")
    (tmp_path / "sub").mkdir()
    err(run(*base, "-o", tmp_path / "r.npy", "--distances",
            tmp_path / "sub" / ".." / "r.npy", rc=2), "same file")
    assert not os.path.exists(tmp_path / "r.npy")
    # existing, through a symlink
    np.save(tmp_path / "e.npy", np.zeros(3))
    os.symlink("e.npy", tmp_path / "e_link.npy")
    err(run(*base, "-o", tmp_path / "e.npy", "--distances", tmp_path / "e_link.npy",
            rc=2), "same file")
    # the default distances file (IDS's stem + .dist) being the queries
    shutil.copy(t / "xq.npy", tmp_path / "r.dist.npy")
    before = contents(tmp_path / "r.dist.npy")
    err(run("search", flat_index(data), "--queries", tmp_path / "r.dist.npy",
            "-o", tmp_path / "r.npy", rc=2), "r.dist.npy", "--queries")
    assert contents(tmp_path / "r.dist.npy") == before
    # different files are fine
    run(*base, "-o", tmp_path / "r.npy", "--distances", tmp_path / "d.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), data["gt"][:, :3])


def test_outputs_written_like_indexes(data, tmp_path):
    """Vector outputs follow write_index's rules: a symlink stays a symlink,
    a mode is kept, no temporary is left (they were renamed over the path
    from a fixed "<path>.tmp", shared by concurrent runs)."""
    t = data["dir"]
    target = tmp_path / "ids_target.npy"
    np.save(target, np.zeros(1))
    os.symlink("ids_target.npy", tmp_path / "ids.npy")
    np.save(tmp_path / "dist.npy", np.zeros(1))
    os.chmod(tmp_path / "dist.npy", 0o600)
    run("search", flat_index(data), "--queries", t / "xq.npy", "-k", 3,
        "-o", tmp_path / "ids.npy", "--distances", tmp_path / "dist.npy")
    assert os.path.islink(tmp_path / "ids.npy")
    np.testing.assert_array_equal(np.load(target), data["gt"][:, :3])
    assert oct(os.stat(tmp_path / "dist.npy").st_mode & 0o777) == "0o600"
    assert np.load(tmp_path / "dist.npy").shape == (40, 3)
    assert sorted(os.listdir(tmp_path)) == ["dist.npy", "ids.npy", "ids_target.npy"]
