/*
 * index.c — the public entry points of every index.  They clear the error,
 * check what all kinds share (NULLs, shapes, k, NaN/Inf, trained state) and
 * dispatch through the vtable, so each kind's ops receive valid arguments.
 */
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"
#include "common/threads.h"

#define CHECK_INDEX(ix)                                                      \
    do {                                                                     \
        vdx_clear_error();                                                   \
        if (!(ix))                                                           \
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "index is NULL");     \
    } while (0)

static vdx_status check_matrix(const vdx_index *ix, int64_t n, const void *x,
                               const char *what) {
    if (n < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: n=%lld is negative",
                         what, (long long)n);
    if (n > 0 && !x)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: data is NULL for n=%lld",
                         what, (long long)n);
    if (ix->d > 0 && n > INT64_MAX / ix->d / 8)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: n=%lld is too large",
                         what, (long long)n);
    return VDX_OK;
}

vdx_status vdx_refuse_populated_train(const vdx_index *ix) {
    if (ix->ntotal == 0) return VDX_OK;
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                     "%s: index holds %lld vectors; reset() it before "
                     "training again (a second train would leave the stored "
                     "codes meaningless)",
                     ix->ops->type_name, (long long)ix->ntotal);
}

vdx_status vdx_index_train(vdx_index *ix, int64_t n, const float *x) {
    CHECK_INDEX(ix);
    vdx_status st = check_matrix(ix, n, x, "train");
    if (st) return st;
    if ((st = vdx_check_vectors(x, n, ix->d, "training vectors"))) return st;
    if (!ix->ops->train) return VDX_OK; /* nothing to learn (flat) */
    vdx_team_begin();
    st = ix->ops->train(ix, n, x);
    vdx_team_end();
    return st;
}

static vdx_status add_common(vdx_index *ix, int64_t n, const float *x,
                             const vdx_idx_t *ids) {
    vdx_status st = check_matrix(ix, n, x, "add");
    if (st) return st;
    if (!ix->is_trained)
        return vdx_raise(VDX_ERR_NOT_TRAINED,
                         "%s: the index must be trained before add",
                         ix->ops->type_name);
    if ((st = vdx_check_vectors(x, n, ix->d, "added vectors"))) return st;
    if (n == 0) return VDX_OK;
    vdx_team_begin();
    st = ix->ops->add(ix, n, x, ids);
    vdx_team_end();
    return st;
}

vdx_status vdx_index_add(vdx_index *ix, int64_t n, const float *x) {
    CHECK_INDEX(ix);
    return add_common(ix, n, x, NULL);
}

vdx_status vdx_index_add_with_ids(vdx_index *ix, int64_t n, const float *x,
                                  const vdx_idx_t *ids) {
    CHECK_INDEX(ix);
    if (n > 0 && !ids)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "add_with_ids: ids is NULL");
    if (vdx_is_flat(ix))
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_with_ids is not supported by %s: wrap it in "
                         "IndexIDMap",
                         ix->ops->type_name);
    /* any int64 is an id (hashes are negative half the time) except -1,
     * which search results use for "no result" */
    for (int64_t i = 0; i < n; i++)
        if (ids[i] == -1)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_with_ids: ids[%lld] is -1, which marks empty "
                             "result slots; use another id",
                             (long long)i);
    return add_common(ix, n, x, ids);
}

static vdx_status check_search(const vdx_index *ix, int64_t n, const float *x,
                               const char *what) {
    vdx_status st = check_matrix(ix, n, x, what);
    if (st) return st;
    if (!ix->is_trained)
        return vdx_raise(VDX_ERR_NOT_TRAINED,
                         "%s: the index must be trained before search",
                         ix->ops->type_name);
    return vdx_check_vectors(x, n, ix->d, "query vectors");
}

