/*
 * hamming.h — private header of the binary indexes: the Hamming kernels.
 *
 * A binary code is code_size bytes (d bits, d a multiple of 8); the distance
 * of two codes is the popcount of their XOR.  Three kernels compute
 * out[j] = popcount(x ^ y_j): the portable reference (hamming.c), one built
 * with POPCNT (hamming_popcnt.c, the "avx2" level: every AVX2 CPU has it)
 * and one with AVX-512 VPOPCNTDQ (hamming_avx512.c).  The choice follows
 * the SIMD level in use (VECDEX_SIMD, vdx_set_simd_level), so the tests
 * compare them by switching levels.
 */
#ifndef VDX_HAMMING_H
#define VDX_HAMMING_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

typedef void (*vdx_hamming_ny_fn)(int32_t *out, const uint8_t *x,
                                  const uint8_t *y, size_t code_size,
                                  size_t ny);

VDX_INTERNAL void vdx_hamming_ny_scalar(int32_t *out, const uint8_t *x,
                                        const uint8_t *y, size_t code_size,
                                        size_t ny);
VDX_INTERNAL void vdx_hamming_ny_popcnt(int32_t *out, const uint8_t *x,
                                        const uint8_t *y, size_t code_size,
                                        size_t ny);
VDX_INTERNAL void vdx_hamming_ny_avx512(int32_t *out, const uint8_t *x,
                                        const uint8_t *y, size_t code_size,
                                        size_t ny);

/* The kernel of the SIMD level in use (VPOPCNTDQ only where the CPU has it). */
VDX_INTERNAL vdx_hamming_ny_fn vdx_hamming_ny_get(void);

#endif
