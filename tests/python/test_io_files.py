"""write_index and the file system: concurrent writers of one path, what an
existing path keeps (checked against FAISS, whose fopen("wb") writes
through), and the temporaries that killed writers leave.

The bytes a file must hold are serialize_index's (no file involved)."""
import os
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import vecdex


def flat(n, d=16, seed=0, shift=0.0):
    rs = np.random.RandomState(seed)
    ix = vecdex.IndexFlatL2(d)
    ix.add(rs.rand(n, d).astype("float32") + shift)
    return ix


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def others(directory, keep):
    return sorted(set(os.listdir(directory)) - set(keep))


def test_two_threads_one_path(tmp_path):
    """Each writer has its own temporary: both succeed and the file is one of
    the two indexes, whole (it was the other's, or a mix, 39 times in 40)."""
    a, b = flat(20000, 64, 1, 5.0), flat(40000, 64, 2)
    sa, sb = (bytes(vecdex.serialize_index(x)) for x in (a, b))
    path = str(tmp_path / "shared.index")
    bad = []
    for trial in range(12):
        res = {}

        def w(name, ix):
            try:
                vecdex.write_index(ix, path)
                res[name] = "ok"
            except RuntimeError as e:
                res[name] = str(e)

        ts = [threading.Thread(target=w, args=("A", a)),
              threading.Thread(target=w, args=("B", b))]
        ts[0].start()
        time.sleep(0.0005 * (trial % 6))
        ts[1].start()
        for t in ts:
            t.join()
        got = file_bytes(path)
        if res != {"A": "ok", "B": "ok"} or got not in (sa, sb) or \
                others(tmp_path, ["shared.index"]):
            bad.append((trial, res, got == sa, got == sb))
    assert not bad


def kept_properties(lib, d):
    """What write_index leaves of a 0600 file, a symlink and a hard link."""
    ix = lib.IndexFlatL2(8)
    ix.add(np.ones((10, 8), "float32"))
    os.makedirs(d)
    secret = os.path.join(d, "secret.idx")
    open(secret, "wb").close()
    os.chmod(secret, 0o600)
    lib.write_index(ix, secret)
    target, link = os.path.join(d, "target.idx"), os.path.join(d, "link.idx")
    open(target, "wb").close()
    os.symlink("target.idx", link)
    lib.write_index(ix, link)
    h1, h2 = os.path.join(d, "h1.idx"), os.path.join(d, "h2.idx")
    open(h1, "wb").close()
    os.link(h1, h2)
    lib.write_index(ix, h1)
    return {
        "mode": oct(stat.S_IMODE(os.stat(secret).st_mode)),
        "symlink kept": os.path.islink(link),
        "target written": os.path.getsize(target) > 0,
        "hard link kept": os.stat(h1).st_ino == os.stat(h2).st_ino,
        "other name written": file_bytes(h2) == file_bytes(h1),
        "entries": sorted(os.listdir(d)),
    }


def test_existing_path_kept_as_faiss_keeps_it(tmp_path, faiss_ref):
    got = kept_properties(vecdex, str(tmp_path / "v"))
    want = kept_properties(faiss_ref, str(tmp_path / "f"))
    assert got == want
    assert want["mode"] == "0o600" and want["symlink kept"]


def test_fifo_written_through(tmp_path):
    ix = flat(5000)
    want = bytes(vecdex.serialize_index(ix))
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    got = []

    def reader():
        with open(fifo, "rb") as f:   # waits for the writer, as it should
            got.append(f.read())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    vecdex.write_index(ix, fifo)
    t.join(30)
    assert got == [want]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_null_device_kept(tmp_path):
    dev = str(tmp_path / "null")
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    vecdex.write_index(flat(10), dev)
    st = os.lstat(dev)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


CHILD = r'''
import sys, numpy as np, vecdex
ix = vecdex.IndexFlatL2(64); ix.add(np.random.rand(150000, 64).astype("float32"))
print("go", flush=True); vecdex.write_index(ix, sys.argv[1])
'''


def test_killed_writers_temporaries_removed(tmp_path):
    """Each kill leaves the victim's temporary; the next write of the path
    removes those of dead writers (three kills left 84-115 MB behind)."""
    path = str(tmp_path / "victim.idx")
    vecdex.write_index(flat(10), path)
    before = file_bytes(path)
    killed = 0
    for _ in range(3):
        p = subprocess.Popen([sys.executable, "-c", CHILD, path],
                             stdout=subprocess.PIPE,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
        p.stdout.readline()
        deadline = time.time() + 20
        while time.time() < deadline and p.poll() is None:
            tmps = others(tmp_path, ["victim.idx"])
            try:   # (the writer may rename its temporary in between)
                if tmps and os.path.getsize(str(tmp_path / tmps[0])) > 0:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.001)
        p.kill()
        killed += p.wait() < 0
        p.stdout.close()
        # the killed writer left the file as it was ...
        assert file_bytes(path) == before or vecdex.read_index(path).ntotal == 150000
        # ... and at most its own temporary: the earlier ones were removed
        assert len(others(tmp_path, ["victim.idx"])) <= 1
    assert killed >= 1
    left = others(tmp_path, ["victim.idx"])
    assert all(".vdxtmp." in n and n.startswith(".victim.idx.") for n in left)
    small = flat(7)
    vecdex.write_index(small, path)
    assert others(tmp_path, ["victim.idx"]) == []
    assert file_bytes(path) == bytes(vecdex.serialize_index(small))
