/*
 * test_fileout.c — how vdx_write_index puts an index on disk (src/io/fileout.c):
 * concurrent writers of one path, what an existing path keeps (mode, owner,
 * symlinks, hard links, FIFOs, device nodes, read-only files), and the
 * removal of temporary files left by killed writers.
 *
 * Independent references: the bytes a file must hold are
 * vdx_serialize_index's (the in-memory writer, which involves no file);
 * modes, owners, inodes and file types come from lstat/stat.  Tests that
 * need root (chown, mknod, dropping to another uid) are skipped without it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io_test_util.h"
#include "test.h"

static char tmpdir[256];

/* Builds "<tmpdir>/<name>" into a caller buffer. */
static const char *at(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", tmpdir, name);
    return buf;
}

static vdx_index *make_flat(int64_t d, int64_t n, uint64_t seed) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &ix));
    if (!ix) return NULL;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    test_rand_fill(x, (size_t)(n * d), seed);
    CHECK_OK(vdx_index_add(ix, n, x));
    free(x);
    return ix;
}

typedef struct blob {
    uint8_t *b;
    size_t n;
} blob;

static blob serialized(const vdx_index *ix) {
    blob s = {NULL, 0};
    CHECK_OK(vdx_serialize_index(ix, &s.b, &s.n));
    return s;
}

/* 1 when the file at path holds exactly the bytes of s. */
static int holds(const char *path, blob s) {
    size_t n = 0;
    uint8_t *b = slurp(path, &n);
    int same = b && n == s.n && memcmp(b, s.b, n) == 0;
    free(b);
    return same;
}

static void write_bytes(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Number of entries of dir whose name contains `part` (0 if none). */
static int count_entries(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, part)) n++;
    closedir(d);
    return n;
}

/* Number of entries of dir other than "." and ".." */
static int count_all(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* A fresh empty directory under tmpdir. */
static const char *fresh_dir(char *buf, size_t len, const char *name) {
    at(buf, len, name);
    CHECK(mkdir(buf, 0755) == 0);
    return buf;
}

/* Runs fn in a child process with the uid/gid of `nobody` (65534) when we
 * are root, else as ourselves; returns 1 when fn's checks passed. */
static int as_unprivileged(void (*fn)(void)) {
    fflush(NULL);
    pid_t p = fork();
    if (p < 0) return 0;
    if (p == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        test_cur_failed = 0;
        fn();
        fflush(NULL);
        _exit(test_cur_failed ? 1 : 0);
    }
    int st = 0;
    if (waitpid(p, &st, 0) != p) return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ---- item 5: concurrent writers ---------------------------------------- */

typedef struct writer_arg {
    const vdx_index *ix;
    const char *path;
    pthread_barrier_t *go;
    vdx_status st;
    char msg[512];
} writer_arg;

static void *writer_thread(void *p) {
    writer_arg *a = p;
    pthread_barrier_wait(a->go);
    a->st = vdx_write_index(a->ix, a->path);
    snprintf(a->msg, sizeof a->msg, "%s", vdx_last_error());
    return NULL;
}

/* Two threads write two different indexes to one path at the same moment,
 * 24 times: both must succeed (each has its own temporary file), the file
 * must be exactly one of the two indexes (the last rename wins whole), and
 * no temporary file may be left. */
static void test_concurrent_writers(void) {
    char dir[512], path[600];
    fresh_dir(dir, sizeof dir, "concurrent");
    snprintf(path, sizeof path, "%s/shared.index", dir);
    vdx_index *a = make_flat(32, 6000, 1), *b = make_flat(32, 12000, 2);
    blob sa = serialized(a), sb = serialized(b);
    int bad = 0;
    for (int trial = 0; trial < 24; trial++) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        writer_arg wa = {a, path, &go, VDX_OK, ""}, wb = {b, path, &go, VDX_OK, ""};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, writer_thread, &wa);
        pthread_create(&tb, NULL, writer_thread, &wb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&go);
        int ok = wa.st == VDX_OK && wb.st == VDX_OK &&
                 (holds(path, sa) || holds(path, sb)) && count_all(dir) == 1;
        if (!ok) {
            if (bad++ < 3)
                fprintf(stderr, "  trial %d: A %s '%s', B %s '%s', holds A %d B %d,"
                        " %d entries\n", trial, vdx_status_name(wa.st), wa.msg,
                        vdx_status_name(wb.st), wb.msg, holds(path, sa),
                        holds(path, sb), count_all(dir));
        }
    }
    CHECK(bad == 0);
    /* a hard-linked file is written in place: the writers take turns */
    char other[700];
    snprintf(other, sizeof other, "%s/other_name.index", dir);
    CHECK(link(path, other) == 0);
    bad = 0;
    for (int trial = 0; trial < 12; trial++) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        writer_arg wa = {a, path, &go, VDX_OK, ""}, wb = {b, other, &go, VDX_OK, ""};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, writer_thread, &wa);
        pthread_create(&tb, NULL, writer_thread, &wb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&go);
        if (!(wa.st == VDX_OK && wb.st == VDX_OK &&
              (holds(path, sa) || holds(path, sb)) && count_all(dir) == 2))
            bad++;
    }
    CHECK(bad == 0);
    vdx_free_buffer(sa.b);
    vdx_free_buffer(sb.b);
    vdx_index_free(a);
    vdx_index_free(b);
}

