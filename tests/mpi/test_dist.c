/*
 * test_dist.c — vdx_dist (src/dist) under mpirun: run by tests/mpi/run.sh.
 *
 *   test_dist equal   shards of one Flat database on every rank: rank 0's
 *                     distributed search equals one Flat index over all the
 *                     vectors (ids and distances, exactly), L2; and an
 *                     IVF shard per rank reaches the single IVF's recall;
 *                     HNSW shards reach the recall of one HNSW (vs brute force)
 *   test_dist kill    the last rank is killed (SIGKILL) after opening:
 *                     a search fails with VDX_ERR_TIMEOUT naming that shard
 *                     within its deadline, and with partial results allowed
 *                     answers S-1 shards, equal to a Flat of their vectors
 *                     (the shards are IDMap,Flat: the writes below must
 *                     report the dead shard too): a routed add, a removal
 *                     and a save fail naming it, the add and the removal
 *                     saying the write is partial and how far it got, the
 *                     save replacing nothing
 *   test_dist write DIR   empty IDMap,Flat shards: adds routed round robin
 *                     (ids assigned) and by id hash (checked against an
 *                     independent splitmix64), removal by ids and by range,
 *                     then the search equals one IDMap,Flat index given the
 *                     same writes exactly; bad input is refused with nothing
 *                     sent; vdx_dist_save to DIR, which vdx_read_sharded
 *                     reads back in one process with the same results.
 *                     IVF16,Flat trained on rank 0 and broadcast
 *                     (vdx_dist_bcast_index), routed adds, equal to one IVF
 *                     of the same vectors (nprobe 16)
 *   test_dist reload DIR  a fresh mpirun: vdx_dist_load of DIR gives the
 *                     same results, and an add after it gets fresh ids
 *   test_dist badload DIR vdx_dist_load with the wrong rank count fails on
 *                     every rank, naming the count
 *   test_dist hostinfo    rank 0 prints each rank's IPv4 addresses (not
 *                     loopback): one rank per test host (tests/mpi/netns.sh)
 * Prints "test_dist MODE: OK" on rank 0 when everything held.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vecdex_dist.h"

#define D 16
#define NB 6000
#define NQ 40
#define K 10

static int rank_ = 0;
#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "rank %d: %s:%d: check failed: %s (%s)\n", rank_, \
                    __FILE__, __LINE__, #c, vdx_last_error());                 \
            MPI_Abort(MPI_COMM_WORLD, 1);                                      \
        }                                                                      \
    } while (0)

static void data(float *x, int64_t n, unsigned seed) {
    unsigned long long s = seed * 2654435761ull + 1;
    for (int64_t i = 0; i < n * D; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 33) % 100000) / 100000.0f;
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static vdx_index *flat_of(const float *x, int64_t n) {
    vdx_index *ix = NULL;
    CHECK(vdx_index_flat_new(D, VDX_METRIC_L2, &ix) == VDX_OK);
    CHECK(vdx_index_add(ix, n, x) == VDX_OK);
    return ix;
}

static vdx_index *idmap_flat(void) {
    vdx_index *ix = NULL;
    CHECK(vdx_index_factory(D, "IDMap,Flat", VDX_METRIC_L2, &ix) == VDX_OK);
    return ix;
}

/* splitmix64's finaliser mod S, written out independently of src/dist */
static int route_of(int64_t id, int S) {
    uint64_t z = (uint64_t)id + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (int)(z % (uint64_t)S);
}

/* The writes of "write" mode, on one index (the reference) or, g given,
 * through the dist; each step's counts are checked on the way. */