vdx_status vdx_index_search(const vdx_index *ix, int64_t n, const float *x,
                            int64_t k, const vdx_search_params *params,
                            float *D, vdx_idx_t *I) {
    CHECK_INDEX(ix);
    if (k <= 0 || k > VDX_MAX_K)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "k=%lld must be in 1..%lld", (long long)k,
                         (long long)VDX_MAX_K);
    vdx_status st = check_search(ix, n, x, "search");
    if (st) return st;
    if (n > 0 && (!D || !I))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search: distances or labels is NULL");
    if (n > 0 && k > INT64_MAX / n / 8)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search: n * k = %lld * %lld is too large",
                         (long long)n, (long long)k);
    if (n == 0) return VDX_OK;
    vdx_team_begin();
    st = ix->ops->search(ix, n, x, k, params, D, I);
    vdx_team_end();
    return st;
}

vdx_status vdx_index_ivf_search_preassigned(const vdx_index *ix, int64_t n,
                                            const float *x, int64_t k,
                                            int64_t nprobe,
                                            const int64_t *lists,
                                            const vdx_search_params *params,
                                            float *D, vdx_idx_t *I) {
    CHECK_INDEX(ix);
    if (!vdx_ivf_preassigned_ok(ix))
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "search_preassigned is not supported by %s (IVF-Flat, "
                         "IVFPQ, IVF-SQ and IVF additive quantizers have it)",
                         ix->ops->type_name);
    if (k <= 0 || k > VDX_MAX_K)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "k=%lld must be in 1..%lld", (long long)k,
                         (long long)VDX_MAX_K);
    vdx_status st = check_search(ix, n, x, "search_preassigned");
    if (st) return st;
    if (n > 0 && (!D || !I || !lists))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search_preassigned: lists, distances or labels is NULL");
    if (nprobe < 1 || (n > 0 && nprobe > INT64_MAX / n / 8))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search_preassigned: nprobe=%lld must be >= 1",
                         (long long)nprobe);
    if (n > 0 && k > INT64_MAX / n / 8)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search: n * k = %lld * %lld is too large",
                         (long long)n, (long long)k);
    if (n == 0) return VDX_OK;
    vdx_team_begin();
    st = vdx_ivf_search_preassigned(ix, n, x, k, params, nprobe, lists, D, I);
    vdx_team_end();
    return st;
}

/* ---- range search ------------------------------------------------------ */

vdx_status vdx_range_builder_add(vdx_range_builder *rb, int64_t q, float dist,
                                 vdx_idx_t label) {
    int64_t c = rb->counts[q];
    if (c == rb->cap[q]) {
        int64_t nc = c ? 2 * c : 16;
        float *nd = vdx_realloc_array(rb->dist[q], (size_t)nc, sizeof(float));
        if (!nd) return VDX_ERR_OUT_OF_MEMORY;
        rb->dist[q] = nd;
        vdx_idx_t *nl = vdx_realloc_array(rb->lab[q], (size_t)nc,
                                          sizeof(vdx_idx_t));
        if (!nl) return VDX_ERR_OUT_OF_MEMORY;
        rb->lab[q] = nl;
        rb->cap[q] = nc;
    }
    rb->dist[q][c] = dist;
    rb->lab[q][c] = label;
    rb->counts[q] = c + 1;
    return VDX_OK;
}

vdx_status vdx_range_collect(vdx_range_builder *rb, int64_t q,
                             const float *values, size_t n, int is_ip,
                             int negated, float radius, const vdx_idx_t *ids,
                             vdx_idx_t id0, const vdx_selector *sel) {
    for (size_t j = 0; j < n; j++) {
        float v = negated ? -values[j] : values[j];
        if (is_ip ? !(v > radius) : !(v < radius)) continue;
        vdx_idx_t id = ids ? ids[j] : id0 + (vdx_idx_t)j;
        if (sel && !vdx_sel_member(sel, id)) continue;
        vdx_status st = vdx_range_builder_add(rb, q, v, id);
        if (st) return st;
    }
    return VDX_OK;
}

