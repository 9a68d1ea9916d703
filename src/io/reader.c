/*
 * reader.c — reading indexes in FAISS's binary format from a file or a
 * memory buffer.
 *
 * Design: one byte source (vdx_reader) serves both cases, so there is a
 * single parsing code path.  The source knows its total size up front (the
 * buffer length, or fstat's size for a regular file), so every count read
 * from the input is checked against the bytes that actually remain before
 * anything is allocated: a hostile header claiming 2^40 vectors is refused
 * on the spot instead of turning into a huge allocation.  The fourcc at the
 * start of each (possibly nested) index selects a read function from the
 * table in registry.c; recursion depth is bounded.  Bytes after the index
 * are ignored, as FAISS ignores them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_internal.h"

/* ---- primitives -------------------------------------------------------- */

vdx_status vdx_rd_need(const vdx_reader *r, uint64_t n, const char *what) {
    if (n > vdx_rd_remaining(r))
        return vdx_raise(VDX_ERR_FORMAT,
                         "truncated %s: need %" PRIu64 " bytes of %s at "
                         "offset %" PRIu64 ", %" PRIu64 " remain",
                         r->kind, n, what, r->pos, vdx_rd_remaining(r));
    return VDX_OK;
}

vdx_status vdx_rd_bytes(vdx_reader *r, void *dst, uint64_t n,
                        const char *what) {
    vdx_status s = vdx_rd_need(r, n, what);
    if (s != VDX_OK) return s;
    if (n == 0) return VDX_OK;
    if (r->mem) {
        memcpy(dst, r->mem + r->pos, (size_t)n);
    } else {
        size_t got = fread(dst, 1, (size_t)n, r->fp);
        if (got != n) {
            if (ferror(r->fp))
                return vdx_raise(VDX_ERR_IO,
                                 "read error at offset %" PRIu64
                                 " while reading %s: %s",
                                 r->pos + got, what, strerror(errno));
            /* the file shrank after fstat */
            return vdx_raise(VDX_ERR_FORMAT,
                             "truncated file: need %" PRIu64 " bytes of %s "
                             "at offset %" PRIu64 ", %zu could be read",
                             n, what, r->pos, got);
        }
    }
    r->pos += n;
    return VDX_OK;
}

const uint8_t *vdx_rd_borrow(vdx_reader *r, uint64_t n, const char *what,
                             vdx_status *st) {
    *st = VDX_OK;
    if (!r->map) return NULL;
    if ((*st = vdx_rd_need(r, n, what)) != VDX_OK) return NULL;
    const uint8_t *p = r->mem + r->pos;
    r->pos += n;
    return p;
}

vdx_status vdx_rd_u8(vdx_reader *r, uint8_t *v, const char *what) {
    return vdx_rd_bytes(r, v, 1, what);
}
vdx_status vdx_rd_i32(vdx_reader *r, int32_t *v, const char *what) {
    return vdx_rd_bytes(r, v, 4, what);
}
vdx_status vdx_rd_i64(vdx_reader *r, int64_t *v, const char *what) {
    return vdx_rd_bytes(r, v, 8, what);
}
vdx_status vdx_rd_u64(vdx_reader *r, uint64_t *v, const char *what) {
    return vdx_rd_bytes(r, v, 8, what);
}
vdx_status vdx_rd_f32(vdx_reader *r, float *v, const char *what) {
    return vdx_rd_bytes(r, v, 4, what);
}

vdx_status vdx_rd_vector_count(vdx_reader *r, uint64_t elem_size,
                               uint64_t expected, const char *what) {
    uint64_t at = r->pos, count;
    char label[64];
    snprintf(label, sizeof label, "%s size", what);
    vdx_status s = vdx_rd_u64(r, &count, label);
    if (s != VDX_OK) return s;
    if (count != expected)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s: %" PRIu64 " entries at offset %" PRIu64
                         ", expected %" PRIu64,
                         what, count, at, expected);
    uint64_t bytes;
    if (__builtin_mul_overflow(count, elem_size, &bytes))
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s: %" PRIu64 " entries at offset %" PRIu64
                         " overflow",
                         what, count, at);
    return vdx_rd_need(r, bytes, what);
}

/* ---- header ------------------------------------------------------------ */

const char *vdx_io_metric_name(int32_t m) {
    switch (m) {
    case 0: return "inner product";
    case 1: return "L2";
    case 2: return "L1";
    case 3: return "Linf";
    case 4: return "Lp";
    case 20: return "Canberra";
    case 21: return "BrayCurtis";
    case 22: return "JensenShannon";
    case 23: return "Jaccard";
    case 24: return "NaNEuclidean";
    case 25: return "Gower";
    default: return NULL;
    }
}

