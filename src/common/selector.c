/*
 * selector.c — ID selectors: constructors and the membership test of the
 * kinds that are not inlined in selector.h (hash set, sorted array,
 * composites, and IDMap's translation).
 */
#include <stdlib.h>
#include <string.h>

#include "selector.h"

static vdx_status sel_new(vdx_selector_kind kind, vdx_selector **out) {
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_selector *s = vdx_calloc(1, sizeof *s);
    if (!s) return VDX_ERR_OUT_OF_MEMORY;
    s->kind = kind;
    *out = s;
    return VDX_OK;
}

vdx_status vdx_selector_range(vdx_idx_t imin, vdx_idx_t imax,
                              vdx_selector **out) {
    vdx_clear_error();
    vdx_status st = sel_new(VDX_SEL_RANGE, out);
    if (st) return st;
    (*out)->imin = imin;
    (*out)->imax = imax;
    return VDX_OK;
}

static int batch_contains(const vdx_selector *s, vdx_idx_t id) {
    if (id == VDX_SEL_EMPTY_SLOT || s->n == 0) return 0;
    uint64_t mask = (uint64_t)s->n - 1;
    for (uint64_t h = vdx_hash_id((uint64_t)id) & mask;; h = (h + 1) & mask) {
        vdx_idx_t v = s->ids[h];
        if (v == id) return 1;
        if (v == VDX_SEL_EMPTY_SLOT) return 0;
    }
}

vdx_status vdx_selector_batch(int64_t n, const vdx_idx_t *ids,
                              vdx_selector **out) {
    vdx_clear_error();
    if (n < 0 || (n > 0 && !ids))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "selector batch: n=%lld ids=%p", (long long)n,
                         (const void *)ids);
    vdx_status st = sel_new(VDX_SEL_BATCH, out);
    if (st) return st;
    vdx_selector *s = *out;
    int64_t cap = 16;
    while (cap < 2 * n) cap <<= 1; /* load factor <= 0.5 */
    s->ids = vdx_malloc_array((size_t)cap, sizeof(vdx_idx_t));
    if (!s->ids) {
        vdx_free(s);
        *out = NULL;
        return VDX_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < cap; i++) s->ids[i] = VDX_SEL_EMPTY_SLOT;
    s->n = cap;
    /* bloom bits: at least 8 per member, indexed by the id's low bits (ids
     * are usually dense or strided, which spreads them well) */
    uint64_t nbits = 64;
    while (nbits < 8 * (uint64_t)n && nbits < ((uint64_t)1 << 32)) nbits <<= 1;
    s->bloom = vdx_calloc((size_t)(nbits / 64), sizeof(uint64_t));
    if (!s->bloom) {
        vdx_free(s->ids);
        vdx_free(s);
        *out = NULL;
        return VDX_ERR_OUT_OF_MEMORY;
    }
    s->bloom_mask = nbits - 1;
    uint64_t mask = (uint64_t)cap - 1;
    for (int64_t i = 0; i < n; i++) {
        vdx_idx_t id = ids[i];
        if (id == VDX_SEL_EMPTY_SLOT) continue; /* can never be stored */
        uint64_t h = vdx_hash_id((uint64_t)id) & mask;
        while (s->ids[h] != VDX_SEL_EMPTY_SLOT && s->ids[h] != id)
            h = (h + 1) & mask;
        s->ids[h] = id;
        uint64_t bb = (uint64_t)id & s->bloom_mask;
        s->bloom[bb >> 6] |= (uint64_t)1 << (bb & 63);
    }
    return VDX_OK;
}

static int cmp_id(const void *a, const void *b) {
    vdx_idx_t x = *(const vdx_idx_t *)a, y = *(const vdx_idx_t *)b;
    return (x > y) - (x < y);
}

