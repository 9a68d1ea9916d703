/*
 * sq_io.c — the scalar-quantizer indexes in FAISS's format:
 *
 *   the ScalarQuantizer: int32 qtype, int32 rangestat, float32
 *     rangestat_arg, uint64 d, uint64 code_size, then the trained values as
 *     a FAISS vector of float32 (empty while untrained);
 *   "IxSQ" (IndexScalarQuantizer): the common header, the ScalarQuantizer,
 *     the codes as a FAISS vector of uint8 (ntotal x code_size);
 *   "IwSq" (IndexIVFScalarQuantizer): the common IVF part (ivf_io.c), the
 *     ScalarQuantizer, uint64 code_size, uint8 by_residual, the inverted
 *     lists.  FAISS's older "IwSQ" has no by_residual (always residuals);
 *     the legacy "IvSQ" has neither, and keeps its ids in the IVF header
 *     (ivf_io.c reads that layout).
 *
 * Checks on read: qtype known, rangestat RS_minmax (others are valid FAISS
 * but not implemented), d and code_size agree with the header and the
 * qtype, the trained vector is empty or of the qtype's size, and finite,
 * and present when the index says it is trained.
 */
#include <inttypes.h>
#include <string.h>

#include "io_internal.h"
#include "index/index_sq.h"

int vdx_io_is_index_sq(const vdx_index *ix) { return vdx_is_index_sq(ix); }
int vdx_io_is_ivfsq(const vdx_index *ix) { return vdx_is_ivfsq(ix); }

/* Reads a ScalarQuantizer into sq (initialised here; released on error). */
static vdx_status read_sq(vdx_reader *r, const vdx_io_header *h, vdx_sq *sq) {
    int32_t qtype, rs;
    float arg;
    uint64_t d, cs, nt;
    uint64_t at = r->pos;
    vdx_status s;
    memset(sq, 0, sizeof *sq);
    if ((s = vdx_rd_i32(r, &qtype, "scalar quantizer type")) ||
        (s = vdx_rd_i32(r, &rs, "scalar quantizer range statistic")) ||
        (s = vdx_rd_f32(r, &arg, "scalar quantizer range argument")) ||
        (s = vdx_rd_u64(r, &d, "scalar quantizer d")) ||
        (s = vdx_rd_u64(r, &cs, "scalar quantizer code_size")))
        return s;
    if ((qtype < 0 || qtype >= VDX_QT_COUNT) && !vdx_sq_tqmse_bits(qtype) &&
        qtype != VDX_QT_8BIT_DIRECT_SIGNED)
        return vdx_raise(qtype == 8 ? VDX_ERR_UNSUPPORTED : VDX_ERR_FORMAT,
                         "%s index: scalar quantizer type %d at offset "
                         "%" PRIu64 " is %s",
                         h->fourcc, qtype, at,
                         qtype == 8 ? "QT_8bit_direct_signed, not supported"
                                    : "unknown");
    if (rs != VDX_RS_MINMAX)
        return vdx_raise(rs >= 0 && rs <= 3 ? VDX_ERR_UNSUPPORTED : VDX_ERR_FORMAT,
                         "%s index: scalar quantizer range statistic %d at "
                         "offset %" PRIu64 " is not supported (RS_minmax = 0 "
                         "only)",
                         h->fourcc, rs, at + 4);
    if (d != (uint64_t)h->d)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: scalar quantizer d=%" PRIu64 " at offset "
                         "%" PRIu64 ", the index d=%" PRId64,
                         h->fourcc, d, at + 12, h->d);
    if (cs != vdx_sq_code_bytes(qtype, h->d))
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: scalar quantizer code_size=%" PRIu64
                         " at offset %" PRIu64 ", expected %zu for type %d",
                         h->fourcc, cs, at + 20,
                         vdx_sq_code_bytes(qtype, h->d), qtype);
    uint64_t nt_at = r->pos;
    if ((s = vdx_rd_u64(r, &nt, "scalar quantizer trained size"))) return s;
    uint64_t want = vdx_sq_ntrained(qtype, h->d);
    if (nt != 0 && nt != want)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: %" PRIu64 " trained values at offset "
                         "%" PRIu64 ", expected 0 or %" PRIu64,
                         h->fourcc, nt, nt_at, want);
    if ((s = vdx_rd_need(r, nt * sizeof(float), "trained values"))) return s;
    if (h->is_trained && nt != want)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " says it is trained "
                         "but its scalar quantizer has no trained values",
                         h->fourcc, h->offset);
    if ((s = vdx_sq_init(sq, h->d, qtype))) return s;
    sq->rangestat = rs;
    sq->rangestat_arg = arg;
    if (nt) {
        float *t = vdx_malloc_array((size_t)nt, sizeof(float));
        if (!t) {
            vdx_sq_release(sq);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        uint64_t t_at = r->pos;
        s = vdx_rd_bytes(r, t, nt * sizeof(float), "trained values");
        for (uint64_t i = 0; !s && i < nt; i++) {
            uint32_t u;
            memcpy(&u, &t[i], 4);
            if ((u & 0x7f800000u) == 0x7f800000u)
                s = vdx_raise(VDX_ERR_FORMAT,
                              "%s index: non-finite trained value at offset "
                              "%" PRIu64,
                              h->fourcc, t_at + i * 4);
        }
        if (!s) s = vdx_sq_install(sq, t, (size_t)nt);
        vdx_free(t);
        if (s) {
            vdx_sq_release(sq);
            return s;
        }
    }
    return VDX_OK;
}

