/*
 * sa_codec.c — every index as a standalone codec (FAISS's sa_code_size,
 * sa_encode, sa_decode, add_sa_codes): the bytes a vector is stored as,
 * without adding it.  Layouts are FAISS's, so codes are interchangeable:
 *
 *   - flat-code kinds: the stored code (IndexFlat: the float32 bytes; PQ,
 *     SQ, LSH: their codes; LSH decodes each bit b to 2b - 1, plus the
 *     threshold, then the rotation reversed);
 *   - IVF kinds: the list number on ceil(log256(nlist)) bytes, little
 *     endian, then the list code (FAISS's encode_vectors with
 *     include_listnos);
 *   - IndexPreTransform: the sub-index's code of the transformed vector;
 *     decoding reverses the chain;
 *   - IndexRefine: the base code followed by the refine code; decoding
 *     reads the refine part (the more precise one);
 *   - the flat additive-quantizer kinds (index_aq.c).
 *
 * add_sa_codes appends such codes to a flat-code kind or an IVF (then with
 * the caller's ids), and to an IDMap over either with its ids.
 */
#include <string.h>

#include "index_aq.h"
#include "index_internal.h"
#include "index_lsh.h"
#include "index_pq.h"
#include "index_sq.h"
#include "pretransform.h"
#include "quant/pq.h"
#include "quant/transform.h"

/* Bytes of the list number (FAISS's coarse_code_size). */
static size_t coarse_bytes(int64_t nlist) {
    size_t nb = 0;
    for (uint64_t nl = (uint64_t)(nlist - 1); nl > 0; nl >>= 8) nb++;
    return nb;
}

size_t vdx_index_sa_code_size(const vdx_index *ix) {
    if (!ix) return 0;
    if (vdx_is_flat(ix)) return (size_t)ix->d * sizeof(float);
    if (vdx_is_index_pq(ix))
        return ((const vdx_index_pq *)(const void *)ix)->pq.code_size;
    if (vdx_is_index_sq(ix))
        return ((const vdx_index_sq *)(const void *)ix)->sq.code_size;
    if (vdx_is_lsh(ix)) return ((const vdx_lsh *)(const void *)ix)->code_size;
    if (vdx_is_index_aq(ix) || vdx_is_aqfs(ix))
        return vdx_index_aq(ix)->code_size;
    if (vdx_index_is_ivf(ix)) {
        const vdx_ivf *ivf = (const vdx_ivf *)(const void *)ix;
        return ivf->code_size + coarse_bytes(ivf->nlist);
    }
    if (vdx_is_pretransform(ix))
        return vdx_index_sa_code_size(vdx_index_pretransform_index(ix));
    if (vdx_is_refine(ix)) {
        size_t a = vdx_index_sa_code_size(vdx_index_refine_base(ix));
        size_t b = vdx_index_sa_code_size(vdx_index_refine_refine(ix));
        return a && b ? a + b : 0;
    }
    return 0;
}

static vdx_status sa_check(const vdx_index *ix, int64_t n, const void *in,
                           const void *out, const char *what) {
    if (!ix) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: index is NULL", what);
    if (n < 0 || (n > 0 && (!in || !out)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: bad n=%lld or NULL array", what, (long long)n);
    if (!vdx_index_sa_code_size(ix))
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s: %s is not a standalone codec", what,
                         ix->ops->type_name);
    if (!ix->is_trained)
        return vdx_raise(VDX_ERR_NOT_TRAINED, "%s: the index is not trained",
                         what);
    return VDX_OK;
}

/* The IVF codes of n vectors (list number + code). */
static vdx_status ivf_encode(const vdx_ivf *ivf, int64_t n, const float *x,
                             uint8_t *out) {
    const size_t cb = coarse_bytes(ivf->nlist), cs = ivf->code_size;
    int64_t *lists = vdx_malloc_array((size_t)n, sizeof(int64_t));
    uint8_t *codes = vdx_malloc_array((size_t)n, cs ? cs : 1);
    vdx_status st = VDX_OK;
    if (!lists || !codes) {
        st = vdx_raise(VDX_ERR_OUT_OF_MEMORY, "sa_encode: out of memory");
        goto done;
    }
    if ((st = vdx_index_ivf_assign(&ivf->base, n, x, lists))) goto done;
    if ((st = ivf->codec->encode(ivf, n, x, lists, codes))) goto done;
    for (int64_t i = 0; i < n; i++) {
        uint8_t *o = out + (size_t)i * (cb + cs);
        uint64_t l = (uint64_t)lists[i];
        for (size_t b = 0; b < cb; b++, l >>= 8) o[b] = (uint8_t)(l & 0xff);
        memcpy(o + cb, codes + (size_t)i * cs, cs);
    }
done:
    vdx_free(lists);
    vdx_free(codes);
    return st;
}

/* The list number of an IVF code, or -1 when it is outside 0..nlist-1. */
static int64_t ivf_listno(const vdx_ivf *ivf, const uint8_t *code) {
    const size_t cb = coarse_bytes(ivf->nlist);
    uint64_t l = 0;
    for (size_t b = 0; b < cb; b++) l |= (uint64_t)code[b] << (8 * b);
    return l < (uint64_t)ivf->nlist ? (int64_t)l : -1;
}

static vdx_status bad_listno(const vdx_ivf *ivf, int64_t i) {
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                     "sa_decode: code %lld names a list outside 0..nlist-1="
                     "%lld",
                     (long long)i, (long long)ivf->nlist - 1);
}

