/*
 * io_internal.h — private plumbing of the FAISS-compatible reader and
 * writer: a byte source (memory buffer or FILE*) that knows how many bytes
 * remain, a byte sink (growable buffer or FILE*), primitive little-endian
 * read/write helpers, the common FAISS index header, and the tables that
 * map a fourcc to a read function and an index kind to a write function.
 *
 * Adding a new index kind (IVF, PQ, HNSW ...) means writing one
 * `<kind>_io.c` with a read and a write function built on these helpers and
 * adding one line per fourcc / kind to the tables in registry.c.
 *
 * The format is FAISS's own: every index starts with a 4-byte fourcc and,
 * for the kinds handled so far, the header
 *     int32 d, int64 ntotal, int64 dummy, int64 dummy, uint8 is_trained,
 *     int32 metric_type, [float32 metric_arg when metric_type > 1]
 * (the dummies are 1 << 20, written for compatibility, ignored on read);
 * vectors are a uint64 element count followed by the elements.  Integers
 * are stored in the host's byte order, which for FAISS in practice means
 * little-endian; vecdex supports little-endian hosts only.
 *
 * Contract of every read function: it checks each count against the bytes
 * that remain and against sane limits before allocating, raises
 * VDX_ERR_FORMAT (corrupt, truncated), VDX_ERR_UNSUPPORTED (valid but not
 * handled) or VDX_ERR_IO (the OS failed) with a message that names the
 * problem and its offset, and frees everything it built on error.
 */
#ifndef VDX_IO_INTERNAL_H
#define VDX_IO_INTERNAL_H

#include <stdio.h>

