/*
 * fuzz_ops.c — a structured libFuzzer target: the fuzzer's bytes choose an
 * index kind (built with vdx_index_factory) and a sequence of up to 24
 * operations on it: train, add, add_with_ids, search (k, nprobe, efSearch,
 * selectors), range_search, remove_ids, reset, reconstruct, set nprobe /
 * efSearch / k_factor / threads, serialize -> deserialize, write -> read.
 * Vectors come from the bytes too (small integers, scaled values, or raw
 * float32 bit patterns: NaN, Inf, 3e38, denormals).
 *
 * Invariants (a violation aborts):
 *  - every call returns a pinned status other than VDX_ERR_INTERNAL, with
 *    a message when it fails, and a failed call changes nothing (ntotal);
 *  - add / add_with_ids / remove_ids move ntotal by what they report;
 *  - search results: labels are -1 or ids in the index (the harness keeps
 *    the ids: positions for the kinds that renumber on removal, the
 *    caller's for IDMap and IVF), -1 only after the results, no NaN
 *    distances, sorted (ascending L2 / Hamming, descending IP), each
 *    label at most once unless the caller gave duplicate ids;
 *  - Flat kinds (exact, exhaustive) return min(k, ntotal) results;
 *  - serialize -> deserialize -> serialize is a fixpoint and the copy
 *    answers a search bit-identically.
 *
 * Input layout: byte 0 the kind, byte 1 the metric and value mode, then
 * operations (an opcode byte and its argument bytes), vector bytes taken
 * from the end of the input.  Seeds: tests/fuzz/corpus_ops
 * (tests/fuzz/make_seeds.py).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vecdex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---------------------------------------------------------------------------
 * KNOWN_OPEN: bugs other engineers are fixing now.  Each switch keeps the
 * fuzzer off exactly one bug's inputs so that CI stays green until its fix
 * merges; set it to 0 (or delete it) then.
 * ------------------------------------------------------------------------- */
/* k-means crashes / hangs on huge values (1e20 sentinels, 1e19 data):
 * training data of the k-means kinds is clamped to |x| <= 1e15. */
#define KNOWN_OPEN_KMEANS_HUGE 1
/* distances that overflow to Inf are dropped (PQ / SQ / HNSW-SQ with 1e38
 * data return -1); in an IVF the coarse quantizer then assigns a vector to
 * no list (add fails with VDX_ERR_INTERNAL): every value given to the
 * k-means kinds is clamped to |x| <= 1e15, not only training data. */
#define KNOWN_OPEN_INF_DISTANCES 1
/* omp_set_num_threads(100000) crashes: thread counts stay in 1..8. */
#define KNOWN_OPEN_HUGE_THREADS 1
/* HNSW after heavy remove_ids: no remove_ids on the HNSW kinds. */
#define KNOWN_OPEN_HNSW_REMOVE 1
/* retraining a populated fast-scan index: train skipped when it holds
 * vectors. */
#define KNOWN_OPEN_FASTSCAN_RETRAIN 1
/* an IDMap file with repeated ids does not read back: no round trip of an
 * IDMap that was given duplicate ids. */
#define KNOWN_OPEN_IDMAP_DUP_FILE 1

/* name, d, uses k-means, fast scan, HNSW, exact flat */
typedef struct kind {
    const char *desc;
    int d;
    int kmeans, fastscan, hnsw, flat;
} kind;

