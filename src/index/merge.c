/*
 * merge.c — moving every entry of one index into another of the same kind
 * (FAISS's Index::merge_from and check_compatible_for_merge) for the kinds
 * that are not IVF (ivf.c has the IVF merge, by inverted list):
 *
 *   - flat-code kinds (IndexFlat, IndexPQ, IndexScalarQuantizer, IndexLSH):
 *     the source's codes are appended after the destination's, so entry i of
 *     the source becomes entry ntotal + i (add_id must be 0, as in FAISS:
 *     their ids are positions);
 *   - IndexPQFastScan: the codes are unpacked from the source's blocks and
 *     packed again into the destination's;
 *   - IndexIDMap / IndexIDMap2: the sub-indexes merge, the source's ids
 *     follow, shifted by add_id (IDMap2 rebuilds its reverse map);
 *   - IndexPreTransform: identical transform chains, then the sub-indexes
 *     merge with add_id passed on.
 *
 * Compatibility is stricter than FAISS's minimal checks: besides kind, d,
 * metric and code size, what the codes were made with (PQ codebooks, SQ
 * ranges, LSH rotation and thresholds, IVF centroids, transform matrices)
 * must be equal, since codes of another codebook would be decoded as
 * garbage without any error.  Everything is checked and allocated before
 * anything moves, so a refused merge leaves both indexes unchanged; after a
 * merge the source is empty (FAISS resets it).
 */
#include <string.h>

#include "index_fastscan.h"
#include "index_internal.h"
#include "index_lsh.h"
#include "index_pq.h"
#include "index_sq.h"
#include "pretransform.h"
#include "quant/transform.h"

/* Equal float arrays (both NULL counts as equal; n elements). */
static int same_floats(const float *a, const float *b, size_t n) {
    if (!a || !b) return a == b;
    return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}

static vdx_status incompatible(const vdx_index *a, const vdx_index *b,
                               const char *what) {
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                     "merge_from: incompatible indexes (%s d=%lld, other %s "
                     "d=%lld): %s",
                     a->ops->type_name, (long long)a->d, b->ops->type_name,
                     (long long)b->d, what);
}

static int same_pq(const vdx_pq *a, const vdx_pq *b) {
    return a->d == b->d && a->M == b->M && a->nbits == b->nbits &&
           same_floats(a->centroids, b->centroids,
                       (size_t)(a->M * a->ksub * a->dsub));
}

static int same_vt(const vdx_vt *a, const vdx_vt *b) {
    if (a->kind != b->kind || a->d_in != b->d_in || a->d_out != b->d_out ||
        a->is_trained != b->is_trained || a->have_bias != b->have_bias ||
        a->norm != b->norm)
        return 0;
    return same_floats(a->A, b->A, (size_t)(a->d_out * a->d_in)) &&
           same_floats(a->b, b->b, (size_t)a->d_out) &&
           same_floats(a->mean, b->mean, (size_t)a->d_in);
}

/* The centroids of two coarse quantizers are the same (the same object,
 * or equal reconstructions; quantizers that cannot reconstruct are taken
 * as compatible, as nothing else can tell). */
static vdx_status same_quantizer(const vdx_index *a, const vdx_index *b,
                                 int *same) {
    *same = 1;
    if (a == b) return VDX_OK;
    if (a->ntotal != b->ntotal || a->d != b->d) {
        *same = 0;
        return VDX_OK;
    }
    const int64_t chunk = 1024;
    float *ra = vdx_malloc_array((size_t)(2 * chunk), (size_t)a->d * sizeof(float));
    if (!ra) return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "merge_from: out of memory");
    float *rb = ra + chunk * a->d;
    for (int64_t i0 = 0; i0 < a->ntotal && *same; i0 += chunk) {
        int64_t n = VDX_MIN(chunk, a->ntotal - i0);
        if (!a->ops->reconstruct_n || !b->ops->reconstruct_n ||
            a->ops->reconstruct_n(a, i0, n, ra) ||
            b->ops->reconstruct_n(b, i0, n, rb)) {
            vdx_clear_error();
            break; /* cannot tell */
        }
        *same = memcmp(ra, rb, (size_t)(n * a->d) * sizeof(float)) == 0;
    }
    vdx_free(ra);
    return VDX_OK;
}