/* ---- item 6: what an existing path keeps ------------------------------- */

static mode_t mode_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static void test_mode_kept(void) {
    char p[600];
    vdx_index *ix = make_flat(8, 10, 3);
    blob s = serialized(ix);
    mode_t old = umask(022);
    static const mode_t modes[] = {0600, 0640, 0604, 0664, 0755};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        at(p, sizeof p, "moded.index");
        write_bytes(p, "old");
        CHECK(chmod(p, modes[i]) == 0);
        CHECK_OK(vdx_write_index(ix, p));
        if (mode_of(p) != modes[i])
            fprintf(stderr, "  mode 0%o came back 0%o\n", (unsigned)modes[i],
                    (unsigned)mode_of(p));
        CHECK(mode_of(p) == modes[i]);
        CHECK(holds(p, s));
        remove(p);
    }
    /* a new file gets what fopen would give it: 0666 less the umask */
    umask(027);
    at(p, sizeof p, "new.index");
    CHECK_OK(vdx_write_index(ix, p));
    CHECK(mode_of(p) == 0640);
    CHECK(holds(p, s));
    remove(p);
    umask(old);
    vdx_free_buffer(s.b);
    vdx_index_free(ix);
}

static void test_owner_kept(void) {
    if (geteuid() != 0) {
        printf("     (skipped: needs root to chown)\n");
        return;
    }
    char p[600];
    vdx_index *ix = make_flat(8, 10, 4);
    at(p, sizeof p, "owned.index");
    write_bytes(p, "old");
    CHECK(chown(p, 4242, 4343) == 0);
    CHECK(chmod(p, 0640) == 0);
    CHECK_OK(vdx_write_index(ix, p));
    struct stat st;
    CHECK(stat(p, &st) == 0);
    CHECK(st.st_uid == 4242 && st.st_gid == 4343);
    CHECK((st.st_mode & 07777) == 0640);
    remove(p);
    vdx_index_free(ix);
}

