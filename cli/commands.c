/*
 * commands.c — the file-based subcommands of `vecdex`:
 *
 *   build  --factory S [--metric l2|ip] [--train F] --add F -o INDEX
 *   search INDEX --queries F [-k 10] [--nprobe N] [--ef N] -o IDS
 *          [--distances F]
 *   eval   INDEX --queries F (--gt F | --base F) [-k 10] [--nprobe N] [--ef N]
 *   bench  --factory S [--metric] [--train F] --base F --queries F
 *          [--gt F] [-k 10] [--sweep nprobe=1,4,16]
 *   info   INDEX
 *
 * All take --json (one JSON object on stdout), --quiet (no progress) and
 * --dim N (needed by raw .f32 files).  Progress bars go to stderr, only when
 * it is a terminal.
 */
#include "cli.h"

#include <errno.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* --- options ------------------------------------------------------------- */
typedef struct opts {
    const char *cmd;
    const char *positional;
    const char *factory, *train, *add, *base, *queries, *gt, *out, *dist;
    const char *sweep;
    vdx_metric metric;
    int64_t k, nprobe, ef, dim;
    int json, quiet;
} opts;

static int usage_err(const opts *o, const char *fmt, const char *a) {
    fprintf(stderr, "vecdex %s: ", o->cmd);
    fprintf(stderr, fmt, a);
    fprintf(stderr, " (see vecdex --help)\n");
    return EXIT_USAGE;
}

static int parse_int(const opts *o, const char *name, const char *v,
                     int64_t min, int64_t *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < min || x > (INT64_C(1) << 40)) {
        fprintf(stderr, "vecdex %s: %s expects an integer >= %lld, got '%s'\n",
                o->cmd, name, (long long)min, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* Parses argv against `allowed` (a space-separated list of option names,
 * plus "POS" when one positional argument is required).  Returns 0, or an
 * exit code. */
static int parse_opts(const char *cmd, int argc, char **argv,
                      const char *allowed, opts *o) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->metric = VDX_METRIC_L2;
    o->k = 10;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            if (!strstr(allowed, "POS") || o->positional)
                return usage_err(o, "unexpected argument '%s'", a);
            o->positional = a;
            continue;
        }
        char key[40];
        snprintf(key, sizeof key, " %s ", a);
        char hay[512];
        snprintf(hay, sizeof hay, " %s --json --quiet ", allowed);
        if (!strstr(hay, key)) return usage_err(o, "unknown option '%s'", a);
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) { o->quiet = 1; continue; }
        if (i + 1 >= argc) return usage_err(o, "option '%s' needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--factory")) o->factory = v;
        else if (!strcmp(a, "--train")) o->train = v;
        else if (!strcmp(a, "--add")) o->add = v;
        else if (!strcmp(a, "--base")) o->base = v;
        else if (!strcmp(a, "--queries")) o->queries = v;
        else if (!strcmp(a, "--gt")) o->gt = v;
        else if (!strcmp(a, "-o")) o->out = v;
        else if (!strcmp(a, "--distances")) o->dist = v;
        else if (!strcmp(a, "--sweep")) o->sweep = v;
        else if (!strcmp(a, "--metric")) {
            if (!strcmp(v, "l2") || !strcmp(v, "L2")) o->metric = VDX_METRIC_L2;
            else if (!strcmp(v, "ip") || !strcmp(v, "IP"))
                o->metric = VDX_METRIC_INNER_PRODUCT;
            else return usage_err(o, "--metric must be l2 or ip, got '%s'", v);
        } else if (!strcmp(a, "-k")) {
            if (parse_int(o, "-k", v, 1, &o->k)) return EXIT_USAGE;
            if (o->k > 100000) return usage_err(o, "-k %s is too large", v);
        } else if (!strcmp(a, "--nprobe")) {
            if (parse_int(o, "--nprobe", v, 1, &o->nprobe)) return EXIT_USAGE;
        } else if (!strcmp(a, "--ef")) {
            if (parse_int(o, "--ef", v, 1, &o->ef)) return EXIT_USAGE;
            if (o->ef > 1 << 30) return usage_err(o, "--ef %s is too large", v);
        } else if (!strcmp(a, "--dim")) {
            if (parse_int(o, "--dim", v, 1, &o->dim)) return EXIT_USAGE;
        }
    }
    if (strstr(allowed, "POS") && !o->positional)
        return usage_err(o, "%s", "missing the INDEX argument");
    return 0;
}

