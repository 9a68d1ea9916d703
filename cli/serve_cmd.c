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
#include "common/common.h"
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
            "  holds shard r, rank 0 answers HTTP and routes the writes "
            "(\"allow_partial\": true\n"
            "  in a search returns what the ranks that answered in time "
            "found, with \"_shards\")\n"
            "  --create FACTORY --dim D [--metric l2|ip] [--train FILE]: DIR "
            "without a manifest\n"
            "  starts empty: rank 0 builds FACTORY (with IDMap, so that "
            "shards keep ids),\n"
            "  trains it on FILE and broadcasts it; POST /save or "
            "--save-on-exit write every\n"
            "  shard into DIR (stop with SIGUSR1 to mpirun, which forwards "
            "it: SIGTERM gives\n"
            "  the ranks 1 s before mpirun kills them)\n");
}

#ifdef VDX_HAVE_MPI
typedef struct {
    vdx_dist *g;
    double deadline_s;
    const char *dir;
} dist_ctx;

static vdx_status dist_search(void *ctx, int64_t n, const float *x, int64_t k,
                              const vdx_search_params *p, int allow_partial,
                              float *D, vdx_idx_t *I, int *answered, int *total) {
    dist_ctx *c = ctx;
    *total = vdx_dist_size(c->g);
    return vdx_dist_search(c->g, n, x, k, p, c->deadline_s, allow_partial, D, I,
                           answered);
}

static vdx_status dist_write(void *ctx, int route, int64_t n, const float *x,
                             const vdx_idx_t *ids, int64_t *count, int64_t *ntotal) {
    dist_ctx *c = ctx;
    vdx_status st;
    *count = 0;
    if (route == R_ADD) {
        st = vdx_dist_add(c->g, n, x, ids, c->deadline_s, NULL, count);
    } else if (route == R_DELETE) {
        st = vdx_dist_remove_ids(c->g, n, ids, c->deadline_s, count);
    } else if (route == R_UPSERT) {
        /* the old vectors of these ids go first, wherever they are (an id
         * added without ids was routed round robin, not by its hash) */
        int64_t removed = 0;
        st = vdx_dist_remove_ids(c->g, n, ids, c->deadline_s, &removed);
        if (!st) st = vdx_dist_add(c->g, n, x, ids, c->deadline_s, NULL, count);
        else st = vdx_raise(st, "upsert: the removal of the old vectors: %s; "
                            "nothing was added", vdx_last_error());
    } else {
        st = vdx_dist_save(c->g, c->dir, c->deadline_s);
    }
    *ntotal = vdx_dist_ntotal(c->g);
    return st;
}

/* A new sharded index in dir (no manifest yet): rank 0 builds it from the
 * factory string (an IDMap around kinds that number vectors by position,
 * so that the shards take writes) and trains it on the train file when it
 * needs training; the trained, empty index is broadcast to every rank. */
static vdx_status create_shard(const char *factory, int64_t dim, vdx_metric metric,
                               const char *train, int rank, vdx_index **shard) {
    vdx_index *ix = NULL;
    vdx_status st = VDX_OK;
    char err[1024] = "";
    if (rank == 0) {
        st = vdx_index_factory(dim, factory, metric, &ix);
        if (!st && !vdx_index_sub_index(ix) &&
            strncmp(vdx_index_type_name(ix), "IndexIVF", 8)) {
            char idmap[600];
            snprintf(idmap, sizeof idmap, "IDMap,%s", factory);
            vdx_index_free(ix);
            ix = NULL;
            st = vdx_index_factory(dim, idmap, metric, &ix);
        }
        if (st) {
            snprintf(err, sizeof err, "--create '%s': %s", factory, vdx_last_error());
        } else if (!vdx_index_is_trained(ix)) {
            matrix m = {0};
            if (!train) {
                snprintf(err, sizeof err, "--create '%s' needs training: give "
                         "--train FILE (vectors of d=%lld)", factory, (long long)dim);
            } else if (mat_read(train, dim, &m, err, sizeof err) ||
                       mat_to_f32(&m, err, sizeof err)) {
                /* err says why */
            } else if (m.d != dim) {
                snprintf(err, sizeof err, "--train '%s' has d=%lld, --dim is %lld",
                         train, (long long)m.d, (long long)dim);
            } else if (vdx_index_train(ix, m.n, m.data)) {
                snprintf(err, sizeof err, "training on '%s': %s", train, vdx_last_error());
            }
            mat_free(&m);
        }
        if (err[0]) {
            vdx_index_free(ix);
            ix = NULL;
        }
    }
    st = vdx_dist_bcast_index(MPI_COMM_WORLD, 0, &ix);
    if (st && err[0]) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s", err);
    if (st) return st;
    *shard = ix;
    return VDX_OK;
}

typedef struct {
    const char *create, *train;
    int64_t dim;
    vdx_metric metric;
    int save_on_exit;
} sharded_opts;

