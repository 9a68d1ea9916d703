/*
 * ivf_io.c — IndexIVFFlat in FAISS's format (fourcc "IwFl"):
 *
 *     "IwFl", the common header (d, ntotal, is_trained, metric),
 *     uint64 nlist, uint64 nprobe,
 *     the coarse quantizer (a whole index, read recursively),
 *     the direct map: uint8 type (0 none, 1 array, 2 hashtable), a vector of
 *       int64 (the array: ntotal entries list << 32 | offset, else empty),
 *       and for the hashtable only a vector of (id, list << 32 | offset)
 *       int64 pairs,
 *     the inverted lists: "il00" (none) or "ilar" (ArrayInvertedLists):
 *       uint64 nlist, uint64 code_size, then the list sizes as
 *         "full" + a vector of nlist uint64 sizes, or
 *         "sprs" + a vector of uint64 (list, size) pairs for the non-empty
 *         lists, in increasing list order (FAISS writes "full" when more
 *         than nlist / 2 lists are non-empty, "sprs" otherwise; this writer
 *         makes the same choice, so its bytes equal FAISS's),
 *       then, for each non-empty list in list order, its codes (size x
 *       code_size bytes: the float vectors) and its ids (size int64s).
 *
 * Checks on read, beyond the size-before-allocation rule: the quantizer
 * must be a flat index of dimension d (or HNSW, residual coarse, or an IDMap
 * over a flat / HNSW with ids >= 0: labels >= nlist are dropped at search),
 * holding the nlist centroids when the index
 * is trained; an untrained index holds no vectors; code_size is d * 4; the
 * list sizes add up to ntotal; "sprs" pairs name each list at most once,
 * in increasing order (as FAISS writes them); a stored direct map equals
 * the one rebuilt from the lists; an untrained index has at most 2^20
 * lists.  nprobe is clamped to 0..nlist, as the setter does.  The
 * hashtable direct map, inverted-list kinds other than "ilar", quantizers
 * that are not flat and "il00" (no lists) with ntotal > 0 are valid FAISS
 * but not handled (VDX_ERR_UNSUPPORTED); "il00" with ntotal 0 loads as
 * empty lists.  The writer writes any quantizer vecdex can write.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "io_internal.h"

/* FAISS's DirectMap::Type */
enum { DM_NONE = 0, DM_ARRAY = 1, DM_HASHTABLE = 2 };

/* nlist accepted in the file at all (vdx_ivf_init's bound) */
#define IVF_IO_MAX_NLIST ((uint64_t)1 << 31)
/* A trained index's nlist is bounded by its centroids, which are in the
 * file; an untrained one's is not, yet every list costs memory and time
 * (about 32 bytes of bookkeeping each), so it gets a fixed bound: 2^20, the
 * largest nlist in common use with a flat quantizer (IVF1048576). */
#define IVF_IO_MAX_NLIST_UNTRAINED ((uint64_t)1 << 20)

/* Compressed IVF kinds will share vdx_index_is_ivf; only IVF-Flat is
 * written here. */
int vdx_io_is_ivf_flat(const vdx_index *ix) {
    return vdx_index_is_ivf(ix) &&
           strcmp(ix->ops->type_name, "IndexIVFFlat") == 0;
}

/* Stored vectors must be what vdx_index_add accepts (finite, within
 * vdx_max_magnitude(d)). */
static vdx_status check_list_vectors(const vdx_reader *r, const float *x,
                                     uint64_t n, int64_t d, int64_t list,
                                     uint64_t at) {
    char rec[64];
    snprintf(rec, sizeof rec, "inverted list %" PRId64 ", entry", list);
    return vdx_io_check_vectors(r, x, n, d, 0, at, rec);
}

/* Reads a fourcc and returns it NUL-terminated in out[5]. */
static vdx_status read_fourcc(vdx_reader *r, char out[5], const char *what) {
    vdx_status s = vdx_rd_bytes(r, out, 4, what);
    out[4] = 0;
    return s;
}

