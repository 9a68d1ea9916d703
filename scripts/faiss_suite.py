"""FAISS's Python tests run against faiss and against vecdex (issue 19).

Used by scripts/faiss_suite.sh.  For each test file, pytest runs twice in a
temporary folder holding a copy of FAISS's tests/: once with the real faiss,
once with a shim package `faiss` whose __init__ puts vecdex in its place
(sys.modules['faiss'] = vecdex, and a meta-path finder that answers
faiss.contrib.X with vecdex.contrib.X).  A small pytest plugin logs each
test's outcome and the first cause of a failure as it ends, so that a process
that dies (a crash, or pytest-timeout's thread method ending a hung test) is
resumed after the test that was running, which is charged with the crash or
the timeout: every test gets its own outcome.

The faiss results depend only on the file, faiss's version and the timeout,
and are cached (~/.cache/vecdex-faiss-suite) unless --no-cache.

The share counts only the tests that pass with faiss.  Tests needing the
additive quantizers (RQ / LSQ / PRQ / PLSQ, a separate issue) are counted
apart: those whose name or source names them, or whose vecdex failure does.
"""
import argparse
import collections
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

FILES = """test_autotune test_binary_factory test_binary_io test_build_blocks
test_clone test_clustering test_contrib test_extra_distances test_factory
test_fast_scan test_fast_scan_ivf test_graph_based test_index
test_index_accuracy test_index_binary test_index_composite test_io
test_ivflib test_merge_index test_meta_index test_omp_threads_py
test_partition test_product_quantizer test_referenced_objects test_refine
test_scalar_quantizer_correctness test_search_params
test_standalone_codec""".split()

CAUSES = ["missing name", "wrong result", "exception mismatch", "crash",
          "timeout", "skipped"]

AQ_RE = re.compile(
    r"ResidualQuantizer|LocalSearchQuantizer|AdditiveQuantizer|"
    r"ResidualCoarseQuantizer|ProductResidual|ProductLocalSearch|"
    r"ProductAdditive|\bP?RQ\d|\bP?LSQ\d|_P?RQ\b|_P?LSQ\b|\bP?RQ\b|\bP?LSQ\b|"
    r"[,\"']P?RQ|[,\"']P?LSQ|IVF\d+,P?RQ|IVF\d+,P?LSQ|IndexIVFResidual|"
    r"IndexIVFLocalSearch|IndexIVFProductResidual|IndexIVFProductLocal|"
    r"IndexResidual|IndexLocalSearch|IndexProductResidual|IndexProductLocal")

SHIM = '''\
"""faiss -> vecdex shim for FAISS's test suite (made by faiss_suite.py)."""
import importlib
import importlib.abc
import importlib.util
import sys

import vecdex


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """faiss.X.Y is vecdex.X.Y (the module itself, not a copy)."""

    def find_spec(self, name, path=None, target=None):
        if name.startswith("faiss."):
            real = "vecdex." + name[len("faiss."):]
            if importlib.util.find_spec(real) is None:
                return None
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("vecdex." + spec.name[len("faiss."):])

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Alias())
sys.modules["faiss"] = vecdex
'''

