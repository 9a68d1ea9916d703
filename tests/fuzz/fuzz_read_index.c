/*
 * fuzz_read_index.c — libFuzzer target for the FAISS-format reader.
 *
 * Any input must either be rejected with an error status or load into an
 * index that can be searched and written again; a successful load must also
 * survive a round trip: serialize -> deserialize -> serialize gives the same
 * bytes (a fixpoint).  Crashes, leaks and sanitizer reports are findings;
 * a broken invariant aborts.
 *
 * Build with clang -fsanitize=fuzzer (VDX_BUILD_FUZZ=ON), or with any
 * compiler together with driver.c to replay files (fuzz_replay_read_index).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vecdex.h"

static void die(const char *what) {
    fprintf(stderr, "fuzz_read_index: %s: %s\n", what, vdx_last_error());
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vdx_index *ix = NULL;
    vdx_status s = vdx_deserialize_index(data, size, &ix);
    if (s != VDX_OK) {
        if (ix) die("error status but an index was returned");
        if (vdx_last_error()[0] == 0) die("error without a message");
        return 0;
    }
    if (!ix) die("VDX_OK without an index");

    int64_t d = vdx_index_d(ix);
    float *q = calloc((size_t)d, sizeof(float));
    float dist[3];
    vdx_idx_t lab[3];
    if (!q) abort();
    for (int64_t j = 0; j < d; j++) q[j] = (float)(j % 7) * 0.5f;
    s = vdx_index_search(ix, 1, q, 3, NULL, dist, lab);
    /* a stored nprobe of 0 reads (as in FAISS) and is refused by search */
    if (s == VDX_ERR_INVALID_ARGUMENT && strstr(vdx_last_error(), "nprobe=0"))
        s = VDX_OK;
    if (s != VDX_OK && s != VDX_ERR_NOT_TRAINED) die("search failed");
    if (vdx_index_is_ivf(ix)) {
        /* every list, not just the default nprobe ones */
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.nprobe = vdx_index_ivf_nlist(ix);
        s = vdx_index_search(ix, 1, q, 3, &p, dist, lab);
        if (s != VDX_OK && s != VDX_ERR_NOT_TRAINED) die("IVF search failed");
        /* the direct map, when there is one, must point into the lists */
        int64_t nt = vdx_index_ntotal(ix);
        for (int64_t i = 0; i < nt && i < 64; i++) {
            s = vdx_index_reconstruct(ix, i, q);
            if (s == VDX_ERR_UNSUPPORTED) break; /* no direct map */
            if (s != VDX_OK) die("reconstruct failed");
        }
    }
    free(q);

    uint8_t *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    vdx_index *ix2 = NULL;
    if (vdx_serialize_index(ix, &b1, &n1) != VDX_OK) die("serialize failed");
    if (vdx_deserialize_index(b1, n1, &ix2) != VDX_OK)
        die("re-reading our own output failed");
    if (vdx_serialize_index(ix2, &b2, &n2) != VDX_OK)
        die("second serialize failed");
    if (n1 != n2 || memcmp(b1, b2, n1) != 0) die("round trip is not a fixpoint");
    if (vdx_index_ntotal(ix2) != vdx_index_ntotal(ix)) die("ntotal changed");

    vdx_free_buffer(b1);
    vdx_free_buffer(b2);
    vdx_index_free(ix2);
    vdx_index_free(ix);
    return 0;
}