static int printable4(const char *c) {
    for (int i = 0; i < 4; i++) {
        unsigned char u = (unsigned char)c[i];
        if (u < 0x20 || u > 0x7e) return 0;
    }
    return 1;
}

/* The list-size table as (list, size) entries in increasing list order:
 * all nlist lists for "full", the non-empty ones for "sprs".  Its memory is
 * proportional to the table's bytes in the file, not to nlist. */
typedef struct {
    uint64_t n;
    uint64_t *list, *size;
} list_table;

static void list_table_free(list_table *t) {
    vdx_free(t->list);
    vdx_free(t->size);
}

static vdx_status list_table_alloc(list_table *t, uint64_t n) {
    t->n = n;
    t->list = vdx_malloc_array((size_t)(n ? n : 1), sizeof(uint64_t));
    t->size = vdx_malloc_array((size_t)(n ? n : 1), sizeof(uint64_t));
    return t->list && t->size ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
}

static vdx_status read_list_sizes(vdx_reader *r, const vdx_io_header *h,
                                  uint64_t nlist, list_table *t) {
    char type[5];
    uint64_t at = r->pos;
    vdx_status s = read_fourcc(r, type, "inverted list size table type");
    if (s != VDX_OK) return s;
    if (memcmp(type, "full", 4) == 0) {
        /* checked against the bytes that remain before allocating */
        s = vdx_rd_vector_count(r, sizeof(uint64_t), nlist, "list sizes");
        if (s != VDX_OK) return s;
        if ((s = list_table_alloc(t, nlist)) != VDX_OK) return s;
        for (uint64_t l = 0; l < nlist; l++) t->list[l] = l;
        return vdx_rd_bytes(r, t->size, nlist * sizeof(uint64_t),
                            "list sizes");
    }
    if (memcmp(type, "sprs", 4) != 0) {
        if (printable4(type))
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: unknown inverted list size table "
                             "'%s' at offset %" PRIu64 " (expected 'full' or "
                             "'sprs')",
                             h->fourcc, type, at);
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: bad inverted list size table type at "
                         "offset %" PRIu64,
                         h->fourcc, at);
    }
    uint64_t count, count_at = r->pos;
    if ((s = vdx_rd_u64(r, &count, "sparse list sizes size")) != VDX_OK)
        return s;
    if (count % 2 != 0 || count / 2 > nlist)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: sparse list sizes: %" PRIu64
                         " entries at offset %" PRIu64 ", expected an even "
                         "number up to 2 x nlist = %" PRIu64,
                         h->fourcc, count, count_at, 2 * nlist);
    /* count <= 2^32 here, so count * 8 cannot overflow */
    if ((s = vdx_rd_need(r, count * sizeof(uint64_t), "sparse list sizes")) !=
        VDX_OK)
        return s;
    if ((s = list_table_alloc(t, count / 2)) != VDX_OK) return s;
    for (uint64_t j = 0; j < t->n; j++) {
        uint64_t pair[2], pair_at = r->pos;
        if ((s = vdx_rd_bytes(r, pair, sizeof pair, "sparse list sizes")) !=
            VDX_OK)
            return s;
        /* FAISS writes the lists in increasing order; requiring it rules
         * out a list named twice */
        if (pair[0] >= nlist || (j > 0 && pair[0] <= t->list[j - 1]))
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: sparse list sizes: list %" PRIu64
                             " at offset %" PRIu64 " is %s",
                             h->fourcc, pair[0], pair_at,
                             pair[0] >= nlist ? "out of range"
                             : pair[0] == t->list[j - 1]
                                 ? "listed twice"
                                 : "out of order (lists must increase)");
        t->list[j] = pair[0];
        t->size[j] = pair[1];
    }
    return VDX_OK;
}

