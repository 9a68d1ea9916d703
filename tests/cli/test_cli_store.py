"""`vecdex store ...` end to end: create, upsert from .npy + JSON Lines,
filtered search checked against brute force, hybrid, delete, get, compact,
info, and the exit codes of bad input."""
import json

import numpy as np

from test_cli import exact, run


def lines(p):
    return [json.loads(x) for x in p.stdout.splitlines() if x.strip()]


def test_store_commands(tmp_path):
    rs = np.random.RandomState(0)
    x = rs.rand(300, 8).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "q.npy", x[:5] + 0.01)
    np.save(tmp_path / "q1.npy", x[7])
    with open(tmp_path / "rows.jsonl", "w") as f:
        for i in range(300):
            f.write(json.dumps({"id": f"d{i}", "metadata": {"year": 2000 + i % 30},
                                "text": f"word{i} shared"}) + "\n")
    st = tmp_path / "s"
    run("store", "create", st, "--dim", 8, "--metric", "l2", "--index", "HNSW16",
        "--schema", '{"year": "int"}')
    run("store", "upsert", st, "--vectors", tmp_path / "x.npy", "--rows",
        tmp_path / "rows.jsonl")
    res = lines(run("store", "search", st, "--queries", tmp_path / "q.npy", "-k", 5,
                    "--where", '{"year": {"$lt": 2003}}', "--ef", 64))
    ok = np.array([2000 + i % 30 < 2003 for i in range(300)])
    sub = np.where(ok)[0]
    gt = sub[exact(x[:5] + 0.01, x[sub], 5)]
    for r, g in zip(res, gt):
        assert len(r["hits"]) == 5
        assert all(h["metadata"]["year"] < 2003 for h in r["hits"])
        assert len({h["id"] for h in r["hits"]} & {f"d{i}" for i in g}) >= 4
    h = lines(run("store", "hybrid", st, "--query", tmp_path / "q1.npy", "--text",
                  "word7", "-k", 3))[0]["hits"]
    assert h[0]["id"] == "d7" and h[0]["text"] == "word7 shared"
    assert json.loads(run("store", "delete", st, "--where", '{"year": 2001}').stdout) == {"deleted": 10}
    g = lines(run("store", "get", st, "--ids", "d1,d2"))
    assert [r["found"] for r in g] == [False, True]
    assert np.allclose(g[1]["vector"], x[2])
    run("store", "compact", st)
    info = json.loads(run("store", "info", st).stdout)
    assert info["rows"] == 290 and info["dead"] == 0 and info["dim"] == 8
    # bad input: exit 1 with a message naming it, or 2 for usage
    p = run("store", "search", st, "--queries", tmp_path / "q.npy", "--where",
            '{"colour": 1}', rc=1)
    assert "colour" in p.stderr
    run("store", "frobnicate", st, rc=2)
    p = run("store", "info", tmp_path, rc=1)
    assert "not a store" in p.stderr
