/*
 * vecio.c — vector files for the `vecdex` command.
 *
 * Formats (chosen by extension):
 *   .fvecs / .ivecs / .bvecs   TEXMEX: each vector is its dimension (int32,
 *                              little-endian) then d float32 / int32 / uint8
 *   .npy                       numpy, versions 1.0 and 2.0, C order, 1-D or
 *                              2-D, dtype <f4 <i4 <i8 |u1
 *   .f32                       raw float32, row-major; needs --dim
 *
 * Readers trust nothing: the file's length is known first, and every count
 * from a header is checked against it before any allocation, so a corrupt
 * header cannot ask for a giant buffer.  The host is assumed little-endian
 * (as the formats are).
 */
#include "cli.h"
#include "io/fileout.h" /* the library's (private) output-file policy */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int errf(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *ext_of(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash)) return "";
    return dot;
}

static size_t type_size(mat_type t) {
    switch (t) {
    case MT_F32: case MT_I32: return 4;
    case MT_I64: return 8;
    case MT_U8: return 1;
    }
    return 1;
}

void mat_free(matrix *m) {
    if (!m) return;
    free(m->data);
    m->data = NULL;
    m->n = m->d = 0;
}

/* Opens path and finds its length. */
static FILE *open_sized(const char *path, int64_t *size, char *err,
                        size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (*size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        errf(err, errlen, "%s: cannot determine the size (not a file?)", path);
        fclose(f);
        return NULL;
    }
    return f;
}

static int read_exact(FILE *f, void *buf, size_t n, const char *path,
                      char *err, size_t errlen) {
    if (n && fread(buf, 1, n, f) != n)
        return errf(err, errlen, "%s: read failed or file truncated", path);
    return 0;
}

/* Allocates n * d * item bytes once the caller has checked them against the
 * file length (so the product cannot overflow). */
static int alloc_mat(matrix *m, int64_t n, int64_t d, mat_type t,
                     const char *path, char *err, size_t errlen) {
    size_t bytes = (size_t)n * (size_t)d * type_size(t);
    m->n = n;
    m->d = d;
    m->type = t;
    m->data = malloc(bytes ? bytes : 1);
    if (!m->data)
        return errf(err, errlen, "%s: out of memory (%zu bytes)", path, bytes);
    return 0;
}

#define MAX_DIM (INT64_C(1) << 24)

static int read_texmex(const char *path, mat_type t, matrix *m, char *err,
                       size_t errlen) {
    int64_t size;
    FILE *f = open_sized(path, &size, err, errlen);
    if (!f) return -1;
    int rc = -1;
    int32_t d32;
    if (size < 4) {
        errf(err, errlen, "%s: truncated: %lld bytes, no header", path,
             (long long)size);
        goto out;
    }
    if (read_exact(f, &d32, 4, path, err, errlen)) goto out;
    if (d32 <= 0 || d32 > MAX_DIM) {
        errf(err, errlen, "%s: invalid dimension %d in the first record",
             path, (int)d32);
        goto out;
    }
    int64_t d = d32, rec = 4 + d * (int64_t)type_size(t);
    if (size % rec) {
        errf(err, errlen,
             "%s: truncated or inconsistent: %lld bytes is not a multiple of "
             "the record size %lld (d=%lld)",
             path, (long long)size, (long long)rec, (long long)d);
        goto out;
    }
    int64_t n = size / rec;
    if (alloc_mat(m, n, d, t, path, err, errlen)) goto out;
    size_t row = (size_t)d * type_size(t);
    char *p = m->data;
    for (int64_t i = 0; i < n; i++) {
        int32_t di = d32;
        if (i > 0 && read_exact(f, &di, 4, path, err, errlen)) goto fail;
        if (di != d32) {
            errf(err, errlen, "%s: record %lld has dimension %d, expected %d",
                 path, (long long)i, (int)di, (int)d32);
            goto fail;
        }
        if (read_exact(f, p + (size_t)i * row, row, path, err, errlen))
            goto fail;
    }
    rc = 0;
    goto out;
fail:
    mat_free(m);
out:
    fclose(f);
    return rc;
}