/* Reads "ilar" / "il00" into the (empty) lists of ivf. */
static vdx_status read_invlists(vdx_reader *r, const vdx_io_header *h,
                                vdx_ivf *ivf) {
    char type[5];
    uint64_t at = r->pos;
    vdx_status s = read_fourcc(r, type, "inverted lists type");
    if (s != VDX_OK) return s;
    if (memcmp(type, "il00", 4) == 0) {
        /* FAISS's "no inverted lists": only an empty index can do without */
        if (h->ntotal == 0) return VDX_OK;
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s index at offset %" PRIu64 ": ntotal=%" PRId64
                         " but no inverted lists ('il00' at offset %" PRIu64
                         "); vecdex cannot load an IVF index without them",
                         h->fourcc, h->offset, h->ntotal, at);
    }
    if (memcmp(type, "ilod", 4) == 0) return vdx_io_read_ondisk_lists(r, h, ivf);
    int64_t bM, bnsq, bbbs;
    size_t bcs;
    if (memcmp(type, "ilbl", 4) == 0 && vdx_io_block_layout(ivf, &bM, &bnsq, &bbbs, &bcs))
        return vdx_io_read_block_lists_body(r, h, ivf, bM, bnsq, bbbs, bcs);
    if (memcmp(type, "ilar", 4) != 0) {
        if (printable4(type))
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "%s index: inverted lists of type '%s' at "
                             "offset %" PRIu64 " are not supported (vecdex "
                             "reads 'ilar', ArrayInvertedLists, and 'ilod', OnDiskInvertedLists)",
                             h->fourcc, type, at);
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: bad inverted lists type at offset %" PRIu64,
                         h->fourcc, at);
    }
    uint64_t nlist, code_size;
    uint64_t nlist_at = r->pos;
    if ((s = vdx_rd_u64(r, &nlist, "inverted lists nlist")) != VDX_OK) return s;
    uint64_t cs_at = r->pos;
    if ((s = vdx_rd_u64(r, &code_size, "inverted lists code_size")) != VDX_OK)
        return s;
    if (nlist != (uint64_t)ivf->nlist)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: inverted lists at offset %" PRIu64
                         " have nlist=%" PRIu64 ", the index nlist=%" PRId64,
                         h->fourcc, nlist_at, nlist, ivf->nlist);
    if (code_size != (uint64_t)ivf->code_size)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: code_size=%" PRIu64 " at offset %" PRIu64
                         ", expected %s%zu",
                         h->fourcc, code_size, cs_at,
                         vdx_io_is_ivf_flat(&ivf->base) ? "d x 4 = " : "",
                         ivf->code_size);

    list_table t = {0, NULL, NULL};
    uint64_t table_at = r->pos;
    if ((s = read_list_sizes(r, h, nlist, &t)) != VDX_OK) goto done;

    /* every size is checked against ntotal and the bytes that remain
     * before any list is allocated */
    uint64_t total = 0, bytes;
    for (uint64_t j = 0; j < t.n; j++) {
        if (__builtin_add_overflow(total, t.size[j], &total) ||
            total > (uint64_t)INT64_MAX) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: the list sizes at offset %" PRIu64
                          " overflow (list %" PRIu64 " has %" PRIu64 ")",
                          h->fourcc, table_at, t.list[j], t.size[j]);
            goto done;
        }
    }
    if (total != (uint64_t)h->ntotal) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: the list sizes at offset %" PRIu64
                      " add up to %" PRIu64 ", the header says ntotal=%" PRId64,
                      h->fourcc, table_at, total, h->ntotal);
        goto done;
    }
    if (__builtin_mul_overflow(total, code_size + sizeof(vdx_idx_t), &bytes)) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: %" PRIu64 " entries of %" PRIu64
                      " bytes overflow",
                      h->fourcc, total, code_size + sizeof(vdx_idx_t));
        goto done;
    }
    if ((s = vdx_rd_need(r, bytes, "inverted list data")) != VDX_OK) goto done;

    /* the data of the non-empty lists follows in list order */
    vdx_invlists *il = ivf->il;
    if (r->map) {
        /* memory-mapped: the lists borrow their codes and ids from the map
         * (all bounds checked above: `bytes` remain).  IVF-Flat codes are
         * not scanned for NaN / Inf here, which would read every page. */
        for (uint64_t j = 0; j < t.n; j++) {
            uint64_t n = t.size[j];
            if (n == 0) continue;
            const uint8_t *codes =
                vdx_rd_borrow(r, n * code_size, "inverted list codes", &s);
            if (s != VDX_OK) goto done;
            const uint8_t *ids =
                vdx_rd_borrow(r, n * sizeof(vdx_idx_t), "inverted list ids", &s);
            if (s != VDX_OK) goto done;
            s = vdx_invlists_array_borrow(il, r->map, (int64_t)t.list[j],
                                          (int64_t)n, codes,
                                          (const vdx_idx_t *)(const void *)ids);
            if (s != VDX_OK) goto done;
        }
        goto done;
    }
    for (uint64_t j = 0; j < t.n; j++) {
        int64_t l = (int64_t)t.list[j];
        uint64_t n = t.size[j];
        if (n == 0) continue;
        if ((s = il->ops->resize(il, l, (int64_t)n)) != VDX_OK) goto done;
        uint64_t codes_at = r->pos;
        uint8_t *codes = il->ops->codes_rw(il, l);
        if ((s = vdx_rd_bytes(r, codes, n * code_size, "inverted list codes")) !=
            VDX_OK)
            goto done;
        if (vdx_io_is_ivf_flat(&ivf->base)) {
            s = check_list_vectors(r, (const float *)(const void *)codes, n,
                                   h->d, l, codes_at);
            if (s != VDX_OK) goto done;
        }
        if ((s = vdx_rd_bytes(r, il->ops->ids_rw(il, l), n * sizeof(vdx_idx_t),
                              "inverted list ids")) != VDX_OK)
            goto done;
    }
