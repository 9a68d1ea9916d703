/*
 * lsh_io.c — IndexLSH in FAISS's format, fourcc "IxHe" (verified against
 * faiss.serialize_index of FAISS 1.15):
 *   the common header, int32 nbits, uint8 rotate_data, uint8
 *   train_thresholds, the thresholds as a vector of float32 (empty before
 *   training), int32 code_size, then the RandomRotationMatrix as a
 *   VectorTransform: fourcc "rrot", uint8 have_bias, vector A (d_out x d_in
 *   float32, empty when never initialised, i.e. without rotate_data), vector
 *   b (float32), int32 d_in, int32 d_out, uint8 is_trained; then the codes
 *   as a vector of ntotal * code_size bytes.
 * Checks: nbits 1..VDX_MAX_DIM (<= d without rotation), bools 0 / 1,
 * thresholds empty or nbits, code_size = ceil(nbits / 8), the transform's
 * d_in = d and d_out = nbits, A empty or nbits x d (required with
 * rotate_data), b empty or nbits, every value finite, every count against
 * the bytes that remain before allocating.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "io_internal.h"
#include "index/index_lsh.h"

int vdx_io_is_lsh(const vdx_index *ix) { return vdx_is_lsh(ix); }

/* Reads a float vector of 0 or `expected` entries into a new array
 * (*out NULL when empty). */
static vdx_status read_fvec(vdx_reader *r, const vdx_io_header *h,
                            uint64_t expected, const char *what,
                            float **out) {
    uint64_t at = r->pos, count;
    vdx_status s;
    *out = NULL;
    if ((s = vdx_rd_u64(r, &count, what))) return s;
    if (count == 0) return VDX_OK;
    if (count != expected)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: %s at offset %" PRIu64 " holds %" PRIu64
                         " floats, expected 0 or %" PRIu64,
                         h->fourcc, what, at, count, expected);
    if ((s = vdx_rd_need(r, count * sizeof(float), what))) return s;
    float *v = vdx_malloc_array((size_t)count, sizeof(float));
    if (!v) return VDX_ERR_OUT_OF_MEMORY;
    uint64_t fat = r->pos;
    if ((s = vdx_rd_bytes(r, v, count * sizeof(float), what))) {
        vdx_free(v);
        return s;
    }
    for (uint64_t i = 0; i < count; i++)
        if (!isfinite(v[i])) {
            vdx_free(v);
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: non-finite %s value at offset %" PRIu64,
                             h->fourcc, what, fat + i * 4);
        }
    *out = v;
    return VDX_OK;
}

static vdx_status bad(const vdx_io_header *h, uint64_t at, const char *what) {
    return vdx_raise(VDX_ERR_FORMAT, "%s index: invalid %s at offset %" PRIu64,
                     h->fourcc, what, at);
}

