/*
 * dist.c — shards on MPI ranks (vecdex_dist.h): rank 0 sends each call to
 * every other rank point to point, searches its own shard meanwhile, then
 * polls for the answers until the deadline and merges them.
 *
 * Why point to point and not MPI_Bcast / MPI_Gather: a collective waits for
 * every rank, so one dead or stuck rank would hang rank 0 past any
 * deadline.  Nonblocking sends and receives, polled with MPI_Test, let rank
 * 0 give up on a rank at the deadline and still answer.  The cost is
 * n_ranks - 1 sends of the batch instead of a tree broadcast, which is
 * what a few to a few tens of ranks can afford.
 *
 * Messages (tags): rank 0 -> r: a header (TAG_CALL: op, seq, n, k, nprobe,
 * efSearch as int64) then, for a search, the queries (TAG_DATA: n x d
 * floats).  r -> 0 (TAG_REPLY): seq, status, a message (256 bytes), then
 * n x k floats and n x k int64 ids.  A late reply carries an old seq and
 * is discarded (its receive is posted again for the current call).
 *
 * Idle workers and rank 0 poll with MPI_Test and short sleeps instead of
 * blocking receives: Open MPI's blocking receive spins a core, which on a
 * machine shared by the ranks slows the ranks that work.
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vecdex_dist.h"
#include "common/common.h"

enum { TAG_CALL = 7101, TAG_DATA = 7102, TAG_REPLY = 7103 };
enum { OP_SEARCH = 1, OP_STOP = 2 };
#define HDR 6
#define MSG 256
/* seq, status, search seconds (a double), message */
#define REPLY_HEAD (3 * sizeof(int64_t) + MSG)

typedef struct peer {
    /* the last call sent: its buffers live until its sends complete */
    MPI_Request sreq[2];
    int sending;
    int64_t hdr[HDR];
    float *q;
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
    int64_t seq;
    peer *peers; /* rank 0: one per rank (0 unused) */
    double t_total, t_search, t_merge; /* the last search's timing */
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void nap(long us) {
    struct timespec t = {0, us * 1000};
    nanosleep(&t, NULL);
}

static vdx_status mpi_fail(int rc, const char *what) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "code %d", rc);
    return vdx_raise(VDX_ERR_IO, "dist: %s failed: %s", what, s);
}

#define MPI_TRY(call, what)                              \
    do {                                                 \
        int rc_ = (call);                                \
        if (rc_ != MPI_SUCCESS) return mpi_fail(rc_, what); \
    } while (0)

vdx_status vdx_dist_open(MPI_Comm comm, vdx_index *shard, vdx_dist **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "dist_open: out is NULL");
    *out = NULL;
    if (!shard) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "dist_open: shard is NULL");
    MPI_Comm c;
    MPI_TRY(MPI_Comm_dup(comm, &c), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    vdx_dist *g = calloc(1, sizeof *g);
    if (!g) {
        MPI_Comm_free(&c);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    g->comm = c;
    MPI_Comm_rank(c, &g->rank);
    MPI_Comm_size(c, &g->size);
    g->shard = shard;
    g->d = vdx_index_d(shard);
    g->metric = (int)vdx_index_metric(shard);
    int64_t mine[2] = {g->d, g->metric}, lo[2], hi[2], nt = vdx_index_ntotal(shard);
    int rc = MPI_Allreduce(mine, lo, 2, MPI_INT64_T, MPI_MIN, c);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(mine, hi, 2, MPI_INT64_T, MPI_MAX, c);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&nt, &g->ntotal, 1, MPI_INT64_T, MPI_SUM, c);
    g->offset = 0;
    if (rc == MPI_SUCCESS) rc = MPI_Exscan(&nt, &g->offset, 1, MPI_INT64_T, MPI_SUM, c);
    if (g->rank == 0) g->offset = 0; /* MPI_Exscan leaves rank 0's undefined */
    vdx_status st = VDX_OK;
    if (rc != MPI_SUCCESS) st = mpi_fail(rc, "MPI_Allreduce / MPI_Exscan");
    else if (lo[0] != hi[0] || lo[1] != hi[1])
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "dist_open: the shards differ: d from %lld to %lld, "
                       "metric from %lld to %lld (rank %d has d=%lld)",
                       (long long)lo[0], (long long)hi[0], (long long)lo[1],
                       (long long)hi[1], g->rank, (long long)g->d);
    else if (g->rank == 0 && !(g->peers = calloc((size_t)g->size, sizeof *g->peers)))
        st = VDX_ERR_OUT_OF_MEMORY;
    if (st) {
        free(g->peers);
        MPI_Comm_free(&g->comm);
        free(g);
        return st;
    }
    *out = g;
    return VDX_OK;
}

