/*
 * idmap.c — IndexIDMap and IndexIDMap2: wrap any index so that vectors carry
 * the caller's 64-bit ids.  The sub-index numbers vectors 0..ntotal-1; id_map
 * translates those positions to user ids in results, and selectors given by
 * the caller (which speak user ids) are translated the other way, inside the
 * sub-index's scan.  IDMap2 adds a hash map from user id to position so that
 * reconstruct takes a user id.
 */
#include <string.h>

#include "index_internal.h"

static const vdx_index_ops idmap_ops, idmap2_ops;

int vdx_is_idmap(const vdx_index *ix) {
    return ix && (ix->ops == &idmap_ops || ix->ops == &idmap2_ops);
}

vdx_index *vdx_index_sub_index(const vdx_index *ix) {
    return vdx_is_idmap(ix) ? ((const vdx_idmap *)ix)->sub : NULL;
}

vdx_status vdx_index_get_id_map(const vdx_index *ix, vdx_idx_t *out) {
    vdx_clear_error();
    if (!vdx_is_idmap(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "get_id_map: the index is not an IDMap");
    if (ix->ntotal && !out)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    const vdx_idmap *m = (const vdx_idmap *)ix;
    if (ix->ntotal)
        memcpy(out, m->id_map, (size_t)ix->ntotal * sizeof(vdx_idx_t));
    return VDX_OK;
}

vdx_status vdx_idmap_reserve(vdx_idmap *m, int64_t n) {
    if (n <= m->cap) return VDX_OK;
    int64_t nc = VDX_MAX(n, m->cap + m->cap / 2);
    vdx_idx_t *p = vdx_realloc_array(m->id_map, (size_t)nc, sizeof(vdx_idx_t));
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    m->id_map = p;
    m->cap = nc;
    return VDX_OK;
}

/* ---- IDMap2 reverse map (open addressing, linear probing) --------------- */

#define REV_EMPTY INT64_MIN

static uint64_t rev_slot(const vdx_idmap *m, vdx_idx_t key) {
    return vdx_hash_id((uint64_t)key) & (uint64_t)(m->rev_cap - 1);
}

static int64_t rev_find(const vdx_idmap *m, vdx_idx_t key) {
    if (!m->rev_cap || key == REV_EMPTY) return -1;
    uint64_t mask = (uint64_t)m->rev_cap - 1;
    for (uint64_t h = rev_slot(m, key);; h = (h + 1) & mask) {
        if (m->rev_keys[h] == key) return m->rev_vals[h];
        if (m->rev_keys[h] == REV_EMPTY) return -1;
    }
}

/* Inserts or overwrites (a later duplicate id wins, as in FAISS's
 * unordered_map assignment). */
static void rev_put(vdx_idmap *m, vdx_idx_t key, int64_t val) {
    uint64_t mask = (uint64_t)m->rev_cap - 1;
    uint64_t h = rev_slot(m, key);
    while (m->rev_keys[h] != REV_EMPTY && m->rev_keys[h] != key)
        h = (h + 1) & mask;
    m->rev_keys[h] = key;
    m->rev_vals[h] = val;
}

/* Makes room for n entries at load factor <= 0.5, rehashing. */
static vdx_status rev_reserve(vdx_idmap *m, int64_t n, int rehash) {
    int64_t need = 16;
    while (need < 2 * n) need <<= 1;
    if (need <= m->rev_cap) return VDX_OK;
    vdx_idx_t *ok = m->rev_keys;
    int64_t *ov = m->rev_vals, ocap = m->rev_cap;
    m->rev_keys = vdx_malloc_array((size_t)need, sizeof(vdx_idx_t));
    m->rev_vals = vdx_malloc_array((size_t)need, sizeof(int64_t));
    if (!m->rev_keys || !m->rev_vals) {
        vdx_free(m->rev_keys);
        vdx_free(m->rev_vals);
        m->rev_keys = ok;
        m->rev_vals = ov;
        return VDX_ERR_OUT_OF_MEMORY;
    }
    m->rev_cap = need;
    for (int64_t i = 0; i < need; i++) m->rev_keys[i] = REV_EMPTY;
    if (rehash)
        for (int64_t i = 0; i < ocap; i++)
            if (ok[i] != REV_EMPTY) rev_put(m, ok[i], ov[i]);
    vdx_free(ok);
    vdx_free(ov);
    return VDX_OK;
}

vdx_status vdx_idmap2_rebuild(vdx_idmap *m) {
    vdx_free(m->rev_keys);
    vdx_free(m->rev_vals);
    m->rev_keys = NULL;
    m->rev_vals = NULL;
    m->rev_cap = 0;
    vdx_status st = rev_reserve(m, m->base.ntotal, 0);
    if (st) return st;
    for (int64_t i = 0; i < m->base.ntotal; i++) rev_put(m, m->id_map[i], i);
    return VDX_OK;
}

/* ---- ops ---------------------------------------------------------------- */

static vdx_status idmap_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_idmap *m = (vdx_idmap *)ix;
    vdx_status st = vdx_index_train(m->sub, n, x);
    ix->is_trained = m->sub->is_trained;
    return st;
}