done:
    list_table_free(&t);
    return s;
}

/* ---- FAISS's legacy layouts ("IvPQ", "IvSQ", "IvFL", "IvFl") ------------
 * Older FAISS wrote the ids of every list right after the quantizer (nlist
 * vectors of int64, before the direct map) and, after the kind's fields,
 * the codes of every list as nlist byte vectors ("IvFl": float vectors). */
typedef struct legacy_ids {
    uint64_t nlist;
    uint64_t *size; /* per list */
    vdx_idx_t *ids; /* all lists, in list order (ntotal) */
} legacy_ids;

static void legacy_ids_free(legacy_ids *lg) {
    vdx_free(lg->size);
    vdx_free(lg->ids);
    lg->size = NULL;
    lg->ids = NULL;
}

static vdx_status read_legacy_ids(vdx_reader *r, const vdx_io_header *h,
                                  uint64_t nlist, legacy_ids *lg) {
    uint64_t at = r->pos;
    /* each list costs at least its 8-byte count: bounds nlist by the file,
     * and ntotal ids need 8 bytes each */
    vdx_status s = vdx_rd_need(r, nlist * 8, "legacy list id counts");
    if (s) return s;
    if ((uint64_t)h->ntotal > vdx_rd_remaining(r) / 8)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: ntotal=%" PRId64 " ids cannot fit in the "
                         "%" PRIu64 " bytes that remain at offset %" PRIu64,
                         h->fourcc, h->ntotal, vdx_rd_remaining(r), at);
    lg->nlist = nlist;
    lg->size = vdx_malloc_array((size_t)nlist, sizeof(uint64_t));
    lg->ids = vdx_malloc_array((size_t)(h->ntotal ? h->ntotal : 1),
                               sizeof(vdx_idx_t));
    if (!lg->size || !lg->ids) return VDX_ERR_OUT_OF_MEMORY;
    uint64_t total = 0;
    for (uint64_t l = 0; l < nlist; l++) {
        uint64_t n, n_at = r->pos;
        if ((s = vdx_rd_u64(r, &n, "legacy list id count"))) return s;
        if (n > (uint64_t)h->ntotal - total)
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: list %" PRIu64 " holds %" PRIu64
                             " ids (offset %" PRIu64 "), more than the %" PRIu64
                             " left of ntotal=%" PRId64,
                             h->fourcc, l, n, n_at,
                             (uint64_t)h->ntotal - total, h->ntotal);
        if ((s = vdx_rd_bytes(r, lg->ids + total, n * sizeof(vdx_idx_t),
                              "legacy list ids")))
            return s;
        lg->size[l] = n;
        total += n;
    }
    if (total != (uint64_t)h->ntotal)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: the lists at offset %" PRIu64 " hold %" PRIu64
                         " ids, the header says ntotal=%" PRId64,
                         h->fourcc, at, total, h->ntotal);
    return VDX_OK;
}

