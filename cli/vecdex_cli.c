/*
 * vecdex_cli.c — the `vecdex` command.
 *
 * main and the built-in subcommands: demo (index built-in synthetic data and
 * print build time, QPS, recall and bytes per vector for every index kind
 * that exists) and version.  The file-based subcommands (build, search,
 * eval, bench, info) are in commands.c, the vector files in vecio.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const char *what, vdx_status st) {
    fprintf(stderr, "vecdex: %s: %s (%s)\n", what, vdx_last_error(),
            vdx_status_name(st));
    return 1;
}

static uint64_t rng_state;
static float rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

/* The FAISS tutorial's data shape: uniform [0,1) with column 0 shifted by
 * i / 1000 so that neighbours are meaningful. */
static float *make_data(int64_t n, int64_t d) {
    float *x = malloc((size_t)n * (size_t)d * sizeof(float));
    if (!x) return NULL;
    for (int64_t i = 0; i < n * d; i++) x[i] = rnd();
    for (int64_t i = 0; i < n; i++) x[i * d] += (float)i / 1000.0f;
    return x;
}

/* Exact top-k in double precision, computed here independently of the
 * library so that the recall column is a real measurement. */
static void ground_truth(const float *xb, int64_t nb, const float *xq,
                         int64_t nq, int64_t d, int64_t k, int64_t *gt) {
#pragma omp parallel for schedule(dynamic)
    for (int64_t q = 0; q < nq; q++) {
        double bd[16];
        int64_t *gi = gt + q * k;
        for (int64_t j = 0; j < k; j++) bd[j] = INFINITY, gi[j] = -1;
        for (int64_t i = 0; i < nb; i++) {
            double s = 0;
            for (int64_t t = 0; t < d; t++) {
                double u = (double)xq[q * d + t] - xb[i * d + t];
                s += u * u;
            }
            if (s >= bd[k - 1]) continue;
            int64_t j = k - 1;
            while (j > 0 && bd[j - 1] > s) {
                bd[j] = bd[j - 1];
                gi[j] = gi[j - 1];
                j--;
            }
            bd[j] = s;
            gi[j] = i;
        }
    }
}

