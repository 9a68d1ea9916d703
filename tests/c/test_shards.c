/* test_shards.c — IndexShards, IndexReplicas, IndexShardsIVF: results equal
 * to one index of the same kind (exactly, for exact indexes), parameters
 * and selectors forwarded, errors naming the shard, removal, files, and
 * vdx_merge_knn_results against a brute-force merge. */
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

enum { D = 16, NB = 3000, NQ = 50 };

static float xb[NB * D], xq[NQ * D];

static void data(void) {
    test_rand_fill(xb, NB * D, 11);
    test_rand_fill(xq, NQ * D, 12);
}

/* a single flat index over xb */
static vdx_index *single_flat(vdx_metric m) {
    vdx_index *f;
    CHECK_OK(vdx_index_flat_new(D, m, &f));
    CHECK_OK(vdx_index_add(f, NB, xb));
    return f;
}

static int same_results(int64_t n, int64_t k, const float *D1,
                        const vdx_idx_t *I1, const float *D2,
                        const vdx_idx_t *I2) {
    return !memcmp(D1, D2, (size_t)(n * k) * sizeof(float)) &&
           !memcmp(I1, I2, (size_t)(n * k) * sizeof(vdx_idx_t));
}

static void test_flat_equals_single(void) {
    int64_t k = 10;
    float *D1 = malloc(sizeof(float) * NQ * 5000), *D2 = malloc(sizeof(float) * NQ * 5000);
    vdx_idx_t *I1 = malloc(sizeof(vdx_idx_t) * NQ * 5000), *I2 = malloc(sizeof(vdx_idx_t) * NQ * 5000);
    for (int metric = 0; metric < 2; metric++)
        for (int threaded = 0; threaded < 2; threaded++)
            for (int nsh = 1; nsh <= 5; nsh += 2) {
                vdx_index *one = single_flat((vdx_metric)metric), *sh;
                CHECK_OK(vdx_index_shards_new(D, threaded, 1, &sh));
                for (int s = 0; s < nsh; s++) {
                    vdx_index *f;
                    CHECK_OK(vdx_index_flat_new(D, (vdx_metric)metric, &f));
                    CHECK_OK(vdx_index_shards_add(sh, f, 1));
                }
                CHECK(vdx_index_shards_count(sh) == nsh);
                CHECK_OK(vdx_index_add(sh, NB, xb));
                CHECK(vdx_index_ntotal(sh) == NB);
                CHECK(vdx_index_ntotal(vdx_index_shards_at(sh, 0)) == NB / nsh);
                /* k below, at and above the shard sizes */
                int64_t ks[] = {1, k, NB / nsh + 3, NB + 7};
                for (int t = 0; t < 4; t++) {
                    int64_t kk = ks[t];
                    int64_t nq = kk > 100 ? 3 : NQ;
                    CHECK_OK(vdx_index_search(one, nq, xq, kk, NULL, D1, I1));
                    CHECK_OK(vdx_index_search(sh, nq, xq, kk, NULL, D2, I2));
                    CHECK(same_results(nq, kk, D1, I1, D2, I2));
                }
                /* the selector reaches every shard, in global ids */
                vdx_selector *sel;
                CHECK_OK(vdx_selector_range(NB / 3 - 50, NB / 3 + 700, &sel));
                vdx_search_params p;
                vdx_search_params_init(&p);
                p.sel = sel;
                CHECK_OK(vdx_index_search(one, NQ, xq, k, &p, D1, I1));
                CHECK_OK(vdx_index_search(sh, NQ, xq, k, &p, D2, I2));
                CHECK(same_results(NQ, k, D1, I1, D2, I2));
                for (int i = 0; i < NQ * k; i++)
                    CHECK(I2[i] >= NB / 3 - 50 && I2[i] < NB / 3 + 700);
                /* range search: the same hits (order may differ: compare sets) */
                vdx_range_result *r1, *r2;
                float radius = metric == VDX_METRIC_L2 ? 0.6f : 5.0f;
                CHECK_OK(vdx_index_range_search(one, 5, xq, radius, &p, &r1));
                CHECK_OK(vdx_index_range_search(sh, 5, xq, radius, &p, &r2));
                for (int q = 0; q < 5; q++) {
                    CHECK(r1->lims[q + 1] - r1->lims[q] == r2->lims[q + 1] - r2->lims[q]);
                    for (int64_t j = r2->lims[q]; j < r2->lims[q + 1]; j++) {
                        int found = 0;
                        for (int64_t u = r1->lims[q]; u < r1->lims[q + 1]; u++)
                            found |= r1->labels[u] == r2->labels[j];
                        CHECK(found);
                    }
                }
                vdx_range_result_free(r1);
                vdx_range_result_free(r2);
                /* reconstruct by global position */
                float v[D], w[D * 4];
                CHECK_OK(vdx_index_reconstruct(sh, NB - 1, v));
                CHECK(!memcmp(v, xb + (NB - 1) * D, sizeof v));
                int64_t r0 = nsh > 1 ? NB / nsh - 2 : 10; /* across shards */
                CHECK_OK(vdx_index_reconstruct_n(sh, r0, 4, w));
                CHECK(!memcmp(w, xb + r0 * D, sizeof w));
                CHECK_ERR(vdx_index_reconstruct(sh, NB, v), VDX_ERR_NOT_FOUND);
                /* removal renumbers as one flat index does */
                int64_t nr1, nr2;
                CHECK_OK(vdx_index_remove_ids(one, sel, &nr1));
                CHECK_OK(vdx_index_remove_ids(sh, sel, &nr2));
                CHECK(nr1 == 750 && nr2 == 750 && vdx_index_ntotal(sh) == NB - 750);
                CHECK_OK(vdx_index_search(one, NQ, xq, k, NULL, D1, I1));
                CHECK_OK(vdx_index_search(sh, NQ, xq, k, NULL, D2, I2));
                CHECK(same_results(NQ, k, D1, I1, D2, I2));
                /* a second add would renumber: refused, as in FAISS */
                CHECK_ERR(vdx_index_add(sh, 1, xb), VDX_ERR_INVALID_ARGUMENT);
                CHECK(strstr(vdx_last_error(), "single pass") != NULL);
                vdx_idx_t id = 5;
                CHECK_ERR(vdx_index_add_with_ids(sh, 1, xb, &id), VDX_ERR_INVALID_ARGUMENT);
                vdx_selector_free(sel);
                vdx_index_free(one);
                vdx_index_free(sh);
            }
    free(D1);
    free(D2);
    free(I1);
    free(I2);
}

