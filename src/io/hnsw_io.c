/*
 * hnsw_io.c — the HNSW indexes in FAISS's format:
 *
 *   fourcc "IHNf" (IndexHNSWFlat), "IHNs" (IndexHNSWSQ), "IHNp"
 *   (IndexHNSWPQ); the common header; then FAISS's HNSW struct:
 *     assign_probas            vector<double>  level probabilities
 *     cum_nneighbor_per_level  vector<int32>   0, 2M, 3M, 4M, ...
 *     levels                   vector<int32>   ntotal entries, top level + 1
 *     offsets                  vector<uint64>  ntotal + 1, node i's links at
 *                                              [offsets[i], offsets[i+1])
 *     neighbors                vector<int32>   per node, level by level,
 *                                              each level padded with -1
 *     int32 entry_point, max_level, efConstruction, efSearch, upper_beam
 *   then the storage index (IxF2 / IxFI, IxSQ, IxPq), read recursively.
 *
 * vecdex converts to its own layout (hnsw.h) on load and back on save;
 * opened memory-mapped, offsets and neighbors are searched in the map as
 * they are (hnsw.h, "Mapped graphs"): their links are checked when read.
 * Checks on read: the level table has FAISS's shape (2M on level 0, M
 * above) with 2 <= M <= 512; every level in 1..table size; offsets start
 * at 0 and step by exactly the node's link count; every link is -1 or a
 * node in [0, ntotal); entry point and max level agree; the storage has the
 * kind, d, metric and ntotal of the graph.  "IHN2" (IndexHNSW2Level) is
 * read with an Index2Layer storage ("Ix2L", index_2layer_io.c), not with
 * the IndexIVFPQ one FAISS's flip_to_ivf leaves; "IHNc" (IndexHNSWCagra)
 * is not read.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "io_internal.h"
#include "index/hnsw.h"
#include "index/index_2layer.h"
#include "index/index_pq.h"
#include "index/index_sq.h"

int vdx_io_is_hnsw(const vdx_index *ix) { return vdx_is_hnsw(ix); }

/* FAISS's level table for M: probabilities and cumulative link counts.
 * Returns the number of levels (<= VDX_HNSW_MAX_LEVELS). */
static int level_table(int M, double *probas, int32_t *cum) {
    float mult = (float)(1.0 / log((double)M));
    int n = 0, nn = 0;
    cum[0] = 0;
    for (int level = 0; level < VDX_HNSW_MAX_LEVELS; level++) {
        float p = (float)(exp(-level / mult) * (1 - exp(-1 / mult)));
        if (p < 1e-9) break;
        probas[n++] = p;
        nn += level == 0 ? 2 * M : M;
        cum[n] = nn;
    }
    return n;
}

vdx_status vdx_io_write_hnsw(vdx_writer *w, const vdx_index *ix) {
    const vdx_index_hnsw *h = (const vdx_index_hnsw *)ix;
    const vdx_hnsw *g = &h->g;
    const char *fcc = h->kind == VDX_HNSW_FLAT ? "IHNf"
                      : h->kind == VDX_HNSW_SQ ? "IHNs"
                      : h->kind == VDX_HNSW_2L ? "IHN2"
                                               : "IHNp";
    double probas[VDX_HNSW_MAX_LEVELS];
    int32_t cum[VDX_HNSW_MAX_LEVELS + 1];
    int nl = level_table(g->M, probas, cum);
    vdx_status s;
    if ((s = vdx_wr_header(w, fcc, ix))) return s;
    if ((s = vdx_wr_u64(w, (uint64_t)nl)) ||
        (s = vdx_wr_bytes(w, probas, (size_t)nl * sizeof(double))) ||
        (s = vdx_wr_u64(w, (uint64_t)nl + 1)) ||
        (s = vdx_wr_bytes(w, cum, (size_t)(nl + 1) * sizeof(int32_t))))
        return s;
    if ((s = vdx_wr_u64(w, (uint64_t)g->n))) return s;
    for (int64_t i = 0; i < g->n; i++) {
        if (g->levels[i] >= nl)
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "HNSW write: node %lld has level %d, beyond "
                             "FAISS's table of %d levels",
                             (long long)i, g->levels[i], nl);
        if ((s = vdx_wr_i32(w, g->levels[i] + 1))) return s;
    }
    uint64_t off = 0;
    if ((s = vdx_wr_u64(w, (uint64_t)g->n + 1)) || (s = vdx_wr_u64(w, 0))) return s;
    for (int64_t i = 0; i < g->n; i++) {
        off += (uint64_t)cum[g->levels[i] + 1];
        if ((s = vdx_wr_u64(w, off))) return s;
    }
    if ((s = vdx_wr_u64(w, off))) return s;
    int32_t buf[1 + 2 * VDX_HNSW_M_MAX];
    for (int64_t i = 0; i < g->n; i++)
        for (int l = 0; l <= g->levels[i]; l++) {
            int32_t rb[1 + 2 * VDX_HNSW_M_MAX];
            const int32_t *row = vdx_hnsw_row_get(g, i, l, rb);
            int deg = cum[l + 1] - cum[l];
            for (int j = 0; j < deg; j++) buf[j] = j < row[0] ? row[1 + j] : -1;
            if ((s = vdx_wr_bytes(w, buf, (size_t)deg * sizeof(int32_t)))) return s;
        }
    if ((s = vdx_wr_i32(w, g->entry_point)) || (s = vdx_wr_i32(w, g->max_level)) ||
        (s = vdx_wr_i32(w, g->efConstruction)) || (s = vdx_wr_i32(w, g->efSearch)) ||
        (s = vdx_wr_i32(w, 1))) /* upper_beam, deprecated */
        return s;
    return vdx_write_index_rec(w, h->storage);
}