static vdx_status write_sq(vdx_writer *w, const vdx_sq *sq) {
    vdx_status s;
    if ((s = vdx_wr_i32(w, sq->qtype)) || (s = vdx_wr_i32(w, sq->rangestat)) ||
        (s = vdx_wr_f32(w, sq->rangestat_arg)) ||
        (s = vdx_wr_u64(w, (uint64_t)sq->d)) ||
        (s = vdx_wr_u64(w, (uint64_t)sq->code_size)) ||
        (s = vdx_wr_u64(w, (uint64_t)sq->ntrained)))
        return s;
    return sq->ntrained ? vdx_wr_bytes(w, sq->trained, sq->ntrained * sizeof(float))
                        : VDX_OK;
}

/* ---- IxSQ ------------------------------------------------------------------ */

vdx_status vdx_io_read_index_sq(vdx_reader *r, vdx_io_header *h,
                                vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    vdx_sq sq;
    if ((s = read_sq(r, h, &sq))) return s;
    uint64_t nbytes;
    if (__builtin_mul_overflow((uint64_t)h->ntotal, (uint64_t)sq.code_size,
                               &nbytes)) {
        vdx_sq_release(&sq);
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 ": ntotal=%" PRId64
                         " codes overflow",
                         h->fourcc, h->offset, h->ntotal);
    }
    if ((s = vdx_rd_vector_count(r, 1, nbytes, "codes"))) {
        vdx_sq_release(&sq);
        return s;
    }
    if (h->ntotal && !h->is_trained) {
        vdx_sq_release(&sq);
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " is not trained but "
                         "holds ntotal=%" PRId64 " codes",
                         h->fourcc, h->offset, h->ntotal);
    }
    vdx_index *ix = NULL;
    if ((s = vdx_index_sq_new(h->d, sq.qtype, metric, &ix))) {
        vdx_sq_release(&sq);
        return s;
    }
    vdx_index_sq *x = (vdx_index_sq *)ix;
    vdx_sq_release(&x->sq);
    x->sq = sq; /* takes the arrays */
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    const uint8_t *mapped = vdx_rd_borrow(r, nbytes, "codes", &s);
    if (s) {
        vdx_index_free(ix);
        return s;
    }
    if (mapped && h->ntotal) {
        x->codes = (uint8_t *)(uintptr_t)mapped;
        x->map = vdx_mapping_ref(r->map);
        x->cap = 0;
        ix->ntotal = h->ntotal;
    } else if (h->ntotal) {
        if ((s = vdx_index_sq_reserve(x, h->ntotal)) ||
            (s = vdx_rd_bytes(r, x->codes, nbytes, "codes"))) {
            vdx_index_free(ix);
            return s;
        }
        ix->ntotal = h->ntotal;
    }
    *out = ix;
    return VDX_OK;
}

vdx_status vdx_io_write_index_sq(vdx_writer *w, const vdx_index *ix) {
    const vdx_index_sq *x = (const vdx_index_sq *)ix;
    vdx_status s = vdx_wr_header(w, "IxSQ", ix);
    if (!s) s = write_sq(w, &x->sq);
    if (s) return s;
    size_t nbytes;
    if (!vdx_mul_ok((size_t)ix->ntotal, x->sq.code_size, &nbytes))
        return vdx_raise(VDX_ERR_INTERNAL, "IxSQ: size overflow");
    if ((s = vdx_wr_u64(w, (uint64_t)nbytes))) return s;
    return nbytes ? vdx_wr_bytes(w, x->codes, nbytes) : VDX_OK;
}

/* ---- IwSq ------------------------------------------------------------------ */

static vdx_status make_ivfsq(vdx_reader *r, const vdx_io_header *h,
                             vdx_index *q, uint64_t nlist, vdx_metric metric,
                             vdx_ivf **out) {
    vdx_sq sq;
    vdx_status s = read_sq(r, h, &sq);
    if (s) return s;
    uint64_t cs, cs_at = r->pos;
    uint8_t byres = 1; /* "IwSQ" and the legacy "IvSQ" imply residuals */
    const int has_byres = strcmp(h->fourcc, "IwSq") == 0;
    if ((s = vdx_rd_u64(r, &cs, "IVF code_size")) ||
        (has_byres && (s = vdx_rd_u8(r, &byres, "by_residual")))) {
        vdx_sq_release(&sq);
        return s;
    }
    if (cs != sq.code_size || byres > 1) {
        vdx_sq_release(&sq);
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: code_size=%" PRIu64 " / by_residual=%u at "
                         "offset %" PRIu64 ", expected %zu / 0 or 1",
                         h->fourcc, cs, byres, cs_at, sq.code_size);
    }
    vdx_ivfsq *x = NULL;
    if ((s = vdx_ivfsq_alloc(q, h->d, (int64_t)nlist, sq.qtype, metric, byres,
                             &x))) {
        vdx_sq_release(&sq);
        return s;
    }
    vdx_sq_release(&x->sq);
    x->sq = sq;
    *out = &x->ivf;
    return VDX_OK;
}

vdx_status vdx_io_read_ivfsq(vdx_reader *r, vdx_io_header *h,
                             vdx_index **out) {
    return vdx_io_read_ivf(r, h, make_ivfsq, out);
}

vdx_status vdx_io_write_ivfsq(vdx_writer *w, const vdx_index *ix) {
    const vdx_ivfsq *x = (const vdx_ivfsq *)ix;
    vdx_status s = vdx_io_write_ivf_head(w, "IwSq", ix);
    if (!s) s = write_sq(w, &x->sq);
    if (!s) s = vdx_wr_u64(w, (uint64_t)x->sq.code_size);
    if (!s) s = vdx_wr_u8(w, (uint8_t)x->by_residual);
    return s ? s : vdx_io_write_ivf_lists(w, &x->ivf);
}