static void test_ids_and_errors(void) {
    int64_t k = 5;
    float D1[NQ * 5], D2[NQ * 5];
    vdx_idx_t I1[NQ * 5], I2[NQ * 5];
    /* successive_ids = 0: the shards store ids (IDMap) */
    vdx_index *sh, *one = single_flat(VDX_METRIC_L2);
    CHECK_OK(vdx_index_shards_new(0, 1, 0, &sh)); /* d from the first */
    for (int s = 0; s < 3; s++) {
        vdx_index *f, *m;
        CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &f));
        CHECK_OK(vdx_index_idmap_new(f, &m));
        CHECK_OK(vdx_index_shards_add(sh, m, 1));
    }
    CHECK(vdx_index_d(sh) == D);
    CHECK_OK(vdx_index_add(sh, NB / 2, xb)); /* ids 0 .. NB/2-1 */
    CHECK_OK(vdx_index_add(sh, NB - NB / 2, xb + (NB / 2) * D)); /* and on */
    CHECK_OK(vdx_index_search(one, NQ, xq, k, NULL, D1, I1));
    CHECK_OK(vdx_index_search(sh, NQ, xq, k, NULL, D2, I2));
    CHECK(same_results(NQ, k, D1, I1, D2, I2));
    vdx_index_free(sh);

    /* Flat shards cannot store ids: the error names the shard */
    CHECK_OK(vdx_index_shards_new(D, 0, 0, &sh));
    for (int s = 0; s < 2; s++) {
        vdx_index *f;
        CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &f));
        CHECK_OK(vdx_index_shards_add(sh, f, 1));
    }
    CHECK_ERR(vdx_index_add(sh, 10, xb), VDX_ERR_UNSUPPORTED);
    CHECK(strstr(vdx_last_error(), "shard 0 of 2 (IndexFlatL2) failed") != NULL);
    CHECK(strstr(vdx_last_error(), "1 more shard failed") != NULL);
    vdx_index_free(sh);

    /* a shard that cannot do the call fails it, named; no partial result */
    CHECK_OK(vdx_index_shards_new(D, 1, 1, &sh));
    vdx_index *f, *base, *rf;
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &f));
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &base));
    CHECK_OK(vdx_index_refine_flat_new(base, &rf));
    CHECK_OK(vdx_index_shards_add(sh, f, 1));
    CHECK_OK(vdx_index_shards_add(sh, rf, 1));
    CHECK_OK(vdx_index_add(sh, NB, xb));
    /* (IndexRefineFlat has range search since stop 30: the shards' range
     * search then equals a flat's over the same vectors) */
    vdx_range_result *r = NULL, *rr = NULL;
    vdx_index *all = NULL;
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &all));
    CHECK_OK(vdx_index_add(all, NB, xb));
    CHECK_OK(vdx_index_range_search(sh, 2, xq, 0.5f, NULL, &r));
    CHECK_OK(vdx_index_range_search(all, 2, xq, 0.5f, NULL, &rr));
    CHECK(r && rr && r->lims[2] == rr->lims[2] && rr->lims[2] > 0);
    vdx_range_result_free(r);
    vdx_range_result_free(rr);
    vdx_index_free(all);
    /* membership checks */
    vdx_index *g;
    CHECK_OK(vdx_index_flat_new(D + 1, VDX_METRIC_L2, &g));
    CHECK_ERR(vdx_index_shards_add(sh, g, 0), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "expected d=16") != NULL);
    vdx_index_free(g);
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_INNER_PRODUCT, &g));
    CHECK_ERR(vdx_index_shards_add(sh, g, 0), VDX_ERR_INVALID_ARGUMENT);
    vdx_index_free(g);
    CHECK_ERR(vdx_index_shards_add(sh, f, 0), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_shards_add(sh, sh, 0), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_shards_remove(sh, one), VDX_ERR_NOT_FOUND);
    CHECK_OK(vdx_index_shards_remove(sh, rf)); /* owned: freed */
    CHECK(vdx_index_ntotal(sh) == NB - NB / 2 && vdx_index_shards_count(sh) == 1);
    vdx_index_free(sh);
    /* empty */
    CHECK_OK(vdx_index_shards_new(D, 0, 1, &sh));
    CHECK(vdx_index_is_trained(sh)); /* nothing to train */
    CHECK_ERR(vdx_index_search(sh, 1, xq, 1, NULL, D1, I1), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "no shards") != NULL);
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &g));
    CHECK_ERR(vdx_index_shards_add(NULL, g, 0), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_shards_add(g, sh, 0), VDX_ERR_INVALID_ARGUMENT);
    vdx_index_free(g);
    vdx_index_free(sh);
    vdx_index_free(one);
}

