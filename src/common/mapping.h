/*
 * mapping.h — a read-only, reference-counted memory map of a whole file.
 *
 * Indexes opened with a memory-map flag keep pointers into one of these
 * instead of copies (flat vectors, inverted lists, codes, HNSW graphs);
 * each structure that borrows from it holds a reference, so the map lives
 * as long as the last borrower.  The map is PROT_READ and MAP_PRIVATE: no
 * code in the process can write through it (a stray write faults instead of
 * changing the file), and a structure that must change borrowed data copies
 * it first (copy-on-write at the level of one array).
 *
 * Truncation: the size is taken from fstat when the map is made and every
 * offset a reader uses is checked against it, so the file as it was at open
 * is never read past its end.  If another process later truncates the file
 * in place, touching a page past the new end raises SIGBUS, as with any
 * mapped file (FAISS's mmap has the same property); no library code can
 * catch that without a signal handler, which a library must not install.
 * vecdex's own writer never truncates in place (vdx_write_index writes a
 * temporary file and renames it over the old one, so a mapped old file
 * keeps its inode and its bytes).  See README.md, "Indexes bigger than
 * memory".
 */
#ifndef VDX_MAPPING_H
#define VDX_MAPPING_H

#include "common.h"

typedef struct vdx_mapping {
    const uint8_t *base; /* PROT_READ; NULL when len == 0 */
    uint64_t len;        /* the file's size at open */
    int refs;            /* atomic */
} vdx_mapping;

/* Maps the regular file at path (read-only, private).  A zero-length file
 * gives a mapping with base NULL and len 0.
 * @return VDX_OK and *out with one reference; VDX_ERR_IO naming the path
 *   and the OS's reason (not a regular file, open or mmap failed). */
VDX_INTERNAL vdx_status vdx_mapping_open(const char *path, vdx_mapping **out);
/* Maps an already open descriptor (not consumed) of size len. */
VDX_INTERNAL vdx_status vdx_mapping_from_fd(int fd, uint64_t len,
                                            const char *path,
                                            vdx_mapping **out);
/* Adds a reference (NULL passes through). */
VDX_INTERNAL vdx_mapping *vdx_mapping_ref(vdx_mapping *m);
/* Drops a reference; the last one unmaps.  NULL is accepted. */
VDX_INTERNAL void vdx_mapping_unref(vdx_mapping *m);
/* Whether p points inside m (borrowed storage, never freed by its user). */
static inline int vdx_mapping_owns(const vdx_mapping *m, const void *p) {
    return m && m->base && (const uint8_t *)p >= m->base &&
           (const uint8_t *)p < m->base + m->len;
}

#endif
