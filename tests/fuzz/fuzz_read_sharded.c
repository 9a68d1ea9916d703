/*
 * fuzz_read_sharded.c — libFuzzer target for the sharded-directory reader
 * (src/io/shards_io.c: vecdex-manifest.txt and what it names).
 *
 * Input: the manifest's bytes, written into a scratch directory that also
 * holds shard-0.faissindex and shard-1.faissindex (IndexFlatL2, d = 4,
 * 3 vectors each), quantizer.faissindex (IndexFlatL2, d = 4, 2 vectors)
 * and a sub-directory shard-2 with a valid manifest of its own.
 * vdx_read_sharded must fail with a message, or return an index of a
 * shards kind whose d and ntotal match its sub-indexes and that answers a
 * search.  A broken invariant aborts.
 *
 * Seeds: tests/fuzz/corpus_read_sharded (make_seeds.py).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vecdex.h"

static char dir[64];

static void write_flat(const char *name, int n) {
    vdx_index *ix = NULL;
    float x[3 * 4];
    for (int i = 0; i < 3 * 4; i++) x[i] = (float)i / 7.0f;
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (vdx_index_flat_new(4, VDX_METRIC_L2, &ix) || vdx_index_add(ix, n, x) ||
        vdx_write_index(ix, path))
        abort();
    vdx_index_free(ix);
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void cleanup(void) { nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS); }

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/vdx_fuzz_sharded_XXXXXX");
    if (!mkdtemp(dir)) abort();
    atexit(cleanup);
    write_flat("shard-0.faissindex", 3);
    write_flat("shard-1.faissindex", 3);
    write_flat("quantizer.faissindex", 2);
    /* shard-2: a sharded directory of its own (two flat shards) */
    vdx_index *sh = NULL, *a = NULL, *b = NULL;
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    char path[256];
    snprintf(path, sizeof path, "%s/shard-2", dir);
    if (vdx_index_shards_new(4, 0, 1, &sh) ||
        vdx_index_flat_new(4, VDX_METRIC_L2, &a) ||
        vdx_index_flat_new(4, VDX_METRIC_L2, &b) ||
        vdx_index_shards_add(sh, a, 1) || vdx_index_shards_add(sh, b, 1) ||
        vdx_index_add(sh, 2, x) || vdx_write_sharded(sh, path))
        abort();
    vdx_index_free(sh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) setup();
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, VDX_SHARDS_MANIFEST);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    vdx_index *ix = NULL;
    vdx_status st = vdx_read_sharded(dir, 0, &ix);
    if (st) {
        if (ix || !vdx_last_error()[0]) {
            fprintf(stderr, "fuzz_read_sharded: failure without a message\n");
            abort();
        }
        return 0;
    }
    if (!vdx_index_is_shards(ix)) abort();
    int64_t total = 0, n = vdx_index_shards_count(ix);
    for (int64_t i = 0; i < n; i++) {
        vdx_index *s = vdx_index_shards_at(ix, i);
        if (!s || vdx_index_d(s) != vdx_index_d(ix)) abort();
        total += vdx_index_ntotal(s);
    }
    if (vdx_index_is_shards(ix) != 2 && total != vdx_index_ntotal(ix)) abort();
    if (vdx_index_d(ix) == 4 && vdx_index_is_trained(ix) && n > 0) {
        float q[4] = {0.5f, 0.5f, 0.5f, 0.5f}, D[2];
        vdx_idx_t I[2];
        vdx_status s2 = vdx_index_search(ix, 1, q, 2, NULL, D, I);
        if (s2 && s2 != VDX_ERR_NOT_TRAINED) {
            fprintf(stderr, "fuzz_read_sharded: search failed: %s\n", vdx_last_error());
            abort();
        }
    }
    vdx_index_free(ix);
    return 0;
}