static void test_replicas(void) {
    int64_t k = 8;
    float D1[NQ * 8], D2[NQ * 8];
    vdx_idx_t I1[NQ * 8], I2[NQ * 8];
    for (int threaded = 0; threaded < 2; threaded++) {
        /* IVF replicas: the nprobe of the call reaches each of them */
        vdx_index *one, *rep;
        CHECK_OK(vdx_index_factory(D, "IVF32,Flat", VDX_METRIC_L2, &one));
        CHECK_OK(vdx_index_train(one, NB, xb));
        CHECK_OK(vdx_index_add(one, NB, xb));
        CHECK_OK(vdx_index_replicas_new(D, threaded, &rep));
        uint8_t *buf;
        size_t size;
        CHECK_OK(vdx_serialize_index(one, &buf, &size));
        for (int r = 0; r < 3; r++) {
            vdx_index *c;
            CHECK_OK(vdx_deserialize_index(buf, size, &c));
            CHECK_OK(vdx_index_shards_add(rep, c, 1));
        }
        vdx_free_buffer(buf);
        CHECK(vdx_index_is_shards(rep) == 2 && vdx_index_ntotal(rep) == NB);
        vdx_search_params p;
        vdx_search_params_init(&p);
        for (int np = 1; np <= 32; np *= 4) {
            p.nprobe = np;
            CHECK_OK(vdx_index_search(one, NQ, xq, k, &p, D1, I1));
            CHECK_OK(vdx_index_search(rep, NQ, xq, k, &p, D2, I2));
            CHECK(same_results(NQ, k, D1, I1, D2, I2));
        }
        /* fewer queries than replicas */
        CHECK_OK(vdx_index_search(one, 2, xq, k, &p, D1, I1));
        CHECK_OK(vdx_index_search(rep, 2, xq, k, &p, D2, I2));
        CHECK(same_results(2, k, D1, I1, D2, I2));
        vdx_range_result *r1, *r2;
        CHECK_OK(vdx_index_range_search(one, 7, xq, 0.5f, &p, &r1));
        CHECK_OK(vdx_index_range_search(rep, 7, xq, 0.5f, &p, &r2));
        CHECK(r1->lims[7] == r2->lims[7] && !memcmp(r1->lims, r2->lims, 8 * sizeof(int64_t)));
        vdx_range_result_free(r1);
        vdx_range_result_free(r2);
        /* adds and removals go to all */
        CHECK_OK(vdx_index_add(rep, 10, xq));
        CHECK(vdx_index_ntotal(rep) == NB + 10);
        for (int r = 0; r < 3; r++) CHECK(vdx_index_ntotal(vdx_index_shards_at(rep, r)) == NB + 10);
        vdx_selector *sel;
        CHECK_OK(vdx_selector_range(0, 100, &sel));
        int64_t nr;
        CHECK_OK(vdx_index_remove_ids(rep, sel, &nr));
        CHECK(nr == 100 && vdx_index_ntotal(rep) == NB - 90);
        vdx_selector_free(sel);
        /* a replica with other contents is refused */
        vdx_index *g;
        CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &g));
        CHECK_ERR(vdx_index_shards_add(rep, g, 0), VDX_ERR_INVALID_ARGUMENT);
        CHECK(strstr(vdx_last_error(), "replica 0 holds") != NULL);
        vdx_index_free(g);
        vdx_index_free(rep);
        vdx_index_free(one);
    }
}