vdx_status vdx_rd_header(vdx_reader *r, vdx_io_header *h) {
    int32_t d32, metric;
    int64_t ntotal, dummy;
    uint8_t trained;
    vdx_status s;
    uint64_t at_d = r->pos;
    if ((s = vdx_rd_i32(r, &d32, "header d")) != VDX_OK) return s;
    uint64_t at_n = r->pos;
    if ((s = vdx_rd_i64(r, &ntotal, "header ntotal")) != VDX_OK) return s;
    if ((s = vdx_rd_i64(r, &dummy, "header")) != VDX_OK) return s;
    if ((s = vdx_rd_i64(r, &dummy, "header")) != VDX_OK) return s;
    uint64_t at_t = r->pos;
    if ((s = vdx_rd_u8(r, &trained, "header is_trained")) != VDX_OK) return s;
    uint64_t at_m = r->pos;
    if ((s = vdx_rd_i32(r, &metric, "header metric_type")) != VDX_OK)
        return s;
    float arg = 0.0f;
    if (metric > 1 &&
        (s = vdx_rd_f32(r, &arg, "header metric_arg")) != VDX_OK)
        return s;

    if (d32 < 1 || d32 > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: dimension d=%" PRId32 " at offset %" PRIu64
                         " is out of range 1..%" PRId64,
                         h->fourcc, d32, at_d, (int64_t)VDX_MAX_DIM);
    if (ntotal < 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: negative ntotal=%" PRId64
                         " at offset %" PRIu64,
                         h->fourcc, ntotal, at_n);
    if (trained > 1)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: is_trained byte 0x%02x at offset %" PRIu64
                         " is not 0 or 1",
                         h->fourcc, trained, at_t);
    if (!vdx_io_metric_name(metric))
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: unknown metric_type %" PRId32
                         " at offset %" PRIu64,
                         h->fourcc, metric, at_m);
    h->d = d32;
    h->ntotal = ntotal;
    h->is_trained = trained;
    h->metric_type = metric;
    h->metric_arg = arg;
    return VDX_OK;
}

vdx_status vdx_io_metric(const vdx_io_header *h, vdx_metric *out) {
    if (h->metric_type == 0) {
        *out = VDX_METRIC_INNER_PRODUCT;
        return VDX_OK;
    }
    if (h->metric_type == 1) {
        *out = VDX_METRIC_L2;
        return VDX_OK;
    }
    const char *name = vdx_io_metric_name(h->metric_type);
    return vdx_raise(VDX_ERR_UNSUPPORTED,
                     "%s index at offset %" PRIu64 ": metric %s (%" PRId32
                     ") is not supported; vecdex handles L2 and inner product",
                     h->fourcc, h->offset, name ? name : "?", h->metric_type);
}

/* ---- dispatch ---------------------------------------------------------- */

static int fourcc_printable(const uint8_t c[4]) {
    for (int i = 0; i < 4; i++) {
        int ok = (c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'z') ||
                 (c[i] >= 'A' && c[i] <= 'Z') || c[i] == '_';
        if (!ok) return 0;
    }
    return 1;
}

vdx_status vdx_read_index_rec(vdx_reader *r, vdx_index **out) {
    *out = NULL;
    vdx_io_header h;
    memset(&h, 0, sizeof h);
    h.offset = r->pos;
    if (r->depth >= VDX_IO_MAX_DEPTH)
        return vdx_raise(VDX_ERR_FORMAT,
                         "indexes nested more than %d deep at offset %" PRIu64,
                         VDX_IO_MAX_DEPTH, r->pos);
    uint8_t c[4];
    vdx_status s = vdx_rd_bytes(r, c, 4, "index type (fourcc)");
    if (s != VDX_OK) return s;
    memcpy(h.fourcc, c, 4);
    h.fourcc[4] = 0;
    for (size_t i = 0; i < vdx_io_nreaders; i++) {
        if (memcmp(vdx_io_readers[i].fourcc, c, 4) == 0) {
            r->depth++;
            s = vdx_io_readers[i].read(r, &h, out);
            r->depth--;
            if (s != VDX_OK) *out = NULL;
            return s;
        }
    }
    if (fourcc_printable(c))
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "unknown index type '%s' at offset %" PRIu64
                         " (not supported by vecdex)",
                         h.fourcc, h.offset);
    return vdx_raise(VDX_ERR_FORMAT,
                     "not an index: bad type code 0x%02x%02x%02x%02x at "
                     "offset %" PRIu64,
                     c[0], c[1], c[2], c[3], h.offset);
}

/* ---- public entry points ----------------------------------------------- */