vdx_status vdx_io_read_lsh(vdx_reader *r, vdx_io_header *h, vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    int32_t nbits, code_size, d_in, d_out;
    uint8_t rot, tt, have_bias, rtrained;
    char fcc[4];
    float *thr = NULL, *A = NULL, *b = NULL;
    vdx_lsh *l = NULL;
    uint64_t at = r->pos;
    if ((s = vdx_rd_i32(r, &nbits, "LSH nbits"))) return s;
    if (nbits < 1 || nbits > VDX_MAX_DIM) return bad(h, at, "LSH nbits");
    at = r->pos;
    if ((s = vdx_rd_u8(r, &rot, "LSH rotate_data"))) return s;
    if (rot > 1) return bad(h, at, "LSH rotate_data");
    at = r->pos;
    if ((s = vdx_rd_u8(r, &tt, "LSH train_thresholds"))) return s;
    if (tt > 1) return bad(h, at, "LSH train_thresholds");
    if (!rot && nbits > h->d) return bad(h, at - 5, "LSH nbits (> d without rotation)");
    if ((s = read_fvec(r, h, (uint64_t)nbits, "LSH thresholds", &thr))) goto fail;
    at = r->pos;
    if ((s = vdx_rd_i32(r, &code_size, "LSH code_size"))) goto fail;
    if (code_size != (nbits + 7) / 8) {
        s = bad(h, at, "LSH code_size");
        goto fail;
    }
    at = r->pos;
    if ((s = vdx_rd_bytes(r, fcc, 4, "LSH rotation fourcc"))) goto fail;
    if (memcmp(fcc, "rrot", 4) != 0) {
        s = vdx_raise(VDX_ERR_UNSUPPORTED,
                      "%s index: vector transform at offset %" PRIu64
                      " is not a RandomRotationMatrix (\"rrot\")",
                      h->fourcc, at);
        goto fail;
    }
    at = r->pos;
    if ((s = vdx_rd_u8(r, &have_bias, "LSH rotation have_bias"))) goto fail;
    if (have_bias > 1) {
        s = bad(h, at, "LSH rotation have_bias");
        goto fail;
    }
    if ((s = read_fvec(r, h, (uint64_t)nbits * (uint64_t)h->d,
                       "LSH rotation matrix", &A)) ||
        (s = read_fvec(r, h, (uint64_t)nbits, "LSH rotation bias", &b)))
        goto fail;
    at = r->pos;
    if ((s = vdx_rd_i32(r, &d_in, "LSH rotation d_in")) ||
        (s = vdx_rd_i32(r, &d_out, "LSH rotation d_out")) ||
        (s = vdx_rd_u8(r, &rtrained, "LSH rotation is_trained")))
        goto fail;
    if (d_in != h->d || d_out != nbits || rtrained > 1) {
        s = bad(h, at, "LSH rotation d_in / d_out / is_trained");
        goto fail;
    }
    if (rot && h->is_trained && !A) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64
                      " rotates its data but has no rotation matrix",
                      h->fourcc, h->offset);
        goto fail;
    }
    if (tt && h->is_trained && !thr) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64
                      " is trained but has no thresholds",
                      h->fourcc, h->offset);
        goto fail;
    }
    if (!h->is_trained && h->ntotal != 0) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 " is not trained but "
                      "holds ntotal=%" PRId64 " vectors",
                      h->fourcc, h->offset, h->ntotal);
        goto fail;
    }
    uint64_t ncodes;
    if (__builtin_mul_overflow((uint64_t)h->ntotal, (uint64_t)code_size,
                               &ncodes)) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index: ntotal=%" PRId64
                      " codes overflow", h->fourcc, h->ntotal);
        goto fail;
    }
    if ((s = vdx_rd_vector_count(r, 1, ncodes, "LSH codes"))) goto fail;
    if ((s = vdx_lsh_alloc(h->d, nbits, rot, tt, 0, &l))) goto fail;
    if ((s = vdx_lsh_reserve(l, h->ntotal))) goto fail;
    if (ncodes && (s = vdx_rd_bytes(r, l->codes, ncodes, "LSH codes"))) goto fail;
    l->A = A;
    l->b = have_bias ? b : NULL;
    if (!have_bias) vdx_free(b);
    l->rot_trained = rtrained;
    l->thresholds = thr;
    l->base.ntotal = h->ntotal;
    l->base.is_trained = h->is_trained;
    l->base.metric_arg = h->metric_arg;
    *out = &l->base;
    return VDX_OK;
fail:
    if (l) vdx_index_free(&l->base);
    vdx_free(thr);
    vdx_free(A);
    vdx_free(b);
    return s;
}

vdx_status vdx_io_write_lsh(vdx_writer *w, const vdx_index *ix) {
    const vdx_lsh *l = (const vdx_lsh *)ix;
    const uint64_t nb = (uint64_t)l->nbits, d = (uint64_t)ix->d;
    vdx_status s;
    if ((s = vdx_wr_header(w, "IxHe", ix)) || (s = vdx_wr_i32(w, l->nbits)) ||
        (s = vdx_wr_u8(w, (uint8_t)l->rotate_data)) ||
        (s = vdx_wr_u8(w, (uint8_t)l->train_thresholds)) ||
        (s = vdx_wr_u64(w, l->thresholds ? nb : 0)))
        return s;
    if (l->thresholds && (s = vdx_wr_bytes(w, l->thresholds, nb * sizeof(float))))
        return s;
    if ((s = vdx_wr_i32(w, (int32_t)l->code_size)) ||
        (s = vdx_wr_bytes(w, "rrot", 4)) ||
        (s = vdx_wr_u8(w, l->b ? 1 : 0)) ||
        (s = vdx_wr_u64(w, l->A ? nb * d : 0)))
        return s;
    if (l->A && (s = vdx_wr_bytes(w, l->A, nb * d * sizeof(float)))) return s;
    if ((s = vdx_wr_u64(w, l->b ? nb : 0))) return s;
    if (l->b && (s = vdx_wr_bytes(w, l->b, nb * sizeof(float)))) return s;
    if ((s = vdx_wr_i32(w, (int32_t)d)) || (s = vdx_wr_i32(w, l->nbits)) ||
        (s = vdx_wr_u8(w, (uint8_t)(l->A ? 1 : l->rot_trained))))
        return s;
    uint64_t n = (uint64_t)ix->ntotal * l->code_size;
    if ((s = vdx_wr_u64(w, n))) return s;
    if (n && (s = vdx_wr_bytes(w, l->codes, (size_t)n))) return s;
    return VDX_OK;
}
