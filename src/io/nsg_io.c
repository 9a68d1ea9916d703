/*
 * nsg_io.c — FAISS's records of the k-NN-graph indexes: INSf / INSp / INSs
 * (IndexNSGFlat / PQ / SQ) and INNf (IndexNNDescentFlat).
 *
 * INS?: header, int32 GK, char build_type, int32 nndescent_S / R / L /
 * iter, then the NSG struct — int32 ntotal, R, L, C, search_L, enterpoint,
 * bool is_built and, when built, each node's links followed by a -1 (also
 * after a full row of R) — then the storage index.
 * INNf: header, int32 ntotal, d, K, S, R, L, iter, search_L, random_seed,
 * bool has_built, vector<int32> final_graph (ntotal x K), the storage.
 *
 * Nothing is trusted: ntotal rows must fit the remaining bytes (4 each at
 * least) and the ntotal x R graph may not exceed 64 MiB or 64 times the
 * file before it is allocated; every link is checked against [0, ntotal),
 * a row may not pass R, and the storage must match the fourcc, the
 * dimension, the metric and the node count.
 */
#include <inttypes.h>
#include <string.h>

#include "io_internal.h"
#include "index/nsg.h"
#include "index/index_pq.h"
#include "index/index_sq.h"

int vdx_io_is_nsg(const vdx_index *ix) { return vdx_is_nsg(ix); }
int vdx_io_is_nndescent(const vdx_index *ix) { return vdx_is_nnd(ix); }

vdx_status vdx_io_write_nsg(vdx_writer *w, const vdx_index *ix) {
    const vdx_index_nsg *s = (const vdx_index_nsg *)ix;
    const vdx_nsg *g = &s->g;
    const char *fcc = s->kind == VDX_HNSW_FLAT ? "INSf"
                      : s->kind == VDX_HNSW_PQ ? "INSp"
                                               : "INSs";
    vdx_status st;
    if ((st = vdx_wr_header(w, fcc, ix)) || (st = vdx_wr_i32(w, s->GK)) ||
        (st = vdx_wr_u8(w, (uint8_t)s->build_type)) ||
        (st = vdx_wr_i32(w, s->nnd_S)) || (st = vdx_wr_i32(w, s->nnd_R)) ||
        (st = vdx_wr_i32(w, s->nnd_L)) || (st = vdx_wr_i32(w, s->nnd_iter)) ||
        (st = vdx_wr_i32(w, g->is_built ? (int32_t)g->ntotal : 0)) ||
        (st = vdx_wr_i32(w, g->R)) || (st = vdx_wr_i32(w, g->L)) ||
        (st = vdx_wr_i32(w, g->C)) || (st = vdx_wr_i32(w, g->search_L)) ||
        (st = vdx_wr_i32(w, g->enterpoint)) ||
        (st = vdx_wr_u8(w, (uint8_t)(g->is_built != 0))))
        return st;
    if (g->is_built)
        for (int64_t i = 0; i < g->ntotal; i++) {
            const int32_t *r = g->graph + (size_t)i * (size_t)g->R;
            int c = 0;
            while (c < g->R && r[c] >= 0) c++;
            if ((st = vdx_wr_bytes(w, r, (size_t)c * sizeof(int32_t))) ||
                (st = vdx_wr_i32(w, -1)))
                return st;
        }
    return vdx_write_index_rec(w, s->storage);
}

vdx_status vdx_io_write_nndescent(vdx_writer *w, const vdx_index *ix) {
    const vdx_index_nnd *m = (const vdx_index_nnd *)ix;
    const vdx_nndescent *g = &m->g;
    const uint64_t ne = g->has_built ? (uint64_t)g->ntotal * (uint64_t)g->K : 0;
    vdx_status st;
    if ((st = vdx_wr_header(w, "INNf", ix)) ||
        (st = vdx_wr_i32(w, g->has_built ? (int32_t)g->ntotal : 0)) ||
        (st = vdx_wr_i32(w, (int32_t)ix->d)) || (st = vdx_wr_i32(w, g->K)) ||
        (st = vdx_wr_i32(w, g->S)) || (st = vdx_wr_i32(w, g->R)) ||
        (st = vdx_wr_i32(w, g->L)) || (st = vdx_wr_i32(w, g->iter)) ||
        (st = vdx_wr_i32(w, g->search_L)) ||
        (st = vdx_wr_i32(w, g->random_seed)) ||
        (st = vdx_wr_u8(w, (uint8_t)(g->has_built != 0))) ||
        (st = vdx_wr_u64(w, ne)) ||
        (ne && (st = vdx_wr_bytes(w, g->final_graph, (size_t)ne * sizeof(int32_t)))))
        return st;
    return vdx_write_index_rec(w, m->storage);
}

