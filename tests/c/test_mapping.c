/*
 * test_mapping.c — memory-mapped reading (VDX_IO_FLAG_MMAP, common/mapping.c
 * and the readers that borrow from the map): the same results as a loaded
 * index, changes copy instead of writing through (the file's bytes are
 * compared before and after), truncated files refused at open, the
 * FAISS flag values, IndexIVFPQ's precomputed tables built by the first
 * search instead of at open (also from several threads at once), and mapped
 * flat vectors at odd byte offsets searched by every path (run under UBSan:
 * a misaligned float load there is a failure).
 */
#include <pthread.h>
#include <unistd.h>

#include "test.h"
#include "index/hnsw.h"
#include "index/index_pq.h"

#define D 16
#define NB 500
#define NQ 7
#define K 5

static float *vectors(int n, unsigned seed) {
    float *x = malloc(sizeof(float) * n * D);
    for (int i = 0; i < n * D; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return x;
}

static uint8_t *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)*n + 1);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    fclose(f);
    return b;
}

static void tmpname(char *buf, size_t n, const char *tag) {
    snprintf(buf, n, "/tmp/vdx_test_mapping_%d_%s.index", (int)getpid(), tag);
}

/* Writes an index of kind `ivf` (0 flat, 1 IVF-Flat) over xb to path. */
static void write_kind(int ivf, const float *xb, const char *path) {
    vdx_index *ix = NULL, *q = NULL;
    if (ivf) {
        CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &q));
        CHECK_OK(vdx_index_ivf_flat_new(q, D, 8, VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_index_train(ix, NB, xb));
    } else {
        CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &ix));
    }
    CHECK_OK(vdx_index_add(ix, NB, xb));
    CHECK_OK(vdx_write_index(ix, path));
    vdx_index_free(ix);
}

static void same_search(const vdx_index *a, const vdx_index *b,
                        const float *xq) {
    float da[NQ * K], db[NQ * K];
    vdx_idx_t ia[NQ * K], ib[NQ * K];
    vdx_search_params p;
    memset(&p, 0, sizeof p);
    p.nprobe = 8;
    CHECK_OK(vdx_index_search(a, NQ, xq, K, &p, da, ia));
    CHECK_OK(vdx_index_search(b, NQ, xq, K, &p, db, ib));
    CHECK(memcmp(ia, ib, sizeof ia) == 0);
    CHECK(memcmp(da, db, sizeof da) == 0);
}

static void test_flag_values(void) {
    /* faiss/index_io.h */
    CHECK(VDX_IO_FLAG_MMAP == (8 | 0x646f0000));
    CHECK(VDX_IO_FLAG_MMAP_IFC == 512);
    CHECK(VDX_IO_FLAG_READ_ONLY == 2);
    CHECK(VDX_IO_FLAG_ONDISK_SAME_DIR == 4);
    CHECK(VDX_IO_FLAG_SKIP_PRECOMPUTE_TABLE == 16);
}

