/*
 * dispatch.c — picks the kernel table once: the highest level the CPU
 * reports (cpuid) and the OS saves the registers of (xgetbv), lowered by
 * VECDEX_SIMD when set; vdx_set_simd_level changes it at run time.
 */
#include <cpuid.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "vecdex.h"

static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/* 0 = scalar, 1 = avx2 (+fma), 2 = avx512 (f, bw, vl, dq) */
static int machine_level(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    int f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return 0;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0; /* XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1;
    if (!(avx2 && fma && f16c)) return 0;
    int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) &&
                 ((b >> 31) & 1); /* f, dq, bw, vl */
    if (avx512 && (xcr0 & 0xe6) == 0xe6) return 2; /* opmask, ZMM state */
#ifdef VDX_EMULATED_AVX512
    return 2; /* test build: the AVX-512 kernels run on SIMDe (CMakeLists) */
#else
    return 1;
#endif
}

static const vdx_kernels *table_of(int level) {
    return level >= 2 ? &vdx_kernels_avx512
           : level == 1 ? &vdx_kernels_avx2
                        : &vdx_kernels_scalar;
}

static int level_of_name(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "scalar")) return 0;
    if (!strcmp(s, "avx2")) return 1;
    if (!strcmp(s, "avx512")) return 2;
    return -1;
}

const vdx_kernels *vdx_kernels_level(const char *name) {
    int want = level_of_name(name);
    if (want < 0 || want > machine_level()) return NULL;
    return table_of(want);
}

/* The table in use: chosen on first use (the machine's level, lowered by
 * VECDEX_SIMD), replaced by vdx_set_simd_level.  Readers load it once per
 * call, so a call in flight keeps the table it started with. */
static const vdx_kernels *chosen;

static const vdx_kernels *default_table(void) {
    int level = machine_level();
    int forced = level_of_name(getenv("VECDEX_SIMD"));
    if (forced >= 0 && forced < level) level = forced;
    return table_of(level);
}

const vdx_kernels *vdx_kernels_get(void) {
    const vdx_kernels *k = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (k) return k;
    k = default_table(); /* benign race: all threads agree */
    __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    return k;
}

int vdx_simd_level_available(const char *name) {
    int want = level_of_name(name);
    return want >= 0 && want <= machine_level();
}

const char *vdx_simd_level_default(void) { return default_table()->name; }

vdx_status vdx_set_simd_level(const char *name) {
    vdx_clear_error();
    const vdx_kernels *k;
    if (name == NULL || name[0] == '\0') {
        k = default_table();
    } else {
        int want = level_of_name(name);
        if (want < 0)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "set_simd_level: unknown level '%s' (expected "
                             "scalar, avx2 or avx512)", name);
        if (want > machine_level())
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "set_simd_level: level '%s' is above what this "
                             "CPU supports ('%s')", name,
                             table_of(machine_level())->name);
        k = table_of(want);
    }
    __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    return VDX_OK;
}