static vdx_status read_legacy_codes(vdx_reader *r, const vdx_io_header *h,
                                    vdx_ivf *ivf, const legacy_ids *lg) {
    /* "IvFl" stored the vectors as float vectors (counted in floats) */
    const uint64_t unit = strcmp(h->fourcc, "IvFl") == 0 ? sizeof(float) : 1;
    const int is_flat = vdx_io_is_ivf_flat(&ivf->base);
    vdx_invlists *il = ivf->il;
    const vdx_idx_t *ids = lg->ids;
    vdx_status s;
    for (uint64_t l = 0; l < lg->nlist; l++) {
        uint64_t n = lg->size[l], cnt, at = r->pos;
        uint64_t bytes = n * ivf->code_size; /* n <= ntotal, bounded by file */
        if ((s = vdx_rd_u64(r, &cnt, "legacy list code count"))) return s;
        if (cnt != bytes / unit || bytes % unit)
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: list %" PRIu64 " at offset %" PRIu64
                             " stores %" PRIu64 " code %s, its %" PRIu64
                             " ids need %" PRIu64,
                             h->fourcc, l, at, cnt,
                             unit == 1 ? "bytes" : "floats", n, bytes / unit);
        if ((s = vdx_rd_need(r, bytes, "legacy list codes"))) return s;
        if (n == 0) continue;
        if ((s = il->ops->resize(il, (int64_t)l, (int64_t)n))) return s;
        uint8_t *codes = il->ops->codes_rw(il, (int64_t)l);
        uint64_t codes_at = r->pos;
        if ((s = vdx_rd_bytes(r, codes, bytes, "legacy list codes"))) return s;
        if (is_flat &&
            (s = check_list_vectors(r, (const float *)(const void *)codes,
                                    bytes / sizeof(float) / (uint64_t)h->d,
                                    h->d, (int64_t)l, codes_at)))
            return s;
        memcpy(il->ops->ids_rw(il, (int64_t)l), ids, n * sizeof(vdx_idx_t));
        ids += n;
    }
    return VDX_OK;
}

/* Checks the direct map stored in the file (ntotal entries) against the one
 * rebuilt from the lists. */
static vdx_status check_direct_map(const vdx_io_header *h, vdx_ivf *ivf,
                                   const int64_t *stored, uint64_t at) {
    vdx_status s = vdx_ivf_rebuild_direct_map(ivf);
    if (s == VDX_ERR_OUT_OF_MEMORY) return s;
    if (s != VDX_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", vdx_last_error());
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " has a direct map, "
                         "but its lists do not allow one: %s",
                         h->fourcc, h->offset, msg);
    }
    for (int64_t i = 0; i < h->ntotal; i++)
        if (ivf->dm[i] != stored[i])
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index: direct map entry %" PRId64
                             " at offset %" PRIu64 " is 0x%" PRIx64
                             ", the lists place id %" PRId64 " at 0x%" PRIx64,
                             h->fourcc, i, at + (uint64_t)i * 8,
                             (uint64_t)stored[i], i, (uint64_t)ivf->dm[i]);
    return VDX_OK;
}

