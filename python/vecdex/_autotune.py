"""FAISS's auto-tuning API (ParameterSpace, OperatingPoints and the
criteria), written for vecdex in Python.

ParameterSpace names the search-time knobs of an index tree: nprobe and
max_codes of IVF indexes, efSearch of HNSW graphs, k_factor of refine
wrappers, and quantizer_X for the X of an IVF index's coarse quantizer.
They are set through the wrappers (IndexIDMap, IndexPreTransform,
IndexRefine), as FAISS does.  explore() times each combination on the
queries and keeps the Pareto-optimal ones (performance vs time).
"""
import time

import numpy as np

__all__ = ["ParameterSpace", "ParameterRange", "OperatingPoint",
           "OperatingPoints", "AutoTuneCriterion", "OneRecallAtRCriterion",
           "IntersectionCriterion"]


class _Vec:
    """A read-only std::vector look-alike (size(), at(i), iteration)."""

    def __init__(self, items):
        self._items = items

    def size(self):
        return len(self._items)

    def at(self, i):
        return self._items[i]

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def __getitem__(self, i):
        return self._items[i]


class OperatingPoint:
    def __init__(self, perf, t, key, cno=0):
        self.perf, self.t, self.key, self.cno = perf, t, key, cno


class OperatingPoints:
    """All measured points, and the optimal ones: sorted by time, each
    with a strictly better performance than every faster one.  The
    frontier starts with the origin ("", perf 0, time 0), as in FAISS."""

    def __init__(self):
        self._all = []
        self._opt = [OperatingPoint(0.0, 0.0, "", -1)]

    @property
    def all_pts(self):
        return _Vec(self._all)

    @property
    def optimal_pts(self):
        return _Vec(self._opt)

    def add(self, perf, t, key, cno=0):
        """Records a point; True when it is on the optimal frontier."""
        op = OperatingPoint(float(perf), float(t), key, cno)
        self._all.append(op)
        if any(o.perf >= op.perf and o.t <= op.t for o in self._opt):
            return False
        self._opt = [o for o in self._opt
                     if not (op.perf >= o.perf and op.t <= o.t)] + [op]
        self._opt.sort(key=lambda o: (o.t, o.perf))
        return True

    def t_for_perf(self, perf):
        """The time of the fastest optimal point reaching perf (1e50 if
        none)."""
        ts = [o.t for o in self._opt if o.perf >= perf]
        return min(ts) if ts else 1e50

    def merge_with(self, other, prefix=""):
        n = 0
        for o in other._all:
            n += self.add(o.perf, o.t, prefix + o.key, o.cno)
        return n

    def clear(self):
        self.__init__()

    def display(self, only_optimal=True):
        for o in (self._opt if only_optimal else self._all):
            print(f"{o.key} perf={o.perf:.4f} t={o.t:.6f}")


class AutoTuneCriterion:
    """Scores search results against a ground truth of gt_nnn neighbours
    per query."""

    def __init__(self, nq, nnn):
        self.nq, self.nnn = int(nq), int(nnn)
        self.gt_nnn = 0
        self._gt_I = None
        self._gt_D = None

    @property
    def gt_I(self):
        return _ArrayVec(self._gt_I)

    @property
    def gt_D(self):
        return _ArrayVec(self._gt_D)

    def set_groundtruth(self, gt_D, gt_I, gt_nnn=None):
        gt_I = np.ascontiguousarray(gt_I, dtype="int64")
        if gt_I.ndim != 2 or gt_I.shape[0] != self.nq:
            raise ValueError(f"set_groundtruth: expected gt_I of shape "
                             f"({self.nq}, gt_nnn), got {gt_I.shape}")
        self.gt_nnn = gt_I.shape[1] if gt_nnn is None else int(gt_nnn)
        self._gt_I = gt_I
        self._gt_D = None if gt_D is None else \
            np.ascontiguousarray(gt_D, dtype="float32")

    def evaluate(self, D, I):
        raise NotImplementedError


class _ArrayVec(_Vec):
    def __init__(self, a):
        super().__init__(np.zeros(0) if a is None else a.ravel())


class OneRecallAtRCriterion(AutoTuneCriterion):
    """The share of queries whose true nearest neighbour is among the
    first R results."""

    def __init__(self, nq, R):
        super().__init__(nq, R)
        self.R = int(R)

    def evaluate(self, D, I):
        I = np.asarray(I)
        nn = self._gt_I[:, 0]
        return float(np.mean([nn[q] in I[q, :self.R]
                              for q in range(self.nq)]))


class IntersectionCriterion(AutoTuneCriterion):
    """The mean share of the R true neighbours found in the first R
    results."""

    def __init__(self, nq, R):
        super().__init__(nq, R)
        self.R = int(R)

    def evaluate(self, D, I):
        I = np.asarray(I)
        tot = sum(len(set(I[q, :self.R].tolist())
                      & set(self._gt_I[q, :self.R].tolist()))
                  for q in range(self.nq))
        return tot / float(self.nq * self.R)