static const kind KINDS[] = {
    {"Flat", 3, 0, 0, 0, 1},
    {"Flat", 8, 0, 0, 0, 1},
    {"IDMap,Flat", 4, 0, 0, 0, 1},
    {"IDMap2,Flat", 4, 0, 0, 0, 1},
    {"IVF4,Flat", 4, 1, 0, 0, 0},
    {"IDMap,IVF2,Flat", 4, 1, 0, 0, 0},
    {"IVF3_HNSW4,Flat", 4, 1, 0, 0, 0},
    {"PQ2x4", 4, 1, 0, 0, 0},
    {"IVF2,PQ2x4", 4, 1, 0, 0, 0},
    {"SQ8", 5, 0, 0, 0, 0},
    {"SQ4", 4, 0, 0, 0, 0},
    {"SQfp16", 4, 0, 0, 0, 0},
    {"SQbf16", 4, 0, 0, 0, 0},
    {"IVF2,SQ8", 4, 1, 0, 0, 0},
    {"LSH", 8, 0, 0, 0, 0},
    {"LSH16rt", 4, 0, 0, 0, 0},
    {"PQ2x4fs", 4, 1, 1, 0, 0},
    {"IVF2,PQ2x4fs", 4, 1, 1, 0, 0},
    {"IVF2,PQ2x4fsr", 4, 1, 1, 0, 0},
    {"HNSW4", 4, 0, 0, 1, 0},
    {"HNSW4,SQ8", 4, 0, 0, 1, 0},
    {"HNSW4,PQ2x4", 4, 1, 0, 1, 0},
    {"Residual2,PQ2x4", 4, 1, 0, 0, 0},
    {"IVF2,PQ2x4,RFlat", 4, 1, 0, 0, 0},
    {"PQ2x4fs,RFlat", 4, 1, 1, 0, 0},
    {"SQ8,Refine(SQfp16)", 4, 0, 0, 0, 0},
    {"PCA2,Flat", 4, 0, 0, 0, 0},
    {"L2norm,Flat", 4, 0, 0, 0, 0},
    {"RR4,Flat", 4, 0, 0, 0, 0},
    {"IDMap,PCAR2,Flat", 4, 0, 0, 0, 0},
    {"OPQ2,PQ2x4", 4, 1, 0, 0, 0},
    {"HNSW4_2+PQ2", 4, 1, 0, 1, 0},
};
#define NKINDS (sizeof KINDS / sizeof KINDS[0])

#define MAXN 64   /* vectors per call */
#define MAXD 8
#define MAXIDS 4096

typedef struct state {
    const uint8_t *ops, *vals; /* ops from the front, values from the back */
    size_t nops, nvals;
    int mode;                  /* how bytes become floats */
    const kind *k;
    vdx_index *ix;
    vdx_metric metric;
    int shifting;              /* ids renumbered on removal */
    int dup_ids;               /* duplicate ids were given */
    int64_t ids[MAXIDS];       /* the label of each stored vector */
    int64_t nids;              /* == ntotal while tracked */
    int tracked;               /* ids known (else only ntotal checked) */
} state;

static void die(const state *s, const char *what) {
    fprintf(stderr, "fuzz_ops: %s (kind '%s'): %s\n", what,
            s->k ? s->k->desc : "?", vdx_last_error());
    abort();
}

static int op_byte(state *s) {
    if (s->nops == 0) return -1;
    s->nops--;
    return *s->ops++;
}

static int arg(state *s) {
    int b = op_byte(s);
    return b < 0 ? 0 : b;
}

static uint8_t val_byte(state *s) {
    if (s->nvals == 0) return 0x5a;
    s->nvals--;
    return s->vals[s->nvals];
}

/* One float from the value bytes, by mode. */
static float next_value(state *s, int for_kmeans_train) {
    float v;
    switch (s->mode) {
    case 0: v = (float)((int8_t)val_byte(s)) / 16.0f; break;
    case 1: { /* scaled: magnitudes 1e-30 .. 1e30 */
        int8_t m = (int8_t)val_byte(s);
        int e = (int)(val_byte(s) % 61) - 30;
        v = (float)m * powf(10.0f, (float)e);
        break;
    }
    default: { /* raw float32 bits: NaN, Inf, denormals, 3e38 */
        uint32_t u = 0;
        for (int i = 0; i < 4; i++) u = (u << 8) | val_byte(s);
        memcpy(&v, &u, 4);
        break;
    }
    }
#if KNOWN_OPEN_INF_DISTANCES
    if (s->k->kmeans) for_kmeans_train = 1;
#endif
#if KNOWN_OPEN_KMEANS_HUGE
    if (for_kmeans_train && isfinite(v) && fabsf(v) > 1e15f)
        v = copysignf(1e15f, v);
#else
    (void)for_kmeans_train;
#endif
    return v;
}

static void fill(state *s, float *x, int64_t n, int kmeans_train) {
    for (int64_t i = 0; i < n * s->k->d; i++) x[i] = next_value(s, kmeans_train);
}

static int has_nonfinite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 1;
    return 0;
}

/* Checks a failed call: a pinned code other than INTERNAL, a message. */
static void check_error(const state *s, vdx_status st, const char *what) {
    if (st == VDX_OK) return;
    if ((int)st < 0 || st > VDX_ERR_INTERNAL) die(s, "unknown status");
    if (st == VDX_ERR_INTERNAL) {
        fprintf(stderr, "fuzz_ops: %s returned VDX_ERR_INTERNAL\n", what);
        die(s, "internal error");
    }
    if (vdx_last_error()[0] == 0) die(s, "error without a message");
}