/* The innermost index below pre-transforms. */
static const vdx_index *below_transforms(const vdx_index *ix) {
    while (vdx_is_pretransform(ix)) ix = vdx_index_pretransform_index(ix);
    return ix;
}

vdx_status vdx_index_check_compatible_for_merge(const vdx_index *dst,
                                                const vdx_index *src) {
    vdx_clear_error();
    if (!dst || !src)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_from: index is NULL");
    if (dst == src)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_from: cannot merge an index into itself");
    if (vdx_is_idmap(dst)) {
        if (!vdx_is_idmap(src))
            return incompatible(dst, src, "the other index is no IDMap");
        return vdx_index_check_compatible_for_merge(
            ((const vdx_idmap *)(const void *)dst)->sub,
            ((const vdx_idmap *)(const void *)src)->sub);
    }
    if (strcmp(dst->ops->type_name, src->ops->type_name) != 0)
        return incompatible(dst, src, "can only merge indexes of the same "
                                      "type");
    if (dst->d != src->d) return incompatible(dst, src, "different d");
    if (dst->metric != src->metric)
        return incompatible(dst, src, "different metrics");
    if (!dst->is_trained || !src->is_trained)
        return incompatible(dst, src, "an index is not trained");
    if (vdx_is_pretransform(dst)) {
        int64_t n = vdx_index_pretransform_chain_size(dst);
        if (n != vdx_index_pretransform_chain_size(src))
            return incompatible(dst, src, "transform chains of different "
                                          "lengths");
        for (int64_t i = 0; i < n; i++)
            if (!same_vt(vdx_index_pretransform_chain(dst, i),
                         vdx_index_pretransform_chain(src, i)))
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "merge_from: transform %lld of the chains "
                                 "differs",
                                 (long long)i);
        return vdx_index_check_compatible_for_merge(
            vdx_index_pretransform_index(dst),
            vdx_index_pretransform_index(src));
    }
    if (vdx_index_is_ivf(dst)) {
        const vdx_ivf *a = (const vdx_ivf *)(const void *)dst;
        const vdx_ivf *b = (const vdx_ivf *)(const void *)src;
        if (a->nlist != b->nlist || a->code_size != b->code_size)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "merge_from: incompatible IVF indexes (nlist=%lld "
                             "code_size=%zu, other nlist=%lld code_size=%zu)",
                             (long long)a->nlist, a->code_size,
                             (long long)b->nlist, b->code_size);
        int same;
        vdx_status st = same_quantizer(a->quantizer, b->quantizer, &same);
        if (st) return st;
        if (!same)
            return incompatible(dst, src, "the coarse quantizers' "
                                          "centroids differ");
        if (vdx_is_ivfpq(dst) &&
            (!same_pq(&((const vdx_ivfpq *)(const void *)dst)->pq,
                      &((const vdx_ivfpq *)(const void *)src)->pq) ||
             ((const vdx_ivfpq *)(const void *)dst)->by_residual !=
                 ((const vdx_ivfpq *)(const void *)src)->by_residual))
            return incompatible(dst, src, "the PQ codebooks differ");
        if (vdx_is_ivfpqfs(dst) &&
            (!same_pq(&((const vdx_ivfpqfs *)(const void *)dst)->pq,
                      &((const vdx_ivfpqfs *)(const void *)src)->pq) ||
             ((const vdx_ivfpqfs *)(const void *)dst)->by_residual !=
                 ((const vdx_ivfpqfs *)(const void *)src)->by_residual))
            return incompatible(dst, src, "the PQ codebooks differ");
        if (vdx_is_ivfsq(dst)) {
            const vdx_ivfsq *x = (const vdx_ivfsq *)(const void *)dst;
            const vdx_ivfsq *y = (const vdx_ivfsq *)(const void *)src;
            if (x->sq.qtype != y->sq.qtype || x->by_residual != y->by_residual ||
                x->sq.ntrained != y->sq.ntrained ||
                !same_floats(x->sq.trained, y->sq.trained, x->sq.ntrained))
                return incompatible(dst, src, "the scalar quantizers differ");
        }
        return VDX_OK;
    }
    if (vdx_is_flat(dst)) return VDX_OK;
    if (vdx_is_index_pq(dst)) {
        if (!same_pq(&((const vdx_index_pq *)(const void *)dst)->pq,
                     &((const vdx_index_pq *)(const void *)src)->pq))
            return incompatible(dst, src, "the PQ codebooks differ");
        return VDX_OK;
    }
    if (vdx_is_pqfs(dst)) {
        const vdx_pqfs *a = (const vdx_pqfs *)(const void *)dst;
        const vdx_pqfs *b = (const vdx_pqfs *)(const void *)src;
        if (!same_pq(&a->pq, &b->pq))
            return incompatible(dst, src, "the PQ codebooks differ");
        return VDX_OK;
    }
    if (vdx_is_index_sq(dst)) {
        const vdx_sq *a = &((const vdx_index_sq *)(const void *)dst)->sq;
        const vdx_sq *b = &((const vdx_index_sq *)(const void *)src)->sq;
        if (a->qtype != b->qtype || a->ntrained != b->ntrained ||
            !same_floats(a->trained, b->trained, a->ntrained))
            return incompatible(dst, src, "the scalar quantizers differ "
                                          "(type or trained ranges)");
        return VDX_OK;
    }
    if (vdx_is_lsh(dst)) {
        const vdx_lsh *a = (const vdx_lsh *)(const void *)dst;
        const vdx_lsh *b = (const vdx_lsh *)(const void *)src;
        if (a->nbits != b->nbits || a->rotate_data != b->rotate_data ||
            a->train_thresholds != b->train_thresholds ||
            !same_floats(a->A, b->A, (size_t)(a->nbits * dst->d)) ||
            !same_floats(a->b, b->b, (size_t)a->nbits) ||
            !same_floats(a->thresholds, b->thresholds, (size_t)a->nbits))
            return incompatible(dst, src, "the LSH rotations or thresholds "
                                          "differ");
        return VDX_OK;
    }
    return vdx_raise(VDX_ERR_UNSUPPORTED,
                     "merge_from: not implemented for %s",
                     dst->ops->type_name);
}

