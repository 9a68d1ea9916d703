/*
 * selector.h — the private layout of ID selectors and their inline
 * membership test, used inside the scan loops of every index.
 */
#ifndef VDX_SELECTOR_H
#define VDX_SELECTOR_H

#include "common.h"

typedef enum {
    VDX_SEL_RANGE,
    VDX_SEL_BATCH,  /* open-addressing hash set */
    VDX_SEL_ARRAY,  /* sorted array, binary search */
    VDX_SEL_BITMAP,
    VDX_SEL_NOT,
    VDX_SEL_AND,
    VDX_SEL_OR,
    VDX_SEL_TRANSLATED, /* internal: tests map[i] against child (IDMap) */
    VDX_SEL_SHIFTED     /* internal: tests i + imin against child (shards
                         * numbered from an offset) */
} vdx_selector_kind;

struct vdx_selector {
    vdx_selector_kind kind;
    vdx_idx_t imin, imax;         /* RANGE */
    int64_t n;                    /* BATCH: capacity (power of 2); ARRAY: n */
    vdx_idx_t *ids;               /* BATCH table (empty = INT64_MIN) / ARRAY */
    uint8_t *bitmap;              /* BITMAP */
    int64_t nbytes;               /* BITMAP */
    const vdx_selector *a, *b;    /* NOT / AND / OR / TRANSLATED(a) */
    const vdx_idx_t *map;         /* TRANSLATED: position -> user id */
    int64_t map_n;
    uint64_t *bloom;              /* BATCH: bit (id & bloom_mask) set for
                                   * every member: most non-members are
                                   * rejected with one bit test */
    uint64_t bloom_mask;
};

#define VDX_SEL_EMPTY_SLOT INT64_MIN

VDX_INTERNAL int vdx_selector_member_slow(const vdx_selector *s, vdx_idx_t id);

/* Hash of a 64-bit id (splitmix finaliser). */
static inline uint64_t vdx_hash_id(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Membership; the common leaf kinds are inlined. A NULL selector admits all. */
static inline int vdx_sel_member(const vdx_selector *s, vdx_idx_t id) {
    if (!s) return 1;
    switch (s->kind) {
    case VDX_SEL_RANGE:
        return id >= s->imin && id < s->imax;
    case VDX_SEL_BITMAP:
        return id >= 0 && (id >> 3) < s->nbytes &&
               ((s->bitmap[id >> 3] >> (id & 7)) & 1);
    case VDX_SEL_BATCH: {
        uint64_t b = (uint64_t)id & s->bloom_mask;
        if (!((s->bloom[b >> 6] >> (b & 63)) & 1)) return 0;
        return vdx_selector_member_slow(s, id);
    }
    default:
        return vdx_selector_member_slow(s, id);
    }
}

/* Builds (on the stack) a TRANSLATED selector: position i is a member when
 * map[i] is in `inner`. */
static inline vdx_selector vdx_selector_translated(const vdx_selector *inner,
                                                   const vdx_idx_t *map,
                                                   int64_t map_n) {
    vdx_selector t = {0};
    t.kind = VDX_SEL_TRANSLATED;
    t.a = inner;
    t.map = map;
    t.map_n = map_n;
    return t;
}

/* Builds (on the stack) a SHIFTED selector: id i is a member when
 * i + offset is in `inner` (the shards of IndexShards with successive ids
 * number their vectors from 0; the caller's selector speaks global ids). */
static inline vdx_selector vdx_selector_shifted(const vdx_selector *inner,
                                                vdx_idx_t offset) {
    vdx_selector t = {0};
    t.kind = VDX_SEL_SHIFTED;
    t.a = inner;
    t.imin = offset;
    return t;
}

#endif
