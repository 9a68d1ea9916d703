/*
 * dist_write.c — writes to a sharded index on MPI ranks (vecdex_dist.h):
 * routed adds, removal, save / load per shard.
 *
 * Adds are routed: without ids, round robin (vector i of the call goes to
 * rank (c + i) mod S, c counting the vectors routed so far), the ids being
 * assigned by rank 0 from a counter (FAISS's IndexShards with
 * successive_ids=False numbers from ntotal); with ids, by a hash of the id
 * (splitmix64's finaliser mod S: cheap, and consecutive ids spread evenly,
 * which id mod S would not do for ids with a common stride).  Removal is
 * sent to every rank, each removes what its shard holds.  A write is only
 * done when every shard confirmed it in time; anything else is an error
 * that says which shards applied it (a partial write is reported, never
 * hidden).
 *
 * Saving is staged, so that a failed save replaces nothing: every rank
 * writes shard-<rank>.faissindex.new (vdx_write_index: a temporary file and
 * a rename); when all confirmed, rank 0 removes the manifest, every rank
 * renames its staged file over its shard file, and rank 0 writes the
 * manifest (vdx_read_sharded's format, written through a rename) once all
 * confirmed.  A save that fails in that second step leaves no manifest, so
 * a mix of old and new shards is never loaded as one index.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist_internal.h"

#define PATH_CAP 4096

static vdx_status check_rank0(const vdx_dist *g, const char *what, double deadline_s) {
    if (!g || g->rank != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: only rank 0 takes calls (this is rank %d)", what,
                         g ? g->rank : -1);
    if (!(deadline_s > 0))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: deadline %g s must be > 0",
                         what, deadline_s);
    return VDX_OK;
}

static vdx_status check_writable(const vdx_dist *g, const char *what) {
    if (g->ids_mode) return VDX_OK;
    return vdx_raise(VDX_ERR_UNSUPPORTED,
                     "%s: the shards (%s) use successive ids, so an add or a "
                     "removal on one shard would renumber the others: give "
                     "every rank a shard that carries its ids (IndexIDMap "
                     "around it, or an IVF index opened with "
                     "VDX_DIST_IDS_GLOBAL)",
                     what, vdx_index_type_name(g->shard));
}

/* splitmix64's finaliser (Steele, Lea, Flood 2014) */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int vdx_dist_route_id(vdx_idx_t id, int nranks) {
    if (nranks <= 0) return -1;
    return (int)(mix64((uint64_t)id) % (uint64_t)nranks);
}

/* The outcome of a write on every shard: VDX_OK when all confirmed it; else
 * an error naming the first shard that did not, and what is known. */
static vdx_status write_outcome(const vdx_dist *g, const fan *f, const char *what,
                                double deadline_s, const char *done_msg,
                                int report_partial) {
    int bad = vdx_fan_first_bad(f);
    if (bad < 0) return VDX_OK;
    const int S = g->size;
    int ok = 0;
    char missing[512] = "";
    size_t len = 0;
    for (int r = 0; r < S; r++) {
        if (f->state[r] == FAN_OK) {
            ok++;
        } else if (len + 16 < sizeof missing) {
            int w = snprintf(missing + len, sizeof missing - len, "%s%d", len ? ", " : "", r);
            if (w > 0) len += (size_t)w;
        }
    }
    char cause[MSG + 128];
    if (f->state[bad] == FAN_FAILED)
        snprintf(cause, sizeof cause, "shard %d of %d (rank %d) failed: %s", bad, S, bad,
                 f->msgs[bad]);
    else
        snprintf(cause, sizeof cause,
                 "shard %d of %d (rank %d) did not answer within the deadline "
                 "of %.3f s (%s)", bad, S, bad, deadline_s, f->msgs[bad][0] ? f->msgs[bad] : "no answer");
    vdx_status code = f->state[bad] == FAN_FAILED && f->codes[bad] ? f->codes[bad]
                                                                   : VDX_ERR_TIMEOUT;
    if (!report_partial) return vdx_raise(code, "dist %s: %s", what, cause);
    if (ok == 0)
        return vdx_raise(code, "dist %s: %s; no shard confirmed it", what, cause);
    return vdx_raise(code,
                     "dist %s: %s; the write is partial: %d of %d shards "
                     "applied it%s, not confirmed by shard%s %s (a shard "
                     "that missed the deadline may still apply it)",
                     what, cause, ok, S, done_msg, S - ok > 1 ? "s" : "", missing);
}

