"""A small client of `vecdex serve` (JSON over HTTP, standard library only)
and a bounded load generator, used by the tests and bench/bench_serve.py.

    from vecdex.contrib.serve import Client, load
    c = Client("127.0.0.1", 8080, token=None)
    D, I = c.search(xq, k=10)          # numpy arrays, as index.search
    stats = load("127.0.0.1", 8080, bodies, connections=16, requests=20000)
"""
import http.client
import json
import threading
import time

import numpy as np


class ServeError(RuntimeError):
    """An error reply: .status (the HTTP code) and .message (the server's)."""

    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Client:
    """One keep-alive connection to a vecdex server (not thread-safe: one
    Client per thread)."""

    def __init__(self, host="127.0.0.1", port=8080, token=None, timeout=60):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self.conn = None

    def request(self, method, path, body=None):
        """(status, parsed JSON or text) of one request; reconnects once
        when the server closed a kept-alive connection."""
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        ctype = r.getheader("Content-Type", "")
        return r.status, (json.loads(raw) if ctype.startswith("application/json")
                          else raw.decode())

    def _ok(self, method, path, body=None):
        status, out = self.request(method, path, body)
        if status != 200:
            raise ServeError(status, out.get("error") if isinstance(out, dict) else out)
        return out

    def search(self, xq, k=10, **params):
        xq = np.atleast_2d(np.asarray(xq, dtype="float32"))
        out = self._ok("POST", "/search", dict(vectors=xq.tolist(), k=k, **params))
        D = np.array([[np.inf if v is None else v for v in row]
                      for row in out.get("distances", out.get("scores"))], dtype="float32")
        return D, np.array(out["ids"])

    def add(self, x, ids=None):
        body = dict(vectors=np.asarray(x, dtype="float32").tolist())
        if ids is not None:
            body["ids"] = [int(i) for i in ids]
        return self._ok("POST", "/add", body)

    def upsert(self, ids, x, **extra):
        body = dict(ids=[int(i) for i in ids],
                    vectors=np.asarray(x, dtype="float32").tolist(), **extra)
        return self._ok("POST", "/upsert", body)

    def delete(self, ids):
        return self._ok("POST", "/delete", dict(ids=[int(i) for i in ids]))

    def save(self):
        """POST /save: a sharded MPI server writes every shard into its
        directory."""
        return self._ok("POST", "/save")

    def info(self):
        return self._ok("GET", "/info")

    def health(self):
        return self._ok("GET", "/health")

    def metrics(self):
        """The /metrics page parsed: {'name{labels}': value}."""
        status, text = self.request("GET", "/metrics")
        if status != 200:
            raise ServeError(status, text)
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, val = line.rsplit(" ", 1)
                out[key] = float(val)
        return out

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def load(host, port, bodies, connections=16, requests=20000, path="/search"):
    """Sends `requests` POSTs of the JSON strings in `bodies` (cycled) over
    `connections` keep-alive connections at once, as fast as they are
    answered.  Returns a dict: requests, errors (non-200 replies and
    failed connections), statuses (count per code), seconds, qps, and
    latency percentiles p50 / p99 / max in milliseconds."""
    per = [requests // connections + (i < requests % connections)
           for i in range(connections)]
    lat = [[] for _ in range(connections)]
    codes = [dict() for _ in range(connections)]
    failures = [0] * connections
    start = threading.Barrier(connections + 1)

    def run(w):
        c = Client(host, port)
        start.wait()
        for j in range(per[w]):
            body = bodies[(w + j * connections) % len(bodies)]
            t0 = time.perf_counter()
            try:
                status, _ = c.request("POST", path, body)
            except OSError:
                failures[w] += 1
                c.close()
                continue
            lat[w].append(time.perf_counter() - t0)
            codes[w][status] = codes[w].get(status, 0) + 1
        c.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(connections)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    all_lat = np.sort(np.concatenate([np.array(v) for v in lat])) * 1e3
    statuses = {}
    for d in codes:
        for k, v in d.items():
            statuses[k] = statuses.get(k, 0) + v
    errors = sum(failures) + sum(v for k, v in statuses.items() if k != 200)
    pct = (lambda q: float(np.percentile(all_lat, q))) if len(all_lat) else (lambda q: float("nan"))
    return dict(requests=requests, errors=errors, statuses=statuses, seconds=secs,
                qps=requests / secs, p50_ms=pct(50), p99_ms=pct(99),
                max_ms=float(all_lat[-1]) if len(all_lat) else float("nan"))
