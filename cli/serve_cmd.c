/*
 * serve_cmd.c — `vecdex serve INDEX_OR_STORE [--port 8080] ...`: loads an
 * index file (FAISS format), a sharded directory (vecdex-manifest.txt) or a
 * store, and answers HTTP (src/serve) until SIGINT / SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "serve/serve.h"
#ifdef VDX_HAVE_MPI
#include "vecdex_dist.h"
#endif

static void serve_usage(FILE *f) {
    fprintf(f,
            "usage: vecdex serve INDEX_OR_STORE [--port 8080] [--host 127.0.0.1]\n"
            "         [--token TOKEN] [--max-body BYTES] [--threads N]\n"
            "  INDEX_OR_STORE: an index file (FAISS format), a sharded "
            "directory, or a store\n"
            "  --port 0 picks a free port; the address is printed on stdout\n"
            "  --token (or $VECDEX_SERVE_TOKEN): writes need "
            "'Authorization: Bearer TOKEN'\n"
            "  routes: GET /health /info /metrics, POST /search /add /upsert "
            "/delete (JSON)\n"
            "       mpirun -np N vecdex serve --sharded DIR [--deadline-ms 10000] "
            "[options above]\n"
            "  DIR: a sharded directory of N shards (write_index of an "
            "IndexShards); rank r\n"
            "  holds shard r, rank 0 answers HTTP (searches only; "
            "\"allow_partial\": true\n"
            "  returns what the ranks that answered in time found, with "
            "\"_shards\")\n");
}

#ifdef VDX_HAVE_MPI
typedef struct {
    vdx_dist *g;
    double deadline_s;
} dist_ctx;

static vdx_status dist_search(void *ctx, int64_t n, const float *x, int64_t k,
                              const vdx_search_params *p, int allow_partial,
                              float *D, vdx_idx_t *I, int *answered, int *total) {
    dist_ctx *c = ctx;
    *total = vdx_dist_size(c->g);
    return vdx_dist_search(c->g, n, x, k, p, c->deadline_s, allow_partial, D, I,
                           answered);
}

/* the shard count a manifest names, or -1 */
static long manifest_count(const char *dir) {
    char path[4096], line[512];
    snprintf(path, sizeof path, "%s/%s", dir, VDX_SHARDS_MANIFEST);
    FILE *f = fopen(path, "r");
    long c = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "count ", 6)) c = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return c;
}

static int serve_sharded(const char *dir, vdx_serve_options *o, double deadline_s) {
    int prov = 0, rank = 0, size = 1;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &prov) != MPI_SUCCESS) {
        fprintf(stderr, "vecdex serve: MPI_Init failed\n");
        return EXIT_RUNTIME;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char err[8800] = "";
    vdx_index *shard = NULL;
    long count = manifest_count(dir);
    if (count != size) {
        snprintf(err, sizeof err, "'%s' holds %ld shards (its %s), mpirun "
                 "started %d ranks: give -np %ld", dir, count,
                 VDX_SHARDS_MANIFEST, size, count);
    } else {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/shard-%d.faissindex", dir, rank);
        vdx_status st;
        if (stat(path, &sb) == 0) {
            st = vdx_read_index(path, 0, &shard);
        } else {
            snprintf(path, sizeof path, "%s/shard-%d", dir, rank);
            st = vdx_read_sharded(path, 0, &shard);
        }
        if (st) snprintf(err, sizeof err, "rank %d: cannot load '%s': %s", rank, path,
                         vdx_last_error());
    }
    /* every rank learns whether all loaded */
    int bad = err[0] != 0, anybad = 0;
    MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    vdx_dist *g = NULL;
    if (!anybad && vdx_dist_open(MPI_COMM_WORLD, shard, &g))
        snprintf(err, sizeof err, "rank %d: %s", rank, vdx_last_error());
    if (err[0]) fprintf(stderr, "vecdex serve: %s\n", err);
    if (anybad || !g) {
        vdx_index_free(shard);
        MPI_Finalize();
        return EXIT_RUNTIME;
    }
    int rc = 0;
    if (rank != 0) {
        if (vdx_dist_worker_loop(g)) {
            fprintf(stderr, "vecdex serve: rank %d: %s\n", rank, vdx_last_error());
            rc = EXIT_RUNTIME;
        }
    } else {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        dist_ctx c = {g, deadline_s};
        o->remote_search = dist_search;
        o->remote_ctx = &c;
        o->remote_d = vdx_dist_d(g);
        o->remote_ntotal = vdx_dist_ntotal(g);
        vdx_server *srv = NULL;
        if (vdx_serve_start(NULL, NULL, o, &srv)) {
            fprintf(stderr, "vecdex serve: %s\n", vdx_last_error());
            rc = EXIT_RUNTIME;
        } else {
            printf("vecdex serve: listening on http://%s:%d (%d MPI ranks, %lld "
                   "vectors)\n", o->host, vdx_serve_port(srv), size,
                   (long long)vdx_dist_ntotal(g));
            fflush(stdout);
            int sig = 0;
            sigwait(&set, &sig);
            vdx_serve_stop(srv);
        }
    }
    vdx_dist_close(g);
    vdx_index_free(shard);
    MPI_Finalize();
    return rc;
}
#endif