static vdx_status lsh_decode(const vdx_lsh *l, int64_t n, const uint8_t *codes,
                             float *x) {
    const int64_t d = l->base.d, nb = l->nbits;
    float *y = vdx_malloc_array((size_t)nb, sizeof(float));
    if (!y) return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "sa_decode: out of memory");
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *c = codes + (size_t)i * l->code_size;
        for (int64_t j = 0; j < nb; j++) {
            y[j] = (c[j >> 3] >> (j & 7)) & 1 ? 1.0f : -1.0f;
            if (l->train_thresholds && l->thresholds) y[j] += l->thresholds[j];
        }
        float *xi = x + i * d;
        if (l->rotate_data && l->A) { /* A is nbits x d, orthonormal: A^T y */
            for (int64_t k = 0; k < d; k++) xi[k] = 0;
            for (int64_t j = 0; j < nb; j++) {
                const float yj = y[j] - (l->b ? l->b[j] : 0.0f);
                const float *row = l->A + j * d;
                for (int64_t k = 0; k < d; k++) xi[k] += row[k] * yj;
            }
        } else {
            for (int64_t k = 0; k < d; k++) xi[k] = k < nb ? y[k] : 0.0f;
        }
    }
    vdx_free(y);
    return VDX_OK;
}

vdx_status vdx_index_sa_encode(const vdx_index *ix, int64_t n, const float *x,
                               uint8_t *codes) {
    vdx_clear_error();
    vdx_status st = sa_check(ix, n, x, codes, "sa_encode");
    if (!st) st = vdx_check_vectors(x, n, ix->d, "vectors to encode");
    if (st || n == 0) return st;
    if (vdx_is_flat(ix)) {
        memcpy(codes, x, (size_t)n * (size_t)ix->d * sizeof(float));
        return VDX_OK;
    }
    if (vdx_is_index_pq(ix)) {
        vdx_pq_encode(&((const vdx_index_pq *)(const void *)ix)->pq, n, x, codes);
        return VDX_OK;
    }
    if (vdx_is_index_sq(ix))
        return vdx_sq_compute_codes(&((const vdx_index_sq *)(const void *)ix)->sq,
                                    n, x, codes);
    if (vdx_is_lsh(ix)) return vdx_index_lsh_encode(ix, n, x, codes);
    if (vdx_is_index_aq(ix) || vdx_is_aqfs(ix))
        return vdx_index_aq_sa_encode(ix, n, x, codes);
    if (vdx_index_is_ivf(ix))
        return ivf_encode((const vdx_ivf *)(const void *)ix, n, x, codes);
    if (vdx_is_pretransform(ix)) {
        const vdx_index *sub = vdx_index_pretransform_index(ix);
        float *y = vdx_malloc_array((size_t)n, (size_t)sub->d * sizeof(float));
        if (!y) return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "sa_encode: out of memory");
        st = vdx_index_pretransform_apply(ix, n, x, y);
        if (!st) st = vdx_index_sa_encode(sub, n, y, codes);
        vdx_free(y);
        return st;
    }
    if (vdx_is_refine(ix)) {
        const vdx_index *a = vdx_index_refine_base(ix);
        const vdx_index *b = vdx_index_refine_refine(ix);
        const size_t ca = vdx_index_sa_code_size(a), cb = vdx_index_sa_code_size(b);
        uint8_t *ta = vdx_malloc_array((size_t)n, ca);
        uint8_t *tb = vdx_malloc_array((size_t)n, cb);
        if (!ta || !tb) st = vdx_raise(VDX_ERR_OUT_OF_MEMORY, "sa_encode: out of memory");
        if (!st) st = vdx_index_sa_encode(a, n, x, ta);
        if (!st) st = vdx_index_sa_encode(b, n, x, tb);
        for (int64_t i = 0; i < n && !st; i++) {
            memcpy(codes + (size_t)i * (ca + cb), ta + (size_t)i * ca, ca);
            memcpy(codes + (size_t)i * (ca + cb) + ca, tb + (size_t)i * cb, cb);
        }
        vdx_free(ta);
        vdx_free(tb);
        return st;
    }
    return vdx_raise(VDX_ERR_UNSUPPORTED, "sa_encode: %s is not a standalone codec",
                     ix->ops->type_name);
}

