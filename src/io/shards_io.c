/*
 * shards_io.c — IndexShards / IndexReplicas / IndexShardsIVF on disk.  FAISS
 * has no format for them (write_index refuses them), so a sharded index is
 * a directory: each sub-index a FAISS file (or, when itself sharded, a
 * sub-directory in this layout), plus a manifest, a small line-oriented
 * text file written last through a rename (a reader never sees a manifest
 * naming files not yet complete):
 *
 *     vecdex-sharded 1
 *     kind IndexShards            (IndexReplicas, IndexShardsIVF)
 *     d 64
 *     metric 1                    (FAISS's numbers: 1 L2, 0 inner product)
 *     threaded 0
 *     successive_ids 1
 *     nlist 1024                  (IndexShardsIVF; then a quantizer line)
 *     quantizer quantizer.faissindex
 *     count 3
 *     shard 0 file shard-0.faissindex 33334
 *     shard 1 file shard-1.faissindex 33333
 *     shard 2 dir shard-2 33333   (ntotal last: checked on read)
 *
 * The same directory is what `mpirun -np S vecdex serve --sharded DIR`
 * loads, shard s on rank s.  The reader trusts nothing: line lengths,
 * counts and names are bounded (names are plain file names: no '/', not
 * "." or ".."), every shard is checked against the manifest (d, metric,
 * ntotal) and the manifest against itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_internal.h"
#include "index/shards.h"

#define MAX_LINE 1024
#define MAX_SHARDS 65536
#define MAX_NESTING 8

static vdx_status path_join(char *out, size_t cap, const char *dir,
                            const char *name) {
    int w = snprintf(out, cap, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= cap)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "path '%s/%s' is too long (%zu bytes at most)", dir,
                         name, cap - 1);
    return VDX_OK;
}

static vdx_status make_dir(const char *dir) {
    if (mkdir(dir, 0777) == 0) return VDX_OK;
    struct stat sb;
    if (errno == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
        return VDX_OK;
    return vdx_raise(VDX_ERR_IO, "cannot create the directory '%s': %s", dir,
                     strerror(errno));
}

static vdx_status write_rec(const vdx_index *ix, const char *dir, int depth) {
    const vdx_shards *s = vdx_as_shards(ix);
    if (depth > MAX_NESTING)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "write_sharded: shards nested deeper than %d levels",
                         MAX_NESTING);
    vdx_status st = make_dir(dir);
    if (st) return st;
    char path[4096], tmp[4200], name[64];
    /* the manifest, built in memory while the parts are written */
    size_t cap = 4096 + (size_t)s->n * 96, len = 0;
    char *man = vdx_malloc(cap);
    if (!man) return VDX_ERR_OUT_OF_MEMORY;
#define EMIT(...)                                                          \
    do {                                                                   \
        int w_ = snprintf(man + len, cap - len, __VA_ARGS__);              \
        if (w_ > 0) len += (size_t)w_ < cap - len ? (size_t)w_ : cap - len - 1; \
    } while (0)
    EMIT("vecdex-sharded 1\nkind %s\nd %" PRId64 "\nmetric %d\nthreaded %d\n"
         "successive_ids %d\n",
         vdx_index_type_name(ix), ix->d, (int)ix->metric, s->threaded,
         s->successive_ids);
    if (s->kind == VDX_SHARDS_IVF) {
        if ((st = path_join(path, sizeof path, dir, "quantizer.faissindex")))
            goto done;
        if ((st = vdx_write_index(s->quantizer, path))) {
            st = vdx_raise_wrap(st, "write_sharded: the quantizer");
            goto done;
        }
        EMIT("nlist %" PRId64 "\nquantizer quantizer.faissindex\n", s->nlist);
    }
    EMIT("count %" PRId64 "\n", s->n);
    for (int64_t i = 0; i < s->n; i++) {
        const vdx_index *sub = s->sub[i];
        int nested = vdx_as_shards(sub) != NULL;
        snprintf(name, sizeof name, nested ? "shard-%" PRId64 : "shard-%" PRId64 ".faissindex", i);
        if ((st = path_join(path, sizeof path, dir, name))) goto done;
        st = nested ? write_rec(sub, path, depth + 1) : vdx_write_index(sub, path);
        if (st) {
            st = vdx_raise_wrap(st, "write_sharded: %s %" PRId64 " (%s)",
                           vdx_shards_part(s), i, vdx_index_type_name(sub));
            goto done;
        }
        EMIT("shard %" PRId64 " %s %s %" PRId64 "\n", i, nested ? "dir" : "file",
             name, sub->ntotal);
    }
#undef EMIT
    if ((st = path_join(path, sizeof path, dir, VDX_SHARDS_MANIFEST))) goto done;
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = vdx_raise(VDX_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto done;
    }
    int bad = fwrite(man, 1, len, f) != len;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        st = vdx_raise(VDX_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        remove(tmp);
    }
done:
    vdx_free(man);
    return st;
}