static int shifts(const vdx_index *ix) {
    const char *t = vdx_index_type_name(ix);
    if (!strncmp(t, "IndexIDMap", 10) || vdx_index_is_ivf(ix)) return 0;
    if (!strcmp(t, "IndexPreTransform"))
        return shifts(vdx_index_pretransform_index(ix));
    if (!strncmp(t, "IndexRefine", 11)) return shifts(vdx_index_refine_base(ix));
    return 1;
}

static int is_lsh(const vdx_index *ix) {
    const char *t = vdx_index_type_name(ix);
    if (!strcmp(t, "IndexPreTransform")) ix = vdx_index_pretransform_index(ix);
    return !strcmp(vdx_index_type_name(ix), "IndexLSH");
}

static int64_t count_id(const state *s, int64_t id) {
    int64_t c = 0;
    for (int64_t i = 0; i < s->nids; i++) c += s->ids[i] == id;
    return c;
}

static void check_results(const state *s, int64_t nq, int64_t k,
                          const float *D, const vdx_idx_t *I,
                          const vdx_selector *sel) {
    int ip = s->metric == VDX_METRIC_INNER_PRODUCT && !is_lsh(s->ix);
    int64_t nt = vdx_index_ntotal(s->ix);
    for (int64_t q = 0; q < nq; q++) {
        const float *d = D + q * k;
        const vdx_idx_t *l = I + q * k;
        int64_t nres = 0;
        while (nres < k && l[nres] != -1) nres++;
        for (int64_t j = nres; j < k; j++)
            if (l[j] != -1 && (!s->tracked || count_id(s, -1) == 0))
                die(s, "a result after an empty slot");
        for (int64_t j = 0; j < nres; j++) {
            if (isnan(d[j])) die(s, "NaN distance");
            if (j > 0 && (ip ? d[j] > d[j - 1] : d[j] < d[j - 1]))
                die(s, "distances not sorted");
            if (sel && !vdx_selector_is_member(sel, l[j]))
                die(s, "a result outside the selector");
            if (s->tracked) {
                int64_t c = count_id(s, l[j]);
                if (c == 0) die(s, "a label that is not in the index");
                if (!s->dup_ids)
                    for (int64_t t = 0; t < j; t++)
                        if (l[t] == l[j]) die(s, "a label returned twice");
            } else if (s->shifting && (l[j] < 0 || l[j] >= nt)) {
                die(s, "a label outside 0..ntotal-1");
            }
        }
        /* exact flat search without selector: min(k, ntotal) results,
         * where the distances are finite */
        if (s->k->flat && !sel && nres < (k < nt ? k : nt) && s->mode == 0 &&
            s->tracked && count_id(s, -1) == 0) { /* -1 may be a user id */
            fprintf(stderr, "query %lld: %lld results, k=%lld, ntotal=%lld\n",
                    (long long)q, (long long)nres, (long long)k, (long long)nt);
            for (int64_t j = 0; j < k; j++)
                fprintf(stderr, "  %lld %g\n", (long long)l[j], d[j]);
            die(s, "an exhaustive search returned too few results");
        }
    }
}

static void query(state *s, float *q, int64_t nq) { fill(s, q, nq, 0); }

