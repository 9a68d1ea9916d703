/*
 * ondisk_io.c — FAISS's OnDiskInvertedLists: the "ilod" record inside an
 * IVF index and the separate data file (".ivfdata") it names.
 *
 *     "ilod", uint64 nlist, uint64 code_size,
 *     a vector of nlist List {uint64 size, capacity, offset (bytes)},
 *     a vector of free Slot {uint64 offset, capacity (bytes)},
 *     a vector of char: the data file's name (as given when it was made),
 *     uint64 totsize: the data file's size in bytes.
 * In the data file, list l occupies capacity x (code_size + 8) bytes at
 * its offset: capacity codes, then capacity int64 ids (the first `size`
 * of each are used).  An empty list may carry offset 2^64 - 1.
 *
 * vecdex maps the data file read-only and lets its lists borrow from the
 * map (see invlists.h): a list that changes is copied into memory, and the
 * data file is rewritten (temporary + rename, compact layout) when the
 * index is next written — never changed in place, so a process that has
 * it mapped keeps valid pages.  Every list's extent is checked against
 * totsize, and totsize against the data file's actual size, at open.
 *
 * vdx_index_ivf_merge_ondisk builds such a data file from shard indexes
 * opened one at a time (only one shard is mapped at any moment): the
 * building block for indexes larger than memory, as in
 * faiss.contrib.ondisk.merge_ondisk.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileout.h"
#include "io_internal.h"

#define ONDISK_MAX_FILENAME 4096
#define ONDISK_EMPTY_OFFSET UINT64_MAX

/* dir of `index_path` + basename of `name` (IO_FLAG_ONDISK_SAME_DIR). */
static char *same_dir_name(const char *index_path, const char *name) {
    const char *slash = strrchr(index_path, '/');
    size_t dlen = slash ? (size_t)(slash - index_path + 1) : 0;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t blen = strlen(base);
    char *out = vdx_malloc(dlen + blen + 3);
    if (!out) return NULL;
    if (dlen) memcpy(out, index_path, dlen);
    else memcpy(out, "./", 2), dlen = 2;
    memcpy(out + dlen, base, blen + 1);
    return out;
}