static int demo(int argc, char **argv) {
    int64_t d = 64, nb = 100000, nq = 10000, ngt = 500, k = 10;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--nb") && i + 1 < argc) nb = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--nq") && i + 1 < argc) nq = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
            ; /* demo draws no progress bars: nothing to silence */
        else {
            fprintf(stderr, "vecdex demo: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (nb < k || nq < 1) {
        fprintf(stderr, "vecdex demo: need --nb >= %lld and --nq >= 1\n",
                (long long)k);
        return 2;
    }
    if (ngt > nq) ngt = nq;
    rng_state = 1234;
    float *xb = make_data(nb, d), *xq = make_data(nq, d);
    float *D = malloc((size_t)nq * (size_t)k * sizeof(float));
    int64_t *I = malloc((size_t)nq * (size_t)k * sizeof(int64_t));
    int64_t *gt = malloc((size_t)ngt * (size_t)k * sizeof(int64_t));
    if (!xb || !xq || !D || !I || !gt) {
        fprintf(stderr, "vecdex demo: out of memory\n");
        return 1;
    }
    /* --json: one object on stdout, the table's rows in "rows" */
    double t = now();
    ground_truth(xb, nb, xq, ngt, d, k, gt);
    double t_gt = now() - t;
    if (json) {
        printf("{\"version\": ");
        json_str(vdx_version());
        printf(", \"build_info\": ");
        json_str(vdx_build_info());
        printf(", \"d\": %lld, \"nb\": %lld, \"nq\": %lld, \"k\": %lld, "
               "\"ground_truth_queries\": %lld, \"ground_truth_s\": %.6f, "
               "\"rows\": [",
               (long long)d, (long long)nb, (long long)nq, (long long)k,
               (long long)ngt, t_gt);
    } else {
        printf("vecdex %s demo — %s\n", vdx_version(), vdx_build_info());
        printf("data: d=%lld, %lld database vectors, %lld queries (the FAISS "
               "tutorial's shape), k=%lld\n",
               (long long)d, (long long)nb, (long long)nq, (long long)k);
        printf("ground truth for %lld queries (double precision): %.2f s\n\n",
               (long long)ngt, t_gt);
        printf("%-26s %10s %12s %10s %10s %12s\n", "index", "build (s)",
               "QPS", "R@1", "R@10", "bytes/vec");
    }

    /* the seeds' progression, for the kinds that exist: exact, inverted
     * file, then compressed codes (bytes: code + 8-byte id in IVF lists) */
    static const struct {
        const char *factory;
        int64_t nprobe, efsearch;
        double bytes;
    } rows[] = {
        {"Flat", 0, 0, 256},          {"IDMap2,Flat", 0, 0, 264},
        {"IVF100,Flat", 1, 0, 264},   {"IVF100,Flat", 10, 0, 264},
        {"IVF100,SQ8", 10, 0, 72},    {"IVF100,PQ8", 10, 0, 16},
        {"SQfp16", 0, 0, 128},        {"HNSW32", 0, 64, 512},
    };
    for (size_t w = 0; w < sizeof rows / sizeof rows[0]; w++) {
        vdx_index *ix = NULL;
        vdx_status st = vdx_index_factory(d, rows[w].factory, VDX_METRIC_L2, &ix);
        if (st) return fail(rows[w].factory, st);
        t = now();
        if ((st = vdx_index_train(ix, nb, xb))) return fail("train", st);
        if (!strncmp(rows[w].factory, "IDMap", 5)) {
            int64_t *ids = malloc((size_t)nb * sizeof(int64_t));
            if (!ids) return fail("ids", VDX_ERR_OUT_OF_MEMORY);
            for (int64_t i = 0; i < nb; i++) ids[i] = i; /* keep GT ids */
            st = vdx_index_add_with_ids(ix, nb, xb, ids);
            free(ids);
        } else {
            st = vdx_index_add(ix, nb, xb);
        }
        if (st) return fail("add", st);
        double build = now() - t;
        vdx_search_params sp;
        vdx_search_params_init(&sp);
        sp.nprobe = rows[w].nprobe;
        sp.efSearch = rows[w].efsearch;
        t = now();
        if ((st = vdx_index_search(ix, nq, xq, k, &sp, D, I)))
            return fail("search", st);
        double qps = (double)nq / (now() - t);
        int64_t r1 = 0, r10 = 0;
        for (int64_t q = 0; q < ngt; q++) {
            r1 += I[q * k] == gt[q * k];
            for (int64_t j = 0; j < k; j++)
                for (int64_t u = 0; u < k; u++)
                    r10 += I[q * k + j] == gt[q * k + u];
        }
        char name[64];
        if (rows[w].nprobe)
            snprintf(name, sizeof name, "%s nprobe=%lld", rows[w].factory,
                     (long long)rows[w].nprobe);
        else if (rows[w].efsearch)
            snprintf(name, sizeof name, "%s efSearch=%lld", rows[w].factory,
                     (long long)rows[w].efsearch);
        else
            snprintf(name, sizeof name, "%s", rows[w].factory);
        double rec1 = (double)r1 / (double)ngt,
               rec10 = (double)r10 / (double)(ngt * k);
        if (json) {
            printf("%s{\"index\": ", w ? ", " : "");
            json_str(name);
            printf(", \"factory\": ");
            json_str(rows[w].factory);
            printf(", \"nprobe\": %lld, \"efSearch\": %lld, \"build_s\": %.6f, "
                   "\"qps\": %.1f, \"recall_at_1\": %.6f, \"recall_at_10\": %.6f, "
                   "\"bytes_per_vector\": %.0f}",
                   (long long)rows[w].nprobe, (long long)rows[w].efsearch, build,
                   qps, rec1, rec10, rows[w].bytes);
        } else {
            printf("%-26s %10.2f %12.0f %10.3f %10.3f %12.0f\n", name, build,
                   qps, rec1, rec10, rows[w].bytes);
        }
        vdx_index_free(ix);
    }
    if (json)
        printf("]}\n");
    else
        printf("\n(R@1: the true nearest neighbour is ranked first; R@10: "
               "share of the true 10 nearest found in the top 10.)\n");
    free(xb);
    free(xq);
    free(D);
    free(I);
    free(gt);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: vecdex COMMAND [ARGS]\n"
            "  build --factory STR [--metric l2|ip] [--train FILE] --add FILE "
            "-o INDEX\n"
            "        build an index from a factory string (\"IVF1024,Flat\")\n"
            "  search INDEX --queries FILE [-k 10] [--nprobe N] [--ef N] -o IDS "
            "[--distances FILE]\n"
            "        k-NN search; ids and distances go to .npy/.ivecs/.fvecs "
            "files\n"
            "        (distances default to IDS's stem + .dist.npy/.dist.fvecs)\n"
            "  eval INDEX --queries FILE (--gt FILE | --base FILE) [-k 10] "
            "[--nprobe N]\n"
            "        recall@1, recall@k, MAP and QPS (exact ground truth from "
            "--base)\n"
            "  bench --factory STR --base FILE --queries FILE [--train FILE] "
            "[--gt FILE]\n"
            "        [-k 10] [--sweep nprobe=1,4,16]   one row per value\n"
            "  info INDEX              type, d, ntotal, bytes, nlist/nprobe of "
            "an index file\n"
            "  demo [--nb N] [--nq N]  index built-in data, print recall and "
            "speed\n"
            "  version                 print version and build information\n"
            "  store create|upsert|search|hybrid|delete|get|info|compact PATH ...\n"
            "        a store: ids, metadata, filters, keyword + vector search "
            "(vecdex store --help)\n"
            "  store create|upsert|search|hybrid|delete|get|info|compact PATH ...\n"
            "        a store: ids, metadata, filters, keyword + vector search "
            "(vecdex store --help)\n"
            "common options: --json (one JSON object on stdout), --quiet (no "
            "progress bars),\n"
            "  --dim N (for raw .f32 files).  Vector files: .fvecs .ivecs "
            ".bvecs .npy .f32\n"
            "exit status: 0 ok, 1 runtime failure (bad file...), 2 usage "
            "error\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "demo")) return demo(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "store")) return cmd_store(argc - 2, argv + 2);
    if (!strcmp(cmd, "build")) return cmd_build(argc - 2, argv + 2);
    if (!strcmp(cmd, "search")) return cmd_search(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("vecdex %s\n%s\n", vdx_version(), vdx_build_info());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "vecdex: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