/* Reads the storage and checks it against the header: kind (ok), d,
 * metric and ntotal. */
static vdx_status read_storage(vdx_reader *r, const vdx_io_header *h,
                               vdx_metric metric, int kind, vdx_index **out) {
    uint64_t at = r->pos;
    vdx_index *st_ix = NULL;
    vdx_status s = vdx_read_index_rec(r, &st_ix);
    if (s) return s;
    int ok = kind == VDX_HNSW_FLAT ? vdx_is_flat(st_ix)
             : kind == VDX_HNSW_PQ ? vdx_is_index_pq(st_ix)
                                   : vdx_is_index_sq(st_ix);
    if (!ok) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index: its storage at offset %" PRIu64
                      " is an %s", h->fourcc, at, vdx_index_type_name(st_ix));
    } else if (st_ix->d != h->d || st_ix->metric != metric ||
               st_ix->ntotal != h->ntotal) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index (d=%" PRId64 ", ntotal=%" PRId64 ") disagrees "
                      "with its storage at offset %" PRIu64 " (d=%" PRId64
                      ", ntotal=%" PRId64 ", metric %d)",
                      h->fourcc, h->d, h->ntotal, at, st_ix->d, st_ix->ntotal,
                      (int)st_ix->metric);
    }
    if (s) {
        vdx_index_free(st_ix);
        return s;
    }
    *out = st_ix;
    return VDX_OK;
}

#define FAIL(code, ...)                                                      \
    do {                                                                     \
        s = vdx_raise(code, __VA_ARGS__);                                    \
        goto fail;                                                           \
    } while (0)

/* The graph may need up to R times the bytes its rows take in the file
 * (rows of one link): past this many bytes, and past 64 times the file's
 * size, a file is refused rather than trusted with the allocation. */
#define NSG_GRAPH_FREE_BYTES ((uint64_t)64 << 20)

