/*
 * bench_dist.c — the MPI part of bench_scaleout.py: run under
 * `mpirun -np N bench_dist KIND NB NQ BATCH` (KIND: flat or ivf).
 *
 * Every rank makes the same clustered data (d = 128, a seeded generator)
 * and keeps its rows [r NB / N, (r + 1) NB / N).  ivf: rank 0 trains
 * IVF4096,Flat on 100k rows and the trained, empty index is broadcast
 * (vdx_dist_bcast_index); each rank adds its rows; nprobe 16.  Rank 0
 * then runs NQ queries in batches of BATCH through vdx_dist_search and
 * prints one JSON line: QPS, mean latency per batch, and the parts of a
 * call (the slowest shard's search, the merge, the rest = communication
 * and waiting), plus the build time and bytes per rank.
 *
 * KIND add: empty IDMap,Flat shards; rank 0 makes NB rows and adds them
 * through vdx_dist_add in batches of BATCH (routed round robin), then
 * removes NQ ids (vdx_dist_remove_ids) and saves to a temporary directory
 * (vdx_dist_save); it prints vectors/s of the routed adds next to the same
 * batches added to one local IDMap,Flat, the removal's and the save's time.
 */
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vecdex_dist.h"

#define D 128

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* row i of a mixture of 1024 clusters, the same on every rank */
static void rows(float *x, int64_t i0, int64_t n, const float *centers) {
    for (int64_t i = 0; i < n; i++) {
        unsigned long long s = (unsigned long long)(i0 + i) * 0x9E3779B97F4A7C15ull + 7;
        s ^= s >> 31;
        const float *c = centers + (s % 1024) * D;
        for (int j = 0; j < D; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[i * D + j] = c[j] + 0.15f * ((float)((s >> 40) & 0xffff) / 65536.0f - 0.5f);
        }
    }
}

