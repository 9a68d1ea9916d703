/*
 * transform_io.c — IndexPreTransform ("IxPT") and the vector transforms in
 * FAISS's format (verified against faiss.write_VectorTransform and
 * faiss.serialize_index of FAISS 1.15):
 *
 *   IxPT: the common header, int32 chain length, each transform, then the
 *         sub-index.
 *   a transform: its fourcc and own fields, then int32 d_in, int32 d_out,
 *         uint8 is_trained.  Own fields:
 *     "rrot" RandomRotationMatrix, "LTra" LinearTransform (FAISS writes an
 *            OPQMatrix as "LTra"; it reads back as a LinearTransform):
 *            uint8 have_bias, vector A (float32), vector b (float32);
 *     "Pcam" PCAMatrix: float32 eigen_power, float32 epsilon, uint8
 *            random_rotation, int32 balanced_bins, vector mean, vector
 *            eigenvalues, vector PCAMat, then the LinearTransform fields;
 *            "PCAm" is the older layout without epsilon;
 *     "VNrm" NormalizationTransform: float32 norm;
 *     "VCnt" CenteringTransform: vector mean.
 *   ITQ and dimension-remapping transforms are rejected as unsupported.
 *
 * Checks: every count against the bytes that remain and a size limit before
 * allocating; A exactly d_out x d_in (or empty when untrained), b d_out,
 * mean / eigenvalues d_in, PCAMat d_in x d_in (or empty), every value
 * finite, bools 0 / 1; chain dimensions consecutive, the first d_in equal to
 * the header's d and the last d_out to the sub-index's d, ntotal and metric
 * equal to the sub-index's.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "io_internal.h"
#include "index/pretransform.h"
#include "quant/transform.h"

/* Largest matrix accepted in a file (entries). */
#define VT_IO_MAX ((uint64_t)1 << 28)

int vdx_io_is_pretransform(const vdx_index *ix) {
    return vdx_is_pretransform(ix);
}

/* Reads a float32 vector of at most VT_IO_MAX entries (any count; the
 * caller checks it once the dimensions are known). */
static vdx_status read_fvec(vdx_reader *r, const char *what, float **out,
                            uint64_t *count) {
    uint64_t at = r->pos, c;
    vdx_status s;
    *out = NULL;
    *count = 0;
    if ((s = vdx_rd_u64(r, &c, what))) return s;
    if (c == 0) return VDX_OK;
    if (c > VT_IO_MAX)
        return vdx_raise(VDX_ERR_FORMAT,
                         "vector transform: %s at offset %" PRIu64
                         " holds %" PRIu64 " floats (limit %" PRIu64 ")",
                         what, at, c, VT_IO_MAX);
    if ((s = vdx_rd_need(r, c * sizeof(float), what))) return s;
    float *v = vdx_malloc_array((size_t)c, sizeof(float));
    if (!v) return VDX_ERR_OUT_OF_MEMORY;
    uint64_t fat = r->pos;
    if ((s = vdx_rd_bytes(r, v, c * sizeof(float), what))) {
        vdx_free(v);
        return s;
    }
    for (uint64_t i = 0; i < c; i++)
        if (!isfinite(v[i])) {
            vdx_free(v);
            return vdx_raise(VDX_ERR_FORMAT,
                             "vector transform: non-finite %s value at "
                             "offset %" PRIu64,
                             what, fat + i * 4);
        }
    *out = v;
    *count = c;
    return VDX_OK;
}

static vdx_status bad_vt(const char *fcc, uint64_t at, const char *what) {
    return vdx_raise(VDX_ERR_FORMAT,
                     "vector transform '%s' at offset %" PRIu64 ": invalid %s",
                     fcc, at, what);
}

/* Checks an array count once d_in / d_out are known: 0 or `want`. */
static vdx_status check_count(const char *fcc, uint64_t at, const char *what,
                              uint64_t got, uint64_t want) {
    if (got == 0 || got == want) return VDX_OK;
    return vdx_raise(VDX_ERR_FORMAT,
                     "vector transform '%s' at offset %" PRIu64 ": %s holds "
                     "%" PRIu64 " floats, expected 0 or %" PRIu64,
                     fcc, at, what, got, want);
}

