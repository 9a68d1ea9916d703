/*
 * fastscan_io.c — the 4-bit fast-scan PQ kinds in FAISS's format.
 *
 * ProductQuantizer: uint64 d, M, nbits (4 here), a vector of d * 16
 *   float32 centroids (as pq_io.c).
 * IndexPQFastScan, fourcc "IPfs": the common header, the ProductQuantizer,
 *   int32 implem, int32 bbs, int32 qbs, uint64 ntotal2 (ntotal rounded up
 *   to bbs), uint64 M2 (M rounded up to even), then the packed blocks as a
 *   vector of ntotal2 * M2 / 2 bytes (layout in quant/fastscan.h).
 * IndexIVFPQFastScan, fourcc "IwPf": the IVF head (as ivf_io.c: uint64
 *   nlist, nprobe, the quantizer, the direct map), uint8 by_residual,
 *   uint64 code_size, int32 bbs, uint64 M2, int32 implem, uint64 qbs2, the
 *   ProductQuantizer, then the lists as FAISS's BlockInvertedLists,
 *   "ilbl": uint64 nlist, code_size (FAISS writes SIZE_MAX), n_per_block
 *   (= bbs), block_size (= bbs * M2 / 2), and per list a vector of int64 ids
 *   and a vector of ceil(n / bbs) * block_size bytes of packed blocks.
 *   vecdex keeps flat codes in its lists: they are unpacked on read and
 *   packed on write.
 * Checks: nbits = 4, M dividing d, bbs a multiple of 32 in 32..4096, M2,
 * ntotal2, code_size and block sizes equal to what d, M, bbs imply, every
 * count against the bytes that remain before allocating, list sizes adding
 * up to ntotal, finite centroids, an untrained index empty, a flat
 * quantizer holding nlist centroids when trained.
 */
#include <inttypes.h>
#include <string.h>

#include "io_internal.h"
#include "index/index_fastscan.h"

#define FS_MAX_NLIST ((uint64_t)1 << 31)
#define FS_MAX_NLIST_UNTRAINED ((uint64_t)1 << 20)

int vdx_io_is_pqfs(const vdx_index *ix) { return vdx_is_pqfs(ix); }
int vdx_io_is_ivfpqfs(const vdx_index *ix) { return vdx_is_ivfpqfs(ix); }

/* The ProductQuantizer of a fast-scan index (pq_io.c's reader), which
 * must have 4-bit sub-quantizers. */
static vdx_status read_pq4(vdx_reader *r, const vdx_io_header *h, vdx_pq *pq) {
    uint64_t at = r->pos;
    vdx_status s = vdx_io_read_pq(r, h, pq);
    if (s) return s;
    if (pq->nbits != 4)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: product quantizer at offset %" PRIu64
                         " has nbits=%d (fast scan needs 4)",
                         h->fourcc, at, pq->nbits);
    if (h->is_trained == 0) {
        /* FAISS sizes the table at construction: an untrained index
         * carries zeros that mean nothing */
        vdx_free(pq->centroids);
        pq->centroids = NULL;
    }
    return VDX_OK;
}

/* An untrained index's PQ is written as zeros, which read_pq4 drops: a
 * training that failed part way leaves centroids that mean nothing, and a
 * copy must serialize to the same bytes (found by fuzz_ops). */
static vdx_status write_pq4(vdx_writer *w, const vdx_index *ix,
                            const vdx_pq *pq) {
    vdx_pq shown = *pq;
    if (!ix->is_trained) shown.centroids = NULL;
    return vdx_io_write_pq(w, &shown);
}

static vdx_status check_bbs(const vdx_io_header *h, int32_t bbs, uint64_t at) {
    if (bbs < 32 || bbs % 32 != 0 || bbs > VDX_FS_BBS_MAX)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: bbs=%d at offset %" PRIu64 " is not a "
                         "multiple of 32 in 32..%d",
                         h->fourcc, (int)bbs, at, VDX_FS_BBS_MAX);
    return VDX_OK;
}

/* ---- IndexPQFastScan ---------------------------------------------------- */