vdx_status vdx_io_read_ondisk_lists(vdx_reader *r, const vdx_io_header *h,
                                    vdx_ivf *ivf) {
    vdx_status s;
    uint64_t nlist, code_size, at = r->pos;
    if ((s = vdx_rd_u64(r, &nlist, "on-disk lists nlist"))) return s;
    if ((s = vdx_rd_u64(r, &code_size, "on-disk lists code_size"))) return s;
    if (nlist != (uint64_t)ivf->nlist || code_size != ivf->code_size)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: on-disk lists at offset %" PRIu64
                         " have nlist=%" PRIu64 ", code_size=%" PRIu64
                         "; the index has nlist=%" PRId64 ", code_size=%zu",
                         h->fourcc, at, nlist, code_size, ivf->nlist,
                         ivf->code_size);
    if ((s = vdx_rd_vector_count(r, 24, nlist, "on-disk list table")))
        return s;
    vdx_ondisk_info *info = vdx_calloc(1, sizeof *info);
    uint64_t *size = vdx_malloc_array((size_t)nlist, sizeof(uint64_t));
    char *resolved = NULL;
    vdx_mapping *map = NULL;
    if (!info || !size) {
        s = VDX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    info->capacity = vdx_malloc_array((size_t)nlist, sizeof(uint64_t));
    info->offset = vdx_malloc_array((size_t)nlist, sizeof(uint64_t));
    if (!info->capacity || !info->offset) {
        s = VDX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    uint64_t table_at = r->pos;
    for (uint64_t l = 0; l < nlist; l++) {
        uint64_t e[3];
        if ((s = vdx_rd_bytes(r, e, sizeof e, "on-disk list table"))) goto fail;
        size[l] = e[0];
        info->capacity[l] = e[1];
        info->offset[l] = e[2];
    }
    uint64_t nslots, slots_at = r->pos;
    if ((s = vdx_rd_u64(r, &nslots, "on-disk free slots size"))) goto fail;
    if (nslots > vdx_rd_remaining(r) / 16) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: %" PRIu64 " on-disk free slots at offset "
                      "%" PRIu64 " cannot fit in the %" PRIu64 " bytes left",
                      h->fourcc, nslots, slots_at, vdx_rd_remaining(r));
        goto fail;
    }
    info->nslots = nslots;
    info->slots = vdx_malloc_array((size_t)(nslots ? 2 * nslots : 1),
                                   sizeof(uint64_t));
    if (!info->slots) {
        s = VDX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    if ((s = vdx_rd_bytes(r, info->slots, nslots * 16, "on-disk free slots")))
        goto fail;
    uint64_t namelen, name_at = r->pos;
    if ((s = vdx_rd_u64(r, &namelen, "on-disk file name size"))) goto fail;
    if (namelen == 0 || namelen > ONDISK_MAX_FILENAME) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: on-disk data file name of %" PRIu64
                      " bytes at offset %" PRIu64 " (expected 1..%d)",
                      h->fourcc, namelen, name_at, ONDISK_MAX_FILENAME);
        goto fail;
    }
    if ((s = vdx_rd_need(r, namelen, "on-disk file name"))) goto fail;
    info->filename = vdx_malloc((size_t)namelen + 1);
    if (!info->filename) {
        s = VDX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    if ((s = vdx_rd_bytes(r, info->filename, namelen, "on-disk file name")))
        goto fail;
    info->filename[namelen] = 0;
    if (strlen(info->filename) != namelen) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: on-disk data file name at offset %" PRIu64
                      " contains a NUL byte",
                      h->fourcc, name_at);
        goto fail;
    }
    if ((s = vdx_rd_u64(r, &info->totsize, "on-disk totsize"))) goto fail;

    /* every extent within totsize; sizes add up to ntotal */
    const uint64_t elem = code_size + sizeof(vdx_idx_t);
    uint64_t total = 0;
    for (uint64_t l = 0; l < nlist; l++) {
        uint64_t cap = info->capacity[l], off = info->offset[l], bytes, end;
        if (size[l] > cap) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: on-disk list %" PRIu64 " (table entry at "
                          "offset %" PRIu64 ") has size %" PRIu64
                          " > capacity %" PRIu64,
                          h->fourcc, l, table_at + l * 24, size[l], cap);
            goto fail;
        }
        if (cap == 0) continue;
        if (__builtin_mul_overflow(cap, elem, &bytes) ||
            __builtin_add_overflow(off, bytes, &end) || end > info->totsize) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: on-disk list %" PRIu64 " (offset %" PRIu64
                          ", capacity %" PRIu64 ") lies past the end of the "
                          "%" PRIu64 "-byte data file",
                          h->fourcc, l, off, cap, info->totsize);
            goto fail;
        }
        if (__builtin_add_overflow(total, size[l], &total)) total = UINT64_MAX;
    }
    for (uint64_t i = 0; i < nslots; i++) {
        uint64_t end;
        if (__builtin_add_overflow(info->slots[2 * i], info->slots[2 * i + 1],
                                   &end) ||
            end > info->totsize) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: on-disk free slot %" PRIu64
                          " lies past the end of the data file",
                          h->fourcc, i);
            goto fail;
        }
    }
    if (total != (uint64_t)h->ntotal) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: on-disk list sizes add up to %" PRIu64
                      ", the header says ntotal=%" PRId64,
                      h->fourcc, total, h->ntotal);
        goto fail;
    }

    const char *path = info->filename;
    if ((r->io_flags & VDX_IOF_ONDISK_SAME_DIR) && r->path) {
        if (!(resolved = same_dir_name(r->path, info->filename))) {
            s = VDX_ERR_OUT_OF_MEMORY;
            goto fail;
        }
        path = resolved;
    }
    if (info->totsize > 0) {
        if ((s = vdx_mapping_open(path, &map))) goto fail;
        if (map->len < info->totsize) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: on-disk data file '%s' holds %" PRIu64
                          " bytes, the index needs %" PRIu64 " (truncated?)",
                          h->fourcc, path, map->len, info->totsize);
            goto fail;
        }
        for (uint64_t l = 0; l < nlist; l++) {
            if (size[l] == 0) continue;
            const uint8_t *p = map->base + info->offset[l];
            s = vdx_invlists_array_borrow(
                ivf->il, map, (int64_t)l, (int64_t)size[l], p,
                (const vdx_idx_t *)(const void *)(p + info->capacity[l] *
                                                          code_size));
            if (s) goto fail;
        }
        vdx_mapping_unref(map); /* the lists hold their own reference */
        map = NULL;
    }
    if (resolved) {
        /* written back under the name it was found at */
        vdx_free(info->filename);
        info->filename = resolved;
        resolved = NULL;
    }
    vdx_invlists_set_ondisk(ivf->il, info);
    vdx_free(size);
    return VDX_OK;