vdx_status vdx_io_read_nsg(vdx_reader *r, vdx_io_header *h, vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    const char *fc = h->fourcc;
    const int kind = fc[3] == 'f' ? VDX_HNSW_FLAT
                     : fc[3] == 'p' ? VDX_HNSW_PQ
                                    : VDX_HNSW_SQ;
    int32_t GK, nS, nR, nL, nit, ntot, R, L, C, sL, ep;
    uint8_t bt, built;
    uint64_t at = r->pos;
    if ((s = vdx_rd_i32(r, &GK, "NSG GK")) ||
        (s = vdx_rd_u8(r, &bt, "NSG build_type")) ||
        (s = vdx_rd_i32(r, &nS, "NSG nndescent_S")) ||
        (s = vdx_rd_i32(r, &nR, "NSG nndescent_R")) ||
        (s = vdx_rd_i32(r, &nL, "NSG nndescent_L")) ||
        (s = vdx_rd_i32(r, &nit, "NSG nndescent_iter")) ||
        (s = vdx_rd_i32(r, &ntot, "NSG ntotal")) ||
        (s = vdx_rd_i32(r, &R, "NSG R")) || (s = vdx_rd_i32(r, &L, "NSG L")) ||
        (s = vdx_rd_i32(r, &C, "NSG C")) ||
        (s = vdx_rd_i32(r, &sL, "NSG search_L")) ||
        (s = vdx_rd_i32(r, &ep, "NSG enterpoint")) ||
        (s = vdx_rd_u8(r, &built, "NSG is_built")))
        return s;
    const int M = 1 << 20;
    if (GK < 1 || GK > VDX_NND_K_MAX || bt > 1 || nS < 1 || nS > VDX_NND_K_MAX ||
        nR < 0 || nR > VDX_NND_K_MAX || nL < 1 || nL > VDX_NND_K_MAX ||
        nit < 0 || nit > 1000)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: build parameters at offset %" PRIu64
                         " out of range (GK=%d, build_type=%d, nndescent S=%d "
                         "R=%d L=%d iter=%d)",
                         fc, at, GK, bt, nS, nR, nL, nit);
    if (R < 1 || R > VDX_NSG_R_MAX || L < 1 || L > M || C < 1 || C > M ||
        sL < -1 || sL > M || built > 1)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: NSG R=%d L=%d C=%d search_L=%d is_built=%d "
                         "at offset %" PRIu64 " out of range (R in 1..%d)",
                         fc, R, L, C, sL, built, at + 25, VDX_NSG_R_MAX);
    if (built ? (ntot != h->ntotal || ntot < 1 || ep < 0 || ep >= ntot)
              : h->ntotal != 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: NSG ntotal=%d / enterpoint=%d / is_built=%d "
                         "at offset %" PRIu64 " disagree with the index's "
                         "ntotal=%" PRId64,
                         fc, ntot, ep, built, at + 25, h->ntotal);
    const uint64_t n = built ? (uint64_t)ntot : 0;
    int32_t *graph = NULL;
    vdx_index *storage = NULL;
    vdx_index_nsg *x = NULL;
    if (n) {
        /* every row holds at least its -1: n * 4 bytes must remain, and the
         * rows cannot take more than the remaining bytes */
        uint64_t rem = vdx_rd_remaining(r);
        if (n * 4 > rem)
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: %" PRIu64 " graph rows at offset %" PRIu64
                             " need at least %" PRIu64 " bytes, %" PRIu64 " remain",
                             fc, n, r->pos, n * 4, rem);
        const uint64_t gbytes = n * (uint64_t)R * 4;
        if (gbytes > NSG_GRAPH_FREE_BYTES && gbytes / 64 > r->size)
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: a graph of %" PRIu64 " x R=%d links "
                             "(%" PRIu64 " bytes) from a %" PRIu64 "-byte %s",
                             fc, n, R, gbytes, r->size, r->kind);
        graph = vdx_malloc_array((size_t)n * (size_t)R, sizeof(int32_t));
        if (!graph) return VDX_ERR_OUT_OF_MEMORY;
        for (uint64_t i = 0; i < n; i++) {
            int32_t *row = graph + (size_t)i * (size_t)R;
            int c = 0;
            for (;;) {
                int32_t v;
                uint64_t vat = r->pos;
                if ((s = vdx_rd_i32(r, &v, "NSG link"))) goto fail;
                if (v == -1) break;
                if (v < 0 || (uint64_t)v >= n)
                    FAIL(VDX_ERR_FORMAT,
                         "%s index: link %d of node %" PRIu64 " at offset "
                         "%" PRIu64 " is outside [0, ntotal=%" PRIu64 ")",
                         fc, v, i, vat, n);
                if (c == R)
                    FAIL(VDX_ERR_FORMAT,
                         "%s index: node %" PRIu64 " has more than R=%d links "
                         "(no -1 at offset %" PRIu64 ")",
                         fc, i, R, vat);
                row[c++] = v;
            }
            for (int j = c; j < R; j++) row[j] = -1;
        }
    }
    if ((s = read_storage(r, h, metric, kind, &storage))) goto fail;
    if ((s = vdx_nsg_make(storage, kind, R, &x))) goto fail;
    storage = NULL;
    x->GK = GK;
    x->build_type = bt;
    x->nnd_S = nS;
    x->nnd_R = nR;
    x->nnd_L = nL;
    x->nnd_iter = nit;
    x->g.L = L;
    x->g.C = C;
    x->g.search_L = sL;
    x->g.enterpoint = built ? ep : -1;
    x->g.is_built = built;
    x->g.ntotal = (int64_t)n;
    x->g.graph = graph;
    x->base.ntotal = h->ntotal;
    x->base.is_trained = x->storage->is_trained;
    x->base.metric_arg = h->metric_arg;
    *out = &x->base;
    return VDX_OK;