static vdx_status dist_add_impl(vdx_dist *g, int64_t n, const float *x,
                        const vdx_idx_t *ids, double deadline_s,
                        vdx_idx_t *ids_out, int64_t *applied) {
    vdx_clear_error();
    if (applied) *applied = 0;
    vdx_status st = check_rank0(g, "dist_add", deadline_s);
    if (st) return st;
    if (n < 0 || (n > 0 && !x))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dist_add: n=%lld must be >= 0 and x given", (long long)n);
    if ((st = check_writable(g, "dist_add"))) return st;
    if (!vdx_index_is_trained(g->shard))
        return vdx_raise(VDX_ERR_NOT_TRAINED,
                         "dist_add: the shards (%s) must be trained before add "
                         "(train one, then vdx_dist_bcast_index)",
                         vdx_index_type_name(g->shard));
    if ((st = vdx_check_vectors(x, n, g->d, "added vectors"))) return st;
    for (int64_t i = 0; ids && i < n; i++)
        if (ids[i] == -1)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "dist_add: ids[%lld] is -1, which marks empty "
                             "result slots; use another id", (long long)i);
    if (n == 0) return VDX_OK;
    const int S = g->size;
    const size_t row = (size_t)g->d * sizeof(float) + sizeof(vdx_idx_t);
    int64_t *cnt = calloc((size_t)S, sizeof *cnt);
    char **buf = calloc((size_t)S, sizeof *buf);
    size_t *bytes = calloc((size_t)S, sizeof *bytes);
    int *dest = malloc((size_t)n * sizeof *dest);
    vdx_idx_t *gid = malloc((size_t)n * sizeof *gid);
    fan f = {0};
    if (!cnt || !buf || !bytes || !dest || !gid || (st = vdx_fan_init(&f, S))) {
        st = st ? st : vdx_raise(VDX_ERR_OUT_OF_MEMORY, "dist_add: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        gid[i] = ids ? ids[i] : g->next_id + i;
        dest[i] = ids ? vdx_dist_route_id(ids[i], S) : (int)((g->rr + i) % S);
        cnt[dest[i]]++;
    }
    for (int r = 0; r < S; r++) {
        bytes[r] = (size_t)cnt[r] * row;
        if (!(buf[r] = malloc(bytes[r] ? bytes[r] : 1))) {
            st = vdx_raise(VDX_ERR_OUT_OF_MEMORY, "dist_add: out of memory for %lld vectors",
                           (long long)cnt[r]);
            goto done;
        }
    }
    /* each rank's part: its vectors, then its ids */
    {
        int64_t *fill = calloc((size_t)S, sizeof *fill);
        if (!fill) {
            st = vdx_raise(VDX_ERR_OUT_OF_MEMORY, "dist_add: out of memory");
            goto done;
        }
        for (int64_t i = 0; i < n; i++) {
            int r = dest[i];
            memcpy(buf[r] + (size_t)fill[r] * (size_t)g->d * sizeof(float),
                   x + i * g->d, (size_t)g->d * sizeof(float));
            memcpy(buf[r] + (size_t)cnt[r] * (size_t)g->d * sizeof(float) +
                       (size_t)fill[r] * sizeof(vdx_idx_t),
                   &gid[i], sizeof(vdx_idx_t));
            fill[r]++;
        }
        free(fill);
    }
    /* the ids are taken whatever happens next: a partial add must not hand
     * the same ids out again */
    if (!ids) {
        g->next_id += n;
        g->rr = (g->rr + n) % S;
    } else {
        for (int64_t i = 0; i < n; i++)
            if (ids[i] >= g->next_id && ids[i] < INT64_MAX) g->next_id = ids[i] + 1;
    }
    if (ids_out) memcpy(ids_out, gid, (size_t)n * sizeof *gid);
    const double t_end = vdx_dist_now() + deadline_s;
    int64_t h[HDR] = {OP_ADD, 0, 0, 0, 0, 0, 0, 0};
    vdx_fan_send(g, &f, h, (const void *const *)buf, bytes, NULL, 0, REPLY_HEAD);
    int64_t s0 = 0;
    char m0[MSG] = "";
    vdx_dist_apply(g, h, buf[0], bytes[0], &s0, &f.count[0], m0);
    g->nt[0] = vdx_index_ntotal(g->shard);
    f.state[0] = s0 ? FAN_FAILED : FAN_OK;
    f.codes[0] = (vdx_status)s0;
    memcpy(f.msgs[0], m0, MSG);
    vdx_fan_wait(g, &f, t_end);
    int64_t done_n = 0;
    for (int r = 0; r < S; r++)
        if (f.state[r] == FAN_OK) done_n += cnt[r];
    if (applied) *applied = done_n;
    char what[96];
    snprintf(what, sizeof what, " (%lld of %lld vectors stored)", (long long)done_n,
             (long long)n);
    st = write_outcome(g, &f, "add", deadline_s, what, 1);
done:
    vdx_fan_free(&f);
    for (int r = 0; buf && r < S; r++) free(buf[r]);
    free(buf);
    free(bytes);
    free(cnt);
    free(dest);
    free(gid);
    return st;
}