/* serialize -> deserialize -> serialize: a fixpoint, the same answers. */
static void round_trip(state *s, int via_file) {
#if KNOWN_OPEN_IDMAP_DUP_FILE
    if (s->dup_ids) return;
#endif
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    vdx_status st = vdx_serialize_index(s->ix, &b1, &n1);
    check_error(s, st, "serialize");
    if (st) return;
    vdx_index *ix2 = NULL;
    if (via_file) {
        char path[256];
        const char *t = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/fuzz_ops.%d.index", t && *t ? t : "/tmp",
                 (int)getpid());
        st = vdx_write_index(s->ix, path);
        check_error(s, st, "write_index");
        if (st == VDX_OK) {
            st = vdx_read_index(path, 0, &ix2);
            if (st) die(s, "read_index of our own file failed");
        }
        unlink(path);
        if (st) {
            vdx_free_buffer(b1);
            return;
        }
    } else if (vdx_deserialize_index(b1, n1, &ix2) != VDX_OK) {
        die(s, "our own serialization does not read back");
    }
    if (vdx_serialize_index(ix2, &b2, &n2) != VDX_OK)
        die(s, "serializing the copy failed");
    if (n1 != n2 || memcmp(b1, b2, n1)) die(s, "round trip is not a fixpoint");
    vdx_free_buffer(b1);
    vdx_free_buffer(b2);
    float q[MAXD], d1[4], d2[4];
    vdx_idx_t l1[4], l2[4];
    for (int j = 0; j < s->k->d; j++) q[j] = (float)j - 1.5f;
    vdx_status a = vdx_index_search(s->ix, 1, q, 4, NULL, d1, l1);
    vdx_status b = vdx_index_search(ix2, 1, q, 4, NULL, d2, l2);
    if (a != b) die(s, "the copy answers with another status");
    if (a == VDX_OK && (memcmp(l1, l2, sizeof l1) || memcmp(d1, d2, sizeof d1)))
        die(s, "the copy answers differently");
    vdx_index_free(s->ix);
    s->ix = ix2;
}

static void do_add(state *s, int with_ids) {
    int64_t n = arg(s) % (MAXN + 1);
    int idmode = with_ids ? arg(s) : 0;
    float x[MAXN * MAXD];
    vdx_idx_t ids[MAXN];
    fill(s, x, n, 0);
    for (int64_t i = 0; i < n; i++) {
        switch (idmode % 5) {
        case 0: ids[i] = s->nids + i; break;
        case 1: ids[i] = -1 - (int64_t)i * 3; break;           /* negative */
        case 2: ids[i] = (int64_t)(val_byte(s) % 4); break;    /* repeated */
        case 3: ids[i] = INT64_MAX - (int64_t)i; break;        /* huge */
        default: ids[i] = (int64_t)val_byte(s) << 40; break;
        }
    }
    int64_t before = vdx_index_ntotal(s->ix);
    vdx_status st = with_ids ? vdx_index_add_with_ids(s->ix, n, x, ids)
                             : vdx_index_add(s->ix, n, x);
    check_error(s, st, "add");
    int64_t after = vdx_index_ntotal(s->ix);
    if (st != VDX_OK) {
        if (after != before) die(s, "a failed add changed ntotal");
        return;
    }
    if (n > 0 && has_nonfinite(x, n * s->k->d))
        die(s, "add accepted NaN / Inf");
    if (after != before + n) die(s, "add did not add n vectors");
    if (s->tracked && s->nids + n <= MAXIDS) {
        for (int64_t i = 0; i < n; i++) {
            int64_t id = with_ids ? ids[i] : before + i;
            if (with_ids && count_id(s, id)) s->dup_ids = 1;
            for (int64_t t = 0; t < i && with_ids; t++)
                if (ids[t] == id) s->dup_ids = 1;
            s->ids[s->nids + i] = id;
        }
        s->nids += n;
    } else {
        s->tracked = 0;
    }
    if (!with_ids && s->tracked) {
        /* add() numbers from ntotal: ids may now repeat (IVF after
         * remove_ids, as FAISS) */
        for (int64_t i = 0; i < s->nids - n; i++)
            if (s->ids[i] >= before) s->dup_ids = 1;
    }
}

static vdx_selector *make_sel(state *s, int how) {
    vdx_selector *sel = NULL;
    int64_t lo, hi;
    switch (how % 4) {
    case 0:
        lo = (int64_t)arg(s) - 8;
        hi = lo + arg(s);
        if (vdx_selector_range(lo, hi, &sel)) die(s, "selector_range");
        break;
    case 1: {
        int64_t n = arg(s) % 8, v[8];
        for (int64_t i = 0; i < n; i++)
            v[i] = s->nids ? s->ids[val_byte(s) % s->nids] : (int64_t)i;
        if (vdx_selector_batch(n, v, &sel)) die(s, "selector_batch");
        break;
    }
    case 2: {
        uint8_t bm[8];
        for (int i = 0; i < 8; i++) bm[i] = val_byte(s);
        if (vdx_selector_bitmap(8, bm, &sel)) die(s, "selector_bitmap");
        break;
    }
    default:
        lo = (int64_t)arg(s) - 8; /* everything from lo on */
        if (vdx_selector_range(lo, INT64_MAX, &sel)) die(s, "selector_range");
        break;
    }
    return sel;
}