#include "../common/common.h"
#include "../index/index_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vecdex reads and writes FAISS files on little-endian hosts only"
/* refine_io.c: IxRF (IndexRefine, IndexRefineFlat) */
VDX_INTERNAL vdx_status vdx_io_read_refine(vdx_reader *r, vdx_io_header *h,
                                           vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_refine(vdx_writer *w,
                                            const vdx_index *ix);

/* hnsw_io.c: IHNf (IndexHNSWFlat), IHNs (IndexHNSWSQ), IHNp (IndexHNSWPQ) */
VDX_INTERNAL int vdx_io_is_hnsw(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_hnsw(vdx_reader *r, vdx_io_header *h,
                                         vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_hnsw(vdx_writer *w, const vdx_index *ix);

#endif

/* Deepest nesting of wrapper indexes (IDMap of IDMap of ...) accepted. */
#define VDX_IO_MAX_DEPTH 16

/* FAISS writes these two header fields (formerly max_codes) as 1 << 20. */
#define VDX_IO_HEADER_DUMMY ((int64_t)1 << 20)

/* ---- byte source ------------------------------------------------------- */
typedef struct vdx_reader {
    const uint8_t *mem; /* memory source, or NULL when reading fp */
    FILE *fp;           /* file source */
    const char *kind;   /* "file" or "buffer", for messages */
    uint64_t size;      /* total bytes of the source */
    uint64_t pos;       /* bytes consumed so far (the current offset) */
    int depth;          /* nesting depth of the index being read */
    int io_flags;
    vdx_mapping *map;   /* non-NULL when mem is a map of the whole file:
                           readers may then borrow arrays (see
                           vdx_rd_borrow) instead of copying them */
    const char *path;   /* the file read, or NULL (for on-disk lists) */
} vdx_reader;

/* FAISS's IO flags (index_io.h); the values are FAISS's. */
#define VDX_IOF_READ_ONLY 2
#define VDX_IOF_ONDISK_SAME_DIR 4
#define VDX_IOF_SKIP_IVF_DATA 8
#define VDX_IOF_SKIP_PRECOMPUTE_TABLE 16
#define VDX_IOF_MMAP_BITS 0x646f0000
#define VDX_IOF_MMAP_IFC (1 << 9)

/* When the source is a file map, consumes n bytes (checked first) and
 * returns a pointer to them in the map, else returns NULL and consumes
 * nothing (the caller then copies with vdx_rd_bytes).  The caller keeps
 * the pointer only together with a reference (vdx_mapping_ref(r->map)). */
VDX_INTERNAL const uint8_t *vdx_rd_borrow(vdx_reader *r, uint64_t n,
                                          const char *what, vdx_status *st);

static inline uint64_t vdx_rd_remaining(const vdx_reader *r) {
    return r->size - r->pos;
}

/* Checks that n more bytes exist, without consuming them; `what` names the
 * field for the message ("truncated file: need 48 bytes of vectors at
 * offset 45, 5 remain"). */
VDX_INTERNAL vdx_status vdx_rd_need(const vdx_reader *r, uint64_t n,
                                    const char *what);
/* Reads exactly n bytes into dst (checked first with vdx_rd_need). */
VDX_INTERNAL vdx_status vdx_rd_bytes(vdx_reader *r, void *dst, uint64_t n,
                                     const char *what);
/* Stored float vectors (n rows of d, read from offset `at`) must be what
 * vdx_index_add accepts: finite and within vdx_max_magnitude(d), so that a
 * file cannot bring in what add refuses.  VDX_ERR_FORMAT names the record
 * ("vector" / "inverted list 3, entry"), row0 + row, column, offset and
 * value. */
VDX_INTERNAL vdx_status vdx_io_check_vectors(const vdx_reader *r,
                                             const float *x, uint64_t n,
                                             int64_t d, uint64_t row0,
                                             uint64_t at, const char *record);
VDX_INTERNAL vdx_status vdx_rd_u8(vdx_reader *r, uint8_t *v, const char *what);
VDX_INTERNAL vdx_status vdx_rd_i32(vdx_reader *r, int32_t *v,
                                   const char *what);
VDX_INTERNAL vdx_status vdx_rd_i64(vdx_reader *r, int64_t *v,
                                   const char *what);
VDX_INTERNAL vdx_status vdx_rd_u64(vdx_reader *r, uint64_t *v,
                                   const char *what);
VDX_INTERNAL vdx_status vdx_rd_f32(vdx_reader *r, float *v, const char *what);

/* Reads the uint64 element count that opens a FAISS vector and checks that
 * it equals `expected` and that count * elem_size bytes remain.  The caller
 * then reads the elements (nothing is allocated here). */
VDX_INTERNAL vdx_status vdx_rd_vector_count(vdx_reader *r, uint64_t elem_size,
                                            uint64_t expected,
                                            const char *what);

/* ---- the common index header ------------------------------------------- */
typedef struct vdx_io_header {
    char fourcc[5];   /* NUL-terminated copy, for messages */
    uint64_t offset;  /* where the index (its fourcc) starts */
    int64_t d;
    int64_t ntotal;
    int is_trained;
    int32_t metric_type; /* FAISS's number */
    float metric_arg;
} vdx_io_header;

/* Reads the header that follows the fourcc (already in h->fourcc and
 * h->offset) and checks it: 1 <= d <= VDX_MAX_DIM, ntotal >= 0, is_trained
 * 0 or 1, metric_type a metric FAISS knows.  Unsupported-but-known metrics
 * pass here; vdx_io_metric rejects them. */
VDX_INTERNAL vdx_status vdx_rd_header(vdx_reader *r, vdx_io_header *h);
/* Maps the header's metric to a vecdex metric, or raises
 * VDX_ERR_UNSUPPORTED naming it (L1, Linf, ...). */
VDX_INTERNAL vdx_status vdx_io_metric(const vdx_io_header *h,
                                      vdx_metric *out);
/* The FAISS name of a metric number ("L1"), or NULL when unknown. */
VDX_INTERNAL const char *vdx_io_metric_name(int32_t metric_type);

/* Reads one index (fourcc, then the kind's body) at the current position,
 * recursing through the fourcc table; enforces VDX_IO_MAX_DEPTH.  On
 * success *out is a new index; on error *out is NULL. */
VDX_INTERNAL vdx_status vdx_read_index_rec(vdx_reader *r, vdx_index **out);

/* ---- byte sink --------------------------------------------------------- */
typedef struct vdx_writer {
    FILE *fp;         /* file sink, or NULL for memory */
    const char *path; /* the file being written, for messages */
    uint8_t *buf;     /* memory sink (vdx_malloc family) */
    size_t len, cap;
    int depth;
    int count_only;   /* a dry run: only len (the bytes) is kept */
} vdx_writer;

VDX_INTERNAL vdx_status vdx_wr_bytes(vdx_writer *w, const void *src,
                                     size_t n);
VDX_INTERNAL vdx_status vdx_wr_u8(vdx_writer *w, uint8_t v);
VDX_INTERNAL vdx_status vdx_wr_i32(vdx_writer *w, int32_t v);
VDX_INTERNAL vdx_status vdx_wr_i64(vdx_writer *w, int64_t v);
VDX_INTERNAL vdx_status vdx_wr_u64(vdx_writer *w, uint64_t v);
VDX_INTERNAL vdx_status vdx_wr_f32(vdx_writer *w, float v);

/* Writes fourcc (4 characters) and the common header of ix. */
VDX_INTERNAL vdx_status vdx_wr_header(vdx_writer *w, const char *fourcc,
                                      const vdx_index *ix);

/* Writes one index, dispatching on its kind through the writer table;
 * VDX_ERR_UNSUPPORTED for a kind with no writer. */
VDX_INTERNAL vdx_status vdx_write_index_rec(vdx_writer *w,
                                            const vdx_index *ix);

/* ---- dispatch tables (registry.c) -------------------------------------- */
/* A read function is called with the fourcc consumed (r->pos is just past
 * it, h->fourcc / h->offset filled in); it reads the header and body. */
typedef vdx_status (*vdx_io_read_fn)(vdx_reader *r, vdx_io_header *h,
                                     vdx_index **out);
typedef vdx_status (*vdx_io_write_fn)(vdx_writer *w, const vdx_index *ix);

typedef struct vdx_io_reader_entry {
    char fourcc[5];
    vdx_io_read_fn read;
} vdx_io_reader_entry;

typedef struct vdx_io_writer_entry {
    int (*matches)(const vdx_index *ix); /* vdx_is_flat, ... */
    vdx_io_write_fn write;
} vdx_io_writer_entry;

VDX_INTERNAL extern const vdx_io_reader_entry vdx_io_readers[];
VDX_INTERNAL extern const size_t vdx_io_nreaders;
VDX_INTERNAL extern const vdx_io_writer_entry vdx_io_writers[];
VDX_INTERNAL extern const size_t vdx_io_nwriters;

/* ---- per-kind readers and writers -------------------------------------- */
/* flat_io.c: IxF2 (L2), IxFI (inner product), IxFl (any metric) */
VDX_INTERNAL vdx_status vdx_io_read_flat(vdx_reader *r, vdx_io_header *h,
                                         vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_flat(vdx_writer *w, const vdx_index *ix);
/* idmap_io.c: IxMp (IndexIDMap), IxM2 (IndexIDMap2) */
VDX_INTERNAL vdx_status vdx_io_read_idmap(vdx_reader *r, vdx_io_header *h,
                                          vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_idmap(vdx_writer *w,
                                           const vdx_index *ix);
/* ivf_io.c: IwFl (IndexIVFFlat with ArrayInvertedLists) */
VDX_INTERNAL int vdx_io_is_ivf_flat(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_ivf_flat(vdx_reader *r, vdx_io_header *h,
                                             vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_ivf_flat(vdx_writer *w,
                                              const vdx_index *ix);
/* The IVF plumbing shared by the IVF kinds (ivf_io.c).  A reader reads the
 * common IVF part (header, nlist, nprobe, quantizer, direct map), then
 * calls make() to read the kind's own fields and build the index from the
 * quantizer q (ownership of q passes to make on success only), then the
 * inverted lists.  A writer writes the head, its own fields, the lists. */
typedef vdx_status (*vdx_io_make_ivf_fn)(vdx_reader *r,
                                         const vdx_io_header *h,
                                         vdx_index *q, uint64_t nlist,
                                         vdx_metric metric, vdx_ivf **out);
VDX_INTERNAL vdx_status vdx_io_read_ivf(vdx_reader *r, vdx_io_header *h,
                                        vdx_io_make_ivf_fn make,
                                        vdx_index **out);
/* VDX_OK when q is a coarse quantizer an IVF file may hold (flat, HNSW,
 * residual coarse, or an IDMap over a flat / HNSW with ids >= 0); else
 * VDX_ERR_UNSUPPORTED (VDX_ERR_FORMAT for a negative id) naming it (q_at:
 * its offset). */
VDX_INTERNAL vdx_status vdx_io_check_ivf_quantizer(const vdx_io_header *h,
                                                   const vdx_index *q,
                                                   uint64_t q_at);
VDX_INTERNAL vdx_status vdx_io_write_ivf_head(vdx_writer *w,
                                              const char *fourcc,
                                              const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_write_ivf_lists(vdx_writer *w,
                                               const vdx_ivf *ivf);
/* fastscan_io.c: FAISS's BlockInvertedLists ("ilbl": fourcc included)
 * from / to flat lists of M 4-bit indices per code (code_size bytes),
 * packed in blocks of bbs vectors with nsq nibbles (quant/fastscan.h); the
 * reader checks every size against h and the bytes that remain. */
VDX_INTERNAL vdx_status vdx_io_read_block_lists(vdx_reader *r,
                                                const vdx_io_header *h,
                                                vdx_ivf *ivf, int64_t M,
                                                int64_t nsq, int64_t bbs,
                                                size_t code_size);
/* The same after the fourcc. */
VDX_INTERNAL vdx_status vdx_io_read_block_lists_body(vdx_reader *r,
                                                     const vdx_io_header *h,
                                                     vdx_ivf *ivf, int64_t M,
                                                     int64_t nsq, int64_t bbs,
                                                     size_t code_size);
/* The block layout of an IVF kind whose files hold "ilbl" lists (aq_io.c:
 * the IVF additive fast-scan kinds): 1 with M, nsq, bbs, code_size set,
 * else 0. */
VDX_INTERNAL int vdx_io_block_layout(const vdx_ivf *ivf, int64_t *M,
                                     int64_t *nsq, int64_t *bbs,
                                     size_t *code_size);
VDX_INTERNAL vdx_status vdx_io_write_block_lists(vdx_writer *w,
                                                 const vdx_ivf *ivf, int64_t M,
                                                 int64_t nsq, int64_t bbs);
/* ondisk_io.c: the "ilod" record (fourcc consumed) and its data file */
VDX_INTERNAL vdx_status vdx_io_read_ondisk_lists(vdx_reader *r,
                                                 const vdx_io_header *h,
                                                 vdx_ivf *ivf);
VDX_INTERNAL vdx_status vdx_io_write_ondisk_lists(vdx_writer *w,
                                                  const vdx_ivf *ivf);
/* pq_io.c: IxPq (IndexPQ), IwPQ (IndexIVFPQ) */
VDX_INTERNAL vdx_status vdx_io_read_index_pq(vdx_reader *r, vdx_io_header *h,
                                             vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_index_pq(vdx_writer *w,
                                              const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_ivfpq(vdx_reader *r, vdx_io_header *h,
                                          vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_ivfpq(vdx_writer *w,
                                           const vdx_index *ix);
VDX_INTERNAL int vdx_io_is_index_pq(const vdx_index *ix);
VDX_INTERNAL int vdx_io_is_ivfpq(const vdx_index *ix);

/* lsh_io.c: IxHe (IndexLSH) */
VDX_INTERNAL int vdx_io_is_lsh(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_lsh(vdx_reader *r, vdx_io_header *h,
                                        vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_lsh(vdx_writer *w, const vdx_index *ix);

/* sq_io.c: IxSQ (IndexScalarQuantizer), IwSq (IndexIVFScalarQuantizer) */
VDX_INTERNAL int vdx_io_is_index_sq(const vdx_index *ix);
VDX_INTERNAL int vdx_io_is_ivfsq(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_index_sq(vdx_reader *r, vdx_io_header *h,
                                             vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_index_sq(vdx_writer *w,
                                              const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_ivfsq(vdx_reader *r, vdx_io_header *h,
                                          vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_ivfsq(vdx_writer *w,
                                           const vdx_index *ix);

/* fastscan_io.c: IPfs (IndexPQFastScan), IwPf (IndexIVFPQFastScan) */
VDX_INTERNAL int vdx_io_is_pqfs(const vdx_index *ix);
VDX_INTERNAL int vdx_io_is_ivfpqfs(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_pqfs(vdx_reader *r, vdx_io_header *h,
                                         vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_pqfs(vdx_writer *w, const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_ivfpqfs(vdx_reader *r, vdx_io_header *h,
                                            vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_ivfpqfs(vdx_writer *w,
                                             const vdx_index *ix);

/* refine_io.c: IxRF (IndexRefine, IndexRefineFlat) */
VDX_INTERNAL vdx_status vdx_io_read_refine(vdx_reader *r, vdx_io_header *h,
                                           vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_refine(vdx_writer *w,
                                            const vdx_index *ix);

/* transform_io.c: IxPT (IndexPreTransform and its vector transforms) */
VDX_INTERNAL int vdx_io_is_pretransform(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_pretransform(vdx_reader *r,
                                                 vdx_io_header *h,
                                                 vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_pretransform(vdx_writer *w,
                                                  const vdx_index *ix);
/* nsg_io.c: INSf / INSp / INSs (IndexNSGFlat / PQ / SQ), INNf
 * (IndexNNDescentFlat) */
VDX_INTERNAL int vdx_io_is_nsg(const vdx_index *ix);
VDX_INTERNAL int vdx_io_is_nndescent(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_nsg(vdx_reader *r, vdx_io_header *h,
                                        vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_nsg(vdx_writer *w, const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_nndescent(vdx_reader *r, vdx_io_header *h,
                                              vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_nndescent(vdx_writer *w,
                                               const vdx_index *ix);
/* hnsw_io.c: IHNf (IndexHNSWFlat), IHNs (IndexHNSWSQ), IHNp (IndexHNSWPQ) */
VDX_INTERNAL int vdx_io_is_hnsw(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_hnsw(vdx_reader *r, vdx_io_header *h,
                                         vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_hnsw(vdx_writer *w, const vdx_index *ix);

/* aq_io.c: IxRq / IxLS / IxPR / IxPL (flat additive-quantizer indexes),
 * ImRQ (ResidualCoarseQuantizer), IwRQ / IwLS / IwPR / IwPL (IVF) */
VDX_INTERNAL int vdx_io_is_index_aq(const vdx_index *ix);
VDX_INTERNAL int vdx_io_is_acq(const vdx_index *ix);
VDX_INTERNAL int vdx_io_is_ivfaq(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_index_aq(vdx_reader *r, vdx_io_header *h,
                                             vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_index_aq(vdx_writer *w,
                                              const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_rcq(vdx_reader *r, vdx_io_header *h,
                                        vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_rcq(vdx_writer *w, const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_ivfaq(vdx_reader *r, vdx_io_header *h,
                                          vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_ivfaq(vdx_writer *w,
                                           const vdx_index *ix);
/* IRfs / ILfs / IPRf / IPLf (the additive fast-scan kinds) */
VDX_INTERNAL int vdx_io_is_aqfs(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_aqfs(vdx_reader *r, vdx_io_header *h,
                                         vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_aqfs(vdx_writer *w, const vdx_index *ix);
/* IVRf / IVLf / NPRf / NPLf (the IVF additive fast-scan kinds) */
VDX_INTERNAL int vdx_io_is_ivfaqfs(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_ivfaqfs(vdx_reader *r, vdx_io_header *h,
                                            vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_ivfaqfs(vdx_writer *w, const vdx_index *ix);

/* pq_io.c: a ProductQuantizer inside another kind's body (d checked
 * against h->d; pq set up, centroids allocated when stored). */
VDX_INTERNAL vdx_status vdx_io_read_pq(vdx_reader *r, const vdx_io_header *h,
                                       vdx_pq *pq);
VDX_INTERNAL vdx_status vdx_io_write_pq(vdx_writer *w, const vdx_pq *pq);
/* index_2layer_io.c: Ix2L (Index2Layer); IHN2 goes through hnsw_io.c */
VDX_INTERNAL int vdx_io_is_2layer(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_io_read_2layer(vdx_reader *r, vdx_io_header *h,
                                           vdx_index **out);
VDX_INTERNAL vdx_status vdx_io_write_2layer(vdx_writer *w,
                                            const vdx_index *ix);

#endif
