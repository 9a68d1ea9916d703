/*
 * hamming.c — Hamming distances between binary codes, exact k-NN and range
 * search over a block of codes (the core of IndexBinaryFlat and of the
 * list scans of the other binary indexes), and the kernel dispatch.
 *
 * k-NN keeps, per query, a max-heap of (distance, id) ordered
 * lexicographically, and a code enters it only when strictly closer than
 * its top: FAISS's heap exactly, so that ties come out as FAISS's do, both
 * for positions (scanned in increasing order: ties by position) and for
 * the ids of inverted lists scanned in probe order.
 */
#include <cpuid.h>
#include <limits.h>
#include <string.h>

#include "hamming.h"
#include "simd/kernels.h"
#include "vecdex.h"

#define HAMMING_NY_NAME vdx_hamming_ny_scalar
#include "hamming_ny.inc"

static int cpu_has_vpopcntdq(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 14) & 1;
}

vdx_hamming_ny_fn vdx_hamming_ny_get(void) {
    const char *lvl = vdx_kernels_get()->name;
    if (!strcmp(lvl, "avx512")) {
        static int has = -1; /* benign race: all threads agree */
        if (has < 0) has = cpu_has_vpopcntdq();
        if (has) return vdx_hamming_ny_avx512;
        return vdx_hamming_ny_popcnt;
    }
    if (!strcmp(lvl, "avx2")) return vdx_hamming_ny_popcnt;
    return vdx_hamming_ny_scalar;
}

/* Caps that keep every product below in range and refuse absurd sizes. */
#define MAX_CODE_SIZE ((size_t)1 << 20)

static vdx_status check_args(const char *what, const uint8_t *xq, int64_t nq,
                             const uint8_t *xb, int64_t nb, size_t code_size) {
    if (code_size == 0 || code_size > MAX_CODE_SIZE)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: code_size must be in [1, %zu], got %zu", what,
                         MAX_CODE_SIZE, code_size);
    if (nq < 0 || nb < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: negative count (nq=%lld, nb=%lld)", what,
                         (long long)nq, (long long)nb);
    size_t bytes;
    if (!vdx_mul_ok((size_t)nq, code_size, &bytes) ||
        !vdx_mul_ok((size_t)nb, code_size, &bytes))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: sizes overflow", what);
    if ((nq > 0 && !xq) || (nb > 0 && !xb))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: NULL codes", what);
    return VDX_OK;
}

vdx_status vdx_hamming_distances(const uint8_t *xq, int64_t nq,
                                 const uint8_t *xb, int64_t nb,
                                 size_t code_size, int32_t *out) {
    vdx_clear_error();
    vdx_status st = check_args("hamming_distances", xq, nq, xb, nb, code_size);
    if (st != VDX_OK) return st;
    size_t cells;
    if (!vdx_mul_ok((size_t)nq, (size_t)nb, &cells))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "hamming_distances: nq * nb overflows");
    if (cells > 0 && !out)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "hamming_distances: NULL output");
    vdx_hamming_ny_fn fn = vdx_hamming_ny_get();
#pragma omp parallel for schedule(static) if (nq > 1 && cells > 65536)
    for (int64_t i = 0; i < nq; i++)
        fn(out + (size_t)i * (size_t)nb, xq + (size_t)i * code_size, xb,
           code_size, (size_t)nb);
    return VDX_OK;
}

/* (da, ia) after (db, ib) in the (distance, position) order */
static inline int worse(int32_t da, int64_t ia, int32_t db, int64_t ib) {
    return da > db || (da == db && ia > ib);
}

static void heap_sift_down(int32_t *hd, int64_t *hi, size_t k, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && worse(hd[l], hi[l], hd[m], hi[m])) m = l;
        if (r < k && worse(hd[r], hi[r], hd[m], hi[m])) m = r;
        if (m == i) return;
        int32_t td = hd[i]; hd[i] = hd[m]; hd[m] = td;
        int64_t ti = hi[i]; hi[i] = hi[m]; hi[m] = ti;
        i = m;
    }
}

/* FAISS's rule: enter while not full, then only when strictly closer */
static inline void heap_push(int32_t *hd, int64_t *hi, size_t kk,
                             size_t *filled, int32_t d, int64_t id) {
    if (*filled < kk) { /* sift up */
        size_t c = (*filled)++;
        hd[c] = d;
        hi[c] = id;
        while (c > 0) {
            size_t p = (c - 1) / 2;
            if (!worse(hd[c], hi[c], hd[p], hi[p])) break;
            int32_t td = hd[c]; hd[c] = hd[p]; hd[p] = td;
            int64_t ti = hi[c]; hi[c] = hi[p]; hi[p] = ti;
            c = p;
        }
    } else if (d < hd[0]) {
        hd[0] = d;
        hi[0] = id;
        heap_sift_down(hd, hi, kk, 0);
    }
}

