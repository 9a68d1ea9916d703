/*
 * dist.c — shards on MPI ranks (vecdex_dist.h): rank 0 sends each call to
 * every other rank point to point, does its own shard's part meanwhile,
 * then polls for the answers until the deadline (the fan-out, used by
 * search here and by the writes of dist_write.c).
 *
 * Why point to point and not MPI_Bcast / MPI_Gather: a collective waits for
 * every rank, so one dead or stuck rank would hang rank 0 past any
 * deadline.  Nonblocking sends and receives, polled with MPI_Test, let rank
 * 0 give up on a rank at the deadline and still answer.  The cost is
 * n_ranks - 1 sends of the batch instead of a tree broadcast, which is
 * what a few to a few tens of ranks can afford.  The message layout is in
 * dist_internal.h.
 *
 * Idle workers and rank 0 poll with MPI_Test and short sleeps instead of
 * blocking receives: Open MPI's blocking receive spins a core, which on a
 * machine shared by the ranks slows the ranks that work.
 */
#include <float.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist_internal.h"

double vdx_dist_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
#define now vdx_dist_now

void vdx_pipe_block(pipe_guard *pg) {
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    pg->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &pg->old);
}

void vdx_pipe_restore(pipe_guard *pg) {
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    if (!pg->was_pending && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &pg->old, NULL);
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

/* Shards that can store the caller's ids (so that routed adds and removals
 * keep every global id stable): IndexIDMap / IDMap2 and the IVF kinds.
 * Flat, HNSW and the other kinds number vectors by position. */
static int carries_ids(const vdx_index *ix) {
    return vdx_index_sub_index(ix) != NULL ||
           !strncmp(vdx_index_type_name(ix), "IndexIVF", 8);
}

/* this shard's vote: 1 global ids, 0 successive, -1 global asked of a kind
 * that cannot carry ids */
static int64_t ids_vote(const vdx_index *ix, int ids) {
    if (ids == VDX_DIST_IDS_SUCCESSIVE) return 0;
    if (ids == VDX_DIST_IDS_GLOBAL) return carries_ids(ix) ? 1 : -1;
    /* auto: an IDMap holds the caller's ids by construction; an IVF index
     * filled by add() holds positions, so it counts as successive */
    return vdx_index_sub_index(ix) != NULL;
}

/* the largest id an IDMap shard holds, or -1 (unknown for other kinds) */
static int64_t max_id(const vdx_index *ix) {
    int64_t n = vdx_index_ntotal(ix), m = -1;
    if (!vdx_index_sub_index(ix) || n <= 0) return -1;
    vdx_idx_t *ids = malloc((size_t)n * sizeof *ids);
    if (ids && vdx_index_get_id_map(ix, ids) == VDX_OK)
        for (int64_t i = 0; i < n; i++)
            if (ids[i] > m) m = ids[i];
    free(ids);
    return m;
}

vdx_status vdx_dist_open(MPI_Comm comm, vdx_index *shard, vdx_dist **out) {
    return vdx_dist_open_ex(comm, shard, VDX_DIST_IDS_AUTO, out);
}

vdx_status vdx_dist_open_ex(MPI_Comm comm, vdx_index *shard, int ids,
                            vdx_dist **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "dist_open: out is NULL");
    if (ids != VDX_DIST_IDS_AUTO && ids != VDX_DIST_IDS_GLOBAL &&
        ids != VDX_DIST_IDS_SUCCESSIVE)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "dist_open: ids=%d is not one of "
                         "VDX_DIST_IDS_AUTO / _GLOBAL / _SUCCESSIVE", ids);
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
    int64_t nt = vdx_index_ntotal(shard);
    int64_t mine[3] = {g->d, g->metric, ids_vote(shard, ids)}, lo[3], hi[3];
    int64_t top = max_id(shard) + 1, top_all = 0;
    int rc = MPI_Allreduce(mine, lo, 3, MPI_INT64_T, MPI_MIN, c);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(mine, hi, 3, MPI_INT64_T, MPI_MAX, c);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&nt, &g->ntotal, 1, MPI_INT64_T, MPI_SUM, c);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&top, &top_all, 1, MPI_INT64_T, MPI_MAX, c);
    g->offset = 0;
    if (rc == MPI_SUCCESS) rc = MPI_Exscan(&nt, &g->offset, 1, MPI_INT64_T, MPI_SUM, c);
    if (g->rank == 0) g->offset = 0; /* MPI_Exscan leaves rank 0's undefined */
    if (rc == MPI_SUCCESS && g->rank == 0 &&
        !(g->nt = calloc((size_t)g->size, sizeof *g->nt)))
        rc = MPI_ERR_NO_MEM;
    if (rc == MPI_SUCCESS)
        rc = MPI_Gather(&nt, 1, MPI_INT64_T, g->nt, 1, MPI_INT64_T, 0, c);
    /* every shard carries its ids: they are the global ids (no offset) */
    g->ids_mode = rc == MPI_SUCCESS && lo[2] == 1;
    if (g->ids_mode) g->offset = 0;
    g->next_id = g->ntotal > top_all ? g->ntotal : top_all;
    vdx_status st = VDX_OK;
    if (rc != MPI_SUCCESS) st = mpi_fail(rc, "MPI_Allreduce / MPI_Exscan / MPI_Gather");
    else if (lo[0] != hi[0] || lo[1] != hi[1])
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "dist_open: the shards differ: d from %lld to %lld, "
                       "metric from %lld to %lld (rank %d has d=%lld)",
                       (long long)lo[0], (long long)hi[0], (long long)lo[1],
                       (long long)hi[1], g->rank, (long long)g->d);
    else if (lo[2] < 0)
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "dist_open: global ids asked of shards that number their "
                       "vectors by position (rank %d has %s): wrap them in "
                       "IndexIDMap", g->rank, vdx_index_type_name(shard));
    else if (lo[2] != hi[2])
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "dist_open: some shards carry their ids (IndexIDMap) and "
                       "others number vectors by position (rank %d has %s): use "
                       "one kind everywhere", g->rank, vdx_index_type_name(shard));
    else if (g->rank == 0 && !(g->peers = calloc((size_t)g->size, sizeof *g->peers)))
        st = VDX_ERR_OUT_OF_MEMORY;
    if (st) {
        free(g->peers);
        free(g->nt);
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
int vdx_dist_writable(const vdx_dist *g) { return g ? g->ids_mode : 0; }
int64_t vdx_dist_shard_ntotal(const vdx_dist *g, int r) {
    if (!g || r < 0 || r >= g->size) return -1;
    if (g->rank != 0) return r == g->rank ? vdx_index_ntotal(g->shard) : -1;
    return g->nt[r];
}

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

/* ---- the fan-out -------------------------------------------------------- */

vdx_status vdx_fan_init(fan *f, int S) {
    memset(f, 0, sizeof *f);
    f->S = S;
    f->state = calloc((size_t)S, sizeof *f->state);
    f->codes = calloc((size_t)S, sizeof *f->codes);
    f->msgs = calloc((size_t)S, MSG);
    f->count = calloc((size_t)S, sizeof *f->count);
    if (!f->state || !f->codes || !f->msgs || !f->count) {
        vdx_fan_free(f);
        return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "dist: out of memory for %d ranks", S);
    }
    return VDX_OK;
}