/* Reverses the chain of a pre-transform on y (n x sub d) into x. */
static vdx_status reverse_chain(const vdx_index *ix, int64_t n, float *y,
                                float *x) {
    const int64_t nc = vdx_index_pretransform_chain_size(ix);
    for (int64_t i = 0; i < nc; i++)
        if (!vdx_vt_reversible(vdx_index_pretransform_chain(ix, i)))
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "sa_decode: transform %lld of the chain cannot "
                             "be reversed", (long long)i);
    float *cur = y;
    vdx_status st = VDX_OK;
    for (int64_t i = nc - 1; i >= 0 && !st; i--) {
        const vdx_vt *vt = vdx_index_pretransform_chain(ix, i);
        float *dst = i == 0 ? x : vdx_malloc_array((size_t)n, (size_t)vt->d_in * sizeof(float));
        if (!dst) {
            st = vdx_raise(VDX_ERR_OUT_OF_MEMORY, "sa_decode: out of memory");
            break;
        }
        st = vdx_vt_reverse_internal(vt, n, cur, dst);
        if (cur != y) vdx_free(cur);
        cur = dst;
    }
    if (cur != y && cur != x) vdx_free(cur);
    if (!st && nc == 0) memcpy(x, y, (size_t)(n * ix->d) * sizeof(float));
    return st;
}

vdx_status vdx_index_sa_decode(const vdx_index *ix, int64_t n,
                               const uint8_t *codes, float *x) {
    vdx_clear_error();
    vdx_status st = sa_check(ix, n, codes, x, "sa_decode");
    if (st || n == 0) return st;
    if (vdx_is_flat(ix)) {
        memcpy(x, codes, (size_t)n * (size_t)ix->d * sizeof(float));
        return VDX_OK;
    }
    if (vdx_is_index_pq(ix))
        return vdx_pq_decode(&((const vdx_index_pq *)(const void *)ix)->pq, n,
                             codes, x);
    if (vdx_is_index_sq(ix))
        return vdx_sq_decode(&((const vdx_index_sq *)(const void *)ix)->sq, n,
                             codes, x);
    if (vdx_is_lsh(ix))
        return lsh_decode((const vdx_lsh *)(const void *)ix, n, codes, x);
    if (vdx_is_index_aq(ix) || vdx_is_aqfs(ix))
        return vdx_index_aq_sa_decode(ix, n, codes, x);
    if (vdx_index_is_ivf(ix)) {
        const vdx_ivf *ivf = (const vdx_ivf *)(const void *)ix;
        const size_t cb = coarse_bytes(ivf->nlist), cs = ivf->code_size;
        for (int64_t i = 0; i < n; i++)
            if (ivf_listno(ivf, codes + (size_t)i * (cb + cs)) < 0)
                return bad_listno(ivf, i);
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *c = codes + (size_t)i * (cb + cs);
            ivf->codec->decode(ivf, ivf_listno(ivf, c), c + cb, x + i * ix->d);
        }
        return VDX_OK;
    }
    if (vdx_is_pretransform(ix)) {
        const vdx_index *sub = vdx_index_pretransform_index(ix);
        float *y = vdx_malloc_array((size_t)n, (size_t)sub->d * sizeof(float));
        if (!y) return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "sa_decode: out of memory");
        st = vdx_index_sa_decode(sub, n, codes, y);
        if (!st) st = reverse_chain(ix, n, y, x);
        vdx_free(y);
        return st;
    }
    if (vdx_is_refine(ix)) {
        const vdx_index *a = vdx_index_refine_base(ix);
        const vdx_index *b = vdx_index_refine_refine(ix);
        const size_t ca = vdx_index_sa_code_size(a), cb = vdx_index_sa_code_size(b);
        uint8_t *tb = vdx_malloc_array((size_t)n, cb);
        if (!tb) return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "sa_decode: out of memory");
        for (int64_t i = 0; i < n; i++)
            memcpy(tb + (size_t)i * cb, codes + (size_t)i * (ca + cb) + ca, cb);
        st = vdx_index_sa_decode(b, n, tb, x);
        vdx_free(tb);
        return st;
    }
    return vdx_raise(VDX_ERR_UNSUPPORTED, "sa_decode: %s is not a standalone codec",
                     ix->ops->type_name);
}