static int is_link(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

static void test_symlinks_followed(void) {
    char dir[512], sub[600], target[700], l1[700], l2[700], abs_l[700];
    fresh_dir(dir, sizeof dir, "links");
    snprintf(sub, sizeof sub, "%s/sub", dir);
    CHECK(mkdir(sub, 0755) == 0);
    snprintf(target, sizeof target, "%s/target.index", dir);
    snprintf(l1, sizeof l1, "%s/l1", dir);
    snprintf(l2, sizeof l2, "%s/l2", sub);
    snprintf(abs_l, sizeof abs_l, "%s/abs", sub);
    write_bytes(target, "old");
    CHECK(chmod(target, 0600) == 0);
    /* a chain of relative links, the second one in another directory */
    CHECK(symlink("target.index", l1) == 0);
    CHECK(symlink("../l1", l2) == 0);
    CHECK(symlink(target, abs_l) == 0);
    vdx_index *ix = make_flat(8, 10, 5), *iy = make_flat(8, 20, 6);
    blob sx = serialized(ix), sy = serialized(iy);
    CHECK_OK(vdx_write_index(ix, l2));
    CHECK(is_link(l1) && is_link(l2));
    CHECK(holds(target, sx));
    CHECK(mode_of(target) == 0600);
    CHECK_OK(vdx_write_index(iy, abs_l));
    CHECK(is_link(abs_l) && holds(target, sy));
    /* no temporary next to the links or the target */
    CHECK(count_all(sub) == 2);
    CHECK(count_all(dir) == 3); /* sub, target.index, l1 */

    /* a dangling link: its target is created, the link stays */
    char dangling[700], created[700];
    snprintf(dangling, sizeof dangling, "%s/dangling", dir);
    snprintf(created, sizeof created, "%s/created.index", dir);
    CHECK(symlink("created.index", dangling) == 0);
    CHECK_OK(vdx_write_index(ix, dangling));
    CHECK(is_link(dangling) && holds(created, sx));

    /* a loop is an error naming the path, and creates nothing */
    char la[700], lb[700];
    snprintf(la, sizeof la, "%s/loop_a", dir);
    snprintf(lb, sizeof lb, "%s/loop_b", dir);
    CHECK(symlink("loop_b", la) == 0);
    CHECK(symlink("loop_a", lb) == 0);
    int before = count_all(dir);
    CHECK_ERR(vdx_write_index(ix, la), VDX_ERR_IO);
    CHECK(strstr(vdx_last_error(), "loop_a") != NULL);
    CHECK(is_link(la) && is_link(lb));
    CHECK(count_all(dir) == before);

    /* a directory, or no name at all */
    CHECK_ERR(vdx_write_index(ix, sub), VDX_ERR_IO);
    CHECK(strstr(vdx_last_error(), "directory") != NULL);
    CHECK_ERR(vdx_write_index(ix, ""), VDX_ERR_IO);
    CHECK(strstr(vdx_last_error(), "empty") != NULL);

    vdx_free_buffer(sx.b);
    vdx_free_buffer(sy.b);
    vdx_index_free(ix);
    vdx_index_free(iy);
}

static void test_hard_link_kept(void) {
    char a[600], b[600];
    at(a, sizeof a, "hard_a.index");
    at(b, sizeof b, "hard_b.index");
    write_bytes(a, "old contents of both names");
    CHECK(link(a, b) == 0);
    struct stat before, after_a, after_b;
    CHECK(stat(a, &before) == 0);
    vdx_index *ix = make_flat(8, 30, 7);
    blob s = serialized(ix);
    CHECK_OK(vdx_write_index(ix, a));
    CHECK(stat(a, &after_a) == 0 && stat(b, &after_b) == 0);
    CHECK(after_a.st_ino == before.st_ino && after_b.st_ino == before.st_ino);
    CHECK(after_a.st_nlink == 2);
    CHECK(holds(a, s) && holds(b, s));
    /* shorter than before: the old tail is cut off */
    vdx_index *small = make_flat(2, 1, 8);
    blob ss = serialized(small);
    CHECK_OK(vdx_write_index(small, b));
    CHECK(holds(a, ss));
    CHECK(count_entries(tmpdir, "vdxtmp") == 0);
    remove(a);
    remove(b);
    vdx_free_buffer(s.b);
    vdx_free_buffer(ss.b);
    vdx_index_free(ix);
    vdx_index_free(small);
}

typedef struct fifo_reader {
    const char *path;
    blob got;
} fifo_reader;

/* Opens the FIFO without blocking (so a writer that never comes cannot hang
 * the test) and reads until EOF or 20 s without data. */
static void *fifo_read_thread(void *p) {
    fifo_reader *r = p;
    int fd = open(r->path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return NULL;
    size_t cap = 1 << 16;
    r->got.b = malloc(cap);
    int seen_data = 0;
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 20000) <= 0) break;
        if (r->got.n == cap) r->got.b = realloc(r->got.b, cap *= 2);
        ssize_t k = read(fd, r->got.b + r->got.n, cap - r->got.n);
        if (k > 0) {
            r->got.n += (size_t)k;
            seen_data = 1;
        } else if (k == 0 && seen_data) {
            break; /* the writer closed */
        } else if (k == 0 || errno == EAGAIN) {
            usleep(1000); /* no writer yet */
        } else {
            break;
        }
    }
    close(fd);
    return NULL;
}