static void mapped_kind(int ivf) {
    char path[256];
    tmpname(path, sizeof path, ivf ? "ivf" : "flat");
    float *xb = vectors(NB, 1), *xq = vectors(NQ, 2);
    write_kind(ivf, xb, path);
    long n0, n1;
    uint8_t *before = slurp(path, &n0);
    vdx_index *mem = NULL, *mm = NULL;
    CHECK_OK(vdx_read_index(path, 0, &mem));
    CHECK_OK(vdx_read_index_flags(path, VDX_IO_FLAG_MMAP, &mm));
    if (!mem || !mm) goto done;
    same_search(mem, mm, xq);
    /* changes copy: add, then remove a range, on both */
    CHECK_OK(vdx_index_add(mem, NQ, xq));
    CHECK_OK(vdx_index_add(mm, NQ, xq));
    vdx_selector *sel = NULL;
    CHECK_OK(vdx_selector_range(10, 60, &sel));
    int64_t r1 = 0, r2 = 0;
    CHECK_OK(vdx_index_remove_ids(mem, sel, &r1));
    CHECK_OK(vdx_index_remove_ids(mm, sel, &r2));
    CHECK(r1 == 50 && r2 == 50);
    vdx_selector_free(sel);
    same_search(mem, mm, xq);
    uint8_t *after = slurp(path, &n1);
    CHECK(n1 == n0 && after && memcmp(before, after, (size_t)n0) == 0);
    free(after);
    /* truncated copies are refused at open, never mapped past the end */
    char cut[256];
    tmpname(cut, sizeof cut, "cut");
    long cuts[] = {n0 - 1, n0 - 8, n0 / 2, 30, 2};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        FILE *f = fopen(cut, "wb");
        fwrite(before, 1, (size_t)cuts[i], f);
        fclose(f);
        vdx_index *t = NULL;
        vdx_status s = vdx_read_index(cut, VDX_IO_FLAG_MMAP, &t);
        CHECK(s == VDX_ERR_FORMAT && t == NULL);
        CHECK(strstr(vdx_last_error(), "truncated") != NULL);
    }
    unlink(cut);
done:
    vdx_index_free(mem);
    vdx_index_free(mm);
    free(before);
    free(xb);
    free(xq);
    unlink(path);
}

static void test_mapped_flat(void) { mapped_kind(0); }
static void test_mapped_ivf_flat(void) { mapped_kind(1); }

static void test_mapped_empty_and_missing(void) {
    vdx_index *t = NULL;
    CHECK(vdx_read_index("/nonexistent/x.index", VDX_IO_FLAG_MMAP, &t) ==
          VDX_ERR_IO);
    CHECK(t == NULL);
    char path[256];
    tmpname(path, sizeof path, "empty");
    FILE *f = fopen(path, "wb");
    fclose(f);
    CHECK(vdx_read_index(path, VDX_IO_FLAG_MMAP, &t) == VDX_ERR_FORMAT);
    CHECK(t == NULL);
    unlink(path);
}

/* ---- IndexIVFPQ: lazy precomputed tables ------------------------------ */

typedef struct {
    const vdx_index *ix;
    const float *xq;
    float dist[NQ * K];
    vdx_idx_t ids[NQ * K];
    vdx_status st;
} search_job;

static void *search_thread(void *arg) {
    search_job *j = arg;
    vdx_search_params p;
    memset(&p, 0, sizeof p);
    p.nprobe = 8;
    j->st = vdx_index_search(j->ix, NQ, j->xq, K, &p, j->dist, j->ids);
    return NULL;
}

static int pre_state(const vdx_index *ix) {
    return __atomic_load_n(&((const vdx_ivfpq *)(const void *)ix)->pre_state,
                           __ATOMIC_ACQUIRE);
}