vdx_status vdx_write_sharded(const vdx_index *ix, const char *dir) {
    vdx_clear_error();
    if (!vdx_as_shards(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "write_sharded: %s is not an IndexShards, "
                         "IndexShardsIVF or IndexReplicas (write it with "
                         "write_index)",
                         ix ? vdx_index_type_name(ix) : "NULL");
    if (!dir || !*dir)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "write_sharded: no directory");
    return write_rec(ix, dir, 0);
}

/* ---- reading ------------------------------------------------------------- */

typedef struct {
    FILE *f;
    const char *path;
    int line;
    char buf[MAX_LINE + 2];
} man_reader;

/* Next line without its newline into r->buf; VDX_ERR_FORMAT at the end. */
static vdx_status next_line(man_reader *r, const char *expect) {
    r->line++;
    if (!fgets(r->buf, sizeof r->buf, r->f))
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s: line %d: the manifest ends where '%s' was "
                         "expected",
                         r->path, r->line, expect);
    size_t n = strlen(r->buf);
    if (n && r->buf[n - 1] == '\n') r->buf[--n] = 0;
    else if (!feof(r->f))
        return vdx_raise(VDX_ERR_FORMAT, "%s: line %d is longer than %d bytes",
                         r->path, r->line, MAX_LINE);
    return VDX_OK;
}

/* "key <int64>" with min <= value <= max */
static vdx_status key_int(man_reader *r, const char *key, int64_t lo,
                          int64_t hi, int64_t *v) {
    vdx_status st = next_line(r, key);
    if (st) return st;
    size_t kl = strlen(key);
    char *end;
    if (strncmp(r->buf, key, kl) || r->buf[kl] != ' ')
        return vdx_raise(VDX_ERR_FORMAT, "%s: line %d: expected '%s N', got '%.80s'",
                         r->path, r->line, key, r->buf);
    errno = 0;
    long long x = strtoll(r->buf + kl + 1, &end, 10);
    if (errno || *end || end == r->buf + kl + 1 || x < lo || x > hi)
        return vdx_raise(VDX_ERR_FORMAT,
                         "%s: line %d: %s '%.40s' is not an integer in "
                         "%" PRId64 "..%" PRId64,
                         r->path, r->line, key, r->buf + kl + 1, lo, hi);
    *v = x;
    return VDX_OK;
}

static int plain_name(const char *s) {
    if (!*s || !strcmp(s, ".") || !strcmp(s, "..") || strlen(s) > 255) return 0;
    for (; *s; s++)
        if (*s == '/' || *s == '\\' || (unsigned char)*s < 32) return 0;
    return 1;
}

static vdx_status read_rec(const char *dir, int depth, vdx_index **out);

static vdx_status read_part(const char *dir, const char *name, int is_dir,
                            int depth, vdx_index **out) {
    char path[4096];
    vdx_status st = path_join(path, sizeof path, dir, name);
    if (st) return st;
    return is_dir ? read_rec(path, depth + 1, out) : vdx_read_index(path, 0, out);
}

