/*
 * idmap_io.c — IndexIDMap / IndexIDMap2 in FAISS's format:
 *     fourcc "IxMp" or "IxM2", the common header (d, ntotal, metric of the
 *     wrapper), the wrapped index (any kind, read recursively), then the id
 *     map as a FAISS vector: uint64 count (= ntotal), count int64 ids.
 * The wrapper's d, ntotal and metric must agree with the wrapped index and
 * the id map's length with ntotal.  IDMap2's reverse map is not stored; it
 * is rebuilt after loading, as FAISS does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "io_internal.h"

vdx_status vdx_io_read_idmap(vdx_reader *r, vdx_io_header *h,
                             vdx_index **out) {
    int map2 = memcmp(h->fourcc, "IxM2", 4) == 0;
    vdx_status s = vdx_rd_header(r, h);
    if (s != VDX_OK) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric)) != VDX_OK) return s;

    uint64_t sub_at = r->pos;
    vdx_index *sub = NULL;
    if ((s = vdx_read_index_rec(r, &sub)) != VDX_OK) return s;
    if (sub->d != h->d || sub->ntotal != h->ntotal || sub->metric != metric) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 " (d=%" PRId64
                      ", ntotal=%" PRId64 ", metric %s) disagrees with the "
                      "index it wraps at offset %" PRIu64 " (d=%" PRId64
                      ", ntotal=%" PRId64 ", metric %s)",
                      h->fourcc, h->offset, h->d, h->ntotal,
                      vdx_io_metric_name((int32_t)metric), sub_at, sub->d,
                      sub->ntotal, vdx_io_metric_name((int32_t)sub->metric));
        vdx_index_free(sub);
        return s;
    }
    /* the IDMap translates the sub-index's labels as positions: an IVF's
     * ids must be 0..ntotal-1, each once (else remove_ids and later
     * searches would go wrong) */
    char what[96];
    snprintf(what, sizeof what, "%s index at offset %" PRIu64, h->fourcc,
             h->offset);
    if ((s = vdx_idmap_check_positions(sub, VDX_ERR_FORMAT, what)) != VDX_OK) {
        vdx_index_free(sub);
        return s;
    }
    /* checked before the id map is allocated */
    s = vdx_rd_vector_count(r, sizeof(vdx_idx_t), (uint64_t)h->ntotal,
                            "id map");
    if (s != VDX_OK) {
        vdx_index_free(sub);
        return s;
    }

    /* The public constructors insist on an empty sub-index (the id map
     * must cover every stored vector); here the ids follow right after, so
     * the loaded vectors are hidden for the duration of the call. */
    vdx_index *ix = NULL;
    int64_t sub_ntotal = sub->ntotal;
    sub->ntotal = 0;
    s = map2 ? vdx_index_idmap2_new(sub, &ix) : vdx_index_idmap_new(sub, &ix);
    sub->ntotal = sub_ntotal;
    if (s != VDX_OK) {
        vdx_index_free(sub); /* still ours: ownership passes on success */
        return s;
    }
    vdx_idmap *m = (vdx_idmap *)ix;
    if (h->ntotal > 0) {
        if ((s = vdx_idmap_reserve(m, h->ntotal)) != VDX_OK) goto fail;
        uint64_t at = r->pos;
        s = vdx_rd_bytes(r, m->id_map, (uint64_t)h->ntotal * sizeof(vdx_idx_t),
                         "id map");
        if (s != VDX_OK) goto fail;
        /* IDMap2's reverse map reserves INT64_MIN as its empty slot */
        for (int64_t i = 0; map2 && i < h->ntotal; i++)
            if (m->id_map[i] == INT64_MIN) {
                s = vdx_raise(VDX_ERR_UNSUPPORTED,
                              "IxM2 id map: id %" PRId64 " (entry %" PRId64
                              " at offset %" PRIu64 ") is reserved by vecdex",
                              m->id_map[i], i, at + (uint64_t)i * 8);
                goto fail;
            }
    }
    ix->ntotal = h->ntotal;
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    if (map2 && (s = vdx_idmap2_rebuild(m)) != VDX_OK) goto fail;
    *out = ix;
    return VDX_OK;
fail:
    vdx_index_free(ix);
    return s;
}

vdx_status vdx_io_write_idmap(vdx_writer *w, const vdx_index *ix) {
    const vdx_idmap *m = (const vdx_idmap *)ix;
    vdx_status s = vdx_wr_header(w, m->is_map2 ? "IxM2" : "IxMp", ix);
    if (s != VDX_OK) return s;
    if ((s = vdx_write_index_rec(w, m->sub)) != VDX_OK) return s;
    if ((s = vdx_wr_u64(w, (uint64_t)ix->ntotal)) != VDX_OK) return s;
    return vdx_wr_bytes(w, m->id_map, (size_t)ix->ntotal * sizeof(vdx_idx_t));
}