void vdx_fan_free(fan *f) {
    free(f->state);
    free(f->codes);
    free(f->msgs);
    free(f->count);
    memset(f, 0, sizeof *f);
}

static void fan_fail(fan *f, int r, int state, vdx_status code, const char *msg) {
    f->state[r] = state;
    f->codes[r] = code;
    snprintf(f->msgs[r], MSG, "%s", msg);
}

void vdx_fan_send(vdx_dist *g, fan *f, const int64_t *hdr,
                  const void *const *data, const size_t *bytes,
                  const void *data0, size_t bytes0, size_t rsize) {
    f->seq = ++g->seq;
    for (int r = 1; r < g->size; r++) {
        peer *pe = &g->peers[r];
        const void *src = data ? data[r] : data0;
        size_t nb = data ? bytes[r] : bytes0;
        if (!sends_done(pe)) {
            fan_fail(f, r, FAN_SKIPPED, VDX_ERR_TIMEOUT,
                     "still receiving an earlier call: not sent");
            continue;
        }
        if (nb > (size_t)INT_MAX || rsize > (size_t)INT_MAX) {
            fan_fail(f, r, FAN_FAILED, VDX_ERR_INVALID_ARGUMENT,
                     "the call or its answer is over 2 GiB, MPI's limit for "
                     "one message: not sent (split the batch)");
            continue;
        }
        if (nb > pe->qcap) {
            char *q = realloc(pe->q, nb);
            if (!q) {
                fan_fail(f, r, FAN_FAILED, VDX_ERR_OUT_OF_MEMORY,
                         "out of memory for the call: not sent");
                continue;
            }
            pe->q = q;
            pe->qcap = nb;
        }
        if (nb) memcpy(pe->q, src, nb);
        if (pe->receiving) { /* a late answer may have come meanwhile */
            int fl = 0;
            if (MPI_Test(&pe->rreq, &fl, MPI_STATUS_IGNORE) == MPI_SUCCESS && fl)
                pe->receiving = 0;
        }
        memcpy(pe->hdr, hdr, HDR * sizeof *hdr);
        pe->hdr[H_SEQ] = f->seq;
        pe->hdr[H_NBYTES] = (int64_t)nb;
        /* the answer's buffer first: a rank told to do something must be
         * heard from */
        if (!pe->receiving && rsize > pe->rcap) {
            char *b = realloc(pe->r, rsize);
            if (!b) {
                fan_fail(f, r, FAN_FAILED, VDX_ERR_OUT_OF_MEMORY,
                         "out of memory for the answer: not sent");
                continue;
            }
            pe->r = b;
            pe->rcap = rsize;
        }
        if (pe->receiving && rsize > pe->rcap) {
            /* a late answer is still expected into the old buffer */
            fan_fail(f, r, FAN_SKIPPED, VDX_ERR_TIMEOUT,
                     "still owes the answer to an earlier call: not sent");
            continue;
        }
        int rc = MPI_Isend(pe->hdr, HDR, MPI_INT64_T, r, TAG_CALL, g->comm, &pe->sreq[0]);
        if (rc == MPI_SUCCESS)
            rc = MPI_Isend(pe->q, (int)nb, MPI_BYTE, r, TAG_DATA, g->comm, &pe->sreq[1]);
        if (rc != MPI_SUCCESS) {
            char m[64];
            snprintf(m, sizeof m, "MPI_Isend failed (MPI error %d)", rc);
            fan_fail(f, r, FAN_FAILED, VDX_ERR_IO, m);
            continue;
        }
        pe->sending = 1;
        /* a receive already posted (for a late answer) is kept: its
         * answer is checked, and discarded, in vdx_fan_wait */
        if (!pe->receiving) {
            rc = MPI_Irecv(pe->r, (int)pe->rcap, MPI_BYTE, r, TAG_REPLY, g->comm, &pe->rreq);
            if (rc != MPI_SUCCESS) {
                char m[64];
                snprintf(m, sizeof m, "MPI_Irecv failed (MPI error %d)", rc);
                fan_fail(f, r, FAN_FAILED, VDX_ERR_IO, m);
                continue;
            }
            pe->receiving = 1;
        }
    }
}