PLUGIN = r'''
"""pytest plugin of faiss_suite.py: one JSON line per event, flushed."""
import inspect
import json
import os
import re

import pytest

_log = open(os.environ["SUITE_LOG"], "a", buffering=1)
_skip = set()
if os.environ.get("SUITE_SKIP"):
    with open(os.environ["SUITE_SKIP"]) as f:
        _skip = set(json.load(f))
_AQ = re.compile(os.environ["SUITE_AQ_RE"])
_state = {}


def _emit(**kw):
    _log.write(json.dumps(kw) + "\n")
    _log.flush()


def _source(item):
    try:
        return inspect.getsource(item.function)
    except Exception:
        return ""


def pytest_collection_modifyitems(session, config, items):
    keep, drop = [], []
    for it in items:
        (drop if it.nodeid in _skip else keep).append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    _emit(collected=[it.nodeid for it in keep],
          aq=[it.nodeid for it in keep
              if _AQ.search(it.nodeid) or _AQ.search(_source(it))])


def pytest_collectreport(report):
    if report.failed:
        _emit(collect_error=report.nodeid, cause=_cause_text(
            str(report.longrepr)), msg=str(report.longrepr)[-3000:])


def pytest_runtest_logstart(nodeid, location):
    _state[nodeid] = {"outcome": "passed", "cause": None, "msg": ""}
    _emit(start=nodeid)


_MISSING = ("AttributeError", "ImportError", "ModuleNotFoundError",
            "NameError")


def _classify(excinfo):
    t = excinfo.type.__name__
    msg = str(excinfo.value)
    if t in _MISSING:
        return "missing name"
    if t == "Failed" and "Timeout" in msg:
        return "timeout"
    if t == "Failed" and "DID NOT RAISE" in msg:
        return "exception mismatch"
    if issubclass(excinfo.type, AssertionError):
        if re.search(r"\bnot raised\b|DID NOT RAISE", msg):
            return "exception mismatch"
        return "wrong result"
    return "exception mismatch"


def _cause_text(text):
    m = re.search(r"^E\s+(\w+(?:\.\w+)*)(?::|$)", text, re.M)
    name = m.group(1).split(".")[-1] if m else ""
    if name in _MISSING:
        return "missing name"
    return "exception mismatch"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    out = yield
    rep = out.get_result()
    st = _state.setdefault(item.nodeid,
                           {"outcome": "passed", "cause": None, "msg": ""})
    if rep.failed and st["outcome"] != "failed":
        st["outcome"] = "failed"
        if call.excinfo is not None:
            st["cause"] = _classify(call.excinfo)
            st["msg"] = (call.excinfo.type.__name__ + ": "
                         + str(call.excinfo.value))[:2000]
            try:
                tb = call.excinfo.traceback
                st["where"] = str(tb[-1].path).rsplit("/", 1)[-1] + ":" + \
                    str(tb[-1].lineno + 1)
            except Exception:
                pass
        else:
            st["cause"] = "exception mismatch"
            st["msg"] = str(rep.longrepr)[-2000:]
    elif rep.skipped and st["outcome"] == "passed":
        st["outcome"] = "skipped"
        st["msg"] = str(rep.longrepr)[-300:]
    elif rep.when == "call" and rep.passed and st["outcome"] == "passed":
        st["called"] = True


def pytest_runtest_logfinish(nodeid, location):
    st = _state.pop(nodeid, {"outcome": "failed", "cause": "crash",
                             "msg": "no report"})
    if st["outcome"] == "passed" and not st.pop("called", False):
        st["outcome"] = "skipped"
    st.pop("called", None)
    _emit(done=nodeid, **st)
'''


def sha(*parts):
    h = hashlib.sha1()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:16]