static void test_mapped_ivfpq_lazy_tables(void) {
    char path[256];
    tmpname(path, sizeof path, "ivfpq");
    float *xb = vectors(NB * 4, 3), *xq = vectors(NQ, 4);
    vdx_index *q = NULL, *ix = NULL;
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &q));
    CHECK_OK(vdx_index_ivfpq_new(q, D, 8, 4, 6, VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_train(ix, NB * 4, xb));
    CHECK_OK(vdx_index_add(ix, NB * 4, xb));
    CHECK_OK(vdx_write_index(ix, path));
    long n0, n1;
    uint8_t *before = slurp(path, &n0);
    vdx_index *mem = NULL, *mm = NULL, *skip = NULL, *never = NULL;
    CHECK_OK(vdx_read_index(path, 0, &mem));
    CHECK_OK(vdx_read_index(path, VDX_IO_FLAG_MMAP, &mm));
    CHECK_OK(vdx_read_index(path, VDX_IO_FLAG_MMAP |
                                      VDX_IO_FLAG_SKIP_PRECOMPUTE_TABLE,
                            &skip));
    CHECK_OK(vdx_read_index(path, 0, &never));
    if (!mem || !mm || !skip || !never) goto done;
    /* nothing built at open, but the tables will be used */
    CHECK(pre_state(mm) == VDX_IVFPQ_PRE_PENDING);
    CHECK(((const vdx_ivfpq *)(const void *)mm)->precomputed == NULL);
    int active = 0;
    CHECK(vdx_index_ivfpq_use_precomputed_table(mm, &active) == 0 && active);
    /* the first search, from 4 threads at once, builds them once; every
     * thread gets the results of the trained index itself */
    search_job jobs[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        jobs[t].ix = mm;
        jobs[t].xq = xq;
        CHECK(pthread_create(&th[t], NULL, search_thread, &jobs[t]) == 0);
    }
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    CHECK(pre_state(mm) == VDX_IVFPQ_PRE_READY);
    search_job ref = {.ix = ix, .xq = xq};
    search_thread(&ref);
    CHECK_OK(ref.st);
    CHECK(pre_state(ix) == VDX_IVFPQ_PRE_READY);
    for (int t = 0; t < 4; t++) {
        CHECK_OK(jobs[t].st);
        CHECK(memcmp(jobs[t].ids, ref.ids, sizeof ref.ids) == 0);
        CHECK(memcmp(jobs[t].dist, ref.dist, sizeof ref.dist) == 0);
    }
    same_search(mem, mm, xq);
    /* the tables are the ones an eager build makes: compare with a direct
     * |r|^2 + 2<c, r> of list 3, sub-quantizer 1, centroid 5 */
    {
        const vdx_ivfpq *p = (const vdx_ivfpq *)(const void *)mm;
        float c[D];
        CHECK_OK(vdx_index_reconstruct(q, 3, c));
        const int64_t ds = p->pq.dsub, ks = p->pq.ksub;
        const float *r = p->pq.centroids + (1 * ks + 5) * ds;
        double want = 0;
        for (int64_t j = 0; j < ds; j++)
            want += (double)r[j] * r[j] + 2.0 * c[ds + j] * r[j];
        float got = p->precomputed[(3 * p->pq.M + 1) * ks + 5];
        CHECK(fabs(got - want) < 1e-4);
    }
    /* SKIP_PRECOMPUTE_TABLE: never built; the same results as the residual
     * tables (use_precomputed_table = -1), close to the precomputed ones */
    CHECK_OK(vdx_index_ivfpq_set_use_precomputed_table(never, -1));
    same_search(skip, never, xq);
    CHECK(pre_state(skip) == VDX_IVFPQ_PRE_NONE);
    CHECK(vdx_index_ivfpq_use_precomputed_table(skip, &active) == 0 &&
          !active);
    {
        search_job a = {.ix = skip, .xq = xq};
        search_thread(&a);
        CHECK_OK(a.st);
        int same = 0;
        for (int i = 0; i < NQ * K; i++) {
            same += a.ids[i] == ref.ids[i];
            CHECK(fabsf(a.dist[i] - ref.dist[i]) <=
                  1e-4f * (1 + fabsf(ref.dist[i])));
        }
        CHECK(same >= NQ * K - 2);
    }
    /* asked for again, they are built by the next search */
    CHECK_OK(vdx_index_ivfpq_set_use_precomputed_table(skip, 0));
    CHECK(pre_state(skip) == VDX_IVFPQ_PRE_PENDING);
    same_search(skip, mem, xq);
    CHECK(pre_state(skip) == VDX_IVFPQ_PRE_READY);
    uint8_t *after = slurp(path, &n1);
    CHECK(n1 == n0 && after && memcmp(before, after, (size_t)n0) == 0);
    free(after);
done:
    vdx_index_free(mem);
    vdx_index_free(mm);
    vdx_index_free(skip);
    vdx_index_free(never);
    vdx_index_free(ix); /* and q, which it owns */
    free(before);
    free(xb);
    free(xq);
    unlink(path);
}

/* ---- HNSW: FAISS's graph arrays searched in the map -------------------- */