static vdx_status make_ivf_flat(vdx_reader *r, const vdx_io_header *h,
                                vdx_index *q, uint64_t nlist,
                                vdx_metric metric, vdx_ivf **out) {
    (void)r;
    return vdx_ivf_flat_alloc(q, h->d, (int64_t)nlist, metric, out);
}

vdx_status vdx_io_read_ivf_flat(vdx_reader *r, vdx_io_header *h,
                                vdx_index **out) {
    return vdx_io_read_ivf(r, h, make_ivf_flat, out);
}

/* The coarse quantizers an IVF file may hold for vecdex: flat, HNSW or
 * residual coarse (the others may return any label); shared by every IVF
 * reader, the fast-scan ones included. */
/* An IDMap / IDMap2 over a flat or HNSW quantizer, as FAISS's
 * shard_ivf_index_centroids writes (each shard keeps its centroids under
 * their global numbers).  Its labels are user ids: the IVF's coarse step
 * drops those >= nlist, but a negative one other than -1 would be taken for
 * a list number, so a file holding one is refused. */
static vdx_status check_idmap_quantizer(const vdx_io_header *h,
                                        const vdx_index *q, uint64_t q_at) {
    const vdx_idmap *m = (const vdx_idmap *)q;
    if (!vdx_is_flat(m->sub) && !vdx_io_is_hnsw(m->sub))
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s index at offset %" PRIu64 ": its quantizer at "
                         "offset %" PRIu64 " is an %s over an %s; vecdex "
                         "reads IDMap quantizers over a flat or HNSW index "
                         "only",
                         h->fourcc, h->offset, q_at, vdx_index_type_name(q),
                         vdx_index_type_name(m->sub));
    for (int64_t i = 0; i < q->ntotal; i++)
        if (m->id_map[i] < 0)
            return vdx_raise(VDX_ERR_FORMAT,
                             "%s index at offset %" PRIu64 ": its IDMap "
                             "quantizer at offset %" PRIu64 " holds id %" PRId64
                             " at position %" PRId64 " (list numbers are >= 0)",
                             h->fourcc, h->offset, q_at, (int64_t)m->id_map[i],
                             i);
    return VDX_OK;
}

vdx_status vdx_io_check_ivf_quantizer(const vdx_io_header *h,
                                      const vdx_index *q, uint64_t q_at) {
    if (vdx_is_flat(q) || vdx_io_is_hnsw(q) || vdx_io_is_acq(q)) return VDX_OK;
    if (vdx_is_idmap(q)) return check_idmap_quantizer(h, q, q_at);
    return vdx_raise(VDX_ERR_UNSUPPORTED,
                     "%s index at offset %" PRIu64 ": its quantizer at "
                     "offset %" PRIu64 " is an %s; vecdex reads IVF indexes "
                     "with an HNSW, residual coarse or flat quantizer only",
                     h->fourcc, h->offset, q_at, vdx_index_type_name(q));
}

