/*
 * vecdex_dist.h — a sharded index whose shards live on MPI ranks (issue 21
 * §3).  Built only when MPI is found (Debian: libopenmpi-dev); link
 * libvecdex_dist.  Every rank holds one shard; rank 0 takes the calls and
 * fans them out: a search sends the query batch to every rank, each
 * searches its shard, rank 0 merges the per-rank top-k (vdx_merge_knn_results).
 *
 * Failure semantics: every call has a deadline.  A rank that does not
 * answer in time, or answers with an error, makes the call fail with a
 * message naming the shard, or, when the caller allows partial results,
 * the result is that of the shards that answered and *answered says how
 * many did.  No call waits past its deadline (rank 0 never blocks on a
 * peer: sends and receives are nonblocking, polled until the deadline).
 * The communicator's error handler is set to MPI_ERRORS_RETURN: MPI
 * errors become vecdex errors, they do not abort.
 *
 * Thread safety: calls on one vdx_dist must be serialised by the caller.
 */
#ifndef VECDEX_DIST_H
#define VECDEX_DIST_H

#include <mpi.h>

#include "vecdex.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vdx_dist vdx_dist; /* opaque */

/** Collective over comm: every rank passes its shard (borrowed until
 *  vdx_dist_close; any index kind, same d and metric everywhere).  Ids:
 *  shard r's sequential ids are offset by the vectors of ranks 0..r-1
 *  (successive ids, as IndexShards), so a search answers with the global
 *  ids of one index built from the shards in rank order.
 *  @return VDX_ERR_INVALID_ARGUMENT when the shards' d or metric differ
 *  (on every rank), VDX_ERR_IO for an MPI error (the message has MPI's). */
VDX_API vdx_status vdx_dist_open(MPI_Comm comm, vdx_index *shard,
                                 vdx_dist **out);
VDX_API int vdx_dist_rank(const vdx_dist *dist);
VDX_API int vdx_dist_size(const vdx_dist *dist);
/** Vectors over all the shards (as of vdx_dist_open). */
VDX_API int64_t vdx_dist_ntotal(const vdx_dist *dist);
VDX_API int64_t vdx_dist_d(const vdx_dist *dist);

/** Rank 0 only: the k nearest neighbours of the n queries over every
 *  shard (D, I: n x k, as vdx_index_search).  params: nprobe and efSearch
 *  are forwarded (NULL: the shards' own).  deadline_s: seconds the call
 *  may take (> 0).  allow_partial: 0 = a shard that fails or misses the
 *  deadline fails the call (VDX_ERR_TIMEOUT / the shard's status, the
 *  message naming it); 1 = the result merges the shards that answered.
 *  answered (may be NULL): how many shards answered.  A rank that missed a
 *  deadline is asked again only once its late answer has arrived. */
VDX_API vdx_status vdx_dist_search(vdx_dist *dist, int64_t n, const float *x,
                                   int64_t k, const vdx_search_params *params,
                                   double deadline_s, int allow_partial,
                                   float *D, vdx_idx_t *I, int *answered);

/** Timing of the last vdx_dist_search on rank 0 (seconds): the whole
 *  call, the longest search of a shard (each rank measures its own and
 *  sends it with its answer), and the merge on rank 0.  The rest of the
 *  call (total - max_search - merge) is communication and waiting. */
VDX_API void vdx_dist_last_timing(const vdx_dist *dist, double *total_s,
                                  double *max_search_s, double *merge_s);

/** Collective: the index on rank `root` (*ix there, borrowed) is sent to
 *  every other rank, where *ix becomes a new index (freed with
 *  vdx_index_free): training on one rank, then the trained quantizer
 *  everywhere.  Through FAISS's serialization. */
VDX_API vdx_status vdx_dist_bcast_index(MPI_Comm comm, int root,
                                        vdx_index **ix);

/** Ranks other than 0: answers rank 0's calls until it closes the dist;
 *  returns VDX_OK then (or an MPI error). */
VDX_API vdx_status vdx_dist_worker_loop(vdx_dist *dist);

/** Rank 0: tells every rank to leave its loop (not waiting for a rank
 *  that stopped answering), then frees; other ranks: frees (after their
 *  loop returned).  NULL accepted.  The shards are not freed. */
VDX_API void vdx_dist_close(vdx_dist *dist);

#ifdef __cplusplus
}
#endif
#endif