static void test_mapped_hnsw_graph(void) {
    char path[256], back[256];
    tmpname(path, sizeof path, "hnsw");
    tmpname(back, sizeof back, "hnswback");
    float *xb = vectors(NB * 2, 5), *xq = vectors(NQ, 6);
    vdx_index *ix = NULL, *mem = NULL, *mm = NULL;
    CHECK_OK(vdx_index_hnsw_flat_new(D, 8, VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_add(ix, NB * 2, xb));
    CHECK_OK(vdx_write_index(ix, path));
    long n0, n1, nb;
    uint8_t *before = slurp(path, &n0);
    CHECK_OK(vdx_read_index(path, 0, &mem));
    CHECK_OK(vdx_read_index(path, VDX_IO_FLAG_MMAP, &mm));
    if (!mem || !mm) goto done;
    const vdx_index_hnsw *h = (const vdx_index_hnsw *)(const void *)mm;
    CHECK(h->g.m_nb != NULL && h->g.links0 == NULL); /* not converted */
    same_search(mem, mm, xq);
    /* every row equals the converted graph's */
    int bad = 0;
    for (int64_t i = 0; i < NB * 2; i++) {
        int la = -1, lb = -2;
        CHECK_OK(vdx_index_hnsw_node_level(mem, i, &la));
        CHECK_OK(vdx_index_hnsw_node_level(mm, i, &lb));
        bad += la != lb;
        for (int l = 0; l <= la && la == lb; l++) {
            int64_t ra[16], rb[16];
            int ca = -1, cb = -2;
            CHECK_OK(vdx_index_hnsw_neighbors(mem, i, l, ra, &ca));
            CHECK_OK(vdx_index_hnsw_neighbors(mm, i, l, rb, &cb));
            bad += ca != cb || memcmp(ra, rb, (size_t)ca * 8) != 0;
        }
    }
    CHECK(bad == 0);
    /* written back from the map: the same bytes */
    CHECK_OK(vdx_write_index(mm, back));
    uint8_t *wb = slurp(back, &nb);
    CHECK(nb == n0 && wb && memcmp(wb, before, (size_t)n0) == 0);
    free(wb);
    /* a change converts (copies) the graph; the file stays */
    CHECK_OK(vdx_index_add(mem, NQ, xq));
    CHECK_OK(vdx_index_add(mm, NQ, xq));
    CHECK(h->g.m_nb == NULL && h->g.links0 != NULL);
    same_search(mem, mm, xq);
    uint8_t *after = slurp(path, &n1);
    CHECK(n1 == n0 && after && memcmp(before, after, (size_t)n0) == 0);
    free(after);
    /* the file rewritten in place under a mapped graph (the map shows the
     * new bytes): the neighbors, then the offsets, overwritten with links
     * and offsets out of range, which are never followed */
    for (int pass = 0; pass < 2; pass++) {
        vdx_index_free(mm);
        mm = NULL;
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(before, 1, (size_t)n0, f);
            fclose(f);
        }
        CHECK_OK(vdx_read_index(path, VDX_IO_FLAG_MMAP, &mm));
        if (!mm) break;
        const vdx_hnsw *g = &((const vdx_index_hnsw *)(const void *)mm)->g;
        const uint8_t *at = pass == 0 ? g->m_nb : g->m_off;
        long from = (long)(at - g->map->base);
        long len = pass == 0 ? (long)g->m_nnb * 4 : (long)(g->n + 1) * 8;
        f = fopen(path, "r+b");
        if (!f) break;
        fseek(f, from, SEEK_SET);
        for (long i = 0; i < len; i++) fputc(i % 3 ? 0x7f : 0x3f, f);
        fclose(f);
        float dd[NQ * K];
        vdx_idx_t ii[NQ * K];
        vdx_search_params p;
        memset(&p, 0, sizeof p);
        CHECK_OK(vdx_index_search(mm, NQ, xq, K, &p, dd, ii));
        for (int i = 0; i < NQ * K; i++) CHECK(ii[i] >= -1 && ii[i] < NB * 2);
        int64_t nbr[16];
        int cnt = -1;
        CHECK_OK(vdx_index_hnsw_neighbors(mm, 0, 0, nbr, &cnt));
        CHECK(cnt == 0); /* every link of node 0 is out of range */
    }
done:
    vdx_index_free(ix);
    vdx_index_free(mem);
    vdx_index_free(mm);
    free(before);
    free(xb);
    free(xq);
    unlink(path);
    unlink(back);
}