/* Appends n codes of cs bytes to a flat-code array through its reserve. */
#define APPEND(reserve_call, arr, cs)                                        \
    do {                                                                     \
        vdx_status st_ = (reserve_call);                                     \
        if (st_) return vdx_raise(st_, "add_sa_codes: out of memory");      \
        memcpy((arr) + (size_t)ix->ntotal * (cs), codes, (size_t)n * (cs));  \
        ix->ntotal += n;                                                     \
        return VDX_OK;                                                       \
    } while (0)

vdx_status vdx_index_add_sa_codes(vdx_index *ix, int64_t n,
                                  const uint8_t *codes, const vdx_idx_t *ids) {
    vdx_clear_error();
    vdx_status st = sa_check(ix, n, codes, codes, "add_sa_codes");
    if (st && !(vdx_is_idmap(ix) && st == VDX_ERR_UNSUPPORTED)) return st;
    if (n == 0) return VDX_OK;
    if (vdx_is_idmap(ix)) {
        vdx_idmap *m = (vdx_idmap *)(void *)ix;
        if (!ids)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_sa_codes: an IndexIDMap needs the ids");
        if ((st = vdx_idmap_reserve(m, ix->ntotal + n)))
            return vdx_raise(st, "add_sa_codes: out of memory");
        /* the sub-index numbers them by position, as add() does */
        if ((st = vdx_index_add_sa_codes(m->sub, n, codes, NULL))) return st;
        memcpy(m->id_map + ix->ntotal, ids, (size_t)n * sizeof(vdx_idx_t));
        ix->ntotal += n;
        return m->is_map2 ? vdx_idmap2_rebuild(m) : VDX_OK;
    }
    if (vdx_index_is_ivf(ix)) {
        vdx_ivf *ivf = (vdx_ivf *)(void *)ix;
        const size_t cb = coarse_bytes(ivf->nlist), cs = ivf->code_size;
        int64_t *lists = vdx_malloc_array((size_t)n, sizeof(int64_t));
        uint8_t *c = vdx_malloc_array((size_t)n, cs ? cs : 1);
        if (!lists || !c) st = vdx_raise(VDX_ERR_OUT_OF_MEMORY, "add_sa_codes: out of memory");
        for (int64_t i = 0; i < n && !st; i++) {
            const uint8_t *ci = codes + (size_t)i * (cb + cs);
            if ((lists[i] = ivf_listno(ivf, ci)) < 0) st = bad_listno(ivf, i);
            else memcpy(c + (size_t)i * cs, ci + cb, cs);
        }
        if (!st) st = vdx_ivf_add_codes(ix, n, c, lists, ids);
        vdx_free(lists);
        vdx_free(c);
        return st;
    }
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_sa_codes: %s numbers entries by position (wrap "
                         "it in an IndexIDMap for ids)", ix->ops->type_name);
    if (vdx_is_flat(ix)) return ix->ops->add(ix, n, (const float *)(const void *)codes, NULL);
    if (vdx_is_index_pq(ix)) {
        vdx_index_pq *p = (vdx_index_pq *)(void *)ix;
        APPEND(vdx_index_pq_reserve(p, ix->ntotal + n), p->codes, p->pq.code_size);
    }
    if (vdx_is_index_sq(ix)) {
        vdx_index_sq *s = (vdx_index_sq *)(void *)ix;
        APPEND(vdx_index_sq_reserve(s, ix->ntotal + n), s->codes, s->sq.code_size);
    }
    if (vdx_is_lsh(ix)) {
        vdx_lsh *l = (vdx_lsh *)(void *)ix;
        APPEND(vdx_lsh_reserve(l, ix->ntotal + n), l->codes, l->code_size);
    }
    return vdx_raise(VDX_ERR_UNSUPPORTED, "add_sa_codes: not implemented for %s",
                     ix->ops->type_name);
}
