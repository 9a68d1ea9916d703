/*
 * metrics.c — the server's counters and per-route latency histograms,
 * printed in Prometheus's text exposition format (version 0.0.4): lock-free
 * atomic counters, so recording never serialises the request threads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static const char *const route_names[R_COUNT] = {
    "search", "add", "upsert", "delete", "info", "health", "metrics", "save", "other"};

/* upper bounds (seconds) of the histogram's buckets; the last is +Inf */
static const double bounds[VDX_SERVE_NBUCKET - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1.0,   2.5,  5.0};

const char *vdx_serve_route_name(int route) {
    return route >= 0 && route < R_COUNT ? route_names[route] : "other";
}

void vdx_serve_metrics_record(vdx_serve_metrics *m, int route, int status,
                              double seconds) {
    if (route < 0 || route >= R_COUNT) route = R_OTHER;
    atomic_fetch_add(&m->requests[route], 1);
    if (status >= 400 && status < 500) atomic_fetch_add(&m->client_errors[route], 1);
    if (status >= 500) atomic_fetch_add(&m->server_errors[route], 1);
    int b = 0;
    while (b < VDX_SERVE_NBUCKET - 1 && seconds > bounds[b]) b++;
    atomic_fetch_add(&m->lat_bucket[route][b], 1);
    atomic_fetch_add(&m->lat_sum_ns[route], (long long)(seconds * 1e9));
}

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        size_t nc = 2 * b->cap + (size_t)w + 1;
        char *p = realloc(b->buf, nc);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->buf = p;
        b->cap = nc;
    }
}

char *vdx_serve_metrics_text(vdx_serve_metrics *m, int64_t ntotal) {
    sbuf b = {malloc(4096), 0, 4096, 0};
    if (!b.buf) return NULL;
    b.buf[0] = 0;
    put(&b, "# HELP vecdex_requests_total HTTP requests answered, by route.\n"
            "# TYPE vecdex_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        put(&b, "vecdex_requests_total{route=\"%s\"} %lld\n", route_names[r],
            (long long)atomic_load(&m->requests[r]));
    put(&b, "# HELP vecdex_errors_total Requests answered with an error, by "
            "route and class (4xx: the request's fault, 5xx: the server's).\n"
            "# TYPE vecdex_errors_total counter\n");
    for (int r = 0; r < R_COUNT; r++) {
        put(&b, "vecdex_errors_total{route=\"%s\",class=\"4xx\"} %lld\n",
            route_names[r], (long long)atomic_load(&m->client_errors[r]));
        put(&b, "vecdex_errors_total{route=\"%s\",class=\"5xx\"} %lld\n",
            route_names[r], (long long)atomic_load(&m->server_errors[r]));
    }
    put(&b, "# HELP vecdex_queries_total Query vectors searched.\n"
            "# TYPE vecdex_queries_total counter\n"
            "vecdex_queries_total %lld\n",
        (long long)atomic_load(&m->queries));
    put(&b, "# HELP vecdex_index_vectors Vectors in the index.\n"
            "# TYPE vecdex_index_vectors gauge\n"
            "vecdex_index_vectors %lld\n",
        (long long)ntotal);
    put(&b, "# HELP vecdex_request_duration_seconds Time to answer a request "
            "(body read to response queued), by route.\n"
            "# TYPE vecdex_request_duration_seconds histogram\n");
    for (int r = 0; r < R_COUNT; r++) {
        long long cum = 0;
        for (int k = 0; k < VDX_SERVE_NBUCKET; k++) {
            cum += atomic_load(&m->lat_bucket[r][k]);
            if (k < VDX_SERVE_NBUCKET - 1)
                put(&b, "vecdex_request_duration_seconds_bucket{route=\"%s\","
                        "le=\"%g\"} %lld\n",
                    route_names[r], bounds[k], cum);
            else
                put(&b, "vecdex_request_duration_seconds_bucket{route=\"%s\","
                        "le=\"+Inf\"} %lld\n",
                    route_names[r], cum);
        }
        put(&b, "vecdex_request_duration_seconds_sum{route=\"%s\"} %.9f\n",
            route_names[r], (double)atomic_load(&m->lat_sum_ns[r]) * 1e-9);
        put(&b, "vecdex_request_duration_seconds_count{route=\"%s\"} %lld\n",
            route_names[r], cum);
    }
    if (b.oom) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}