/* Finds `'key':` in a numpy header dict and returns a pointer after the
 * colon (and spaces), or NULL. */
static const char *npy_field(const char *h, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static int read_npy(const char *path, matrix *m, char *err, size_t errlen) {
    int64_t size;
    FILE *f = open_sized(path, &size, err, errlen);
    if (!f) return -1;
    int rc = -1;
    char *h = NULL;
    unsigned char pre[12];
    if (size < 10 || read_exact(f, pre, 10, path, err, errlen) ||
        memcmp(pre, "\x93NUMPY", 6)) {
        errf(err, errlen, "%s: not a .npy file (bad magic)", path);
        goto out;
    }
    int major = pre[6], minor = pre[7];
    int64_t hlen, hstart;
    if (major == 1 && minor == 0) {
        hlen = pre[8] | (pre[9] << 8);
        hstart = 10;
    } else if (major == 2 && minor == 0) {
        if (size < 12 || read_exact(f, pre + 10, 2, path, err, errlen)) {
            errf(err, errlen, "%s: truncated .npy header", path);
            goto out;
        }
        hlen = (int64_t)pre[8] | ((int64_t)pre[9] << 8) |
               ((int64_t)pre[10] << 16) | ((int64_t)pre[11] << 24);
        hstart = 12;
    } else {
        errf(err, errlen,
             "%s: unsupported .npy version %d.%d (1.0 and 2.0 are)", path,
             major, minor);
        goto out;
    }
    if (hlen > 65536 || hstart + hlen > size) {
        errf(err, errlen, "%s: truncated or invalid .npy header (length %lld)",
             path, (long long)hlen);
        goto out;
    }
    h = malloc((size_t)hlen + 1);
    if (!h || read_exact(f, h, (size_t)hlen, path, err, errlen)) {
        if (!h) errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    h[hlen] = 0;
    const char *descr = npy_field(h, "descr");
    const char *fo = npy_field(h, "fortran_order");
    const char *shape = npy_field(h, "shape");
    if (!descr || !fo || !shape) {
        errf(err, errlen, "%s: .npy header lacks descr/fortran_order/shape",
             path);
        goto out;
    }
    mat_type t;
    if (!strncmp(descr, "'<f4'", 5)) t = MT_F32;
    else if (!strncmp(descr, "'<i4'", 5)) t = MT_I32;
    else if (!strncmp(descr, "'<i8'", 5)) t = MT_I64;
    else if (!strncmp(descr, "'|u1'", 5) || !strncmp(descr, "'<u1'", 5)) t = MT_U8;
    else {
        const char *e = strchr(descr + 1, '\'');
        int l = e ? (int)(e - descr - 1) : 8;
        errf(err, errlen,
             "%s: unsupported .npy dtype '%.*s' (float32 '<f4', int32 '<i4', "
             "int64 '<i8' and uint8 '|u1' are)",
             path, l > 32 ? 32 : l, descr + 1);
        goto out;
    }
    if (strncmp(fo, "False", 5)) {
        errf(err, errlen, "%s: Fortran-order .npy arrays are not supported "
                          "(save with np.ascontiguousarray)", path);
        goto out;
    }
    if (*shape != '(') {
        errf(err, errlen, "%s: bad .npy shape", path);
        goto out;
    }
    int64_t dims[2] = {0, 1};
    int nd = 0;
    const char *p = shape + 1;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9' || nd == 2) {
            errf(err, errlen, "%s: unsupported .npy shape (1-D or 2-D only)",
                 path);
            goto out;
        }
        char *endp;
        errno = 0;
        long long v = strtoll(p, &endp, 10);
        if (errno || v < 0 || v > (INT64_C(1) << 50)) {
            errf(err, errlen, "%s: bad .npy shape", path);
            goto out;
        }
        dims[nd++] = v;
        p = endp;
        while (*p == ' ') p++;
        if (*p == ',') p++;
    }
    if (nd == 0) {
        errf(err, errlen, "%s: a 0-d .npy array is not a matrix", path);
        goto out;
    }
    if (nd == 1) { /* a vector of n scalars is n rows of one */
        dims[1] = 1;
    }
    int64_t n = dims[0], d = dims[1];
    int64_t avail = size - hstart - hlen;
    int64_t item = (int64_t)type_size(t);
    if (d == 0 || d > MAX_DIM ||
        (n > 0 && n > avail / (d * item)) || n * d * item != avail) {
        errf(err, errlen,
             "%s: truncated or inconsistent .npy: shape (%lld, %lld) needs "
             "%lld data bytes, the file has %lld",
             path, (long long)n, (long long)d,
             (d > 0 && d <= MAX_DIM && n <= (INT64_C(1) << 40))
                 ? (long long)(n * d * item) : -1LL,
             (long long)avail);
        goto out;
    }
    if (alloc_mat(m, n, d, t, path, err, errlen)) goto out;
    if (read_exact(f, m->data, (size_t)avail, path, err, errlen)) {
        mat_free(m);
        goto out;
    }
    rc = 0;
out:
    free(h);
    fclose(f);
    return rc;
}