static int need(const opts *o, const char *v, const char *name) {
    if (v) return 0;
    usage_err(o, "missing required option %s", name);
    return EXIT_USAGE;
}

/* --- outputs that are inputs -------------------------------------------- */
/* Which file a path names.  An existing one (symlinks followed) is its
 * device and inode, so hard links, symlinks and detours ("a/../x") match;
 * a path not there yet is its directory's device and inode plus its last
 * component (a dangling symlink's target is the file that would be
 * written).  Returns 0 when nothing can be said (a missing directory). */
typedef struct file_key {
    dev_t dev;
    ino_t ino;
    char name[256]; /* "" for an existing file */
} file_key;

static int key_of(const char *path, file_key *k) {
    char cur[4096], link[4096];
    struct stat st;
    memset(k, 0, sizeof *k);
    snprintf(cur, sizeof cur, "%s", path);
    for (int hops = 0; hops < 40; hops++) {
        if (stat(cur, &st) == 0) {
            k->dev = st.st_dev;
            k->ino = st.st_ino;
            return 1;
        }
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) break;
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n <= 0) return 0;
        link[n] = '\0';
        char *slash = strrchr(cur, '/');
        if (link[0] == '/' || !slash) {
            snprintf(cur, sizeof cur, "%s", link);
        } else {
            slash[1] = '\0';
            size_t used = strlen(cur);
            if (used + (size_t)n >= sizeof cur) return 0;
            memcpy(cur + used, link, (size_t)n + 1);
        }
    }
    char dir[4096];
    const char *slash = strrchr(cur, '/');
    const char *name = slash ? slash + 1 : cur;
    if (!*name || strlen(name) >= sizeof k->name) return 0;
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == cur) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - cur), cur);
    if (stat(dir, &st) != 0) return 0;
    k->dev = st.st_dev;
    k->ino = st.st_ino;
    snprintf(k->name, sizeof k->name, "%s", name);
    return 1;
}

static int same_file(const char *a, const char *b) {
    file_key ka, kb;
    if (!strcmp(a, b)) return 1;
    if (!key_of(a, &ka) || !key_of(b, &kb)) return 0;
    return ka.dev == kb.dev && ka.ino == kb.ino && !strcmp(ka.name, kb.name);
}

typedef struct named_path {
    const char *opt, *path; /* opt as the user would recognise it */
} named_path;

/* Refuses (usage error, exit 2) an output that is also an input, or the
 * same file as another output: writing it would destroy the input, or the
 * second output the first.  Unset (NULL) paths are skipped. */