void vdx_fan_wait(vdx_dist *g, fan *f, double t_end) {
    for (;;) {
        int waiting = 0;
        for (int r = 1; r < g->size; r++) {
            peer *pe = &g->peers[r];
            if (f->state[r] != FAN_WAIT) continue;
            if (!pe->receiving) {
                fan_fail(f, r, FAN_SKIPPED, VDX_ERR_TIMEOUT, "no receive posted");
                continue;
            }
            int flag = 0;
            int rc = MPI_Test(&pe->rreq, &flag, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) {
                char m[64];
                snprintf(m, sizeof m, "MPI_Test failed (MPI error %d)", rc);
                pe->receiving = 0;
                fan_fail(f, r, FAN_FAILED, VDX_ERR_IO, m);
                continue;
            }
            if (!flag) {
                waiting++;
                continue;
            }
            pe->receiving = 0;
            int64_t head[5];
            memcpy(head, pe->r, sizeof head);
            /* any answer, a late one too, is the shard's latest size */
            if (g->nt && head[R_NTOTAL] >= 0) g->nt[r] = head[R_NTOTAL];
            if (head[R_SEQ] != f->seq) { /* a late answer to an earlier call */
                if (MPI_Irecv(pe->r, (int)pe->rcap, MPI_BYTE, r, TAG_REPLY, g->comm,
                              &pe->rreq) == MPI_SUCCESS)
                    pe->receiving = 1;
                if (pe->receiving) waiting++;
                else fan_fail(f, r, FAN_SKIPPED, VDX_ERR_IO, "MPI_Irecv failed");
                continue;
            }
            f->count[r] = head[R_COUNT];
            if (head[R_STATUS] != VDX_OK) {
                f->state[r] = FAN_FAILED;
                f->codes[r] = (vdx_status)head[R_STATUS];
                memcpy(f->msgs[r], pe->r + 5 * sizeof(int64_t), MSG);
                f->msgs[r][MSG - 1] = 0;
                continue;
            }
            double ts;
            memcpy(&ts, pe->r + R_SECONDS * sizeof(int64_t), sizeof ts);
            if (ts > f->seconds_max) f->seconds_max = ts;
            f->state[r] = FAN_OK;
        }
        if (!waiting || now() >= t_end) break;
        /* a call still being sent moves only while MPI is called: yield
         * then, sleep otherwise (the ranks may share this core) */
        int sending = 0;
        for (int r = 1; r < g->size; r++)
            if (f->state[r] == FAN_WAIT) sending += !sends_done(&g->peers[r]);
        if (sending) sched_yield();
        else nap(20);
    }
    if (g->nt) {
        int64_t s = 0;
        for (int r = 0; r < g->size; r++) s += g->nt[r];
        g->ntotal = s;
    }
}