static vdx_status idmap_add(vdx_index *ix, int64_t n, const float *x,
                            const vdx_idx_t *ids) {
    vdx_idmap *m = (vdx_idmap *)ix;
    if (!ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s: add() without ids is not supported, use "
                         "add_with_ids",
                         ix->ops->type_name);
    if (m->is_map2) {
        for (int64_t i = 0; i < n; i++)
            if (ids[i] == REV_EMPTY)
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "id %lld at position %lld is reserved",
                                 (long long)ids[i], (long long)i);
    }
    vdx_status st = vdx_idmap_reserve(m, ix->ntotal + n);
    if (st) return st;
    if (m->is_map2 && (st = rev_reserve(m, ix->ntotal + n, 1))) return st;
    /* the sub-index add is the step that can fail: do it first */
    if ((st = m->sub->ops->add(m->sub, n, x, NULL))) return st;
    memcpy(m->id_map + ix->ntotal, ids, (size_t)n * sizeof(vdx_idx_t));
    if (m->is_map2)
        for (int64_t i = 0; i < n; i++) rev_put(m, ids[i], ix->ntotal + i);
    ix->ntotal += n;
    return VDX_OK;
}

static void translate_labels(const vdx_idmap *m, int64_t cnt, vdx_idx_t *I) {
    for (int64_t i = 0; i < cnt; i++)
        if (I[i] >= 0 && I[i] < m->base.ntotal) I[i] = m->id_map[I[i]];
}

static vdx_status idmap_search(const vdx_index *ix, int64_t n, const float *x,
                               int64_t k, const vdx_search_params *p, float *D,
                               vdx_idx_t *I) {
    const vdx_idmap *m = (const vdx_idmap *)ix;
    vdx_search_params sub;
    vdx_selector tr;
    if (p) {
        sub = *p;
        if (p->sel) {
            tr = vdx_selector_translated(p->sel, m->id_map, ix->ntotal);
            sub.sel = &tr;
        }
    }
    vdx_status st = m->sub->ops->search(m->sub, n, x, k, p ? &sub : NULL, D, I);
    if (st) return st;
    translate_labels(m, n * k, I);
    return VDX_OK;
}

static vdx_status idmap_range_search(const vdx_index *ix, int64_t n,
                                     const float *x, float radius,
                                     const vdx_search_params *p,
                                     vdx_range_builder *rb) {
    const vdx_idmap *m = (const vdx_idmap *)ix;
    if (!m->sub->ops->range_search)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "range_search is not supported by %s",
                         m->sub->ops->type_name);
    vdx_search_params sub;
    vdx_selector tr;
    if (p) {
        sub = *p;
        if (p->sel) {
            tr = vdx_selector_translated(p->sel, m->id_map, ix->ntotal);
            sub.sel = &tr;
        }
    }
    vdx_status st =
        m->sub->ops->range_search(m->sub, n, x, radius, p ? &sub : NULL, rb);
    if (st) return st;
    for (int64_t q = 0; q < n; q++) translate_labels(m, rb->counts[q], rb->lab[q]);
    return VDX_OK;
}

static vdx_status idmap_reset(vdx_index *ix) {
    vdx_idmap *m = (vdx_idmap *)ix;
    vdx_status st = m->sub->ops->reset(m->sub);
    if (st) return st;
    ix->ntotal = 0;
    if (m->is_map2) return vdx_idmap2_rebuild(m);
    return VDX_OK;
}

static vdx_status idmap_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                    float *out) {
    const vdx_idmap *m = (const vdx_idmap *)ix;
    if (!m->is_map2)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "IndexIDMap cannot reconstruct by id: use IndexIDMap2");
    int64_t pos = rev_find(m, key);
    if (pos < 0)
        return vdx_raise(VDX_ERR_NOT_FOUND, "reconstruct: id %lld not found",
                         (long long)key);
    return vdx_index_reconstruct(m->sub, pos, out);
}

static vdx_status idmap_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                      int64_t ni, float *out) {
    const vdx_idmap *m = (const vdx_idmap *)ix;
    return vdx_index_reconstruct_n(m->sub, i0, ni, out);
}

/* The IVF index holding an IDMap's vectors (itself, or under transforms),
 * or NULL. */
static vdx_ivf *ivf_below(vdx_index *sub) {
    while (sub && !vdx_index_is_ivf(sub))
        sub = vdx_index_pretransform_index(sub);
    return (vdx_ivf *)sub;
}

/* An IDMap's sub-index numbers its vectors by position (id_map[i] is the
 * user id of position i).  Positional kinds renumber when vectors are
 * removed, IVF lists keep their ids: there, the kept ids (old positions)
 * are renumbered to their new positions, as the id map is compacted —
 * without it the labels of later vectors pointed at other vectors (FAISS
 * has the same flaw).  keep[i]: old position i survives. */