#define FAIL(code, ...)                                                      \
    do {                                                                     \
        s = vdx_raise(code, __VA_ARGS__);                                    \
        goto fail;                                                           \
    } while (0)

vdx_status vdx_io_read_hnsw(vdx_reader *r, vdx_io_header *h, vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    const int kind = h->fourcc[3] == 'f' ? VDX_HNSW_FLAT
                     : h->fourcc[3] == 's' ? VDX_HNSW_SQ
                     : h->fourcc[3] == '2' ? VDX_HNSW_2L
                                           : VDX_HNSW_PQ;
    const char *fc = h->fourcc;
    int32_t *lev = NULL, *buf = NULL;
    vdx_index_hnsw *hx = NULL;
    vdx_index *storage = NULL;
    uint64_t at, np;
    double probas[VDX_HNSW_MAX_LEVELS];
    int32_t cum[VDX_HNSW_MAX_LEVELS + 1];

    /* level table */
    at = r->pos;
    if ((s = vdx_rd_u64(r, &np, "HNSW assign_probas size"))) return s;
    if (np < 1 || np > VDX_HNSW_MAX_LEVELS)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: %" PRIu64 " level probabilities at offset "
                         "%" PRIu64 ", expected 1..%d",
                         fc, np, at, VDX_HNSW_MAX_LEVELS);
    if ((s = vdx_rd_bytes(r, probas, np * sizeof(double), "HNSW assign_probas")))
        return s;
    for (uint64_t i = 0; i < np; i++)
        if (!(probas[i] >= 0 && probas[i] <= 1))
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: level probability %" PRIu64 " at offset "
                             "%" PRIu64 " is not in [0, 1]",
                             fc, i, at + 8 + i * 8);
    at = r->pos;
    if ((s = vdx_rd_vector_count(r, 4, np + 1, "HNSW cum_nneighbor_per_level")))
        return s;
    if ((s = vdx_rd_bytes(r, cum, (np + 1) * 4, "HNSW cum_nneighbor_per_level")))
        return s;
    int M = cum[1] / 2;
    if (cum[0] != 0 || cum[1] % 2 || M < VDX_HNSW_M_MIN || M > VDX_HNSW_M_MAX)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s index: level-0 link count %d at offset %" PRIu64
                         " is not 2M with M in %d..%d",
                         fc, cum[1], at + 8, VDX_HNSW_M_MIN, VDX_HNSW_M_MAX);
    for (uint64_t l = 1; l < np; l++)
        if ((int64_t)cum[l + 1] - (int64_t)cum[l] != M) /* 64-bit: no overflow */
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "%s index: level %" PRIu64 " has %lld links per "
                             "node at offset %" PRIu64 ", expected M=%d",
                             fc, l, (long long)cum[l + 1] - (long long)cum[l],
                             at + 8 + 4 * (l + 1), M);

    /* levels */
    const uint64_t n = (uint64_t)h->ntotal;
    if (n > INT32_MAX)
        return vdx_raise(VDX_ERR_FORMAT, "%s index: ntotal=%" PRIu64
                         " exceeds HNSW's 2^31 - 1 nodes", fc, n);
    at = r->pos;
    if ((s = vdx_rd_vector_count(r, 4, n, "HNSW levels"))) return s;
    lev = vdx_malloc_array((size_t)VDX_MAX(n, 1), sizeof(int32_t));
    if (!lev) return VDX_ERR_OUT_OF_MEMORY;
    if ((s = vdx_rd_bytes(r, lev, n * 4, "HNSW levels"))) goto fail;
    int32_t maxlev = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (lev[i] < 1 || (uint64_t)lev[i] > np)
            FAIL(VDX_ERR_FORMAT,
                 "%s index: node %" PRIu64 " has %d levels at offset %" PRIu64
                 ", expected 1..%" PRIu64,
                 fc, i, lev[i], at + 8 + 4 * i, np);
        if (lev[i] > maxlev) maxlev = lev[i];
    }

    /* offsets: checked while streamed (offsets[i+1] - offsets[i] must be
     * cum[levels[i]]) */
    at = r->pos;
    if ((s = vdx_rd_vector_count(r, 8, n + 1, "HNSW offsets"))) goto fail;
    /* mapped: offsets and neighbors stay in the map (see hnsw.h) */
    const uint8_t *moff = NULL, *mnb = NULL;
    if (r->map &&
        !(moff = vdx_rd_borrow(r, (n + 1) * 8, "HNSW offsets", &s)) && s)
        goto fail;
    uint64_t prev;
    if (moff)
        memcpy(&prev, moff, 8);
    else if ((s = vdx_rd_u64(r, &prev, "HNSW offsets")))
        goto fail;
    if (prev != 0) FAIL(VDX_ERR_FORMAT, "%s index: offsets[0]=%" PRIu64
                        " at offset %" PRIu64 ", expected 0", fc, prev, at + 8);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t o;
        if (moff)
            memcpy(&o, moff + 8 * (i + 1), 8);
        else if ((s = vdx_rd_u64(r, &o, "HNSW offsets")))
            goto fail;
        if (o < prev || o - prev != (uint64_t)cum[lev[i]])
            FAIL(VDX_ERR_FORMAT,
                 "%s index: offsets[%" PRIu64 "]=%" PRIu64 " at offset %" PRIu64
                 " does not follow offsets[%" PRIu64 "]=%" PRIu64 " by %d links",
                 fc, i + 1, o, at + 16 + 8 * i, i, prev, cum[lev[i]]);
        prev = o;
    }

    /* the graph */
    at = r->pos;
    if ((s = vdx_rd_vector_count(r, 4, prev, "HNSW neighbors"))) goto fail;
    uint64_t nb_at = r->pos;
    /* neighbors are read into the index's rows; everything it allocates is
     * bounded by the bytes checked present just above */
    vdx_index *dummy = NULL; /* a placeholder storage until the real one */
    if ((s = vdx_index_flat_new(h->d, metric, &dummy))) goto fail;
    if ((s = vdx_hnsw_make(dummy, kind, M, &hx))) {
        vdx_index_free(dummy);
        goto fail;
    }
    if (moff && prev > 0) {
        /* the links are checked when a search reads them, not here: that
         * would read (and make resident) the whole array at open */
        if (!(mnb = vdx_rd_borrow(r, prev * 4, "HNSW neighbors", &s)))
            goto fail;
        vdx_hnsw *g = &hx->g;
        if (!(g->levels = vdx_malloc_array((size_t)VDX_MAX(n, 1), 1))) {
            s = VDX_ERR_OUT_OF_MEMORY;
            goto fail;
        }
        for (uint64_t i = 0; i < n; i++) g->levels[i] = (int8_t)(lev[i] - 1);
        g->n = (int64_t)n;
        g->map = vdx_mapping_ref(r->map);
        g->m_off = moff;
        g->m_nb = mnb;
        g->m_nnb = prev;
        memcpy(g->m_cum, cum, (np + 1) * sizeof(int32_t));
        goto graph_done;
    }
    if ((s = vdx_hnsw_reserve(&hx->g, (int64_t)n))) goto fail;
    buf = vdx_malloc_array((size_t)cum[np], sizeof(int32_t));
    if (!buf) {
        s = VDX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    uint64_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        if ((s = vdx_hnsw_push_node(&hx->g, lev[i] - 1))) goto fail;
        uint64_t cnt = (uint64_t)cum[lev[i]];
        if ((s = vdx_rd_bytes(r, buf, cnt * 4, "HNSW neighbors"))) goto fail;
        for (int l = 0; l < lev[i]; l++) {
            int32_t *row = vdx_hnsw_row(&hx->g, (int64_t)i, l);
            int m = 0;
            for (int32_t j = cum[l]; j < cum[l + 1]; j++) {
                int32_t v = buf[j];
                if (v < -1 || (int64_t)v >= (int64_t)n)
                    FAIL(VDX_ERR_FORMAT,
                         "%s index: link %d of node %" PRIu64 " at offset "
                         "%" PRIu64 " is outside [0, ntotal=%" PRIu64 ")",
                         fc, v, i, nb_at + 4 * (pos + (uint64_t)j), n);
                if (v < 0) break; /* FAISS: -1 ends the list */
                row[1 + m++] = v;
            }
            row[0] = m;
        }
        pos += cnt;
    }
