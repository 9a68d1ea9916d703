/*
 * nsg.h — private structures of the two graph indexes built from a k-NN
 * graph: IndexNNDescentFlat (nndescent.c) and IndexNSGFlat / IndexNSGPQ /
 * IndexNSGSQ (nsg.c).
 *
 * Both wrap a storage index (IndexFlat, IndexPQ, IndexScalarQuantizer)
 * holding the vectors, as FAISS's do, and a graph over storage positions.
 * Distances go through HNSW's distance computers (hnsw.h): they only read
 * the storage and its kind, so each index keeps a small vdx_index_hnsw
 * "view" (base.d, base.metric, kind, storage; no graph) to hand them.
 *
 * Graph layouts (FAISS's): NNDescent's final graph is ntotal x K int32,
 * every slot a node (or -1 when a pool never filled); NSG's is ntotal x R
 * int32, each row's links first and -1 after the last.
 */
#ifndef VDX_NSG_H
#define VDX_NSG_H

#include "hnsw.h"

/* FAISS refuses NN-descent on 100 nodes or fewer (its recall estimate
 * samples 100 of them). */
#define VDX_NND_MIN_N 100
#define VDX_NSG_R_MAX 4096
#define VDX_NND_K_MAX 4096

typedef struct vdx_nndescent {
    int K, S, R, L, iter, search_L, random_seed;
    int has_built;
    int64_t ntotal;
    int32_t *final_graph; /* ntotal x K */
} vdx_nndescent;

typedef struct vdx_index_nnd {
    vdx_index base;
    vdx_index *storage; /* owned IndexFlat */
    vdx_index_hnsw view;
    vdx_nndescent g;
} vdx_index_nnd;

typedef struct vdx_nsg {
    int R, L, C, search_L;
    int32_t enterpoint;
    int is_built;
    int64_t ntotal;
    int32_t *graph; /* ntotal x R, -1 after the last link of a row */
} vdx_nsg;

typedef struct vdx_index_nsg {
    vdx_index base;
    int kind;           /* VDX_HNSW_FLAT / _PQ / _SQ */
    vdx_index *storage; /* owned */
    vdx_index_hnsw view;
    vdx_nsg g;
    int GK, build_type; /* k of the k-NN graph; 0 brute force, 1 NN-descent */
    int nnd_S, nnd_R, nnd_L, nnd_iter;
} vdx_index_nsg;

/* ---- NN-descent (nndescent.c) ------------------------------------------ */
/* The defaults of FAISS's NNDescent(d, K): S 10, R 100, L K + 50, iter 10,
 * search_L 0, seed 2021. */
VDX_INTERNAL void vdx_nnd_init(vdx_nndescent *g, int K);
VDX_INTERNAL void vdx_nnd_release(vdx_nndescent *g);
/* Builds g's final graph over the n vectors of the storage behind view
 * (n > VDX_NND_MIN_N, L >= K, K < n); on error g is unchanged. */
VDX_INTERNAL vdx_status vdx_nnd_build(vdx_nndescent *g,
                                      const vdx_index_hnsw *view, int64_t n);
VDX_INTERNAL int vdx_is_nnd(const vdx_index *ix);
VDX_INTERNAL int vdx_is_nsg(const vdx_index *ix);
/* Builds the index kinds without the checks of the public constructors
 * (the file reader checks); take ownership of storage on success. */
VDX_INTERNAL vdx_status vdx_nnd_make(vdx_index *storage, int K,
                                     vdx_index_nnd **out);
VDX_INTERNAL vdx_status vdx_nsg_make(vdx_index *storage, int kind, int R,
                                     vdx_index_nsg **out);

/* Picks `size` distinct ints of [0, N) (size <= N) into out, using mark
 * (N bytes, all zero; left zero) — FAISS's gen_random, without repeats. */
VDX_INTERNAL void vdx_nnd_sample(vdx_rng *rng, int32_t *out, int size,
                                 int N, uint8_t *mark);

#endif