/* pops the heap into ascending (distance, id) order, then pads */
static void heap_finish(int32_t *hd, int64_t *hi, size_t kk, size_t filled) {
    for (size_t n = filled; n > 1; n--) {
        int32_t td = hd[0]; hd[0] = hd[n - 1]; hd[n - 1] = td;
        int64_t ti = hi[0]; hi[0] = hi[n - 1]; hi[n - 1] = ti;
        heap_sift_down(hd, hi, n - 1, 0);
    }
    for (size_t c = filled; c < kk; c++) {
        hd[c] = INT32_MAX;
        hi[c] = -1;
    }
}

#define BLOCK 1024

vdx_status vdx_hamming_knn(const uint8_t *xq, int64_t nq, const uint8_t *xb,
                           int64_t nb, size_t code_size, const int64_t *ids,
                           int64_t k, int32_t *distances, int64_t *labels) {
    vdx_clear_error();
    vdx_status st = check_args("hamming_knn", xq, nq, xb, nb, code_size);
    if (st != VDX_OK) return st;
    if (k <= 0 || k > VDX_MAX_K)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "hamming_knn: k must be in [1, %lld], got %lld",
                         (long long)VDX_MAX_K, (long long)k);
    size_t cells;
    if (!vdx_mul_ok((size_t)nq, (size_t)k, &cells))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "hamming_knn: nq * k overflows");
    if (nq > 0 && (!distances || !labels))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "hamming_knn: NULL output");
    vdx_hamming_ny_fn fn = vdx_hamming_ny_get();
#pragma omp parallel for schedule(dynamic) if (nq > 1 && nb > 256)
    for (int64_t i = 0; i < nq; i++) {
        int32_t *hd = distances + (size_t)i * (size_t)k;
        int64_t *hi = labels + (size_t)i * (size_t)k;
        const uint8_t *x = xq + (size_t)i * code_size;
        size_t kk = (size_t)k, filled = 0;
        int32_t buf[BLOCK];
        for (int64_t j0 = 0; j0 < nb; j0 += BLOCK) {
            size_t n = (size_t)VDX_MIN((int64_t)BLOCK, nb - j0);
            fn(buf, x, xb + (size_t)j0 * code_size, code_size, n);
            for (size_t t = 0; t < n; t++)
                heap_push(hd, hi, kk, &filled, buf[t],
                          ids ? ids[j0 + (int64_t)t] : j0 + (int64_t)t);
        }
        heap_finish(hd, hi, kk, filled);
    }
    return VDX_OK;
}

vdx_status vdx_hamming_range_search(const uint8_t *xq, int64_t nq,
                                    const uint8_t *xb, int64_t nb,
                                    size_t code_size, int32_t radius,
                                    vdx_range_result **out) {
    vdx_clear_error();
    if (!out)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "hamming_range_search: NULL output");
    *out = NULL;
    vdx_status st = check_args("hamming_range_search", xq, nq, xb, nb,
                               code_size);
    if (st != VDX_OK) return st;
    vdx_range_result *r = vdx_calloc(1, sizeof *r);
    if (!r) return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "hamming_range_search");
    r->nq = nq;
    r->lims = vdx_calloc((size_t)nq + 1, sizeof *r->lims);
    /* one pass: each query's hits in its own growing buffer, then packed */
    int32_t **qd = vdx_calloc((size_t)nq + 1, sizeof *qd);
    int64_t **qi = vdx_calloc((size_t)nq + 1, sizeof *qi);
    int failed = 0;
    if (!r->lims || !qd || !qi) goto oom;
    vdx_hamming_ny_fn fn = vdx_hamming_ny_get();
