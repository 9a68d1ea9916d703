/*
 * refine_io.c — IndexRefine / IndexRefineFlat in FAISS's format:
 *     fourcc "IxRF", the common header, the base index, the refine index
 *     (both read recursively), then k_factor as a float32.
 * FAISS reads an IxRF whose refine index is flat as IndexRefineFlat, and so
 * does vecdex.
 */
#include <inttypes.h>
#include <math.h>

#include "io_internal.h"

vdx_status vdx_io_read_refine(vdx_reader *r, vdx_io_header *h,
                              vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s != VDX_OK) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric)) != VDX_OK) return s;
    vdx_index *base = NULL, *ref = NULL;
    if ((s = vdx_read_index_rec(r, &base)) != VDX_OK) return s;
    if ((s = vdx_read_index_rec(r, &ref)) != VDX_OK) goto fail;
    if (base->d != h->d || ref->d != h->d || ref->ntotal != h->ntotal ||
        base->ntotal != h->ntotal || base->metric != metric ||
        ref->metric != metric) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "IxRF index at offset %" PRIu64 " (d=%" PRId64
                      ", ntotal=%" PRId64 ") disagrees with its base (d=%" PRId64
                      ", ntotal=%" PRId64 ") or refine index (d=%" PRId64
                      ", ntotal=%" PRId64 ")",
                      h->offset, h->d, h->ntotal, base->d, base->ntotal,
                      ref->d, ref->ntotal);
        goto fail;
    }
    uint64_t at = r->pos;
    float kf;
    if ((s = vdx_rd_f32(r, &kf, "k_factor")) != VDX_OK) goto fail;
    if (!isfinite(kf) || kf < 1.0f) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "IxRF k_factor %g at offset %" PRIu64
                      " is not a finite number >= 1",
                      (double)kf, at);
        goto fail;
    }
    vdx_index *ix = NULL;
    if ((s = vdx_refine_make(base, ref, vdx_is_flat(ref), &ix)) != VDX_OK)
        goto fail;
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    if ((s = vdx_index_refine_set_k_factor(ix, kf)) != VDX_OK) {
        vdx_index_free(ix);
        return s;
    }
    *out = ix;
    return VDX_OK;
fail:
    vdx_index_free(base);
    vdx_index_free(ref);
    return s;
}

vdx_status vdx_io_write_refine(vdx_writer *w, const vdx_index *ix) {
    vdx_status s = vdx_wr_header(w, "IxRF", ix);
    if (s != VDX_OK) return s;
    if ((s = vdx_write_index_rec(w, vdx_index_refine_base(ix))) != VDX_OK)
        return s;
    if ((s = vdx_write_index_rec(w, vdx_index_refine_refine(ix))) != VDX_OK)
        return s;
    return vdx_wr_f32(w, vdx_index_refine_k_factor(ix));
}
