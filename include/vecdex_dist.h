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
 *  vdx_dist_close; any index kind, same d and metric everywhere).  Ids, as
 *  vdx_dist_open_ex with VDX_DIST_IDS_AUTO: IDMap / IDMap2 shards hold the
 *  global ids (and the dist takes writes); other kinds use successive ids.
 *  @return VDX_ERR_INVALID_ARGUMENT when the shards' d or metric differ, or
 *  their ids (on every rank), VDX_ERR_IO for an MPI error (the message has
 *  MPI's). */
VDX_API vdx_status vdx_dist_open(MPI_Comm comm, vdx_index *shard,
                                 vdx_dist **out);
/* How the shards' ids become global ids (vdx_dist_open_ex). */
enum {
    VDX_DIST_IDS_AUTO = 0,       /* GLOBAL for IDMap / IDMap2, else SUCCESSIVE */
    VDX_DIST_IDS_GLOBAL = 1,     /* the shards' ids are the global ids (IDMap,
                                    or IVF given ids): writes are taken */
    VDX_DIST_IDS_SUCCESSIVE = 2  /* shard r's ids are offset by the vectors
                                    of ranks 0..r-1 (IndexShards' successive
                                    ids): searched only, since a write on one
                                    shard would renumber the next ones */
};
/** As vdx_dist_open, the ids chosen (the same on every rank; GLOBAL for a
 *  kind that numbers vectors by position is VDX_ERR_INVALID_ARGUMENT). */
VDX_API vdx_status vdx_dist_open_ex(MPI_Comm comm, vdx_index *shard, int ids,
                                    vdx_dist **out);
VDX_API int vdx_dist_rank(const vdx_dist *dist);
VDX_API int vdx_dist_size(const vdx_dist *dist);
/** Vectors over all the shards: on rank 0, as of the last answers of the
 *  ranks (vdx_dist_open, then every write); elsewhere as of open. */
VDX_API int64_t vdx_dist_ntotal(const vdx_dist *dist);
VDX_API int64_t vdx_dist_d(const vdx_dist *dist);
/** Rank 0: shard r's ntotal as last reported (another rank: its own shard
 *  only); -1 for a bad r. */
VDX_API int64_t vdx_dist_shard_ntotal(const vdx_dist *dist, int r);
/** 1 when the shards carry their ids, so that writes are taken. */
VDX_API int vdx_dist_writable(const vdx_dist *dist);
/** The rank an id given to vdx_dist_add goes to among nranks: splitmix64's
 *  finaliser of the id (as uint64) mod nranks (-1 when nranks <= 0). */
VDX_API int vdx_dist_route_id(vdx_idx_t id, int nranks);

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

/* Writes (rank 0 only; the shards must hold global ids, else
 * VDX_ERR_UNSUPPORTED and nothing is sent).  Every write has a deadline and
 * is done only when every shard confirmed it in time.  Otherwise it returns
 * the error of the first shard that did not (VDX_ERR_TIMEOUT, or that
 * shard's status), naming it, and says how far the write got: "the write
 * is partial: 3 of 4 shards applied it (75 of 100 vectors stored), shards
 * 2 did not confirm it"; a shard that missed the deadline may still apply
 * it later.  Bad input (NaN, id -1, an untrained index) is refused before
 * anything is sent. */

/** Adds n vectors (n x d).  ids NULL: round robin over the ranks, the ids
 *  assigned from a counter starting at the total ntotal (or past the
 *  largest id of IDMap shards) and written to ids_out (may be NULL);
 *  ids given: vector i goes to rank vdx_dist_route_id(ids[i], size).
 *  applied (may be NULL): the vectors that shards confirmed storing. */
VDX_API vdx_status vdx_dist_add(vdx_dist *dist, int64_t n, const float *x,
                                const vdx_idx_t *ids, double deadline_s,
                                vdx_idx_t *ids_out, int64_t *applied);
/** Removes the n ids from every shard (sent to all); removed (may be
 *  NULL): the vectors removed over the shards that confirmed. */
VDX_API vdx_status vdx_dist_remove_ids(vdx_dist *dist, int64_t n,
                                       const vdx_idx_t *ids, double deadline_s,
                                       int64_t *removed);
/** The same for the ids in [imin, imax). */
VDX_API vdx_status vdx_dist_remove_range(vdx_dist *dist, vdx_idx_t imin,
                                         vdx_idx_t imax, double deadline_s,
                                         int64_t *removed);
/** Rank 0: saves every shard into the directory dir (created; a path every
 *  rank can write, the same file system for a later vdx_dist_load): rank r
 *  writes shard-<r>.faissindex (a FAISS file), rank 0 the manifest, so that
 *  dir is what vdx_read_sharded reads in one process (an IndexShards) and
 *  vdx_dist_load on S ranks.  Staged: each rank writes its file under a
 *  temporary name first; if one fails or misses the deadline nothing is
 *  replaced.  Then the manifest is removed, the staged files renamed, and
 *  the manifest written: a failure there leaves dir without a manifest
 *  (the error says so), never a mix that loads. */
VDX_API vdx_status vdx_dist_save(vdx_dist *dist, const char *dir,
                                 double deadline_s);
/** Collective: rank r reads shard r of the sharded directory dir
 *  (shard-<r>.faissindex or the sub-directory shard-<r>); *shard is a new
 *  index (vdx_index_free).  ids (may be NULL): what to give
 *  vdx_dist_open_ex, from the manifest (successive_ids 0: GLOBAL, 1:
 *  SUCCESSIVE).  The manifest's count must equal the communicator's size.
 *  A failure on any rank fails the call on every rank with the first
 *  failing rank's message. */
VDX_API vdx_status vdx_dist_load(MPI_Comm comm, const char *dir, int io_flags,
                                 vdx_index **shard, int *ids);

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
