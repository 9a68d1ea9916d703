/*
 * aq_io.c — the additive-quantizer kinds in FAISS's format.
 *
 * AdditiveQuantizer: uint64 d, uint64 M, a vector of M uint64 nbits,
 *   uint8 is_trained, a vector of float32 codebooks (total_codebook_size x
 *   entry width, empty while untrained), int32 search_type, float32
 *   norm_min, float32 norm_max; for the cqint8 / cqint4 / lsq2x4 / rq2x4
 *   search types the norm quantizer's values (a uint64 count, then the
 *   floats); for lsq2x4 / rq2x4 a vector of float32 norm_tabs.
 * ResidualQuantizer: the AdditiveQuantizer, int32 train_type, int32
 *   max_beam_size.
 * LocalSearchQuantizer: the AdditiveQuantizer, uint64 K, train_iters,
 *   encode_ils_iters, train_ils_iters, icm_iters, float32 p, lambd, uint64
 *   chunk_size, int32 random_seed, uint64 nperts, uint8
 *   update_codebooks_with_double.
 * Product kinds: the AdditiveQuantizer, uint64 nsplits, then nsplits
 *   ResidualQuantizers / LocalSearchQuantizers of dimension d / nsplits.
 *
 * Indexes: "IxRq" / "IxLS" / "IxPR" / "IxPL" (flat codes): the common
 * header, the quantizer, uint64 code_size, a vector of ntotal x code_size
 * uint8 codes.  "ImRQ" (ResidualCoarseQuantizer): the header, the
 * ResidualQuantizer, float32 beam_factor.  "IwRQ" / "IwLS" / "IwPR" /
 * "IwPL" (IVF): the IVF head (ivf_io.c), uint64 code_size, the quantizer,
 * uint8 by_residual, int32 use_precomputed_table, the inverted lists.
 *
 * Checks on read: sizes as the constructors check them (d, M, nbits 1..16,
 * the header's d, search type 0..9, LSQ's K = 2^nbits with equal nbits,
 * nsplits dividing d and M, sub-quantizers agreeing with the product),
 * every count against the bytes that remain before allocating, codebooks
 * empty or of exactly the quantizer's size and present when trained, all
 * floats finite, code_size equal to the quantizer's, the codes' count equal
 * to ntotal x code_size, tunables within sane bounds.  Unlike FAISS
 * (whose reader refuses them), untrained quantizers load.  Derived tables
 * are recomputed, as FAISS does.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io_internal.h"
#include "index/index_aq.h"
#include "quant/fastscan.h"

int vdx_io_is_index_aq(const vdx_index *ix) { return vdx_is_index_aq(ix); }
int vdx_io_is_acq(const vdx_index *ix) {
    return vdx_is_acq(ix) && ((const vdx_acq *)ix)->aq->kind == VDX_AQ_RQ;
}
int vdx_io_is_ivfaq(const vdx_index *ix) { return vdx_is_ivfaq(ix); }

/* a vector of n floats (count then data), allocated; finite */
static vdx_status read_floats(vdx_reader *r, const vdx_io_header *h,
                              uint64_t max, const char *what, float **out,
                              uint64_t *count) {
    uint64_t n, at = r->pos;
    vdx_status s;
    *out = NULL;
    if ((s = vdx_rd_u64(r, &n, what))) return s;
    if (n > max)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: %s at offset %" PRIu64 " holds %" PRIu64
                         " floats, at most %" PRIu64 " expected",
                         h->fourcc, what, at, n, max);
    if ((s = vdx_rd_need(r, n * 4, what))) return s;
    *count = n;
    if (n == 0) return VDX_OK;
    float *v = vdx_malloc_array((size_t)n, sizeof(float));
    if (!v) return VDX_ERR_OUT_OF_MEMORY;
    uint64_t fat = r->pos;
    if ((s = vdx_rd_bytes(r, v, n * 4, what))) {
        vdx_free(v);
        return s;
    }
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            vdx_free(v);
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: non-finite %s value at offset %" PRIu64,
                             h->fourcc, what, fat + i * 4);
        }
    *out = v;
    return VDX_OK;
}

/* The AdditiveQuantizer part into a new quantizer of `kind` and dimension
 * d (entry width ew). */
