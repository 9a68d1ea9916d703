/*
 * store_cmd.c — `vecdex store SUBCOMMAND PATH ...`, the store from the shell:
 *
 *   create  PATH --dim N [--metric cosine|l2|ip] [--index STR] [--schema JSON] [--no-text]
 *   upsert  PATH --vectors F (--rows F.jsonl | --ids F)   rows: {"id", "metadata", "text"}
 *   search  PATH --queries F [-k 10] [--where JSON] [--ef N] [--nprobe N]
 *   hybrid  PATH --query F --text STR [-k 10] [--where JSON] [--fusion rrf|weighted]
 *   delete  PATH (--ids A,B,... | --where JSON)
 *   get     PATH --ids A,B,...
 *   info    PATH
 *   compact PATH
 *
 * Results are JSON on stdout (one line per query for search).  Ids given on
 * the command line that parse as integers are integer ids.  Exit status as
 * the other commands: 0, 1 runtime failure, 2 usage error.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int fail(const char *what, vdx_status st) {
    fprintf(stderr, "vecdex store: %s: %s (%s)\n", what, vdx_last_error(),
            vdx_status_name(st));
    return EXIT_RUNTIME;
}

static int usage(const char *msg, const char *a) {
    fprintf(stderr, "vecdex store: ");
    fprintf(stderr, msg, a);
    fprintf(stderr, " (see vecdex store --help)\n");
    return EXIT_USAGE;
}

typedef struct sopts {
    const char *path, *vectors, *rows, *ids, *queries, *query, *text, *where,
        *index, *schema, *metric, *fusion;
    int64_t dim, k, ef, nprobe;
    int no_text;
} sopts;

static int parse(int argc, char **argv, sopts *o) {
    memset(o, 0, sizeof *o);
    o->k = 10;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (o->path) return usage("unexpected argument '%s'", a);
            o->path = a;
            continue;
        }
        if (!strcmp(a, "--no-text")) {
            o->no_text = 1;
            continue;
        }
        if (!strcmp(a, "--json") || !strcmp(a, "--quiet")) continue;
        if (i + 1 >= argc) return usage("option '%s' needs a value", a);
        const char *v = argv[++i];
        const char **s = !strcmp(a, "--vectors")  ? &o->vectors
                         : !strcmp(a, "--rows")   ? &o->rows
                         : !strcmp(a, "--ids")    ? &o->ids
                         : !strcmp(a, "--queries") ? &o->queries
                         : !strcmp(a, "--query")  ? &o->query
                         : !strcmp(a, "--text")   ? &o->text
                         : !strcmp(a, "--where")  ? &o->where
                         : !strcmp(a, "--index")  ? &o->index
                         : !strcmp(a, "--schema") ? &o->schema
                         : !strcmp(a, "--metric") ? &o->metric
                         : !strcmp(a, "--fusion") ? &o->fusion
                                                  : NULL;
        if (s) {
            *s = v;
            continue;
        }
        int64_t *n = !strcmp(a, "--dim") ? &o->dim : !strcmp(a, "-k") ? &o->k
                     : !strcmp(a, "--ef") ? &o->ef : !strcmp(a, "--nprobe") ? &o->nprobe
                                                                          : NULL;
        if (!n) return usage("unknown option '%s'", a);
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || *end || x < 1 || x > (1LL << 30))
            return usage("%s expects a positive integer", a);
        *n = x;
    }
    if (!o->path) return usage("%s", "missing the store PATH");
    return 0;
}

/* "1,abc,3" -> keys (text ids point into the copy *buf) */
static vdx_store_key *parse_ids(const char *s, int64_t *n, char **buf) {
    *buf = strdup(s);
    int64_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    vdx_store_key *k = calloc((size_t)cap, sizeof *k);
    *n = 0;
    for (char *tok = strtok(*buf, ","); tok; tok = strtok(NULL, ",")) {
        char *end;
        errno = 0;
        long long x = strtoll(tok, &end, 10);
        if (!errno && !*end && end != tok) k[*n].id = x;
        else k[*n].text = tok;
        (*n)++;
    }
    return k;
}