int vdx_dist_rank(const vdx_dist *g) { return g ? g->rank : -1; }
int vdx_dist_size(const vdx_dist *g) { return g ? g->size : 0; }
int64_t vdx_dist_ntotal(const vdx_dist *g) { return g ? g->ntotal : 0; }
int64_t vdx_dist_d(const vdx_dist *g) { return g ? g->d : 0; }

/* local search, ids made global */
static vdx_status local_search(const vdx_dist *g, int64_t n, const float *x,
                               int64_t k, const vdx_search_params *p, float *D,
                               vdx_idx_t *I) {
    vdx_status st = vdx_index_search(g->shard, n, x, k, p, D, I);
    if (!st && g->offset)
        for (int64_t i = 0; i < n * k; i++)
            if (I[i] >= 0) I[i] += g->offset;
    return st;
}

/* 1 when the peer's previous sends are done (or there were none) */
static int sends_done(peer *p) {
    if (!p->sending) return 1;
    int done = 0;
    MPI_Testall(2, p->sreq, &done, MPI_STATUSES_IGNORE);
    if (done) p->sending = 0;
    return done;
}

vdx_status vdx_dist_search(vdx_dist *g, int64_t n, const float *x, int64_t k,
                           const vdx_search_params *params, double deadline_s,
                           int allow_partial, float *D, vdx_idx_t *I,
                           int *answered) {
    vdx_clear_error();
    if (answered) *answered = 0;
    if (!g || g->rank != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dist_search: only rank 0 searches (this is rank %d)",
                         g ? g->rank : -1);
    if (n <= 0 || k <= 0 || k > VDX_MAX_K || !x || !D || !I)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dist_search: n=%lld and k=%lld must be >= 1 and the "
                         "arrays given",
                         (long long)n, (long long)k);
    if (!(deadline_s > 0))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dist_search: deadline %g s must be > 0", deadline_s);
    vdx_status st = vdx_check_vectors(x, n, g->d, "query vectors");
    if (st) return st;
    const double t_end = now() + deadline_s;
    const int S = g->size;
    const size_t nk = (size_t)n * (size_t)k;
    const size_t rsize = REPLY_HEAD + nk * (sizeof(float) + sizeof(vdx_idx_t));
    float *Dall = vdx_malloc_array((size_t)S, nk * sizeof(float));
    vdx_idx_t *Iall = vdx_malloc_array((size_t)S, nk * sizeof(vdx_idx_t));
    int *state = calloc((size_t)S, sizeof *state); /* 0 wait, 1 ok, 2 failed, 3 skipped */
    char(*msgs)[MSG] = calloc((size_t)S, MSG);
    vdx_status *codes = calloc((size_t)S, sizeof *codes);
    if (!Dall || !Iall || !state || !msgs || !codes) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    int64_t seq = ++g->seq;
    vdx_search_params p;
    vdx_search_params_init(&p);
    if (params) {
        p.nprobe = params->nprobe;
        p.efSearch = params->efSearch;
    }
    /* send the call to every rank that can take it */
    for (int r = 1; r < S; r++) {
        peer *pe = &g->peers[r];
        if (!sends_done(pe)) { /* still sending an earlier call: stuck */
            state[r] = 3;
            continue;
        }
        size_t qn = (size_t)n * (size_t)g->d;
        if (qn > pe->qcap) {
            float *q = realloc(pe->q, qn * sizeof(float));
            if (!q) {
                state[r] = 3;
                continue;
            }
            pe->q = q;
            pe->qcap = qn;
        }
        memcpy(pe->q, x, qn * sizeof(float));
        int64_t h[HDR] = {OP_SEARCH, seq, n, k, p.nprobe, p.efSearch};
        memcpy(pe->hdr, h, sizeof h);
        int rc = MPI_Isend(pe->hdr, HDR, MPI_INT64_T, r, TAG_CALL, g->comm, &pe->sreq[0]);
        if (rc == MPI_SUCCESS)
            rc = MPI_Isend(pe->q, (int)qn, MPI_FLOAT, r, TAG_DATA, g->comm, &pe->sreq[1]);
        if (rc != MPI_SUCCESS) {
            state[r] = 2;
            codes[r] = VDX_ERR_IO;
            snprintf(msgs[r], MSG, "MPI_Isend failed (MPI error %d)", rc);
            continue;
        }
        pe->sending = 1;
        /* its answer: a receive already posted (a late one) is kept and
         * checked; otherwise post one */
        if (!pe->receiving) {
            if (rsize > pe->rcap) {
                char *b = realloc(pe->r, rsize);
                if (!b) {
                    state[r] = 3;
                    continue;
                }
                pe->r = b;
                pe->rcap = rsize;
            }
            rc = MPI_Irecv(pe->r, (int)rsize, MPI_BYTE, r, TAG_REPLY, g->comm, &pe->rreq);
            if (rc != MPI_SUCCESS) {
                state[r] = 2;
                codes[r] = VDX_ERR_IO;
                snprintf(msgs[r], MSG, "MPI_Irecv failed (MPI error %d)", rc);
                continue;
            }
            pe->receiving = 1;
        }
    }
    /* our own shard meanwhile */
    double t_s0 = now();
    vdx_status s0 = local_search(g, n, x, k, &p, Dall, Iall);
    g->t_search = now() - t_s0;
    state[0] = s0 ? 2 : 1;
    codes[0] = s0;
    if (s0) snprintf(msgs[0], MSG, "%s", vdx_last_error());
    /* the answers, until the deadline */
    for (;;) {
        int waiting = 0;
        for (int r = 1; r < S; r++) {
            peer *pe = &g->peers[r];
            if (state[r] != 0) continue;
            if (!pe->receiving) {
                state[r] = 3;
                continue;
            }
            int flag = 0;
            MPI_Status ms;
            int rc = MPI_Test(&pe->rreq, &flag, &ms);
            if (rc != MPI_SUCCESS) {
                pe->receiving = 0;
                state[r] = 2;
                codes[r] = VDX_ERR_IO;
                snprintf(msgs[r], MSG, "MPI_Test failed (MPI error %d)", rc);
                continue;
            }
            if (!flag) {
                waiting++;
                continue;
            }
            pe->receiving = 0;
            int64_t head[2];
            memcpy(head, pe->r, sizeof head);
            if (head[0] != seq) { /* a late answer to an earlier call */
                if (rsize <= pe->rcap &&
                    MPI_Irecv(pe->r, (int)rsize, MPI_BYTE, r, TAG_REPLY, g->comm,
                              &pe->rreq) == MPI_SUCCESS)
                    pe->receiving = 1;
                if (pe->receiving) waiting++;
                else state[r] = 3;
                continue;
            }
            if (head[1] != VDX_OK) {
                state[r] = 2;
                codes[r] = (vdx_status)head[1];
                memcpy(msgs[r], pe->r + 3 * sizeof(int64_t), MSG);
                msgs[r][MSG - 1] = 0;
                continue;
            }
            double ts;
            memcpy(&ts, pe->r + 2 * sizeof(int64_t), sizeof ts);
            if (ts > g->t_search) g->t_search = ts;
            memcpy(Dall + (size_t)r * nk, pe->r + REPLY_HEAD, nk * sizeof(float));
            memcpy(Iall + (size_t)r * nk, pe->r + REPLY_HEAD + nk * sizeof(float),
                   nk * sizeof(vdx_idx_t));
            state[r] = 1;
        }
        if (!waiting || now() >= t_end) break;
        nap(20);
    }
    int ok = 0;
    for (int r = 0; r < S; r++) ok += state[r] == 1;
    if (answered) *answered = ok;
    int worst = -1;
    for (int r = 0; r < S && worst < 0; r++)
        if (state[r] != 1) worst = r;
    if (worst >= 0 && !allow_partial) {
        if (state[worst] == 2)
            st = vdx_raise(codes[worst] ? codes[worst] : VDX_ERR_INTERNAL,
                           "dist search: shard %d of %d (rank %d) failed: %s",
                           worst, S, worst, msgs[worst]);
        else
            st = vdx_raise(VDX_ERR_TIMEOUT,
                           "dist search: shard %d of %d (rank %d) did not "
                           "answer within the deadline of %.3f s (%d of %d "
                           "shards answered)",
                           worst, S, worst, deadline_s, ok, S);
        goto done;
    }
    /* the shards that did not answer count as empty */
    int keep_max = g->metric == VDX_METRIC_INNER_PRODUCT;
    for (int r = 0; r < S; r++)
        if (state[r] != 1)
            for (size_t i = 0; i < nk; i++) {
                Dall[(size_t)r * nk + i] = keep_max ? -FLT_MAX : FLT_MAX;
                Iall[(size_t)r * nk + i] = -1;
            }
    double t_m = now();
    st = vdx_merge_knn_results(n, k, S, Dall, Iall, keep_max, D, I);
    g->t_merge = now() - t_m;
    g->t_total = now() - (t_end - deadline_s);
