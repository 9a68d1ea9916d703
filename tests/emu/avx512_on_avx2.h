/*
 * avx512_on_avx2.h — test builds only (cmake -DVDX_EMULATE_AVX512=ON): the
 * AVX-512 sources are compiled with this header forced in front of them and
 * without -mavx512*, so that their intrinsics run on SIMDe's portable
 * implementations (on top of AVX2).  This lets the level-equivalence tests
 * run the AVX-512 kernels on a machine that has no AVX-512; it says nothing
 * about their speed.
 *
 * SIMDe 0.7 aliases most _mm512_* names itself; the few it leaves to the
 * compiler are defined below.  The masked loads and stores touch only the
 * lanes of the mask, as the instructions do (no fault past an array's end),
 * and need no alignment, as the instructions need none (a lane is copied
 * with memcpy: a memory-mapped flat's vectors sit at odd offsets).
 */
#ifndef VDX_AVX512_ON_AVX2_H
#define VDX_AVX512_ON_AVX2_H

#include <string.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#if defined(__AVX512F__)
#error "avx512_on_avx2.h is for builds without -mavx512f"
#endif

static inline simde__m512 vdx_emu_maskz_loadu_ps(simde__mmask16 m,
                                                 const void *p) {
    const unsigned char *f = (const unsigned char *)p;
    float v[16];
    for (int i = 0; i < 16; i++) {
        v[i] = 0.0f;
        if ((m >> i) & 1) memcpy(&v[i], f + 4 * i, 4);
    }
    return simde_mm512_loadu_ps(v);
}

static inline void vdx_emu_mask_storeu_ps(void *p, simde__mmask16 m,
                                          simde__m512 a) {
    unsigned char *f = (unsigned char *)p;
    float v[16];
    simde_mm512_storeu_ps(v, a);
    for (int i = 0; i < 16; i++)
        if ((m >> i) & 1) memcpy(f + 4 * i, &v[i], 4);
}

/* the halving order of the compiler's own sequence */
static inline float vdx_emu_reduce_add_ps(simde__m512 a) {
    float v[16];
    simde_mm512_storeu_ps(v, a);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) v[i] += v[i + w];
    return v[0];
}

#undef _mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#undef _mm512_reduce_add_ps
#undef _mm512_mask_cmp_ps_mask
#undef _mm256_cmple_epu16_mask
#undef _mm512_shuffle_i64x2
#define _mm512_maskz_loadu_ps(m, p) vdx_emu_maskz_loadu_ps((m), (p))
#define _mm512_mask_storeu_ps(p, m, a) vdx_emu_mask_storeu_ps((p), (m), (a))
#define _mm512_reduce_add_ps(a) vdx_emu_reduce_add_ps(a)
#define _mm512_mask_cmp_ps_mask(k, a, b, imm) \
    ((simde__mmask16)((k) & simde_mm512_cmp_ps_mask((a), (b), (imm))))
#define _mm256_cmple_epu16_mask(a, b) simde_mm256_cmple_epu16_mask((a), (b))
/* a 128-bit lane shuffle: the 32- and 64-bit forms differ only in masking */
#define _mm512_shuffle_i64x2(a, b, imm) simde_mm512_shuffle_i32x4((a), (b), (imm))

/* 16-bit lane adds and subtractions wrap, as the instructions do (SIMDe's
 * portable forms add signed shorts, which UBSan reports on overflow) */
static inline simde__m512i vdx_emu_addsub_epi16(simde__m512i a, simde__m512i b,
                                                int sub) {
    uint16_t x[32], y[32];
    simde_mm512_storeu_si512(x, a);
    simde_mm512_storeu_si512(y, b);
    for (int i = 0; i < 32; i++)
        x[i] = (uint16_t)(sub ? (unsigned)x[i] - y[i] : (unsigned)x[i] + y[i]);
    return simde_mm512_loadu_si512(x);
}
#undef _mm512_add_epi16
#undef _mm512_sub_epi16
#define _mm512_add_epi16(a, b) vdx_emu_addsub_epi16((a), (b), 0)
#define _mm512_sub_epi16(a, b) vdx_emu_addsub_epi16((a), (b), 1)

#endif