static vdx_status dist_remove_sent(vdx_dist *g, int64_t n, const vdx_idx_t *ids,
                                   vdx_idx_t imin, vdx_idx_t imax, double deadline_s,
                                   int64_t *removed, const char *what);

/* removal: ids (n of them) or, with ids NULL, the range [imin, imax) */
static vdx_status dist_remove(vdx_dist *g, int64_t n, const vdx_idx_t *ids,
                              vdx_idx_t imin, vdx_idx_t imax, double deadline_s,
                              int64_t *removed) {
    const char *what = ids ? "dist_remove_ids" : "dist_remove_range";
    vdx_status st = check_rank0(g, what, deadline_s);
    if (st) return st;
    if ((st = check_writable(g, what))) return st;
    pipe_guard pg;
    vdx_pipe_block(&pg);
    st = dist_remove_sent(g, n, ids, imin, imax, deadline_s, removed, what);
    vdx_pipe_restore(&pg);
    return st;
}

static vdx_status dist_remove_sent(vdx_dist *g, int64_t n, const vdx_idx_t *ids,
                                   vdx_idx_t imin, vdx_idx_t imax, double deadline_s,
                                   int64_t *removed, const char *what) {
    vdx_status st;
    if (ids && n < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: n=%lld is negative", what,
                         (long long)n);
    if (!ids && n > 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: ids is NULL for n=%lld", what,
                         (long long)n);
    const int S = g->size;
    fan f;
    if ((st = vdx_fan_init(&f, S))) return st;
    const double t_end = vdx_dist_now() + deadline_s;
    int64_t h[HDR] = {OP_REMOVE, 0, ids ? n : 0, imin, imax, 0, 0, ids ? 0 : 1};
    size_t nb = ids ? (size_t)n * sizeof *ids : 0;
    vdx_fan_send(g, &f, h, NULL, NULL, ids, nb, REPLY_HEAD);
    int64_t s0 = 0;
    char m0[MSG] = "";
    vdx_dist_apply(g, h, (const char *)ids, nb, &s0, &f.count[0], m0);
    g->nt[0] = vdx_index_ntotal(g->shard);
    f.state[0] = s0 ? FAN_FAILED : FAN_OK;
    f.codes[0] = (vdx_status)s0;
    memcpy(f.msgs[0], m0, MSG);
    vdx_fan_wait(g, &f, t_end);
    int64_t tot = 0;
    for (int r = 0; r < S; r++)
        if (f.state[r] == FAN_OK) tot += f.count[r];
    if (removed) *removed = tot;
    char done_msg[64];
    snprintf(done_msg, sizeof done_msg, " (%lld vectors removed)", (long long)tot);
    st = write_outcome(g, &f, "remove", deadline_s, done_msg, 1);
    vdx_fan_free(&f);
    return st;
}

vdx_status vdx_dist_remove_ids(vdx_dist *g, int64_t n, const vdx_idx_t *ids,
                               double deadline_s, int64_t *removed) {
    vdx_clear_error();
    if (removed) *removed = 0;
    if (n > 0 && !ids)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "dist_remove_ids: ids is NULL for n=%lld",
                         (long long)n);
    static const vdx_idx_t none = 0;
    return dist_remove(g, n, ids ? ids : &none, 0, 0, deadline_s, removed);
}