static void builder_free(vdx_range_builder *rb) {
    if (rb->dist)
        for (int64_t i = 0; i < rb->nq; i++) vdx_free(rb->dist[i]);
    if (rb->lab)
        for (int64_t i = 0; i < rb->nq; i++) vdx_free(rb->lab[i]);
    vdx_free(rb->dist);
    vdx_free(rb->lab);
    vdx_free(rb->counts);
    vdx_free(rb->cap);
}

void vdx_range_result_free(vdx_range_result *r) {
    if (!r) return;
    vdx_free(r->lims);
    vdx_free(r->distances);
    vdx_free(r->labels);
    vdx_free(r);
}

vdx_status vdx_index_range_search(const vdx_index *ix, int64_t n,
                                  const float *x, float radius,
                                  const vdx_search_params *params,
                                  vdx_range_result **out) {
    CHECK_INDEX(ix);
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_status st = check_search(ix, n, x, "range_search");
    if (st) return st;
    if (radius != radius)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "radius is NaN");
    if (!ix->ops->range_search)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "range_search is not supported by %s",
                         ix->ops->type_name);
    vdx_range_builder rb = {0};
    rb.nq = n;
    rb.counts = vdx_calloc((size_t)n + 1, sizeof(int64_t));
    rb.cap = vdx_calloc((size_t)n + 1, sizeof(int64_t));
    rb.dist = vdx_calloc((size_t)n + 1, sizeof(float *));
    rb.lab = vdx_calloc((size_t)n + 1, sizeof(vdx_idx_t *));
    vdx_range_result *r = vdx_calloc(1, sizeof *r);
    if (!rb.counts || !rb.cap || !rb.dist || !rb.lab || !r) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if (n > 0) {
        vdx_team_begin();
        st = ix->ops->range_search(ix, n, x, radius, params, &rb);
        vdx_team_end();
        if (st) goto done;
    }
    r->nq = n;
    r->lims = vdx_malloc_array((size_t)n + 1, sizeof(int64_t));
    if (!r->lims) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    r->lims[0] = 0;
    for (int64_t i = 0; i < n; i++) r->lims[i + 1] = r->lims[i] + rb.counts[i];
    int64_t tot = r->lims[n];
    r->distances = vdx_malloc_array((size_t)(tot ? tot : 1), sizeof(float));
    r->labels = vdx_malloc_array((size_t)(tot ? tot : 1), sizeof(vdx_idx_t));
    if (!r->distances || !r->labels) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!rb.counts[i]) continue;
        memcpy(r->distances + r->lims[i], rb.dist[i],
               (size_t)rb.counts[i] * sizeof(float));
        memcpy(r->labels + r->lims[i], rb.lab[i],
               (size_t)rb.counts[i] * sizeof(vdx_idx_t));
    }
    *out = r;
    r = NULL;
done:
    builder_free(&rb);
    vdx_range_result_free(r);
    return st;
}

/* ---- the rest ---------------------------------------------------------- */

vdx_status vdx_index_reset(vdx_index *ix) {
    CHECK_INDEX(ix);
    return ix->ops->reset(ix);
}

vdx_status vdx_index_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                 float *out) {
    CHECK_INDEX(ix);
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    if (!ix->ops->reconstruct)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "reconstruct is not supported by %s",
                         ix->ops->type_name);
    return ix->ops->reconstruct(ix, key, out);
}

vdx_status vdx_index_reconstruct_batch(const vdx_index *ix, int64_t n,
                                       const vdx_idx_t *keys, float *out) {
    CHECK_INDEX(ix);
    if (n < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "reconstruct_batch: n=%lld < 0", (long long)n);
    if (n > 0 && (!keys || !out))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "keys or out is NULL");
    if (!ix->ops->reconstruct)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "reconstruct is not supported by %s",
                         ix->ops->type_name);
    for (int64_t i = 0; i < n; i++) {
        vdx_status st = ix->ops->reconstruct(ix, keys[i], out + i * ix->d);
        if (st) return st; /* the kind's message names the key */
    }
    return VDX_OK;
}

