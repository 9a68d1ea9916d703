/*
 * test_dist.c — vdx_dist (src/dist) under mpirun: run by tests/mpi/run.sh.
 *
 *   test_dist equal   shards of one Flat database on every rank: rank 0's
 *                     distributed search equals one Flat index over all the
 *                     vectors (ids and distances, exactly), L2; and an
 *                     IVF shard per rank reaches the single IVF's recall
 *   test_dist kill    the last rank is killed (SIGKILL) after opening:
 *                     a search fails with VDX_ERR_TIMEOUT naming that shard
 *                     within its deadline, and with partial results allowed
 *                     answers S-1 shards, equal to a Flat of their vectors
 * Prints "test_dist MODE: OK" on rank 0 when everything held.
 */
#include <math.h>
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

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    int S;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &S);
    const char *mode = argc > 1 ? argv[1] : "equal";
    vdx_set_num_threads(1);
    float *xb = malloc(sizeof(float) * NB * D), *xq = malloc(sizeof(float) * NQ * D);
    data(xb, NB, 1);
    data(xq, NQ, 2);
    int64_t lo = (int64_t)rank_ * NB / S, hi = (int64_t)(rank_ + 1) * NB / S;
    vdx_index *shard = flat_of(xb + lo * D, hi - lo);
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
            printf("test_dist equal (%d ranks): OK\n", S);
        }
        vdx_dist_close(g);
        vdx_index_free(shard);
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
    printf("test_dist kill (%d ranks): OK (timed out in %.2f s, partial %d of %d)\n", S, dt,
           answered, S);
    fflush(stdout);
    vdx_dist_close(g);
    _exit(0);
}