/* Appends src's n codes of cs bytes after dst's, given dst's array after
 * a reserve. */
static void append_codes(uint8_t *dst_codes, int64_t dst_n,
                         const uint8_t *src_codes, int64_t n, size_t cs) {
    if (n) memcpy(dst_codes + (size_t)dst_n * cs, src_codes, (size_t)n * cs);
}

static vdx_status merge_pqfs(vdx_pqfs *a, vdx_pqfs *b) {
    const int64_t n = b->base.ntotal;
    vdx_status st = vdx_pqfs_reserve(a, a->base.ntotal + n);
    if (st) return st;
    const int64_t chunk = 4096;
    uint8_t *flat = vdx_malloc_array((size_t)VDX_MIN(n, chunk) + 1,
                                     b->pq.code_size);
    if (!flat) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        int64_t ni = VDX_MIN(chunk, n - i0);
        for (int64_t i = 0; i < ni; i++)
            vdx_fs_unpack_1(b->codes, b->bbs, b->nsq, b->pq.M, i0 + i,
                            flat + (size_t)i * b->pq.code_size);
        vdx_fs_pack(flat, ni, a->pq.M, a->bbs, a->nsq, a->codes,
                    a->base.ntotal + i0);
    }
    vdx_free(flat);
    a->base.ntotal += n;
    return VDX_OK;
}

