/*
 * index_2layer.h — private structure of Index2Layer (index_2layer.c), the
 * storage of IndexHNSW2Level (index_hnsw.c, hnsw.c) and its file format
 * (io/index_2layer_io.c).
 */
#ifndef VDX_INDEX_2LAYER_H
#define VDX_INDEX_2LAYER_H

#include "index_internal.h"
#include "quant/pq.h"

/* FAISS's Level1Quantizer::quantizer_trains_alone values vecdex handles:
 * 0 = k-means into the quantizer (an IndexFlat); 1 and 2 are stored and
 * written back but training with them is refused. */
typedef struct vdx_index_2layer {
    vdx_index base;
    vdx_index *quantizer;   /* owned: nlist centroids once trained */
    int64_t nlist;
    uint8_t trains_alone;   /* FAISS's quantizer_trains_alone */
    vdx_kmeans_params cp;   /* coarse k-means (FAISS: 10 iterations) */
    vdx_pq pq;              /* over the residuals x - centroid */
    size_t code_size_1;     /* bytes of the list number (little-endian) */
    size_t code_size_2;     /* = pq.code_size */
    size_t code_size;       /* code_size_1 + code_size_2 */
    uint8_t *codes;         /* ntotal x code_size */
    int64_t cap;            /* capacity in codes */
} vdx_index_2layer;

VDX_INTERNAL int vdx_is_2layer(const vdx_index *ix);

/* FAISS's code_size_1: the fewest bytes b with 256^b >= nlist (0 for one
 * list). */
VDX_INTERNAL size_t vdx_2layer_code_size_1(int64_t nlist);

/* The list number stored at the head of a code. */
static inline int64_t vdx_2layer_list(const vdx_index_2layer *t,
                                      const uint8_t *code) {
    uint64_t l = 0;
    for (size_t b = 0; b < t->code_size_1; b++)
        l |= (uint64_t)code[b] << (8 * b);
    return (int64_t)l;
}

/* Decodes code i (i < ntotal; list numbers were checked < nlist when
 * stored) into out (d floats): centroid + PQ residual. */
VDX_INTERNAL void vdx_2layer_decode(const vdx_index_2layer *t, int64_t i,
                                    float *out);

/* Builds an empty Index2Layer over `quantizer` without the argument checks
 * of the public constructor (the file reader checks what it reads); takes
 * ownership of quantizer on success only. */
VDX_INTERNAL vdx_status vdx_2layer_make(vdx_index *quantizer, int64_t nlist,
                                        int64_t M, int nbits,
                                        vdx_metric metric,
                                        vdx_index_2layer **out);
/* Makes room for n codes in total. */
VDX_INTERNAL vdx_status vdx_2layer_reserve(vdx_index_2layer *t, int64_t n);

#endif