/* IndexShardsIVF against one IVF index with the same centroids, and
 * against IndexShards of IVF shards: same results, selector kept */
static void test_shards_ivf(void) {
    int64_t k = 10, nlist = 40;
    float *D1 = malloc(sizeof(float) * NQ * 10), *D2 = malloc(sizeof(float) * NQ * 10);
    vdx_idx_t *I1 = malloc(sizeof(vdx_idx_t) * NQ * 10), *I2 = malloc(sizeof(vdx_idx_t) * NQ * 10);
    const char *kinds[] = {"IVF40,Flat", "IVF40,SQ8", "IVF40,PQ4"};
    for (int kd = 0; kd < 3; kd++)
        for (int threaded = 0; threaded < 2; threaded++) {
            vdx_index *q, *sh;
            CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &q));
            CHECK_OK(vdx_index_shards_ivf_new(q, nlist, threaded, 0, &sh));
            CHECK(vdx_index_is_shards(sh) == 3 && vdx_index_shards_ivf_quantizer(sh) == q);
            for (int s = 0; s < 3; s++) {
                vdx_index *ivf;
                CHECK_OK(vdx_index_factory(D, kinds[kd], VDX_METRIC_L2, &ivf));
                CHECK_OK(vdx_index_shards_add(sh, ivf, 1));
            }
            vdx_index *flat;
            CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &flat));
            CHECK_ERR(vdx_index_shards_add(sh, flat, 0), VDX_ERR_INVALID_ARGUMENT);
            vdx_index_free(flat);
            CHECK(!vdx_index_is_trained(sh));
            CHECK_OK(vdx_index_train(sh, NB, xb));
            CHECK(vdx_index_is_trained(sh));
            CHECK_OK(vdx_index_add(sh, NB, xb));
            CHECK(vdx_index_ntotal(sh) == NB);
            /* the single reference: quantizer and codebooks of shard 0 */
            uint8_t *buf;
            size_t size;
            CHECK_OK(vdx_serialize_index(vdx_index_shards_at(sh, 0), &buf, &size));
            vdx_index *one;
            CHECK_OK(vdx_deserialize_index(buf, size, &one));
            vdx_free_buffer(buf);
            CHECK_OK(vdx_index_reset(one));
            vdx_index *idm = one;
            int64_t *ids = malloc(sizeof(int64_t) * NB);
            for (int i = 0; i < NB; i++) ids[i] = i;
            CHECK_OK(vdx_index_add_with_ids(idm, NB, xb, ids));
            free(ids);
            vdx_selector *sel;
            CHECK_OK(vdx_selector_range(100, 1900, &sel));
            vdx_search_params p;
            vdx_search_params_init(&p);
            for (int np = 1; np <= 16; np *= 4)
                for (int withsel = 0; withsel < 2; withsel++) {
                    p.nprobe = np;
                    p.sel = withsel ? sel : NULL;
                    CHECK_OK(vdx_index_search(one, NQ, xq, k, &p, D1, I1));
                    CHECK_OK(vdx_index_search(sh, NQ, xq, k, &p, D2, I2));
                    CHECK(!memcmp(I1, I2, sizeof(vdx_idx_t) * NQ * 10));
                    for (int i = 0; i < NQ * 10; i++)
                        CHECK(fabsf(D1[i] - D2[i]) <= 1e-4f * (1 + fabsf(D1[i])));
                    for (int i = 0; withsel && i < NQ * 10; i++)
                        CHECK(I2[i] == -1 || (I2[i] >= 100 && I2[i] < 1900));
                }
            /* the default nprobe is shard 0's */
            CHECK_OK(vdx_index_ivf_set_nprobe(vdx_index_shards_at(sh, 0), 4));
            CHECK_OK(vdx_index_ivf_set_nprobe(one, 4));
            CHECK_OK(vdx_index_search(one, NQ, xq, k, NULL, D1, I1));
            CHECK_OK(vdx_index_search(sh, NQ, xq, k, NULL, D2, I2));
            CHECK(!memcmp(I1, I2, sizeof(vdx_idx_t) * NQ * 10));
            vdx_selector_free(sel);
            vdx_index_free(one);
            vdx_index_free(sh);
        }
    free(D1);
    free(D2);
    free(I1);
    free(I2);
}