static vdx_status read_aq_part(vdx_reader *r, const vdx_io_header *h, int kind,
                               int64_t d, int product, vdx_aq **out,
                               uint64_t *ncb_out) {
    uint64_t fd, M, nnb, at = r->pos;
    uint8_t trained;
    int32_t st_;
    float nmin, nmax;
    vdx_status s;
    *out = NULL;
    if ((s = vdx_rd_u64(r, &fd, "AQ d")) || (s = vdx_rd_u64(r, &M, "AQ M")))
        return s;
    if (fd != (uint64_t)d)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: additive quantizer at offset %" PRIu64
                         " has d=%" PRIu64 ", expected %" PRId64,
                         h->fourcc, at, fd, d);
    if (M < 1 || M > VDX_AQ_M_MAX)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: additive quantizer M=%" PRIu64 " at offset "
                         "%" PRIu64 " is out of range 1..%d",
                         h->fourcc, M, at + 8, VDX_AQ_M_MAX);
    uint64_t nb_at = r->pos;
    if ((s = vdx_rd_u64(r, &nnb, "AQ nbits size"))) return s;
    if (nnb != M)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: %" PRIu64 " nbits at offset %" PRIu64
                         " for M=%" PRIu64,
                         h->fourcc, nnb, nb_at, M);
    if ((s = vdx_rd_need(r, M * 8, "AQ nbits"))) return s;
    int *nb = vdx_malloc_array((size_t)M, sizeof(int));
    if (!nb) return VDX_ERR_OUT_OF_MEMORY;
    for (uint64_t m = 0; m < M; m++) {
        uint64_t v;
        uint64_t vat = r->pos;
        vdx_rd_u64(r, &v, "AQ nbits");
        if (v < 1 || v > VDX_AQ_NBITS_MAX) {
            vdx_free(nb);
            return vdx_raise(v >= 1 && v <= 31 ? VDX_ERR_UNSUPPORTED : VDX_ERR_FORMAT,
                             "%s index: nbits=%" PRIu64 " of codebook %" PRIu64
                             " at offset %" PRIu64 " (vecdex handles 1..%d)",
                             h->fourcc, v, m, vat, VDX_AQ_NBITS_MAX);
        }
        nb[m] = (int)v;
    }
    uint64_t t_at = r->pos;
    if ((s = vdx_rd_u8(r, &trained, "AQ is_trained"))) {
        vdx_free(nb);
        return s;
    }
    if (trained > 1) {
        vdx_free(nb);
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: AQ is_trained byte 0x%02x at offset %" PRIu64,
                         h->fourcc, trained, t_at);
    }
    vdx_aq *aq = NULL;
    /* the search type follows the codebooks: built with 0, set below */
    s = vdx_aq_make(kind, d, (int64_t)M, nb, VDX_AQ_ST_DECOMPRESS, &aq);
    vdx_free(nb);
    if (s) return s == VDX_ERR_OUT_OF_MEMORY ? s : vdx_raise(VDX_ERR_FORMAT,
                                                             "%s index: %s", h->fourcc,
                                                             vdx_last_error());
    /* a product's entry width is d / nsplits, nsplits read after this
     * part: its codebook count is checked then */
    uint64_t want = (uint64_t)(aq->total_cb * aq->ew), ncb, cb_at = r->pos;
    float *cb = NULL;
    if ((s = read_floats(r, h, want, "AQ codebooks", &cb, &ncb))) goto fail;
    if (ncb != 0 && (product ? ncb % (uint64_t)aq->total_cb != 0 : ncb != want)) {
        vdx_free(cb);
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: AQ codebooks at offset %" PRIu64 " hold %" PRIu64
                      " floats, expected total_codebook_size x %s = %" PRIu64,
                      h->fourcc, cb_at, ncb, product ? "d / nsplits" : "d",
                      product ? (uint64_t)aq->total_cb : want);
        goto fail;
    }
    if (ncb != 0) {
        /* entries beyond the vectors' bound would make distances overflow
         * (the beam search then finds fewer candidates than it keeps) */
        uint64_t w = product ? ncb / (uint64_t)aq->total_cb : (uint64_t)d;
        if ((s = vdx_io_check_vectors(r, cb, ncb / w, (int64_t)w, 0, cb_at,
                                      "AQ codebook entry"))) {
            vdx_free(cb);
            goto fail;
        }
    }
    if (trained && !cb) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: the additive quantizer at offset %" PRIu64
                      " is trained but has no codebooks",
                      h->fourcc, at);
        goto fail;
    }
    aq->codebooks = cb;
    aq->is_trained = trained;
    if (ncb_out) *ncb_out = ncb;
    uint64_t st_at = r->pos;
    if ((s = vdx_rd_i32(r, &st_, "AQ search_type")) ||
        (s = vdx_rd_f32(r, &nmin, "AQ norm_min")) ||
        (s = vdx_rd_f32(r, &nmax, "AQ norm_max")))
        goto fail;
    if (vdx_aq_norm_bits_of(st_) < 0) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: unknown search type %" PRId32 " at offset %" PRIu64,
                      h->fourcc, st_, st_at);
        goto fail;
    }
    aq->search_type = st_;
    vdx_aq_set_derived(aq);
    aq->norm_min = nmin; /* NaN before training (FAISS's initial value) */
    aq->norm_max = nmax;
    if (st_ == VDX_AQ_ST_NORM_CQINT8 || st_ == VDX_AQ_ST_NORM_CQINT4 ||
        st_ == VDX_AQ_ST_NORM_LSQ2X4 || st_ == VDX_AQ_ST_NORM_RQ2X4) {
        uint64_t nq;
        if ((s = read_floats(r, h, (uint64_t)1 << aq->norm_bits,
                             "norm quantizer values", &aq->qnorm, &nq)))
            goto fail;
        aq->nqnorm = (int64_t)nq;
        if ((s = vdx_aq_norm_index(aq))) goto fail;
    }
    if (st_ == VDX_AQ_ST_NORM_LSQ2X4 || st_ == VDX_AQ_ST_NORM_RQ2X4) {
        uint64_t nt, nt_at = r->pos;
        if ((s = read_floats(r, h, 32, "norm_tabs", &aq->norm_tabs, &nt))) goto fail;
        if (nt != 0 && nt != 32) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: norm_tabs at offset %" PRIu64 " hold %" PRIu64
                          " floats, expected 32",
                          h->fourcc, nt_at, nt);
            goto fail;
        }
        aq->nnorm_tabs = (int64_t)nt;
    }
    *out = aq;
    return VDX_OK;
fail:
    vdx_aq_destroy(aq);
    return s;
}

static vdx_status read_rq_tail(vdx_reader *r, const vdx_io_header *h,
                               vdx_aq *aq) {
    int32_t tt, mb;
    uint64_t at = r->pos;
    vdx_status s;
    if ((s = vdx_rd_i32(r, &tt, "RQ train_type")) ||
        (s = vdx_rd_i32(r, &mb, "RQ max_beam_size")))
        return s;
    if (mb < 1 || mb > (1 << 20))
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: max_beam_size=%" PRId32 " at offset %" PRIu64
                         " is out of range 1..2^20",
                         h->fourcc, mb, at + 4);
    aq->train_type = tt;
    aq->max_beam_size = mb;
    if (aq->codebooks && !aq->centroid_norms && !(tt & VDX_RQ_SKIP_CODEBOOK_TABLES))
        return vdx_aq_compute_tables(aq);
    return VDX_OK;
}