vdx_status vdx_selector_array(int64_t n, const vdx_idx_t *ids,
                              vdx_selector **out) {
    vdx_clear_error();
    if (n < 0 || (n > 0 && !ids))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "selector array: n=%lld ids=%p", (long long)n,
                         (const void *)ids);
    vdx_status st = sel_new(VDX_SEL_ARRAY, out);
    if (st) return st;
    vdx_selector *s = *out;
    s->ids = vdx_malloc_array((size_t)(n ? n : 1), sizeof(vdx_idx_t));
    if (!s->ids) {
        vdx_free(s);
        *out = NULL;
        return VDX_ERR_OUT_OF_MEMORY;
    }
    if (n) memcpy(s->ids, ids, (size_t)n * sizeof(vdx_idx_t));
    qsort(s->ids, (size_t)n, sizeof(vdx_idx_t), cmp_id);
    s->n = n;
    return VDX_OK;
}

vdx_status vdx_selector_bitmap(int64_t nbytes, const uint8_t *bitmap,
                               vdx_selector **out) {
    vdx_clear_error();
    if (nbytes < 0 || (nbytes > 0 && !bitmap))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "selector bitmap: nbytes=%lld bitmap=%p",
                         (long long)nbytes, (const void *)bitmap);
    vdx_status st = sel_new(VDX_SEL_BITMAP, out);
    if (st) return st;
    vdx_selector *s = *out;
    s->bitmap = vdx_malloc((size_t)(nbytes ? nbytes : 1));
    if (!s->bitmap) {
        vdx_free(s);
        *out = NULL;
        return VDX_ERR_OUT_OF_MEMORY;
    }
    if (nbytes) memcpy(s->bitmap, bitmap, (size_t)nbytes);
    s->nbytes = nbytes;
    return VDX_OK;
}

static vdx_status sel_composite(vdx_selector_kind kind, const vdx_selector *a,
                                const vdx_selector *b, vdx_selector **out) {
    vdx_clear_error();
    if (!a || (kind != VDX_SEL_NOT && !b))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "composite selector needs non-NULL children");
    vdx_status st = sel_new(kind, out);
    if (st) return st;
    (*out)->a = a;
    (*out)->b = b;
    return VDX_OK;
}

vdx_status vdx_selector_not(const vdx_selector *a, vdx_selector **out) {
    return sel_composite(VDX_SEL_NOT, a, NULL, out);
}
vdx_status vdx_selector_and(const vdx_selector *a, const vdx_selector *b,
                            vdx_selector **out) {
    return sel_composite(VDX_SEL_AND, a, b, out);
}
vdx_status vdx_selector_or(const vdx_selector *a, const vdx_selector *b,
                           vdx_selector **out) {
    return sel_composite(VDX_SEL_OR, a, b, out);
}

int vdx_selector_member_slow(const vdx_selector *s, vdx_idx_t id) {
    switch (s->kind) {
    case VDX_SEL_RANGE:
    case VDX_SEL_BITMAP:
        return vdx_sel_member(s, id);
    case VDX_SEL_BATCH: /* the bloom test was done inline */
        return batch_contains(s, id);
    case VDX_SEL_ARRAY: {
        int64_t lo = 0, hi = s->n;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (s->ids[mid] < id) lo = mid + 1;
            else hi = mid;
        }
        return lo < s->n && s->ids[lo] == id;
    }
    case VDX_SEL_NOT:
        return !vdx_sel_member(s->a, id);
    case VDX_SEL_AND:
        return vdx_sel_member(s->a, id) && vdx_sel_member(s->b, id);
    case VDX_SEL_OR:
        return vdx_sel_member(s->a, id) || vdx_sel_member(s->b, id);
    case VDX_SEL_TRANSLATED:
        return id >= 0 && id < s->map_n && vdx_sel_member(s->a, s->map[id]);
    case VDX_SEL_SHIFTED:
        return id >= 0 && vdx_sel_member(s->a, id + s->imin);
    }
    return 0;
}

int vdx_selector_is_member(const vdx_selector *sel, vdx_idx_t id) {
    return sel ? vdx_sel_member(sel, id) : 0;
}

void vdx_selector_free(vdx_selector *sel) {
    if (!sel) return;
    vdx_free(sel->ids);
    vdx_free(sel->bitmap);
    vdx_free(sel->bloom);
    vdx_free(sel);
}