graph_done:;
    int32_t ep, maxl, efc, efs, ub;
    at = r->pos;
    if ((s = vdx_rd_i32(r, &ep, "HNSW entry_point")) ||
        (s = vdx_rd_i32(r, &maxl, "HNSW max_level")) ||
        (s = vdx_rd_i32(r, &efc, "HNSW efConstruction")) ||
        (s = vdx_rd_i32(r, &efs, "HNSW efSearch")) ||
        (s = vdx_rd_i32(r, &ub, "HNSW upper_beam")))
        goto fail;
    if (n == 0 ? (ep != -1 || maxl != -1)
               : (ep < 0 || (uint64_t)ep >= n || maxl != lev[ep] - 1 ||
                  maxl != maxlev - 1))
        FAIL(VDX_ERR_FORMAT,
             "%s index: entry point %d / max level %d at offset %" PRIu64
             " disagree with the graph (ntotal=%" PRIu64 ", top level %d)",
             fc, ep, maxl, at, n, maxlev - 1);
    if (efc < 1 || efc > VDX_HNSW_EF_MAX || efs < 1 || efs > VDX_HNSW_EF_MAX)
        FAIL(VDX_ERR_FORMAT,
             "%s index: efConstruction=%d / efSearch=%d at offset %" PRIu64
             " outside 1..%d",
             fc, efc, efs, at + 8, VDX_HNSW_EF_MAX);
    hx->g.entry_point = ep;
    hx->g.max_level = maxl;
    hx->g.efConstruction = efc;
    hx->g.efSearch = efs;

    /* the storage */
    at = r->pos;
    if ((s = vdx_read_index_rec(r, &storage))) goto fail;
    int ok = kind == VDX_HNSW_FLAT ? vdx_is_flat(storage)
             : kind == VDX_HNSW_SQ ? vdx_is_index_sq(storage)
             : kind == VDX_HNSW_2L ? vdx_is_2layer(storage)
                                   : vdx_is_index_pq(storage);
    if (!ok && kind == VDX_HNSW_2L && vdx_is_ivfpq(storage))
        FAIL(VDX_ERR_UNSUPPORTED, "%s index: its storage at offset %" PRIu64
             " is an IndexIVFPQ (FAISS's flip_to_ivf); vecdex reads "
             "IndexHNSW2Level over an Index2Layer only", fc, at);
    if (!ok)
        FAIL(VDX_ERR_FORMAT, "%s index: its storage at offset %" PRIu64
             " is an %s", fc, at, vdx_index_type_name(storage));
    if (storage->d != h->d || storage->metric != metric ||
        (uint64_t)storage->ntotal != n)
        FAIL(VDX_ERR_FORMAT,
             "%s index (d=%" PRId64 ", ntotal=%" PRIu64 ") disagrees with "
             "its storage at offset %" PRIu64 " (d=%" PRId64 ", ntotal=%" PRId64
             ", metric %d)",
             fc, h->d, n, at, storage->d, storage->ntotal, (int)storage->metric);
    vdx_index_free(hx->storage);
    hx->storage = storage;
    storage = NULL;
    hx->base.ntotal = (int64_t)n;
    hx->base.is_trained = hx->storage->is_trained;
    hx->base.metric_arg = h->metric_arg;
    vdx_free(lev);
    vdx_free(buf);
    *out = &hx->base;
    return VDX_OK;
fail:
    vdx_free(lev);
    vdx_free(buf);
    vdx_index_free(storage);
    if (hx) vdx_index_free(&hx->base);
    return s;
}
