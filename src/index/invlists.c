/*
 * invlists.c — the in-memory inverted lists: one growable code array and one
 * id array per list.
 */
#include <string.h>

#include "invlists.h"

typedef struct {
    vdx_invlists base;
    uint8_t **codes;
    vdx_idx_t **ids;
    int64_t *size, *cap; /* cap 0 with size > 0: borrowed from map */
    vdx_mapping *map;
    /* per list, allocated on first use: the borrowed list's ids are an
     * aligned copy (the file's were not 8-byte aligned) owned here */
    uint8_t *ids_own;
    /* per list (allocated with ids_own): the file's misaligned ids, not
     * copied until the list's ids are first asked for (then ids[l] is
     * published atomically), so opening does not touch the file's pages */
    const uint8_t **raw_ids;
    vdx_ondisk_info *ondisk;
    int dirty;
} array_lists;

/* Frees the owned copy of a borrowed list's ids, if it has one. */
static void al_drop_ids_copy(array_lists *a, int64_t l) {
    if (a->ids_own && a->ids_own[l]) {
        vdx_free(a->ids[l]);
        a->ids[l] = NULL;
        a->ids_own[l] = 0;
    }
    if (a->raw_ids) a->raw_ids[l] = NULL;
}

/* The aligned copy of borrowed list l's misaligned ids, made now by the
 * first caller (concurrent readers race to publish; the loser frees its
 * copy).  Out of memory, the file's pointer itself is returned: x86-64
 * reads it, and nothing better can be handed to a reader that cannot
 * fail. */
static const vdx_idx_t *al_ids_copy(array_lists *a, int64_t l) {
    const uint8_t *raw = a->raw_ids[l];
    vdx_idx_t *own = vdx_malloc_array((size_t)a->size[l], sizeof(vdx_idx_t));
    if (!own) return (const vdx_idx_t *)(const void *)raw;
    memcpy(own, raw, (size_t)a->size[l] * sizeof(vdx_idx_t));
    vdx_idx_t *expected = NULL;
    if (__atomic_compare_exchange_n(&a->ids[l], &expected, own, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&a->ids_own[l], 1, __ATOMIC_RELEASE);
        return own;
    }
    vdx_free(own);
    return expected;
}

static int al_borrowed(const array_lists *a, int64_t l) {
    return a->cap[l] == 0 && a->codes[l] != NULL;
}

static int64_t al_size(const vdx_invlists *il, int64_t l) {
    return ((const array_lists *)il)->size[l];
}
static const uint8_t *al_codes(const vdx_invlists *il, int64_t l) {
    return ((const array_lists *)il)->codes[l];
}
static const vdx_idx_t *al_ids(const vdx_invlists *il, int64_t l) {
    const array_lists *a = (const array_lists *)il;
    const vdx_idx_t *p = __atomic_load_n(&a->ids[l], __ATOMIC_ACQUIRE);
    if (p || !a->raw_ids || !a->raw_ids[l]) return p;
    return al_ids_copy((array_lists *)(uintptr_t)a, l);
}
static vdx_status al_reserve(array_lists *a, int64_t l, int64_t n);

/* Writable views copy a borrowed list first; NULL when that fails. */
static uint8_t *al_codes_rw(vdx_invlists *il, int64_t l) {
    array_lists *a = (array_lists *)il;
    a->dirty = 1;
    if (al_borrowed(a, l) && al_reserve(a, l, a->size[l]) != VDX_OK)
        return NULL;
    return a->codes[l];
}
static vdx_idx_t *al_ids_rw(vdx_invlists *il, int64_t l) {
    array_lists *a = (array_lists *)il;
    a->dirty = 1;
    if (al_borrowed(a, l) && al_reserve(a, l, a->size[l]) != VDX_OK)
        return NULL;
    return a->ids[l];
}