fail:
    vdx_mapping_unref(map);
    vdx_free(resolved);
    vdx_free(size);
    vdx_ondisk_info_free(info);
    return s;
}

/* Writes the lists of il as a compact data file at path (temporary file,
 * then rename) and fills cap / off (nlist entries) and *totsize. */
static vdx_status write_data_file(const vdx_invlists *il, const char *path,
                                  uint64_t *cap, uint64_t *off,
                                  uint64_t *totsize) {
    const uint64_t cs = il->code_size;
    uint64_t pos = 0;
    for (int64_t l = 0; l < il->nlist; l++) {
        uint64_t n = (uint64_t)il->ops->list_size(il, l);
        cap[l] = n;
        off[l] = pos;
        pos += n * (cs + sizeof(vdx_idx_t));
    }
    *totsize = pos;
    vdx_fileout o;
    vdx_status s = vdx_fileout_open(&o, path);
    if (s) return s;
    for (int64_t l = 0; l < il->nlist && !s; l++) {
        size_t n = (size_t)cap[l];
        if (!n) continue;
        if (fwrite(il->ops->get_codes(il, l), cs, n, o.fp) != n ||
            fwrite(il->ops->get_ids(il, l), sizeof(vdx_idx_t), n, o.fp) != n)
            s = vdx_raise(VDX_ERR_IO, "cannot write '%s': %s", path,
                          strerror(errno));
    }
    if (s) {
        vdx_fileout_abort(&o);
        return s;
    }
    return vdx_fileout_commit(&o);
}

vdx_status vdx_io_write_ondisk_lists(vdx_writer *w, const vdx_ivf *ivf) {
    const vdx_invlists *il = ivf->il;
    const vdx_ondisk_info *info = vdx_invlists_ondisk(il);
    const uint64_t nlist = (uint64_t)ivf->nlist;
    uint64_t *cap = NULL, *off = NULL, totsize = info->totsize;
    const uint64_t *wcap = info->capacity, *woff = info->offset;
    uint64_t nslots = info->nslots;
    vdx_status s = VDX_OK;
    if (vdx_invlists_dirty(il) && !w->count_only) {
        /* lists changed in memory: a new data file replaces the old one */
        cap = vdx_malloc_array((size_t)nlist, sizeof(uint64_t));
        off = vdx_malloc_array((size_t)nlist, sizeof(uint64_t));
        if (!cap || !off) {
            s = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        if ((s = write_data_file(il, info->filename, cap, off, &totsize)))
            goto done;
        wcap = cap;
        woff = off;
        nslots = 0;
    }
    if ((s = vdx_wr_bytes(w, "ilod", 4))) goto done;
    if ((s = vdx_wr_u64(w, nlist))) goto done;
    if ((s = vdx_wr_u64(w, ivf->code_size))) goto done;
    if ((s = vdx_wr_u64(w, nlist))) goto done;
    for (uint64_t l = 0; l < nlist; l++) {
        uint64_t e[3] = {(uint64_t)il->ops->list_size(il, (int64_t)l),
                         wcap[l], woff[l]};
        if ((s = vdx_wr_bytes(w, e, sizeof e))) goto done;
    }
    if ((s = vdx_wr_u64(w, nslots))) goto done;
    if (nslots && (s = vdx_wr_bytes(w, info->slots, (size_t)nslots * 16)))
        goto done;
    size_t namelen = strlen(info->filename);
    if ((s = vdx_wr_u64(w, namelen))) goto done;
    if ((s = vdx_wr_bytes(w, info->filename, namelen))) goto done;
    s = vdx_wr_u64(w, totsize);
done:
    vdx_free(cap);
    vdx_free(off);
    return s;
}

/* ---- merging shards into one data file --------------------------------- */

/* Opens shard i (mapped) and checks it against the target. */
static vdx_status open_shard(const vdx_ivf *dst, const char *path, int i,
                             vdx_index **out) {
    vdx_index *sh = NULL;
    vdx_status s = vdx_read_index(path, VDX_IO_FLAG_MMAP, &sh);
    if (s) return s;
    const vdx_ivf *si = (const vdx_ivf *)sh;
    if (!vdx_index_is_ivf(sh) ||
        strcmp(sh->ops->type_name, dst->base.ops->type_name) != 0 ||
        si->nlist != dst->nlist || si->code_size != dst->code_size ||
        sh->d != dst->base.d) {
        s = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                      "merge_ondisk: shard %d ('%s') is an %s with d=%" PRId64
                      ", nlist=%" PRId64 ", code_size=%zu; the index is an %s "
                      "with d=%" PRId64 ", nlist=%" PRId64 ", code_size=%zu",
                      i, path, sh->ops->type_name, sh->d,
                      vdx_index_is_ivf(sh) ? si->nlist : 0,
                      vdx_index_is_ivf(sh) ? si->code_size : 0,
                      dst->base.ops->type_name, dst->base.d, dst->nlist,
                      dst->code_size);
        vdx_index_free(sh);
        return s;
    }
    *out = sh;
    return VDX_OK;
}