static int check_outputs(const opts *o, const named_path *outs, int nout,
                         const named_path *ins, int nin) {
    for (int i = 0; i < nout; i++) {
        if (!outs[i].path) continue;
        for (int j = 0; j < nin + i; j++) {
            const named_path *other = j < nin ? &ins[j] : &outs[j - nin];
            if (!other->path || !same_file(outs[i].path, other->path)) continue;
            fprintf(stderr,
                    "vecdex %s: %s '%s' is the same file as %s '%s': %s; "
                    "choose another output\n", o->cmd, outs[i].opt,
                    outs[i].path, other->opt, other->path,
                    j < nin ? "writing it would destroy the input"
                            : "one output would overwrite the other");
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* --- output helpers ------------------------------------------------------ */
void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static int lib_fail(const char *what, vdx_status st) {
    fprintf(stderr, "vecdex: %s: %s (%s)\n", what, vdx_last_error(),
            vdx_status_name(st));
    return EXIT_RUNTIME;
}

static int io_fail(const char *err) {
    fprintf(stderr, "vecdex: %s\n", err);
    return EXIT_RUNTIME;
}

typedef struct progress {
    int on;
    const char *what;
    double t0, last;
} progress;

static void progress_start(progress *p, const opts *o, const char *what) {
    p->on = !o->quiet && !o->json && isatty(2);
    p->what = what;
    p->t0 = p->last = now();
}

static void progress_show(progress *p, int64_t done, int64_t total) {
    if (!p->on) return;
    double t = now();
    if (done < total && t - p->last < 0.1) return;
    p->last = t;
    int w = 30, filled = total ? (int)(w * done / total) : w;
    fprintf(stderr, "\r%-7s [%.*s%*s] %3d%% %lld/%lld %.1fs", p->what, filled,
            "##############################", w - filled, "",
            total ? (int)(100 * done / total) : 100, (long long)done,
            (long long)total, t - p->t0);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

/* --- shared steps -------------------------------------------------------- */
static int load_f32(const opts *o, const char *path, matrix *m) {
    char err[512];
    if (mat_read(path, o->dim, m, err, sizeof err) ||
        mat_to_f32(m, err, sizeof err))
        return io_fail(err);
    if (m->n == 0) {
        mat_free(m);
        fprintf(stderr, "vecdex: %s: no vectors\n", path);
        return EXIT_RUNTIME;
    }
    return 0;
}

static int is_idmap(const vdx_index *ix) {
    return !strncmp(vdx_index_type_name(ix), "IndexIDMap", 10);
}

#define BATCH 16384

/* Trains (when needed) and adds xb; IDMap indexes get ids 0..n-1. */
static int train_add(const opts *o, vdx_index *ix, const matrix *xt,
                     const matrix *xb, double *t_train, double *t_add) {
    vdx_status st;
    double t = now();
    if (!vdx_index_is_trained(ix)) {
        if (!o->quiet && !o->json && isatty(2))
            fprintf(stderr, "train   %lld vectors...\n", (long long)xt->n);
        if ((st = vdx_index_train(ix, xt->n, xt->data))) return lib_fail("train", st);
    }
    *t_train = now() - t;
    t = now();
    progress pg;
    progress_start(&pg, o, "add");
    int64_t base = vdx_index_ntotal(ix);
    int64_t *ids = is_idmap(ix) ? malloc(BATCH * sizeof(int64_t)) : NULL;
    if (is_idmap(ix) && !ids) return io_fail("out of memory");
    for (int64_t i0 = 0; i0 < xb->n; i0 += BATCH) {
        int64_t n = xb->n - i0 < BATCH ? xb->n - i0 : BATCH;
        const float *x = (const float *)xb->data + i0 * xb->d;
        if (ids) {
            for (int64_t j = 0; j < n; j++) ids[j] = base + i0 + j;
            st = vdx_index_add_with_ids(ix, n, x, ids);
        } else {
            st = vdx_index_add(ix, n, x);
        }
        if (st) {
            free(ids);
            return lib_fail("add", st);
        }
        progress_show(&pg, i0 + n, xb->n);
    }
    free(ids);
    *t_add = now() - t;
    return 0;
}

/* Searches in batches; returns seconds spent or < 0 on failure. */
static double search_all(const opts *o, const vdx_index *ix, const matrix *xq,
                         int64_t k, int64_t nprobe, int64_t ef, float *D,
                         int64_t *I) {
    vdx_search_params sp;
    vdx_search_params_init(&sp);
    sp.nprobe = nprobe;
    sp.efSearch = (int)ef;
    progress pg;
    progress_start(&pg, o, "search");
    double t = now();
    for (int64_t i0 = 0; i0 < xq->n; i0 += BATCH) {
        int64_t n = xq->n - i0 < BATCH ? xq->n - i0 : BATCH;
        vdx_status st = vdx_index_search(ix, n, (const float *)xq->data + i0 * xq->d,
                                         k, &sp, D + i0 * k, I + i0 * k);
        if (st) {
            lib_fail("search", st);
            return -1;
        }
        progress_show(&pg, i0 + n, xq->n);
    }
    double s = now() - t;
    return s > 1e-9 ? s : 1e-9;
}

static int check_dim(const vdx_index *ix, const matrix *m, const char *path) {
    if (vdx_index_d(ix) == m->d) return 0;
    fprintf(stderr, "vecdex: %s: expected d=%lld (the index's), got %lld\n",
            path, (long long)vdx_index_d(ix), (long long)m->d);
    return EXIT_RUNTIME;
}

/* Exact ground truth with a flat index of the same metric. */
static int exact_gt(const opts *o, vdx_metric metric, const matrix *xb,
                    const matrix *xq, int64_t k, int64_t *gt) {
    vdx_index *flat = NULL;
    vdx_status st = vdx_index_flat_new(xb->d, metric, &flat);
    if (st) return lib_fail("ground truth", st);
    if ((st = vdx_index_add(flat, xb->n, xb->data))) {
        vdx_index_free(flat);
        return lib_fail("ground truth", st);
    }
    float *D = malloc((size_t)(xq->n * k) * sizeof(float));
    opts q = *o;
    q.quiet = 1;
    double s = D ? search_all(&q, flat, xq, k, 0, 0, D, gt) : -1;
    free(D);
    vdx_index_free(flat);
    return s < 0 ? EXIT_RUNTIME : 0;
}

typedef struct scores {
    double r1, rk, map;
} scores;

/* 1-recall@1 (I[0] == gt[0]), k-recall@k (|I[:k] ∩ gt[:k]| / k) and MAP
 * (mean over queries of the average precision of I against gt[:k]). */
static scores score(const int64_t *I, const int64_t *gt, int64_t nq, int64_t k,
                    int64_t gtk) {
    scores s = {0, 0, 0};
    int64_t kk = k < gtk ? k : gtk;
    for (int64_t q = 0; q < nq; q++) {
        const int64_t *r = I + q * k, *g = gt + q * gtk;
        s.r1 += r[0] == g[0];
        int64_t hits = 0;
        double ap = 0;
        for (int64_t j = 0; j < k; j++) {
            int rel = 0;
            if (r[j] < 0) continue;
            for (int64_t u = 0; u < kk; u++) rel |= r[j] == g[u];
            for (int64_t u = 0; u < j && rel; u++) rel = r[u] != r[j];
            if (!rel) continue;
            hits++;
            ap += (double)hits / (double)(j + 1);
        }
        s.rk += (double)hits / (double)kk;
        s.map += ap / (double)kk;
    }
    s.r1 /= (double)nq;
    s.rk /= (double)nq;
    s.map /= (double)nq;
    return s;
}

/* --- build --------------------------------------------------------------- */
int cmd_build(int argc, char **argv) {
    opts o;
    int rc = parse_opts("build", argc, argv,
                        "--factory --metric --train --add -o --dim", &o);
    if (rc) return rc;
    if ((rc = need(&o, o.factory, "--factory")) || (rc = need(&o, o.add, "--add")) ||
        (rc = need(&o, o.out, "-o")))
        return rc;
    const named_path outs[] = {{"-o", o.out}};
    const named_path ins[] = {{"--add", o.add}, {"--train", o.train}};
    if ((rc = check_outputs(&o, outs, 1, ins, 2))) return rc;
    matrix xb, xt;
    if ((rc = load_f32(&o, o.add, &xb))) return rc;
    if (o.train) {
        if ((rc = load_f32(&o, o.train, &xt))) {
            mat_free(&xb);
            return rc;
        }
        if (xt.d != xb.d) {
            fprintf(stderr, "vecdex: %s has d=%lld but %s has d=%lld\n",
                    o.train, (long long)xt.d, o.add, (long long)xb.d);
            mat_free(&xb);
            mat_free(&xt);
            return EXIT_RUNTIME;
        }
    }
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_factory(xb.d, o.factory, o.metric, &ix);
    if (st) {
        rc = lib_fail("--factory", st);
        if (st == VDX_ERR_INVALID_ARGUMENT) rc = EXIT_USAGE; /* bad string */
        goto done;
    }
    double tt = 0, ta = 0;
    if ((rc = train_add(&o, ix, o.train ? &xt : &xb, &xb, &tt, &ta))) goto done;
    if ((st = vdx_write_index(ix, o.out))) {
        rc = lib_fail(o.out, st);
        goto done;
    }
    if (o.json) {
        printf("{\"index\": ");
        json_str(o.out);
        printf(", \"factory\": ");
        json_str(o.factory);
        printf(", \"type\": \"%s\", \"d\": %lld, \"ntotal\": %lld, "
               "\"train_s\": %.6f, \"add_s\": %.6f}\n",
               vdx_index_type_name(ix), (long long)vdx_index_d(ix),
               (long long)vdx_index_ntotal(ix), tt, ta);
    } else {
        printf("built %s (%s, d=%lld, ntotal=%lld): train %.2f s, add %.2f s "
               "-> %s\n",
               o.factory, vdx_index_type_name(ix), (long long)vdx_index_d(ix),
               (long long)vdx_index_ntotal(ix), tt, ta, o.out);
    }
done:
    vdx_index_free(ix);
    mat_free(&xb);
    if (o.train) mat_free(&xt);
    return rc;
}

/* --- search -------------------------------------------------------------- */
/* Default distances path: IDS's stem + ".dist" + .fvecs (for .ivecs) or the
 * same extension. */
static void dist_path(const char *ids, char *buf, size_t len) {
    const char *slash = strrchr(ids, '/');
    const char *dot = strrchr(ids, '.');
    if (!dot || (slash && dot < slash)) dot = ids + strlen(ids);
    const char *ext = !strcmp(dot, ".ivecs") ? ".fvecs" : *dot ? dot : ".npy";
    snprintf(buf, len, "%.*s.dist%s", (int)(dot - ids), ids, ext);
}

int cmd_search(int argc, char **argv) {
    opts o;
    int rc = parse_opts("search", argc, argv,
                        "POS --queries -k --nprobe --ef -o --distances --dim", &o);
    if (rc) return rc;
    if ((rc = need(&o, o.queries, "--queries")) || (rc = need(&o, o.out, "-o")))
        return rc;
    char dpath[4096], err[512];
    if (o.dist) snprintf(dpath, sizeof dpath, "%s", o.dist);
    else dist_path(o.out, dpath, sizeof dpath);
    const named_path outs[] = {
        {"-o", o.out},
        {o.dist ? "--distances" : "the distances file (-o's stem + .dist)", dpath}};
    const named_path ins[] = {{"INDEX", o.positional}, {"--queries", o.queries}};
    if ((rc = check_outputs(&o, outs, 2, ins, 2))) return rc;
    vdx_index *ix = NULL;
    vdx_status st = vdx_read_index(o.positional, 0, &ix);
    if (st) return lib_fail(o.positional, st);
    matrix xq;
    if ((rc = load_f32(&o, o.queries, &xq))) {
        vdx_index_free(ix);
        return rc;
    }
    float *D = NULL;
    int64_t *I = NULL;
    if ((rc = check_dim(ix, &xq, o.queries))) goto done;
    D = malloc((size_t)(xq.n * o.k) * sizeof(float));
    I = malloc((size_t)(xq.n * o.k) * sizeof(int64_t));
    if (!D || !I) {
        rc = io_fail("out of memory");
        goto done;
    }
    double s = search_all(&o, ix, &xq, o.k, o.nprobe, o.ef, D, I);
    if (s < 0) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    matrix mi = {xq.n, o.k, MT_I64, I}, md = {xq.n, o.k, MT_F32, D};
    if (mat_write(o.out, &mi, err, sizeof err) ||
        mat_write(dpath, &md, err, sizeof err)) {
        rc = io_fail(err);
        goto done;
    }
    if (o.json) {
        printf("{\"nq\": %lld, \"k\": %lld, \"seconds\": %.6f, \"qps\": %.1f, "
               "\"ids\": ",
               (long long)xq.n, (long long)o.k, s, (double)xq.n / s);
        json_str(o.out);
        printf(", \"distances\": ");
        json_str(dpath);
        printf("}\n");
    } else {
        printf("searched %lld queries, k=%lld: %.3f s (%.0f QPS); ids -> %s, "
               "distances -> %s\n",
               (long long)xq.n, (long long)o.k, s, (double)xq.n / s, o.out,
               dpath);
    }
done:
    free(D);
    free(I);
    mat_free(&xq);
    vdx_index_free(ix);
    return rc;
}

/* --- eval and bench ------------------------------------------------------ */
/* Loads or computes the ground truth (nq x *gtk). */
static int get_gt(const opts *o, vdx_metric metric, const matrix *xq,
                  const matrix *xb, int64_t **gt, int64_t *gtk) {
    char err[512];
    if (o->gt) {
        matrix g;
        if (mat_read(o->gt, 0, &g, err, sizeof err) ||
            mat_to_i64(&g, err, sizeof err))
            return io_fail(err);
        if (g.n != xq->n) {
            fprintf(stderr, "vecdex: %s has %lld rows but there are %lld "
                    "queries\n", o->gt, (long long)g.n, (long long)xq->n);
            mat_free(&g);
            return EXIT_RUNTIME;
        }
        *gt = g.data;
        *gtk = g.d;
        return 0;
    }
    *gtk = o->k < xb->n ? o->k : xb->n;
    *gt = malloc((size_t)(xq->n * *gtk) * sizeof(int64_t));
    if (!*gt) return io_fail("out of memory");
    int rc = exact_gt(o, metric, xb, xq, *gtk, *gt);
    if (rc) {
        free(*gt);
        *gt = NULL;
    }
    return rc;
}

int cmd_eval(int argc, char **argv) {
    opts o;
    int rc = parse_opts("eval", argc, argv,
                        "POS --queries --gt --base -k --nprobe --ef --dim", &o);
    if (rc) return rc;
    if ((rc = need(&o, o.queries, "--queries"))) return rc;
    if (!o.gt && !o.base)
        return usage_err(&o, "%s", "give --gt FILE or --base FILE (to compute "
                                   "the exact ground truth)");
    vdx_index *ix = NULL;
    vdx_status st = vdx_read_index(o.positional, 0, &ix);
    if (st) return lib_fail(o.positional, st);
    matrix xq, xb = {0, 0, MT_F32, NULL};
    float *D = NULL;
    int64_t *I = NULL, *gt = NULL, gtk = 0;
    if ((rc = load_f32(&o, o.queries, &xq))) {
        vdx_index_free(ix);
        return rc;
    }
    if ((rc = check_dim(ix, &xq, o.queries))) goto done;
    if (!o.gt) {
        if ((rc = load_f32(&o, o.base, &xb))) goto done;
        if ((rc = check_dim(ix, &xb, o.base))) goto done;
    }
    if ((rc = get_gt(&o, vdx_index_metric(ix), &xq, &xb, &gt, &gtk))) goto done;
    D = malloc((size_t)(xq.n * o.k) * sizeof(float));
    I = malloc((size_t)(xq.n * o.k) * sizeof(int64_t));
    if (!D || !I) {
        rc = io_fail("out of memory");
        goto done;
    }
    double s = search_all(&o, ix, &xq, o.k, o.nprobe, o.ef, D, I);
    if (s < 0) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    scores sc = score(I, gt, xq.n, o.k, gtk);
    if (o.json)
        printf("{\"nq\": %lld, \"k\": %lld, \"recall_at_1\": %.6f, "
               "\"recall_at_k\": %.6f, \"map\": %.6f, \"qps\": %.1f, "
               "\"seconds\": %.6f}\n",
               (long long)xq.n, (long long)o.k, sc.r1, sc.rk, sc.map,
               (double)xq.n / s, s);
    else
        printf("nq=%lld k=%lld  1-R@1 %.4f  R@%lld %.4f  MAP %.4f  QPS %.0f\n",
               (long long)xq.n, (long long)o.k, sc.r1, (long long)o.k, sc.rk,
               sc.map, (double)xq.n / s);
done:
    free(D);
    free(I);
    free(gt);
    mat_free(&xq);
    mat_free(&xb);
    vdx_index_free(ix);
    return rc;
}

#define MAX_SWEEP 64

int cmd_bench(int argc, char **argv) {
    opts o;
    int rc = parse_opts("bench", argc, argv,
                        "--factory --metric --train --base --queries --gt -k "
                        "--sweep --dim",
                        &o);
    if (rc) return rc;
    if ((rc = need(&o, o.factory, "--factory")) || (rc = need(&o, o.base, "--base")) ||
        (rc = need(&o, o.queries, "--queries")))
        return rc;
    /* --sweep nprobe=1,4,16 | ef=16,32 */
    const char *sw = o.sweep ? o.sweep : "nprobe=1";
    int is_ef = 0;
    if (!strncmp(sw, "nprobe=", 7)) sw += 7;
    else if (!strncmp(sw, "ef=", 3)) sw += 3, is_ef = 1;
    else return usage_err(&o, "--sweep must be nprobe=V,V,... or ef=V,V,..., "
                              "got '%s'", o.sweep);
    int64_t vals[MAX_SWEEP];
    int nv = 0;
    while (*sw) {
        char *end;
        errno = 0;
        long long v = strtoll(sw, &end, 10);
        if (errno || end == sw || v < 1 || v > (1 << 30) || (*end && *end != ',') ||
            nv == MAX_SWEEP)
            return usage_err(&o, "bad --sweep value list '%s'", o.sweep);
        vals[nv++] = v;
        sw = *end ? end + 1 : end;
    }
    if (nv == 0) return usage_err(&o, "empty --sweep value list '%s'", o.sweep);

    matrix xb, xq, xt;
    vdx_index *ix = NULL;
    float *D = NULL;
    int64_t *I = NULL, *gt = NULL, gtk = 0;
    int have_t = 0;
    if ((rc = load_f32(&o, o.base, &xb))) return rc;
    if ((rc = load_f32(&o, o.queries, &xq))) {
        mat_free(&xb);
        return rc;
    }
    if (o.train) {
        if ((rc = load_f32(&o, o.train, &xt))) goto done;
        have_t = 1;
    }
    if (xq.d != xb.d || (have_t && xt.d != xb.d)) {
        fprintf(stderr, "vecdex: the files have different dimensions\n");
        rc = EXIT_RUNTIME;
        goto done;
    }
    vdx_status st = vdx_index_factory(xb.d, o.factory, o.metric, &ix);
    if (st) {
        rc = lib_fail("--factory", st);
        if (st == VDX_ERR_INVALID_ARGUMENT) rc = EXIT_USAGE; /* bad string */
        goto done;
    }
    double tt, ta;
    if ((rc = train_add(&o, ix, have_t ? &xt : &xb, &xb, &tt, &ta))) goto done;
    if ((rc = get_gt(&o, o.metric, &xq, &xb, &gt, &gtk))) goto done;
    D = malloc((size_t)(xq.n * o.k) * sizeof(float));
    I = malloc((size_t)(xq.n * o.k) * sizeof(int64_t));
    if (!D || !I) {
        rc = io_fail("out of memory");
        goto done;
    }
    const char *pname = is_ef ? "ef" : "nprobe";
    if (o.json) {
        printf("{\"factory\": ");
        json_str(o.factory);
        printf(", \"type\": \"%s\", \"d\": %lld, \"nb\": %lld, \"nq\": %lld, "
               "\"k\": %lld, \"train_s\": %.6f, \"add_s\": %.6f, "
               "\"param\": \"%s\", \"rows\": [",
               vdx_index_type_name(ix), (long long)xb.d, (long long)xb.n,
               (long long)xq.n, (long long)o.k, tt, ta, pname);
    } else {
        printf("%s  d=%lld nb=%lld nq=%lld k=%lld  train %.2f s  add %.2f s\n",
               o.factory, (long long)xb.d, (long long)xb.n, (long long)xq.n,
               (long long)o.k, tt, ta);
        printf("%8s %12s %10s %10s %10s\n", pname, "QPS", "1-R@1", "R@k", "MAP");
    }
    for (int i = 0; i < nv; i++) {
        double s = search_all(&o, ix, &xq, o.k, is_ef ? 0 : vals[i],
                              is_ef ? vals[i] : 0, D, I);
        if (s < 0) {
            rc = EXIT_RUNTIME;
            goto done;
        }
        scores sc = score(I, gt, xq.n, o.k, gtk);
        if (o.json)
            printf("%s{\"%s\": %lld, \"qps\": %.1f, \"recall_at_1\": %.6f, "
                   "\"recall_at_k\": %.6f, \"map\": %.6f}",
                   i ? ", " : "", pname, (long long)vals[i], (double)xq.n / s,
                   sc.r1, sc.rk, sc.map);
        else
            printf("%8lld %12.0f %10.4f %10.4f %10.4f\n", (long long)vals[i],
                   (double)xq.n / s, sc.r1, sc.rk, sc.map);
    }
    if (o.json) printf("]}\n");
done:
    free(D);
    free(I);
    free(gt);
    vdx_index_free(ix);
    mat_free(&xb);
    mat_free(&xq);
    if (have_t) mat_free(&xt);
    return rc;
}

/* --- info ---------------------------------------------------------------- */
int cmd_info(int argc, char **argv) {
    opts o;
    int rc = parse_opts("info", argc, argv, "POS", &o);
    if (rc) return rc;
    vdx_index *ix = NULL;
    vdx_status st = vdx_read_index(o.positional, 0, &ix);
    if (st) return lib_fail(o.positional, st);
    long long bytes = -1;
    FILE *f = fopen(o.positional, "rb");
    if (f) {
        if (fseek(f, 0, SEEK_END) == 0) bytes = ftell(f);
        fclose(f);
    }
    vdx_index *sub = vdx_index_sub_index(ix);
    const vdx_index *ivf = vdx_index_is_ivf(ix) ? ix
                           : (sub && vdx_index_is_ivf(sub)) ? sub : NULL;
    const char *metric =
        vdx_index_metric(ix) == VDX_METRIC_L2 ? "L2" : "INNER_PRODUCT";
    if (o.json) {
        printf("{\"type\": \"%s\", \"d\": %lld, \"ntotal\": %lld, "
               "\"metric\": \"%s\", \"trained\": %s, \"bytes\": %lld",
               vdx_index_type_name(ix), (long long)vdx_index_d(ix),
               (long long)vdx_index_ntotal(ix), metric,
               vdx_index_is_trained(ix) ? "true" : "false", bytes);
        if (sub) printf(", \"wraps\": \"%s\"", vdx_index_type_name(sub));
        if (ivf)
            printf(", \"nlist\": %lld, \"nprobe\": %lld",
                   (long long)vdx_index_ivf_nlist(ivf),
                   (long long)vdx_index_ivf_nprobe(ivf));
        printf("}\n");
    } else {
        printf("type:    %s\n", vdx_index_type_name(ix));
        printf("d:       %lld\n", (long long)vdx_index_d(ix));
        printf("ntotal:  %lld\n", (long long)vdx_index_ntotal(ix));
        printf("metric:  %s\n", metric);
        printf("trained: %s\n", vdx_index_is_trained(ix) ? "yes" : "no");
        printf("bytes:   %lld\n", bytes);
        if (sub) printf("wraps:   %s\n", vdx_index_type_name(sub));
        if (ivf) {
            printf("nlist:   %lld\n", (long long)vdx_index_ivf_nlist(ivf));
            printf("nprobe:  %lld\n", (long long)vdx_index_ivf_nprobe(ivf));
        }
    }
    vdx_index_free(ix);
    return 0;
}
