/*
 * flat_io.c — IndexFlat in FAISS's format:
 *     fourcc "IxF2" (L2), "IxFI" (inner product) or "IxFl" (metric taken
 *     from the header), the common header, then the stored vectors as a
 *     FAISS vector: uint64 count (= ntotal * d floats), count float32s.
 * FAISS picks the fourcc from the metric; on read the header's metric is
 * authoritative whatever the fourcc, as in FAISS.
 */
#include <inttypes.h>
#include <string.h>

#include "io_internal.h"

/* Vectors are read through a bounded buffer (about 1 MiB, at least one
 * vector) and appended with the flat add op, which keeps the cached norms
 * right without a second full-size copy of the data. */
#define FLAT_IO_CHUNK_FLOATS ((int64_t)1 << 18)

/* Stored vectors must be finite like everything vdx_index_add accepts. */
vdx_status vdx_io_read_flat(vdx_reader *r, vdx_io_header *h,
                            vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s != VDX_OK) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric)) != VDX_OK) return s;
    uint64_t nfloats;
    if (__builtin_mul_overflow((uint64_t)h->ntotal, (uint64_t)h->d, &nfloats))
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 ": ntotal=%" PRId64
                         " x d=%" PRId64 " overflows",
                         h->fourcc, h->offset, h->ntotal, h->d);
    /* count and size are checked against what remains before allocating */
    if ((s = vdx_rd_vector_count(r, sizeof(float), nfloats, "vectors")) !=
        VDX_OK)
        return s;

    vdx_index *ix = NULL;
    if ((s = vdx_index_flat_new(h->d, metric, &ix)) != VDX_OK) return s;
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    vdx_flat *f = (vdx_flat *)ix;
    /* memory-mapped: borrow the vectors (size checked above).  They are not
     * scanned for NaN / Inf, which would read the whole file at open; a
     * non-finite stored value only yields non-finite distances. */
    const uint8_t *mapped = vdx_rd_borrow(r, nfloats * sizeof(float),
                                          "vectors", &s);
    if (s != VDX_OK) {
        vdx_index_free(ix);
        return s;
    }
    if (mapped) {
        f->xb = (float *)(uintptr_t)mapped;
        f->map = vdx_mapping_ref(r->map);
        f->cap = 0;
        ix->ntotal = h->ntotal;
        *out = ix;
        return VDX_OK;
    }
    float *chunk = NULL;
    if (h->ntotal > 0) {
        if ((s = vdx_flat_reserve(f, h->ntotal)) != VDX_OK) goto fail;
        int64_t rows = VDX_MAX(1, FLAT_IO_CHUNK_FLOATS / h->d);
        rows = VDX_MIN(rows, h->ntotal);
        chunk = vdx_malloc_array((size_t)rows * (size_t)h->d, sizeof(float));
        if (!chunk) {
            s = VDX_ERR_OUT_OF_MEMORY;
            goto fail;
        }
        for (int64_t i0 = 0; i0 < h->ntotal; i0 += rows) {
            int64_t n = VDX_MIN(rows, h->ntotal - i0);
            uint64_t at = r->pos;
            s = vdx_rd_bytes(r, chunk, (uint64_t)n * h->d * sizeof(float),
                             "vectors");
            if (s != VDX_OK) goto fail;
            s = vdx_io_check_vectors(r, chunk, (uint64_t)n, h->d, (uint64_t)i0,
                                     at, "vector");
            if (s != VDX_OK) goto fail;
            if ((s = ix->ops->add(ix, n, chunk, NULL)) != VDX_OK) goto fail;
        }
        vdx_free(chunk);
        chunk = NULL;
    }
    if (ix->ntotal != h->ntotal) {
        s = vdx_raise(VDX_ERR_INTERNAL,
                      "flat reader: index holds %" PRId64 " vectors after "
                      "loading %" PRId64,
                      ix->ntotal, h->ntotal);
        goto fail;
    }
    *out = ix;
    return VDX_OK;
fail:
    vdx_free(chunk);
    vdx_index_free(ix);
    return s;
}

vdx_status vdx_io_write_flat(vdx_writer *w, const vdx_index *ix) {
    const vdx_flat *f = (const vdx_flat *)ix;
    const char *fourcc = ix->metric == VDX_METRIC_L2              ? "IxF2"
                         : ix->metric == VDX_METRIC_INNER_PRODUCT ? "IxFI"
                                                                  : "IxFl";
    vdx_status s = vdx_wr_header(w, fourcc, ix);
    if (s != VDX_OK) return s;
    size_t nfloats, nbytes;
    if (ix->ntotal < 0 ||
        !vdx_mul_ok((size_t)ix->ntotal, (size_t)ix->d, &nfloats) ||
        !vdx_mul_ok(nfloats, sizeof(float), &nbytes))
        return vdx_raise(VDX_ERR_INTERNAL, "flat index of %lld x %lld floats",
                         (long long)ix->ntotal, (long long)ix->d);
    if ((s = vdx_wr_u64(w, (uint64_t)nfloats)) != VDX_OK) return s;
    return vdx_wr_bytes(w, f->xb, nbytes);
}
