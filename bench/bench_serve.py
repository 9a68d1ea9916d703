#!/usr/bin/env python3
"""bench_serve.py — `vecdex serve` under a bounded burst on loopback:
N requests (default 20000) of one query each over C keep-alive connections
(default 16), as fast as they are answered; prints requests/s, errors and
latency percentiles (p50, p99, max) per index.  FAISS has no server, so
there is no reference column; the client is Python (http.client threads,
vecdex.contrib.serve.load) and shares this machine's cores with the server,
so the figures are a floor of what the server does.

    python3 bench/bench_serve.py [--requests 20000] [--connections 16]
                                 [--threads 4] [--cli PATH]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import vecdex  # noqa: E402
from vecdex.contrib.serve import load  # noqa: E402


def serve(cli, path, threads):
    p = subprocess.Popen([cli, "serve", path, "--port", "0", "--threads", str(threads)],
                         stdout=subprocess.PIPE, text=True)
    m = re.search(r"http://(\S+):(\d+)", p.stdout.readline())
    if not m:
        p.kill()
        raise SystemExit("the server did not start")
    return p, m.group(1), int(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--cli", default=os.environ.get("VECDEX_CLI") or shutil.which("vecdex"))
    a = ap.parse_args()
    if not a.cli:
        raise SystemExit("no vecdex command: pip install . or give --cli")
    xt, xb, xq = common.synthetic(64, 20000, 100000, 1000)
    cases = [("Flat, 10k x 64", "Flat", xb[:10000]),
             ("IVF256,Flat nprobe 8, 100k x 64", "IVF256,Flat", xb)]
    print(f"vecdex serve: {a.requests} requests x 1 query, k=10, over {a.connections} "
          f"connections, server threads {a.threads}")
    print(f"  {'index':<34}{'req/s':>8}{'errors':>8}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for name, desc, base in cases:
            ix = vecdex.index_factory(64, desc)
            if not ix.is_trained:
                ix.train(xt)
                vecdex.extract_index_ivf(ix).nprobe = 8
            ix.add(base)
            path = os.path.join(folder, "ix.index")
            vecdex.write_index(ix, path)
            p, host, port = serve(a.cli, path, a.threads)
            try:
                bodies = [json.dumps({"vector": q.tolist(), "k": 10}) for q in xq]
                r = load(host, port, bodies, connections=a.connections, requests=a.requests)
            finally:
                p.terminate()
                p.wait()
            print(f"  {name:<34}{r['qps']:>8.0f}{r['errors']:>8}{r['p50_ms']:>8.2f}"
                  f"{r['p99_ms']:>8.2f}{r['max_ms']:>8.1f}")


if __name__ == "__main__":
    main()