/* Reads one transform at the current position. */
static vdx_status read_vt(vdx_reader *r, vdx_vt **out) {
    *out = NULL;
    uint64_t at = r->pos;
    char fcc[5] = {0};
    vdx_status s = vdx_rd_bytes(r, fcc, 4, "vector transform type (fourcc)");
    if (s) return s;
    vdx_vt_kind kind;
    int pca_eps = 0;
    if (!memcmp(fcc, "rrot", 4)) kind = VDX_VT_RR;
    else if (!memcmp(fcc, "LTra", 4)) kind = VDX_VT_LINEAR;
    else if (!memcmp(fcc, "Pcam", 4)) kind = VDX_VT_PCA, pca_eps = 1;
    else if (!memcmp(fcc, "PCAm", 4)) kind = VDX_VT_PCA;
    else if (!memcmp(fcc, "VNrm", 4)) kind = VDX_VT_NORM;
    else if (!memcmp(fcc, "VCnt", 4)) kind = VDX_VT_CENTER;
    else if (!memcmp(fcc, "HRot", 4)) kind = VDX_VT_HADAMARD;
    else {
        /* FAISS's other transforms: ITQ matrix / transform, remapping */
        if (!memcmp(fcc, "Viqm", 4) || !memcmp(fcc, "Viqt", 4) ||
            !memcmp(fcc, "RmDT", 4))
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "vector transform '%s' at offset %" PRIu64
                             " is not supported by vecdex",
                             fcc, at);
        int printable = 1;
        for (int i = 0; i < 4; i++)
            if (fcc[i] < 32 || fcc[i] > 126) printable = 0;
        return vdx_raise(VDX_ERR_FORMAT,
                         "not a vector transform: type code '%s' at offset "
                         "%" PRIu64,
                         printable ? fcc : "?", at);
    }
    vdx_vt *vt = NULL;
    if ((s = vdx_vt_alloc(kind, 1, 1, &vt))) return s;
    float *A = NULL, *b = NULL, *mean = NULL, *ev = NULL, *pm = NULL;
    uint64_t nA = 0, nb = 0, nmean = 0, nev = 0, npm = 0;
    uint64_t pos;
    uint8_t u8;
    if (kind == VDX_VT_PCA) {
        pos = r->pos;
        if ((s = vdx_rd_f32(r, &vt->eigen_power, "PCA eigen_power"))) goto fail;
        if (!isfinite(vt->eigen_power)) {
            s = bad_vt(fcc, pos, "PCA eigen_power");
            goto fail;
        }
        pos = r->pos;
        if (pca_eps && (s = vdx_rd_f32(r, &vt->epsilon, "PCA epsilon"))) goto fail;
        if (!isfinite(vt->epsilon) || vt->epsilon < 0) {
            s = bad_vt(fcc, pos, "PCA epsilon");
            goto fail;
        }
        pos = r->pos;
        if ((s = vdx_rd_u8(r, &u8, "PCA random_rotation"))) goto fail;
        if (u8 > 1) {
            s = bad_vt(fcc, pos, "PCA random_rotation");
            goto fail;
        }
        vt->random_rotation = u8;
        int32_t bb;
        pos = r->pos;
        if ((s = vdx_rd_i32(r, &bb, "PCA balanced_bins"))) goto fail;
        if (bb != 0) {
            s = vdx_raise(VDX_ERR_UNSUPPORTED,
                          "vector transform '%s' at offset %" PRIu64
                          ": PCA balanced_bins=%" PRId32 " is not supported",
                          fcc, pos, bb);
            goto fail;
        }
        if ((s = read_fvec(r, "PCA mean", &mean, &nmean)) ||
            (s = read_fvec(r, "PCA eigenvalues", &ev, &nev)) ||
            (s = read_fvec(r, "PCA matrix", &pm, &npm)))
            goto fail;
    }
    if (kind == VDX_VT_LINEAR || kind == VDX_VT_RR || kind == VDX_VT_PCA) {
        pos = r->pos;
        if ((s = vdx_rd_u8(r, &u8, "have_bias"))) goto fail;
        if (u8 > 1) {
            s = bad_vt(fcc, pos, "have_bias");
            goto fail;
        }
        vt->have_bias = u8;
        if ((s = read_fvec(r, "matrix A", &A, &nA)) ||
            (s = read_fvec(r, "bias b", &b, &nb)))
            goto fail;
    } else if (kind == VDX_VT_NORM) {
        pos = r->pos;
        if ((s = vdx_rd_f32(r, &vt->norm, "normalization norm"))) goto fail;
        if (vt->norm != 2.0f) {
            s = vdx_raise(VDX_ERR_UNSUPPORTED,
                          "vector transform '%s' at offset %" PRIu64
                          ": norm=%g is not supported (only 2)",
                          fcc, pos, (double)vt->norm);
            goto fail;
        }
    } else if (kind == VDX_VT_CENTER) {
        if ((s = read_fvec(r, "centering mean", &mean, &nmean))) goto fail;
    } else if (kind == VDX_VT_HADAMARD) {
        if ((s = vdx_rd_bytes(r, &vt->seed, 4, "HadamardRotation seed")))
            goto fail;
    }
    int32_t din, dout;
    pos = r->pos;
    if ((s = vdx_rd_i32(r, &din, "transform d_in")) ||
        (s = vdx_rd_i32(r, &dout, "transform d_out")) ||
        (s = vdx_rd_u8(r, &u8, "transform is_trained")))
        goto fail;
    if (din < 1 || din > VDX_MAX_DIM || dout < 1 || dout > VDX_MAX_DIM ||
        u8 > 1) {
        s = bad_vt(fcc, pos, "d_in / d_out / is_trained");
        goto fail;
    }
    if ((kind == VDX_VT_NORM || kind == VDX_VT_CENTER) && din != dout) {
        s = bad_vt(fcc, pos, "d_in != d_out");
        goto fail;
    }
    if (kind == VDX_VT_PCA && dout > din) {
        s = bad_vt(fcc, pos, "PCA d_out > d_in");
        goto fail;
    }
    /* the signs are drawn for d_out, the power of 2 above d_in */
    if (kind == VDX_VT_HADAMARD && dout != vdx_hadamard_dout(din)) {
        s = bad_vt(fcc, pos, "HadamardRotation d_out (not the power of 2 "
                             "above d_in)");
        goto fail;
    }
    const uint64_t di = (uint64_t)din, dd = (uint64_t)dout;
    if ((s = check_count(fcc, at, "matrix A", nA, di * dd)) ||
        (s = check_count(fcc, at, "bias b", nb, dd)) ||
        (s = check_count(fcc, at, "mean", nmean, di)) ||
        (s = check_count(fcc, at, "eigenvalues", nev, di)) ||
        (s = check_count(fcc, at, "PCA matrix", npm, di * di)))
        goto fail;
    vt->d_in = din;
    vt->d_out = dout;
    vt->is_trained = u8;
    if (u8 && (kind == VDX_VT_LINEAR || kind == VDX_VT_RR ||
               kind == VDX_VT_PCA) &&
        (!A || (vt->have_bias && !b))) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "vector transform '%s' at offset %" PRIu64
                      " is trained but has no matrix%s",
                      fcc, at, vt->have_bias ? " or bias" : "");
        goto fail;
    }
    if (u8 && kind == VDX_VT_CENTER && !mean) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "vector transform '%s' at offset %" PRIu64
                      " is trained but has no mean",
                      fcc, at);
        goto fail;
    }
    if (kind == VDX_VT_NORM) vt->is_trained = 1;
    if (kind == VDX_VT_HADAMARD && !vt->is_trained) { /* FAISS's train() */
        if (!vt->seed) vt->seed = 12345;
        vt->is_trained = 1;
    }
    vt->A = A;
    vt->b = vt->have_bias ? b : NULL;
    if (!vt->have_bias) vdx_free(b);
    vt->mean = mean;
    vt->eigenvalues = ev;
    vt->PCAMat = pm;
    if (vt->A) vt->is_orthonormal = vdx_vt_check_orthonormal(vt);
    *out = vt;
    return VDX_OK;