static void do_search(state *s) {
    static const int64_t KS[] = {1, 2, 3, 5, 8, 16, 64, 0, -1, 1 << 20,
                                 INT64_MAX, INT64_MIN};
    int64_t nq = 1 + arg(s) % 4;
    int64_t k = KS[arg(s) % (sizeof KS / sizeof KS[0])];
    int pflags = arg(s);
    vdx_search_params p, base;
    vdx_search_params_init(&p);
    vdx_search_params_init(&base);
    static const int64_t NP[] = {0, 1, 2, 3, 1000, INT64_MAX, -1};
    static const int EF[] = {0, 1, 4, 16, 1 << 20, (1 << 20) + 1, -5};
    p.nprobe = NP[(pflags >> 1) % 7];
    p.efSearch = EF[(pflags >> 4) % 7];
    if (pflags & 0x80) p.k_factor = (float)(1 + arg(s) % 16);
    vdx_selector *sel = (pflags & 1) ? make_sel(s, arg(s)) : NULL;
    p.sel = sel;
    float q[4 * MAXD], D[4 * 64];
    vdx_idx_t I[4 * 64];
    query(s, q, nq);
    int64_t before = vdx_index_ntotal(s->ix);
    int fits = k >= 1 && k <= 64;
    vdx_status st;
    if (fits) {
        st = vdx_index_search(s->ix, nq, q, k, &p, D, I);
    } else {
        /* k outside what the buffers hold: only refusals are safe to ask
         * for; a valid huge k would need huge buffers */
        if (k >= 1) {
            vdx_selector_free(sel);
            return;
        }
        st = vdx_index_search(s->ix, nq, q, k, &p, D, I);
        if (st == VDX_OK) die(s, "search accepted k <= 0");
    }
    check_error(s, st, "search");
    if (vdx_index_ntotal(s->ix) != before) die(s, "search changed ntotal");
    if (st == VDX_OK) {
        if (has_nonfinite(q, nq * s->k->d)) die(s, "search accepted NaN / Inf");
        check_results(s, nq, k, D, I, sel);
    }
    vdx_selector_free(sel);
}

static void do_range(state *s) {
    int64_t nq = 1 + arg(s) % 3;
    int r = arg(s);
    float radius = r == 255 ? INFINITY : r == 254 ? NAN : (float)r / 8.0f;
    float q[3 * MAXD];
    query(s, q, nq);
    vdx_range_result *res = NULL;
    vdx_status st = vdx_index_range_search(s->ix, nq, q, radius, NULL, &res);
    check_error(s, st, "range_search");
    if (st != VDX_OK) {
        if (res) die(s, "failed range search returned a result");
        return;
    }
    if (!res || res->nq != nq || res->lims[0] != 0) die(s, "bad range result");
    int ip = s->metric == VDX_METRIC_INNER_PRODUCT && !is_lsh(s->ix);
    for (int64_t i = 0; i < nq; i++) {
        if (res->lims[i + 1] < res->lims[i]) die(s, "lims decrease");
        for (int64_t j = res->lims[i]; j < res->lims[i + 1]; j++) {
            float d = res->distances[j];
            if (isnan(d)) die(s, "NaN in range results");
            if (ip ? !(d > radius) : !(d < radius))
                die(s, "range hit outside the radius");
            if (s->tracked && !count_id(s, res->labels[j]))
                die(s, "range hit that is not in the index");
        }
    }
    vdx_range_result_free(res);
}

static void do_remove(state *s) {
    int how = arg(s);
#if KNOWN_OPEN_HNSW_REMOVE
    if (s->k->hnsw) return;
#endif
    vdx_selector *sel = make_sel(s, how);
    int64_t before = vdx_index_ntotal(s->ix), nr = -1;
    vdx_status st = vdx_index_remove_ids(s->ix, sel, &nr);
    check_error(s, st, "remove_ids");
    int64_t after = vdx_index_ntotal(s->ix);
    if (st != VDX_OK) {
        if (after != before) die(s, "a failed remove_ids changed ntotal");
        vdx_selector_free(sel);
        return;
    }
    if (nr < 0 || after != before - nr) die(s, "remove_ids count is off");
    if (s->tracked) {
        int64_t j = 0, gone = 0;
        for (int64_t i = 0; i < s->nids; i++) {
            if (vdx_selector_is_member(sel, s->ids[i])) {
                gone++;
                continue;
            }
            s->ids[j++] = s->ids[i];
        }
        if (gone != nr) die(s, "remove_ids removed another count");
        s->nids = j;
        if (s->shifting)
            for (int64_t i = 0; i < j; i++) s->ids[i] = i;
    }
    vdx_selector_free(sel);
}