def run_file(py, workdir, fname, mode, shimdir, plugdir, timeout, logdir):
    """Runs one test file in one mode; returns {nodeid: result} plus the
    collection error (or None)."""
    env = dict(os.environ)
    paths = [plugdir] + ([shimdir] if mode == "vecdex" else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    env["SUITE_AQ_RE"] = AQ_RE.pattern
    env.pop("PYTEST_ADDOPTS", None)
    results, collected, aq = {}, None, set()
    collect_error = None
    skip_file = os.path.join(logdir, f"{fname}.{mode}.skip.json")
    for attempt in range(10000):
        log = os.path.join(logdir, f"{fname}.{mode}.{attempt}.log")
        env["SUITE_LOG"] = log
        if results:
            with open(skip_file, "w") as f:
                json.dump(sorted(results), f)
            env["SUITE_SKIP"] = skip_file
        cmd = [py, "-m", "pytest", fname, "-q", "-p", "no:cacheprovider",
               "-p", "_suite_plugin", f"--timeout={timeout}",
               "--timeout-method=thread", "-o", "faulthandler_timeout=0",
               "--rootdir", workdir, "-W", "ignore",
               # a class that fails to collect must not stop the others
               "--continue-on-collection-errors"]
        t0 = time.time()
        p = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        out = p.stdout.decode("utf-8", "replace")
        started = None
        got_collect = False
        if os.path.exists(log):
            with open(log) as f:
                for line in f:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if "collected" in ev:
                        got_collect = True
                        if collected is None:
                            collected = list(ev["collected"])
                        aq |= set(ev["aq"])
                    elif "collect_error" in ev:
                        collect_error = ev
                    elif "start" in ev:
                        started = ev["start"]
                    elif "done" in ev:
                        r = dict(ev)
                        del r["done"]
                        results[ev["done"]] = r
                        if started == ev["done"]:
                            started = None
        if collected is None:
            # died or failed before collection ended
            if not got_collect and p.returncode not in (0, 1, 2, 5):
                collect_error = {"cause": "crash",
                                 "msg": f"exit {p.returncode}: " + out[-1500:]}
            elif collect_error is None:
                collect_error = {"cause": "exception mismatch",
                                 "msg": out[-1500:]}
            return results, [], aq, collect_error, out
        if started is not None and started not in results:
            timed = "Timeout" in out[-20000:] and "+++" in out[-20000:]
            results[started] = {
                "outcome": "failed",
                "cause": "timeout" if timed else "crash",
                "msg": (f"timeout {timeout}s" if timed else
                        f"process ended (exit {p.returncode}) during the "
                        f"test: ") + out[-1500:]}
        missing = [n for n in collected if n not in results]
        if not missing:
            break
        if started is None:
            # no test was running and some never ran: pytest stopped (its
            # collection failed: that cause) or the process died (a crash)
            cause = collect_error["cause"] if collect_error and \
                p.returncode in (1, 2) else "crash"
            for n in missing:
                results[n] = {"outcome": "failed", "cause": cause,
                              "msg": f"process ended (exit {p.returncode}) "
                                     f"outside a test: " + out[-1500:]}
            break
        del t0
    return results, collected, aq, collect_error, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("faiss_checkout")
    ap.add_argument("--files", default="",
                    help="comma-separated subset (default: the 28 files)")
    ap.add_argument("--timeout", type=int, default=120,
                    help="per-test timeout in seconds")
    ap.add_argument("--json", default="", help="write every test's outcome")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--cache-dir", default=os.path.expanduser(
        "~/.cache/vecdex-faiss-suite"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary folder (printed)")
    args = ap.parse_args()

    src = os.path.join(args.faiss_checkout, "tests")
    if not os.path.isdir(src):
        sys.exit(f"faiss_suite: no tests/ folder in {args.faiss_checkout!r}")
    names = [f.strip().removesuffix(".py") for f in args.files.split(",")
             if f.strip()] or FILES
    for n in names:
        if not os.path.exists(os.path.join(src, n + ".py")):
            sys.exit(f"faiss_suite: {n}.py not found in {src}")

    py = sys.executable
    import faiss  # noqa: the reference must be importable
    faiss_version = faiss.__version__
    import vecdex
    tmp = tempfile.mkdtemp(prefix="faiss_suite.")
    work = os.path.join(tmp, "tests")
    shutil.copytree(src, work)
    shimdir = os.path.join(tmp, "shim")
    os.makedirs(os.path.join(shimdir, "faiss"))
    with open(os.path.join(shimdir, "faiss", "__init__.py"), "w") as f:
        f.write(SHIM)
    plugdir = os.path.join(tmp, "plugin")
    os.makedirs(plugdir)
    with open(os.path.join(plugdir, "_suite_plugin.py"), "w") as f:
        f.write(PLUGIN)
    logdir = os.path.join(tmp, "logs")
    os.makedirs(logdir)
    os.makedirs(args.cache_dir, exist_ok=True)
    common = open(os.path.join(src, "common_faiss_tests.py"), "rb").read() \
        if os.path.exists(os.path.join(src, "common_faiss_tests.py")) else b""

    print(f"faiss {faiss_version} vs vecdex {vecdex.__version__} "
          f"({getattr(vecdex, 'build_info', lambda: '?')()}); "
          f"timeout {args.timeout}s per test; {tmp}", flush=True)
    report = {}
    for n in names:
        fname = n + ".py"
        content = open(os.path.join(src, fname), "rb").read()
        key = sha(content, common, faiss_version, args.timeout, PLUGIN,
                  sys.version)
        cpath = os.path.join(args.cache_dir, f"{n}.{key}.json")
        t0 = time.time()
        if os.path.exists(cpath) and not args.no_cache:
            with open(cpath) as f:
                fr = json.load(f)
        else:
            res, coll, aq, cerr, _ = run_file(py, work, fname, "faiss",
                                              shimdir, plugdir, args.timeout,
                                              logdir)
            fr = {"results": res, "collected": coll, "aq": sorted(aq),
                  "collect_error": cerr}
            with open(cpath, "w") as f:
                json.dump(fr, f)
        t1 = time.time()
        res, coll, aq, cerr, out = run_file(py, work, fname, "vecdex",
                                            shimdir, plugdir, args.timeout,
                                            logdir)
        t2 = time.time()
        report[n] = {"faiss": fr, "vecdex": {
            "results": res, "collected": coll, "aq": sorted(aq),
            "collect_error": cerr}, "seconds": [t1 - t0, t2 - t1]}
        print_row(n, report[n], header=(n == names[0]))
    totals(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


def summarise(r):
    """Counts of one file: collected, faiss passes, vecdex passes (both
    excluding AQ tests), the causes, and the AQ counts."""
    fres = r["faiss"]["results"]
    vres = r["vecdex"]["results"]
    cerr = r["vecdex"]["collect_error"]
    aq = set(r["faiss"]["aq"]) | set(r["vecdex"]["aq"])
    collected = r["faiss"]["collected"]
    c = collections.Counter()
    fails = []
    for nid in collected:
        if fres.get(nid, {}).get("outcome") != "passed":
            continue
        v = vres.get(nid)
        if v is None:
            v = {"outcome": "failed",
                 "cause": (cerr or {}).get("cause", "exception mismatch"),
                 "msg": (cerr or {}).get("msg", "not collected")}
        is_aq = nid in aq or (v["outcome"] != "passed"
                              and AQ_RE.search(v.get("msg", "") or ""))
        if is_aq:
            c["aq_faiss"] += 1
            c["aq_vecdex"] += v["outcome"] == "passed"
            continue
        c["faiss"] += 1
        if v["outcome"] == "passed":
            c["vecdex"] += 1
        else:
            cause = "skipped" if v["outcome"] == "skipped" else v["cause"]
            c[cause] += 1
            fails.append((nid, cause, v.get("msg", ""), v.get("where", "")))
    c["collected"] = len(collected)
    return c, fails


COLS = ["collected", "faiss", "vecdex"]


def print_row(n, r, header=False):
    c, _ = summarise(r)
    if header:
        print(f"{'file':36s} {'coll':>5s} {'faiss':>5s} {'vecdx':>5s} "
              f"{'share':>6s} | {'miss':>4s} {'wrong':>5s} {'exc':>4s} "
              f"{'crash':>5s} {'tmout':>5s} {'skip':>4s} | {'AQ f/v':>7s}")
    share = 100.0 * c["vecdex"] / c["faiss"] if c["faiss"] else 100.0
    print(f"{n:36s} {c['collected']:5d} {c['faiss']:5d} {c['vecdex']:5d} "
          f"{share:5.1f}% | {c['missing name']:4d} {c['wrong result']:5d} "
          f"{c['exception mismatch']:4d} {c['crash']:5d} {c['timeout']:5d} "
          f"{c['skipped']:4d} | {c['aq_faiss']:3d}/{c['aq_vecdex']:<3d} "
          f"({r['seconds'][1]:.0f}s)", flush=True)


def totals(report):
    t = collections.Counter()
    missing = collections.Counter()
    below = []
    for n, r in report.items():
        c, fails = summarise(r)
        t.update(c)
        if c["faiss"] and c["vecdex"] < 0.5 * c["faiss"]:
            below.append(n)
        for nid, cause, msg, _ in fails:
            if cause == "missing name":
                m = re.search(r"has no attribute '(\w+)'|No module named "
                              r"'([\w.]+)'|cannot import name '(\w+)'|"
                              r"name '(\w+)' is not defined", msg)
                missing[next((g for g in m.groups() if g), "?") if m
                        else msg[:60]] += 1
    share = 100.0 * t["vecdex"] / t["faiss"] if t["faiss"] else 100.0
    print(f"{'TOTAL':36s} {t['collected']:5d} {t['faiss']:5d} "
          f"{t['vecdex']:5d} {share:5.1f}% | {t['missing name']:4d} "
          f"{t['wrong result']:5d} {t['exception mismatch']:4d} "
          f"{t['crash']:5d} {t['timeout']:5d} {t['skipped']:4d} | "
          f"{t['aq_faiss']:3d}/{t['aq_vecdex']:<3d}")
    print(f"share of the {t['faiss']} tests that pass with faiss (AQ tests "
          f"apart: {t['aq_faiss']} pass with faiss, {t['aq_vecdex']} with "
          f"vecdex): {share:.1f}%; files below 50%: "
          f"{', '.join(below) if below else 'none'}")
    if missing:
        print("most missing names: " + ", ".join(
            f"{k} ({v})" for k, v in missing.most_common(25)))


if __name__ == "__main__":
    main()
