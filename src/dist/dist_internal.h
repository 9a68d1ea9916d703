/*
 * dist_internal.h — private header of src/dist (vecdex_dist.h):
 *
 *   dist.c        open / close, the fan-out of a call to every rank (sends,
 *                 polled replies, deadlines), search, the worker loop
 *   dist_write.c  writes: routed adds, removal, save (staged, then
 *                 committed) and the collective load of a sharded directory
 *
 * Messages (tags): rank 0 -> r: a header (TAG_CALL: HDR int64: op, seq,
 * a0..a3, payload bytes, flags) then the payload (TAG_DATA, bytes).
 * r -> 0 (TAG_REPLY): REPLY_HEAD bytes (seq, status, seconds spent, the
 * shard's ntotal after the call, a count, a message) then the op's result
 * bytes.  A late reply carries an old seq and is discarded.
 */
#ifndef VDX_DIST_INTERNAL_H
#define VDX_DIST_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "vecdex_dist.h"
#include "common/common.h"

enum { TAG_CALL = 7101, TAG_DATA = 7102, TAG_REPLY = 7103 };
enum {
    OP_SEARCH = 1, /* a0 n, a1 k, a2 nprobe, a3 efSearch; payload n x d floats */
    OP_STOP = 2,
    OP_ADD = 3,    /* a0 n; payload n x d floats then n ids */
    OP_REMOVE = 4, /* flags 0: payload a0 ids; flags 1: the range [a1, a2) */
    OP_SAVE = 5,   /* payload: the directory (NUL-terminated); writes the
                      staged file shard-<rank>.faissindex.new */
    OP_COMMIT = 6, /* payload: the directory; renames the staged file */
    OP_ABORT = 7   /* payload: the directory; removes the staged file */
};
#define HDR 8
#define H_OP 0
#define H_SEQ 1
#define H_A0 2
#define H_NBYTES 6
#define H_FLAGS 7
#define MSG 256
/* seq, status, seconds (a double), ntotal, count, message */
#define REPLY_HEAD (5 * sizeof(int64_t) + MSG)
#define R_SEQ 0
#define R_STATUS 1
#define R_SECONDS 2
#define R_NTOTAL 3
#define R_COUNT 4

typedef struct peer {
    /* the last call sent: its buffers live until its sends complete */
    MPI_Request sreq[2];
    int sending;
    int64_t hdr[HDR];
    char *q;
    size_t qcap;
    /* the receive of its answer */
    MPI_Request rreq;
    int receiving;
    char *r;
    size_t rcap;
} peer;

struct vdx_dist {
    MPI_Comm comm;
    int rank, size;
    vdx_index *shard;
    int64_t d, ntotal, offset; /* offset: this rank's first global id */
    int metric;
    int ids_mode;    /* the shards carry their ids (writes allowed) */
    int64_t next_id; /* rank 0: the id the next add without ids starts at */
    int64_t rr;      /* rank 0: vectors routed round robin so far */
    int64_t *nt;     /* rank 0: each shard's ntotal, as last reported */
    int64_t seq;
    peer *peers; /* rank 0: one per rank (0 unused) */
    double t_total, t_search, t_merge; /* the last search's timing */
};

/* The outcome of one call on every rank. */
enum { FAN_WAIT = 0, FAN_OK = 1, FAN_FAILED = 2, FAN_SKIPPED = 3 };
typedef struct fan {
    int S;
    int64_t seq;
    int *state;
    vdx_status *codes;
    char (*msgs)[MSG];
    int64_t *count; /* each reply's count */
    double seconds_max;
} fan;

VDX_INTERNAL vdx_status vdx_fan_init(fan *f, int S);
VDX_INTERNAL void vdx_fan_free(fan *f);
/* Rank 0: sends the call (hdr's op and a0..a3, flags; seq is set here) to
 * every rank r >= 1 with the payload data[r] of bytes[r] bytes (data NULL:
 * data0 / bytes0 for every rank), and posts the receive of a reply of up
 * to rsize bytes.  A rank still busy sending an earlier call is skipped. */
VDX_INTERNAL void vdx_fan_send(vdx_dist *g, fan *f, const int64_t *hdr,
                               const void *const *data, const size_t *bytes,
                               const void *data0, size_t bytes0, size_t rsize);
/* Polls the replies until every rank answered or t_end (CLOCK_MONOTONIC
 * seconds) passed; an answer's result bytes stay in g->peers[r].r. */
VDX_INTERNAL void vdx_fan_wait(vdx_dist *g, fan *f, double t_end);
/* The first rank whose state is not FAN_OK, or -1. */
VDX_INTERNAL int vdx_fan_first_bad(const fan *f);
VDX_INTERNAL double vdx_dist_now(void);

/* SIGPIPE held back in the calling thread during a call: over TCP (ranks on
 * other hosts) a send to a rank that died writes to a closed socket, and
 * the default SIGPIPE would kill this process.  A SIGPIPE raised meanwhile
 * is taken off (unless one was pending before). */
typedef struct pipe_guard {
    sigset_t old;
    int was_pending;
} pipe_guard;
VDX_INTERNAL void vdx_pipe_block(pipe_guard *pg);
VDX_INTERNAL void vdx_pipe_restore(pipe_guard *pg);

/* A write handled on the rank holding the shard (rank 0 for its own part,
 * the worker loop for the others): *status, *count and msg are the reply's.
 * dist_write.c. */
VDX_INTERNAL void vdx_dist_apply(vdx_dist *g, const int64_t *hdr,
                                 const char *payload, size_t nbytes,
                                 int64_t *status, int64_t *count,
                                 char msg[MSG]);

#endif
