"""FAISS's ivflib.shard_ivf_index_centroids / shard_binary_ivf_index_centroids:
split an IVF index's coarse centroids over shard_count files.  Centroid i
goes to shard sharding_function(i, shard_count) (i % shard_count by
default); each shard is a copy of the index whose quantizer holds only its
centroids, under their global numbers when generate_ids (an IDMap2 over an
empty copy of the quantizer), else numbered from 0 in order.

The float shard is made from the index's FAISS-format bytes: the quantizer
record inside them is swapped for the shard's (the record is
self-delimiting and written alone byte for byte as it is written nested),
so every IVF kind vecdex writes is sharded the same way, lists included, as
FAISS's clone keeps them.  Each shard is parsed back before it is written,
so a shard vecdex could not read is an error here, not a bad file.  Files
are written to a temporary name and renamed."""
import os

import numpy as np

from . import _vecdex

__all__ = ["shard_ivf_index_centroids", "shard_binary_ivf_index_centroids"]


def _plan(quantizer, shard_count, filename_template, sharding_function):
    if quantizer is None or quantizer.ntotal == 0:
        raise RuntimeError("No centroids to shard.")
    if "%d" not in filename_template:
        raise RuntimeError("Invalid filename_template. Must contain format "
                           "specifier for shard count.")
    shard_count = int(shard_count)
    if shard_count < 1:
        raise ValueError("shard_count must be >= 1, got %d" % shard_count)
    fn = sharding_function or (lambda i, n: i % n)
    owner = np.array([int(fn(i, shard_count)) for i in range(quantizer.ntotal)],
                     dtype=np.int64)
    bad = (owner < 0) | (owner >= shard_count)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError("sharding_function(%d, %d) returned %d, not in "
                         "0..%d" % (i, shard_count, owner[i], shard_count - 1))
    return shard_count, owner


def _write_atomic(fname, data):
    tmp = "%s.tmp%d" % (fname, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, fname)


def _quantizer_span(full, qbytes):
    """Offset of the quantizer record in an IVF record: after the fourcc,
    d, ntotal, two dummies, is_trained, metric (+ metric_arg for the extra
    metrics), nlist and nprobe."""
    metric = int(np.frombuffer(full[33:37], dtype="<i4")[0])
    off = 4 + 4 + 8 + 8 + 8 + 1 + 4 + (4 if metric > 1 else 0) + 8 + 8
    if full[off:off + len(qbytes)] != qbytes:
        raise RuntimeError("shard_ivf_index_centroids: the quantizer is not "
                           "where FAISS's IVF layout puts it")
    return off


def shard_ivf_index_centroids(index, shard_count=20,
                              filename_template="shard.%d.index",
                              sharding_function=None, generate_ids=False):
    """Writes filename_template % s for s in 0..shard_count-1 (see the
    module note).  sharding_function(i, shard_count) -> shard of centroid
    i."""
    if not isinstance(index, _vecdex.IndexIVF):
        raise TypeError("shard_ivf_index_centroids: expected an IndexIVF, got "
                        + type(index).__name__)
    q = index.quantizer
    shard_count, owner = _plan(q, shard_count, filename_template,
                               sharding_function)
    cent = q.reconstruct_n(0, q.ntotal)
    full = bytes(np.asarray(_vecdex.serialize_index(index)).tobytes())
    qbytes = bytes(np.asarray(_vecdex.serialize_index(q)).tobytes())
    off = _quantizer_span(full, qbytes)
    for s in range(shard_count):
        sel = np.flatnonzero(owner == s)
        sq = _vecdex.clone_index(q)
        sq.reset()
        if generate_ids:
            sq = _vecdex.IndexIDMap2(sq)
            sq.add_with_ids(cent[sel], sel.astype(np.int64))
        elif len(sel):
            sq.add(cent[sel])
        sb = bytes(np.asarray(_vecdex.serialize_index(sq)).tobytes())
        data = full[:off] + sb + full[off + len(qbytes):]
        _vecdex.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        _write_atomic(filename_template % s, data)


def shard_binary_ivf_index_centroids(index, shard_count=20,
                                     filename_template="shard.%d.index",
                                     sharding_function=None,
                                     generate_ids=False):
    """The binary counterpart (IndexBinaryIVF, written with
    write_index_binary's format)."""
    from . import _binary as B
    from . import _binary_io as BIO
    if not isinstance(index, B.IndexBinaryIVF):
        raise TypeError("shard_binary_ivf_index_centroids: expected an "
                        "IndexBinaryIVF, got " + type(index).__name__)
    q = index.quantizer
    shard_count, owner = _plan(q, shard_count, filename_template,
                               sharding_function)
    cent = np.stack([q.reconstruct(i) for i in range(q.ntotal)])
    for s in range(shard_count):
        sel = np.flatnonzero(owner == s)
        clone = BIO.deserialize_index_binary(BIO.serialize_index_binary(index))
        sq = clone.quantizer
        sq.reset()
        if generate_ids:
            sq = B.IndexBinaryIDMap2(sq)
            sq.add_with_ids(cent[sel], sel.astype(np.int64))
        elif len(sel):
            sq.add(cent[sel])
        clone.quantizer = sq
        data = BIO.serialize_index_binary(clone)
        data = bytes(np.asarray(data).tobytes())
        BIO.deserialize_index_binary(np.frombuffer(data, dtype=np.uint8))
        _write_atomic(filename_template % s, data)