done:
    vdx_free(Dall);
    vdx_free(Iall);
    free(state);
    free(msgs);
    free(codes);
    return st;
}

void vdx_dist_last_timing(const vdx_dist *g, double *total_s,
                          double *max_search_s, double *merge_s) {
    if (total_s) *total_s = g ? g->t_total : 0;
    if (max_search_s) *max_search_s = g ? g->t_search : 0;
    if (merge_s) *merge_s = g ? g->t_merge : 0;
}

vdx_status vdx_dist_bcast_index(MPI_Comm comm, int root, vdx_index **ix) {
    vdx_clear_error();
    int rank;
    MPI_TRY(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
    uint8_t *buf = NULL;
    size_t size = 0;
    int64_t sz = -1;
    if (rank == root && *ix && vdx_serialize_index(*ix, &buf, &size) == VDX_OK)
        sz = (int64_t)size;
    int rc = MPI_Bcast(&sz, 1, MPI_INT64_T, root, comm);
    if (rc != MPI_SUCCESS) {
        vdx_free_buffer(buf);
        return mpi_fail(rc, "MPI_Bcast of the index size");
    }
    if (sz < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dist_bcast_index: rank %d has no index to send "
                         "(or it could not be serialized)", root);
    if (rank != root && !(buf = malloc((size_t)sz ? (size_t)sz : 1)))
        return VDX_ERR_OUT_OF_MEMORY; /* the others then fail in MPI_Bcast */
    /* in pieces: MPI counts are int */
    for (int64_t off = 0; off < sz && rc == MPI_SUCCESS; off += 1 << 30) {
        int64_t m = sz - off < (1 << 30) ? sz - off : (1 << 30);
        rc = MPI_Bcast(buf + off, (int)m, MPI_BYTE, root, comm);
    }
    vdx_status st = VDX_OK;
    if (rc != MPI_SUCCESS) st = mpi_fail(rc, "MPI_Bcast of the index");
    else if (rank != root) st = vdx_deserialize_index(buf, (size_t)sz, ix);
    if (rank == root) vdx_free_buffer(buf);
    else free(buf);
    return st;
}

/* waits (polling) for a message; 0, or an MPI error */
static int poll_recv(void *buf, int count, MPI_Datatype t, int tag, MPI_Comm c) {
    MPI_Request rq;
    int rc = MPI_Irecv(buf, count, t, 0, tag, c, &rq);
    if (rc != MPI_SUCCESS) return rc;
    long us = 10;
    for (;;) {
        int flag = 0;
        rc = MPI_Test(&rq, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || flag) return rc;
        nap(us);
        if (us < 200) us += 10; /* idle workers back off to 0.2 ms */
    }
}

vdx_status vdx_dist_worker_loop(vdx_dist *g) {
    vdx_clear_error();
    if (!g || g->rank == 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dist_worker_loop: rank 0 takes the calls, it does "
                         "not serve them");
    float *q = NULL, *D = NULL;
    size_t qcap = 0, rcap = 0;
    char *rep = NULL;
    vdx_status st = VDX_OK;
    for (;;) {
        int64_t h[HDR];
        int rc = poll_recv(h, HDR, MPI_INT64_T, TAG_CALL, g->comm);
        if (rc != MPI_SUCCESS) {
            st = mpi_fail(rc, "receive of a call");
            break;
        }
        if (h[0] == OP_STOP) break;
        int64_t n = h[2], k = h[3];
        size_t qn = (size_t)n * (size_t)g->d, nk = (size_t)n * (size_t)k;
        if (qn > qcap) {
            free(q);
            q = malloc(qn * sizeof(float));
            qcap = q ? qn : 0;
        }
        rc = poll_recv(q ? (void *)q : (void *)h, q ? (int)qn : 0, MPI_FLOAT, TAG_DATA, g->comm);
        if (rc != MPI_SUCCESS) {
            st = mpi_fail(rc, "receive of the queries");
            break;
        }
        size_t rsize = REPLY_HEAD + nk * (sizeof(float) + sizeof(vdx_idx_t));
        if (rsize > rcap) {
            free(rep);
            rep = malloc(rsize);
            rcap = rep ? rsize : 0;
        }
        int64_t head[2] = {h[1], VDX_OK};
        double ts = 0;
        char msg[MSG] = {0};
        if (!rep || !q) {
            head[1] = VDX_ERR_OUT_OF_MEMORY;
            snprintf(msg, MSG, "rank %d: out of memory for %lld x %lld results",
                     g->rank, (long long)n, (long long)k);
        } else {
            vdx_search_params p;
            vdx_search_params_init(&p);
            p.nprobe = h[4];
            p.efSearch = (int)h[5];
            D = (float *)(rep + REPLY_HEAD);
            vdx_idx_t *I = malloc(nk * sizeof *I);
            double t0 = now();
            vdx_status s = I ? local_search(g, n, q, k, &p, D, I) : VDX_ERR_OUT_OF_MEMORY;
            ts = now() - t0;
            if (s) {
                head[1] = s;
                snprintf(msg, MSG, "%s", I ? vdx_last_error() : "out of memory");
            } else {
                memcpy(rep + REPLY_HEAD + nk * sizeof(float), I, nk * sizeof *I);
            }
            free(I);
        }
        char small[REPLY_HEAD];
        char *out = rep ? rep : small;
        memcpy(out, head, sizeof head);
        memcpy(out + 2 * sizeof(int64_t), &ts, sizeof ts);
        memcpy(out + 3 * sizeof(int64_t), msg, MSG);
        rc = MPI_Send(out, head[1] == VDX_OK ? (int)rsize : (int)REPLY_HEAD, MPI_BYTE, 0,
                      TAG_REPLY, g->comm);
        if (rc != MPI_SUCCESS) {
            st = mpi_fail(rc, "send of an answer");
            break;
        }
    }
    free(q);
    free(rep);
    return st;
}

void vdx_dist_close(vdx_dist *g) {
    if (!g) return;
    if (g->rank == 0 && g->peers) {
        static int64_t stop[HDR] = {OP_STOP, 0, 0, 0, 0, 0};
        double t_end = now() + 1.0;
        MPI_Request *rq = calloc((size_t)g->size, sizeof *rq);
        for (int r = 1; rq && r < g->size; r++) {
            rq[r] = MPI_REQUEST_NULL;
            if (sends_done(&g->peers[r]))
                MPI_Isend(stop, HDR, MPI_INT64_T, r, TAG_CALL, g->comm, &rq[r]);
        }
        /* a second wait bounded by a deadline: a dead rank never takes it */
        for (int done = 0; rq && !done && now() < t_end;) {
            MPI_Testall(g->size - 1, rq + 1, &done, MPI_STATUSES_IGNORE);
            if (!done) nap(100);
        }
        free(rq);
        for (int r = 1; r < g->size; r++) {
            free(g->peers[r].q);
            /* a pending receive's buffer must outlive it: leaked on
             * purpose when a rank never answered */
            if (!g->peers[r].receiving) free(g->peers[r].r);
        }
        free(g->peers);
    }
    MPI_Comm_free(&g->comm);
    free(g);
}