vdx_status vdx_io_read_ivf(vdx_reader *r, vdx_io_header *h,
                           vdx_io_make_ivf_fn make, vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s != VDX_OK) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric)) != VDX_OK) return s;
    uint64_t nlist, nprobe, nlist_at = r->pos;
    if ((s = vdx_rd_u64(r, &nlist, "IVF nlist")) != VDX_OK) return s;
    if ((s = vdx_rd_u64(r, &nprobe, "IVF nprobe")) != VDX_OK) return s;
    if (nlist < 1 || nlist > IVF_IO_MAX_NLIST)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: nlist=%" PRIu64 " at offset %" PRIu64
                         " is out of range 1..2^31",
                         h->fourcc, nlist, nlist_at);
    if (!h->is_trained && h->ntotal != 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " is not trained but "
                         "holds ntotal=%" PRId64 " vectors",
                         h->fourcc, h->offset, h->ntotal);
    if (!h->is_trained && nlist > IVF_IO_MAX_NLIST_UNTRAINED)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: nlist=%" PRIu64 " at offset %" PRIu64
                         " exceeds the limit of 2^20 lists for an untrained "
                         "index",
                         h->fourcc, nlist, nlist_at);

    uint64_t q_at = r->pos;
    vdx_index *q = NULL;
    if ((s = vdx_read_index_rec(r, &q)) != VDX_OK) return s;
    if ((s = vdx_io_check_ivf_quantizer(h, q, q_at))) {
        vdx_index_free(q);
        return s;
    }
    if (q->d != h->d ||
        (h->is_trained && (uint64_t)q->ntotal != nlist)) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 " (d=%" PRId64
                      ", nlist=%" PRIu64 ", %s) disagrees with its quantizer "
                      "at offset %" PRIu64 " (d=%" PRId64 ", ntotal=%" PRId64
                      ")",
                      h->fourcc, h->offset, h->d, nlist,
                      h->is_trained ? "trained" : "untrained", q_at, q->d,
                      q->ntotal);
        vdx_index_free(q);
        return s;
    }

    vdx_ivf *ivf = NULL;
    vdx_index *ix = NULL;
    int64_t *stored_dm = NULL;
    legacy_ids lg = {0, NULL, NULL};
    const int legacy = h->fourcc[1] == 'v'; /* "Iv..": FAISS's old layout */
    if (legacy && (s = read_legacy_ids(r, h, nlist, &lg)) != VDX_OK) goto failq;
    uint8_t dm_type;
    uint64_t dm_at = r->pos, dm_array_at = 0;
    if ((s = vdx_rd_u8(r, &dm_type, "direct map type")) != VDX_OK) goto failq;
    if (dm_type == DM_HASHTABLE) {
        s = vdx_raise(VDX_ERR_UNSUPPORTED,
                      "%s index: direct map of type hashtable (2) at offset "
                      "%" PRIu64 " is not supported (vecdex keeps an array "
                      "direct map only)",
                      h->fourcc, dm_at);
        goto failq;
    }
    if (dm_type != DM_NONE && dm_type != DM_ARRAY) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index: unknown direct map type %u at offset %" PRIu64,
                      h->fourcc, dm_type, dm_at);
        goto failq;
    }
    uint64_t dm_n = dm_type == DM_ARRAY ? (uint64_t)h->ntotal : 0;
    /* the count is checked against the bytes that remain first */
    if ((s = vdx_rd_vector_count(r, sizeof(int64_t), dm_n, "direct map")) !=
        VDX_OK)
        goto failq;
    if (dm_type == DM_ARRAY) {
        stored_dm = vdx_malloc_array((size_t)(dm_n ? dm_n : 1), sizeof(int64_t));
        if (!stored_dm) {
            s = VDX_ERR_OUT_OF_MEMORY;
            goto failq;
        }
        dm_array_at = r->pos;
        if ((s = vdx_rd_bytes(r, stored_dm, dm_n * sizeof(int64_t),
                              "direct map")) != VDX_OK)
            goto failq;
    }

    /* the kind's own fields, then the index (which takes q) */
    if ((s = make(r, h, q, nlist, metric, &ivf)) != VDX_OK) goto failq;
    ix = &ivf->base;
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    /* as vdx_index_ivf_set_nprobe: huge values are clamped to nlist, 0 is
     * kept (as FAISS; the searches refuse it) */
    ivf->nprobe = nprobe > nlist ? (int64_t)nlist : (int64_t)nprobe;

    if ((s = legacy ? read_legacy_codes(r, h, ivf, &lg) : read_invlists(r, h, ivf)) !=
        VDX_OK)
        goto fail;
    ix->ntotal = h->ntotal;
    if (dm_type == DM_ARRAY &&
        (s = check_direct_map(h, ivf, stored_dm, dm_array_at)) != VDX_OK)
        goto fail;
    vdx_free(stored_dm);
    legacy_ids_free(&lg);
    *out = ix;
    return VDX_OK;
failq:
    vdx_index_free(q); /* still ours: ownership passes with make() */
fail:
    vdx_free(stored_dm);
    legacy_ids_free(&lg);
    vdx_index_free(ix);
    return s;
}

