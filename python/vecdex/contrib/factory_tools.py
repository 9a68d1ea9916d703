"""index_factory strings: their code sizes, and the string of an index
(faiss.contrib.factory_tools' names, written for vecdex)."""
import re

import vecdex

__all__ = ["get_code_size", "reverse_index_factory"]

_SQ_BITS = {"SQ4": 4, "SQ6": 6, "SQ8": 8, "SQ4u": 4, "SQ8u": 8,
            "SQfp16": 16, "SQbf16": 16, "SQ8_direct": 8}


def _component_size(d, comp):
    """Bytes per vector of one factory component (None: no storage)."""
    if comp in ("Flat", "RFlat"):
        return d * 4
    if comp in _SQ_BITS:
        return (d * _SQ_BITS[comp] + 7) // 8
    m = re.fullmatch(r"PQ(\d+)(?:x(\d+))?(fs|fsr)?(?:_\d+)?(np)?", comp)
    if m:
        M, nbits = int(m.group(1)), int(m.group(2) or 8)
        return (M * nbits + 7) // 8
    m = re.fullmatch(r"HNSW(\d+)(?:_?(.*))?", comp)
    if m:
        M = int(m.group(1))
        rest = m.group(2) or "Flat"
        inner = _component_size(d, rest.lstrip(","))
        return inner + M * 2 * 4
    m = re.fullmatch(r"LSHr?t?(\d+)?", comp)
    if m:
        return ((int(m.group(1)) if m.group(1) else d) + 7) // 8
    m = re.fullmatch(r"Refine\((.*)\)", comp)
    if m:
        return get_code_size(d, m.group(1))
    return None


def get_code_size(d, indexkey):
    """Bytes stored per vector by index_factory(d, indexkey): the sum of
    its codes (PQ, SQ, flat vectors, HNSW links, refinement codes); IVF
    ids are not counted, as in FAISS.  ValueError for a component it does
    not know."""
    d = int(d)
    if d <= 0:
        raise ValueError(f"get_code_size: d must be > 0, got {d}")
    # split at top-level commas (not inside Refine(...))
    parts, depth, cur = [], 0, ""
    for ch in indexkey:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    parts.append(cur)
    size = 0
    for i, p in enumerate(parts):
        p = p.strip()
        m = re.fullmatch(r"(?:PCAR?|OPQ|RR|ITQ)(\d+)(?:_(\d+))?", p)
        if m:  # a transform: later components see the reduced dimension
            d = int(m.group(2) or m.group(1)) if p.startswith("OPQ") \
                else int(m.group(1))
            continue
        if re.fullmatch(r"IVF\d+(?:_HNSW\d+)?|IDMap2?|L2norm", p):
            continue
        m = re.fullmatch(r"HNSW(\d+)", p)
        if m and i + 1 < len(parts):  # HNSW32,SQ8: links + the codes after
            size += int(m.group(1)) * 2 * 4
            continue
        s = _component_size(d, p)
        if s is None:
            raise ValueError(f"get_code_size: cannot parse {p!r} in "
                             f"{indexkey!r}")
        size += s
    return size


_SQ_NAMES = {}


def _sq_name(qtype):
    if not _SQ_NAMES:
        Q = vecdex.ScalarQuantizer
        _SQ_NAMES.update({Q.QT_8bit: "SQ8", Q.QT_4bit: "SQ4",
                          Q.QT_8bit_uniform: "SQ8u", Q.QT_4bit_uniform: "SQ4u",
                          Q.QT_6bit: "SQ6", Q.QT_fp16: "SQfp16",
                          Q.QT_bf16: "SQbf16", Q.QT_8bit_direct: "SQ8_direct"})
        for b in (1, 2, 3, 4, 8):
            _SQ_NAMES[getattr(Q, "QT_%dbit_tqmse" % b)] = "SQtqmse%d" % b
    return _SQ_NAMES[qtype]


def reverse_index_factory(index):
    """The index_factory string that builds an index like `index` (its
    kind and parameters, not its data); NotImplementedError for a kind it
    cannot name."""
    ix = index
    if isinstance(ix, vecdex.IndexIDMap2):
        return "IDMap2," + reverse_index_factory(ix.index)
    if isinstance(ix, vecdex.IndexIDMap):
        return "IDMap," + reverse_index_factory(ix.index)
    if isinstance(ix, vecdex.IndexFlat):
        return "Flat"
    if isinstance(ix, vecdex.IndexIVF):
        q = ix.quantizer
        prefix = f"IVF{ix.nlist}"
        if not isinstance(q, vecdex.IndexFlat):
            inner = reverse_index_factory(q)
            if inner.startswith("HNSW") and inner.endswith(",Flat"):
                prefix += "_" + inner[:-5]
            else:
                raise NotImplementedError(
                    f"reverse_index_factory: quantizer {type(q).__name__}")
        if isinstance(ix, vecdex.IndexIVFFlat):
            return prefix + ",Flat"
        if isinstance(ix, vecdex.IndexIVFScalarQuantizer):
            return prefix + "," + _sq_name(ix.sq.qtype)
        if isinstance(ix, vecdex.IndexIVFPQFastScan):
            return prefix + f",PQ{ix.pq.M}x4fs"
        if isinstance(ix, vecdex.IndexIVFPQ):
            return prefix + f",PQ{ix.pq.M}x{ix.pq.nbits}"
    if isinstance(ix, vecdex.IndexScalarQuantizer):
        return _sq_name(ix.sq.qtype)
    if isinstance(ix, vecdex.IndexPQFastScan):
        return f"PQ{ix.pq.M}x4fs"
    if isinstance(ix, vecdex.IndexPQ):
        return f"PQ{ix.pq.M}x{ix.pq.nbits}"
    if isinstance(ix, vecdex.IndexHNSWFlat):
        return f"HNSW{ix.hnsw.nb_neighbors(1)},Flat" \
            if hasattr(ix.hnsw, "nb_neighbors") else f"HNSW{ix.M},Flat"
    if isinstance(ix, vecdex.IndexPreTransform):
        raise NotImplementedError("reverse_index_factory: IndexPreTransform")
    raise NotImplementedError(
        f"reverse_index_factory: cannot name a {type(ix).__name__}")
