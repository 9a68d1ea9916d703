/*
 * server.c — the HTTP daemon of `vecdex serve`, on libmicrohttpd (GNU's
 * embeddable HTTP/1.1 server: Debian's libmicrohttpd-dev, a C API, its own
 * thread pool, request size limits, no event loop to write).
 *
 * Each request is read into a buffer bounded by max_body (a Content-Length
 * above it is refused before the body is read; a chunked body that grows
 * past it is drained and refused), then answered by routes.c.  Writes need
 * the bearer token when one is set (compared in constant time).  The
 * daemon binds 127.0.0.1 unless told another address.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "serve.h"
#include "common/common.h"

void vdx_serve_options_init(vdx_serve_options *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->max_body = VDX_SERVE_BODY_DEFAULT;
    o->threads = VDX_SERVE_THREADS_DEFAULT;
}

typedef struct req {
    char *buf;
    size_t len, cap;
    int too_big;
    int route, write;
    struct timespec t0;
} req;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static enum MHD_Result send_reply(vdx_server *s, struct MHD_Connection *c,
                                  req *q, vdx_reply *r) {
    if (!r->body) { /* the reply could not be made: out of memory */
        r->status = 500;
        r->type = "application/json";
        r->body = strdup("{\"error\": \"out of memory\", \"status\": 500}");
        if (!r->body) return MHD_NO;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r->type ? r->type : "application/json");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    vdx_serve_metrics_record(&s->metrics, q->route, r->status, since(&q->t0));
    return ok;
}

/* constant-time comparison of the Authorization header with the token */
static int authorised(const vdx_server *s, struct MHD_Connection *c) {
    if (!s->token) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(s->token);
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < b; i++) diff |= (unsigned char)(h[i < a ? i : 0] ^ s->token[i]);
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    vdx_server *s = cls;
    req *q = *con_cls;
    if (!q) { /* first call: headers only */
        q = calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &q->t0);
        q->route = vdx_serve_route(method, url, &q->write);
        *con_cls = q;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (*end == 0 && v > s->opt.max_body) {
                vdx_reply r = {0};
                vdx_reply_error(&r, 413,
                                "request body too large: Content-Length %llu "
                                "exceeds the limit of %zu bytes (--max-body)",
                                v, s->opt.max_body);
                return send_reply(s, c, q, &r);
            }
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (q->too_big || q->len + n > s->opt.max_body) {
            q->too_big = 1; /* drained, not kept */
            free(q->buf);
            q->buf = NULL;
            q->len = q->cap = 0;
            return MHD_YES;
        }
        if (q->len + n + 1 > q->cap) {
            size_t nc = q->cap ? q->cap : 4096;
            while (nc < q->len + n + 1) nc *= 2;
            char *p = realloc(q->buf, nc);
            if (!p) return MHD_NO;
            q->buf = p;
            q->cap = nc;
        }
        memcpy(q->buf + q->len, upload, n);
        q->len += n;
        return MHD_YES;
    }
    vdx_reply r = {0};
    if (q->too_big) {
        vdx_reply_error(&r, 413, "request body too large: more than the limit "
                        "of %zu bytes (--max-body)", s->opt.max_body);
    } else if (q->write && !authorised(s, c)) {
        vdx_reply_error(&r, 401, "this write needs the header 'Authorization: "
                        "Bearer <token>' with the server's token");
    } else {
        if (q->buf) q->buf[q->len] = 0;
        vdx_serve_handle(s, q->route, q->buf ? q->buf : "", q->len, &r);
    }
    return send_reply(s, c, q, &r);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    req *q = *con_cls;
    if (q) {
        free(q->buf);
        free(q);
    }
    *con_cls = NULL;
}

vdx_status vdx_serve_start(vdx_index *index, vdx_store *store,
                           const vdx_serve_options *opt, vdx_server **out) {
    vdx_clear_error();
    *out = NULL;
    if ((index != NULL) + (store != NULL) + (opt && opt->remote_search) != 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "serve: give exactly one of an index, a store and a "
                         "remote search");
    vdx_serve_options o;
    if (opt) o = *opt;
    else vdx_serve_options_init(&o);
    if (!o.host) o.host = "127.0.0.1";
    if (o.port < 0 || o.port > 65535)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "serve: port %d must be in 0..65535", o.port);
    if (o.max_body < VDX_SERVE_BODY_MIN || o.max_body > VDX_SERVE_BODY_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "serve: max_body %zu must be in %zu..%zu", o.max_body,
                         VDX_SERVE_BODY_MIN, VDX_SERVE_BODY_MAX);
    if (o.threads < 1 || o.threads > VDX_SERVE_THREADS_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "serve: threads %d must be in 1..%d", o.threads,
                         VDX_SERVE_THREADS_MAX);
    struct sockaddr_in sa4;
    struct sockaddr_in6 sa6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    memset(&sa4, 0, sizeof sa4);
    memset(&sa6, 0, sizeof sa6);
    if (inet_pton(AF_INET, o.host, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((uint16_t)o.port);
        sa = (struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, o.host, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((uint16_t)o.port);
        sa = (struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "serve: host '%s' is not an IPv4 or IPv6 address",
                         o.host);
    }
    vdx_server *s = calloc(1, sizeof *s);
    if (!s) return VDX_ERR_OUT_OF_MEMORY;
    s->opt = o;
    s->index = index;
    s->store = store;
    if (o.token && *o.token) {
        s->token = strdup(o.token);
        if (!s->token) {
            free(s);
            return VDX_ERR_OUT_OF_MEMORY;
        }
    }
    s->opt.token = NULL;
    pthread_rwlock_init(&s->lock, NULL);
    pthread_mutex_init(&s->remote_mu, NULL);
    if (o.remote_search) {
        s->d = o.remote_d;
        atomic_store(&s->remote_nt, o.remote_ntotal);
    } else if (index) {
        s->d = vdx_index_d(index);
    } else {
        /* the store's dimension, from its description */
        const char *info = vdx_store_info(store);
        const char *p = info ? strstr(info, "\"dim\"") : NULL;
        if (p) p = strchr(p, ':');
        s->d = p ? strtoll(p + 1, NULL, 10) : 0;
    }
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)o.port, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)o.threads, MHD_OPTION_NOTIFY_COMPLETED, on_done, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024, MHD_OPTION_END);
    if (!s->daemon) {
        vdx_serve_stop(s);
        return vdx_raise(VDX_ERR_IO,
                         "serve: cannot listen on %s port %d (in use, or not "
                         "an address of this machine?)",
                         o.host, o.port);
    }
    *out = s;
    return VDX_OK;
}

int vdx_serve_port(const vdx_server *s) {
    const union MHD_DaemonInfo *i =
        MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

void vdx_serve_stop(vdx_server *s) {
    if (!s) return;
    if (s->daemon) MHD_stop_daemon(s->daemon);
    pthread_rwlock_destroy(&s->lock);
    pthread_mutex_destroy(&s->remote_mu);
    free(s->token);
    free(s);
}
