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

/* ---- Mersenne Twister (MT19937, Matsumoto & Nishimura 1998) -------------
 * The generator of C++'s std::mt19937, which FAISS seeds with its k-means
 * seed: drawing the k-means sample and initial centroids with it (see
 * vdx_mt_perm_prefix) picks the same points FAISS picks for the same seed. */
typedef struct {
    uint32_t mt[624];
    int i;
} vdx_mt19937;

static inline void vdx_mt_seed(vdx_mt19937 *g, uint32_t seed) {
    g->mt[0] = seed;
    for (int i = 1; i < 624; i++)
        g->mt[i] = 1812433253u * (g->mt[i - 1] ^ (g->mt[i - 1] >> 30)) + (uint32_t)i;
    g->i = 624;
}

static inline uint32_t vdx_mt_next(vdx_mt19937 *g) {
    if (g->i >= 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (g->mt[k] & 0x80000000u) | (g->mt[(k + 1) % 624] & 0x7fffffffu);
            g->mt[k] = g->mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        g->i = 0;
    }
    uint32_t y = g->mt[g->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

#endif