static int serve_sharded(const char *dir, vdx_serve_options *o, double deadline_s,
                         const sharded_opts *so) {
    int prov = 0, rank = 0, size = 1;
    /* Stopping: rank 0 waits for SIGINT / SIGTERM / SIGUSR1, then (with
     * --save-on-exit) saves, then tells the ranks to leave; the other ranks
     * block those signals so that they are there for the save.  mpirun
     * forwards SIGUSR1 and leaves the job alone; on SIGTERM it gives the
     * ranks odls_base_sigkill_timeout (1 s) before SIGKILL.  Blocked before
     * MPI_Init so that MPI's threads inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &prov) != MPI_SUCCESS) {
        fprintf(stderr, "vecdex serve: MPI_Init failed\n");
        return EXIT_RUNTIME;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    vdx_index *shard = NULL;
    char manifest[4200];
    struct stat sb;
    snprintf(manifest, sizeof manifest, "%s/%s", dir, VDX_SHARDS_MANIFEST);
    /* every rank decides the same way: rank 0's view of the directory */
    int exists = stat(manifest, &sb) == 0;
    MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
    vdx_status st;
    int ids = VDX_DIST_IDS_GLOBAL; /* a new index: the dist assigns the ids */
    if (exists || !so->create)
        st = vdx_dist_load(MPI_COMM_WORLD, dir, 0, &shard, &ids);
    else
        st = create_shard(so->create, so->dim, so->metric, so->train, rank, &shard);
    vdx_dist *g = NULL;
    if (!st) st = vdx_dist_open_ex(MPI_COMM_WORLD, shard, ids, &g);
    if (st) {
        if (rank == 0) fprintf(stderr, "vecdex serve: %s\n", vdx_last_error());
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
        dist_ctx c = {g, deadline_s, dir};
        o->remote_search = dist_search;
        o->remote_write = vdx_dist_writable(g) ? dist_write : NULL;
        o->remote_ctx = &c;
        o->remote_d = vdx_dist_d(g);
        o->remote_ntotal = vdx_dist_ntotal(g);
        vdx_server *srv = NULL;
        if (vdx_serve_start(NULL, NULL, o, &srv)) {
            fprintf(stderr, "vecdex serve: %s\n", vdx_last_error());
            rc = EXIT_RUNTIME;
        } else {
            printf("vecdex serve: listening on http://%s:%d (%d MPI ranks, %lld "
                   "vectors%s)\n", o->host, vdx_serve_port(srv), size,
                   (long long)vdx_dist_ntotal(g),
                   vdx_dist_writable(g) ? "" : ", searches only: the shards do "
                   "not carry ids");
            fflush(stdout);
            int sig = 0;
            sigwait(&set, &sig);
            vdx_serve_stop(srv); /* waits for the requests in flight */
            if (so->save_on_exit && vdx_dist_writable(g)) {
                if (vdx_dist_save(g, dir, deadline_s)) {
                    fprintf(stderr, "vecdex serve: --save-on-exit: %s\n", vdx_last_error());
                    rc = EXIT_RUNTIME;
                } else {
                    fprintf(stderr, "vecdex serve: saved %lld vectors to '%s'\n",
                            (long long)vdx_dist_ntotal(g), dir);
                }
            }
            fprintf(stderr, "vecdex serve: stopped (signal %d)\n", sig);
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
    const char *create = NULL, *train = NULL;
    int64_t dim = 0;
    vdx_metric metric = VDX_METRIC_L2;
    int save_on_exit = 0;
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
        } else if (!strcmp(a, "--create") && more) {
            create = argv[++i];
        } else if (!strcmp(a, "--dim") && more) {
            if (parse_num(argv[++i], 1, 1 << 20, &v)) goto bad_value;
            dim = v;
        } else if (!strcmp(a, "--metric") && more) {
            const char *m = argv[++i];
            if (!strcmp(m, "l2") || !strcmp(m, "L2")) metric = VDX_METRIC_L2;
            else if (!strcmp(m, "ip") || !strcmp(m, "IP")) metric = VDX_METRIC_INNER_PRODUCT;
            else goto bad_value;
        } else if (!strcmp(a, "--train") && more) {
            train = argv[++i];
        } else if (!strcmp(a, "--save-on-exit")) {
            save_on_exit = 1;
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
        if (create && !dim) {
            fprintf(stderr, "vecdex serve: --create needs --dim D\n");
            return EXIT_USAGE;
        }
#ifdef VDX_HAVE_MPI
        sharded_opts so = {create, train, dim, metric, save_on_exit};
        return serve_sharded(sharded, &o, deadline_s, &so);
#else
        (void)deadline_s;
        (void)train;
        (void)metric;
        (void)save_on_exit;
        fprintf(stderr, "vecdex serve: --sharded needs a vecdex built with MPI "
                "(libopenmpi-dev)\n");
        return EXIT_RUNTIME;
#endif
    }
    if (create || train || dim || save_on_exit) {
        fprintf(stderr, "vecdex serve: --create, --dim, --metric, --train and "
                "--save-on-exit go with --sharded DIR\n");
        return EXIT_USAGE;
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
