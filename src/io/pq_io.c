/*
 * pq_io.c — the product-quantizer kinds in FAISS's format.
 *
 * ProductQuantizer: uint64 d, uint64 M, uint64 nbits, then the centroids as
 *   a FAISS vector of d * 2^nbits float32s (FAISS sizes it at construction,
 *   so an untrained quantizer writes zeros).
 * IndexPQ, fourcc "IxPq": the common header, the ProductQuantizer, the
 *   codes as a vector of ntotal * code_size bytes, then int32 search_type,
 *   uint8 encode_signs, int32 polysemous_ht (kept for byte-identical
 *   round trips).  The older "IxPQ" (no trailing fields) and "IxPo" are
 *   read too, with the metric forced to L2 as FAISS does.
 * IndexIVFPQ, fourcc "IwPQ": the IVF head (ivf_io.c), uint8 by_residual,
 *   uint64 code_size, the ProductQuantizer, the inverted lists ("ilar").
 *   The legacy "IvPQ" (ids in the IVF head, codes as per-list vectors) is
 *   read through ivf_io.c's legacy path.  The precomputed L2 tables are
 *   not stored (FAISS neither): they are rebuilt after reading.
 * Checks: d, M, nbits as the constructors check them (M divides d, nbits
 * 1..16, d equal to the header's), every count against the bytes that
 * remain before allocating, code_size equal to the quantizer's, centroids
 * finite, an untrained index empty.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "io_internal.h"
#include "index/index_pq.h"

int vdx_io_is_index_pq(const vdx_index *ix) { return vdx_is_index_pq(ix); }
int vdx_io_is_ivfpq(const vdx_index *ix) { return vdx_is_ivfpq(ix); }

/* Reads a ProductQuantizer into pq (set up for the stored d, M, nbits). */
static vdx_status read_pq(vdx_reader *r, const vdx_io_header *h, vdx_pq *pq) {
    uint64_t d, M, nbits, at = r->pos;
    vdx_status s;
    if ((s = vdx_rd_u64(r, &d, "PQ d")) || (s = vdx_rd_u64(r, &M, "PQ M")) ||
        (s = vdx_rd_u64(r, &nbits, "PQ nbits")))
        return s;
    if (d != (uint64_t)h->d || M < 1 || M > d || d % M != 0 || nbits < 1 ||
        nbits > VDX_PQ_NBITS_MAX)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: product quantizer at offset %" PRIu64
                         " has d=%" PRIu64 ", M=%" PRIu64 ", nbits=%" PRIu64
                         " (need d=%" PRId64 ", M dividing d, nbits 1..16)",
                         h->fourcc, at, d, M, nbits, h->d);
    if ((s = vdx_pq_setup(pq, (int64_t)d, (int64_t)M, (int)nbits))) return s;
    uint64_t nf = d << nbits, cat = r->pos;
    uint64_t count;
    if ((s = vdx_rd_u64(r, &count, "PQ centroids size"))) return s;
    if (count == 0 && !h->is_trained) return VDX_OK;
    if (count != nf)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: PQ centroids at offset %" PRIu64
                         " hold %" PRIu64 " floats, expected d x 2^nbits = "
                         "%" PRIu64,
                         h->fourcc, cat, count, nf);
    if ((s = vdx_rd_need(r, nf * sizeof(float), "PQ centroids"))) return s;
    if ((s = vdx_pq_alloc_centroids(pq))) return s;
    uint64_t fat = r->pos;
    if ((s = vdx_rd_bytes(r, pq->centroids, nf * sizeof(float),
                          "PQ centroids")))
        return s;
    for (uint64_t i = 0; i < nf; i++)
        if (!isfinite(pq->centroids[i]))
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: non-finite PQ centroid value at "
                             "offset %" PRIu64,
                             h->fourcc, fat + i * 4);
    return VDX_OK;
}