static int read_raw_f32(const char *path, int64_t dim, matrix *m, char *err,
                        size_t errlen) {
    if (dim <= 0)
        return errf(err, errlen, "%s: raw float32 files need --dim", path);
    int64_t size;
    FILE *f = open_sized(path, &size, err, errlen);
    if (!f) return -1;
    int rc = -1;
    if (size % (4 * dim)) {
        errf(err, errlen,
             "%s: %lld bytes is not a whole number of %lld-dimensional "
             "float32 vectors",
             path, (long long)size, (long long)dim);
    } else if (!alloc_mat(m, size / (4 * dim), dim, MT_F32, path, err,
                          errlen)) {
        if (read_exact(f, m->data, (size_t)size, path, err, errlen))
            mat_free(m);
        else
            rc = 0;
    }
    fclose(f);
    return rc;
}

int mat_read(const char *path, int64_t dim, matrix *out, char *err,
             size_t errlen) {
    memset(out, 0, sizeof *out);
    const char *e = ext_of(path);
    int rc;
    if (!strcmp(e, ".fvecs")) rc = read_texmex(path, MT_F32, out, err, errlen);
    else if (!strcmp(e, ".ivecs")) rc = read_texmex(path, MT_I32, out, err, errlen);
    else if (!strcmp(e, ".bvecs")) rc = read_texmex(path, MT_U8, out, err, errlen);
    else if (!strcmp(e, ".npy")) rc = read_npy(path, out, err, errlen);
    else if (!strcmp(e, ".f32") || !strcmp(e, ".raw"))
        rc = read_raw_f32(path, dim, out, err, errlen);
    else
        return errf(err, errlen,
                    "%s: unknown file type '%s' (use .fvecs, .ivecs, .bvecs, "
                    ".npy or .f32)",
                    path, e);
    if (rc == 0 && dim > 0 && out->d != dim) {
        errf(err, errlen, "%s: expected d=%lld (--dim), got %lld", path,
             (long long)dim, (long long)out->d);
        mat_free(out);
        return -1;
    }
    return rc;
}

int mat_to_f32(matrix *m, char *err, size_t errlen) {
    if (m->type == MT_F32) return 0;
    size_t n = (size_t)m->n * (size_t)m->d;
    float *x = malloc(n ? n * sizeof(float) : 1);
    if (!x) return errf(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        switch (m->type) {
        case MT_I32: x[i] = (float)((int32_t *)m->data)[i]; break;
        case MT_I64: x[i] = (float)((int64_t *)m->data)[i]; break;
        case MT_U8: x[i] = (float)((uint8_t *)m->data)[i]; break;
        default: break;
        }
    }
    free(m->data);
    m->data = x;
    m->type = MT_F32;
    return 0;
}

int mat_to_i64(matrix *m, char *err, size_t errlen) {
    if (m->type == MT_I64) return 0;
    if (m->type == MT_F32)
        return errf(err, errlen, "expected integer ids, got float32 data");
    size_t n = (size_t)m->n * (size_t)m->d;
    int64_t *x = malloc(n ? n * sizeof(int64_t) : 1);
    if (!x) return errf(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++)
        x[i] = m->type == MT_I32 ? ((int32_t *)m->data)[i]
                                 : ((uint8_t *)m->data)[i];
    free(m->data);
    m->data = x;
    m->type = MT_I64;
    return 0;
}