static vdx_status read_lsq_tail(vdx_reader *r, const vdx_io_header *h,
                                vdx_aq *aq) {
    uint64_t K, ti, ei, tli, ii, cs, np, at = r->pos;
    float p, lambd;
    int32_t seed;
    uint8_t dbl;
    vdx_status s;
    if ((s = vdx_rd_u64(r, &K, "LSQ K")) || (s = vdx_rd_u64(r, &ti, "LSQ train_iters")) ||
        (s = vdx_rd_u64(r, &ei, "LSQ encode_ils_iters")) ||
        (s = vdx_rd_u64(r, &tli, "LSQ train_ils_iters")) ||
        (s = vdx_rd_u64(r, &ii, "LSQ icm_iters")) || (s = vdx_rd_f32(r, &p, "LSQ p")) ||
        (s = vdx_rd_f32(r, &lambd, "LSQ lambd")) ||
        (s = vdx_rd_u64(r, &cs, "LSQ chunk_size")) ||
        (s = vdx_rd_i32(r, &seed, "LSQ random_seed")) ||
        (s = vdx_rd_u64(r, &np, "LSQ nperts")) ||
        (s = vdx_rd_u8(r, &dbl, "LSQ update_codebooks_with_double")))
        return s;
    for (int64_t m = 1; m < aq->M; m++)
        if (aq->nbits[m] != aq->nbits[0])
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: LocalSearchQuantizer with unequal nbits "
                             "(%d and %d)",
                             h->fourcc, aq->nbits[0], aq->nbits[m]);
    if (K != (uint64_t)1 << aq->nbits[0])
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: LSQ K=%" PRIu64 " at offset %" PRIu64
                         ", expected 2^nbits = %lld",
                         h->fourcc, K, at, (long long)1 << aq->nbits[0]);
    const uint64_t lim = (uint64_t)1 << 24;
    if (ti > lim || ei > lim || tli > lim || ii > lim || np > lim ||
        cs > ((uint64_t)1 << 40) || !isfinite(p) || !isfinite(lambd) || lambd < 0 ||
        dbl > 1)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: LSQ settings at offset %" PRIu64 " out of "
                         "range (iterations and nperts at most 2^24, p and "
                         "lambd finite, lambd >= 0, a 0/1 flag)",
                         h->fourcc, at);
    aq->K = (int64_t)K;
    aq->train_iters = (int64_t)ti;
    aq->encode_ils_iters = (int64_t)ei;
    aq->train_ils_iters = (int64_t)tli;
    aq->icm_iters = (int64_t)ii;
    aq->p = p;
    aq->lambd = lambd;
    aq->chunk_size = (int64_t)cs;
    aq->random_seed = seed;
    aq->nperts = (int64_t)np;
    aq->update_codebooks_with_double = dbl;
    return VDX_OK;
}

static vdx_status read_quantizer_parts(vdx_reader *r, const vdx_io_header *h,
                                       int kind, int64_t d, vdx_aq **out);

/* A whole quantizer of `kind` (RQ, LSQ, PRQ, PLSQ), dimension d.
 * ST_norm_from_LUT searches with the codebook tables, which files do not
 * hold: they are built here whatever train_type says (an RQ's
 * Skip_codebook_tables spares them only where nothing needs them). */
static vdx_status read_quantizer(vdx_reader *r, const vdx_io_header *h,
                                 int kind, int64_t d, vdx_aq **out) {
    vdx_status s = read_quantizer_parts(r, h, kind, d, out);
    vdx_aq *aq = *out;
    if (!s && aq->search_type == VDX_AQ_ST_NORM_FROM_LUT && aq->codebooks &&
        !aq->centroid_norms && (s = vdx_aq_compute_tables(aq))) {
        vdx_aq_destroy(aq);
        *out = NULL;
    }
    return s;
}

static vdx_status read_quantizer_parts(vdx_reader *r, const vdx_io_header *h,
                                       int kind, int64_t d, vdx_aq **out) {
    vdx_status s;
    *out = NULL;
    if (kind == VDX_AQ_RQ || kind == VDX_AQ_LSQ) {
        vdx_aq *aq = NULL;
        if ((s = read_aq_part(r, h, kind, d, 0, &aq, NULL))) return s;
        s = kind == VDX_AQ_RQ ? read_rq_tail(r, h, aq) : read_lsq_tail(r, h, aq);
        if (s) {
            vdx_aq_destroy(aq);
            return s;
        }
        *out = aq;
        return VDX_OK;
    }
    /* product: the AQ part, nsplits, then the sub-quantizers */
    vdx_aq *probe = NULL;
    uint64_t ncb = 0;
    if ((s = read_aq_part(r, h, kind, d, 1, &probe, &ncb))) return s;
    uint64_t ns, ns_at = r->pos;
    if ((s = vdx_rd_u64(r, &ns, "nsplits"))) goto fail_probe;
    if (ns < 1 || (uint64_t)d % ns != 0 || (uint64_t)probe->M % ns != 0) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: nsplits=%" PRIu64 " at offset %" PRIu64
                      " must be >= 1 and divide d=%" PRId64 " and M=%lld",
                      h->fourcc, ns, ns_at, d, (long long)probe->M);
        goto fail_probe;
    }
    probe->nsplits = (int64_t)ns;
    probe->ew = d / (int64_t)ns;
    vdx_aq_set_derived(probe);
    if (probe->codebooks && ncb != (uint64_t)(probe->total_cb * probe->ew)) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: the product's codebooks hold %" PRIu64
                      " floats, expected total_codebook_size x d / nsplits = %lld",
                      h->fourcc, ncb, (long long)(probe->total_cb * probe->ew));
        goto fail_probe;
    }
    probe->sub = vdx_calloc((size_t)ns, sizeof(vdx_aq *));
    if (!probe->sub) {
        s = VDX_ERR_OUT_OF_MEMORY;
        goto fail_probe;
    }
    const int64_t per = probe->M / (int64_t)ns;
    for (uint64_t sp = 0; sp < ns; sp++) {
        uint64_t sat = r->pos;
        vdx_aq *sub = NULL;
        s = read_quantizer(r, h, kind == VDX_AQ_PRQ ? VDX_AQ_RQ : VDX_AQ_LSQ,
                           d / (int64_t)ns, &sub);
        if (!s && sub->M != per) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: sub-quantizer %" PRIu64 " at offset %" PRIu64
                          " has M=%lld, expected %lld",
                          h->fourcc, sp, sat, (long long)sub->M, (long long)per);
        }
        for (int64_t m = 0; !s && m < per; m++)
            if (sub->nbits[m] != probe->nbits[(int64_t)sp * per + m])
                s = vdx_raise(VDX_ERR_FORMAT,
                              "%s index: sub-quantizer %" PRIu64 " at offset %" PRIu64
                              " disagrees with the product's nbits",
                              h->fourcc, sp, sat);
        if (s) {
            vdx_aq_destroy(sub);
            goto fail_probe;
        }
        probe->sub[sp] = sub;
    }
    *out = probe;
    return VDX_OK;