#pragma omp parallel for schedule(dynamic) if (nq > 1 && nb > 256)
    for (int64_t i = 0; i < nq; i++) {
        const uint8_t *x = xq + (size_t)i * code_size;
        int32_t buf[BLOCK];
        size_t o = 0, cap = 0;
        for (int64_t j0 = 0; j0 < nb && !failed; j0 += BLOCK) {
            size_t n = (size_t)VDX_MIN((int64_t)BLOCK, nb - j0);
            fn(buf, x, xb + (size_t)j0 * code_size, code_size, n);
            for (size_t t = 0; t < n; t++) {
                if (buf[t] >= radius) continue; /* strict, as FAISS */
                if (o == cap) {
                    size_t nc = cap ? 2 * cap : 64;
                    int32_t *d2 = vdx_realloc_array(qd[i], nc, sizeof *d2);
                    if (d2) qd[i] = d2;
                    int64_t *i2 = d2 ? vdx_realloc_array(qi[i], nc, sizeof *i2)
                                     : NULL;
                    if (i2) qi[i] = i2;
                    if (!d2 || !i2) {
                        __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
                        break;
                    }
                    cap = nc;
                }
                qd[i][o] = buf[t];
                qi[i][o] = j0 + (int64_t)t;
                o++;
            }
        }
        r->lims[i + 1] = (int64_t)o;
    }
    if (failed) goto oom;
    for (int64_t i = 0; i < nq; i++) r->lims[i + 1] += r->lims[i];
    size_t tot = (size_t)r->lims[nq];
    r->distances = vdx_malloc_array(tot ? tot : 1, sizeof(float));
    r->labels = vdx_malloc_array(tot ? tot : 1, sizeof(int64_t));
    if (!r->distances || !r->labels) goto oom;
    for (int64_t i = 0; i < nq; i++) {
        int64_t o = r->lims[i], n = r->lims[i + 1] - o;
        for (int64_t t = 0; t < n; t++) r->distances[o + t] = (float)qd[i][t];
        if (n) memcpy(r->labels + o, qi[i], (size_t)n * sizeof(int64_t));
    }
    for (int64_t i = 0; i < nq; i++) {
        vdx_free(qd[i]);
        vdx_free(qi[i]);
    }
    vdx_free(qd);
    vdx_free(qi);
    *out = r;
    return VDX_OK;
oom:
    if (qd && qi)
        for (int64_t i = 0; i < nq; i++) {
            vdx_free(qd[i]);
            vdx_free(qi[i]);
        }
    vdx_free(qd);
    vdx_free(qi);
    vdx_range_result_free(r);
    return vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                     "hamming_range_search: out of memory");
}

vdx_status vdx_hamming_knn_lists(const uint8_t *xq, int64_t nq,
                                 size_t code_size, int64_t nlist,
                                 const uint8_t *const *list_codes,
                                 const int64_t *const *list_ids,
                                 const int64_t *list_sizes,
                                 const int64_t *assign, int64_t nprobe,
                                 int64_t k, int32_t *distances,
                                 int64_t *labels) {
    vdx_clear_error();
    vdx_status st = check_args("hamming_knn_lists", xq, nq, NULL, 0, code_size);
    if (st != VDX_OK) return st;
    if (k <= 0 || k > VDX_MAX_K || nprobe < 0 || nlist < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "hamming_knn_lists: bad k=%lld, nprobe=%lld or "
                         "nlist=%lld", (long long)k, (long long)nprobe,
                         (long long)nlist);
    size_t cells;
    if (!vdx_mul_ok((size_t)nq, (size_t)k, &cells) ||
        !vdx_mul_ok((size_t)nq, (size_t)nprobe, &cells))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "hamming_knn_lists: sizes overflow");
    if (nq > 0 && (!distances || !labels || (nprobe > 0 && !assign)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "hamming_knn_lists: NULL argument");
    for (int64_t l = 0; l < nlist; l++)
        if (list_sizes[l] < 0 ||
            (list_sizes[l] > 0 && (!list_codes[l] || !list_ids[l])))
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "hamming_knn_lists: list %lld is inconsistent",
                             (long long)l);
    for (size_t c = 0; c < (size_t)nq * (size_t)nprobe; c++)
        if (assign[c] >= nlist)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "hamming_knn_lists: list %lld >= nlist %lld",
                             (long long)assign[c], (long long)nlist);
    vdx_hamming_ny_fn fn = vdx_hamming_ny_get();
#pragma omp parallel for schedule(dynamic) if (nq > 1)
    for (int64_t i = 0; i < nq; i++) {
        int32_t *hd = distances + (size_t)i * (size_t)k;
        int64_t *hi = labels + (size_t)i * (size_t)k;
        const uint8_t *x = xq + (size_t)i * code_size;
        size_t kk = (size_t)k, filled = 0;
        int32_t buf[BLOCK];
        for (int64_t p = 0; p < nprobe; p++) {
            int64_t l = assign[(size_t)i * (size_t)nprobe + (size_t)p];
            if (l < 0) continue; /* fewer lists than nprobe */
            const uint8_t *codes = list_codes[l];
            const int64_t *ids = list_ids[l];
            for (int64_t j0 = 0; j0 < list_sizes[l]; j0 += BLOCK) {
                size_t n = (size_t)VDX_MIN((int64_t)BLOCK, list_sizes[l] - j0);
                fn(buf, x, codes + (size_t)j0 * code_size, code_size, n);
                for (size_t t = 0; t < n; t++)
                    heap_push(hd, hi, kk, &filled, buf[t], ids[j0 + (int64_t)t]);
            }
        }
        heap_finish(hd, hi, kk, filled);
    }
    return VDX_OK;
}