static vdx_status al_reserve(array_lists *a, int64_t l, int64_t n) {
    if (al_borrowed(a, l)) {
        /* copy-on-write of a list borrowed from the file map */
        int64_t nc = VDX_MAX(n, a->size[l]);
        uint8_t *c = vdx_malloc_array((size_t)nc, a->base.code_size);
        vdx_idx_t *i = vdx_malloc_array((size_t)nc, sizeof(vdx_idx_t));
        if (!c || !i) {
            vdx_free(c);
            vdx_free(i);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        memcpy(c, a->codes[l], (size_t)a->size[l] * a->base.code_size);
        const void *src = a->ids[l];
        if (!src && a->raw_ids) src = a->raw_ids[l]; /* not copied yet */
        memcpy(i, src, (size_t)a->size[l] * sizeof(vdx_idx_t));
        al_drop_ids_copy(a, l);
        a->codes[l] = c;
        a->ids[l] = i;
        a->cap[l] = nc;
        return VDX_OK;
    }
    if (n <= a->cap[l]) return VDX_OK;
    int64_t nc = a->cap[l] ? a->cap[l] : 8;
    while (nc < n) nc *= 2;
    uint8_t *c = vdx_realloc_array(a->codes[l], (size_t)nc, a->base.code_size);
    if (!c) return VDX_ERR_OUT_OF_MEMORY;
    a->codes[l] = c;
    vdx_idx_t *i = vdx_realloc_array(a->ids[l], (size_t)nc, sizeof(vdx_idx_t));
    if (!i) return VDX_ERR_OUT_OF_MEMORY;
    a->ids[l] = i;
    a->cap[l] = nc;
    return VDX_OK;
}

static vdx_status al_add(vdx_invlists *il, int64_t l, int64_t n,
                         const vdx_idx_t *ids, const uint8_t *codes) {
    array_lists *a = (array_lists *)il;
    if (n == 0) return VDX_OK;
    a->dirty = 1;
    vdx_status st = al_reserve(a, l, a->size[l] + n);
    if (st) return st;
    memcpy(a->ids[l] + a->size[l], ids, (size_t)n * sizeof(vdx_idx_t));
    memcpy(a->codes[l] + (size_t)a->size[l] * il->code_size, codes,
           (size_t)n * il->code_size);
    a->size[l] += n;
    return VDX_OK;
}

static vdx_status al_resize(vdx_invlists *il, int64_t l, int64_t n) {
    array_lists *a = (array_lists *)il;
    if (n == a->size[l]) return VDX_OK;
    a->dirty = 1;
    if (al_borrowed(a, l) && n < a->size[l]) {
        /* shrinking a borrowed list only narrows the view */
        a->size[l] = n;
        if (n == 0) {
            al_drop_ids_copy(a, l);
            a->codes[l] = NULL, a->ids[l] = NULL;
        }
        return VDX_OK;
    }
    vdx_status st = al_reserve(a, l, n);
    if (st) return st;
    a->size[l] = n;
    return VDX_OK;
}

static void al_destroy(vdx_invlists *il) {
    array_lists *a = (array_lists *)il;
    for (int64_t l = 0; l < il->nlist; l++) {
        if (a->cap && a->cap[l] == 0) { /* empty or borrowed */
            if (a->ids) al_drop_ids_copy(a, l);
            continue;
        }
        if (a->codes) vdx_free(a->codes[l]);
        if (a->ids) vdx_free(a->ids[l]);
    }
    vdx_mapping_unref(a->map);
    vdx_free(a->ids_own);
    vdx_free(a->raw_ids);
    vdx_ondisk_info_free(a->ondisk);
    vdx_free(a->codes);
    vdx_free(a->ids);
    vdx_free(a->size);
    vdx_free(a->cap);
    vdx_free(a);
}

static const vdx_invlists_ops array_ops = {
    "ilar",   al_size,   al_codes,    al_ids,   al_add,
    al_resize, al_codes_rw, al_ids_rw, al_destroy};

vdx_status vdx_invlists_array_new(int64_t nlist, size_t code_size,
                                  vdx_invlists **out) {
    *out = NULL;
    array_lists *a = vdx_calloc(1, sizeof *a);
    if (!a) return VDX_ERR_OUT_OF_MEMORY;
    a->base.ops = &array_ops;
    a->base.nlist = nlist;
    a->base.code_size = code_size;
    a->codes = vdx_calloc((size_t)nlist, sizeof(uint8_t *));
    a->ids = vdx_calloc((size_t)nlist, sizeof(vdx_idx_t *));
    a->size = vdx_calloc((size_t)nlist, sizeof(int64_t));
    a->cap = vdx_calloc((size_t)nlist, sizeof(int64_t));
    if (!a->codes || !a->ids || !a->size || !a->cap) {
        al_destroy(&a->base);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    *out = &a->base;
    return VDX_OK;
}

void vdx_invlists_free(vdx_invlists *il) {
    if (!il) return;
    /* fetch_sub returns the count before: 0 means no other holder */
    if (__atomic_fetch_sub(&il->extra_refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    il->ops->destroy(il);
}

vdx_invlists *vdx_invlists_ref(vdx_invlists *il) {
    if (il) __atomic_add_fetch(&il->extra_refs, 1, __ATOMIC_RELAXED);
    return il;
}

int64_t vdx_invlists_total(const vdx_invlists *il) {
    int64_t t = 0;
    for (int64_t l = 0; l < il->nlist; l++) t += il->ops->list_size(il, l);
    return t;
}

vdx_status vdx_invlists_array_borrow(vdx_invlists *il, vdx_mapping *map,
                                     int64_t l, int64_t n, const uint8_t *codes,
                                     const vdx_idx_t *ids) {
    array_lists *a = (array_lists *)il;
    if (n == 0) return VDX_OK;
    const uint8_t *raw = NULL;
    if ((uintptr_t)ids % _Alignof(vdx_idx_t)) {
        /* FAISS's format does not align its arrays: ids at an odd offset
         * are copied (8 bytes a vector, next to its code) rather than read
         * through a misaligned pointer -- at first use, not here */
        if (!a->ids_own && !(a->ids_own = vdx_calloc((size_t)il->nlist, 1)))
            return VDX_ERR_OUT_OF_MEMORY;
        if (!a->raw_ids &&
            !(a->raw_ids = vdx_calloc((size_t)il->nlist, sizeof *a->raw_ids)))
            return VDX_ERR_OUT_OF_MEMORY;
        raw = (const uint8_t *)(const void *)ids;
    }
    if (!a->map) a->map = vdx_mapping_ref(map);
    a->codes[l] = (uint8_t *)(uintptr_t)codes;
    a->ids[l] = raw ? NULL : (vdx_idx_t *)(uintptr_t)ids;
    if (raw) a->raw_ids[l] = raw;
    a->size[l] = n;
    a->cap[l] = 0;
    return VDX_OK;
}

void vdx_ondisk_info_free(vdx_ondisk_info *info) {
    if (!info) return;
    vdx_free(info->filename);
    vdx_free(info->capacity);
    vdx_free(info->offset);
    vdx_free(info->slots);
    vdx_free(info);
}

void vdx_invlists_set_ondisk(vdx_invlists *il, vdx_ondisk_info *info) {
    array_lists *a = (array_lists *)il;
    vdx_ondisk_info_free(a->ondisk);
    a->ondisk = info;
    a->dirty = 0;
}

const vdx_ondisk_info *vdx_invlists_ondisk(const vdx_invlists *il) {
    return il->ops == &array_ops ? ((const array_lists *)il)->ondisk : NULL;
}

int vdx_invlists_dirty(const vdx_invlists *il) {
    return il->ops == &array_ops ? ((const array_lists *)il)->dirty : 1;
}

int64_t vdx_invlists_nborrowed(const vdx_invlists *il) {
    if (il->ops != &array_ops) return 0;
    const array_lists *a = (const array_lists *)il;
    int64_t n = 0;
    for (int64_t l = 0; l < il->nlist; l++) n += al_borrowed(a, l);
    return n;
}