vdx_status vdx_io_read_pqfs(vdx_reader *r, vdx_io_header *h, vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    if (!h->is_trained && h->ntotal != 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " is not trained but "
                         "holds ntotal=%" PRId64 " vectors",
                         h->fourcc, h->offset, h->ntotal);
    vdx_pq pq;
    memset(&pq, 0, sizeof pq);
    vdx_index *ix = NULL;
    int32_t implem, bbs, qbs;
    uint64_t ntotal2, M2, bbs_at;
    if ((s = read_pq4(r, h, &pq))) goto fail;
    if (h->is_trained && !pq.centroids) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index at offset %" PRIu64
                      " is trained but has no PQ centroids",
                      h->fourcc, h->offset);
        goto fail;
    }
    if ((s = vdx_rd_i32(r, &implem, "fast-scan implem"))) goto fail;
    bbs_at = r->pos;
    if ((s = vdx_rd_i32(r, &bbs, "fast-scan bbs")) ||
        (s = vdx_rd_i32(r, &qbs, "fast-scan qbs")) ||
        (s = check_bbs(h, bbs, bbs_at)) ||
        (s = vdx_rd_u64(r, &ntotal2, "fast-scan ntotal2")) ||
        (s = vdx_rd_u64(r, &M2, "fast-scan M2")))
        goto fail;
    uint64_t want2 = ((uint64_t)h->ntotal + (uint64_t)bbs - 1) /
                     (uint64_t)bbs * (uint64_t)bbs;
    if (M2 != (uint64_t)(pq.M + 1) / 2 * 2 || ntotal2 != want2) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 ": M2=%" PRIu64
                      ", ntotal2=%" PRIu64 " (expected %" PRId64 ", %" PRIu64
                      " for M=%" PRId64 ", ntotal=%" PRId64 ", bbs=%d)",
                      h->fourcc, h->offset, M2, ntotal2,
                      (pq.M + 1) / 2 * 2, want2, pq.M, h->ntotal, (int)bbs);
        goto fail;
    }
    uint64_t nbytes = ntotal2 * (M2 / 2);
    if ((s = vdx_rd_vector_count(r, 1, nbytes, "fast-scan codes"))) goto fail;
    if ((s = vdx_index_pq_fastscan_new(h->d, pq.M, 4, metric, bbs, &ix)))
        goto fail;
    vdx_pqfs *p = (vdx_pqfs *)(void *)ix;
    p->pq.centroids = pq.centroids; /* handed over */
    pq.centroids = NULL;
    p->implem = implem;
    p->qbs = qbs;
    if ((s = vdx_pqfs_reserve(p, (int64_t)ntotal2))) goto fail;
    if ((s = vdx_rd_bytes(r, p->codes, nbytes, "fast-scan codes"))) goto fail;
    /* slots past ntotal must read as zero codes, as freshly added blocks */
    for (int64_t i = h->ntotal; i < (int64_t)ntotal2; i++)
        for (int64_t m = 0; m < p->nsq; m++)
            vdx_fs_set(p->codes, p->bbs, p->nsq, i, m, 0);
    ix->ntotal = h->ntotal;
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    *out = ix;
    return VDX_OK;
fail:
    vdx_index_free(ix);
    vdx_pq_clear(&pq);
    return s;
}

vdx_status vdx_io_write_pqfs(vdx_writer *w, const vdx_index *ix) {
    const vdx_pqfs *p = (const vdx_pqfs *)(const void *)ix;
    vdx_status s = vdx_wr_header(w, "IPfs", ix);
    if (s || (s = write_pq4(w, ix, &p->pq))) return s;
    uint64_t ntotal2 = ((uint64_t)ix->ntotal + (uint64_t)p->bbs - 1) /
                       (uint64_t)p->bbs * (uint64_t)p->bbs;
    uint64_t nbytes = ntotal2 * (uint64_t)(p->nsq / 2);
    if ((s = vdx_wr_i32(w, p->implem)) || (s = vdx_wr_i32(w, (int32_t)p->bbs)) ||
        (s = vdx_wr_i32(w, p->qbs)) || (s = vdx_wr_u64(w, ntotal2)) ||
        (s = vdx_wr_u64(w, (uint64_t)p->nsq)) || (s = vdx_wr_u64(w, nbytes)))
        return s;
    if (nbytes && (s = vdx_wr_bytes(w, p->codes, (size_t)nbytes))) return s;
    return VDX_OK;
}

/* ---- IndexIVFPQFastScan --------------------------------------------------- */

/* The "ilbl" lists into ivf's (flat) inverted lists: M 4-bit indices per
 * code (code_size bytes), packed in blocks of bbs with nsq nibbles. */