static vdx_status write_pq(vdx_writer *w, const vdx_pq *pq) {
    vdx_status s;
    uint64_t nf = (uint64_t)pq->d << pq->nbits;
    if ((s = vdx_wr_u64(w, (uint64_t)pq->d)) ||
        (s = vdx_wr_u64(w, (uint64_t)pq->M)) ||
        (s = vdx_wr_u64(w, (uint64_t)pq->nbits)) || (s = vdx_wr_u64(w, nf)))
        return s;
    if (pq->centroids) return vdx_wr_bytes(w, pq->centroids, nf * sizeof(float));
    static const float zero[256];
    for (uint64_t i = 0; i < nf && !s; i += 256)
        s = vdx_wr_bytes(w, zero, (size_t)VDX_MIN(256, nf - i) * sizeof(float));
    return s;
}

/* ---- IndexPQ -------------------------------------------------------------- */

vdx_status vdx_io_read_index_pq(vdx_reader *r, vdx_io_header *h,
                                vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    int legacy = strcmp(h->fourcc, "IxPq") != 0;
    vdx_metric metric = VDX_METRIC_L2;
    if (!legacy && (s = vdx_io_metric(h, &metric))) return s;
    if (!h->is_trained && h->ntotal != 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " is not trained but "
                         "holds ntotal=%" PRId64 " vectors",
                         h->fourcc, h->offset, h->ntotal);
    vdx_pq pq;
    memset(&pq, 0, sizeof pq);
    if ((s = read_pq(r, h, &pq))) goto fail_pq;
    if (h->is_trained && !pq.centroids) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index at offset %" PRIu64
                      " is trained but has no PQ centroids",
                      h->fourcc, h->offset);
        goto fail_pq;
    }
    uint64_t ncodes;
    if (__builtin_mul_overflow((uint64_t)h->ntotal, (uint64_t)pq.code_size,
                               &ncodes)) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index: ntotal=%" PRId64
                      " codes overflow", h->fourcc, h->ntotal);
        goto fail_pq;
    }
    if ((s = vdx_rd_vector_count(r, 1, ncodes, "PQ codes"))) goto fail_pq;

    vdx_index *ix = NULL;
    if ((s = vdx_index_pq_new(h->d, pq.M, pq.nbits, metric, &ix))) goto fail_pq;
    vdx_index_pq *p = (vdx_index_pq *)ix;
    p->pq.centroids = pq.centroids; /* handed over */
    pq.centroids = NULL;
    const uint8_t *mapped = vdx_rd_borrow(r, ncodes, "PQ codes", &s);
    if (s) goto fail;
    if (mapped && ncodes) {
        p->codes = (uint8_t *)(uintptr_t)mapped;
        p->map = vdx_mapping_ref(r->map);
        p->cap = 0;
    } else {
        if ((s = vdx_index_pq_reserve(p, h->ntotal))) goto fail;
        if ((s = vdx_rd_bytes(r, p->codes, ncodes, "PQ codes"))) goto fail;
    }
    ix->ntotal = h->ntotal;
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    if (strcmp(h->fourcc, "IxPQ") != 0) {
        int32_t st, ht;
        uint8_t es;
        if ((s = vdx_rd_i32(r, &st, "PQ search_type")) ||
            (s = vdx_rd_u8(r, &es, "PQ encode_signs")) ||
            (s = vdx_rd_i32(r, &ht, "PQ polysemous_ht")))
            goto fail;
        p->search_type = st;
        p->encode_signs = es;
        p->polysemous_ht = ht;
    }
    *out = ix;
    return VDX_OK;
fail:
    vdx_index_free(ix);
fail_pq:
    vdx_pq_clear(&pq);
    return s;
}

vdx_status vdx_io_write_index_pq(vdx_writer *w, const vdx_index *ix) {
    const vdx_index_pq *p = (const vdx_index_pq *)ix;
    vdx_status s = vdx_wr_header(w, "IxPq", ix);
    if (s || (s = write_pq(w, &p->pq))) return s;
    uint64_t n = (uint64_t)ix->ntotal * p->pq.code_size;
    if ((s = vdx_wr_u64(w, n))) return s;
    if (n && (s = vdx_wr_bytes(w, p->codes, (size_t)n))) return s;
    if ((s = vdx_wr_i32(w, p->search_type)) ||
        (s = vdx_wr_u8(w, p->encode_signs)) ||
        (s = vdx_wr_i32(w, p->polysemous_ht)))
        return s;
    return VDX_OK;
}