static json_t *key_json(const vdx_store_key *k) {
    return k->text ? json_string(k->text) : json_integer(k->id);
}

static void print_hits(const vdx_store_hits *h) {
    for (int64_t q = 0; q < h->nq; q++) {
        json_t *arr = json_array();
        for (int64_t j = 0; j < h->count[q]; j++) {
            const vdx_store_hit *e = &h->hits[q * h->k + j];
            json_t *o = json_object();
            json_object_set_new(o, "id", key_json(&e->key));
            json_object_set_new(o, "score", json_real(e->score));
            if (e->metadata)
                json_object_set_new(o, "metadata", json_loads(e->metadata, 0, NULL));
            if (e->text) json_object_set_new(o, "text", json_string(e->text));
            json_array_append_new(arr, o);
        }
        json_t *line = json_pack("{s:I,s:o}", "query", (json_int_t)q, "hits", arr);
        char *t = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
        puts(t);
        free(t);
        json_decref(line);
    }
}

static int open_store(const sopts *o, int ro, vdx_store **s) {
    vdx_store_options opt;
    vdx_store_options_init(&opt);
    opt.read_only = ro;
    vdx_status st = vdx_store_open(o->path, &opt, s);
    return st ? fail(o->path, st) : 0;
}

static int do_upsert(const sopts *o, vdx_store *s) {
    if (!o->vectors) return usage("%s", "upsert needs --vectors");
    if (!o->rows && !o->ids) return usage("%s", "upsert needs --rows or --ids");
    matrix x;
    char err[512];
    if (mat_read(o->vectors, o->dim, &x, err, sizeof err) ||
        mat_to_f32(&x, err, sizeof err)) {
        fprintf(stderr, "vecdex store: %s\n", err);
        return EXIT_RUNTIME;
    }
    int rc = 0;
    vdx_store_key *keys = calloc((size_t)(x.n ? x.n : 1), sizeof *keys);
    char **meta = calloc((size_t)(x.n ? x.n : 1), sizeof *meta);
    const char **texts = calloc((size_t)(x.n ? x.n : 1), sizeof *texts);
    json_t **rows = calloc((size_t)(x.n ? x.n : 1), sizeof *rows);
    char *idbuf = NULL;
    int64_t n = 0;
    if (o->rows) {
        FILE *f = fopen(o->rows, "r");
        if (!f) {
            fprintf(stderr, "vecdex store: cannot open %s: %s\n", o->rows, strerror(errno));
            rc = EXIT_RUNTIME;
            goto out;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            if (len <= 1) continue;
            json_error_t je;
            json_t *r = json_loads(line, 0, &je);
            if (n >= x.n || !json_is_object(r) || !json_object_get(r, "id")) {
                fprintf(stderr, "vecdex store: %s line %lld: %s\n", o->rows,
                        (long long)n + 1,
                        !r ? je.text : n >= x.n ? "more rows than vectors"
                                                : "expected an object with \"id\"");
                json_decref(r);
                rc = EXIT_RUNTIME;
                break;
            }
            rows[n] = r;
            json_t *id = json_object_get(r, "id"), *m = json_object_get(r, "metadata"),
                   *t = json_object_get(r, "text");
            if (json_is_string(id)) keys[n].text = json_string_value(id);
            else keys[n].id = json_integer_value(id);
            if (m && !json_is_null(m)) meta[n] = json_dumps(m, JSON_COMPACT);
            if (json_is_string(t)) texts[n] = json_string_value(t);
            n++;
        }
        free(line);
        fclose(f);
        if (!rc && n != x.n) {
            fprintf(stderr, "vecdex store: %s has %lld rows for %lld vectors\n",
                    o->rows, (long long)n, (long long)x.n);
            rc = EXIT_RUNTIME;
        }
    } else {
        int64_t ni;
        free(keys);
        keys = parse_ids(o->ids, &ni, &idbuf);
        n = ni;
        if (n != x.n) {
            fprintf(stderr, "vecdex store: %lld ids for %lld vectors\n",
                    (long long)n, (long long)x.n);
            rc = EXIT_RUNTIME;
        }
    }
    if (!rc) {
        vdx_status st = vdx_store_upsert(s, x.n, keys, x.data,
                                         (const char *const *)meta, texts);
        if (st) rc = fail("upsert", st);
        else printf("{\"upserted\": %lld}\n", (long long)x.n);
    }
out:
    for (int64_t i = 0; i < x.n; i++) {
        free(meta[i]);
        json_decref(rows[i]);
    }
    free(meta);
    free(texts);
    free(rows);
    free(keys);
    free(idbuf);
    mat_free(&x);
    return rc;
}

