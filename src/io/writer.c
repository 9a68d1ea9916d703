/*
 * writer.c — writing indexes in FAISS's binary format to a file or to a
 * memory buffer.
 *
 * Design: one byte sink (vdx_writer) serves both cases, plus a dry run
 * that only counts bytes.  A file write first does the dry run, so that an
 * index that cannot be written fails before any file is touched; then
 * fileout.c opens the output (a temporary file renamed over the target, or
 * the target itself for FIFOs, devices and hard-linked files: the policy is
 * there).  Memory output grows a vdx_malloc'd buffer geometrically.  The
 * index kind selects a write function from the table in registry.c.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fileout.h"
#include "io_internal.h"

/* ---- primitives -------------------------------------------------------- */

vdx_status vdx_wr_bytes(vdx_writer *w, const void *src, size_t n) {
    if (n == 0) return VDX_OK;
    if (w->count_only) {
        w->len = n > SIZE_MAX - w->len ? SIZE_MAX : w->len + n;
        return VDX_OK;
    }
    if (w->fp) {
        if (fwrite(src, 1, n, w->fp) != n)
            return vdx_raise(VDX_ERR_IO, "write error on '%s': %s", w->path,
                             strerror(errno));
        return VDX_OK;
    }
    if (n > w->cap - w->len) {
        size_t need;
        if (__builtin_add_overflow(w->len, n, &need))
            return vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                             "serialized index exceeds the address space");
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *p = vdx_realloc_array(w->buf, cap, 1);
        if (!p) return VDX_ERR_OUT_OF_MEMORY;
        w->buf = p;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, src, n);
    w->len += n;
    return VDX_OK;
}

vdx_status vdx_wr_u8(vdx_writer *w, uint8_t v) { return vdx_wr_bytes(w, &v, 1); }
vdx_status vdx_wr_i32(vdx_writer *w, int32_t v) { return vdx_wr_bytes(w, &v, 4); }
vdx_status vdx_wr_i64(vdx_writer *w, int64_t v) { return vdx_wr_bytes(w, &v, 8); }
vdx_status vdx_wr_u64(vdx_writer *w, uint64_t v) { return vdx_wr_bytes(w, &v, 8); }
vdx_status vdx_wr_f32(vdx_writer *w, float v) { return vdx_wr_bytes(w, &v, 4); }

vdx_status vdx_wr_header(vdx_writer *w, const char *fourcc,
                         const vdx_index *ix) {
    if (ix->d < 1 || ix->d > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INTERNAL, "cannot write an index with d=%lld",
                         (long long)ix->d);
    /* FAISS numbers metrics as vdx_metric does (IP 0, L2 1) */
    int32_t metric = (int32_t)ix->metric;
    vdx_status s;
    if ((s = vdx_wr_bytes(w, fourcc, 4)) != VDX_OK) return s;
    if ((s = vdx_wr_i32(w, (int32_t)ix->d)) != VDX_OK) return s;
    if ((s = vdx_wr_i64(w, ix->ntotal)) != VDX_OK) return s;
    if ((s = vdx_wr_i64(w, VDX_IO_HEADER_DUMMY)) != VDX_OK) return s;
    if ((s = vdx_wr_i64(w, VDX_IO_HEADER_DUMMY)) != VDX_OK) return s;
    if ((s = vdx_wr_u8(w, ix->is_trained ? 1 : 0)) != VDX_OK) return s;
    if ((s = vdx_wr_i32(w, metric)) != VDX_OK) return s;
    if (metric > 1 && (s = vdx_wr_f32(w, ix->metric_arg)) != VDX_OK) return s;
    return VDX_OK;
}

vdx_status vdx_write_index_rec(vdx_writer *w, const vdx_index *ix) {
    if (w->depth >= VDX_IO_MAX_DEPTH)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "indexes nested more than %d deep cannot be written",
                         VDX_IO_MAX_DEPTH);
    for (size_t i = 0; i < vdx_io_nwriters; i++) {
        if (vdx_io_writers[i].matches(ix)) {
            w->depth++;
            vdx_status s = vdx_io_writers[i].write(w, ix);
            w->depth--;
            return s;
        }
    }
    const char *name = vdx_index_type_name(ix);
    return vdx_raise(VDX_ERR_UNSUPPORTED,
                     "writing an index of type %s is not supported",
                     name ? name : "?");
}

/* ---- public entry points ----------------------------------------------- */

/* Writes `index` to `path` in FAISS's format (the contract, and what an
 * existing path keeps, are in vecdex.h; the policy is fileout.c's).
 * Thread safety: may run concurrently with searches on the same index, and
 * with other writes of the same path (the last to finish wins, whole). */
vdx_status vdx_write_index(const vdx_index *index, const char *path) {
    vdx_clear_error();
    if (!index) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "index is NULL");
    if (!path) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "path is NULL");

    /* the dry run: nothing is created, truncated or opened (a FIFO's reader
     * would get half an index) for an index that cannot be written */
    vdx_writer w;
    memset(&w, 0, sizeof w);
    w.count_only = 1;
    vdx_status s = vdx_write_index_rec(&w, index);
    if (s != VDX_OK) return s;

    vdx_fileout o;
    if ((s = vdx_fileout_open(&o, path)) != VDX_OK) return s;
    memset(&w, 0, sizeof w);
    w.fp = o.fp;
    w.path = o.target;
    s = vdx_write_index_rec(&w, index);
    if (s != VDX_OK) {
        vdx_fileout_abort(&o);
        return s;
    }
    return vdx_fileout_commit(&o);
}

/* Serializes `index` into a new buffer.
 * @return VDX_OK with *buf (free with vdx_free_buffer) and *size set;
 *   on error *buf is NULL and *size 0.
 * Thread safety: may run concurrently with searches on the same index. */
vdx_status vdx_serialize_index(const vdx_index *index, uint8_t **buf,
                               size_t *size) {
    vdx_clear_error();
    if (!buf || !size)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "buf or size is NULL");
    *buf = NULL;
    *size = 0;
    if (!index) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "index is NULL");
    vdx_writer w;
    memset(&w, 0, sizeof w);
    vdx_status s = vdx_write_index_rec(&w, index);
    if (s != VDX_OK) {
        vdx_free(w.buf);
        return s;
    }
    *buf = w.buf;
    *size = w.len;
    return VDX_OK;
}

/* Frees a buffer returned by vdx_serialize_index.  NULL is accepted. */
void vdx_free_buffer(void *buf) { vdx_free(buf); }
