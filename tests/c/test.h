/*
 * test.h — a tiny test harness for the C unit tests.  Each test file defines
 * test functions, lists them in main with RUN(fn), and ends with
 * `return TEST_SUMMARY();`, which prints "N passed, N failed".
 */
#ifndef VDX_TEST_H
#define VDX_TEST_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vecdex.h"

static int test_failed_checks = 0;
static int test_cur_failed = 0;
static int tests_passed = 0, tests_failed = 0;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                        \
            test_failed_checks++;                                            \
            test_cur_failed = 1;                                             \
        }                                                                    \
    } while (0)

#define CHECK_OK(expr)                                                       \
    do {                                                                     \
        vdx_status s_ = (expr);                                              \
        if (s_ != VDX_OK) {                                                  \
            fprintf(stderr, "  %s:%d: %s -> %s: %s\n", __FILE__, __LINE__,   \
                    #expr, vdx_status_name(s_), vdx_last_error());           \
            test_failed_checks++;                                            \
            test_cur_failed = 1;                                             \
        }                                                                    \
    } while (0)

/* expr must fail with `code` and leave a non-empty message */
#define CHECK_ERR(expr, code)                                                \
    do {                                                                     \
        vdx_status s_ = (expr);                                              \
        if (s_ != (code) || vdx_last_error()[0] == 0) {                      \
            fprintf(stderr, "  %s:%d: %s -> %s (want %s), msg '%s'\n",      \
                    __FILE__, __LINE__, #expr, vdx_status_name(s_),          \
                    vdx_status_name(code), vdx_last_error());                \
            test_failed_checks++;                                            \
            test_cur_failed = 1;                                             \
        }                                                                    \
    } while (0)

#define RUN(fn)                                                              \
    do {                                                                     \
        test_cur_failed = 0;                                                 \
        fn();                                                                \
        if (test_cur_failed) {                                               \
            tests_failed++;                                                  \
            fprintf(stderr, "FAIL %s\n", #fn);                               \
        } else {                                                             \
            tests_passed++;                                                  \
            printf("ok   %s\n", #fn);                                        \
        }                                                                    \
    } while (0)

#define TEST_SUMMARY()                                                       \
    (printf("%d passed, %d failed\n", tests_passed, tests_failed),          \
     tests_failed ? 1 : 0)

/* Deterministic uniform [0,1) floats (xorshift), independent of the library. */
static inline void test_rand_fill(float *x, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

#endif