static vdx_status read_rec(const char *dir, int depth, vdx_index **out) {
    *out = NULL;
    if (depth > MAX_NESTING)
        return vdx_raise(VDX_ERR_FORMAT,
                         "read_sharded: '%s' nests shards deeper than %d levels",
                         dir, MAX_NESTING);
    char mpath[4096];
    vdx_status st = path_join(mpath, sizeof mpath, dir, VDX_SHARDS_MANIFEST);
    if (st) return st;
    man_reader r = {0};
    r.path = mpath;
    r.f = fopen(mpath, "rb");
    if (!r.f)
        return vdx_raise(VDX_ERR_IO, "cannot open '%s': %s", mpath, strerror(errno));
    vdx_index *ix = NULL, *q = NULL;
    int64_t d, metric, threaded, succ, count, nlist = 0;
    char kind[64];
    if ((st = next_line(&r, "vecdex-sharded 1"))) goto fail;
    if (strcmp(r.buf, "vecdex-sharded 1")) {
        st = vdx_raise(VDX_ERR_FORMAT,
                       "%s: line 1: '%.60s' is not 'vecdex-sharded 1' (not a "
                       "vecdex sharded index, or a newer version)",
                       mpath, r.buf);
        goto fail;
    }
    if ((st = next_line(&r, "kind ..."))) goto fail;
    if (strncmp(r.buf, "kind ", 5) || strlen(r.buf + 5) >= sizeof kind) {
        st = vdx_raise(VDX_ERR_FORMAT, "%s: line %d: expected 'kind NAME', got '%.80s'",
                       mpath, r.line, r.buf);
        goto fail;
    }
    strcpy(kind, r.buf + 5);
    int k = !strcmp(kind, "IndexShards")      ? VDX_SHARDS
            : !strcmp(kind, "IndexReplicas")  ? VDX_REPLICAS
            : !strcmp(kind, "IndexShardsIVF") ? VDX_SHARDS_IVF
                                              : 0;
    if (!k) {
        st = vdx_raise(VDX_ERR_FORMAT, "%s: line %d: unknown kind '%s'", mpath,
                       r.line, kind);
        goto fail;
    }
    if ((st = key_int(&r, "d", 0, VDX_MAX_DIM, &d)) ||
        (st = key_int(&r, "metric", 0, 1, &metric)) ||
        (st = key_int(&r, "threaded", 0, 1, &threaded)) ||
        (st = key_int(&r, "successive_ids", 0, 1, &succ)))
        goto fail;
    if (k == VDX_SHARDS_IVF) {
        if ((st = key_int(&r, "nlist", 1, (int64_t)1 << 31, &nlist))) goto fail;
        if ((st = next_line(&r, "quantizer NAME"))) goto fail;
        if (strncmp(r.buf, "quantizer ", 10) || !plain_name(r.buf + 10)) {
            st = vdx_raise(VDX_ERR_FORMAT,
                           "%s: line %d: expected 'quantizer FILE' (a plain "
                           "file name), got '%.80s'",
                           mpath, r.line, r.buf);
            goto fail;
        }
        if ((st = read_part(dir, r.buf + 10, 0, depth, &q))) goto fail;
        if (q->d != d) {
            st = vdx_raise(VDX_ERR_FORMAT, "%s: the quantizer has d=%" PRId64
                           ", the manifest says d=%" PRId64,
                           mpath, q->d, d);
            goto fail;
        }
        if ((st = vdx_index_shards_ivf_new(q, nlist, (int)threaded, (int)succ, &ix)))
            goto fail;
        q = NULL;
    } else if ((st = vdx_shards_make(k, d, (int)threaded, (int)succ, &ix))) {
        goto fail;
    }
    if ((st = key_int(&r, "count", 0, MAX_SHARDS, &count))) goto fail;
    for (int64_t i = 0; i < count; i++) {
        if ((st = next_line(&r, "shard I file|dir NAME NTOTAL"))) goto fail;
        long long li, lnt;
        char how[8], name[300];
        int used = 0;
        if (sscanf(r.buf, "shard %lld %7s %299s %lld%n", &li, how, name, &lnt, &used) != 4 ||
            r.buf[used] != 0 || li != i || (strcmp(how, "file") && strcmp(how, "dir")) ||
            !plain_name(name) || lnt < 0) {
            st = vdx_raise(VDX_ERR_FORMAT,
                           "%s: line %d: expected 'shard %" PRId64
                           " file|dir NAME NTOTAL', got '%.100s'",
                           mpath, r.line, i, r.buf);
            goto fail;
        }
        vdx_index *sub = NULL;
        if ((st = read_part(dir, name, how[0] == 'd', depth, &sub))) {
            st = vdx_raise_wrap(st, "%s: shard %" PRId64 " ('%s')", mpath, i,
                           name);
            goto fail;
        }
        if (sub->ntotal != lnt || sub->d != d || (int64_t)sub->metric != metric) {
            st = vdx_raise(VDX_ERR_FORMAT,
                           "%s: shard %" PRId64 " ('%s') has d=%" PRId64
                           ", ntotal=%" PRId64 ", metric %d; the manifest "
                           "says d=%" PRId64 ", ntotal=%lld, metric %d",
                           mpath, i, name, sub->d, sub->ntotal, (int)sub->metric,
                           d, lnt, (int)metric);
            vdx_index_free(sub);
            goto fail;
        }
        if ((st = vdx_index_shards_add(ix, sub, 1))) {
            st = vdx_raise_wrap(VDX_ERR_FORMAT, "%s: shard %" PRId64 "", mpath, i);
            vdx_index_free(sub);
            goto fail;
        }
    }
    r.line++;
    if (fgets(r.buf, sizeof r.buf, r.f) && r.buf[0] != '\n') {
        st = vdx_raise(VDX_ERR_FORMAT, "%s: line %d: unexpected '%.60s' after "
                       "the %" PRId64 " shards",
                       mpath, r.line, r.buf, count);
        goto fail;
    }
    fclose(r.f);
    *out = ix;
    return VDX_OK;
fail:
    fclose(r.f);
    vdx_index_free(ix);
    vdx_index_free(q);
    return st;
}

vdx_status vdx_read_sharded(const char *dir, int io_flags, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!dir || !*dir)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "read_sharded: no directory");
    if (io_flags != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "read_sharded: io_flags=%d is not supported (only 0)",
                         io_flags);
    /* the manifest's own path names its directory */
    size_t n = strlen(dir), m = strlen(VDX_SHARDS_MANIFEST);
    if (n > m && !strcmp(dir + n - m, VDX_SHARDS_MANIFEST) && dir[n - m - 1] == '/') {
        char d2[4096];
        if (n - m - 1 >= sizeof d2)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "path is too long");
        memcpy(d2, dir, n - m - 1);
        d2[n - m - 1] = 0;
        return read_rec(d2, 0, out);
    }
    return read_rec(dir, 0, out);
}
