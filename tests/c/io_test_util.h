/*
 * io_test_util.h — what the file-format tests share: where the FAISS-written
 * golden files live, reading a whole file into memory, and reading back
 * damaged copies of a serialized index.
 */
#ifndef VDX_IO_TEST_UTIL_H
#define VDX_IO_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "vecdex.h"

#ifndef VDX_SOURCE_DIR
#define VDX_SOURCE_DIR "."
#endif
#define CORPUS VDX_SOURCE_DIR "/tests/fuzz/corpus/"

/* The bytes of `path` (caller frees) and their count in *n; NULL when the
 * file cannot be opened. */
static inline uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)(len > 0 ? len : 0), f) : 0;
    fclose(f);
    return b;
}

/* xorshift64: the corruption tests' deterministic byte source. */
static inline uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Serializes `ix`, then reads back `rounds` damaged copies of its bytes (1-4
 * bytes replaced or bit-flipped, every fifth copy also cut short): each read
 * either succeeds and the index then answers a search of up to 4-d queries
 * with `p` (or says it is untrained), or fails with a format / unsupported
 * error, a message and no index.  Adds to *ok and *failed. */
static inline void read_damaged_copies(vdx_index *ix, int rounds, uint64_t *seed,
                                       const vdx_search_params *p, int *ok, int *failed) {
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    for (int it = 0; it < rounds; it++) {
        uint8_t *c = malloc(size);
        memcpy(c, buf, size);
        int nflip = 1 + (int)(rng_next(seed) % 4);
        for (int j = 0; j < nflip; j++) {
            size_t pos = rng_next(seed) % size;
            c[pos] = (it & 1) ? (uint8_t)rng_next(seed)
                              : c[pos] ^ (uint8_t)(1u << (rng_next(seed) % 8));
        }
        size_t n = (it % 5 == 0) ? rng_next(seed) % (size + 1) : size;
        vdx_index *r = NULL;
        vdx_status s = vdx_deserialize_index(c, n, &r);
        if (s == VDX_OK) {
            (*ok)++;
            CHECK(r != NULL);
            float q[4] = {0.5f, 0.25f, 0.125f, 1.0f}, dist[2];
            vdx_idx_t lab[2];
            if (r && vdx_index_d(r) <= 4) {
                vdx_status ss = vdx_index_search(r, 1, q, 2, p, dist, lab);
                CHECK(ss == VDX_OK || ss == VDX_ERR_NOT_TRAINED);
            }
        } else {
            (*failed)++;
            CHECK(r == NULL);
            CHECK(vdx_last_error()[0] != 0);
            CHECK(s == VDX_ERR_FORMAT || s == VDX_ERR_UNSUPPORTED);
        }
        vdx_index_free(r);
        free(c);
    }
    vdx_free_buffer(buf);
}

#endif