/* The merge proper, after the checks (dst and src compatible). */
static vdx_status merge_checked(vdx_index *dst, vdx_index *src,
                                int64_t add_id) {
    if (vdx_index_is_ivf(dst)) return vdx_index_ivf_merge_from(dst, src, add_id);
    if (vdx_is_pretransform(dst)) {
        vdx_status st =
            merge_checked(vdx_index_pretransform_index(dst),
                          vdx_index_pretransform_index(src), add_id);
        dst->ntotal = vdx_index_pretransform_index(dst)->ntotal;
        src->ntotal = vdx_index_pretransform_index(src)->ntotal;
        return st;
    }
    if (vdx_is_idmap(dst)) {
        vdx_idmap *a = (vdx_idmap *)(void *)dst, *b = (vdx_idmap *)(void *)src;
        const int64_t n0 = dst->ntotal, n = src->ntotal;
        vdx_status st = vdx_idmap_reserve(a, n0 + n);
        if (st) return st;
        /* an IVF below keeps positions as its ids (see idmap.c): the
         * source's entries continue the destination's numbering */
        const int64_t sub_add =
            vdx_index_is_ivf(below_transforms(a->sub)) ? a->sub->ntotal : 0;
        st = merge_checked(a->sub, b->sub, sub_add);
        if (st) return st;
        for (int64_t i = 0; i < n; i++) a->id_map[n0 + i] = b->id_map[i] + add_id;
        dst->ntotal = n0 + n;
        src->ntotal = 0;
        if (b->is_map2) (void)vdx_idmap2_rebuild(b); /* empty: cannot fail */
        if (a->is_map2) return vdx_idmap2_rebuild(a);
        return VDX_OK;
    }
    if (add_id != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_from: cannot set ids in %s (its ids are "
                         "positions): add_id must be 0, got %lld",
                         dst->ops->type_name, (long long)add_id);
    const int64_t n0 = dst->ntotal, n = src->ntotal;
    vdx_status st = VDX_OK;
    if (vdx_is_flat(dst)) {
        vdx_flat *b = (vdx_flat *)(void *)src;
        /* add() copies the vectors and keeps the cached norms right */
        if (n) st = dst->ops->add(dst, n, b->xb, NULL);
    } else if (vdx_is_index_pq(dst)) {
        vdx_index_pq *a = (vdx_index_pq *)(void *)dst;
        vdx_index_pq *b = (vdx_index_pq *)(void *)src;
        if (!(st = vdx_index_pq_reserve(a, n0 + n))) {
            append_codes(a->codes, n0, b->codes, n, a->pq.code_size);
            dst->ntotal += n;
        }
    } else if (vdx_is_index_sq(dst)) {
        vdx_index_sq *a = (vdx_index_sq *)(void *)dst;
        vdx_index_sq *b = (vdx_index_sq *)(void *)src;
        if (!(st = vdx_index_sq_reserve(a, n0 + n))) {
            append_codes(a->codes, n0, b->codes, n, a->sq.code_size);
            dst->ntotal += n;
        }
    } else if (vdx_is_lsh(dst)) {
        vdx_lsh *a = (vdx_lsh *)(void *)dst, *b = (vdx_lsh *)(void *)src;
        if (!(st = vdx_lsh_reserve(a, n0 + n))) {
            append_codes(a->codes, n0, b->codes, n, a->code_size);
            dst->ntotal += n;
        }
    } else if (vdx_is_pqfs(dst)) {
        st = merge_pqfs((vdx_pqfs *)(void *)dst, (vdx_pqfs *)(void *)src);
    } else {
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "merge_from: not implemented for %s",
                         dst->ops->type_name);
    }
    if (st) {
        if (st == VDX_ERR_OUT_OF_MEMORY)
            return vdx_raise(st, "merge_from: out of memory for %lld more "
                                 "entries", (long long)n);
        return st;
    }
    return src->ops->reset(src); /* FAISS empties the source */
}

vdx_status vdx_index_merge_from(vdx_index *dst, vdx_index *src,
                                int64_t add_id) {
    vdx_status st = vdx_index_check_compatible_for_merge(dst, src);
    if (st) return st;
    /* FAISS's IndexFlatCodes refuses add_id before anything else */
    const vdx_index *inner = below_transforms(dst);
    if (add_id != 0 && !vdx_is_idmap(inner) && !vdx_index_is_ivf(inner))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_from: cannot set ids in %s (its ids are "
                         "positions): add_id must be 0, got %lld",
                         inner->ops->type_name, (long long)add_id);
    return merge_checked(dst, src, add_id);
}
