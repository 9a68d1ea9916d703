/*
 * index_2layer_io.c — Index2Layer in FAISS's format, fourcc "Ix2L":
 *
 *   the common header; the coarse quantizer (an index, read recursively);
 *   uint64 nlist; uint8 quantizer_trains_alone; the ProductQuantizer
 *   (pq_io.c); uint64 code_size_1, code_size_2, code_size; the codes as a
 *   vector of ntotal x code_size bytes.
 *
 * IndexHNSW2Level ("IHN2") is the HNSW layout of hnsw_io.c with an Ix2L
 * storage.
 *
 * Checks on read: the quantizer has the header's d and, when the index is
 * trained, exactly nlist vectors; 1 <= nlist <= 2^31; trains_alone 0..2;
 * the PQ's d is the header's (pq_io.c checks the rest); the three code
 * sizes are the ones nlist and the PQ imply; the codes fill exactly ntotal
 * x code_size bytes and every stored list number is < nlist; an untrained
 * index is empty.
 */
#include <inttypes.h>
#include <string.h>

#include "io_internal.h"
#include "index/index_2layer.h"

int vdx_io_is_2layer(const vdx_index *ix) { return vdx_is_2layer(ix); }

vdx_status vdx_io_read_2layer(vdx_reader *r, vdx_io_header *h,
                              vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    const char *fc = h->fourcc;
    if (!h->is_trained && h->ntotal != 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " is not trained but "
                         "holds ntotal=%" PRId64 " vectors",
                         fc, h->offset, h->ntotal);
    vdx_index *q = NULL;
    vdx_index_2layer *t = NULL;
    vdx_pq pq;
    memset(&pq, 0, sizeof pq);
    uint64_t at = r->pos, nlist, cs1, cs2, cs;
    uint8_t alone;
    if ((s = vdx_read_index_rec(r, &q))) return s;
    if (q->d != h->d) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index (d=%" PRId64 "): its quantizer at offset "
                      "%" PRIu64 " has d=%" PRId64,
                      fc, h->d, at, q->d);
        goto fail;
    }
    at = r->pos;
    if ((s = vdx_rd_u64(r, &nlist, "Index2Layer nlist")) ||
        (s = vdx_rd_u8(r, &alone, "Index2Layer quantizer_trains_alone")))
        goto fail;
    if (nlist < 1 || nlist > ((uint64_t)1 << 31) || alone > 2) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: nlist=%" PRIu64 " / quantizer_trains_alone="
                      "%u at offset %" PRIu64 " (need nlist 1..2^31, 0..2)",
                      fc, nlist, alone, at);
        goto fail;
    }
    if (h->is_trained && (uint64_t)q->ntotal != nlist) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index is trained with nlist=%" PRIu64 " but its "
                      "quantizer holds %" PRId64 " centroids",
                      fc, nlist, q->ntotal);
        goto fail;
    }
    if ((s = vdx_io_read_pq(r, h, &pq))) goto fail;
    if (h->is_trained && !pq.centroids) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index at offset %" PRIu64
                      " is trained but has no PQ centroids", fc, h->offset);
        goto fail;
    }
    at = r->pos;
    if ((s = vdx_rd_u64(r, &cs1, "Index2Layer code_size_1")) ||
        (s = vdx_rd_u64(r, &cs2, "Index2Layer code_size_2")) ||
        (s = vdx_rd_u64(r, &cs, "Index2Layer code_size")))
        goto fail;
    size_t e1 = vdx_2layer_code_size_1((int64_t)nlist);
    if (cs1 != e1 || cs2 != pq.code_size || cs != e1 + pq.code_size) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: code sizes %" PRIu64 " + %" PRIu64
                      " = %" PRIu64 " at offset %" PRIu64 ", expected %zu + "
                      "%zu = %zu for nlist=%" PRIu64 " and the PQ",
                      fc, cs1, cs2, cs, at, e1, pq.code_size,
                      e1 + pq.code_size, nlist);
        goto fail;
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow((uint64_t)h->ntotal, cs, &nbytes)) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index: ntotal=%" PRId64
                      " codes overflow", fc, h->ntotal);
        goto fail;
    }
    if ((s = vdx_rd_vector_count(r, 1, nbytes, "Index2Layer codes"))) goto fail;
    uint64_t codes_at = r->pos;
    if ((s = vdx_2layer_make(q, (int64_t)nlist, pq.M, pq.nbits, metric, &t)))
        goto fail;
    q = NULL; /* owned by t now */
    t->pq.centroids = pq.centroids; /* handed over */
    pq.centroids = NULL;
    t->trains_alone = alone;
    if ((s = vdx_2layer_reserve(t, h->ntotal))) goto fail;
    if ((s = vdx_rd_bytes(r, t->codes, nbytes, "Index2Layer codes"))) goto fail;
    for (int64_t i = 0; i < h->ntotal; i++) {
        int64_t l = vdx_2layer_list(t, t->codes + (size_t)i * cs);
        if (l >= (int64_t)nlist) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: code %" PRId64 " at offset %" PRIu64
                          " is in list %" PRId64 ", outside [0, nlist=%"
                          PRIu64 ")",
                          fc, i, codes_at + (uint64_t)i * cs, l, nlist);
            goto fail;
        }
    }
    t->base.ntotal = h->ntotal;
    t->base.is_trained = h->is_trained;
    t->base.metric_arg = h->metric_arg;
    *out = &t->base;
    return VDX_OK;
fail:
    vdx_pq_clear(&pq);
    vdx_index_free(q);
    if (t) vdx_index_free(&t->base);
    return s;
}

vdx_status vdx_io_write_2layer(vdx_writer *w, const vdx_index *ix) {
    const vdx_index_2layer *t = (const vdx_index_2layer *)ix;
    vdx_status s;
    if ((s = vdx_wr_header(w, "Ix2L", ix)) ||
        (s = vdx_write_index_rec(w, t->quantizer)) ||
        (s = vdx_wr_u64(w, (uint64_t)t->nlist)) ||
        (s = vdx_wr_u8(w, t->trains_alone)) ||
        (s = vdx_io_write_pq(w, &t->pq)) ||
        (s = vdx_wr_u64(w, t->code_size_1)) ||
        (s = vdx_wr_u64(w, t->code_size_2)) ||
        (s = vdx_wr_u64(w, t->code_size)))
        return s;
    uint64_t n = (uint64_t)ix->ntotal * t->code_size;
    if ((s = vdx_wr_u64(w, n))) return s;
    if (n && (s = vdx_wr_bytes(w, t->codes, (size_t)n))) return s;
    return VDX_OK;
}