/* ---- IndexIVFPQ ----------------------------------------------------------- */

static vdx_status make_ivfpq(vdx_reader *r, const vdx_io_header *h,
                             vdx_index *q, uint64_t nlist, vdx_metric metric,
                             vdx_ivf **out) {
    uint8_t by_residual;
    uint64_t code_size, cs_at;
    vdx_status s;
    if ((s = vdx_rd_u8(r, &by_residual, "IVFPQ by_residual"))) return s;
    cs_at = r->pos;
    if ((s = vdx_rd_u64(r, &code_size, "IVFPQ code_size"))) return s;
    if (by_residual > 1)
        return vdx_raise(VDX_ERR_FORMAT, "%s index: by_residual=%u at offset "
                         "%" PRIu64 " is not a bool",
                         h->fourcc, by_residual, cs_at - 1);
    vdx_pq pq;
    memset(&pq, 0, sizeof pq);
    if ((s = read_pq(r, h, &pq))) goto fail;
    if (code_size != pq.code_size) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: code_size=%" PRIu64 " at offset %" PRIu64
                      ", the product quantizer's is %zu",
                      h->fourcc, code_size, cs_at, pq.code_size);
        goto fail;
    }
    if (h->is_trained && !pq.centroids) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index at offset %" PRIu64
                      " is trained but has no PQ centroids",
                      h->fourcc, h->offset);
        goto fail;
    }
    vdx_ivfpq *p = NULL;
    if ((s = vdx_ivfpq_alloc(q, h->d, (int64_t)nlist, pq.M, pq.nbits, metric,
                             &p)))
        goto fail;
    p->pq.centroids = pq.centroids;
    p->by_residual = by_residual;
    *out = &p->ivf;
    return VDX_OK;
fail:
    vdx_pq_clear(&pq);
    return s;
}

vdx_status vdx_io_read_ivfpq(vdx_reader *r, vdx_io_header *h,
                             vdx_index **out) {
    vdx_status s = vdx_io_read_ivf(r, h, make_ivfpq, out);
    if (s) return s;
    /* as FAISS: the precomputed tables are not stored, but rebuilt -- by
     * the first search that uses them, so that opening (mapped or not)
     * costs neither their time nor their nlist x M x ksub floats; FAISS's
     * IO_FLAG_SKIP_PRECOMPUTE_TABLE turns them off (as in FAISS, until
     * precompute_table() or use_precomputed_table is set) */
    vdx_ivfpq *p = (vdx_ivfpq *)(void *)*out;
    if (r->io_flags & VDX_IOF_SKIP_PRECOMPUTE_TABLE)
        vdx_ivfpq_skip_precompute(p);
    else
        (void)vdx_ivfpq_precompute(p);
    return VDX_OK;
}

vdx_status vdx_io_write_ivfpq(vdx_writer *w, const vdx_index *ix) {
    const vdx_ivfpq *p = (const vdx_ivfpq *)ix;
    vdx_status s = vdx_io_write_ivf_head(w, "IwPQ", ix);
    if (s || (s = vdx_wr_u8(w, (uint8_t)p->by_residual)) ||
        (s = vdx_wr_u64(w, p->pq.code_size)) || (s = write_pq(w, &p->pq)))
        return s;
    return vdx_io_write_ivf_lists(w, &p->ivf);
}

/* ---- the ProductQuantizer for other kinds (Index2Layer) ------------------- */

vdx_status vdx_io_read_pq(vdx_reader *r, const vdx_io_header *h, vdx_pq *pq) {
    return read_pq(r, h, pq);
}

vdx_status vdx_io_write_pq(vdx_writer *w, const vdx_pq *pq) {
    return write_pq(w, pq);
}