/* Reads an index written by vecdex or FAISS from `path`.  With
 * VDX_IO_FLAG_MMAP or VDX_IO_FLAG_MMAP_IFC the file is mapped (read-only,
 * private) and the large arrays are borrowed from the map instead of
 * copied; other flags as in vecdex.h.
 * @return VDX_OK and a new index in *out (free with vdx_index_free);
 *   VDX_ERR_IO when the file cannot be opened or read, VDX_ERR_FORMAT when
 *   it is corrupt or truncated, VDX_ERR_UNSUPPORTED for an index kind or
 *   metric vecdex does not handle.  On error *out is NULL.
 * Thread safety: independent calls may run concurrently. */
vdx_status vdx_read_index(const char *path, int io_flags, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!path) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "path is NULL");

    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below, and
     * the flag has no effect on the regular files that are read */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return vdx_raise(VDX_ERR_IO, "cannot open '%s' for reading: %s", path,
                         strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return vdx_raise(VDX_ERR_IO, "cannot stat '%s': %s", path,
                         strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vdx_raise(VDX_ERR_IO, "'%s' is not a regular file", path);
    }
    const int want_map =
        (io_flags & VDX_IOF_MMAP_BITS) == VDX_IOF_MMAP_BITS ||
        (io_flags & VDX_IOF_MMAP_IFC);
    if (want_map) {
        vdx_mapping *map = NULL;
        vdx_status s = vdx_mapping_from_fd(fd, (uint64_t)st.st_size, path,
                                           &map);
        close(fd);
        if (s != VDX_OK) return s;
        static const uint8_t empty[1] = {0};
        vdx_reader r;
        memset(&r, 0, sizeof r);
        r.mem = map->base ? map->base : empty;
        r.kind = "file";
        r.size = map->len;
        r.io_flags = io_flags;
        r.map = map;
        r.path = path;
        s = vdx_read_index_rec(&r, out);
        vdx_mapping_unref(map); /* the borrowers hold their own references */
        if (s != VDX_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", vdx_last_error());
            vdx_raise(s, "%s: %s", path, msg);
        }
        return s;
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        int e = errno;
        close(fd);
        return vdx_raise(VDX_ERR_IO, "cannot open '%s' for reading: %s", path,
                         strerror(e));
    }

    vdx_reader r;
    memset(&r, 0, sizeof r);
    r.fp = fp;
    r.kind = "file";
    r.size = (uint64_t)st.st_size;
    r.io_flags = io_flags;
    r.path = path;
    vdx_status s = vdx_read_index_rec(&r, out);
    fclose(fp);
    if (s != VDX_OK) {
        /* prefix the path; copy first, the message buffer is reused */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", vdx_last_error());
        vdx_raise(s, "%s: %s", path, msg);
    }
    return s;
}

vdx_status vdx_read_index_flags(const char *path, int io_flags,
                                vdx_index **out) {
    return vdx_read_index(path, io_flags, out);
}

/* Reads an index from the `size` bytes at `buf` (which stay the caller's).
 * @return as vdx_read_index (never VDX_ERR_IO); *out is NULL on error. */
vdx_status vdx_deserialize_index(const uint8_t *buf, size_t size,
                                 vdx_index **out) {
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
    return vdx_read_index_rec(&r, out);
}

vdx_status vdx_io_check_vectors(const vdx_reader *r, const float *x,
                                uint64_t n, int64_t d, uint64_t row0,
                                uint64_t at, const char *record) {
    const float lim = vdx_max_magnitude(d);
    uint32_t lim_bits, worst = 0;
    memcpy(&lim_bits, &lim, 4);
    const uint64_t total = n * (uint64_t)d;
    /* the largest magnitude as bits first (Inf and NaN order above every
     * finite value); the offender is located only when there is one */
    for (uint64_t i = 0; i < total; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u &= 0x7fffffffu;
        worst = u > worst ? u : worst;
    }
    if (worst <= lim_bits) return VDX_OK;
    for (uint64_t i = 0; i < total; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u &= 0x7fffffffu;
        if (u <= lim_bits) continue;
        uint64_t row = row0 + i / (uint64_t)d, col = i % (uint64_t)d;
        if (u >= 0x7f800000u)
            return vdx_raise(VDX_ERR_FORMAT,
                             "non-finite value (%s) in %s %" PRIu64
                             ", component %" PRIu64 " at offset %" PRIu64
                             " of the %s",
                             u > 0x7f800000u ? "NaN" : "Inf", record, row, col,
                             at + i * 4, r->kind);
        return vdx_raise(VDX_ERR_FORMAT,
                         "value %g in %s %" PRIu64 ", component %" PRIu64
                         " at offset %" PRIu64 " of the %s is too large for "
                         "float32 distances (vecdex accepts magnitudes up to "
                         "%.3g for d=%" PRId64 ", as add does)",
                         (double)x[i], record, row, col, at + i * 4, r->kind,
                         (double)lim, d);
    }
    return VDX_OK;
}
