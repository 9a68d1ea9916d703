"""FAISS's GPU option classes and pure-Python helpers (faiss/gpu's
GpuClonerOptions, GpuMultipleClonerOptions, GpuIndex*Config, and the
index_cpu_to_all_gpus / index_cpu_to_gpus_list / index_cpu_to_gpu_multiple_py
/ knn_gpu wrappers of faiss/__init__.py).  The classes, cloning and search
themselves are in the C extension (python/py_gpu.c)."""
from . import _vecdex

__all__ = ["GpuClonerOptions", "GpuMultipleClonerOptions", "GpuIndexConfig",
           "GpuIndexFlatConfig", "GpuIndexIVFConfig", "GpuIndexIVFFlatConfig",
           "GpuIndexIVFPQConfig", "GpuIndexIVFScalarQuantizerConfig",
           "GpuResourcesVector", "Int32Vector", "index_cpu_to_all_gpus",
           "index_cpu_to_gpus_list", "index_cpu_to_gpu_multiple_py",
           "knn_gpu"]


class GpuClonerOptions:
    """Options of index_cpu_to_gpu (FAISS's defaults)."""

    def __init__(self):
        self.indicesOptions = _vecdex.INDICES_64_BIT
        self.useFloat16CoarseQuantizer = False
        self.useFloat16 = False
        self.usePrecomputed = False
        self.reserveVecs = 0
        self.storeTransposed = False
        self.verbose = False
        self.use_cuvs = False
        self.allowCpuCoarseQuantizer = False


class GpuMultipleClonerOptions(GpuClonerOptions):
    """Options of index_cpu_to_gpu_multiple: shard (else replicas),
    shard_type (IVF: 1 ids modulo n, 2 id ranges, 4 list ranges)."""

    def __init__(self):
        super().__init__()
        self.shard = False
        self.shard_type = 1
        self.common_ivf_quantizer = False


class GpuIndexConfig:
    def __init__(self):
        self.device = 0
        self.memorySpace = 1
        self.use_cuvs = False


class GpuIndexFlatConfig(GpuIndexConfig):
    def __init__(self):
        super().__init__()
        self.useFloat16 = False
        self.storeTransposed = False


class GpuIndexIVFConfig(GpuIndexConfig):
    def __init__(self):
        super().__init__()
        self.indicesOptions = _vecdex.INDICES_64_BIT
        self.flatConfig = GpuIndexFlatConfig()
        self.allowCpuCoarseQuantizer = False


class GpuIndexIVFFlatConfig(GpuIndexIVFConfig):
    def __init__(self):
        super().__init__()
        self.interleavedLayout = True


class GpuIndexIVFPQConfig(GpuIndexIVFConfig):
    def __init__(self):
        super().__init__()
        self.useFloat16LookupTables = False
        self.usePrecomputedTables = False
        self.interleavedLayout = False
        self.useMMCodeDistance = False


class GpuIndexIVFScalarQuantizerConfig(GpuIndexIVFConfig):
    def __init__(self):
        super().__init__()
        self.interleavedLayout = True


class GpuResourcesVector(list):
    """FAISS's std::vector<GpuResourcesProvider*> (push_back, size, at)."""

    def push_back(self, x):
        self.append(x)

    def size(self):
        return len(self)

    def at(self, i):
        return self[i]


class Int32Vector(list):
    def push_back(self, x):
        self.append(int(x))

    def size(self):
        return len(self)

    def at(self, i):
        return self[i]


def index_cpu_to_gpu_multiple_py(resources, index, co=None, gpus=None):
    """A copy of index on len(resources) GPUs (replicas, or shards with
    co.shard)."""
    if gpus is None:
        gpus = range(len(resources))
    return _vecdex.index_cpu_to_gpu_multiple(list(resources), list(gpus),
                                             index, co)


def index_cpu_to_gpus_list(index, co=None, gpus=None, ngpu=-1):
    """A copy of index on the listed GPUs (all of them by default), each
    with its own StandardGpuResources."""
    if gpus is None and ngpu == -1:
        ngpu = _vecdex.get_num_gpus()
    if gpus is None:
        gpus = range(ngpu)
    gpus = list(gpus)
    if not gpus:
        raise RuntimeError("index_cpu_to_gpus_list: no GPU available ("
                           + _vecdex.gpu_info() + ")")
    res = [_vecdex.StandardGpuResources() for _ in gpus]
    return index_cpu_to_gpu_multiple_py(res, index, co, gpus)


def index_cpu_to_all_gpus(index, co=None, ngpu=-1):
    """A copy of index on every GPU (replicas by default)."""
    return index_cpu_to_gpus_list(index, co=co, gpus=None, ngpu=ngpu)


def knn_gpu(res, xq, xb, k, D=None, I=None, metric=_vecdex.METRIC_L2,
            device=-1, use_cuvs=False, vectorsMemoryLimit=0,
            queriesMemoryLimit=0):
    """Exact k-NN of xq among xb (both host arrays, paged through the GPU):
    (D, I) as faiss.knn_gpu."""
    import numpy as np
    Dr, Ir = _vecdex._knn_gpu(res, np.ascontiguousarray(xq, dtype="float32"),
                              np.ascontiguousarray(xb, dtype="float32"), int(k),
                              metric=int(metric), device=max(int(device), 0))
    if D is not None:
        D[...] = Dr
        Dr = D
    if I is not None:
        I[...] = Ir
        Ir = I
    return Dr, Ir
