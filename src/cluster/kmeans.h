/*
 * kmeans.h — the internal entry of k-means that also takes the assignment
 * metric (IVF with inner product assigns by largest inner product without
 * normalising, which the public spherical flag cannot express).
 */
#ifndef VDX_KMEANS_H
#define VDX_KMEANS_H

#include "common/common.h"

VDX_INTERNAL vdx_status vdx_kmeans_train_metric(
    int64_t d, int64_t k, int64_t n, const float *x,
    const vdx_kmeans_params *params, vdx_metric metric, float *centroids,
    float *obj, int *warnings);

/* As vdx_kmeans_train_metric, starting from the k centroids given in
 * `centroids` instead of sampled points (FAISS's Clustering with preset
 * centroids: the warm start of progressive-dimension training). */
VDX_INTERNAL vdx_status vdx_kmeans_train_from(int64_t d, int64_t k, int64_t n,
                                              const float *x,
                                              const vdx_kmeans_params *params,
                                              vdx_metric metric,
                                              float *centroids);

#endif