static vdx_status pwrite_all(int fd, const void *p, size_t n, uint64_t at,
                             const char *path) {
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = pwrite(fd, b, n, (off_t)at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return vdx_raise(VDX_ERR_IO, "cannot write '%s': %s", path,
                             k < 0 ? strerror(errno) : "short write");
        b += k;
        n -= (size_t)k;
        at += (uint64_t)k;
    }
    return VDX_OK;
}

vdx_status vdx_index_ivf_merge_ondisk(vdx_index *index,
                                      const char *const *shard_paths,
                                      int nshards, const char *ivfdata_path,
                                      int shift_ids, int64_t *ntotal_out) {
    vdx_clear_error();
    if (!index || !vdx_index_is_ivf(index))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_ondisk: the index must be an IVF index");
    if (nshards < 0 || (nshards > 0 && !shard_paths) || !ivfdata_path)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_ondisk: bad shard list or data file path");
    vdx_ivf *ivf = (vdx_ivf *)index;
    if (!index->is_trained)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_ondisk: the index is not trained");
    const int64_t nlist = ivf->nlist;
    const uint64_t cs = ivf->code_size, elem = cs + sizeof(vdx_idx_t);
    /* per list: capacity (entries), offset (bytes), entries written */
    uint64_t *cap = vdx_calloc((size_t)nlist, sizeof(uint64_t));
    uint64_t *off = vdx_malloc_array((size_t)nlist, sizeof(uint64_t));
    uint64_t *fill = vdx_calloc((size_t)nlist, sizeof(uint64_t));
    vdx_invlists *il = NULL;
    vdx_mapping *map = NULL;
    vdx_ondisk_info *info = NULL;
    vdx_status s = VDX_OK;
    if (!cap || !off || !fill) {
        s = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    /* pass 1: the list sizes of every shard, one shard open at a time */
    uint64_t total = 0;
    for (int i = 0; i < nshards && !s; i++) {
        vdx_index *sh = NULL;
        if ((s = open_shard(ivf, shard_paths[i], i, &sh))) break;
        const vdx_invlists *sil = ((const vdx_ivf *)sh)->il;
        for (int64_t l = 0; l < nlist; l++)
            cap[l] += (uint64_t)sil->ops->list_size(sil, l);
        total += (uint64_t)sh->ntotal;
        vdx_index_free(sh);
    }
    if (s) goto done;
    if (total > (uint64_t)INT64_MAX / elem) {
        s = vdx_raise(VDX_ERR_INVALID_ARGUMENT, "merge_ondisk: %" PRIu64
                      " entries in all overflow", total);
        goto done;
    }
    uint64_t pos = 0;
    for (int64_t l = 0; l < nlist; l++) {
        off[l] = pos;
        pos += cap[l] * elem;
    }
    /* pass 2: each shard's lists written at their place, shard after shard */
    vdx_fileout o;
    if ((s = vdx_fileout_open(&o, ivfdata_path))) goto done;
    int fd = fileno(o.fp);
    if (ftruncate(fd, (off_t)pos) != 0) {
        s = vdx_raise(VDX_ERR_IO, "cannot size '%s' to %" PRIu64 " bytes: %s",
                      ivfdata_path, pos, strerror(errno));
        vdx_fileout_abort(&o);
        goto done;
    }
    int64_t shift = 0;
    vdx_idx_t *idbuf = NULL;
    size_t idbuf_n = 0;
    for (int i = 0; i < nshards && !s; i++) {
        vdx_index *sh = NULL;
        if ((s = open_shard(ivf, shard_paths[i], i, &sh))) break;
        const vdx_invlists *sil = ((const vdx_ivf *)sh)->il;
        for (int64_t l = 0; l < nlist && !s; l++) {
            size_t n = (size_t)sil->ops->list_size(sil, l);
            if (!n) continue;
            if (fill[l] + n > cap[l]) { /* the shard changed between passes */
                s = vdx_raise(VDX_ERR_IO, "merge_ondisk: shard %d ('%s') "
                              "changed while merging", i, shard_paths[i]);
                break;
            }
            const vdx_idx_t *ids = sil->ops->get_ids(sil, l);
            if (shift_ids && shift) {
                if (n > idbuf_n) {
                    vdx_free(idbuf);
                    idbuf_n = n;
                    if (!(idbuf = vdx_malloc_array(n, sizeof(vdx_idx_t)))) {
                        s = VDX_ERR_OUT_OF_MEMORY;
                        break;
                    }
                }
                for (size_t k = 0; k < n; k++) idbuf[k] = ids[k] + shift;
                ids = idbuf;
            }
            s = pwrite_all(fd, sil->ops->get_codes(sil, l), n * cs,
                           off[l] + fill[l] * cs, ivfdata_path);
            if (!s)
                s = pwrite_all(fd, ids, n * sizeof(vdx_idx_t),
                               off[l] + cap[l] * cs + fill[l] * 8,
                               ivfdata_path);
            fill[l] += n;
        }
        shift += sh->ntotal;
        vdx_index_free(sh);
    }
    vdx_free(idbuf);
    if (s) {
        vdx_fileout_abort(&o);
        goto done;
    }
    for (int64_t l = 0; l < nlist; l++)
        if (fill[l] != cap[l]) {
            vdx_fileout_abort(&o);
            s = vdx_raise(VDX_ERR_IO, "merge_ondisk: the shards changed "
                          "while merging");
            goto done;
        }
    if ((s = vdx_fileout_commit(&o))) goto done;

    /* the new lists borrow from the new file; nothing of the index has
     * changed until here */
    if ((s = vdx_invlists_array_new(nlist, cs, &il))) goto done;
    if (pos > 0) {
        if ((s = vdx_mapping_open(ivfdata_path, &map))) goto done;
        if (map->len < pos) {
            s = vdx_raise(VDX_ERR_IO, "merge_ondisk: '%s' changed after "
                          "writing", ivfdata_path);
            goto done;
        }
        for (int64_t l = 0; l < nlist && !s; l++)
            if (cap[l])
                s = vdx_invlists_array_borrow(
                    il, map, l, (int64_t)cap[l], map->base + off[l],
                    (const vdx_idx_t *)(const void *)(map->base + off[l] +
                                                      cap[l] * cs));
        if (s) goto done;
    }
    info = vdx_calloc(1, sizeof *info);
    if (!info || !(info->filename = vdx_malloc(strlen(ivfdata_path) + 1))) {
        s = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    strcpy(info->filename, ivfdata_path);
    info->totsize = pos;
    info->capacity = cap;
    info->offset = off;
    cap = off = NULL;
    vdx_invlists_set_ondisk(il, info);
    info = NULL;
    int64_t *old_dm = ivf->dm;
    vdx_invlists *old = ivf->il;
    ivf->il = il;
    index->ntotal = (int64_t)total;
    if (old_dm) {
        ivf->dm = NULL;
        ivf->dm_cap = 0;
        if ((s = vdx_ivf_rebuild_direct_map(ivf))) {
            /* no direct map possible (ids): keep the merge, drop the map */
            vdx_free(ivf->dm);
            ivf->dm = NULL;
            ivf->dm_cap = 0;
            s = VDX_OK;
            vdx_clear_error();
        }
        vdx_free(old_dm);
    }
    il = NULL;
    vdx_invlists_free(old);
    if (ntotal_out) *ntotal_out = (int64_t)total;
done:
    vdx_mapping_unref(map);
    vdx_ondisk_info_free(info);
    vdx_invlists_free(il);
    vdx_free(cap);
    vdx_free(off);
    vdx_free(fill);
    return s;
}