fail_probe:
    vdx_aq_destroy(probe);
    return s;
}

static vdx_status write_aq_part(vdx_writer *w, const vdx_aq *aq) {
    vdx_status s;
    if ((s = vdx_wr_u64(w, (uint64_t)aq->d)) || (s = vdx_wr_u64(w, (uint64_t)aq->M)) ||
        (s = vdx_wr_u64(w, (uint64_t)aq->M)))
        return s;
    for (int64_t m = 0; m < aq->M; m++)
        if ((s = vdx_wr_u64(w, (uint64_t)aq->nbits[m]))) return s;
    uint64_t ncb = aq->codebooks ? (uint64_t)(aq->total_cb * aq->ew) : 0;
    if ((s = vdx_wr_u8(w, (uint8_t)aq->is_trained)) || (s = vdx_wr_u64(w, ncb)) ||
        (ncb && (s = vdx_wr_bytes(w, aq->codebooks, (size_t)ncb * 4))) ||
        (s = vdx_wr_i32(w, aq->search_type)) || (s = vdx_wr_f32(w, aq->norm_min)) ||
        (s = vdx_wr_f32(w, aq->norm_max)))
        return s;
    const int st_ = aq->search_type;
    if (st_ == VDX_AQ_ST_NORM_CQINT8 || st_ == VDX_AQ_ST_NORM_CQINT4 ||
        st_ == VDX_AQ_ST_NORM_LSQ2X4 || st_ == VDX_AQ_ST_NORM_RQ2X4) {
        uint64_t nq = aq->qnorm ? (uint64_t)aq->nqnorm : 0;
        if ((s = vdx_wr_u64(w, nq)) || (nq && (s = vdx_wr_bytes(w, aq->qnorm, nq * 4))))
            return s;
    }
    if (st_ == VDX_AQ_ST_NORM_LSQ2X4 || st_ == VDX_AQ_ST_NORM_RQ2X4) {
        uint64_t nt = aq->norm_tabs ? (uint64_t)aq->nnorm_tabs : 0;
        if ((s = vdx_wr_u64(w, nt)) ||
            (nt && (s = vdx_wr_bytes(w, aq->norm_tabs, nt * 4))))
            return s;
    }
    return VDX_OK;
}

static vdx_status write_quantizer(vdx_writer *w, const vdx_aq *aq) {
    vdx_status s = write_aq_part(w, aq);
    if (s) return s;
    switch (aq->kind) {
    case VDX_AQ_RQ:
        if ((s = vdx_wr_i32(w, aq->train_type))) return s;
        return vdx_wr_i32(w, aq->max_beam_size);
    case VDX_AQ_LSQ:
        if ((s = vdx_wr_u64(w, (uint64_t)aq->K)) ||
            (s = vdx_wr_u64(w, (uint64_t)aq->train_iters)) ||
            (s = vdx_wr_u64(w, (uint64_t)aq->encode_ils_iters)) ||
            (s = vdx_wr_u64(w, (uint64_t)aq->train_ils_iters)) ||
            (s = vdx_wr_u64(w, (uint64_t)aq->icm_iters)) || (s = vdx_wr_f32(w, aq->p)) ||
            (s = vdx_wr_f32(w, aq->lambd)) ||
            (s = vdx_wr_u64(w, (uint64_t)aq->chunk_size)) ||
            (s = vdx_wr_i32(w, aq->random_seed)) ||
            (s = vdx_wr_u64(w, (uint64_t)aq->nperts)))
            return s;
        return vdx_wr_u8(w, (uint8_t)aq->update_codebooks_with_double);
    default:
        if ((s = vdx_wr_u64(w, (uint64_t)aq->nsplits))) return s;
        for (int64_t sp = 0; sp < aq->nsplits; sp++)
            if ((s = write_quantizer(w, aq->sub[sp]))) return s;
        return VDX_OK;
    }
}

static int kind_of(const char *fourcc) {
    switch (fourcc[3]) {
    case 'q': case 'Q': return VDX_AQ_RQ;
    case 'S': return VDX_AQ_LSQ;
    case 'R': return VDX_AQ_PRQ;
    default: return VDX_AQ_PLSQ;
    }
}

/* ---- IndexResidualQuantizer and friends --------------------------------- */