static void test_fifo_written_through(void) {
    char p[600];
    at(p, sizeof p, "pipe");
    CHECK(mkfifo(p, 0600) == 0);
    vdx_index *ix = make_flat(16, 5000, 9); /* 320 kB: more than a pipe holds */
    blob s = serialized(ix);
    fifo_reader r = {p, {NULL, 0}};
    pthread_t t;
    pthread_create(&t, NULL, fifo_read_thread, &r);
    CHECK_OK(vdx_write_index(ix, p));
    pthread_join(t, NULL);
    struct stat st;
    CHECK(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(r.got.n == s.n && memcmp(r.got.b, s.b, s.n) == 0);
    CHECK(count_entries(tmpdir, "pipe") == 1);
    free(r.got.b);
    remove(p);
    vdx_free_buffer(s.b);
    vdx_index_free(ix);
}

/* Reads a little of the FIFO, then goes away. */
static void *fifo_quit_thread(void *p) {
    fifo_reader *r = p;
    int fd = open(r->path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return NULL;
    char buf[100];
    for (int i = 0; i < 20000; i++) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 1) > 0 && read(fd, buf, sizeof buf) > 0) break;
    }
    close(fd);
    return NULL;
}

/* A reader that leaves before the end is an error, not a SIGPIPE that would
 * kill the process (the library never ends its caller). */
static void test_fifo_reader_gone(void) {
    char p[600];
    at(p, sizeof p, "pipe_quit");
    CHECK(mkfifo(p, 0600) == 0);
    vdx_index *ix = make_flat(16, 20000, 17); /* 1.3 MB */
    fifo_reader r = {p, {NULL, 0}};
    pthread_t t;
    pthread_create(&t, NULL, fifo_quit_thread, &r);
    CHECK_ERR(vdx_write_index(ix, p), VDX_ERR_IO);
    CHECK(strstr(vdx_last_error(), "pipe_quit") != NULL);
    pthread_join(t, NULL);
    /* and SIGPIPE is not left blocked */
    sigset_t mask;
    CHECK(pthread_sigmask(SIG_SETMASK, NULL, &mask) == 0);
    CHECK(!sigismember(&mask, SIGPIPE));
    remove(p);
    vdx_index_free(ix);
}

typedef struct pipe_reader {
    int fd;
    blob got;
} pipe_reader;

static void *pipe_read_thread(void *p) {
    pipe_reader *r = p;
    size_t cap = 1 << 16;
    r->got.b = malloc(cap);
    for (;;) {
        if (r->got.n == cap) r->got.b = realloc(r->got.b, cap *= 2);
        ssize_t k = read(r->fd, r->got.b + r->got.n, cap - r->got.n);
        if (k <= 0) break;
        r->got.n += (size_t)k;
    }
    return NULL;
}

/* "/dev/stdout" is a link to /proc/self/fd/1, whose "target" (pipe:[N]) is
 * no path: such magic links to a pipe or device are opened as they are. */
static void test_proc_fd_link_written_through(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fds[1]);
    vdx_index *ix = make_flat(16, 5000, 18);
    blob s = serialized(ix);
    pipe_reader r = {fds[0], {NULL, 0}};
    pthread_t t;
    pthread_create(&t, NULL, pipe_read_thread, &r);
    CHECK_OK(vdx_write_index(ix, p));
    close(fds[1]); /* EOF for the reader: vecdex closed its own descriptor */
    pthread_join(t, NULL);
    CHECK(r.got.n == s.n && memcmp(r.got.b, s.b, s.n) == 0);
    close(fds[0]);
    free(r.got.b);
    vdx_free_buffer(s.b);
    vdx_index_free(ix);
}

static void test_device_written_through(void) {
    char p[600];
    at(p, sizeof p, "null");
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) != 0) {
        printf("     (skipped: cannot mknod: %s)\n", strerror(errno));
        return;
    }
    vdx_index *ix = make_flat(8, 10, 10);
    CHECK_OK(vdx_write_index(ix, p));
    struct stat st;
    CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode));
    CHECK(st.st_rdev == makedev(1, 3));
    CHECK(count_entries(tmpdir, "null") == 1);
    remove(p);
    vdx_index_free(ix);
}