vdx_status vdx_io_write_ivf_flat(vdx_writer *w, const vdx_index *ix) {
    vdx_status s = vdx_io_write_ivf_head(w, "IwFl", ix);
    return s ? s : vdx_io_write_ivf_lists(w, (const vdx_ivf *)ix);
}

vdx_status vdx_io_write_ivf_head(vdx_writer *w, const char *fourcc,
                                 const vdx_index *ix) {
    const vdx_ivf *ivf = (const vdx_ivf *)ix;
    vdx_status s = vdx_wr_header(w, fourcc, ix);
    if (s != VDX_OK) return s;
    if ((s = vdx_wr_u64(w, (uint64_t)ivf->nlist)) != VDX_OK) return s;
    if ((s = vdx_wr_u64(w, (uint64_t)ivf->nprobe)) != VDX_OK) return s;
    if ((s = vdx_write_index_rec(w, ivf->quantizer)) != VDX_OK) return s;

    /* direct map: FAISS writes the (possibly empty) array in every case */
    if ((s = vdx_wr_u8(w, ivf->dm ? DM_ARRAY : DM_NONE)) != VDX_OK) return s;
    uint64_t dm_n = ivf->dm ? (uint64_t)ix->ntotal : 0;
    if ((s = vdx_wr_u64(w, dm_n)) != VDX_OK) return s;
    if (dm_n && (s = vdx_wr_bytes(w, ivf->dm, (size_t)dm_n * sizeof(int64_t))) !=
                    VDX_OK)
        return s;
    return VDX_OK;
}

vdx_status vdx_io_write_ivf_lists(vdx_writer *w, const vdx_ivf *ivf) {
    const vdx_invlists *il = ivf->il;
    vdx_status s;
    if (vdx_invlists_ondisk(il)) return vdx_io_write_ondisk_lists(w, ivf);
    if ((s = vdx_wr_bytes(w, "ilar", 4)) != VDX_OK) return s;
    if ((s = vdx_wr_u64(w, (uint64_t)ivf->nlist)) != VDX_OK) return s;
    if ((s = vdx_wr_u64(w, (uint64_t)ivf->code_size)) != VDX_OK) return s;
    int64_t nonempty = 0;
    for (int64_t l = 0; l < ivf->nlist; l++)
        nonempty += il->ops->list_size(il, l) > 0;
    /* FAISS's choice, so that the bytes match its own */
    if (nonempty > ivf->nlist / 2) {
        if ((s = vdx_wr_bytes(w, "full", 4)) != VDX_OK) return s;
        if ((s = vdx_wr_u64(w, (uint64_t)ivf->nlist)) != VDX_OK) return s;
        for (int64_t l = 0; l < ivf->nlist; l++)
            if ((s = vdx_wr_u64(w, (uint64_t)il->ops->list_size(il, l))) !=
                VDX_OK)
                return s;
    } else {
        if ((s = vdx_wr_bytes(w, "sprs", 4)) != VDX_OK) return s;
        if ((s = vdx_wr_u64(w, 2 * (uint64_t)nonempty)) != VDX_OK) return s;
        for (int64_t l = 0; l < ivf->nlist; l++) {
            int64_t n = il->ops->list_size(il, l);
            if (n == 0) continue;
            if ((s = vdx_wr_u64(w, (uint64_t)l)) != VDX_OK) return s;
            if ((s = vdx_wr_u64(w, (uint64_t)n)) != VDX_OK) return s;
        }
    }
    for (int64_t l = 0; l < ivf->nlist; l++) {
        size_t n = (size_t)il->ops->list_size(il, l);
        if (n == 0) continue;
        if ((s = vdx_wr_bytes(w, il->ops->get_codes(il, l),
                              n * ivf->code_size)) != VDX_OK)
            return s;
        if ((s = vdx_wr_bytes(w, il->ops->get_ids(il, l),
                              n * sizeof(vdx_idx_t))) != VDX_OK)
            return s;
    }
    return VDX_OK;
}