vdx_status vdx_io_read_index_aq(vdx_reader *r, vdx_io_header *h,
                                vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    if (!h->is_trained && h->ntotal != 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " is not trained but "
                         "holds ntotal=%" PRId64 " vectors",
                         h->fourcc, h->offset, h->ntotal);
    vdx_aq *aq = NULL;
    if ((s = read_quantizer(r, h, kind_of(h->fourcc), h->d, &aq))) return s;
    vdx_index *ix = NULL;
    uint64_t cs, ncodes, cs_at = r->pos;
    if ((s = vdx_rd_u64(r, &cs, "code_size"))) goto fail_aq;
    if (cs != aq->code_size) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: code_size=%" PRIu64 " at offset %" PRIu64
                      ", the quantizer's is %zu",
                      h->fourcc, cs, cs_at, aq->code_size);
        goto fail_aq;
    }
    if (h->is_trained && !aq->is_trained) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 " is trained, its quantizer not",
                      h->fourcc, h->offset);
        goto fail_aq;
    }
    if (__builtin_mul_overflow((uint64_t)h->ntotal, cs, &ncodes)) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index: ntotal=%" PRId64 " codes overflow",
                      h->fourcc, h->ntotal);
        goto fail_aq;
    }
    if ((s = vdx_rd_vector_count(r, 1, ncodes, "codes"))) goto fail_aq;
    if ((s = vdx_index_aq_new(aq, metric, &ix))) goto fail_aq;
    vdx_aqi *p = (vdx_aqi *)ix;
    if ((s = vdx_index_aq_reserve(p, h->ntotal))) goto fail;
    if ((s = vdx_rd_bytes(r, p->codes, ncodes, "codes"))) goto fail;
    ix->ntotal = h->ntotal;
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    *out = ix;
    return VDX_OK;
fail_aq:
    vdx_aq_destroy(aq);
    return s;
fail:
    vdx_index_free(ix);
    return s;
}

vdx_status vdx_io_write_index_aq(vdx_writer *w, const vdx_index *ix) {
    const vdx_aqi *p = (const vdx_aqi *)ix;
    static const char *cc[4] = {"IxRq", "IxLS", "IxPR", "IxPL"};
    vdx_status s = vdx_wr_header(w, cc[p->aq->kind], ix);
    if (s || (s = write_quantizer(w, p->aq))) return s;
    uint64_t n = (uint64_t)ix->ntotal * p->aq->code_size;
    if ((s = vdx_wr_u64(w, p->aq->code_size)) || (s = vdx_wr_u64(w, n))) return s;
    return n ? vdx_wr_bytes(w, p->codes, (size_t)n) : VDX_OK;
}

/* ---- ResidualCoarseQuantizer ---------------------------------------------- */

vdx_status vdx_io_read_rcq(vdx_reader *r, vdx_io_header *h, vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    vdx_aq *aq = NULL;
    if ((s = read_quantizer(r, h, VDX_AQ_RQ, h->d, &aq))) return s;
    float bf;
    uint64_t bf_at = r->pos;
    vdx_index *ix = NULL;
    if ((s = vdx_rd_f32(r, &bf, "beam_factor"))) goto fail_aq;
    int64_t bits = aq->tot_bits - aq->norm_bits;
    if (!isfinite(bf) || bf > 1000.0f || (bf >= 0 && bf < 1 && bf != 0)) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: beam_factor=%g at offset %" PRIu64
                      " (expected < 0, 0 or 1..1000)",
                      h->fourcc, (double)bf, bf_at);
        goto fail_aq;
    }
    if (bits > 30 || (h->is_trained && h->ntotal != (int64_t)1 << bits) ||
        (!h->is_trained && h->ntotal != 0) || (h->is_trained && !aq->is_trained)) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 ": ntotal=%" PRId64
                      " is inconsistent with 2^tot_bits (tot_bits=%lld, at most "
                      "30) or the training state",
                      h->fourcc, h->offset, h->ntotal, (long long)bits);
        goto fail_aq;
    }
    if ((s = vdx_index_additive_coarse_new(aq, metric, &ix))) goto fail_aq;
    vdx_acq *q = (vdx_acq *)ix;
    ix->is_trained = h->is_trained;
    ix->ntotal = h->ntotal;
    ix->metric_arg = h->metric_arg;
    q->beam_factor = bf;
    if (bf <= 0 && metric == VDX_METRIC_L2 && h->is_trained &&
        (s = vdx_acq_norms(q))) {
        vdx_index_free(ix);
        return s;
    }
    *out = ix;
    return VDX_OK;
fail_aq:
    vdx_aq_destroy(aq);
    return s;
}

vdx_status vdx_io_write_rcq(vdx_writer *w, const vdx_index *ix) {
    const vdx_acq *q = (const vdx_acq *)ix;
    vdx_status s = vdx_wr_header(w, "ImRQ", ix);
    if (s || (s = write_quantizer(w, q->aq))) return s;
    return vdx_wr_f32(w, q->beam_factor);
}

/* ---- IVF ------------------------------------------------------------------ */

static vdx_status make_ivfaq(vdx_reader *r, const vdx_io_header *h,
                             vdx_index *q, uint64_t nlist, vdx_metric metric,
                             vdx_ivf **out) {
    uint64_t cs, cs_at = r->pos;
    vdx_status s;
    if ((s = vdx_rd_u64(r, &cs, "IVF code_size"))) return s;
    vdx_aq *aq = NULL;
    if ((s = read_quantizer(r, h, kind_of(h->fourcc), h->d, &aq))) return s;
    uint8_t br;
    int32_t upt;
    uint64_t br_at = r->pos;
    if ((s = vdx_rd_u8(r, &br, "by_residual")) ||
        (s = vdx_rd_i32(r, &upt, "use_precomputed_table")))
        goto fail;
    if (cs != aq->code_size || br > 1) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: code_size=%" PRIu64 " at offset %" PRIu64
                      " (the quantizer's is %zu) or by_residual=%u at offset "
                      "%" PRIu64,
                      h->fourcc, cs, cs_at, aq->code_size, br, br_at);
        goto fail;
    }
    if (h->is_trained && !aq->is_trained) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 " is trained, its quantizer not",
                      h->fourcc, h->offset);
        goto fail;
    }
    vdx_index *ix = NULL;
    if ((s = vdx_index_ivf_aq_new(q, (int64_t)nlist, aq, metric, &ix))) goto fail;
    vdx_ivfaq *p = (vdx_ivfaq *)(void *)ix;
    p->by_residual = br;
    p->use_precomputed_table = upt;
    *out = &p->ivf;
    return VDX_OK;
