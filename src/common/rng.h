/*
 * rng.h — a small deterministic generator (splitmix64 seeding xoshiro-like
 * xorshift*), so that every seeded algorithm reproduces across platforms.
 */
#ifndef VDX_RNG_H
#define VDX_RNG_H

#include <stdint.h>

typedef struct { uint64_t s; } vdx_rng;

static inline void vdx_rng_seed(vdx_rng *r, uint64_t seed) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    r->s = (z ^ (z >> 31)) | 1;
}

static inline uint64_t vdx_rng_next(vdx_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* uniform in [0, n) (n > 0); the modulo bias is negligible for n << 2^64 */
static inline uint64_t vdx_rng_below(vdx_rng *r, uint64_t n) {
    return vdx_rng_next(r) % n;
}

/* uniform float in [0, 1) */
static inline float vdx_rng_float(vdx_rng *r) {
    return (float)(vdx_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

#endif