/* An index kind with no writer fails before the path is touched. */
static void test_unsupported_touches_nothing(void) {
    char p[600];
    at(p, sizeof p, "keep.index");
    write_bytes(p, "precious");
    vdx_index *ix = NULL; /* empty: IDMap wraps only empty indexes */
    CHECK_OK(vdx_index_flat_new(8, VDX_METRIC_L2, &ix));
    /* the in-place path (a hard link) must not truncate first either */
    char q[600];
    at(q, sizeof q, "keep_link.index");
    CHECK(link(p, q) == 0);
    vdx_index *deep = ix;
    /* IDMap nested deeper than the writer accepts (VDX_IO_MAX_DEPTH = 16) */
    for (int i = 0; i < 20 && deep; i++) {
        vdx_index *w = NULL;
        if (vdx_index_idmap_new(deep, &w) != VDX_OK) break;
        deep = w;
    }
    CHECK_ERR(vdx_write_index(deep, p), VDX_ERR_UNSUPPORTED);
    size_t n = 0;
    uint8_t *b = slurp(q, &n);
    CHECK(b && n == 8 && memcmp(b, "precious", 8) == 0);
    free(b);
    CHECK(count_entries(tmpdir, "vdxtmp") == 0);
    remove(p);
    remove(q);
    vdx_index_free(deep);
}

/* As an unprivileged user: a read-only file is refused, as fopen would
 * refuse it, and left as it was; a writable file in a directory the user
 * cannot write is written in place (no temporary file can be made there). */
static char perm_dir[600];

static void unprivileged_checks(void) {
    char ro[700], locked_dir[700], inner[800];
    snprintf(ro, sizeof ro, "%s/readonly.index", perm_dir);
    snprintf(locked_dir, sizeof locked_dir, "%s/locked", perm_dir);
    snprintf(inner, sizeof inner, "%s/locked/inner.index", perm_dir);
    vdx_index *ix = make_flat(8, 10, 12);
    blob s = serialized(ix);
    CHECK_ERR(vdx_write_index(ix, ro), VDX_ERR_IO);
    CHECK(strstr(vdx_last_error(), "readonly.index") != NULL);
    size_t n = 0;
    uint8_t *b = slurp(ro, &n);
    CHECK(b && n == 3 && memcmp(b, "old", 3) == 0);
    free(b);
    CHECK(mode_of(ro) == 0444);
    CHECK_OK(vdx_write_index(ix, inner));
    CHECK(holds(inner, s));
    CHECK(count_all(locked_dir) == 1);
    /* someone else's writable file in a sticky directory: written in place
     * (a rename over it is refused there) */
    char sticky[800];
    snprintf(sticky, sizeof sticky, "%s/sticky/theirs.index", perm_dir);
    if (geteuid() != 0) {
        CHECK_OK(vdx_write_index(ix, sticky));
        CHECK(holds(sticky, s));
    }
    vdx_free_buffer(s.b);
    vdx_index_free(ix);
}

static void test_permissions_respected(void) {
    char ro[700], locked_dir[700], inner[800];
    snprintf(perm_dir, sizeof perm_dir, "%s/perm", tmpdir);
    CHECK(mkdir(perm_dir, 0777) == 0);
    chmod(perm_dir, 0777);
    snprintf(ro, sizeof ro, "%s/readonly.index", perm_dir);
    snprintf(locked_dir, sizeof locked_dir, "%s/locked", perm_dir);
    snprintf(inner, sizeof inner, "%s/locked/inner.index", perm_dir);
    write_bytes(ro, "old");
    CHECK(mkdir(locked_dir, 0755) == 0);
    write_bytes(inner, "old");
    if (geteuid() == 0) {
        CHECK(chown(ro, 65534, 65534) == 0);
        CHECK(chown(inner, 65534, 65534) == 0);
        CHECK(chown(locked_dir, 0, 0) == 0); /* nobody cannot write it */
    } else {
        CHECK(chmod(locked_dir, 0555) == 0);
    }
    CHECK(chmod(ro, 0444) == 0);
    CHECK(chmod(inner, 0644) == 0);
    char sticky_dir[700], theirs[800];
    snprintf(sticky_dir, sizeof sticky_dir, "%s/sticky", perm_dir);
    snprintf(theirs, sizeof theirs, "%s/theirs.index", sticky_dir);
    CHECK(mkdir(sticky_dir, 0777) == 0);
    CHECK(chmod(sticky_dir, 01777) == 0);
    write_bytes(theirs, "old");
    CHECK(chmod(theirs, 0666) == 0);
    CHECK(as_unprivileged(unprivileged_checks));
    remove(theirs);
    rmdir(sticky_dir);
    chmod(locked_dir, 0755);
    remove(inner);
    rmdir(locked_dir);
    remove(ro);
    rmdir(perm_dir);
}

