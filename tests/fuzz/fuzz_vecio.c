/*
 * fuzz_vecio.c — libFuzzer target for the `vecdex` command's vector-file
 * readers (cli/vecio.c: .fvecs, .ivecs, .bvecs, .npy, raw .f32).
 *
 * Input: byte 0 picks the format (and, for .f32, byte 1 the --dim); the
 * rest is the file, written to a private temporary directory.  mat_read
 * must either fail with a message, or return an n x d matrix (d >= 1) whose
 * size is what the file holds; that matrix must convert (mat_to_f32,
 * mat_to_i64 refused only for float data) and survive mat_write + mat_read
 * as .npy (and in its own format, where it fits) with the same values.
 * Readers check every size against the file length before allocating, so
 * a hostile header cannot ask for a giant buffer (run with
 * -malloc_limit_mb).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static void die(const char *what, const char *err) {
    fprintf(stderr, "fuzz_vecio: %s: %s\n", what, err ? err : "");
    abort();
}

static void cleanup(void) {
    static const char *names[] = {"in.fvecs", "in.ivecs", "in.bvecs", "in.npy",
                                  "in.f32",   "out.npy",  "out.fvecs",
                                  "out.ivecs", "out.f32", NULL};
    char p[300];
    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static const char *path_in(const char *name) {
    static char p[300];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/fuzz_vecio.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) die("mkdtemp failed", dir);
        atexit(cleanup);
    }
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static size_t item_size(mat_type t) {
    return t == MT_I64 ? 8 : t == MT_U8 ? 1 : 4;
}

/* Writes m to `name` and reads it back: same shape and values. */
static void round_trip(const matrix *m, const char *name) {
    char err[512] = "";
    char path[300];
    snprintf(path, sizeof path, "%s", path_in(name));
    if (mat_write(path, m, err, sizeof err) != 0) {
        if (!err[0]) die("mat_write failed without a message", NULL);
        return; /* e.g. int64 ids outside int32 for .ivecs */
    }
    /* an empty TEXMEX file has no dimension to read back */
    if (m->n == 0 && strstr(name, "vecs")) return;
    matrix b;
    int64_t dim = strstr(name, ".f32") ? m->d : 0; /* raw files need --dim */
    if (mat_read(path, dim, &b, err, sizeof err) != 0)
        die("re-reading our own file failed", err);
    if (b.n != m->n || b.d != m->d) die("round trip changed the shape", name);
    int ivecs64 = m->type == MT_I64 && b.type == MT_I32;
    if (!ivecs64) {
        if (b.type != m->type) die("round trip changed the type", name);
        if (memcmp(b.data, m->data,
                   (size_t)(m->n * m->d) * item_size(m->type)))
            die("round trip changed the values", name);
    }
    mat_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *exts[] = {"in.fvecs", "in.ivecs", "in.bvecs", "in.npy",
                                 "in.f32"};
    if (size < 2) return 0;
    const char *name = exts[data[0] % 5];
    int64_t dim = (data[0] % 5 == 4) ? 1 + data[1] % 16
                  : (data[1] & 0x80) ? 1 + data[1] % 8 : 0;
    const char *path = path_in(name);
    FILE *f = fopen(path, "wb");
    if (!f) die("cannot write the input file", path);
    if (size > 2 && fwrite(data + 2, 1, size - 2, f) != size - 2)
        die("short write", path);
    fclose(f);

    char err[512] = "";
    matrix m;
    if (mat_read(path, dim, &m, err, sizeof err) != 0) {
        if (!err[0]) die("mat_read failed without a message", NULL);
        if (m.data) die("mat_read failed but left data", err);
        return 0;
    }
    if (m.d < 1 || m.n < 0 || !m.data) die("bad matrix", name);
    if (dim > 0 && m.d != dim) die("--dim not honoured", name);
    if ((size_t)(m.n * m.d) * item_size(m.type) > size)
        die("more values than the file holds", name);

    round_trip(&m, "out.npy");
    if (m.type == MT_F32) {
        round_trip(&m, "out.fvecs");
        round_trip(&m, "out.f32");
    } else if (m.type != MT_U8) {
        round_trip(&m, "out.ivecs");
    }

    /* conversions, on copies */
    size_t bytes = (size_t)(m.n * m.d) * item_size(m.type);
    matrix c = m;
    c.data = malloc(bytes ? bytes : 1);
    if (!c.data) abort();
    memcpy(c.data, m.data, bytes);
    if (mat_to_f32(&c, err, sizeof err) != 0) die("mat_to_f32 failed", err);
    if (c.type != MT_F32 || c.n != m.n || c.d != m.d) die("mat_to_f32", name);
    mat_free(&c);
    c = m;
    c.data = malloc(bytes ? bytes : 1);
    if (!c.data) abort();
    memcpy(c.data, m.data, bytes);
    int rc = mat_to_i64(&c, err, sizeof err);
    if ((rc != 0) != (m.type == MT_F32)) die("mat_to_i64", err);
    mat_free(&c);
    mat_free(&m);
    return 0;
}