/* ---- replace_invlists: shared, reference-counted lists ------------------ */

static void test_replace_invlists(void) {
    char path[256];
    tmpname(path, sizeof path, "repl");
    float *xb = vectors(NB, 7), *xq = vectors(NQ, 8);
    write_kind(1, xb, path);
    vdx_index *mm = NULL, *mem = NULL, *q = NULL, *empty = NULL, *other = NULL,
              *q2 = NULL;
    CHECK_OK(vdx_read_index(path, VDX_IO_FLAG_MMAP, &mm));
    CHECK_OK(vdx_read_index(path, 0, &mem));
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &q));
    CHECK_OK(vdx_index_ivf_flat_new(q, D, 8, VDX_METRIC_L2, &empty));
    CHECK_OK(vdx_index_train(empty, NB, xb));
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &q2));
    CHECK_OK(vdx_index_ivf_flat_new(q2, D, 4, VDX_METRIC_L2, &other));
    if (!mm || !mem || !empty || !other) goto done;
    /* incompatible: refused, nothing changed */
    CHECK(vdx_index_ivf_replace_invlists(other, mm, 0) ==
          VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "nlist=4") != NULL);
    CHECK(vdx_index_ntotal(other) == 0);
    /* the mapped lists, then the index that read them freed: the lists and
     * the map live on with `empty` (ASan: no use after free, no leak).  The
     * coarse centroids differ from the file's, so compare with the loaded
     * index searching every list, where the assignment does not matter */
    CHECK_OK(vdx_index_ivf_replace_invlists(empty, mm, 1));
    CHECK(vdx_index_ntotal(empty) == NB);
    vdx_index_free(mm);
    mm = NULL;
    float da[NQ * K], db[NQ * K];
    vdx_idx_t ia[NQ * K], ib[NQ * K];
    vdx_search_params p;
    memset(&p, 0, sizeof p);
    p.nprobe = 8;
    CHECK_OK(vdx_index_search(empty, NQ, xq, K, &p, da, ia));
    CHECK_OK(vdx_index_search(mem, NQ, xq, K, &p, db, ib));
    CHECK(memcmp(ia, ib, sizeof ia) == 0);
    CHECK_OK(vdx_index_add(empty, NQ, xq)); /* copies what it changes */
    CHECK(vdx_index_ntotal(empty) == NB + NQ);
done:
    vdx_index_free(mm);
    vdx_index_free(mem);
    vdx_index_free(empty);
    vdx_index_free(other);
    free(xb);
    free(xq);
    unlink(path);
}

/* ---- mapped flat vectors at odd byte offsets ---------------------------- */

/* FAISS's format puts a flat's floats 45 bytes into its record (fourcc,
 * header, 8-byte count), so a mapped IndexFlat's vectors start at 1 mod 4,
 * an IDMap's sub-flat and an HNSW's storage at other offsets.  Each is
 * searched (scan path, sgemm path, selector, range search, reconstruct)
 * and checked against brute force computed here in double precision and
 * against the same file read into memory.  Odd d (13, 37) puts every
 * kernel in its tail loop too. */
static int64_t bf_kth(const float *xb, int nb, const float *q, int d, int ip,
                      int k, double *kth) {
    double best[K];
    int nbest = 0;
    for (int j = 0; j < nb; j++) {
        double v = 0;
        for (int c = 0; c < d; c++) {
            double a = q[c], b = xb[(size_t)j * d + c];
            v += ip ? -a * b : (a - b) * (a - b);
        }
        int at;
        if (nbest < k) {
            at = nbest++;
        } else {
            if (v >= best[k - 1]) continue;
            at = k - 1;
        }
        while (at > 0 && best[at - 1] > v) {
            best[at] = best[at - 1];
            at--;
        }
        best[at] = v;
    }
    *kth = best[k - 1];
    return nbest;
}