static int bench_add(int rank, int S, int64_t nb, int64_t nrm, int64_t batch) {
    float *centers = malloc(sizeof(float) * 1024 * D);
    unsigned long long s = 42;
    for (int i = 0; i < 1024 * D; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        centers[i] = (float)((s >> 40) & 0xffff) / 65536.0f;
    }
    vdx_index *ix = NULL;
    vdx_dist *g = NULL;
    if (vdx_index_factory(D, "IDMap,Flat", VDX_METRIC_L2, &ix) ||
        vdx_dist_open(MPI_COMM_WORLD, ix, &g)) {
        fprintf(stderr, "rank %d: %s\n", rank, vdx_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (rank != 0) {
        vdx_dist_worker_loop(g);
    } else {
        float *x = malloc(sizeof(float) * (size_t)nb * D);
        vdx_idx_t *ids = malloc(sizeof(vdx_idx_t) * (size_t)nb);
        rows(x, 0, nb, centers);
        double t_add = 0, t_local = 0;
        vdx_index *one = NULL;
        vdx_index_factory(D, "IDMap,Flat", VDX_METRIC_L2, &one);
        for (int64_t i0 = 0; i0 < nb; i0 += batch) {
            int64_t m = nb - i0 < batch ? nb - i0 : batch;
            double t0 = now();
            if (vdx_dist_add(g, m, x + i0 * D, NULL, 600.0, ids + i0, NULL)) {
                fprintf(stderr, "add: %s\n", vdx_last_error());
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            t_add += now() - t0;
            t0 = now();
            vdx_index_add_with_ids(one, m, x + i0 * D, ids + i0);
            t_local += now() - t0;
        }
        double t0 = now();
        int64_t removed = 0;
        if (vdx_dist_remove_ids(g, nrm, ids, 600.0, &removed) || removed != nrm) {
            fprintf(stderr, "remove: %s\n", vdx_last_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        double t_rm = now() - t0;
        char dir[64];
        snprintf(dir, sizeof dir, "/tmp/bench_dist_save.%d", (int)getpid());
        t0 = now();
        if (vdx_dist_save(g, dir, 600.0)) {
            fprintf(stderr, "save: %s\n", vdx_last_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        double t_save = now() - t0;
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
        printf("{\"kind\": \"add\", \"ranks\": %d, \"nb\": %lld, \"batch\": %lld, "
               "\"add_vps\": %.0f, \"local_add_vps\": %.0f, \"remove_ms\": %.2f, "
               "\"removed\": %lld, \"save_s\": %.3f}\n",
               S, (long long)nb, (long long)batch, (double)nb / t_add, (double)nb / t_local,
               1e3 * t_rm, (long long)removed, t_save);
        fflush(stdout);
        vdx_index_free(one);
        free(x);
        free(ids);
    }
    vdx_dist_close(g);
    vdx_index_free(ix);
    free(centers);
    return 0;
}

int main(int argc, char **argv) {
    int prov, rank, S;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &prov);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &S);
    if (argc < 5) {
        if (!rank) fprintf(stderr, "usage: bench_dist flat|ivf NB NQ BATCH\n");
        MPI_Finalize();
        return 2;
    }
    int ivf = !strcmp(argv[1], "ivf");
    if (!strcmp(argv[1], "add")) {
        int rc = bench_add(rank, S, atoll(argv[2]), atoll(argv[3]), atoll(argv[4]));
        MPI_Finalize();
        return rc;
    }
    int64_t nb = atoll(argv[2]), nq = atoll(argv[3]), batch = atoll(argv[4]);
    float *centers = malloc(sizeof(float) * 1024 * D);
    unsigned long long s = 42;
    for (int i = 0; i < 1024 * D; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        centers[i] = (float)((s >> 40) & 0xffff) / 65536.0f;
    }
    int64_t lo = (int64_t)rank * nb / S, hi = (int64_t)(rank + 1) * nb / S;
    float *x = malloc(sizeof(float) * (size_t)(hi - lo) * D);
    rows(x, lo, hi - lo, centers);
    double t0 = now();
    vdx_index *ix = NULL;
    if (ivf) {
        if (rank == 0) {
            int64_t nt = 65536; /* 16 per list: a benchmark, not a recall study */
            float *xt = malloc(sizeof(float) * (size_t)nt * D);
            rows(xt, nb + 1000000, nt, centers); /* not base rows */
            if (vdx_index_factory(D, "IVF4096,Flat", VDX_METRIC_L2, &ix) ||
                vdx_index_train(ix, nt, xt)) {
                fprintf(stderr, "train: %s\n", vdx_last_error());
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            free(xt);
        }
        if (vdx_dist_bcast_index(MPI_COMM_WORLD, 0, &ix)) {
            fprintf(stderr, "rank %d: bcast: %s\n", rank, vdx_last_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    } else if (vdx_index_flat_new(D, VDX_METRIC_L2, &ix)) {
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (vdx_index_add(ix, hi - lo, x)) {
        fprintf(stderr, "rank %d: add: %s\n", rank, vdx_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    free(x);
    vdx_dist *g = NULL;
    if (vdx_dist_open(MPI_COMM_WORLD, ix, &g)) {
        fprintf(stderr, "rank %d: open: %s\n", rank, vdx_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double t_build = now() - t0;
    if (rank != 0) {
        vdx_dist_worker_loop(g);
    } else {
        float *q = malloc(sizeof(float) * (size_t)batch * D), *Dd = malloc(sizeof(float) * (size_t)batch * 10);
        vdx_idx_t *Id = malloc(sizeof(vdx_idx_t) * (size_t)batch * 10);
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.nprobe = 16;
        double tot = 0, srch = 0, mrg = 0, t_all = now();
        int64_t calls = 0;
        for (int64_t q0 = 0; q0 < nq; q0 += batch, calls++) {
            int64_t m = nq - q0 < batch ? nq - q0 : batch;
            rows(q, 5000000 + q0, m, centers);
            if (vdx_dist_search(g, m, q, 10, &p, 600.0, 0, Dd, Id, NULL)) {
                fprintf(stderr, "search: %s\n", vdx_last_error());
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            double a, b, c;
            vdx_dist_last_timing(g, &a, &b, &c);
            tot += a;
            srch += b;
            mrg += c;
        }
        t_all = now() - t_all;
        printf("{\"kind\": \"%s\", \"ranks\": %d, \"nb\": %lld, \"nq\": %lld, \"batch\": %lld, "
               "\"qps\": %.1f, \"latency_ms\": %.3f, \"search_ms\": %.3f, \"merge_ms\": %.4f, "
               "\"comm_ms\": %.3f, \"comm_merge_share\": %.4f, \"build_s\": %.2f}\n",
               argv[1], S, (long long)nb, (long long)nq, (long long)batch, (double)nq / t_all,
               1e3 * tot / (double)calls, 1e3 * srch / (double)calls, 1e3 * mrg / (double)calls,
               1e3 * (tot - srch - mrg) / (double)calls, (tot - srch) / tot, t_build);
        fflush(stdout);
        free(q);
        free(Dd);
        free(Id);
    }
    vdx_dist_close(g);
    vdx_index_free(ix);
    free(centers);
    MPI_Finalize();
    return 0;
}