fail:
    vdx_aq_destroy(aq);
    return s;
}

vdx_status vdx_io_read_ivfaq(vdx_reader *r, vdx_io_header *h, vdx_index **out) {
    return vdx_io_read_ivf(r, h, make_ivfaq, out);
}

vdx_status vdx_io_write_ivfaq(vdx_writer *w, const vdx_index *ix) {
    const vdx_ivfaq *p = (const vdx_ivfaq *)(const void *)ix;
    static const char *cc[4] = {"IwRQ", "IwLS", "IwPR", "IwPL"};
    vdx_status s = vdx_io_write_ivf_head(w, cc[p->aq->kind], ix);
    if (s || (s = vdx_wr_u64(w, p->aq->code_size)) ||
        (s = write_quantizer(w, p->aq)) || (s = vdx_wr_u8(w, (uint8_t)p->by_residual)) ||
        (s = vdx_wr_i32(w, p->use_precomputed_table)))
        return s;
    return vdx_io_write_ivf_lists(w, &p->ivf);
}

/* ---- the fast-scan kinds ------------------------------------------------ */
/*
 * "IRfs" / "ILfs" / "IPRf" / "IPLf": the common header, the quantizer,
 * int32 implem, bbs, qbs, uint64 M (4-bit indices per code: the
 * quantizer's M, + 2 for L2's norm), nbits (4), ksub (16), code_size,
 * ntotal2 (ntotal rounded up to bbs), M2 (M rounded up to even), uint8
 * rescale_norm, int32 norm_scale, uint64 max_train_points, a vector of
 * ntotal2 x M2 / 2 packed code bytes (quant/fastscan.h).
 */
int vdx_io_is_aqfs(const vdx_index *ix) { return vdx_is_aqfs(ix); }

static int fs_kind_of(const char *fourcc) {
    if (!strcmp(fourcc, "IRfs")) return VDX_AQ_RQ;
    if (!strcmp(fourcc, "ILfs")) return VDX_AQ_LSQ;
    if (!strcmp(fourcc, "IPRf")) return VDX_AQ_PRQ;
    return VDX_AQ_PLSQ;
}

vdx_status vdx_io_read_aqfs(vdx_reader *r, vdx_io_header *h, vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    if (!h->is_trained && h->ntotal != 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " is not trained but "
                         "holds ntotal=%" PRId64 " vectors",
                         h->fourcc, h->offset, h->ntotal);
    vdx_aq *aq = NULL;
    uint64_t q_at = r->pos;
    if ((s = read_quantizer(r, h, fs_kind_of(h->fourcc), h->d, &aq))) return s;
    vdx_index *ix = NULL;
    int32_t implem, bbs, qbs, norm_scale;
    uint64_t M, nbits, ksub, cs, ntotal2, M2, mtp, f_at = r->pos;
    uint8_t rescale;
    if ((s = vdx_rd_i32(r, &implem, "fast-scan implem")) ||
        (s = vdx_rd_i32(r, &bbs, "fast-scan bbs")) ||
        (s = vdx_rd_i32(r, &qbs, "fast-scan qbs")) ||
        (s = vdx_rd_u64(r, &M, "fast-scan M")) ||
        (s = vdx_rd_u64(r, &nbits, "fast-scan nbits")) ||
        (s = vdx_rd_u64(r, &ksub, "fast-scan ksub")) ||
        (s = vdx_rd_u64(r, &cs, "fast-scan code_size")) ||
        (s = vdx_rd_u64(r, &ntotal2, "fast-scan ntotal2")) ||
        (s = vdx_rd_u64(r, &M2, "fast-scan M2")) ||
        (s = vdx_rd_u8(r, &rescale, "rescale_norm")) ||
        (s = vdx_rd_i32(r, &norm_scale, "norm_scale")) ||
        (s = vdx_rd_u64(r, &mtp, "max_train_points")))
        goto fail_aq;
    if (bbs < 32 || bbs % 32 != 0 || bbs > VDX_FS_BBS_MAX || qbs < 0) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: bbs=%d, qbs=%d at offset %" PRIu64 " (bbs must be "
                      "a multiple of 32 in 32..%d, qbs >= 0)",
                      h->fourcc, (int)bbs, (int)qbs, f_at + 4, VDX_FS_BBS_MAX);
        goto fail_aq;
    }
    if ((s = vdx_index_aq_fastscan_new(aq, metric, bbs, &ix))) {
        char why[256];
        snprintf(why, sizeof why, "%s", vdx_last_error());
        s = vdx_raise(VDX_ERR_FORMAT, "%s index: the quantizer at offset %" PRIu64
                      " does not fit fast scan: %s",
                      h->fourcc, q_at, why);
        goto fail_aq;
    }
    vdx_aqfs *p = (vdx_aqfs *)(void *)ix;
    uint64_t want2 = ((uint64_t)h->ntotal + (uint64_t)bbs - 1) /
                     (uint64_t)bbs * (uint64_t)bbs;
    if (M != (uint64_t)p->Mfs || nbits != 4 || ksub != 16 ||
        cs != (uint64_t)(p->Mfs * 4 + 7) / 8 || M2 != (uint64_t)p->nsq ||
        ntotal2 != want2) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 ": M=%" PRIu64 " nbits=%" PRIu64
                      " ksub=%" PRIu64 " code_size=%" PRIu64 " ntotal2=%" PRIu64
                      " M2=%" PRIu64 " (expected %lld, 4, 16, %lld, %" PRIu64
                      ", %lld)",
                      h->fourcc, f_at, M, nbits, ksub, cs, ntotal2, M2,
                      (long long)p->Mfs, (long long)(p->Mfs * 4 + 7) / 8, want2,
                      (long long)p->nsq);
        goto fail;
    }
    if (rescale > 1 || norm_scale < 1 || norm_scale > (1 << 20)) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: rescale_norm=%u, norm_scale=%d (expected 0 or "
                      "1, and 1..%d)",
                      h->fourcc, (unsigned)rescale, (int)norm_scale, 1 << 20);
        goto fail;
    }
    if (h->is_trained && !aq->is_trained) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 " is trained, its quantizer not",
                      h->fourcc, h->offset);
        goto fail;
    }
    uint64_t nbytes = ntotal2 * (M2 / 2);
    if ((s = vdx_rd_vector_count(r, 1, nbytes, "fast-scan codes"))) goto fail;
    if ((s = vdx_aqfs_reserve(p, (int64_t)ntotal2))) goto fail;
    if (nbytes && (s = vdx_rd_bytes(r, p->codes, nbytes, "fast-scan codes")))
        goto fail;
    /* slots past ntotal must read as zero codes, as freshly added blocks */
    for (int64_t i = h->ntotal; i < (int64_t)ntotal2; i++)
        for (int64_t m = 0; m < p->nsq; m++)
            vdx_fs_set(p->codes, p->bbs, p->nsq, i, m, 0);
    p->implem = implem;
    p->qbs = qbs;
    p->rescale_norm = rescale;
    p->norm_scale = norm_scale;
    p->max_train_points = mtp;
    ix->ntotal = h->ntotal;
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    *out = ix;
    return VDX_OK;
