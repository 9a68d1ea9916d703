/*
 * test_store_crash.c — durability the hard way (issue 18 §3): a child
 * process runs a mixed upsert / delete / delete-where / compact /
 * checkpoint workload on a store and is killed with SIGKILL at a random
 * moment, VDX_CRASH_KILLS times (default 220).  The operations are a pure
 * function of their sequence number, and the child reports each one it
 * got VDX_OK for through a pipe, so the parent keeps the log of
 * acknowledged operations.  After each kill the parent opens the store and
 * requires: the integrity check passes; the rows are exactly those of the
 * acknowledged operations, or of those plus the one in flight (which was
 * applied whole or not at all); searches find each row's own vector first
 * and filtered counts match.  The next child carries on from there.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define D 8
#define NKEYS 200

static char root[64] = "/tmp/vdx_crash_XXXXXX";
static char path[128];

typedef struct model {
    int present[NKEYS];
    uint64_t vseed[NKEYS]; /* the vector is a function of this */
    int g[NKEYS];          /* metadata {"g": g}, -1: none */
} model;

static uint64_t mix(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void vec_of(uint64_t seed, float *v) {
    for (int j = 0; j < D; j++) {
        seed = mix(seed + (uint64_t)j + 1);
        v[j] = (float)((seed >> 40) * (1.0 / 16777216.0));
    }
}

enum { OP_UPSERT, OP_DELETE, OP_DELETE_WHERE, OP_COMPACT, OP_CHECKPOINT };

typedef struct op {
    int kind, n;
    int keys[24];
    int g[24];
    uint64_t vseed[24];
    int where_g;
} op;

static op make_op(int64_t i) {
    op o;
    memset(&o, 0, sizeof o);
    uint64_t r = mix((uint64_t)i * 7919 + 17);
    int p = (int)(r % 100);
    o.kind = p < 62 ? OP_UPSERT : p < 85 ? OP_DELETE : p < 93 ? OP_DELETE_WHERE
             : p < 97 ? OP_COMPACT : OP_CHECKPOINT;
    o.n = 1 + (int)((r >> 8) % (o.kind == OP_UPSERT ? 24 : 6));
    int used[NKEYS] = {0};
    for (int j = 0; j < o.n; j++) {
        int k;
        uint64_t t = mix(r + (uint64_t)j * 31);
        do {
            k = (int)(t % NKEYS);
            t = mix(t);
        } while (used[k]);
        used[k] = 1;
        o.keys[j] = k;
        o.g[j] = (t >> 20) % 4 == 0 ? -1 : (int)((t >> 24) % 5);
        o.vseed[j] = mix(t ^ (uint64_t)i);
    }
    o.where_g = (int)((r >> 40) % 5);
    return o;
}

static void apply(model *m, const op *o) {
    switch (o->kind) {
    case OP_UPSERT:
        for (int j = 0; j < o->n; j++) {
            m->present[o->keys[j]] = 1;
            m->vseed[o->keys[j]] = o->vseed[j];
            m->g[o->keys[j]] = o->g[j];
        }
        break;
    case OP_DELETE:
        for (int j = 0; j < o->n; j++) m->present[o->keys[j]] = 0;
        break;
    case OP_DELETE_WHERE:
        for (int k = 0; k < NKEYS; k++)
            if (m->present[k] && m->g[k] == o->where_g) m->present[k] = 0;
        break;
    }
}

static vdx_status run_op(vdx_store *s, const op *o) {
    vdx_store_key keys[24];
    for (int j = 0; j < o->n; j++) keys[j].text = NULL, keys[j].id = o->keys[j];
    switch (o->kind) {
    case OP_UPSERT: {
        float x[24 * D];
        char mbuf[24][32], tbuf[24][32];
        const char *meta[24], *texts[24];
        for (int j = 0; j < o->n; j++) {
            vec_of(o->vseed[j], x + j * D);
            snprintf(mbuf[j], 32, "{\"g\":%d}", o->g[j]);
            snprintf(tbuf[j], 32, "word%d other", o->keys[j]);
            meta[j] = o->g[j] >= 0 ? mbuf[j] : NULL;
            texts[j] = tbuf[j];
        }
        return vdx_store_upsert(s, o->n, keys, x, meta, texts);
    }
    case OP_DELETE: return vdx_store_delete(s, o->n, keys, NULL, NULL);
    case OP_DELETE_WHERE: {
        char w[32];
        snprintf(w, sizeof w, "{\"g\": %d}", o->where_g);
        return vdx_store_delete(s, 0, NULL, w, NULL);
    }
    case OP_COMPACT: return vdx_store_compact(s);
    default: return vdx_store_checkpoint(s);
    }
}

static vdx_store *open_store(int create_it, const char *index) {
    vdx_store_options o;
    vdx_store_options_init(&o);
    o.index = index;
    o.metric = VDX_STORE_METRIC_L2;
    o.schema = "{\"g\": \"int\"}";
    o.synchronous = 1; /* WAL + NORMAL: a committed write survives a
                          process crash (not a power cut) */
    o.checkpoint_rows = 40;
    o.busy_timeout_ms = 2000;
    vdx_store *s = NULL;
    vdx_status st = create_it ? vdx_store_create(path, D, &o, &s)
                              : vdx_store_open(path, &o, &s);
    if (st) {
        fprintf(stderr, "  open: %s\n", vdx_last_error());
        return NULL;
    }
    return s;
}

/* The child: runs ops from `first` on, reporting each acknowledged one. */
static void child(int64_t first, int fd, const char *index) {
    vdx_store *s = open_store(0, index);
    if (!s) _exit(3);
    for (int64_t i = first;; i++) {
        op o = make_op(i);
        if (run_op(s, &o) != VDX_OK) {
            fprintf(stderr, "  child: op %lld failed: %s\n", (long long)i,
                    vdx_last_error());
            _exit(4);
        }
        if (write(fd, &i, sizeof i) != sizeof i) _exit(5);
    }
}

/* 1 when the store holds exactly model m. */
static int matches(vdx_store *s, const model *m, int verbose) {
    vdx_store_key keys[NKEYS];
    for (int k = 0; k < NKEYS; k++) keys[k].text = NULL, keys[k].id = k;
    vdx_store_rows *r = NULL;
    if (vdx_store_get(s, NKEYS, keys, &r) != VDX_OK) return 0;
    int ok = 1;
    for (int k = 0; k < NKEYS && ok; k++) {
        if (r->found[k] != m->present[k]) {
            if (verbose) fprintf(stderr, "  key %d: found %d, want %d\n", k, r->found[k], m->present[k]);
            ok = 0;
            break;
        }
        if (!m->present[k]) continue;
        float v[D];
        vec_of(m->vseed[k], v);
        char want[32];
        snprintf(want, sizeof want, "{\"g\":%d}", m->g[k]);
        if (memcmp(v, r->vectors + k * D, sizeof v) ||
            (m->g[k] < 0 ? r->metadata[k] != NULL
                         : !r->metadata[k] || strcmp(r->metadata[k], want))) {
            if (verbose) fprintf(stderr, "  key %d: vector or metadata differ\n", k);
            ok = 0;
        }
    }
    vdx_store_rows_free(r);
    return ok;
}

static int searches_ok(vdx_store *s, const model *m) {
    int ok = 1;
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.efSearch = 64;
    for (int k = 0; k < NKEYS && ok; k += 7) {
        if (!m->present[k]) continue;
        float v[D];
        vec_of(m->vseed[k], v);
        vdx_store_hits *h = NULL;
        if (vdx_store_search(s, 1, v, 3, NULL, &p, 0, &h) != VDX_OK) return 0;
        ok = h->count[0] >= 1 && h->hits[0].key.id == k &&
             h->hits[0].score < 1e-5f;
        if (!ok)
            fprintf(stderr, "  search for key %d: got %lld (%d hits)\n", k,
                    h->count[0] ? (long long)h->hits[0].key.id : -1LL,
                    (int)h->count[0]);
        vdx_store_hits_free(h);
    }
    for (int g = 0; g < 5 && ok; g++) {
        int64_t want = 0, c = -1;
        for (int k = 0; k < NKEYS; k++) want += m->present[k] && m->g[k] == g;
        char w[32];
        snprintf(w, sizeof w, "{\"g\": %d}", g);
        if (vdx_store_count(s, w, &c) != VDX_OK || c != want) ok = 0;
        /* filtered search returns every matching row up to k */
        float q[D] = {0};
        vdx_store_hits *h = NULL;
        if (vdx_store_search(s, 1, q, 10, w, &p, 0, &h) != VDX_OK) return 0;
        if (h->count[0] != (want < 10 ? want : 10)) {
            fprintf(stderr, "  filtered search g=%d: %lld hits, %lld rows\n",
                    g, (long long)h->count[0], (long long)want);
            ok = 0;
        }
        vdx_store_hits_free(h);
    }
    return ok;
}

static void crash_run(const char *index, const char *name, int kills) {
    snprintf(path, sizeof path, "%s/%s", root, name);
    vdx_store *s = open_store(1, index);
    if (!s) {
        CHECK(0);
        return;
    }
    vdx_store_close(s);
    model m;
    memset(&m, 0, sizeof m);
    int64_t next = 0, applied_inflight = 0, total_acked = 0;
    uint64_t rs = 12345;
    for (int it = 0; it < kills; it++) {
        int fds[2];
        if (pipe(fds) != 0) {
            CHECK(0);
            return;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            child(next, fds[1], index);
        }
        close(fds[1]);
        rs = mix(rs);
        struct timespec nap = {0, (long)(1000000 + rs % 50000000)};
        nanosleep(&nap, NULL);
        kill(pid, SIGKILL);
        int wst;
        waitpid(pid, &wst, 0);
        if (!(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL)) {
            fprintf(stderr, "  child exited by itself (%d)\n", WEXITSTATUS(wst));
            CHECK(0);
            close(fds[0]);
            return;
        }
        int64_t a, last = next - 1;
        while (read(fds[0], &a, sizeof a) == sizeof a) {
            if (a != last + 1) {
                CHECK(0);
                break;
            }
            last = a;
        }
        close(fds[0]);
        for (int64_t i = next; i <= last; i++) {
            op o = make_op(i);
            apply(&m, &o);
        }
        total_acked += last - next + 1;
        next = last + 1;
        s = open_store(0, index);
        if (!s) {
            CHECK(0);
            return;
        }
        vdx_status cs = vdx_store_check(s);
        if (cs) fprintf(stderr, "  check after kill %d: %s\n", it, vdx_last_error());
        CHECK(cs == VDX_OK);
        if (!matches(s, &m, 0)) {
            model m2 = m;
            op o = make_op(next);
            apply(&m2, &o);
            if (matches(s, &m2, 1)) {
                m = m2;
                next++;
                applied_inflight++;
            } else {
                fprintf(stderr, "  after kill %d (next op %lld): the store "
                        "matches neither the acknowledged log nor it plus "
                        "the op in flight\n", it, (long long)next);
                matches(s, &m, 1);
                CHECK(0);
                vdx_store_close(s);
                return;
            }
        }
        CHECK(searches_ok(s, &m));
        vdx_store_close(s);
        if (test_cur_failed) return;
    }
    printf("  %s: %d kills, %lld acknowledged operations (%lld applied while in "
           "flight)\n", index, kills, (long long)total_acked,
           (long long)applied_inflight);
    CHECK(total_acked > kills); /* the workload made progress */
}

/* VDX_CRASH_KILLS kills (default 220), split between a flat store (exact
 * searches) and an HNSW one (the graph's replay). */
static int kills_total(void) {
    const char *e = getenv("VDX_CRASH_KILLS");
    return e ? atoi(e) : 220;
}
static void test_crash_flat(void) { crash_run("Flat", "flat", kills_total() / 2); }
static void test_crash_hnsw(void) {
    crash_run("HNSW16", "hnsw", kills_total() - kills_total() / 2);
}

int main(void) {
    /* small batches: one thread each (a team per 20-row HNSW add costs
     * tens of ms on a loaded 2-core machine, which only slows the loop) */
    vdx_set_num_threads(1);
    if (!mkdtemp(root)) return 1;
    RUN(test_crash_flat);
    RUN(test_crash_hnsw);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return TEST_SUMMARY();
}