static vdx_status renumber_ivf(vdx_ivf *ivf, const uint8_t *keep, int64_t nold) {
    int64_t *pos = vdx_malloc_array((size_t)(nold ? nold : 1), sizeof(int64_t));
    if (!pos) return VDX_ERR_OUT_OF_MEMORY;
    int64_t j = 0;
    for (int64_t i = 0; i < nold; i++) pos[i] = keep[i] ? j++ : -1;
    vdx_invlists *il = ivf->il;
    vdx_status st = VDX_OK;
    for (int64_t l = 0; l < il->nlist && !st; l++) {
        int64_t ls = il->ops->list_size(il, l);
        if (ls == 0) continue;
        vdx_idx_t *ids = il->ops->ids_rw ? il->ops->ids_rw(il, l) : NULL;
        if (!ids) {
            st = vdx_raise(VDX_ERR_UNSUPPORTED,
                           "remove_ids: the inverted lists under this IDMap "
                           "are read-only");
            break;
        }
        for (int64_t o = 0; o < ls; o++) {
            if (ids[o] < 0 || ids[o] >= nold || pos[ids[o]] < 0) {
                st = vdx_raise(VDX_ERR_INTERNAL,
                               "remove_ids: IVF id %lld under an IDMap is not "
                               "a kept position",
                               (long long)ids[o]);
                break;
            }
            ids[o] = pos[ids[o]];
        }
    }
    vdx_free(pos);
    if (!st && ivf->dm) st = vdx_ivf_rebuild_direct_map(ivf);
    return st;
}

static vdx_status idmap_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                   int64_t *nremoved) {
    vdx_idmap *m = (vdx_idmap *)ix;
    vdx_selector tr = vdx_selector_translated(sel, m->id_map, ix->ntotal);
    vdx_ivf *ivf = ivf_below(m->sub);
    uint8_t *keep = NULL;
    if (ivf) {
        keep = vdx_malloc_array((size_t)(ix->ntotal ? ix->ntotal : 1), 1);
        if (!keep) return VDX_ERR_OUT_OF_MEMORY;
        for (int64_t i = 0; i < ix->ntotal; i++)
            keep[i] = !vdx_sel_member(sel, m->id_map[i]);
    }
    int64_t nr = 0;
    vdx_status st = vdx_index_remove_ids(m->sub, &tr, &nr);
    if (!st && ivf) st = renumber_ivf(ivf, keep, ix->ntotal);
    vdx_free(keep);
    if (st) return st;
    /* the sub-index compacted in order; compact id_map the same way */
    int64_t j = 0;
    for (int64_t i = 0; i < ix->ntotal; i++) {
        if (vdx_sel_member(sel, m->id_map[i])) continue;
        m->id_map[j++] = m->id_map[i];
    }
    if (j != m->sub->ntotal)
        return vdx_raise(VDX_ERR_INTERNAL,
                         "remove_ids: sub-index kept %lld vectors, id map %lld",
                         (long long)m->sub->ntotal, (long long)j);
    ix->ntotal = j;
    *nremoved = nr;
    if (m->is_map2) return vdx_idmap2_rebuild(m);
    return VDX_OK;
}

static void idmap_destroy(vdx_index *ix) {
    vdx_idmap *m = (vdx_idmap *)ix;
    vdx_index_free(m->sub);
    vdx_free(m->id_map);
    vdx_free(m->rev_keys);
    vdx_free(m->rev_vals);
    vdx_free(m);
}

static const vdx_index_ops idmap_ops = {
    "IndexIDMap",       idmap_train, idmap_add,         idmap_search,
    idmap_range_search, idmap_reset, idmap_reconstruct, idmap_reconstruct_n,
    idmap_remove_ids,   idmap_destroy};
static const vdx_index_ops idmap2_ops = {
    "IndexIDMap2",      idmap_train, idmap_add,         idmap_search,
    idmap_range_search, idmap_reset, idmap_reconstruct, idmap_reconstruct_n,
    idmap_remove_ids,   idmap_destroy};

static vdx_status idmap_new(vdx_index *sub, int map2, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!sub) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "sub-index is NULL");
    if (sub->ntotal != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "the index wrapped by IDMap must be empty (ntotal=%lld)",
                         (long long)sub->ntotal);
    vdx_idmap *m = vdx_calloc(1, sizeof *m);
    if (!m) return VDX_ERR_OUT_OF_MEMORY;
    m->base.ops = map2 ? &idmap2_ops : &idmap_ops;
    m->base.d = sub->d;
    m->base.is_trained = sub->is_trained;
    m->base.metric = sub->metric;
    m->base.metric_arg = sub->metric_arg;
    m->sub = sub;
    m->is_map2 = map2;
    if (map2 && rev_reserve(m, 0, 0)) {
        vdx_free(m);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    *out = &m->base;
    return VDX_OK;
}

vdx_status vdx_index_idmap_new(vdx_index *sub, vdx_index **out) {
    return idmap_new(sub, 0, out);
}

vdx_status vdx_index_idmap2_new(vdx_index *sub, vdx_index **out) {
    return idmap_new(sub, 1, out);
}
