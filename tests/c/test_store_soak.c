/*
 * test_store_soak.c — 4 threads search a store while 1 thread writes to it
 * (upserts that replace rows, deletes, a compaction), for VDX_SOAK_SECONDS
 * (default 3).  Every row's vector is a function of its key and version,
 * and its metadata records both, so each search result is checked on its
 * own: the metadata belongs to the hit's key, the score is the exact
 * distance from the query to that row's vector, results are sorted, and a
 * filtered search returns only matching rows and k of them whenever the
 * store holds k such rows at every moment of the run.
 */
#include <pthread.h>
#include <time.h>

#include "test.h"

#define D 16
#define NKEYS 2000

static char root[64] = "/tmp/vdx_soak_XXXXXX";
static vdx_store *S;
static volatile int stop;
static long checks[4], bad[4], writes;

static uint64_t mix(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void vec_of(int64_t key, int64_t ver, float *v) {
    uint64_t s = mix((uint64_t)key * 1000003 + (uint64_t)ver);
    for (int j = 0; j < D; j++) {
        s = mix(s + 1);
        v[j] = (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* keys < 1000 are never deleted and always have pinned = 1 */
static void *writer(void *arg) {
    (void)arg;
    int64_t ver = 1;
    uint64_t r = 99;
    int compacted = 0;
    double t0 = now();
    while (!stop) {
        vdx_store_key k[50];
        float x[50 * D];
        char mb[50][64];
        const char *m[50];
        for (int j = 0; j < 50; j++) {
            r = mix(r);
            k[j].text = NULL;
            k[j].id = (int64_t)(r % NKEYS);
            for (int u = 0; u < j; u++)
                if (k[u].id == k[j].id) k[j].id = (k[j].id + 1 + j) % NKEYS;
            ver++;
            vec_of(k[j].id, ver, x + j * D);
            snprintf(mb[j], 64, "{\"key\":%lld,\"ver\":%lld,\"pinned\":%d}",
                     (long long)k[j].id, (long long)ver, k[j].id < 1000);
            m[j] = mb[j];
        }
        /* dedupe collisions left by the fix-up above */
        int n = 0;
        for (int j = 0; j < 50; j++) {
            int dup = 0;
            for (int u = 0; u < n; u++) dup |= k[u].id == k[j].id;
            if (dup) continue;
            k[n] = k[j];
            memmove(x + n * D, x + j * D, sizeof(float) * D);
            m[n] = m[j];
            n++;
        }
        if (vdx_store_upsert(S, n, k, x, m, NULL) != VDX_OK) {
            fprintf(stderr, "  upsert: %s\n", vdx_last_error());
            bad[0]++;
        }
        writes++;
        r = mix(r);
        vdx_store_key del = {NULL, 1000 + (int64_t)(r % 1000)};
        if (vdx_store_delete(S, 1, &del, NULL, NULL) != VDX_OK) bad[0]++;
        if (!compacted && now() - t0 > 1.0) {
            if (vdx_store_compact(S) != VDX_OK) {
                fprintf(stderr, "  compact: %s\n", vdx_last_error());
                bad[0]++;
            }
            compacted = 1;
        }
    }
    return NULL;
}

static int64_t json_int(const char *m, const char *field) {
    const char *p = strstr(m, field);
    return p ? atoll(p + strlen(field)) : -1;
}

static void *searcher(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t r = 1000 + (uint64_t)id;
    while (!stop) {
        float q[2 * D];
        r = mix(r);
        vec_of((int64_t)(r % 5000), -1, q);
        vec_of((int64_t)(r % 7000), -2, q + D);
        int filtered = (r >> 32) & 1;
        vdx_store_hits *h = NULL;
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.efSearch = 64;
        vdx_status st = vdx_store_search(S, 2, q, 10,
                                         filtered ? "{\"pinned\": 1}" : NULL,
                                         &p, VDX_STORE_WITH_METADATA, &h);
        checks[id]++;
        if (st) {
            fprintf(stderr, "  search: %s\n", vdx_last_error());
            bad[id]++;
            continue;
        }
        for (int qi = 0; qi < 2; qi++) {
            /* >= 1000 rows always exist, so 10 hits always */
            if (h->count[qi] != 10) bad[id]++;
            for (int j = 0; j < h->count[qi]; j++) {
                const vdx_store_hit *e = &h->hits[qi * 10 + j];
                if (!e->metadata) {
                    bad[id]++;
                    continue;
                }
                int64_t key = json_int(e->metadata, "\"key\":");
                int64_t ver = json_int(e->metadata, "\"ver\":");
                float v[D];
                vec_of(key, ver, v);
                double d = 0;
                for (int u = 0; u < D; u++) {
                    double t = (double)v[u] - q[qi * D + u];
                    d += t * t;
                }
                if (key != e->key.id || fabs(d - e->score) > 1e-4 ||
                    (filtered && key >= 1000) ||
                    (j > 0 && e->score < h->hits[qi * 10 + j - 1].score)) {
                    if (bad[id] < 3)
                        fprintf(stderr, "  bad hit: key %lld vs %lld, score "
                                "%g vs %g\n", (long long)e->key.id,
                                (long long)key, e->score, d);
                    bad[id]++;
                }
            }
        }
        vdx_store_hits_free(h);
    }
    return NULL;
}

static void test_soak(void) {
    char p[128];
    snprintf(p, sizeof p, "%s/s", root);
    vdx_store_options o;
    vdx_store_options_init(&o);
    o.index = "HNSW16";
    o.metric = VDX_STORE_METRIC_L2;
    o.schema = "{\"key\": \"int\", \"ver\": \"int\", \"pinned\": \"int\"}";
    o.synchronous = 1;
    CHECK_OK(vdx_store_create(p, D, &o, &S));
    if (!S) return;
    /* every key present once before the threads start */
    for (int64_t b = 0; b < NKEYS; b += 500) {
        vdx_store_key k[500];
        float x[500 * D];
        char mb[500][64];
        const char *m[500];
        for (int j = 0; j < 500; j++) {
            k[j].text = NULL;
            k[j].id = b + j;
            vec_of(b + j, 0, x + j * D);
            snprintf(mb[j], 64, "{\"key\":%lld,\"ver\":0,\"pinned\":%d}",
                     (long long)(b + j), b + j < 1000);
            m[j] = mb[j];
        }
        CHECK_OK(vdx_store_upsert(S, 500, k, x, m, NULL));
    }
    double secs = getenv("VDX_SOAK_SECONDS") ? atof(getenv("VDX_SOAK_SECONDS"))
                                             : 3.0;
    pthread_t w, rd[4];
    pthread_create(&w, NULL, writer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_create(&rd[i], NULL, searcher, (void *)(intptr_t)i);
    struct timespec nap = {(time_t)secs,
                           (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&nap, NULL);
    stop = 1;
    pthread_join(w, NULL);
    long total = 0, nbad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(rd[i], NULL);
        total += checks[i];
        nbad += bad[i];
    }
    vdx_store_stats st;
    CHECK_OK(vdx_store_stats_get(S, &st));
    printf("  %.1f s: %ld writes, %ld searches checked, %ld bad; %lld rows, %lld vectors, "
           "p50 %.2f ms p99 %.2f ms\n", secs, writes, total, nbad, (long long)st.rows,
           (long long)st.vectors, st.p50_ms, st.p99_ms);
    CHECK(nbad == 0);
    CHECK(total > 20);
    CHECK(writes > 5); /* the writer is not starved by the searches */
    CHECK_OK(vdx_store_check(S));
    CHECK_OK(vdx_store_close(S));
}

int main(void) {
    if (!mkdtemp(root)) return 1;
    RUN(test_soak);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return TEST_SUMMARY();
}