vdx_status vdx_dist_remove_range(vdx_dist *g, vdx_idx_t imin, vdx_idx_t imax,
                                 double deadline_s, int64_t *removed) {
    vdx_clear_error();
    if (removed) *removed = 0;
    return dist_remove(g, 0, NULL, imin, imax, deadline_s, removed);
}

/* ---- save / load ---------------------------------------------------------- */

static vdx_status shard_path(char *out, const char *dir, int rank, const char *suffix) {
    int w = snprintf(out, PATH_CAP, "%s/shard-%d.faissindex%s", dir, rank, suffix);
    if (w < 0 || w >= PATH_CAP)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "the path '%s' is too long", dir);
    return VDX_OK;
}

static vdx_status make_dir(const char *dir) {
    if (mkdir(dir, 0777) == 0) return VDX_OK;
    struct stat sb;
    if (errno == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return VDX_OK;
    return vdx_raise(VDX_ERR_IO, "cannot create the directory '%s': %s", dir,
                     strerror(errno));
}

static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

void vdx_dist_apply(vdx_dist *g, const int64_t *h, const char *payload,
                    size_t nbytes, int64_t *status, int64_t *count,
                    char msg[MSG]) {
    vdx_status st = VDX_OK;
    *count = 0;
    vdx_clear_error();
    char path[PATH_CAP], final[PATH_CAP], dir[PATH_CAP];
    if (h[H_OP] == OP_SAVE || h[H_OP] == OP_COMMIT || h[H_OP] == OP_ABORT) {
        size_t m = nbytes < PATH_CAP - 1 ? nbytes : PATH_CAP - 1;
        memcpy(dir, payload ? payload : "", payload ? m : 1);
        dir[payload ? m : 0] = 0;
        if ((st = shard_path(path, dir, g->rank, ".new")) ||
            (st = shard_path(final, dir, g->rank, "")))
            goto out;
    }
    switch (h[H_OP]) {
    case OP_ADD: {
        const size_t row = (size_t)g->d * sizeof(float) + sizeof(vdx_idx_t);
        int64_t n = (int64_t)(nbytes / row);
        vdx_idx_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
        if (!ids) {
            st = vdx_raise(VDX_ERR_OUT_OF_MEMORY, "out of memory for %lld ids", (long long)n);
            break;
        }
        /* the ids follow the vectors, maybe not 8-byte aligned */
        if (n) memcpy(ids, payload + (size_t)n * (size_t)g->d * sizeof(float),
                      (size_t)n * sizeof *ids);
        st = vdx_index_add_with_ids(g->shard, n, (const float *)(const void *)payload, ids);
        free(ids);
        if (!st) *count = n;
        break;
    }
    case OP_REMOVE: {
        vdx_selector *sel = NULL;
        if (h[H_FLAGS] == 1) {
            st = vdx_selector_range(h[H_A0 + 1], h[H_A0 + 2], &sel);
        } else {
            int64_t n = (int64_t)(nbytes / sizeof(vdx_idx_t));
            vdx_idx_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
            if (!ids) {
                st = vdx_raise(VDX_ERR_OUT_OF_MEMORY, "out of memory for %lld ids", (long long)n);
                break;
            }
            if (n) memcpy(ids, payload, (size_t)n * sizeof *ids);
            st = vdx_selector_batch(n, ids, &sel);
            free(ids);
        }
        int64_t rm = 0;
        if (!st) st = vdx_index_remove_ids(g->shard, sel, &rm);
        vdx_selector_free(sel);
        if (!st) *count = rm;
        break;
    }
    case OP_SAVE:
        if (!(st = make_dir(dir))) st = vdx_write_index(g->shard, path);
        break;
    case OP_COMMIT:
        if (rename(path, final) != 0)
            st = vdx_raise(VDX_ERR_IO, "cannot rename '%s' to '%s': %s", path, final,
                           strerror(errno));
        else
            sync_dir(dir);
        break;
    case OP_ABORT:
        if (unlink(path) != 0 && errno != ENOENT)
            st = vdx_raise(VDX_ERR_IO, "cannot remove '%s': %s", path, strerror(errno));
        break;
    default:
        st = vdx_raise(VDX_ERR_INTERNAL, "unknown call %lld", (long long)h[H_OP]);
    }
out:
    *status = st;
    if (st) snprintf(msg, MSG, "rank %d: %s", g->rank, vdx_last_error());
}

/* one step of a save on every rank (rank 0's part done here) */
static void save_step(vdx_dist *g, fan *f, int op, const char *dir, double t_end) {
    int64_t h[HDR] = {op, 0, 0, 0, 0, 0, 0, 0};
    size_t nb = strlen(dir) + 1;
    vdx_fan_send(g, f, h, NULL, NULL, dir, nb, REPLY_HEAD);
    int64_t s0 = 0;
    char m0[MSG] = "";
    vdx_dist_apply(g, h, dir, nb, &s0, &f->count[0], m0);
    f->state[0] = s0 ? FAN_FAILED : FAN_OK;
    f->codes[0] = (vdx_status)s0;
    memcpy(f->msgs[0], m0, MSG);
    vdx_fan_wait(g, f, t_end);
}

static vdx_status write_manifest(const vdx_dist *g, const char *dir) {
    char path[PATH_CAP], tmp[PATH_CAP + 32];
    int w = snprintf(path, sizeof path, "%s/%s", dir, VDX_SHARDS_MANIFEST);
    if (w < 0 || w >= (int)sizeof path)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "the path '%s' is too long", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return vdx_raise(VDX_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    /* vdx_read_sharded's format (src/io/shards_io.c) */
    fprintf(f, "vecdex-sharded 1\nkind IndexShards\nd %" PRId64 "\nmetric %d\n"
            "threaded 0\nsuccessive_ids %d\ncount %d\n",
            g->d, g->metric, !g->ids_mode, g->size);
    for (int r = 0; r < g->size; r++)
        fprintf(f, "shard %d file shard-%d.faissindex %" PRId64 "\n", r, r, g->nt[r]);
    int bad = ferror(f) != 0;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return vdx_raise(VDX_ERR_IO, "cannot write '%s': %s", path, strerror(e));
    }
    sync_dir(dir);
    return VDX_OK;
}

static vdx_status dist_save_impl(vdx_dist *g, const char *dir, double deadline_s) {
    vdx_clear_error();
    vdx_status st = check_rank0(g, "dist_save", deadline_s);
    if (st) return st;
    if (!dir || !*dir || strlen(dir) > PATH_CAP - 64)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dist_save: the directory must be a path of 1 to %d bytes",
                         PATH_CAP - 64);
    const double t_end = vdx_dist_now() + deadline_s;
    fan f;
    if ((st = vdx_fan_init(&f, g->size))) return st;
    save_step(g, &f, OP_SAVE, dir, t_end);
    g->nt[0] = vdx_index_ntotal(g->shard);
    if (vdx_fan_first_bad(&f) >= 0) {
        st = write_outcome(g, &f, "save", deadline_s, "", 0);
        char keep[900];
        snprintf(keep, sizeof keep, "%s", vdx_last_error());
        /* best effort: the staged files go, nothing was replaced */
        fan fa;
        if (vdx_fan_init(&fa, g->size) == VDX_OK) {
            save_step(g, &fa, OP_ABORT, dir, vdx_dist_now() + 1.0);
            vdx_fan_free(&fa);
        }
        vdx_fan_free(&f);
        return vdx_raise(st, "%s; nothing in '%s' was replaced", keep, dir);
    }
    vdx_fan_free(&f);
    /* no manifest while the shard files are replaced */
    char mpath[PATH_CAP];
    snprintf(mpath, sizeof mpath, "%s/%s", dir, VDX_SHARDS_MANIFEST);
    if (unlink(mpath) != 0 && errno != ENOENT)
        return vdx_raise(VDX_ERR_IO, "dist save: cannot remove the old manifest '%s': %s",
                         mpath, strerror(errno));
    if ((st = vdx_fan_init(&f, g->size))) return st;
    save_step(g, &f, OP_COMMIT, dir, t_end > vdx_dist_now() + 1.0 ? t_end : vdx_dist_now() + 1.0);
    if (vdx_fan_first_bad(&f) >= 0) {
        st = write_outcome(g, &f, "save", deadline_s, " (its shard file replaced)", 1);
        char keep[900];
        snprintf(keep, sizeof keep, "%s", vdx_last_error());
        vdx_fan_free(&f);
        return vdx_raise(st, "%s; '%s' has no manifest now (save again)", keep, dir);
    }
    vdx_fan_free(&f);
    return write_manifest(g, dir);
}