static int parse_num(const char *s, long long lo, long long hi, long long *v) {
    char *end;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    vdx_serve_options o;
    vdx_serve_options_init(&o);
    o.port = 8080;
    o.token = getenv("VECDEX_SERVE_TOKEN");
    const char *path = NULL, *sharded = NULL;
    double deadline_s = 10.0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long long v;
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            serve_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--port") && more) {
            if (parse_num(argv[++i], 0, 65535, &v)) goto bad_value;
            o.port = (int)v;
        } else if (!strcmp(a, "--sharded") && more) {
            sharded = argv[++i];
        } else if (!strcmp(a, "--deadline-ms") && more) {
            if (parse_num(argv[++i], 1, 3600000, &v)) goto bad_value;
            deadline_s = (double)v / 1000.0;
        } else if (!strcmp(a, "--host") && more) {
            o.host = argv[++i];
        } else if (!strcmp(a, "--token") && more) {
            o.token = argv[++i];
        } else if (!strcmp(a, "--max-body") && more) {
            if (parse_num(argv[++i], (long long)VDX_SERVE_BODY_MIN,
                          (long long)VDX_SERVE_BODY_MAX, &v))
                goto bad_value;
            o.max_body = (size_t)v;
        } else if (!strcmp(a, "--threads") && more) {
            if (parse_num(argv[++i], 1, VDX_SERVE_THREADS_MAX, &v)) goto bad_value;
            o.threads = (int)v;
        } else if (a[0] == '-' || path) {
            fprintf(stderr, "vecdex serve: unexpected argument '%s'\n", a);
            serve_usage(stderr);
            return EXIT_USAGE;
        } else {
            path = a;
        }
        continue;
    bad_value:
        fprintf(stderr, "vecdex serve: bad value '%s' for %s\n", argv[i], a);
        return EXIT_USAGE;
    }
    if (sharded) {
        if (path) {
            fprintf(stderr, "vecdex serve: give INDEX_OR_STORE or --sharded DIR, "
                    "not both\n");
            return EXIT_USAGE;
        }
#ifdef VDX_HAVE_MPI
        return serve_sharded(sharded, &o, deadline_s);
#else
        (void)deadline_s;
        fprintf(stderr, "vecdex serve: --sharded needs a vecdex built with MPI "
                "(libopenmpi-dev)\n");
        return EXIT_RUNTIME;
#endif
    }
    if (!path) {
        serve_usage(stderr);
        return EXIT_USAGE;
    }
    vdx_index *ix = NULL;
    vdx_store *st = NULL;
    struct stat sb;
    vdx_status rc;
    char manifest[4096];
    snprintf(manifest, sizeof manifest, "%s/%s", path, VDX_SHARDS_MANIFEST);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && stat(manifest, &sb) != 0)
        rc = vdx_store_open(path, NULL, &st);
    else if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        rc = vdx_read_sharded(path, 0, &ix);
    else
        rc = vdx_read_index(path, 0, &ix);
    if (rc) {
        fprintf(stderr, "vecdex serve: cannot load '%s': %s\n", path, vdx_last_error());
        return EXIT_RUNTIME;
    }
    /* the signals are waited for here: the server's threads inherit the
     * mask, so none of them takes SIGINT */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    vdx_server *srv = NULL;
    if ((rc = vdx_serve_start(ix, st, &o, &srv))) {
        fprintf(stderr, "vecdex serve: %s\n", vdx_last_error());
        vdx_index_free(ix);
        vdx_store_close(st);
        return EXIT_RUNTIME;
    }
    int ipv6 = strchr(o.host, ':') != NULL;
    printf("vecdex serve: listening on http://%s%s%s:%d (%s%s)\n",
           ipv6 ? "[" : "", o.host, ipv6 ? "]" : "", vdx_serve_port(srv),
           st ? "store" : vdx_index_type_name(ix),
           o.token && *o.token ? ", writes need the token" : "");
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    vdx_serve_stop(srv);
    vdx_index_free(ix);
    rc = vdx_store_close(st);
    fprintf(stderr, "vecdex serve: stopped (signal %d)\n", sig);
    return rc ? EXIT_RUNTIME : 0;
}