fail_aq:
    vdx_aq_destroy(aq);
    return s;
fail:
    vdx_index_free(ix);
    return s;
}

vdx_status vdx_io_write_aqfs(vdx_writer *w, const vdx_index *ix) {
    const vdx_aqfs *p = (const vdx_aqfs *)(const void *)ix;
    static const char *cc[4] = {"IRfs", "ILfs", "IPRf", "IPLf"};
    vdx_status s = vdx_wr_header(w, cc[p->aq->kind], ix);
    if (s || (s = write_quantizer(w, p->aq))) return s;
    uint64_t ntotal2 = ((uint64_t)ix->ntotal + (uint64_t)p->bbs - 1) /
                       (uint64_t)p->bbs * (uint64_t)p->bbs;
    uint64_t nbytes = ntotal2 * (uint64_t)(p->nsq / 2);
    if ((s = vdx_wr_i32(w, p->implem)) || (s = vdx_wr_i32(w, (int32_t)p->bbs)) ||
        (s = vdx_wr_i32(w, p->qbs)) || (s = vdx_wr_u64(w, (uint64_t)p->Mfs)) ||
        (s = vdx_wr_u64(w, 4)) || (s = vdx_wr_u64(w, 16)) ||
        (s = vdx_wr_u64(w, (uint64_t)(p->Mfs * 4 + 7) / 8)) ||
        (s = vdx_wr_u64(w, ntotal2)) || (s = vdx_wr_u64(w, (uint64_t)p->nsq)) ||
        (s = vdx_wr_u8(w, (uint8_t)(p->rescale_norm != 0))) ||
        (s = vdx_wr_i32(w, p->norm_scale)) || (s = vdx_wr_u64(w, p->max_train_points)) ||
        (s = vdx_wr_u64(w, nbytes)))
        return s;
    return nbytes ? vdx_wr_bytes(w, p->codes, (size_t)nbytes) : VDX_OK;
}

/* ---- the IVF fast-scan kinds -------------------------------------------- */
/*
 * "IVRf" / "IVLf" / "NPRf" / "NPLf": the IVF head (ivf_io.c), the
 * quantizer, uint8 by_residual, int32 implem, bbs, qbs, uint64 M (4-bit
 * indices per code: the quantizer's M, + 2 for L2's norm), nbits (4), ksub
 * (16), code_size (M2 / 2), qbs2, M2 (M rounded up to even), uint8
 * rescale_norm, int32 norm_scale, uint64 max_train_points, then the lists
 * as FAISS's BlockInvertedLists ("ilbl", fastscan_io.c), kept flat here.
 */
int vdx_io_is_ivfaqfs(const vdx_index *ix) { return vdx_is_ivfaqfs(ix); }

int vdx_io_block_layout(const vdx_ivf *ivf, int64_t *M, int64_t *nsq,
                        int64_t *bbs, size_t *code_size) {
    if (!vdx_is_ivfaqfs(&ivf->base)) return 0;
    const vdx_ivfaqfs *p = (const vdx_ivfaqfs *)(const void *)ivf;
    *M = p->Mfs;
    *nsq = p->nsq;
    *bbs = p->bbs;
    *code_size = p->aq->code_size;
    return 1;
}

static int ivfs_kind_of(const char *fourcc) {
    if (!strcmp(fourcc, "IVRf")) return VDX_AQ_RQ;
    if (!strcmp(fourcc, "IVLf")) return VDX_AQ_LSQ;
    if (!strcmp(fourcc, "NPRf")) return VDX_AQ_PRQ;
    return VDX_AQ_PLSQ;
}

