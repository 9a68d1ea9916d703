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
#include "common/mapping.h"

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
    int extra_refs; /* atomic: holders beyond the first (replace_invlists
                       shares lists between indexes); 0 from calloc */
};

/* The in-memory implementation (FAISS: ArrayInvertedLists, "ilar").  Its
 * lists may also borrow their arrays from a read-only file map (an index
 * read with a memory-map flag, or FAISS's OnDiskInvertedLists): a borrowed
 * list is copied into memory the first time it changes (add, growth,
 * remove_ids, codes_rw / ids_rw), so the file is never written through. */
VDX_INTERNAL vdx_status vdx_invlists_array_new(int64_t nlist, size_t code_size,
                                               vdx_invlists **out);
/* Drops one holder's reference; the last one destroys the lists. */
VDX_INTERNAL void vdx_invlists_free(vdx_invlists *il);
/* Adds a holder (NULL passes through). */
VDX_INTERNAL vdx_invlists *vdx_invlists_ref(vdx_invlists *il);
/* Makes the (empty) list l of an array invlists borrow n entries at codes
 * and ids, which lie inside map (the lists take a reference to map; the
 * caller has checked the bounds).  Ids that are not 8-byte aligned are
 * copied (VDX_ERR_OUT_OF_MEMORY when that fails; the list stays empty). */
VDX_INTERNAL vdx_status vdx_invlists_array_borrow(vdx_invlists *il, vdx_mapping *map,
                                            int64_t l, int64_t n,
                                            const uint8_t *codes,
                                            const vdx_idx_t *ids);
/* FAISS's OnDiskInvertedLists bookkeeping kept alongside borrowed lists:
 * the data file's name and layout as read (written back as "ilod" as long
 * as no list changed). */
typedef struct vdx_ondisk_info {
    char *filename;          /* as stored in the "ilod" record */
    uint64_t totsize;        /* bytes of the data file */
    uint64_t *capacity;      /* nlist entries */
    uint64_t *offset;        /* nlist byte offsets */
    uint64_t nslots;         /* free slots (offset, capacity) pairs */
    uint64_t *slots;         /* 2 x nslots */
} vdx_ondisk_info;
/* Attaches on-disk bookkeeping (ownership passes to il). */
VDX_INTERNAL void vdx_invlists_set_ondisk(vdx_invlists *il,
                                          vdx_ondisk_info *info);
/* The on-disk bookkeeping, or NULL for lists that are only in memory. */
VDX_INTERNAL const vdx_ondisk_info *vdx_invlists_ondisk(const vdx_invlists *il);
/* Whether any list changed since the lists were read or set up. */
VDX_INTERNAL int vdx_invlists_dirty(const vdx_invlists *il);
/* Number of lists currently borrowed from a file map. */
VDX_INTERNAL int64_t vdx_invlists_nborrowed(const vdx_invlists *il);
VDX_INTERNAL void vdx_ondisk_info_free(vdx_ondisk_info *info);
/* total number of entries */
VDX_INTERNAL int64_t vdx_invlists_total(const vdx_invlists *il);

#endif