vdx_status vdx_io_read_block_lists(vdx_reader *r, const vdx_io_header *h,
                                   vdx_ivf *ivf, int64_t M, int64_t nsq,
                                   int64_t bbs, size_t code_size) {
    char type[5];
    uint64_t at = r->pos;
    vdx_status s = vdx_rd_bytes(r, type, 4, "inverted lists type");
    if (s) return s;
    type[4] = 0;
    if (!memcmp(type, "il00", 4) && h->ntotal == 0) return VDX_OK;
    if (memcmp(type, "ilbl", 4))
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: expected block inverted lists ('ilbl') "
                         "at offset %" PRIu64,
                         h->fourcc, at);
    return vdx_io_read_block_lists_body(r, h, ivf, M, nsq, bbs, code_size);
}

vdx_status vdx_io_read_block_lists_body(vdx_reader *r, const vdx_io_header *h,
                                        vdx_ivf *ivf, int64_t M, int64_t nsq,
                                        int64_t bbs, size_t code_size) {
    vdx_status s;
    uint64_t nlist, cs, npb, bsz, hat = r->pos;
    if ((s = vdx_rd_u64(r, &nlist, "ilbl nlist")) ||
        (s = vdx_rd_u64(r, &cs, "ilbl code_size")) ||
        (s = vdx_rd_u64(r, &npb, "ilbl n_per_block")) ||
        (s = vdx_rd_u64(r, &bsz, "ilbl block_size")))
        return s;
    uint64_t want_bsz = (uint64_t)vdx_fs_block_size(nsq, bbs);
    if (nlist != (uint64_t)ivf->nlist || npb != (uint64_t)bbs ||
        bsz != want_bsz || (cs != UINT64_MAX && cs != code_size))
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: block lists at offset %" PRIu64
                         " have nlist=%" PRIu64 ", n_per_block=%" PRIu64
                         ", block_size=%" PRIu64 " (expected %" PRId64
                         ", %" PRId64 ", %" PRIu64 ")",
                         h->fourcc, hat, nlist, npb, bsz, ivf->nlist,
                         bbs, want_bsz);
    uint64_t total = 0;
    vdx_idx_t *ids = NULL;
    uint8_t *blocks = NULL, *flat = NULL;
    for (uint64_t l = 0; l < nlist && !s; l++) {
        uint64_t n, nb, lat = r->pos;
        if ((s = vdx_rd_u64(r, &n, "list size"))) break;
        if (n > (uint64_t)h->ntotal - total) {
            s = vdx_raise(VDX_ERR_FORMAT,
                          "%s index: list %" PRIu64 " at offset %" PRIu64
                          " holds %" PRIu64 " entries, more than the %" PRIu64
                          " left of ntotal=%" PRId64,
                          h->fourcc, l, lat, n, (uint64_t)h->ntotal - total,
                          h->ntotal);
            break;
        }
        if ((s = vdx_rd_need(r, n * sizeof(vdx_idx_t), "list ids"))) break;
        total += n;
        vdx_free(ids);
        vdx_free(blocks);
        vdx_free(flat);
        ids = NULL, blocks = NULL, flat = NULL;
        uint64_t want = (n + (uint64_t)bbs - 1) / (uint64_t)bbs * bsz;
        ids = vdx_malloc_array((size_t)(n ? n : 1), sizeof(vdx_idx_t));
        if (!ids) {
            s = VDX_ERR_OUT_OF_MEMORY;
            break;
        }
        if ((s = vdx_rd_bytes(r, ids, n * sizeof(vdx_idx_t), "list ids")) ||
            (s = vdx_rd_vector_count(r, 1, want, "list blocks")))
            break;
        nb = want;
        blocks = vdx_malloc_array((size_t)(nb ? nb : 1), 1);
        flat = vdx_malloc_array((size_t)(n ? n : 1), code_size);
        if (!blocks || !flat) {
            s = VDX_ERR_OUT_OF_MEMORY;
            break;
        }
        if ((s = vdx_rd_bytes(r, blocks, nb, "list blocks"))) break;
        for (uint64_t i = 0; i < n; i++)
            vdx_fs_unpack_1(blocks, bbs, nsq, M, (int64_t)i,
                            flat + i * code_size);
        if (n)
            s = ivf->il->ops->add_entries(ivf->il, (int64_t)l, (int64_t)n,
                                            ids, flat);
    }
    vdx_free(ids);
    vdx_free(blocks);
    vdx_free(flat);
    if (!s && total != (uint64_t)h->ntotal)
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 ": the lists hold %" PRIu64
                      " entries, the header says ntotal=%" PRId64,
                      h->fourcc, h->offset, total, h->ntotal);
    return s;
}