#define NA 3000
#define NBB 2000
#define NC 1000
static void writes(const float *xb, vdx_index *one, vdx_dist *g, int S) {
    vdx_idx_t *ida = malloc(sizeof(vdx_idx_t) * NA), *idb = malloc(sizeof(vdx_idx_t) * NBB),
              *idc = malloc(sizeof(vdx_idx_t) * NC);
    int64_t applied = -1, removed = -1;
    /* A: no ids, round robin */
    if (g) {
        CHECK(vdx_dist_add(g, NA, xb, NULL, 10.0, ida, &applied) == VDX_OK);
        CHECK(applied == NA);
        for (int r = 0; r < S; r++) {
            int64_t want = NA / S + (r < NA % S);
            CHECK(vdx_dist_shard_ntotal(g, r) == want);
        }
    } else {
        for (int i = 0; i < NA; i++) ida[i] = i;
        CHECK(vdx_index_add_with_ids(one, NA, xb, ida) == VDX_OK);
    }
    for (int i = 0; i < NA; i++) CHECK(ida[i] == i);
    /* B: ids given, routed by their hash */
    for (int i = 0; i < NBB; i++) idb[i] = 1000000 + 7 * (int64_t)i;
    if (g) {
        int64_t before[64], want[64] = {0};
        for (int r = 0; r < S; r++) before[r] = vdx_dist_shard_ntotal(g, r);
        for (int i = 0; i < NBB; i++) want[route_of(idb[i], S)]++;
        CHECK(vdx_dist_add(g, NBB, xb + NA * D, idb, 10.0, NULL, &applied) == VDX_OK);
        CHECK(applied == NBB);
        for (int r = 0; r < S; r++) {
            CHECK(vdx_dist_shard_ntotal(g, r) == before[r] + want[r]);
            CHECK(vdx_dist_route_id(idb[r], S) == route_of(idb[r], S));
        }
    } else {
        CHECK(vdx_index_add_with_ids(one, NBB, xb + NA * D, idb) == VDX_OK);
    }
    /* C: no ids again: numbered past the largest id given */
    int64_t c0 = idb[NBB - 1] + 1;
    if (g) {
        CHECK(vdx_dist_add(g, NC, xb + (NA + NBB) * D, NULL, 10.0, idc, &applied) == VDX_OK);
    } else {
        for (int i = 0; i < NC; i++) idc[i] = c0 + i;
        CHECK(vdx_index_add_with_ids(one, NC, xb + (NA + NBB) * D, idc) == VDX_OK);
    }
    for (int i = 0; i < NC; i++) CHECK(idc[i] == c0 + i);
    /* removal by ids (some absent) and by range */
    vdx_idx_t rm[201];
    for (int i = 0; i < 100; i++) rm[i] = 2 * i;
    for (int i = 0; i < 100; i++) rm[100 + i] = idb[i];
    rm[200] = 555555555;
    if (g) {
        CHECK(vdx_dist_remove_ids(g, 201, rm, 10.0, &removed) == VDX_OK);
        CHECK(removed == 200);
        CHECK(vdx_dist_remove_range(g, 1000, 1500, 10.0, &removed) == VDX_OK);
        CHECK(removed == 500);
        CHECK(vdx_dist_ntotal(g) == NA + NBB + NC - 700);
    } else {
        vdx_selector *sel = NULL;
        CHECK(vdx_selector_batch(201, rm, &sel) == VDX_OK);
        CHECK(vdx_index_remove_ids(one, sel, &removed) == VDX_OK && removed == 200);
        vdx_selector_free(sel);
        CHECK(vdx_selector_range(1000, 1500, &sel) == VDX_OK);
        CHECK(vdx_index_remove_ids(one, sel, &removed) == VDX_OK && removed == 500);
        vdx_selector_free(sel);
    }
    free(ida);
    free(idb);
    free(idc);
}

/* the distributed search equals one index's: ids and distances exactly */
static void same_results(vdx_dist *g, const vdx_index *one, const float *xq,
                         const vdx_search_params *p) {
    float Dd[NQ * K], D1[NQ * K];
    vdx_idx_t Id[NQ * K], I1[NQ * K];
    int answered = 0;
    CHECK(vdx_dist_search(g, NQ, xq, K, p, 10.0, 0, Dd, Id, &answered) == VDX_OK);
    CHECK(answered == vdx_dist_size(g));
    CHECK(vdx_index_search(one, NQ, xq, K, p, D1, I1) == VDX_OK);
    for (int i = 0; i < NQ * K; i++) CHECK(Id[i] == I1[i] && Dd[i] == D1[i]);
}