static double bf_dist(const float *xb, int64_t id, const float *q, int d,
                      int ip) {
    double v = 0;
    for (int c = 0; c < d; c++) {
        double a = q[c], b = xb[(size_t)id * d + c];
        v += ip ? a * b : (a - b) * (a - b);
    }
    return v;
}

/* results of idx on nq queries agree with brute force over xb (ids map
 * through `label` = id + shift) */
static int check_bf(const vdx_index *idx, int nq, const float *xq,
                    const float *xb, int nb, int d, int ip, int64_t shift,
                    const vdx_selector *sel, int64_t lo, int64_t hi) {
    float dist[32 * K];
    vdx_idx_t lab[32 * K];
    vdx_search_params p;
    memset(&p, 0, sizeof p);
    p.sel = sel;
    p.efSearch = 64;
    if (vdx_index_search(idx, nq, xq, K, &p, dist, lab)) return 1;
    int bad = 0;
    for (int q = 0; q < nq; q++) {
        const float *qv = xq + (size_t)q * d;
        double kth;
        if (sel) {
            /* brute force over the admitted rows only */
            bf_kth(xb + (size_t)lo * d, (int)(hi - lo), qv, d, ip, K, &kth);
        } else {
            bf_kth(xb, nb, qv, d, ip, K, &kth);
        }
        for (int j = 0; j < K; j++) {
            int64_t id = lab[q * K + j] - shift;
            if (id < 0 || id >= nb || (sel && (id < lo || id >= hi))) {
                bad++;
                continue;
            }
            double want = bf_dist(xb, id, qv, d, ip);
            bad += fabs(dist[q * K + j] - want) > 1e-4 * (1 + fabs(want));
        }
        /* the k-th result is the k-th nearest (HNSW: close to it) */
        double got = ip ? -dist[q * K + K - 1] : dist[q * K + K - 1];
        bad += got > kth + 1e-4 * (1 + fabs(kth));
    }
    return bad;
}