static void test_nested(void) {
    int64_t k = 7;
    float D1[NQ * 7], D2[NQ * 7];
    vdx_idx_t I1[NQ * 7], I2[NQ * 7];
    vdx_index *one = single_flat(VDX_METRIC_L2), *outer, *inner;
    CHECK_OK(vdx_index_shards_new(D, 1, 1, &outer));
    CHECK_OK(vdx_index_shards_new(D, 0, 1, &inner));
    vdx_index *f1, *f2, *f3;
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &f1));
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &f2));
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &f3));
    CHECK_OK(vdx_index_add(f1, 1000, xb));
    CHECK_OK(vdx_index_add(f2, 1200, xb + 1000 * D));
    CHECK_OK(vdx_index_add(f3, 800, xb + 2200 * D));
    CHECK_OK(vdx_index_shards_add(inner, f2, 1));
    CHECK_OK(vdx_index_shards_add(inner, f3, 1));
    CHECK_OK(vdx_index_shards_add(outer, f1, 1));
    CHECK_OK(vdx_index_shards_add(outer, inner, 1));
    CHECK_ERR(vdx_index_shards_add(inner, outer, 0), VDX_ERR_INVALID_ARGUMENT);
    CHECK(vdx_index_ntotal(outer) == NB);
    CHECK_OK(vdx_index_search(one, NQ, xq, k, NULL, D1, I1));
    CHECK_OK(vdx_index_search(outer, NQ, xq, k, NULL, D2, I2));
    CHECK(same_results(NQ, k, D1, I1, D2, I2));

    /* files: the directory round trip answers the same */
    char dir[] = "/tmp/vdx_test_shards_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(vdx_write_sharded(outer, dir));
    vdx_index *back;
    CHECK_OK(vdx_read_sharded(dir, 0, &back));
    CHECK(vdx_index_is_shards(back) == 1 && vdx_index_shards_count(back) == 2);
    CHECK(vdx_index_is_shards(vdx_index_shards_at(back, 1)) == 1);
    CHECK(vdx_index_shards_threaded(back) == 1);
    CHECK_OK(vdx_index_search(back, NQ, xq, k, NULL, D2, I2));
    CHECK(same_results(NQ, k, D1, I1, D2, I2));
    vdx_index_free(back);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, VDX_SHARDS_MANIFEST);
    CHECK_OK(vdx_read_sharded(path, 0, &back)); /* the manifest's path */
    vdx_index_free(back);
    CHECK_ERR(vdx_write_index(outer, "/tmp/vdx_no_such_format.index"), VDX_ERR_UNSUPPORTED);
    CHECK_ERR(vdx_write_sharded(one, dir), VDX_ERR_INVALID_ARGUMENT);

    /* corrupt manifests: errors that say where, never a crash */
    static const char *bad[] = {
        "",
        "vecdex-sharded 2\n",
        "vecdex-sharded 1\nkind IndexBogus\n",
        "vecdex-sharded 1\nkind IndexShards\nd 16\nmetric 1\nthreaded 1\nsuccessive_ids 1\ncount 1\n",
        "vecdex-sharded 1\nkind IndexShards\nd 16\nmetric 1\nthreaded 1\nsuccessive_ids 1\ncount 1\nshard 0 file ../etc/passwd 5\n",
        "vecdex-sharded 1\nkind IndexShards\nd 16\nmetric 1\nthreaded 1\nsuccessive_ids 1\ncount 1\nshard 0 file shard-0.faissindex 999\n",
        "vecdex-sharded 1\nkind IndexShards\nd 17\nmetric 1\nthreaded 1\nsuccessive_ids 1\ncount 1\nshard 0 file shard-0.faissindex 1000\n",
        "vecdex-sharded 1\nkind IndexShards\nd 16\nmetric 1\nthreaded 1\nsuccessive_ids 1\ncount 99999999\n",
        "vecdex-sharded 1\nkind IndexShards\nd 16\nmetric 1\nthreaded 1\nsuccessive_ids 1\ncount 1\nshard 0 file shard-0.faissindex 1000\nextra\n",
        "vecdex-sharded 1\nkind IndexShards\nd x\n",
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        FILE *fp = fopen(path, "wb");
        fputs(bad[b], fp);
        fclose(fp);
        vdx_status st = vdx_read_sharded(dir, 0, &back);
        CHECK(st == VDX_ERR_FORMAT && back == NULL && vdx_last_error()[0]);
        if (st != VDX_ERR_FORMAT) fprintf(stderr, "  manifest %zu: %s\n", b, vdx_last_error());
    }
    CHECK_ERR(vdx_read_sharded("/tmp/vdx_no_such_dir_xyz", 0, &back), VDX_ERR_IO);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    vdx_index_free(outer);
    vdx_index_free(one);
}