static void same_index_results(const vdx_index *a, const vdx_index *b, const float *xq) {
    float Da[NQ * K], Db[NQ * K];
    vdx_idx_t Ia[NQ * K], Ib[NQ * K];
    CHECK(vdx_index_search(a, NQ, xq, K, NULL, Da, Ia) == VDX_OK);
    CHECK(vdx_index_search(b, NQ, xq, K, NULL, Db, Ib) == VDX_OK);
    for (int i = 0; i < NQ * K; i++) CHECK(Ia[i] == Ib[i] && Da[i] == Db[i]);
}

static int file_exists(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static int write_mode(int S, const char *mode, const char *dir, const float *xb,
                      const float *xq) {
    vdx_index *shard = NULL;
    if (!strcmp(mode, "badload")) {
        vdx_status st = vdx_dist_load(MPI_COMM_WORLD, dir, 0, &shard, NULL);
        CHECK(st == VDX_ERR_INVALID_ARGUMENT && shard == NULL);
        CHECK(strstr(vdx_last_error(), "shards") && strstr(vdx_last_error(), "ranks"));
        if (rank_ == 0) printf("test_dist badload (%d ranks): OK (%s)\n", S, vdx_last_error());
        MPI_Finalize();
        return 0;
    }
    int ids_mode = VDX_DIST_IDS_AUTO;
    if (!strcmp(mode, "reload")) {
        CHECK(vdx_dist_load(MPI_COMM_WORLD, dir, 0, &shard, &ids_mode) == VDX_OK);
        CHECK(ids_mode == VDX_DIST_IDS_GLOBAL);
    } else {
        shard = idmap_flat();
    }
    vdx_dist *g = NULL;
    CHECK(vdx_dist_open_ex(MPI_COMM_WORLD, shard, ids_mode, &g) == VDX_OK);
    CHECK(vdx_dist_writable(g) == 1);
    if (rank_ != 0) {
        CHECK(vdx_dist_worker_loop(g) == VDX_OK);
    } else {
        vdx_index *one = idmap_flat();
        writes(xb, one, NULL, S);
        if (!strcmp(mode, "write")) {
            /* bad input: refused, nothing sent */
            float bad[2 * D];
            memcpy(bad, xb, sizeof bad);
            bad[D + 3] = NAN;
            vdx_idx_t badids[2] = {5, -1};
            CHECK(vdx_dist_add(g, 2, bad, NULL, 1.0, NULL, NULL) == VDX_ERR_INVALID_ARGUMENT);
            CHECK(vdx_dist_add(g, 2, xb, badids, 1.0, NULL, NULL) == VDX_ERR_INVALID_ARGUMENT);
            CHECK(vdx_dist_add(g, 2, xb, NULL, 0.0, NULL, NULL) == VDX_ERR_INVALID_ARGUMENT);
            CHECK(vdx_dist_ntotal(g) == 0);
            writes(xb, one, g, S);
            same_results(g, one, xq, NULL);
            CHECK(vdx_dist_save(g, dir, 10.0) == VDX_OK);
            CHECK(file_exists(dir, VDX_SHARDS_MANIFEST) && !file_exists(dir, "shard-0.faissindex.new"));
            vdx_index *back = NULL;
            CHECK(vdx_read_sharded(dir, 0, &back) == VDX_OK);
            CHECK(vdx_index_ntotal(back) == vdx_index_ntotal(one));
            same_index_results(back, one, xq);
            vdx_index_free(back);
        } else {
            CHECK(vdx_dist_ntotal(g) == vdx_index_ntotal(one));
            same_results(g, one, xq, NULL);
            /* an add after a reload is numbered past every id loaded */
            vdx_idx_t id2[5];
            CHECK(vdx_dist_add(g, 5, xq, NULL, 10.0, id2, NULL) == VDX_OK);
            CHECK(id2[0] == 1000000 + 7 * (NBB - 1) + 1 + NC);
            CHECK(vdx_index_add_with_ids(one, 5, xq, id2) == VDX_OK);
            same_results(g, one, xq, NULL);
        }
        vdx_index_free(one);
    }
    vdx_dist_close(g);
    vdx_index_free(shard);
    if (!strcmp(mode, "write")) {
        /* IVF: trained on rank 0, the trained empty index broadcast */
        vdx_index *ivf = NULL;
        if (rank_ == 0) {
            CHECK(vdx_index_factory(D, "IVF16,Flat", VDX_METRIC_L2, &ivf) == VDX_OK);
            CHECK(vdx_index_train(ivf, 2000, xb) == VDX_OK);
        }
        CHECK(vdx_dist_bcast_index(MPI_COMM_WORLD, 0, &ivf) == VDX_OK);
        CHECK(vdx_index_is_trained(ivf) && vdx_index_ntotal(ivf) == 0);
        /* an empty IVF whose ids the dist assigns: global ids (the default
         * for IVF is successive, as an IndexShards filled by add()) */
        CHECK(vdx_dist_open_ex(MPI_COMM_WORLD, ivf, VDX_DIST_IDS_GLOBAL, &g) == VDX_OK);
        CHECK(vdx_dist_writable(g) == 1);
        if (rank_ != 0) {
            CHECK(vdx_dist_worker_loop(g) == VDX_OK);
        } else {
            /* the single IVF: the same trained quantizer, all the vectors */
            uint8_t *buf = NULL;
            size_t size = 0;
            vdx_index *one = NULL;
            CHECK(vdx_serialize_index(ivf, &buf, &size) == VDX_OK);
            CHECK(vdx_deserialize_index(buf, size, &one) == VDX_OK);
            vdx_free_buffer(buf);
            vdx_idx_t *ids = malloc(sizeof(vdx_idx_t) * NB);
            CHECK(vdx_dist_add(g, NB, xb, NULL, 10.0, ids, NULL) == VDX_OK);
            CHECK(vdx_index_add_with_ids(one, NB, xb, ids) == VDX_OK);
            vdx_search_params p;
            vdx_search_params_init(&p);
            p.nprobe = 16;
            same_results(g, one, xq, &p);
            free(ids);
            vdx_index_free(one);
        }
        vdx_dist_close(g);
        vdx_index_free(ivf);
    }
    if (rank_ == 0) printf("test_dist %s (%d ranks): OK\n", mode, S);
    MPI_Finalize();
    return 0;
}

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    int S;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &S);
    const char *mode = argc > 1 ? argv[1] : "equal";
    if (!strcmp(mode, "hostinfo")) {
        char mine[256] = "", *all = malloc(256 * (size_t)S);
        gethostname(mine, 64);
        mine[64] = 0;
        struct ifaddrs *ifs = NULL;
        if (getifaddrs(&ifs) == 0) {
            for (struct ifaddrs *a = ifs; a; a = a->ifa_next) {
                if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
                char b[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)a->ifa_addr)->sin_addr, b,
                          sizeof b);
                if (strncmp(b, "127.", 4) && strlen(mine) + strlen(b) + 2 < sizeof mine) {
                    strcat(mine, " ");
                    strcat(mine, b);
                }
            }
            freeifaddrs(ifs);
        }
        MPI_Gather(mine, 256, MPI_CHAR, all, 256, MPI_CHAR, 0, MPI_COMM_WORLD);
        if (rank_ == 0)
            for (int r = 0; r < S; r++) printf("test_dist hostinfo: rank %d on %s\n", r, all + 256 * r);
        free(all);
        MPI_Finalize();
        return 0;
    }
    vdx_set_num_threads(1);
    float *xb = malloc(sizeof(float) * NB * D), *xq = malloc(sizeof(float) * NQ * D);
    data(xb, NB, 1);
    data(xq, NQ, 2);
    if (!strcmp(mode, "write") || !strcmp(mode, "reload") || !strcmp(mode, "badload")) {
        if (argc < 3) {
            if (rank_ == 0) fprintf(stderr, "usage: test_dist %s DIR\n", mode);
            MPI_Finalize();
            return 2;
        }
        int rc = write_mode(S, mode, argv[2], xb, xq);
        free(xb);
        free(xq);
        return rc;
    }
    int64_t lo = (int64_t)rank_ * NB / S, hi = (int64_t)(rank_ + 1) * NB / S;
    vdx_index *shard = NULL;
    if (!strcmp(mode, "kill")) { /* shards carrying their (global) ids */
        shard = idmap_flat();
        vdx_idx_t *ids = malloc(sizeof(vdx_idx_t) * (size_t)(hi - lo));
        for (int64_t i = lo; i < hi; i++) ids[i - lo] = i;
        CHECK(vdx_index_add_with_ids(shard, hi - lo, xb + lo * D, ids) == VDX_OK);
        free(ids);
    } else {
        shard = flat_of(xb + lo * D, hi - lo);
    }
    vdx_dist *g = NULL;
    CHECK(vdx_dist_open(MPI_COMM_WORLD, shard, &g) == VDX_OK);
    CHECK(vdx_dist_ntotal(g) == NB && vdx_dist_size(g) == S);
    float Dd[NQ * K], D1[NQ * K];
    vdx_idx_t Id[NQ * K], I1[NQ * K];
    if (!strcmp(mode, "equal")) {
        if (rank_ != 0) {
            CHECK(vdx_dist_worker_loop(g) == VDX_OK);
        } else {
            vdx_index *one = flat_of(xb, NB);
            int answered = 0;
            CHECK(vdx_dist_search(g, NQ, xq, K, NULL, 10.0, 0, Dd, Id, &answered) == VDX_OK);
            CHECK(answered == S);
            CHECK(vdx_index_search(one, NQ, xq, K, NULL, D1, I1) == VDX_OK);
            for (int i = 0; i < NQ * K; i++) CHECK(Id[i] == I1[i] && Dd[i] == D1[i]);
            /* bad input is refused on rank 0, nothing sent */
            float bad[D] = {NAN};
            CHECK(vdx_dist_search(g, 1, bad, K, NULL, 1.0, 0, Dd, Id, NULL) ==
                  VDX_ERR_INVALID_ARGUMENT);
            CHECK(vdx_dist_search(g, 1, xq, 0, NULL, 1.0, 0, Dd, Id, NULL) ==
                  VDX_ERR_INVALID_ARGUMENT);
            /* many calls in a row, k larger than a shard holds */
            for (int rep = 0; rep < 20; rep++) {
                int64_t k2 = rep % 2 ? 1 : 2500;
                float *D2 = malloc(sizeof(float) * 2 * k2), *D3 = malloc(sizeof(float) * 2 * k2);
                vdx_idx_t *I2 = malloc(sizeof(vdx_idx_t) * 2 * k2),
                          *I3 = malloc(sizeof(vdx_idx_t) * 2 * k2);
                CHECK(vdx_dist_search(g, 2, xq + rep * D, k2, NULL, 10.0, 0, D2, I2, NULL) == VDX_OK);
                CHECK(vdx_index_search(one, 2, xq + rep * D, k2, NULL, D3, I3) == VDX_OK);
                for (int64_t i = 0; i < 2 * k2; i++) CHECK(I2[i] == I3[i]);
                free(D2); free(D3); free(I2); free(I3);
            }
            vdx_index_free(one);
        }
        vdx_dist_close(g);
        vdx_index_free(shard);
        /* IVF shards filled by add() (positions as ids), trained on rank 0
         * and broadcast: successive ids, as IndexShards, and the answers of
         * one IVF of all the vectors (the same centroids), nprobe = nlist */
        vdx_index *ivf = NULL;
        if (rank_ == 0) {
            CHECK(vdx_index_factory(D, "IVF8,Flat", VDX_METRIC_L2, &ivf) == VDX_OK);
            CHECK(vdx_index_train(ivf, NB, xb) == VDX_OK);
        }
        CHECK(vdx_dist_bcast_index(MPI_COMM_WORLD, 0, &ivf) == VDX_OK);
        uint8_t *buf = NULL;
        size_t size = 0;
        vdx_index *one = NULL;
        if (rank_ == 0) {
            CHECK(vdx_serialize_index(ivf, &buf, &size) == VDX_OK);
            CHECK(vdx_deserialize_index(buf, size, &one) == VDX_OK);
            vdx_free_buffer(buf);
            CHECK(vdx_index_add(one, NB, xb) == VDX_OK);
        }
        CHECK(vdx_index_add(ivf, hi - lo, xb + lo * D) == VDX_OK);
        CHECK(vdx_dist_open(MPI_COMM_WORLD, ivf, &g) == VDX_OK);
        CHECK(vdx_dist_writable(g) == 0);
        if (rank_ != 0) {
            CHECK(vdx_dist_worker_loop(g) == VDX_OK);
        } else {
            vdx_search_params p;
            vdx_search_params_init(&p);
            p.nprobe = 8;
            int answered = 0;
            CHECK(vdx_dist_search(g, NQ, xq, K, &p, 10.0, 0, Dd, Id, &answered) == VDX_OK);
            CHECK(vdx_index_search(one, NQ, xq, K, &p, D1, I1) == VDX_OK);
            for (int i = 0; i < NQ * K; i++) CHECK(Id[i] == I1[i] && Dd[i] == D1[i]);
            /* writes are refused on successive ids, nothing sent */
            CHECK(vdx_dist_add(g, 1, xq, NULL, 1.0, NULL, NULL) == VDX_ERR_UNSUPPORTED);
            CHECK(vdx_dist_ntotal(g) == NB);
            vdx_index_free(one);
        }
        vdx_dist_close(g);
        vdx_index_free(ivf);
        /* HNSW: each rank builds a graph over its slice (positions offset
         * by the slices before it, as IndexShards numbers them); rank 0's
         * distributed search must reach the recall of one HNSW built over
         * all the vectors with the same parameters, against brute force */
        vdx_index *hnsw = NULL;
        CHECK(vdx_index_factory(D, "HNSW16,Flat", VDX_METRIC_L2, &hnsw) == VDX_OK);
        CHECK(vdx_index_add(hnsw, hi - lo, xb + lo * D) == VDX_OK);
        CHECK(vdx_dist_open(MPI_COMM_WORLD, hnsw, &g) == VDX_OK);
        if (rank_ != 0) {
            CHECK(vdx_dist_worker_loop(g) == VDX_OK);
        } else {
            vdx_index *exact = flat_of(xb, NB), *whole = NULL;
            CHECK(vdx_index_factory(D, "HNSW16,Flat", VDX_METRIC_L2, &whole) == VDX_OK);
            CHECK(vdx_index_add(whole, NB, xb) == VDX_OK);
            CHECK(vdx_index_search(exact, NQ, xq, K, NULL, D1, I1) == VDX_OK);
            vdx_search_params p;
            vdx_search_params_init(&p);
            p.efSearch = 24;
            float *Dw = malloc(sizeof(float) * NQ * K);
            vdx_idx_t *Iw = malloc(sizeof(vdx_idx_t) * NQ * K);
            int answered = 0;
            CHECK(vdx_dist_search(g, NQ, xq, K, &p, 10.0, 0, Dd, Id, &answered) == VDX_OK);
            CHECK(answered == S);
            CHECK(vdx_index_search(whole, NQ, xq, K, &p, Dw, Iw) == VDX_OK);
            int hit_dist = 0, hit_one = 0;
            for (int q = 0; q < NQ; q++)
                for (int a = 0; a < K; a++)
                    for (int b = 0; b < K; b++) {
                        hit_dist += Id[q * K + a] == I1[q * K + b];
                        hit_one += Iw[q * K + a] == I1[q * K + b];
                    }
            double r_dist = (double)hit_dist / (NQ * K), r_one = (double)hit_one / (NQ * K);
            printf("  HNSW16 efSearch 24: recall@10 %.3f over %d shards, %.3f one index\n",
                   r_dist, S, r_one);
            CHECK(r_one > 0.5 && r_dist >= r_one - 0.02);
            free(Dw);
            free(Iw);
            vdx_index_free(exact);
            vdx_index_free(whole);
            printf("test_dist equal (%d ranks): OK\n", S);
        }
        vdx_dist_close(g);
        vdx_index_free(hnsw);
        free(xb);
        free(xq);
        MPI_Finalize();
        return 0;
    }
    /* kill: the last rank dies without a word */
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank_ == S - 1) raise(SIGKILL);
    if (rank_ != 0) {
        vdx_dist_worker_loop(g);
        _exit(0); /* MPI_Finalize with a dead peer may wait for it */
    }
    usleep(300000);
    double t0 = now();
    vdx_status st = vdx_dist_search(g, NQ, xq, K, NULL, 1.0, 0, Dd, Id, NULL);
    double dt = now() - t0;
    char want[64];
    snprintf(want, sizeof want, "shard %d of %d", S - 1, S);
    CHECK(st == VDX_ERR_TIMEOUT && strstr(vdx_last_error(), want));
    CHECK(dt < 1.5);
    int answered = -1;
    CHECK(vdx_dist_search(g, NQ, xq, K, NULL, 1.0, 1, Dd, Id, &answered) == VDX_OK);
    CHECK(answered == S - 1);
    vdx_index *rest = flat_of(xb, (int64_t)(S - 1) * NB / S);
    CHECK(vdx_index_search(rest, NQ, xq, K, NULL, D1, I1) == VDX_OK);
    for (int i = 0; i < NQ * K; i++) CHECK(Id[i] == I1[i]);
    /* writes: reported partial, naming the dead shard, within the deadline */
    int64_t applied = -1, removed = -1;
    t0 = now();
    st = vdx_dist_add(g, 30, xq, NULL, 1.0, NULL, &applied);
    CHECK(now() - t0 < 1.5);
    CHECK(st == VDX_ERR_TIMEOUT && strstr(vdx_last_error(), want) &&
          strstr(vdx_last_error(), "partial"));
    CHECK(applied == 30 - 30 / S);
    printf("  add: %s\n", vdx_last_error());
    vdx_idx_t rmids[3] = {0, 1, 2};
    st = vdx_dist_remove_ids(g, 3, rmids, 1.0, &removed);
    CHECK(st == VDX_ERR_TIMEOUT && strstr(vdx_last_error(), want) &&
          strstr(vdx_last_error(), "partial") && removed == 3);
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/test_dist_kill.%d", (int)getpid());
    t0 = now();
    st = vdx_dist_save(g, dir, 1.0);
    CHECK(now() - t0 < 2.5);
    CHECK(st == VDX_ERR_TIMEOUT && strstr(vdx_last_error(), want) &&
          strstr(vdx_last_error(), "nothing in"));
    CHECK(!file_exists(dir, VDX_SHARDS_MANIFEST) && !file_exists(dir, "shard-0.faissindex.new") &&
          !file_exists(dir, "shard-0.faissindex"));
    printf("  save: %s\n", vdx_last_error());
    rmdir(dir);
    printf("test_dist kill (%d ranks): OK (timed out in %.2f s, partial %d of %d)\n", S, dt,
           answered, S);
    fflush(stdout);
    vdx_dist_close(g);
    _exit(0);
}