vdx_status vdx_io_read_ivfpqfs(vdx_reader *r, vdx_io_header *h,
                               vdx_index **out) {
    vdx_status s = vdx_rd_header(r, h);
    if (s) return s;
    vdx_metric metric;
    if ((s = vdx_io_metric(h, &metric))) return s;
    uint64_t nlist, nprobe, nlist_at = r->pos;
    if ((s = vdx_rd_u64(r, &nlist, "IVF nlist")) ||
        (s = vdx_rd_u64(r, &nprobe, "IVF nprobe")))
        return s;
    if (nlist < 1 || nlist > FS_MAX_NLIST)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: nlist=%" PRIu64 " at offset %" PRIu64
                         " is out of range 1..2^31",
                         h->fourcc, nlist, nlist_at);
    /* nothing in an untrained index's file bounds its list count (same cap
     * and message as the IVF reader) */
    if (!h->is_trained && nlist > FS_MAX_NLIST_UNTRAINED)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index: nlist=%" PRIu64 " at offset %" PRIu64
                         " exceeds the limit of 2^20 lists for an untrained "
                         "index",
                         h->fourcc, nlist, nlist_at);
    if (!h->is_trained && h->ntotal != 0)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s index at offset %" PRIu64 " is not trained but "
                         "holds ntotal=%" PRId64 " vectors",
                         h->fourcc, h->offset, h->ntotal);
    uint64_t q_at = r->pos;
    vdx_index *q = NULL, *ix = NULL;
    vdx_pq pq;
    memset(&pq, 0, sizeof pq);
    if ((s = vdx_read_index_rec(r, &q))) return s;
    /* the same coarse quantizers as the other IVF readers: the fast-scan
     * lists reach theirs through search and reconstruct only */
    if ((s = vdx_io_check_ivf_quantizer(h, q, q_at))) goto failq;
    if (q->d != h->d || (h->is_trained && (uint64_t)q->ntotal != nlist)) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 ": its quantizer at "
                      "offset %" PRIu64 " must be of d=%" PRId64
                      " holding nlist=%" PRIu64 " centroids when trained",
                      h->fourcc, h->offset, q_at, h->d, nlist);
        goto failq;
    }
    uint8_t dm_type, by_residual;
    uint64_t dm_at = r->pos;
    if ((s = vdx_rd_u8(r, &dm_type, "direct map type"))) goto failq;
    if (dm_type > 1) {
        s = vdx_raise(dm_type == 2 ? VDX_ERR_UNSUPPORTED : VDX_ERR_FORMAT,
                      "%s index: direct map type %u at offset %" PRIu64
                      " (vecdex reads none (0) or array (1))",
                      h->fourcc, dm_type, dm_at);
        goto failq;
    }
    uint64_t dm_n = dm_type ? (uint64_t)h->ntotal : 0;
    if ((s = vdx_rd_vector_count(r, sizeof(int64_t), dm_n, "direct map")) ||
        (s = vdx_rd_need(r, dm_n * sizeof(int64_t), "direct map")))
        goto failq;
    for (uint64_t i = 0; i < dm_n && !s; i++) {
        int64_t skip;
        s = vdx_rd_i64(r, &skip, "direct map");
    }
    if (s) goto failq;
    uint64_t code_size, M2, qbs2, f_at = r->pos;
    int32_t bbs, implem;
    if ((s = vdx_rd_u8(r, &by_residual, "by_residual")) ||
        (s = vdx_rd_u64(r, &code_size, "code_size")) ||
        (s = vdx_rd_i32(r, &bbs, "bbs")) || (s = vdx_rd_u64(r, &M2, "M2")) ||
        (s = vdx_rd_i32(r, &implem, "implem")) ||
        (s = vdx_rd_u64(r, &qbs2, "qbs2")))
        goto failq;
    if ((s = check_bbs(h, bbs, f_at + 9))) goto failq;
    if (by_residual > 1) {
        s = vdx_raise(VDX_ERR_FORMAT, "%s index: by_residual=%u at offset "
                      "%" PRIu64 " is not a bool", h->fourcc, by_residual, f_at);
        goto failq;
    }
    if ((s = read_pq4(r, h, &pq))) goto failq;
    if (code_size != pq.code_size || M2 != (uint64_t)(pq.M + 1) / 2 * 2 ||
        (h->is_trained && !pq.centroids)) {
        s = vdx_raise(VDX_ERR_FORMAT,
                      "%s index at offset %" PRIu64 ": code_size=%" PRIu64
                      ", M2=%" PRIu64 " disagree with the product quantizer "
                      "(M=%" PRId64 ") or its centroids are missing",
                      h->fourcc, h->offset, code_size, M2, pq.M);
        goto failq;
    }
    vdx_ivfpqfs *p = NULL;
    if ((s = vdx_ivfpqfs_alloc(q, h->d, (int64_t)nlist, pq.M, metric, bbs,
                               by_residual, &p)))
        goto failq;
    ix = &p->ivf.base;
    p->pq.centroids = pq.centroids;
    pq.centroids = NULL;
    p->implem = implem;
    p->qbs2 = qbs2;
    ix->is_trained = h->is_trained;
    ix->metric_arg = h->metric_arg;
    p->ivf.nprobe = nprobe > nlist ? (int64_t)nlist : (int64_t)nprobe;
    if ((s = vdx_io_read_block_lists(r, h, &p->ivf, p->pq.M, p->nsq, p->bbs,
                                      p->pq.code_size)))
        goto fail;
    ix->ntotal = h->ntotal;
    if (dm_type && (s = vdx_index_ivf_make_direct_map(ix, 1))) goto fail;
    *out = ix;
    return VDX_OK;
