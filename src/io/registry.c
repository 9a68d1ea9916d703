/*
 * registry.c — the dispatch tables of the FAISS-format reader and writer.
 * A new index kind plugs in by adding its fourccs to vdx_io_readers and its
 * kind test to vdx_io_writers (declarations in io_internal.h).  The writer
 * table is scanned in order: list wrappers before the kinds they could be
 * mistaken for, should a test ever match more than one kind.
 */
#include "io_internal.h"

const vdx_io_reader_entry vdx_io_readers[] = {
    {"IxF2", vdx_io_read_flat},     /* IndexFlatL2 */
    {"IxFI", vdx_io_read_flat},     /* IndexFlatIP */
    {"IxFl", vdx_io_read_flat},     /* IndexFlat (metric in the header) */
    {"IxMp", vdx_io_read_idmap},    /* IndexIDMap */
    {"IxM2", vdx_io_read_idmap},    /* IndexIDMap2 */
    {"IwFl", vdx_io_read_ivf_flat}, /* IndexIVFFlat */
    {"IvFL", vdx_io_read_ivf_flat}, /* IndexIVFFlat, legacy layout */
    {"IvFl", vdx_io_read_ivf_flat}, /* IndexIVFFlat, older legacy layout */
    {"IxSQ", vdx_io_read_index_sq}, /* IndexScalarQuantizer */
    {"IwSq", vdx_io_read_ivfsq},    /* IndexIVFScalarQuantizer */
    {"IwSQ", vdx_io_read_ivfsq},    /* IndexIVFScalarQuantizer, older */
    {"IvSQ", vdx_io_read_ivfsq},    /* IndexIVFScalarQuantizer, legacy */
    {"IxPq", vdx_io_read_index_pq}, /* IndexPQ */
    {"IxPQ", vdx_io_read_index_pq}, /* IndexPQ, older layout */
    {"IxPo", vdx_io_read_index_pq}, /* IndexPQ, older layout */
    {"IwPQ", vdx_io_read_ivfpq},    /* IndexIVFPQ */
    {"IvPQ", vdx_io_read_ivfpq},    /* IndexIVFPQ, legacy layout */
    {"IxHe", vdx_io_read_lsh},      /* IndexLSH */
    {"IxRF", vdx_io_read_refine},   /* IndexRefine, IndexRefineFlat */
    {"IxPT", vdx_io_read_pretransform}, /* IndexPreTransform */
    {"IHNf", vdx_io_read_hnsw},     /* IndexHNSWFlat */
    {"IHNs", vdx_io_read_hnsw},     /* IndexHNSWSQ */
    {"IHNp", vdx_io_read_hnsw},     /* IndexHNSWPQ */
    {"IHN2", vdx_io_read_hnsw},     /* IndexHNSW2Level */
    {"INSf", vdx_io_read_nsg},      /* IndexNSGFlat */
    {"INSp", vdx_io_read_nsg},      /* IndexNSGPQ */
    {"INSs", vdx_io_read_nsg},      /* IndexNSGSQ */
    {"INNf", vdx_io_read_nndescent}, /* IndexNNDescentFlat */
    {"Ix2L", vdx_io_read_2layer},   /* Index2Layer */
    {"IPfs", vdx_io_read_pqfs},     /* IndexPQFastScan */
    {"IwPf", vdx_io_read_ivfpqfs},  /* IndexIVFPQFastScan */
    {"IxRq", vdx_io_read_index_aq}, /* IndexResidualQuantizer */
    {"IxLS", vdx_io_read_index_aq}, /* IndexLocalSearchQuantizer */
    {"IxPR", vdx_io_read_index_aq}, /* IndexProductResidualQuantizer */
    {"IxPL", vdx_io_read_index_aq}, /* IndexProductLocalSearchQuantizer */
    {"ImRQ", vdx_io_read_rcq},      /* ResidualCoarseQuantizer */
    {"IwRQ", vdx_io_read_ivfaq},    /* IndexIVFResidualQuantizer */
    {"IwLS", vdx_io_read_ivfaq},    /* IndexIVFLocalSearchQuantizer */
    {"IwPR", vdx_io_read_ivfaq},    /* IndexIVFProductResidualQuantizer */
    {"IwPL", vdx_io_read_ivfaq},    /* IndexIVFProductLocalSearchQuantizer */
    {"IRfs", vdx_io_read_aqfs},     /* IndexResidualQuantizerFastScan */
    {"ILfs", vdx_io_read_aqfs},     /* IndexLocalSearchQuantizerFastScan */
    {"IPRf", vdx_io_read_aqfs},     /* IndexProductResidualQuantizerFastScan */
    {"IPLf", vdx_io_read_aqfs},     /* IndexProductLocalSearchQuantizerFastScan */
    {"IVRf", vdx_io_read_ivfaqfs},  /* IndexIVFResidualQuantizerFastScan */
    {"IVLf", vdx_io_read_ivfaqfs},  /* IndexIVFLocalSearchQuantizerFastScan */
    {"NPRf", vdx_io_read_ivfaqfs},  /* IndexIVFProductResidualQuantizerFastScan */
    {"NPLf", vdx_io_read_ivfaqfs},  /* IndexIVFProductLocalSearchQuantizerFastScan */
};
const size_t vdx_io_nreaders =
    sizeof vdx_io_readers / sizeof vdx_io_readers[0];

const vdx_io_writer_entry vdx_io_writers[] = {
    {vdx_is_idmap, vdx_io_write_idmap},
    {vdx_is_refine, vdx_io_write_refine},
    {vdx_io_is_pretransform, vdx_io_write_pretransform},
    {vdx_is_flat, vdx_io_write_flat},
    {vdx_io_is_ivf_flat, vdx_io_write_ivf_flat},
    {vdx_io_is_index_sq, vdx_io_write_index_sq},
    {vdx_io_is_ivfsq, vdx_io_write_ivfsq},
    {vdx_io_is_index_pq, vdx_io_write_index_pq},
    {vdx_io_is_ivfpq, vdx_io_write_ivfpq},
    {vdx_io_is_lsh, vdx_io_write_lsh},
    {vdx_io_is_hnsw, vdx_io_write_hnsw},
    {vdx_io_is_nsg, vdx_io_write_nsg},
    {vdx_io_is_nndescent, vdx_io_write_nndescent},
    {vdx_io_is_2layer, vdx_io_write_2layer},
    {vdx_io_is_pqfs, vdx_io_write_pqfs},
    {vdx_io_is_ivfpqfs, vdx_io_write_ivfpqfs},
    {vdx_io_is_index_aq, vdx_io_write_index_aq},
    {vdx_io_is_acq, vdx_io_write_rcq},
    {vdx_io_is_ivfaq, vdx_io_write_ivfaq},
    {vdx_io_is_aqfs, vdx_io_write_aqfs},
    {vdx_io_is_ivfaqfs, vdx_io_write_ivfaqfs},
};
const size_t vdx_io_nwriters =
    sizeof vdx_io_writers / sizeof vdx_io_writers[0];