/* A name as long as a directory entry may be still gets a temporary file
 * (whose name cannot be the target's plus a suffix). */
static void test_long_name(void) {
    char name[256], p[800];
    memset(name, 'n', 250);
    memcpy(name + 244, ".index", 7);
    at(p, sizeof p, name);
    vdx_index *ix = make_flat(8, 10, 13);
    blob s = serialized(ix);
    CHECK_OK(vdx_write_index(ix, p));
    CHECK(holds(p, s));
    CHECK_OK(vdx_write_index(ix, p)); /* over an existing one */
    CHECK(holds(p, s));
    CHECK(count_entries(tmpdir, "nnnn") == 1);
    remove(p);
    vdx_free_buffer(s.b);
    vdx_index_free(ix);
}

/* ---- item 7: temporaries left by killed writers ------------------------ */

/* "<dir>/.<base>.vdxtmp.<pid>.<suffix>" with some bytes in it. */
static void make_temp(char *out, size_t len, const char *dir, const char *base,
                      long pid, const char *suffix) {
    snprintf(out, len, "%s/.%s.vdxtmp.%ld.%s", dir, base, pid, suffix);
    write_bytes(out, "a partial index");
}

/* A pid that belonged to a process that has exited. */
static pid_t dead_pid(void) {
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static void set_age(const char *path, long seconds) {
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= seconds;
    tv[1] = tv[0];
    CHECK(utimes(path, tv) == 0);
}

static void test_stale_temporaries_removed(void) {
    char dir[512], path[600];
    fresh_dir(dir, sizeof dir, "stale");
    snprintf(path, sizeof path, "%s/x.index", dir);
    vdx_index *ix = make_flat(8, 10, 14);
    blob s = serialized(ix);
    long dead = (long)dead_pid(), dead2 = (long)dead_pid();

    char gone1[700], gone2[700], gone_old[700];
    make_temp(gone1, sizeof gone1, dir, "x.index", dead, "0123456789abcdef");
    make_temp(gone2, sizeof gone2, dir, "x.index", dead2, "fedcba9876543210");

    /* a live process that holds its temporary's lock is writing it */
    int ready[2], release[2];
    CHECK(pipe(ready) == 0 && pipe(release) == 0);
    char live_locked[700], live_fresh[700];
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        char own[700];
        snprintf(own, sizeof own, "%s/.x.index.vdxtmp.%ld.00000000deadbeef",
                 dir, (long)getpid());
        int fd = open(own, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) != 0) _exit(1);
        char c = 'r';
        if (write(ready[1], &c, 1) != 1) _exit(1);
        if (read(release[0], &c, 1) < 0) _exit(1);
        _exit(0);
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    snprintf(live_locked, sizeof live_locked,
             "%s/.x.index.vdxtmp.%ld.00000000deadbeef", dir, (long)child);
    /* unlocked with a live pid: a writer between its create and its lock,
     * or a reused pid; kept while recent, removed once old */
    make_temp(live_fresh, sizeof live_fresh, dir, "x.index", (long)child,
              "1111111111111111");
    make_temp(gone_old, sizeof gone_old, dir, "x.index", (long)child,
              "2222222222222222");
    set_age(gone_old, 3 * 3600);

    /* not vecdex's temporaries of this target: kept */
    char own_pid[700], other_target[700], bad_suffix[700], short_suffix[700],
        no_dot[700], a_link[700], a_dir[700];
    make_temp(own_pid, sizeof own_pid, dir, "x.index", (long)getpid(),
              "3333333333333333");
    make_temp(other_target, sizeof other_target, dir, "y.index", dead,
              "4444444444444444");
    make_temp(bad_suffix, sizeof bad_suffix, dir, "x.index", dead,
              "0123456789abcdeg");
    make_temp(short_suffix, sizeof short_suffix, dir, "x.index", dead, "0123");
    snprintf(no_dot, sizeof no_dot, "%s/x.index.vdxtmp.%ld.5555555555555555",
             dir, dead);
    write_bytes(no_dot, "x");
    snprintf(a_link, sizeof a_link, "%s/.x.index.vdxtmp.%ld.6666666666666666",
             dir, dead);
    CHECK(symlink(own_pid, a_link) == 0);
    snprintf(a_dir, sizeof a_dir, "%s/.x.index.vdxtmp.%ld.7777777777777777",
             dir, dead);
    CHECK(mkdir(a_dir, 0755) == 0);

    CHECK_OK(vdx_write_index(ix, path));
    CHECK(holds(path, s));
    CHECK(!exists(gone1) && !exists(gone2) && !exists(gone_old));
    CHECK(exists(live_locked) && exists(live_fresh));
    CHECK(exists(own_pid) && exists(other_target) && exists(bad_suffix) &&
          exists(short_suffix) && exists(no_dot) && exists(a_link) &&
          exists(a_dir));

    /* the writer gone, its lock is gone: the next write removes it */
    CHECK(write(release[1], "x", 1) == 1);
    waitpid(child, NULL, 0);
    CHECK_OK(vdx_write_index(ix, path));
    CHECK(!exists(live_locked) && !exists(live_fresh));

    /* through a symlink, the target's directory is the one cleaned */
    char ldir[600], link_path[700], stale_t[700];
    fresh_dir(ldir, sizeof ldir, "stale_links");
    snprintf(link_path, sizeof link_path, "%s/via", ldir);
    CHECK(symlink(path, link_path) == 0);
    make_temp(stale_t, sizeof stale_t, dir, "x.index", dead, "8888888888888888");
    CHECK_OK(vdx_write_index(ix, link_path));
    CHECK(!exists(stale_t) && holds(path, s));

    remove(own_pid);
    remove(other_target);
    remove(bad_suffix);
    remove(short_suffix);
    remove(no_dot);
    remove(a_link);
    rmdir(a_dir);
    close(ready[0]);
    close(ready[1]);
    close(release[0]);
    close(release[1]);
    vdx_free_buffer(s.b);
    vdx_index_free(ix);
}

