"""Building an IVF-PQ index of more vectors than fit in the memory the
process may use: shards built one at a time and merged on disk
(vecdex.contrib.ondisk.merge_ondisk), under `prlimit --as` (address space:
mapped files count too, so the cap also bounds what is mapped at once;
systemd-run --scope -p MemoryMax= needs systemd, absent here).

The cap is the child's own address-space peak after its imports and a
tiny index, plus a quarter of the data's float size; the test checks that
the cap bites (holding the data whole fails under it) and that the merged
index finds the exact nearest neighbours (computed shard by shard in the
child) as a plain IVF-PQ would.  Small here (seconds); bench/README.md has
the large run."""
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
N, D, NSHARDS = 1000000, 64, 40


def run_child(args, cap_bytes=None, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, os.path.join(HERE, "memcap_build.py"), *args]
    if cap_bytes:
        cmd = ["prlimit", "--as=%d" % cap_bytes, *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                       timeout=timeout)
    return p


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")
def test_ivfpq_built_from_shards_under_a_quarter_of_the_data(tmp_path):
    base = run_child(["baseline"])
    assert base.returncode == 0, base.stderr[-2000:]
    baseline_kb = int(base.stdout.split()[-1])
    data_bytes = N * D * 4
    cap = baseline_kb * 1024 + data_bytes // 4
    hog = run_child(["hog", str(N), str(D)], cap)
    assert hog.returncode != 0 or json.loads(hog.stdout.splitlines()[-1])["held"] is None, \
        "the cap does not bite: the whole data fits under it"
    p = run_child(["build", str(tmp_path), str(N), str(D), str(NSHARDS)], cap)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.splitlines()[-1])
    assert res["ntotal"] == N
    assert res["vmpeak_kb"] * 1024 <= cap
    # IVF256,PQ16 at nprobe 32 on i.i.d. Gaussian data (the hardest case):
    # the true nearest neighbour is in the top 100 for most queries
    assert res["recall1_at_100"] >= 0.5, res
    assert os.path.getsize(str(tmp_path / "merged.ivfdata")) == N * (16 + 8)
    # the same index built in memory, here without the cap, from the same
    # trained index and data, answers exactly the same
    import numpy as np
    import vecdex
    sys.path.insert(0, HERE)
    import memcap_build
    ref = vecdex.read_index(str(tmp_path / "trained.index"))
    step = N // NSHARDS
    for i in range(NSHARDS):
        ref.add_with_ids(memcap_build.chunk(i, step, D),
                         np.arange(i * step, (i + 1) * step, dtype=np.int64))
    ref.nprobe = 32
    _, Iref = ref.search(memcap_build.queries(D), 100)
    np.testing.assert_array_equal(np.load(str(tmp_path / "I.npy")), Iref)
