/*
 * index_lsh.h — IndexLSH (private): binary codes of nbits sign bits of an
 * optional rotation of the vectors, minus optional per-bit thresholds,
 * searched by Hamming distance (FAISS: IndexLSH).
 */
#ifndef VDX_INDEX_LSH_H
#define VDX_INDEX_LSH_H

#include "index_internal.h"

typedef struct vdx_lsh {
    vdx_index base;
    int nbits;
    int rotate_data;
    int train_thresholds;
    size_t code_size;     /* (nbits + 7) / 8 */
    /* the RandomRotationMatrix d -> nbits (FAISS's LinearTransform): y = A x
     * (+ b); A is nbits x d, NULL when not rotating (or not initialised) */
    float *A;
    float *b;             /* nbits, or NULL (no bias) */
    int rot_trained;      /* the transform's is_trained */
    float *thresholds;    /* nbits, or NULL before training */
    uint8_t *codes;       /* ntotal x code_size */
    int64_t cap;
} vdx_lsh;

VDX_INTERNAL int vdx_is_lsh(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_lsh_reserve(vdx_lsh *l, int64_t n);

/* Checks the arguments (as vdx_index_lsh_new) and builds an empty index;
 * the rotation is generated only when make_rot (the file reader sets it). */
VDX_INTERNAL vdx_status vdx_lsh_alloc(int64_t d, int nbits, int rotate_data,
                                      int train_thresholds, int make_rot,
                                      vdx_lsh **out);

#endif