class ParameterRange:
    def __init__(self, name, values=()):
        self.name = name
        self.values = list(values)


def _children(index):
    """The sub-indexes a parameter passes through (wrappers)."""
    for attr in ("index", "base_index"):
        sub = getattr(index, attr, None)
        if sub is not None and sub is not index and hasattr(sub, "search"):
            yield sub


class ParameterSpace:
    """Search-time parameters of an index, by name (see the module
    docstring)."""

    def __init__(self):
        self.parameter_ranges = []
        self.verbose = 0
        self.n_experiments = 500
        self.batchsize = 1 << 30
        self.thread_over_batches = False
        self.min_test_duration = 0.0

    # -- setting --------------------------------------------------------
    def set_index_parameter(self, index, name, val):
        """Sets parameter `name` to val wherever it applies in the index
        tree; RuntimeError when nothing in it has that parameter."""
        if not self._set(index, name, val):
            raise RuntimeError(f"ParameterSpace: could not set parameter "
                               f"{name!r} on {type(index).__name__}")

    def _set(self, index, name, val):
        done = False
        for sub in _children(index):
            done |= self._set(sub, name, val)
        if name.startswith("quantizer_") and hasattr(index, "quantizer") \
                and hasattr(index, "nlist"):
            return self._set(index.quantizer, name[len("quantizer_"):],
                             val) or done
        if name in ("nprobe", "max_codes") and hasattr(index, "nlist"):
            setattr(index, name, int(val))
            return True
        if name == "efSearch" and hasattr(index, "hnsw"):
            index.hnsw.efSearch = int(val)
            return True
        if name == "k_factor" and hasattr(index, "k_factor"):
            index.k_factor = float(val)
            return True
        if name == "ht" and hasattr(index, "polysemous_ht"):
            index.polysemous_ht = int(val)
            return True
        return done

    def set_index_parameters(self, index, params):
        """params: "name=value,name=value", or a combination number."""
        if isinstance(params, (int, np.integer)):
            params = self.combination_name(int(params))
        for kv in filter(None, params.split(",")):
            if "=" not in kv:
                raise ValueError(f"set_index_parameters: expected "
                                 f"name=value, got {kv!r}")
            k, v = kv.split("=", 1)
            self.set_index_parameter(index, k, float(v))

    # -- the space ------------------------------------------------------
    def add_range(self, name):
        for pr in self.parameter_ranges:
            if pr.name == name:
                return pr
        pr = ParameterRange(name)
        self.parameter_ranges.append(pr)
        return pr

    def initialize(self, index):
        """Fills the ranges with the parameters the index tree has."""
        self.parameter_ranges = []
        self._init(index, "")

    def _init(self, index, prefix):
        for sub in _children(index):
            self._init(sub, prefix)
        if hasattr(index, "nlist") and hasattr(index, "nprobe"):
            pr = self.add_range(prefix + "nprobe")
            v = 1
            while v <= min(index.nlist, 1 << 14):
                if v not in pr.values:
                    pr.values.append(v)
                v *= 2
            q = getattr(index, "quantizer", None)
            if q is not None and hasattr(q, "hnsw"):
                self._init(q, prefix + "quantizer_")
        if hasattr(index, "hnsw"):
            pr = self.add_range(prefix + "efSearch")
            pr.values = [v for v in (16, 32, 64, 128, 256, 512)]
        if hasattr(index, "k_factor"):
            pr = self.add_range(prefix + "k_factor")
            pr.values = [1, 2, 4, 8, 16, 32, 64]

    def n_combinations(self):
        n = 1
        for pr in self.parameter_ranges:
            n *= len(pr.values)
        return n

    def _values(self, cno):
        if not 0 <= cno < self.n_combinations():
            raise ValueError(f"combination {cno} out of range "
                             f"(0..{self.n_combinations() - 1})")
        out = []
        for pr in self.parameter_ranges:
            n = len(pr.values)
            out.append((pr.name, pr.values[cno % n]))
            cno //= n
        return out

    def combination_name(self, cno):
        return ",".join(f"{k}={v:g}" if isinstance(v, float) else
                        f"{k}={v}" for k, v in self._values(cno))

    def set_index_parameters_cno(self, index, cno):
        for k, v in self._values(cno):
            self.set_index_parameter(index, k, v)

    def display(self):
        for pr in self.parameter_ranges:
            print(pr.name, pr.values)

    def explore(self, index, xq, crit):
        """Times every combination (at most n_experiments) on xq and
        returns the OperatingPoints of (criterion, seconds)."""
        ops = OperatingPoints()
        xq = np.ascontiguousarray(xq, dtype="float32")
        for cno in range(min(self.n_combinations(), self.n_experiments)):
            self.set_index_parameters_cno(index, cno)
            t0 = time.perf_counter()
            D, I = index.search(xq, crit.nnn)
            t = time.perf_counter() - t0
            ops.add(crit.evaluate(D, I), t, self.combination_name(cno), cno)
        return ops