static void do_train(state *s) {
    int64_t n = arg(s) * 2 % (4 * MAXN + 1);
#if KNOWN_OPEN_FASTSCAN_RETRAIN
    if (s->k->fastscan && vdx_index_ntotal(s->ix) > 0) return;
#endif
    float *x = malloc((size_t)(n ? n : 1) * (size_t)s->k->d * sizeof(float));
    if (!x) abort();
    fill(s, x, n, s->k->kmeans);
    int64_t before = vdx_index_ntotal(s->ix);
    vdx_status st = vdx_index_train(s->ix, n, x);
    check_error(s, st, "train");
    if (st == VDX_OK && n > 0 && has_nonfinite(x, n * s->k->d))
        die(s, "train accepted NaN / Inf");
    if (vdx_index_ntotal(s->ix) != before) die(s, "train changed ntotal");
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    state s;
    memset(&s, 0, sizeof s);
    s.k = &KINDS[data[0] % NKINDS];
    s.metric = (data[1] & 1) ? VDX_METRIC_L2 : VDX_METRIC_INNER_PRODUCT;
    s.mode = (data[1] >> 1) % 3;
    /* the first half (after the header) holds operations, the rest values */
    size_t body = size - 2;
    s.ops = data + 2;
    s.nops = body / 2 < 48 ? body / 2 : 48;
    s.vals = data + 2 + s.nops;
    s.nvals = size - 2 - s.nops;
    vdx_status st = vdx_index_factory(s.k->d, s.k->desc, s.metric, &s.ix);
    if (st != VDX_OK) {
        check_error(&s, st, "index_factory");
        return 0; /* L2-only kinds refuse inner product */
    }
    s.shifting = shifts(s.ix);
    s.tracked = 1;
    vdx_set_num_threads(1);
    for (int nop = 0; nop < 24; nop++) {
        int op = op_byte(&s);
        if (op < 0) break;
        switch (op % 12) {
        case 0: do_train(&s); break;
        case 1: do_add(&s, 0); break;
        case 2: do_add(&s, 1); break;
        case 3: do_search(&s); break;
        case 4: do_range(&s); break;
        case 5: do_remove(&s); break;
        case 6:
            check_error(&s, vdx_index_reset(s.ix), "reset");
            if (vdx_index_ntotal(s.ix) == 0) {
                s.nids = 0;
                s.dup_ids = 0;
                s.tracked = 1;
            }
            break;
        case 7: round_trip(&s, 0); break;
        case 8: round_trip(&s, 1); break;
        case 9: {
            float out[MAXD];
            int64_t key = (int64_t)arg(&s) - 4;
            if (s.nids && (arg(&s) & 1)) key = s.ids[(key & 0xff) % s.nids];
            st = vdx_index_reconstruct(s.ix, key, out);
            check_error(&s, st, "reconstruct");
            break;
        }
        case 10: {
            int v = arg(&s);
            vdx_index *ivf = s.ix;
            if (!vdx_index_is_ivf(ivf)) ivf = vdx_index_sub_index(s.ix);
            if (ivf && vdx_index_is_ivf(ivf))
                check_error(&s, vdx_index_ivf_set_nprobe(ivf, v - 2),
                            "set_nprobe");
            if (vdx_index_is_hnsw(s.ix))
                check_error(&s, vdx_index_hnsw_set_ef_search(s.ix, v * 64 - 3),
                            "set_ef_search");
            if (vdx_index_refine_base(s.ix))
                check_error(&s, vdx_index_refine_set_k_factor(
                                    s.ix, (float)v / 16.0f),
                            "set_k_factor");
            break;
        }
        default: {
            int t = arg(&s);
#if KNOWN_OPEN_HUGE_THREADS
            vdx_set_num_threads(1 + t % 8);
#else
            vdx_set_num_threads(t < 128 ? 1 + t % 8 : t * 1000);
#endif
            break;
        }
        }
        int64_t nt = vdx_index_ntotal(s.ix);
        if (s.tracked && s.nids != nt) die(&s, "ntotal disagrees with the adds");
    }
    vdx_set_num_threads(0);
    vdx_index_free(s.ix);
    return 0;
}