int vdx_fan_first_bad(const fan *f) {
    for (int r = 0; r < f->S; r++)
        if (f->state[r] != FAN_OK) return r;
    return -1;
}

/* ---- search ------------------------------------------------------------- */

static vdx_status dist_search(vdx_dist *g, int64_t n, const float *x, int64_t k,
                              const vdx_search_params *params, double deadline_s,
                              int allow_partial, float *D, vdx_idx_t *I,
                              int *answered);

vdx_status vdx_dist_search(vdx_dist *g, int64_t n, const float *x, int64_t k,
                           const vdx_search_params *params, double deadline_s,
                           int allow_partial, float *D, vdx_idx_t *I,
                           int *answered) {
    pipe_guard pg;
    vdx_pipe_block(&pg);
    vdx_status st = dist_search(g, n, x, k, params, deadline_s, allow_partial, D, I, answered);
    vdx_pipe_restore(&pg);
    return st;
}

static vdx_status dist_search(vdx_dist *g, int64_t n, const float *x, int64_t k,
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
    const double t0 = now(), t_end = t0 + deadline_s;
    const int S = g->size;
    const size_t nk = (size_t)n * (size_t)k;
    const size_t rsize = REPLY_HEAD + nk * (sizeof(float) + sizeof(vdx_idx_t));
    float *Dall = vdx_malloc_array((size_t)S, nk * sizeof(float));
    vdx_idx_t *Iall = vdx_malloc_array((size_t)S, nk * sizeof(vdx_idx_t));
    fan f;
    if ((st = vdx_fan_init(&f, S))) goto done_nofan;
    if (!Dall || !Iall) {
        st = vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                       "dist_search: out of memory for %d x %lld x %lld results", S,
                       (long long)n, (long long)k);
        goto done;
    }
    vdx_search_params p;
    vdx_search_params_init(&p);
    if (params) {
        p.nprobe = params->nprobe;
        p.efSearch = params->efSearch;
    }
    int64_t h[HDR] = {OP_SEARCH, 0, n, k, p.nprobe, p.efSearch, 0, 0};
    vdx_fan_send(g, &f, h, NULL, NULL, x, (size_t)n * (size_t)g->d * sizeof(float), rsize);
    /* our own shard meanwhile */
    double t_s0 = now();
    vdx_status s0 = local_search(g, n, x, k, &p, Dall, Iall);
    double t_local = now() - t_s0;
    f.state[0] = s0 ? FAN_FAILED : FAN_OK;
    f.codes[0] = s0;
    if (s0) snprintf(f.msgs[0], MSG, "%s", vdx_last_error());
    vdx_fan_wait(g, &f, t_end);
    g->t_search = t_local > f.seconds_max ? t_local : f.seconds_max;
    int ok = 0;
    for (int r = 0; r < S; r++) ok += f.state[r] == FAN_OK;
    if (answered) *answered = ok;
    int worst = vdx_fan_first_bad(&f);
    if (worst >= 0 && !allow_partial) {
        if (f.state[worst] == FAN_FAILED)
            st = vdx_raise(f.codes[worst] ? f.codes[worst] : VDX_ERR_INTERNAL,
                           "dist search: shard %d of %d (rank %d) failed: %s",
                           worst, S, worst, f.msgs[worst]);
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
    for (int r = 0; r < S; r++) {
        float *Dr = Dall + (size_t)r * nk;
        vdx_idx_t *Ir = Iall + (size_t)r * nk;
        if (r > 0 && f.state[r] == FAN_OK) {
            memcpy(Dr, g->peers[r].r + REPLY_HEAD, nk * sizeof(float));
            memcpy(Ir, g->peers[r].r + REPLY_HEAD + nk * sizeof(float),
                   nk * sizeof(vdx_idx_t));
        } else if (f.state[r] != FAN_OK) {
            for (size_t i = 0; i < nk; i++) {
                Dr[i] = keep_max ? -FLT_MAX : FLT_MAX;
                Ir[i] = -1;
            }
        }
    }
    double t_m = now();
    st = vdx_merge_knn_results(n, k, S, Dall, Iall, keep_max, D, I);
    g->t_merge = now() - t_m;
    g->t_total = now() - t0;
done:
    vdx_fan_free(&f);
done_nofan:
    vdx_free(Dall);
    vdx_free(Iall);
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

/* waits (polling) for a message from rank 0; 0, or an MPI error.  busy:
 * the message is on its way (a call's data after its header): yield
 * instead of sleeping, since a large message only moves while MPI_Test is
 * called (a fragment per call) */
static int poll_recv(void *buf, int count, MPI_Datatype t, int tag, MPI_Comm c,
                     int busy) {
    MPI_Request rq;
    int rc = MPI_Irecv(buf, count, t, 0, tag, c, &rq);
    if (rc != MPI_SUCCESS) return rc;
    long us = 10;
    for (;;) {
        int flag = 0;
        rc = MPI_Test(&rq, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || flag) return rc;
        if (busy) {
            sched_yield();
            continue;
        }
        nap(us);
        if (us < 200) us += 10; /* idle workers back off to 0.2 ms */
    }
}

/* grows *buf to hold n bytes; 0 or -1 */
static int grow(char **buf, size_t *cap, size_t n) {
    if (n <= *cap) return 0;
    char *b = realloc(*buf, n ? n : 1);
    if (!b) return -1;
    *buf = b;
    *cap = n;
    return 0;
}

vdx_status vdx_dist_worker_loop(vdx_dist *g) {
    vdx_clear_error();
    if (!g || g->rank == 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dist_worker_loop: rank 0 takes the calls, it does "
                         "not serve them");
    char *in = NULL, *rep = NULL;
    size_t incap = 0, rcap = 0;
    vdx_status st = VDX_OK;
    pipe_guard pg;
    vdx_pipe_block(&pg);
    for (;;) {
        int64_t h[HDR];
        int rc = poll_recv(h, HDR, MPI_INT64_T, TAG_CALL, g->comm, 0);
        if (rc != MPI_SUCCESS) {
            st = mpi_fail(rc, "receive of a call");
            break;
        }
        if (h[H_OP] == OP_STOP) break;
        size_t nb = (size_t)h[H_NBYTES];
        char dummy;
        int have_in = grow(&in, &incap, nb) == 0;
        /* receive the payload even without room for it (into nothing: the
         * truncation is an MPI error, answered as out of memory) */
        rc = poll_recv(have_in ? in : &dummy, have_in ? (int)nb : 0, MPI_BYTE,
                       TAG_DATA, g->comm, 1);
        if (rc != MPI_SUCCESS && have_in) {
            st = mpi_fail(rc, "receive of a call's data");
            break;
        }
        int64_t head[5] = {h[H_SEQ], VDX_OK, 0, 0, 0};
        char msg[MSG] = {0};
        size_t rlen = REPLY_HEAD;
        double t0 = now();
        if (!have_in) {
            head[R_STATUS] = VDX_ERR_OUT_OF_MEMORY;
            snprintf(msg, MSG, "rank %d: out of memory for a call of %zu bytes",
                     g->rank, nb);
        } else if (h[H_OP] == OP_SEARCH) {
            int64_t n = h[H_A0], k = h[H_A0 + 1];
            size_t nk = (size_t)n * (size_t)k;
            size_t rsize = REPLY_HEAD + nk * (sizeof(float) + sizeof(vdx_idx_t));
            vdx_idx_t *I = malloc(nk * sizeof *I);
            if (grow(&rep, &rcap, rsize) || !I) {
                head[R_STATUS] = VDX_ERR_OUT_OF_MEMORY;
                snprintf(msg, MSG, "rank %d: out of memory for %lld x %lld results",
                         g->rank, (long long)n, (long long)k);
            } else {
                vdx_search_params p;
                vdx_search_params_init(&p);
                p.nprobe = h[H_A0 + 2];
                p.efSearch = (int)h[H_A0 + 3];
                float *D = (float *)(void *)(rep + REPLY_HEAD);
                vdx_status s = local_search(g, n, (const float *)(void *)in, k, &p, D, I);
                if (s) {
                    head[R_STATUS] = s;
                    snprintf(msg, MSG, "%s", vdx_last_error());
                } else {
                    memcpy(rep + REPLY_HEAD + nk * sizeof(float), I, nk * sizeof *I);
                    rlen = rsize;
                }
            }
            free(I);
        } else {
            vdx_dist_apply(g, h, in, nb, &head[R_STATUS], &head[R_COUNT], msg);
        }
        double ts = now() - t0;
        memcpy(&head[R_SECONDS], &ts, sizeof ts);
        head[R_NTOTAL] = vdx_index_ntotal(g->shard);
        char small[REPLY_HEAD];
        char *out = rep && rcap >= REPLY_HEAD ? rep : small;
        if (out == small) rlen = REPLY_HEAD;
        memcpy(out, head, sizeof head);
        memcpy(out + 5 * sizeof(int64_t), msg, MSG);
        rc = MPI_Send(out, (int)rlen, MPI_BYTE, 0, TAG_REPLY, g->comm);
        if (rc != MPI_SUCCESS) {
            st = mpi_fail(rc, "send of an answer");
            break;
        }
    }
    vdx_pipe_restore(&pg);
    free(in);
    free(rep);
    return st;
}

void vdx_dist_close(vdx_dist *g) {
    if (!g) return;
    pipe_guard pg;
    vdx_pipe_block(&pg);
    if (g->rank == 0 && g->peers) {
        static int64_t stop[HDR] = {OP_STOP, 0, 0, 0, 0, 0, 0, 0};
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
    free(g->nt);
    MPI_Comm_free(&g->comm);
    vdx_pipe_restore(&pg);
    free(g);
}
