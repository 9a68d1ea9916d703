/* test_selector.c — membership of every selector kind against the set it
 * describes, computed independently. */
#include "test.h"

static void test_kinds(void) {
    vdx_selector *r, *b, *a, *bm, *n, *and_, *or_;
    CHECK_OK(vdx_selector_range(10, 20, &r));
    int64_t ids[] = {3, 15, 99, -7, 1LL << 40, 15};
    CHECK_OK(vdx_selector_batch(6, ids, &b));
    CHECK_OK(vdx_selector_array(6, ids, &a));
    uint8_t bits[4] = {0x81, 0x00, 0xff, 0x10}; /* ids 0, 7, 16..23, 28 */
    CHECK_OK(vdx_selector_bitmap(4, bits, &bm));
    CHECK_OK(vdx_selector_not(r, &n));
    CHECK_OK(vdx_selector_and(r, b, &and_));
    CHECK_OK(vdx_selector_or(bm, b, &or_));
    int bad = 0;
    for (int64_t id = -10; id < 120; id++) {
        int in_r = id >= 10 && id < 20;
        int in_b = id == 3 || id == 15 || id == 99 || id == -7;
        int in_bm = id == 0 || id == 7 || (id >= 16 && id <= 23) || id == 28;
        bad += vdx_selector_is_member(r, id) != in_r;
        bad += vdx_selector_is_member(b, id) != in_b;
        bad += vdx_selector_is_member(a, id) != in_b;
        bad += vdx_selector_is_member(bm, id) != in_bm;
        bad += vdx_selector_is_member(n, id) != !in_r;
        bad += vdx_selector_is_member(and_, id) != (in_r && in_b);
        bad += vdx_selector_is_member(or_, id) != (in_bm || in_b);
    }
    CHECK(bad == 0);
    CHECK(vdx_selector_is_member(b, 1LL << 40));
    CHECK(vdx_selector_is_member(a, 1LL << 40));
    CHECK(!vdx_selector_is_member(b, INT64_MIN));
    CHECK(!vdx_selector_is_member(NULL, 3));
    vdx_selector *objs[] = {r, b, a, bm, n, and_, or_};
    for (int i = 0; i < 7; i++) vdx_selector_free(objs[i]);
}

static void test_large_batch(void) {
    int64_t n = 100000;
    int64_t *ids = malloc(n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) ids[i] = i * 3;
    vdx_selector *b;
    CHECK_OK(vdx_selector_batch(n, ids, &b));
    int bad = 0;
    for (int64_t i = 0; i < 3 * n; i++) bad += vdx_selector_is_member(b, i) != (i % 3 == 0);
    CHECK(bad == 0);
    vdx_selector_free(b);
    free(ids);
}

static void test_bad(void) {
    vdx_selector *s = NULL;
    CHECK_ERR(vdx_selector_batch(-1, NULL, &s), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_selector_batch(3, NULL, &s), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_selector_array(-2, NULL, &s), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_selector_bitmap(5, NULL, &s), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_selector_not(NULL, &s), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_selector_range(0, 1, NULL), VDX_ERR_INVALID_ARGUMENT);
    /* empty sets are fine */
    CHECK_OK(vdx_selector_batch(0, NULL, &s));
    CHECK(!vdx_selector_is_member(s, 0));
    vdx_selector_free(s);
    vdx_selector_free(NULL);
}

int main(void) {
    RUN(test_kinds);
    RUN(test_large_batch);
    RUN(test_bad);
    return TEST_SUMMARY();
}
