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
    int64_t *size, *cap;
} array_lists;

static int64_t al_size(const vdx_invlists *il, int64_t l) {
    return ((const array_lists *)il)->size[l];
}
static const uint8_t *al_codes(const vdx_invlists *il, int64_t l) {
    return ((const array_lists *)il)->codes[l];
}
static const vdx_idx_t *al_ids(const vdx_invlists *il, int64_t l) {
    return ((const array_lists *)il)->ids[l];
}
static uint8_t *al_codes_rw(vdx_invlists *il, int64_t l) {
    return ((array_lists *)il)->codes[l];
}
static vdx_idx_t *al_ids_rw(vdx_invlists *il, int64_t l) {
    return ((array_lists *)il)->ids[l];
}

static vdx_status al_reserve(array_lists *a, int64_t l, int64_t n) {
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
    vdx_status st = al_reserve(a, l, n);
    if (st) return st;
    a->size[l] = n;
    return VDX_OK;
}

static void al_destroy(vdx_invlists *il) {
    array_lists *a = (array_lists *)il;
    for (int64_t l = 0; l < il->nlist; l++) {
        if (a->codes) vdx_free(a->codes[l]);
        if (a->ids) vdx_free(a->ids[l]);
    }
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
    if (il) il->ops->destroy(il);
}

int64_t vdx_invlists_total(const vdx_invlists *il) {
    int64_t t = 0;
    for (int64_t l = 0; l < il->nlist; l++) t += il->ops->list_size(il, l);
    return t;
}
