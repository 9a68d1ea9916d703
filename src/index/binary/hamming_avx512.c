/*
 * hamming_avx512.c — the Hamming kernel on AVX-512 VPOPCNTDQ (see hamming.h).
 *
 * Short codes (8 bytes: 64 bits) go eight to a register, which is where
 * the vector popcount pays most; long ones (>= 32 bytes) 64 bytes at a time
 * with a masked tail; the sizes in between, where one vector per register
 * would waste most of it, use POPCNT.
 */
#include <immintrin.h>
#include <string.h>

#include "hamming.h"

void vdx_hamming_ny_avx512(int32_t *out, const uint8_t *x, const uint8_t *y,
                           size_t code_size, size_t ny) {
    if (code_size == 8) {
        uint64_t xw;
        memcpy(&xw, x, 8);
        __m512i vx = _mm512_set1_epi64((long long)xw);
        size_t j = 0;
        for (; j + 8 <= ny; j += 8) {
            __m512i v = _mm512_loadu_si512((const void *)(y + 8 * j));
            __m512i c = _mm512_popcnt_epi64(_mm512_xor_si512(v, vx));
            _mm256_storeu_si256((__m256i *)(out + j), _mm512_cvtepi64_epi32(c));
        }
        if (j < ny)
            vdx_hamming_ny_popcnt(out + j, x, y + 8 * j, code_size, ny - j);
        return;
    }
    if (code_size < 32) {
        vdx_hamming_ny_popcnt(out, x, y, code_size, ny);
        return;
    }
    size_t nfull = code_size / 64, rest = code_size % 64;
    __mmask64 tm = rest ? (((__mmask64)1 << rest) - 1) : 0;
    __m512i xt = _mm512_maskz_loadu_epi8(tm, x + 64 * nfull);
    for (size_t j = 0; j < ny; j++) {
        const uint8_t *yj = y + j * code_size;
        __m512i acc = _mm512_setzero_si512();
        for (size_t b = 0; b < nfull; b++) {
            __m512i a = _mm512_loadu_si512((const void *)(x + 64 * b));
            __m512i v = _mm512_loadu_si512((const void *)(yj + 64 * b));
            acc = _mm512_add_epi64(acc,
                                   _mm512_popcnt_epi64(_mm512_xor_si512(a, v)));
        }
        if (rest) {
            __m512i v = _mm512_maskz_loadu_epi8(tm, yj + 64 * nfull);
            acc = _mm512_add_epi64(acc,
                                   _mm512_popcnt_epi64(_mm512_xor_si512(xt, v)));
        }
        out[j] = (int32_t)_mm512_reduce_add_epi64(acc);
    }
}