vdx_status vdx_index_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                   int64_t ni, float *out) {
    CHECK_INDEX(ix);
    if (ni < 0 || i0 < 0 || i0 > ix->ntotal || ni > ix->ntotal - i0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "reconstruct_n: %lld vectors from %lld are outside "
                         "[0, ntotal=%lld)",
                         (long long)ni, (long long)i0, (long long)ix->ntotal);
    if (ni > 0 && !out)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    if (ni == 0) return VDX_OK;
    if (ix->ops->reconstruct_n) return ix->ops->reconstruct_n(ix, i0, ni, out);
    if (!ix->ops->reconstruct)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "reconstruct is not supported by %s",
                         ix->ops->type_name);
    for (int64_t i = 0; i < ni; i++) {
        vdx_status st = ix->ops->reconstruct(ix, i0 + i, out + i * ix->d);
        if (st) return st;
    }
    return VDX_OK;
}

vdx_status vdx_check_key(const vdx_index *ix, vdx_idx_t key) {
    if (key < 0 || key >= ix->ntotal)
        return vdx_raise(VDX_ERR_NOT_FOUND,
                         "reconstruct: key %lld is outside [0, ntotal=%lld)",
                         (long long)key, (long long)ix->ntotal);
    return VDX_OK;
}

vdx_status vdx_check_range(const vdx_index *ix, vdx_idx_t i0, int64_t ni) {
    if (i0 < 0 || ni < 0 || i0 > ix->ntotal || ni > ix->ntotal - i0)
        return vdx_raise(VDX_ERR_NOT_FOUND,
                         "reconstruct_n: %lld vectors from %lld are outside "
                         "[0, ntotal=%lld)",
                         (long long)ni, (long long)i0, (long long)ix->ntotal);
    return VDX_OK;
}

vdx_status vdx_codes_remove_ids(vdx_index *ix, uint8_t *codes,
                                size_t code_size, const vdx_selector *sel,
                                int64_t *nremoved) {
    int64_t j = 0;
    for (int64_t i = 0; i < ix->ntotal; i++) {
        if (vdx_sel_member(sel, i)) continue;
        if (i != j)
            memcpy(codes + (size_t)j * code_size, codes + (size_t)i * code_size,
                   code_size);
        j++;
    }
    *nremoved = ix->ntotal - j;
    ix->ntotal = j;
    return VDX_OK;
}

vdx_status vdx_index_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                int64_t *nremoved) {
    CHECK_INDEX(ix);
    if (nremoved) *nremoved = 0;
    if (!sel) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "selector is NULL");
    if (!ix->ops->remove_ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "remove_ids is not supported by %s",
                         ix->ops->type_name);
    int64_t nr = 0;
    vdx_team_begin();
    vdx_status st = ix->ops->remove_ids(ix, sel, &nr);
    vdx_team_end();
    if (nremoved) *nremoved = nr;
    return st;
}

void vdx_index_free(vdx_index *ix) {
    if (ix) ix->ops->destroy(ix);
}

int64_t vdx_index_d(const vdx_index *ix) { return ix ? ix->d : 0; }
int64_t vdx_index_ntotal(const vdx_index *ix) { return ix ? ix->ntotal : 0; }
int vdx_index_is_trained(const vdx_index *ix) {
    return ix ? ix->is_trained : 0;
}
vdx_metric vdx_index_metric(const vdx_index *ix) {
    return ix ? ix->metric : VDX_METRIC_L2;
}
const char *vdx_index_type_name(const vdx_index *ix) {
    return ix ? ix->ops->type_name : "";
}

void vdx_search_params_init(vdx_search_params *p) {
    if (p) memset(p, 0, sizeof *p);
}
