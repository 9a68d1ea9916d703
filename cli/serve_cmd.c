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
            "/delete (JSON)\n");
}

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
    const char *path = NULL;
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