/* the shard count of dir's manifest, or -1; *successive its successive_ids */
static long manifest_count(const char *dir, int *successive) {
    char path[PATH_CAP], line[512];
    snprintf(path, sizeof path, "%s/%s", dir, VDX_SHARDS_MANIFEST);
    FILE *f = fopen(path, "r");
    long c = -1;
    *successive = 1; /* IndexShards' default */
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "count ", 6)) c = strtol(line + 6, NULL, 10);
        if (!strncmp(line, "successive_ids ", 15))
            *successive = strtol(line + 15, NULL, 10) != 0;
    }
    if (f) fclose(f);
    return c;
}

vdx_status vdx_dist_load(MPI_Comm comm, const char *dir, int io_flags,
                         vdx_index **shard, int *ids) {
    vdx_clear_error();
    int successive = 1;
    if (ids) *ids = VDX_DIST_IDS_SUCCESSIVE;
    int rank = 0, size = 1;
    if (!shard) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "dist_load: shard is NULL");
    *shard = NULL;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return vdx_raise(VDX_ERR_IO, "dist_load: not an MPI communicator");
    char err[2 * PATH_CAP + 1024] = "";
    vdx_status st = VDX_OK;
    long count = dir ? manifest_count(dir, &successive) : -1;
    if (!dir) {
        st = VDX_ERR_INVALID_ARGUMENT;
        snprintf(err, sizeof err, "dist_load: dir is NULL");
    } else if (count != size) {
        st = count < 0 ? VDX_ERR_IO : VDX_ERR_INVALID_ARGUMENT;
        if (count < 0)
            snprintf(err, sizeof err, "rank %d: '%s/%s' cannot be read (is '%s' a "
                     "sharded directory, on a file system every rank sees?)",
                     rank, dir, VDX_SHARDS_MANIFEST, dir);
        else
            snprintf(err, sizeof err, "'%s' holds %ld shards (its %s), the "
                     "communicator has %d ranks: run %ld", dir, count,
                     VDX_SHARDS_MANIFEST, size, count);
    } else {
        char path[PATH_CAP];
        struct stat sb;
        snprintf(path, sizeof path, "%s/shard-%d.faissindex", dir, rank);
        if (stat(path, &sb) == 0) {
            st = vdx_read_index(path, io_flags, shard);
        } else {
            snprintf(path, sizeof path, "%s/shard-%d", dir, rank);
            st = vdx_read_sharded(path, 0, shard);
        }
        if (st) snprintf(err, sizeof err, "rank %d: cannot load '%s': %s", rank, path,
                         vdx_last_error());
    }
    /* every rank learns the first failure, with its message */
    int mine = st ? rank : size, first = size;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (rc != MPI_SUCCESS) {
        vdx_index_free(*shard);
        *shard = NULL;
        return vdx_raise(VDX_ERR_IO, "dist_load: MPI_Allreduce failed (MPI error %d)", rc);
    }
    if (first == size) {
        if (ids) *ids = successive ? VDX_DIST_IDS_SUCCESSIVE : VDX_DIST_IDS_GLOBAL;
        return VDX_OK;
    }
    int64_t code = st;
    MPI_Bcast(err, (int)sizeof err, MPI_CHAR, first, comm);
    MPI_Bcast(&code, 1, MPI_INT64_T, first, comm);
    err[sizeof err - 1] = 0;
    vdx_index_free(*shard);
    *shard = NULL;
    return vdx_raise(code ? (vdx_status)code : VDX_ERR_IO, "dist_load: %s", err);
}

vdx_status vdx_dist_add(vdx_dist *g, int64_t n, const float *x,
                        const vdx_idx_t *ids, double deadline_s,
                        vdx_idx_t *ids_out, int64_t *applied) {
    pipe_guard pg;
    vdx_pipe_block(&pg);
    vdx_status st = dist_add_impl(g, n, x, ids, deadline_s, ids_out, applied);
    vdx_pipe_restore(&pg);
    return st;
}

vdx_status vdx_dist_save(vdx_dist *g, const char *dir, double deadline_s) {
    pipe_guard pg;
    vdx_pipe_block(&pg);
    vdx_status st = dist_save_impl(g, dir, deadline_s);
    vdx_pipe_restore(&pg);
    return st;
}