fail:
    vdx_free(A);
    vdx_free(b);
    vdx_free(mean);
    vdx_free(ev);
    vdx_free(pm);
    vdx_vt_free(vt);
    return s;
}

static vdx_status wr_fvec(vdx_writer *w, const float *v, uint64_t n) {
    vdx_status s = vdx_wr_u64(w, v ? n : 0);
    if (s || !v || !n) return s;
    return vdx_wr_bytes(w, v, (size_t)n * sizeof(float));
}

static vdx_status write_vt(vdx_writer *w, const vdx_vt *vt) {
    const uint64_t di = (uint64_t)vt->d_in, dd = (uint64_t)vt->d_out;
    vdx_status s;
    const char *fcc = "LTra"; /* LinearTransform and OPQMatrix, as FAISS */
    switch (vt->kind) {
    case VDX_VT_RR: fcc = "rrot"; break;
    case VDX_VT_PCA: fcc = "Pcam"; break;
    case VDX_VT_NORM: fcc = "VNrm"; break;
    case VDX_VT_CENTER: fcc = "VCnt"; break;
    case VDX_VT_HADAMARD: fcc = "HRot"; break;
    default: break;
    }
    if ((s = vdx_wr_bytes(w, fcc, 4))) return s;
    if (vt->kind == VDX_VT_PCA) {
        if ((s = vdx_wr_f32(w, vt->eigen_power)) ||
            (s = vdx_wr_f32(w, vt->epsilon)) ||
            (s = vdx_wr_u8(w, (uint8_t)vt->random_rotation)) ||
            (s = vdx_wr_i32(w, 0)) || (s = wr_fvec(w, vt->mean, di)) ||
            (s = wr_fvec(w, vt->eigenvalues, di)) ||
            (s = wr_fvec(w, vt->PCAMat, di * di)))
            return s;
    }
    if (vt->kind == VDX_VT_NORM) {
        if ((s = vdx_wr_f32(w, vt->norm))) return s;
    } else if (vt->kind == VDX_VT_CENTER) {
        if ((s = wr_fvec(w, vt->mean, di))) return s;
    } else if (vt->kind == VDX_VT_HADAMARD) {
        if ((s = vdx_wr_bytes(w, &vt->seed, 4))) return s;
    } else {
        if ((s = vdx_wr_u8(w, (uint8_t)vt->have_bias)) ||
            (s = wr_fvec(w, vt->A, di * dd)) ||
            (s = wr_fvec(w, vt->have_bias ? vt->b : NULL, dd)))
            return s;
    }
    if ((s = vdx_wr_i32(w, (int32_t)vt->d_in)) ||
        (s = vdx_wr_i32(w, (int32_t)vt->d_out)) ||
        (s = vdx_wr_u8(w, (uint8_t)vt->is_trained)))
        return s;
    return VDX_OK;
}