static void test_merge(void) {
    enum { S = 4, N = 30, K = 6 };
    float Dall[S * N * K], Dm[N * K];
    vdx_idx_t Iall[S * N * K], Im[N * K];
    test_rand_fill(Dall, S * N * K, 5);
    for (int keep_max = 0; keep_max < 2; keep_max++) {
        for (int s = 0; s < S; s++)
            for (int q = 0; q < N; q++) {
                float *row = Dall + (s * N + q) * K;
                vdx_idx_t *ir = Iall + (s * N + q) * K;
                int len = (s + q) % (K + 1); /* some lists short */
                for (int j = 0; j < K; j++) { /* sort the row */
                    for (int u = j + 1; u < K; u++)
                        if (keep_max ? row[u] > row[j] : row[u] < row[j]) {
                            float t = row[u]; row[u] = row[j]; row[j] = t;
                        }
                    ir[j] = j < len ? 1000 * s + j : -1;
                }
                if (q == 3) row[1] = row[0]; /* a tie */
            }
        CHECK_OK(vdx_merge_knn_results(N, K, S, Dall, Iall, keep_max, Dm, Im));
        for (int q = 0; q < N; q++) {
            /* brute force: all valid entries, best first, ties to lower id */
            float cd[S * K];
            vdx_idx_t ci[S * K];
            int nc = 0;
            for (int s = 0; s < S; s++)
                for (int j = 0; j < K; j++)
                    if (Iall[(s * N + q) * K + j] >= 0) {
                        cd[nc] = Dall[(s * N + q) * K + j];
                        ci[nc++] = Iall[(s * N + q) * K + j];
                    }
            for (int j = 0; j < K; j++) {
                int best = -1;
                for (int c = 0; c < nc; c++) {
                    if (ci[c] == -2) continue;
                    if (best < 0 || (keep_max ? cd[c] > cd[best] : cd[c] < cd[best]) ||
                        (cd[c] == cd[best] && ci[c] < ci[best]))
                        best = c;
                }
                if (best < 0) {
                    CHECK(Im[q * K + j] == -1 && Dm[q * K + j] == (keep_max ? -FLT_MAX : FLT_MAX));
                } else {
                    CHECK(Im[q * K + j] == ci[best] && Dm[q * K + j] == cd[best]);
                    ci[best] = -2;
                }
            }
        }
    }
    CHECK_ERR(vdx_merge_knn_results(N, 0, S, Dall, Iall, 0, Dm, Im), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_merge_knn_results(N, K, S, NULL, Iall, 0, Dm, Im), VDX_ERR_INVALID_ARGUMENT);
}

int main(void) {
    data();
    RUN(test_flat_equals_single);
    RUN(test_ids_and_errors);
    RUN(test_replicas);
    RUN(test_shards_ivf);
    RUN(test_nested);
    RUN(test_merge);
    return TEST_SUMMARY();
}
