/*
 * io_test_util.h — what the file-format tests share: where the FAISS-written
 * golden files live, and reading a whole file into memory.
 */
#ifndef VDX_IO_TEST_UTIL_H
#define VDX_IO_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