fail:
    vdx_free(graph);
    vdx_index_free(storage);
    return s;
}

vdx_status vdx_io_read_nndescent(vdx_reader *r, vdx_io_header *h,
                                 vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    const char *fc = h->fourcc;
    int32_t ntot, d, K, S, R, L, it, sL, seed;
    uint8_t built;
    uint64_t at = r->pos;
    if ((s = vdx_rd_i32(r, &ntot, "NNDescent ntotal")) ||
        (s = vdx_rd_i32(r, &d, "NNDescent d")) ||
        (s = vdx_rd_i32(r, &K, "NNDescent K")) ||
        (s = vdx_rd_i32(r, &S, "NNDescent S")) ||
        (s = vdx_rd_i32(r, &R, "NNDescent R")) ||
        (s = vdx_rd_i32(r, &L, "NNDescent L")) ||
        (s = vdx_rd_i32(r, &it, "NNDescent iter")) ||
        (s = vdx_rd_i32(r, &sL, "NNDescent search_L")) ||
        (s = vdx_rd_i32(r, &seed, "NNDescent random_seed")) ||
        (s = vdx_rd_u8(r, &built, "NNDescent has_built")))
        return s;
    if (d != h->d || K < 1 || K > VDX_NND_K_MAX || S < 1 || S > VDX_NND_K_MAX ||
        R < 0 || R > VDX_NND_K_MAX || L < 1 || L > VDX_NND_K_MAX || it < 0 ||
        it > 1000 || sL < 0 || sL > (1 << 24) || built > 1)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: NNDescent d=%d K=%d S=%d R=%d L=%d iter=%d "
                         "search_L=%d has_built=%d at offset %" PRIu64
                         " out of range (index d=%" PRId64 ")",
                         fc, d, K, S, R, L, it, sL, built, at, h->d);
    if (built ? (ntot != h->ntotal || ntot <= K) : h->ntotal != 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: NNDescent ntotal=%d (K=%d, has_built=%d) at "
                         "offset %" PRIu64 " disagrees with the index's "
                         "ntotal=%" PRId64,
                         fc, ntot, K, built, at, h->ntotal);
    const uint64_t ne = built ? (uint64_t)ntot * (uint64_t)K : 0;
    uint64_t gat = r->pos;
    if ((s = vdx_rd_vector_count(r, 4, ne, "NNDescent final_graph"))) return s;
    int32_t *fg = NULL;
    vdx_index *storage = NULL;
    vdx_index_nnd *m = NULL;
    if (ne) {
        fg = vdx_malloc_array((size_t)ne, sizeof(int32_t));
        if (!fg) return VDX_ERR_OUT_OF_MEMORY;
        if ((s = vdx_rd_bytes(r, fg, (size_t)ne * 4, "NNDescent final_graph")))
            goto fail;
        for (uint64_t i = 0; i < ne; i++)
            if (fg[i] < -1 || fg[i] >= ntot)
                FAIL(VDX_ERR_FORMAT,
                     "%s index: final_graph[%" PRIu64 "] = %d at offset %" PRIu64
                     " is outside [-1, ntotal=%d)",
                     fc, i, fg[i], gat + 8 + 4 * i, ntot);
    }
    if ((s = read_storage(r, h, metric, VDX_HNSW_FLAT, &storage))) goto fail;
    if ((s = vdx_nnd_make(storage, K, &m))) goto fail;
    storage = NULL;
    m->g.S = S;
    m->g.R = R;
    m->g.L = L;
    m->g.iter = it;
    m->g.search_L = sL;
    m->g.random_seed = seed;
    m->g.has_built = built;
    m->g.ntotal = built ? ntot : 0;
    m->g.final_graph = fg;
    m->base.ntotal = h->ntotal;
    m->base.metric_arg = h->metric_arg;
    *out = &m->base;
    return VDX_OK;
fail:
    vdx_free(fg);
    vdx_index_free(storage);
    return s;
}