static vdx_status make_ivfaqfs(vdx_reader *r, const vdx_io_header *h,
                               vdx_index *q, uint64_t nlist, vdx_metric metric,
                               vdx_ivf **out) {
    vdx_aq *aq = NULL;
    uint64_t q_at = r->pos;
    vdx_status s = read_quantizer(r, h, ivfs_kind_of(h->fourcc), h->d, &aq);
    if (s) return s;
    uint8_t br, rescale;
    int32_t implem, bbs, qbs, norm_scale;
    uint64_t M, nbits, ksub, cs, qbs2, M2, mtp, f_at = r->pos;
    if ((s = vdx_rd_u8(r, &br, "by_residual")) ||
        (s = vdx_rd_i32(r, &implem, "fast-scan implem")) ||
        (s = vdx_rd_i32(r, &bbs, "fast-scan bbs")) ||
        (s = vdx_rd_i32(r, &qbs, "fast-scan qbs")) ||
        (s = vdx_rd_u64(r, &M, "fast-scan M")) ||
        (s = vdx_rd_u64(r, &nbits, "fast-scan nbits")) ||
        (s = vdx_rd_u64(r, &ksub, "fast-scan ksub")) ||
        (s = vdx_rd_u64(r, &cs, "fast-scan code_size")) ||
        (s = vdx_rd_u64(r, &qbs2, "fast-scan qbs2")) ||
        (s = vdx_rd_u64(r, &M2, "fast-scan M2")) ||
        (s = vdx_rd_u8(r, &rescale, "rescale_norm")) ||
        (s = vdx_rd_i32(r, &norm_scale, "norm_scale")) ||
        (s = vdx_rd_u64(r, &mtp, "max_train_points")))
        goto fail_aq;
    if (br > 1 || bbs < 32 || bbs % 32 != 0 || bbs > VDX_FS_BBS_MAX || qbs < 0) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: by_residual=%u, bbs=%d, qbs=%d at offset %" PRIu64
                      " (expected a bool, a multiple of 32 in 32..%d, >= 0)",
                      h->fourcc, (unsigned)br, (int)bbs, (int)qbs, f_at,
                      VDX_FS_BBS_MAX);
        goto fail_aq;
    }
    vdx_ivfaqfs *p = NULL;
    if ((s = vdx_ivfaqfs_alloc(q, (int64_t)nlist, aq, metric, bbs, &p))) {
        char why[256];
        snprintf(why, sizeof why, "%s", vdx_last_error());
        s = vdx_raise(s == VDX_ERR_OUT_OF_MEMORY ? s : VDX_ERR_FORMAT,
                      "%s index: the quantizer at offset %" PRIu64
                      " does not fit fast scan: %s",
                      h->fourcc, q_at, why);
        goto fail_aq;
    }
    if (M != (uint64_t)p->Mfs || nbits != 4 || ksub != 16 ||
        cs != (uint64_t)p->nsq / 2 || cs != aq->code_size ||
        M2 != (uint64_t)p->nsq) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 ": M=%" PRIu64 " nbits=%" PRIu64
                      " ksub=%" PRIu64 " code_size=%" PRIu64 " M2=%" PRIu64
                      " (expected %lld, 4, 16, %lld, %lld)",
                      h->fourcc, f_at, M, nbits, ksub, cs, M2, (long long)p->Mfs,
                      (long long)p->nsq / 2, (long long)p->nsq);
        goto fail;
    }
    if (rescale > 1 || norm_scale < 1 || norm_scale > (1 << 20)) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: rescale_norm=%u, norm_scale=%d (expected 0 or "
                      "1, and 1..%d)",
                      h->fourcc, (unsigned)rescale, (int)norm_scale, 1 << 20);
        goto fail;
    }
    if (h->is_trained && !aq->is_trained) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 " is trained, its quantizer not",
                      h->fourcc, h->offset);
        goto fail;
    }
    p->by_residual = br;
    p->implem = implem;
    p->qbs = qbs;
    p->qbs2 = qbs2;
    p->rescale_norm = rescale;
    p->norm_scale = norm_scale;
    p->max_train_points = mtp;
    *out = &p->ivf;
    return VDX_OK;
fail_aq:
    vdx_aq_destroy(aq);
    return s;
fail:
    p->ivf.quantizer = NULL; /* still the caller's on failure */
    vdx_index_free(&p->ivf.base);
    return s;
}

vdx_status vdx_io_read_ivfaqfs(vdx_reader *r, vdx_io_header *h, vdx_index **out) {
    return vdx_io_read_ivf(r, h, make_ivfaqfs, out);
}

vdx_status vdx_io_write_ivfaqfs(vdx_writer *w, const vdx_index *ix) {
    const vdx_ivfaqfs *p = (const vdx_ivfaqfs *)(const void *)ix;
    static const char *cc[4] = {"IVRf", "IVLf", "NPRf", "NPLf"};
    vdx_status s = vdx_io_write_ivf_head(w, cc[p->aq->kind], ix);
    if (s || (s = write_quantizer(w, p->aq)) ||
        (s = vdx_wr_u8(w, (uint8_t)(p->by_residual != 0))) ||
        (s = vdx_wr_i32(w, p->implem)) || (s = vdx_wr_i32(w, (int32_t)p->bbs)) ||
        (s = vdx_wr_i32(w, p->qbs)) || (s = vdx_wr_u64(w, (uint64_t)p->Mfs)) ||
        (s = vdx_wr_u64(w, 4)) || (s = vdx_wr_u64(w, 16)) ||
        (s = vdx_wr_u64(w, (uint64_t)p->nsq / 2)) || (s = vdx_wr_u64(w, p->qbs2)) ||
        (s = vdx_wr_u64(w, (uint64_t)p->nsq)) ||
        (s = vdx_wr_u8(w, (uint8_t)(p->rescale_norm != 0))) ||
        (s = vdx_wr_i32(w, p->norm_scale)) || (s = vdx_wr_u64(w, p->max_train_points)))
        return s;
    return vdx_io_write_block_lists(w, &p->ivf, p->Mfs, p->nsq, p->bbs);
}