int cmd_store(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "--help")) {
        fprintf(argc < 1 ? stderr : stdout,
                "usage: vecdex store create PATH --dim N [--metric cosine|l2|ip] "
                "[--index STR] [--schema JSON] [--no-text]\n"
                "       vecdex store upsert PATH --vectors F (--rows F.jsonl | --ids A,B,..)\n"
                "       vecdex store search PATH --queries F [-k 10] [--where JSON] [--ef N] [--nprobe N]\n"
                "       vecdex store hybrid PATH --query F --text STR [-k 10] [--where JSON] "
                "[--fusion rrf|weighted]\n"
                "       vecdex store delete PATH (--ids A,B,.. | --where JSON)\n"
                "       vecdex store get|info|compact PATH [--ids A,B,..]\n");
        return argc < 1 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[0];
    sopts o;
    int rc = parse(argc - 1, argv + 1, &o);
    if (rc) return rc;
    vdx_store *s = NULL;
    vdx_status st;
    if (!strcmp(sub, "create")) {
        if (!o.dim) return usage("%s", "create needs --dim");
        vdx_store_options opt;
        vdx_store_options_init(&opt);
        opt.index = o.index;
        opt.schema = o.schema;
        opt.text = !o.no_text;
        if (o.metric) {
            if (!strcmp(o.metric, "l2")) opt.metric = VDX_STORE_METRIC_L2;
            else if (!strcmp(o.metric, "ip")) opt.metric = VDX_STORE_METRIC_IP;
            else if (!strcmp(o.metric, "cosine")) opt.metric = VDX_STORE_METRIC_COSINE;
            else return usage("--metric must be cosine, l2 or ip, got '%s'", o.metric);
        }
        if ((st = vdx_store_create(o.path, o.dim, &opt, &s)))
            return fail(o.path, st) + (st == VDX_ERR_INVALID_ARGUMENT);
        puts(vdx_store_info(s));
        return vdx_store_close(s) ? fail("close", VDX_ERR_IO) : 0;
    }
    int ro = !strcmp(sub, "search") || !strcmp(sub, "hybrid") ||
             !strcmp(sub, "get") || !strcmp(sub, "info");
    if (strcmp(sub, "upsert") && strcmp(sub, "delete") && strcmp(sub, "compact") && !ro)
        return usage("unknown subcommand '%s'", sub);
    if ((rc = open_store(&o, ro, &s))) return rc;
    vdx_search_params sp;
    vdx_search_params_init(&sp);
    sp.efSearch = (int)o.ef;
    sp.nprobe = o.nprobe;
    if (!strcmp(sub, "upsert")) {
        rc = do_upsert(&o, s);
    } else if (!strcmp(sub, "search") || !strcmp(sub, "hybrid")) {
        const char *f = !strcmp(sub, "search") ? o.queries : o.query;
        if (!f || (!strcmp(sub, "hybrid") && !o.text)) {
            rc = usage("%s", !strcmp(sub, "search") ? "search needs --queries"
                                                    : "hybrid needs --query and --text");
            goto done;
        }
        matrix q;
        char err[512];
        if (mat_read(f, o.dim, &q, err, sizeof err) || mat_to_f32(&q, err, sizeof err)) {
            fprintf(stderr, "vecdex store: %s\n", err);
            rc = EXIT_RUNTIME;
            goto done;
        }
        vdx_store_hits *h = NULL;
        if (!strcmp(sub, "search")) {
            st = vdx_store_search(s, q.n, q.data, o.k, o.where, &sp,
                                  VDX_STORE_WITH_METADATA, &h);
        } else {
            vdx_store_fusion fu = {VDX_FUSION_RRF, 60, 1, 1, 0, {0}};
            if (o.fusion && !strcmp(o.fusion, "weighted")) fu.method = VDX_FUSION_WEIGHTED;
            else if (o.fusion && strcmp(o.fusion, "rrf")) {
                mat_free(&q);
                rc = usage("--fusion must be rrf or weighted, got '%s'", o.fusion);
                goto done;
            }
            st = vdx_store_hybrid_search(s, q.data, o.text, o.k, o.where, &fu, &sp,
                                         VDX_STORE_WITH_METADATA | VDX_STORE_WITH_TEXT, &h);
        }
        mat_free(&q);
        if (st) rc = fail(sub, st);
        else print_hits(h);
        vdx_store_hits_free(h);
    } else if (!strcmp(sub, "delete")) {
        if (!o.ids && !o.where) {
            rc = usage("%s", "delete needs --ids or --where");
            goto done;
        }
        char *buf = NULL;
        int64_t n = 0, nd = 0;
        vdx_store_key *k = o.ids ? parse_ids(o.ids, &n, &buf) : NULL;
        st = vdx_store_delete(s, n, k, o.where, &nd);
        free(k);
        free(buf);
        if (st) rc = fail("delete", st);
        else printf("{\"deleted\": %lld}\n", (long long)nd);
    } else if (!strcmp(sub, "get")) {
        if (!o.ids) {
            rc = usage("%s", "get needs --ids");
            goto done;
        }
        char *buf = NULL;
        int64_t n = 0;
        vdx_store_key *k = parse_ids(o.ids, &n, &buf);
        vdx_store_rows *r = NULL;
        if ((st = vdx_store_get(s, n, k, &r))) rc = fail("get", st);
        for (int64_t i = 0; !rc && i < n; i++) {
            json_t *row = json_object();
            json_object_set_new(row, "id", key_json(&k[i]));
            json_object_set_new(row, "found", json_boolean(r->found[i]));
            if (r->found[i]) {
                json_t *v = json_array();
                for (int64_t j = 0; j < r->d; j++)
                    json_array_append_new(v, json_real(r->vectors[i * r->d + j]));
                json_object_set_new(row, "vector", v);
                if (r->metadata[i])
                    json_object_set_new(row, "metadata", json_loads(r->metadata[i], 0, NULL));
                if (r->texts[i]) json_object_set_new(row, "text", json_string(r->texts[i]));
            }
            char *t = json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER);
            puts(t);
            free(t);
            json_decref(row);
        }
        vdx_store_rows_free(r);
        free(k);
        free(buf);
    } else if (!strcmp(sub, "info")) {
        vdx_store_stats stt;
        vdx_store_stats_get(s, &stt);
        json_t *i = json_loads(vdx_store_info(s), 0, NULL);
        json_object_set_new(i, "rows", json_integer(stt.rows));
        json_object_set_new(i, "dead", json_integer(stt.dead));
        json_object_set_new(i, "trained", json_boolean(stt.trained));
        json_object_set_new(i, "bytes_disk", json_integer(stt.bytes_disk));
        char *t = json_dumps(i, JSON_COMPACT | JSON_PRESERVE_ORDER);
        puts(t);
        free(t);
        json_decref(i);
    } else {
        if ((st = vdx_store_compact(s))) rc = fail("compact", st);
        else puts("{\"compacted\": true}");
    }
done:
    st = vdx_store_close(s);
    if (st && !rc) rc = fail("close", st);
    return rc;
}