/* Writes through the library's file policy (src/io/fileout.c), the one
 * write_index follows: a unique temporary renamed over a regular file (so a
 * failed write never leaves a half-written file, and concurrent runs do not
 * share a temporary), symlinks followed, mode and owner kept, FIFOs, devices
 * and hard-linked files written through. */
static int write_file(const char *path, const void *hdr, size_t hlen,
                      const matrix *m, int texmex, char *err, size_t errlen) {
    vdx_fileout out;
    if (vdx_fileout_open(&out, path) != VDX_OK)
        return errf(err, errlen, "%s", vdx_last_error());
    FILE *f = out.fp;
    int ok = !hlen || fwrite(hdr, 1, hlen, f) == hlen;
    size_t item = type_size(m->type);
    size_t row = (size_t)m->d * item;
    if (texmex) {
        int32_t d32 = (int32_t)m->d;
        for (int64_t i = 0; ok && i < m->n; i++) {
            ok = fwrite(&d32, 4, 1, f) == 1;
            if (m->type == MT_I64) {
                for (int64_t j = 0; ok && j < m->d; j++) {
                    int32_t v = (int32_t)((int64_t *)m->data)[i * m->d + j];
                    ok = fwrite(&v, 4, 1, f) == 1;
                }
            } else if (ok && row) {
                ok = fwrite((char *)m->data + (size_t)i * row, 1, row, f) == row;
            }
        }
    } else if (m->n && row) {
        ok = fwrite(m->data, row, (size_t)m->n, f) == (size_t)m->n;
    }
    if (!ok) {
        int e = errno;
        vdx_fileout_abort(&out);
        return errf(err, errlen, "%s: write failed: %s", path, strerror(e));
    }
    if (vdx_fileout_commit(&out) != VDX_OK)
        return errf(err, errlen, "%s", vdx_last_error());
    return 0;
}

int mat_write(const char *path, const matrix *m, char *err, size_t errlen) {
    const char *e = ext_of(path);
    if (!strcmp(e, ".npy")) {
        static const char *descr[] = {"<f4", "<i4", "<i8", "|u1"};
        char h[256];
        int l = snprintf(h + 10, sizeof h - 10,
                         "{'descr': '%s', 'fortran_order': False, 'shape': "
                         "(%lld, %lld), }",
                         descr[m->type], (long long)m->n, (long long)m->d);
        int total = 10 + l + 1;
        int pad = (64 - total % 64) % 64;
        memset(h + 10 + l, ' ', (size_t)pad);
        h[10 + l + pad] = '\n';
        int hl = l + pad + 1;
        memcpy(h, "\x93NUMPY\x01\x00", 8);
        h[8] = (char)(hl & 0xff);
        h[9] = (char)(hl >> 8);
        return write_file(path, h, (size_t)(10 + hl), m, 0, err, errlen);
    }
    if (!strcmp(e, ".fvecs") || !strcmp(e, ".ivecs") || !strcmp(e, ".bvecs")) {
        mat_type want = e[1] == 'f' ? MT_F32 : e[1] == 'b' ? MT_U8 : MT_I32;
        int ok = m->type == want || (want == MT_I32 && m->type == MT_I64);
        if (!ok)
            return errf(err, errlen, "%s: cannot store this data as %s (use "
                        ".npy)", path, e);
        if (m->type == MT_I64) {
            const int64_t *v = m->data;
            for (int64_t i = 0; i < m->n * m->d; i++)
                if (v[i] < INT32_MIN || v[i] > INT32_MAX)
                    return errf(err, errlen, "%s: id %lld does not fit in "
                                "int32 (use .npy)", path, (long long)v[i]);
        }
        return write_file(path, NULL, 0, m, 1, err, errlen);
    }
    if (!strcmp(e, ".f32") && m->type == MT_F32)
        return write_file(path, NULL, 0, m, 0, err, errlen);
    return errf(err, errlen, "%s: unknown or unsuitable output type '%s' "
                "(use .npy, .fvecs or .ivecs)", path, e);
}