vdx_status vdx_io_read_pretransform(vdx_reader *r, vdx_io_header *h,
                                    vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    int32_t nt;
    uint64_t at = r->pos;
    if ((s = vdx_rd_i32(r, &nt, "IndexPreTransform chain length"))) return s;
    if (nt < 0 || nt > VDX_PT_MAX_CHAIN)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: chain length %" PRId32 " at offset %" PRIu64
                         " is out of range 0..%d",
                         h->fourcc, nt, at, VDX_PT_MAX_CHAIN);
    vdx_vt *chain[VDX_PT_MAX_CHAIN];
    int32_t got = 0;
    vdx_index *sub = NULL;
    int64_t dcur = h->d;
    for (; got < nt; got++) {
        uint64_t vat = r->pos;
        if ((s = read_vt(r, &chain[got]))) goto fail;
        if (chain[got]->d_in != dcur) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: transform %" PRId32 " at offset %" PRIu64
                          " takes d_in=%" PRId64 " but receives d=%" PRId64,
                          h->fourcc, got, vat, chain[got]->d_in, dcur);
            got++;
            goto fail;
        }
        dcur = chain[got]->d_out;
    }
    uint64_t sat = r->pos;
    if ((s = vdx_read_index_rec(r, &sub))) goto fail;
    if (sub->d != dcur) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: the sub-index at offset %" PRIu64
                      " has d=%" PRId64 " but the chain outputs d=%" PRId64,
                      h->fourcc, sat, sub->d, dcur);
        goto fail;
    }
    if (sub->ntotal != h->ntotal) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 ": ntotal=%" PRId64
                      " but its sub-index holds %" PRId64,
                      h->fourcc, h->offset, h->ntotal, sub->ntotal);
        goto fail;
    }
    vdx_metric m;
    if ((s = vdx_io_metric(h, &m))) goto fail;
    if (m != sub->metric) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64
                      ": its metric differs from its sub-index's",
                      h->fourcc, h->offset);
        goto fail;
    }
    if ((s = vdx_pretransform_make(chain, nt, sub, out))) goto fail;
    if (!h->is_trained) (*out)->is_trained = 0;
    return VDX_OK;
fail:
    for (int32_t i = 0; i < got; i++) vdx_vt_free(chain[i]);
    vdx_index_free(sub);
    return s;
}

vdx_status vdx_io_write_pretransform(vdx_writer *w, const vdx_index *ix) {
    vdx_status s;
    int64_t nt = vdx_index_pretransform_chain_size(ix);
    if ((s = vdx_wr_header(w, "IxPT", ix)) || (s = vdx_wr_i32(w, (int32_t)nt)))
        return s;
    for (int64_t i = 0; i < nt; i++)
        if ((s = write_vt(w, vdx_index_pretransform_chain(ix, i)))) return s;
    return vdx_write_index_rec(w, vdx_index_pretransform_index(ix));
}

/* ---- standalone transforms (FAISS: write_VectorTransform) --------------- */

vdx_status vdx_serialize_vt(const vdx_vt *vt, uint8_t **buf, size_t *size) {
    vdx_clear_error();
    if (!buf || !size)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "buf or size is NULL");
    *buf = NULL;
    *size = 0;
    if (!vt) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "transform is NULL");
    vdx_writer w;
    memset(&w, 0, sizeof w);
    vdx_status s = write_vt(&w, vt);
    if (s) {
        vdx_free(w.buf);
        return s;
    }
    *buf = w.buf;
    *size = w.len;
    return VDX_OK;
}

vdx_status vdx_deserialize_vt(const uint8_t *buf, size_t size, vdx_vt **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!buf && size > 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "buf is NULL, size %zu",
                         size);
    static const uint8_t empty[1] = {0};
    vdx_reader r;
    memset(&r, 0, sizeof r);
    r.mem = buf ? buf : empty;
    r.kind = "buffer";
    r.size = size;
    return read_vt(&r, out);
}