static void mapped_misaligned(int d, int kind, vdx_metric metric) {
    enum { NBM = 300, NQM = 20 };
    int ip = metric == VDX_METRIC_INNER_PRODUCT;
    char path[256];
    tmpname(path, sizeof path, "odd");
    float *xb = malloc(sizeof(float) * NBM * d), *xq = malloc(sizeof(float) * NQM * d);
    test_rand_fill(xb, (size_t)NBM * d, 100 + (uint64_t)d);
    test_rand_fill(xq, (size_t)NQM * d, 200 + (uint64_t)d);
    const int64_t shift = kind == 1 ? 1000 : 0;
    vdx_index *ix = NULL, *sub = NULL, *mem = NULL, *mm = NULL;
    vdx_idx_t *ids = malloc(sizeof(vdx_idx_t) * NBM);
    for (int i = 0; i < NBM; i++) ids[i] = i + shift;
    if (kind == 2) {
        CHECK_OK(vdx_index_hnsw_flat_new(d, 16, metric, &ix));
        CHECK_OK(vdx_index_add(ix, NBM, xb));
    } else {
        CHECK_OK(vdx_index_flat_new(d, metric, kind == 1 ? &sub : &ix));
        if (kind == 1) CHECK_OK(vdx_index_idmap_new(sub, &ix));
        if (kind == 1) CHECK_OK(vdx_index_add_with_ids(ix, NBM, xb, ids));
        else CHECK_OK(vdx_index_add(ix, NBM, xb));
    }
    CHECK_OK(vdx_write_index(ix, path));
    vdx_index_free(ix);
    CHECK_OK(vdx_read_index(path, 0, &mem));
    CHECK_OK(vdx_read_index(path, VDX_IO_FLAG_MMAP, &mm));
    if (!mem || !mm) goto done;
    const vdx_index *flat = kind == 0   ? mm
                            : kind == 1 ? vdx_index_sub_index(mm)
                                        : vdx_index_hnsw_storage(mm);
    const float *data = vdx_index_flat_data(flat);
    CHECK(data != NULL);
    /* the map is page-aligned: the vectors sit at their file offset */
    if (kind == 0) CHECK(((uintptr_t)data & 3) == 1);
    CHECK(((uintptr_t)data & 3) != 0);
    /* scan path (few queries), sgemm path (NQM >= 16 for the flats) */
    CHECK(check_bf(mm, 3, xq, xb, NBM, d, ip, shift, NULL, 0, 0) == 0);
    CHECK(check_bf(mm, NQM, xq, xb, NBM, d, ip, shift, NULL, 0, 0) == 0);
    /* the selector path: only rows [40, 90) (labels shifted for IDMap) */
    vdx_selector *sel = NULL;
    CHECK_OK(vdx_selector_range(40 + shift, 90 + shift, &sel));
    if (kind != 2) /* HNSW's filtered beam is approximate */
        CHECK(check_bf(mm, 3, xq, xb, NBM, d, ip, shift, sel, 40, 90) == 0);
    vdx_selector_free(sel);
    /* bit for bit the index read into memory */
    float d1[NQM * K], d2[NQM * K];
    vdx_idx_t i1[NQM * K], i2[NQM * K];
    vdx_search_params p;
    memset(&p, 0, sizeof p);
    CHECK_OK(vdx_index_search(mem, NQM, xq, K, &p, d1, i1));
    CHECK_OK(vdx_index_search(mm, NQM, xq, K, &p, d2, i2));
    CHECK(!memcmp(i1, i2, sizeof i1) && !memcmp(d1, d2, sizeof d1));
    if (kind == 0) {
        /* range search: every row within the radius, none outside */
        vdx_range_result *rr = NULL;
        double kth;
        bf_kth(xb, NBM, xq, d, ip, K, &kth);
        float radius = ip ? (float)-kth : (float)kth;
        CHECK_OK(vdx_index_range_search(mm, 1, xq, radius, NULL, &rr));
        if (rr) {
            /* rows clearly inside, and inside or within rounding */
            int64_t lo = 0, hi = 0;
            double tol = 1e-4 * (1 + fabs(radius));
            for (int j = 0; j < NBM; j++) {
                double v = bf_dist(xb, j, xq, d, ip);
                lo += ip ? v > radius + tol : v < radius - tol;
                hi += ip ? v > radius - tol : v < radius + tol;
            }
            int64_t got = rr->lims[1];
            CHECK(hi >= K - 1 && got >= lo && got <= hi);
            vdx_range_result_free(rr);
        }
        float *rec = malloc(sizeof(float) * d);
        CHECK_OK(vdx_index_reconstruct(mm, 123, rec));
        CHECK(!memcmp(rec, xb + (size_t)123 * d, sizeof(float) * d));
        free(rec);
    }
done:
    vdx_index_free(mem);
    vdx_index_free(mm);
    free(ids);
    free(xb);
    free(xq);
    unlink(path);
}

static void test_mapped_flat_misaligned(void) {
    const int dims[] = {13, 37};
    for (int di = 0; di < 2; di++)
        for (int kind = 0; kind < 3; kind++) {
            mapped_misaligned(dims[di], kind, VDX_METRIC_L2);
            mapped_misaligned(dims[di], kind, VDX_METRIC_INNER_PRODUCT);
        }
}

int main(void) {
    RUN(test_flag_values);
    RUN(test_mapped_flat);
    RUN(test_mapped_ivf_flat);
    RUN(test_mapped_empty_and_missing);
    RUN(test_mapped_ivfpq_lazy_tables);
    RUN(test_mapped_hnsw_graph);
    RUN(test_replace_invlists);
    RUN(test_mapped_flat_misaligned);
    return TEST_SUMMARY();
}