failq:
    vdx_index_free(q);
fail:
    vdx_index_free(ix);
    vdx_pq_clear(&pq);
    return s;
}

vdx_status vdx_io_write_ivfpqfs(vdx_writer *w, const vdx_index *ix) {
    const vdx_ivfpqfs *p = (const vdx_ivfpqfs *)(const void *)ix;
    vdx_status s = vdx_io_write_ivf_head(w, "IwPf", ix);
    if (s || (s = vdx_wr_u8(w, (uint8_t)p->by_residual)) ||
        (s = vdx_wr_u64(w, p->pq.code_size)) ||
        (s = vdx_wr_i32(w, (int32_t)p->bbs)) ||
        (s = vdx_wr_u64(w, (uint64_t)p->nsq)) ||
        (s = vdx_wr_i32(w, p->implem)) || (s = vdx_wr_u64(w, p->qbs2)) ||
        (s = write_pq4(w, ix, &p->pq)))
        return s;
    return vdx_io_write_block_lists(w, &p->ivf, p->pq.M, p->nsq, p->bbs);
}

/* The "ilbl" record of ivf's flat lists (see vdx_io_read_block_lists). */
vdx_status vdx_io_write_block_lists(vdx_writer *w, const vdx_ivf *ivf,
                                    int64_t M, int64_t nsq, int64_t bbs) {
    const vdx_invlists *il = ivf->il;
    vdx_status s = VDX_OK;
    const size_t bsz = vdx_fs_block_size(nsq, bbs);
    if ((s = vdx_wr_bytes(w, "ilbl", 4)) ||
        (s = vdx_wr_u64(w, (uint64_t)ivf->nlist)) ||
        (s = vdx_wr_u64(w, UINT64_MAX)) || /* FAISS: INVALID_CODE_SIZE */
        (s = vdx_wr_u64(w, (uint64_t)bbs)) || (s = vdx_wr_u64(w, bsz)))
        return s;
    uint8_t *blocks = NULL;
    size_t cap = 0;
    for (int64_t l = 0; l < ivf->nlist && !s; l++) {
        int64_t n = il->ops->list_size(il, l);
        size_t nbytes = (size_t)((n + bbs - 1) / bbs) * bsz;
        if ((s = vdx_wr_u64(w, (uint64_t)n))) break;
        if (n && (s = vdx_wr_bytes(w, il->ops->get_ids(il, l),
                                   (size_t)n * sizeof(vdx_idx_t))))
            break;
        if (nbytes > cap) {
            uint8_t *b = vdx_realloc_array(blocks, nbytes, 1);
            if (!b) {
                s = VDX_ERR_OUT_OF_MEMORY;
                break;
            }
            blocks = b;
            cap = nbytes;
        }
        if (nbytes) {
            memset(blocks, 0, nbytes);
            vdx_fs_pack(il->ops->get_codes(il, l), n, M, bbs, nsq,
                        blocks, 0);
        }
        if ((s = vdx_wr_u64(w, nbytes))) break;
        if (nbytes && (s = vdx_wr_bytes(w, blocks, nbytes))) break;
    }
    vdx_free(blocks);
    return s;
}