/* A writer killed in the middle leaves its temporary, named by the pattern
 * that the next write of the same path removes. */
static void test_killed_writer_cleaned(void) {
    char dir[512], path[600];
    fresh_dir(dir, sizeof dir, "killed");
    snprintf(path, sizeof path, "%s/big.index", dir);
    vdx_index *ix = make_flat(64, 200000, 15); /* 51 MB */
    int killed_mid_write = 0;
    for (int round = 0; round < 3; round++) {
        fflush(NULL);
        pid_t p = fork();
        if (p == 0) {
            vdx_write_index(ix, path);
            _exit(0);
        }
        /* wait until its temporary has some bytes, then kill it */
        for (int i = 0; i < 20000; i++) {
            DIR *d = opendir(dir);
            struct dirent *e;
            off_t size = 0;
            while (d && (e = readdir(d))) {
                char q[800];
                struct stat st;
                snprintf(q, sizeof q, "%s/%s", dir, e->d_name);
                if (strstr(e->d_name, ".vdxtmp.") && stat(q, &st) == 0)
                    size = st.st_size;
            }
            if (d) closedir(d);
            if (size > 0) break;
            usleep(100);
        }
        kill(p, SIGKILL);
        int st = 0;
        waitpid(p, &st, 0);
        if (WIFSIGNALED(st)) killed_mid_write++;
        /* at most the one just killed is left: earlier ones were cleaned by
         * the next writer */
        CHECK(count_entries(dir, ".vdxtmp.") <= 1);
    }
    CHECK(killed_mid_write > 0);
    vdx_index *small = make_flat(8, 10, 16);
    blob s = serialized(small);
    CHECK_OK(vdx_write_index(small, path));
    CHECK(holds(path, s));
    CHECK(count_all(dir) == 1);
    remove(path);
    rmdir(dir);
    vdx_free_buffer(s.b);
    vdx_index_free(small);
    vdx_index_free(ix);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vdx_test_fileout_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    chmod(tmpdir, 0755); /* the unprivileged child must reach perm/ */
    RUN(test_concurrent_writers);
    RUN(test_mode_kept);
    RUN(test_owner_kept);
    RUN(test_symlinks_followed);
    RUN(test_hard_link_kept);
    RUN(test_fifo_written_through);
    RUN(test_fifo_reader_gone);
    RUN(test_proc_fd_link_written_through);
    RUN(test_device_written_through);
    RUN(test_unsupported_touches_nothing);
    RUN(test_permissions_respected);
    RUN(test_long_name);
    RUN(test_stale_temporaries_removed);
    RUN(test_killed_writer_cleaned);
    int rc = TEST_SUMMARY();
    if (rc == 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return rc;
}
