/*
 * fuzz_serve.c — libFuzzer target for the request handling of `vecdex
 * serve` (src/serve/routes.c): the JSON bodies of every route.
 *
 * Input: byte 0 picks the route (search, add, upsert, delete, info,
 * health, metrics, other); the rest is the body.  It runs on an
 * IndexIDMap(IndexFlatL2) of d = 4 holding 16 vectors (reset when it grows
 * past 4096), without the HTTP daemon.  vdx_serve_handle must answer with
 * a status in 200..599 and a JSON body (text for /metrics) whose "status"
 * matches for errors; a 5xx for a request that only a client could have
 * got wrong is a finding, as is any crash or leak.  A broken invariant
 * aborts.
 *
 * Seeds: tests/fuzz/corpus_serve (make_seeds.py).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"

#define D 4

static vdx_server *srv;

static void die(const char *what, const vdx_reply *r) {
    fprintf(stderr, "fuzz_serve: %s (status %d): %s\n", what, r->status,
            r->body ? r->body : "(no body)");
    abort();
}

static void setup(void) {
    vdx_index *flat = NULL, *ix = NULL;
    if (vdx_index_flat_new(D, VDX_METRIC_L2, &flat) ||
        vdx_index_idmap_new(flat, &ix))
        abort();
    float x[16 * D];
    vdx_idx_t ids[16];
    for (int i = 0; i < 16 * D; i++) x[i] = (float)((i * 7) % 11) / 11.0f;
    for (int i = 0; i < 16; i++) ids[i] = 100 + i;
    if (vdx_index_add_with_ids(ix, 16, x, ids)) abort();
    srv = calloc(1, sizeof *srv);
    if (!srv) abort();
    srv->index = ix;
    srv->d = D;
    pthread_rwlock_init(&srv->lock, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!srv) setup();
    if (size < 1) return 0;
    int route = data[0] % R_COUNT;
    char *body = malloc(size);
    if (!body) abort();
    memcpy(body, data + 1, size - 1);
    body[size - 1] = 0;
    vdx_reply r = {0};
    vdx_serve_handle(srv, route, body, size - 1, &r);
    free(body);
    if (!r.body) die("no body", &r);
    if (r.status < 200 || r.status > 599) die("bad status", &r);
    if (r.status >= 500 && r.status != 503) die("server error", &r);
    if (route != R_METRICS) {
        json_t *o = json_loads(r.body, 0, NULL);
        if (!json_is_object(o)) die("reply is not a JSON object", &r);
        if (r.status >= 400 &&
            (json_integer_value(json_object_get(o, "status")) != r.status ||
             !json_is_string(json_object_get(o, "error"))))
            die("error reply without status / message", &r);
        json_decref(o);
    }
    free(r.body);
    if (vdx_index_ntotal(srv->index) > 4096) vdx_index_reset(srv->index);
    return 0;
}
