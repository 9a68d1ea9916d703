"""vecdex.Store: a collection of vectors with the caller's ids, metadata,
texts, filters, keyword and hybrid search, durable on SQLite.  A thin layer
over the C store (vdx_store_*, bound as vecdex._vecdex._Store): dicts are
passed as JSON text, results come back as lists.
"""
import json
from collections import namedtuple

import numpy as np

from . import _vecdex

_METRICS = {"ip": 0, "l2": 1, "cosine": 2}
WITH_METADATA, WITH_TEXT = 1, 2

Hits = namedtuple("Hits", "ids scores metadata texts")
Hits.__doc__ = ("Results of one query: ids, scores (L2: squared distance; ip "
                "/ cosine: similarity; keyword: -bm25; hybrid: fused), and "
                "metadata (dicts) and texts when asked for, else None.")


def _where(where):
    if where is None:
        return None
    return where if isinstance(where, str) else json.dumps(where)


def _flags(include_metadata, include_text):
    return (WITH_METADATA if include_metadata else 0) | \
        (WITH_TEXT if include_text else 0)


def _hits(raw, include_metadata, include_text):
    out = []
    for ids, scores, md, tx in raw:
        out.append(Hits(ids, scores,
                        [json.loads(m) if m else None for m in md]
                        if include_metadata else None,
                        tx if include_text else None))
    return out


class Store:
    """Use Store.create(...) or Store.open(...); a context manager."""

    def __init__(self, c):
        self._c = c
        self.info = json.loads(c.info())
        self.dim = self.info["dim"]

    @classmethod
    def create(cls, path, dim, metric="cosine", index="HNSW32", schema=None,
               text=True, **options):
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
        return cls(_vecdex._Store.create(
            str(path), int(dim), metric=_METRICS[metric], index=index,
            schema=json.dumps(schema) if schema else None, text=int(bool(text)),
            **options))

    @classmethod
    def open(cls, path, read_only=False, **options):
        return cls(_vecdex._Store.open(str(path), read_only=int(bool(read_only)),
                                       **options))

    def close(self):
        self._c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def upsert(self, ids, vectors, metadata=None, texts=None):
        ids = list(ids)
        vectors = np.ascontiguousarray(vectors, dtype="float32")
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        md = None if metadata is None else [
            None if m is None else json.dumps(m) for m in metadata]
        self._c.upsert(ids, vectors, md, None if texts is None else list(texts))

    def delete(self, ids=None, where=None):
        """Deletes the rows of ids and/or those matching where; returns
        the number removed."""
        return self._c.delete(None if ids is None else list(ids), _where(where))

    def count(self, where=None):
        return self._c.count(_where(where))

    def get(self, ids):
        """{"ids", "found", "vectors" (n, dim), "metadata", "texts"}."""
        ids = list(ids)
        found, vec, md, tx = self._c.get(ids)
        return {"ids": ids, "found": found, "vectors": vec,
                "metadata": [json.loads(m) if m else None for m in md],
                "texts": tx}

    def search(self, queries, k=10, where=None, params=None,
               include_metadata=False, include_text=False):
        """k nearest rows of each query (a (nq, dim) batch, or one vector)
        among the rows matching where: a list of Hits, one per query."""
        q = np.ascontiguousarray(queries, dtype="float32")
        if q.ndim == 1:
            q = q.reshape(1, -1)
        return _hits(self._c.search(q, int(k), _where(where), params,
                                    _flags(include_metadata, include_text)),
                     include_metadata, include_text)

    def keyword_search(self, text, k=10, where=None, include_metadata=False,
                       include_text=False):
        return _hits(self._c.keyword_search(text, int(k), _where(where),
                                            _flags(include_metadata, include_text)),
                     include_metadata, include_text)[0]

    def hybrid_search(self, query_vector, text, k=10, where=None, fusion="rrf",
                      rrf_k=60, weights=(1, 1), params=None,
                      include_metadata=False, include_text=False):
        if fusion not in ("rrf", "weighted"):
            raise ValueError(f"fusion must be 'rrf' or 'weighted', got {fusion!r}")
        v = np.ascontiguousarray(query_vector, dtype="float32").reshape(-1)
        return _hits(self._c.hybrid_search(
            v, text, int(k), _where(where), 0 if fusion == "rrf" else 1,
            float(rrf_k), float(weights[0]), float(weights[1]), params,
            _flags(include_metadata, include_text)),
            include_metadata, include_text)[0]

    def compact(self):
        self._c.compact()

    def train(self):
        self._c.train()

    def checkpoint(self):
        self._c.checkpoint()

    def check(self):
        """Integrity check; raises RuntimeError naming the problem."""
        self._c.check()

    def stats(self):
        return self._c.stats()
