/*
 * invlists.h — inverted lists: per list, the codes (code_size bytes each) and
 * the ids of its vectors.  Readers go through the ops so that a memory-mapped
 * or on-disk implementation can replace the in-memory arrays without
 * touching the IVF code; `get_codes` / `get_ids` return pointers valid until
 * the next mutation.
 */
#ifndef VDX_INVLISTS_H
#define VDX_INVLISTS_H

#include "common/common.h"

typedef struct vdx_invlists vdx_invlists;

typedef struct vdx_invlists_ops {
    const char *name;
    int64_t (*list_size)(const vdx_invlists *il, int64_t list);
    const uint8_t *(*get_codes)(const vdx_invlists *il, int64_t list);
    const vdx_idx_t *(*get_ids)(const vdx_invlists *il, int64_t list);
    /* appends n entries; NULL ops for read-only implementations */
    vdx_status (*add_entries)(vdx_invlists *il, int64_t list, int64_t n,
                              const vdx_idx_t *ids, const uint8_t *codes);
    /* truncates or grows (uninitialised) list to n entries */
    vdx_status (*resize)(vdx_invlists *il, int64_t list, int64_t n);
    /* writable views (in-memory only) */
    uint8_t *(*codes_rw)(vdx_invlists *il, int64_t list);
    vdx_idx_t *(*ids_rw)(vdx_invlists *il, int64_t list);
    void (*destroy)(vdx_invlists *il);
} vdx_invlists_ops;

struct vdx_invlists {
    const vdx_invlists_ops *ops;
    int64_t nlist;
    size_t code_size;
};

/* The in-memory implementation (FAISS: ArrayInvertedLists, "ilar"). */
VDX_INTERNAL vdx_status vdx_invlists_array_new(int64_t nlist, size_t code_size,
                                               vdx_invlists **out);
VDX_INTERNAL void vdx_invlists_free(vdx_invlists *il);
/* total number of entries */
VDX_INTERNAL int64_t vdx_invlists_total(const vdx_invlists *il);

#endif
