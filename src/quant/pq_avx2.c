/*
 * pq_avx2.c — the ADC table-lookup scan for nbits = 8 with AVX2: eight
 * codes at a time, one gather per sub-quantizer fetching table[m][code_i[m]]
 * for the eight codes, so the sum over m runs in 8 lanes.  Compiled for
 * the avx2 target attribute (so the file needs no special build flags);
 * called only when the CPU has it (vdx_pq_have_avx2).
 *
 * The sums are accumulated in the same order as the scalar reference (m
 * ascending, one float add per m), so the results are bit-identical.
 */
#if defined(__GNUC__) && !defined(__AVX2__)
#pragma GCC target("avx2")
#endif
#include <immintrin.h>

#include "pq.h"

void vdx_pq_scan8_avx2(const float *table, int64_t M, const uint8_t *codes,
                       size_t n, float *keys) {
    const size_t cs = (size_t)M;
    size_t i = 0;
    {
        for (; i + 8 <= n; i += 8) {
            const uint8_t *c = codes + i * cs;
            __m256 acc = _mm256_setzero_ps();
            for (int64_t m = 0; m < M; m++) {
                /* bytes c[j * cs + m], j = 0..7 */
                __m256i idx = _mm256_setr_epi32(
                    c[m], c[cs + m], c[2 * cs + m], c[3 * cs + m],
                    c[4 * cs + m], c[5 * cs + m], c[6 * cs + m], c[7 * cs + m]);
                __m256 v = _mm256_i32gather_ps(table + m * 256, idx, 4);
                acc = _mm256_add_ps(acc, v);
            }
            _mm256_storeu_ps(keys + i, acc);
        }
    }
    for (; i < n; i++) {
        const uint8_t *c = codes + i * cs;
        float s = 0;
        for (int64_t m = 0; m < M; m++) s += table[m * 256 + c[m]];
        keys[i] = s;
    }
}
