/*
 * fileout.c — where the bytes of vdx_write_index go, and what an existing
 * path keeps (the contract is vdx_write_index's, in include/vecdex.h).
 *
 *  - A path naming (through any links) a FIFO or device is opened as
 *    named, so that magic links such as /dev/stdout work.
 *  - Symlinks are followed to the end of a chain (at most 40, as the kernel
 *    does), a relative one from the directory that holds it; the final target
 *    is written, and a dangling link's target is created.
 *  - A new file, or an existing regular file with one link, is replaced
 *    atomically: the bytes go to a temporary file in the target's directory,
 *    created O_EXCL under a name no other writer uses,
 *    ".<name>.vdxtmp.<pid>.<64 random bits in hex>", then fsync'd and
 *    renamed over the target.  Readers see the old file or the complete new
 *    one; of concurrent writers the last rename wins, whole.  The temporary
 *    takes the old file's mode (before any byte is written), and its owner
 *    and group where the caller may set them; a new file gets what fopen
 *    would give it (0666 less the umask, or the directory's default ACL).
 *  - Anything else is written through, in place, as fopen("wb") would:
 *    FIFOs and devices (as root, replacing /dev/null would break the
 *    system); a regular file with several hard links (replacing it would
 *    silently split the names, the others keeping the old index: whoever
 *    linked them wants them to stay one file, and FAISS keeps them so); a
 *    writable file in a directory the caller cannot write (no temporary can
 *    be made there), or another user's file in a sticky directory such as
 *    /tmp (only its owner may rename over it).  Such a write is not atomic: a crash or a full disk
 *    leaves a torn file, as with FAISS (concurrent vecdex writers of such a
 *    file take turns on an flock, so the last one's index is whole).  SIGPIPE is held back while writing
 *    through a FIFO, so a reader that goes away is an error, not a kill.
 *  - A regular file that the caller may not write is refused, as fopen
 *    would refuse it, instead of being replaced through the directory.
 *
 * Temporaries of killed writers.  A writer holds an exclusive flock() on its
 * temporary from creation to rename; the kernel drops it when the process
 * dies, however it dies.  Before writing a regular target, the writer
 * lists the target's directory and removes the entries named
 * ".<name>.vdxtmp.<pid>.<16 hex>" (this exact target's pattern) that are
 * regular files, not of this process (another thread may be writing one),
 * whose lock it can take, and whose pid is gone — or, when a process of that
 * pid exists (a reused pid, or a writer in another pid namespace), that
 * nothing has modified for FILEOUT_STALE_S seconds.  The lock protects a
 * live writer; the pid or age condition covers the instant between its
 * create and its lock, and filesystems without locks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileout.h"

#define FILEOUT_MAX_LINKS 40   /* symlinks followed, as Linux's MAXSYMLINKS */
#define FILEOUT_STALE_S 600    /* unmodified this long, a live pid's is stale */
#define FILEOUT_MAX_STEM 200   /* longer names are hashed in the temp name */
#define FILEOUT_TAG ".vdxtmp." /* marks vecdex's temporaries */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = vdx_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* The first n bytes of a followed by b, as a new string. */
static char *concat(const char *a, size_t n, const char *b) {
    size_t nb = strlen(b);
    char *p = vdx_malloc(n + nb + 1);
    if (!p) return NULL;
    memcpy(p, a, n);
    memcpy(p + n, b, nb + 1);
    return p;
}

/* Follows the symlinks that path's last component names, to the end of the
 * chain: *target (a new string) is the final path, *st its lstat when
 * *exists. */
static vdx_status resolve(const char *path, char **target, struct stat *st,
                          int *exists) {
    char *cur = dup_str(path);
    char *link = vdx_malloc(PATH_MAX);
    vdx_status s = VDX_OK;
    if (!cur || !link) {
        s = VDX_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (int hops = 0;; hops++) {
        if (lstat(cur, st) != 0) {
            if (errno == ENOENT) {
                *exists = 0;
                break;
            }
            s = vdx_raise(VDX_ERR_IO, "cannot write '%s': %s", cur,
                          strerror(errno));
            break;
        }
        if (!S_ISLNK(st->st_mode)) {
            *exists = 1;
            break;
        }
        if (hops == FILEOUT_MAX_LINKS) {
            s = vdx_raise(VDX_ERR_IO,
                          "cannot write '%s': more than %d symbolic links to "
                          "follow (a loop?)", path, FILEOUT_MAX_LINKS);
            break;
        }
        ssize_t n = readlink(cur, link, PATH_MAX);
        if (n <= 0 || n >= PATH_MAX) {
            s = vdx_raise(VDX_ERR_IO, "cannot read the symbolic link '%s': %s",
                          cur, n < 0 ? strerror(errno) : "bad length");
            break;
        }
        link[n] = '\0';
        const char *slash = strrchr(cur, '/');
        char *next = link[0] == '/' || !slash
                         ? dup_str(link)
                         : concat(cur, (size_t)(slash - cur) + 1, link);
        vdx_free(cur);
        cur = next;
        if (!cur) {
            s = VDX_ERR_OUT_OF_MEMORY;
            break;
        }
    }
out:
    vdx_free(link);
    if (s != VDX_OK) {
        vdx_free(cur);
        return s;
    }
    *target = cur;
    return VDX_OK;
}

/* The directory and the last component of target, as new strings. */
static vdx_status split(const char *target, char **dir, char **name) {
    const char *slash = strrchr(target, '/');
    *dir = !slash ? dup_str(".")
           : slash == target ? dup_str("/")
                             : concat(target, (size_t)(slash - target), "");
    *name = dup_str(slash ? slash + 1 : target);
    if (!*dir || !*name) {
        vdx_free(*dir);
        vdx_free(*name);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    return VDX_OK;
}

/* What a temporary's name starts with after its dot: the target's name,
 * or (too long to leave room for the suffix within NAME_MAX) its 64-bit
 * FNV-1a hash in hex. */
static void stem_of(const char *name, char *stem, size_t len) {
    if (strlen(name) <= FILEOUT_MAX_STEM) {
        snprintf(stem, len, "%s", name);
        return;
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    snprintf(stem, len, "%016llx", (unsigned long long)h);
}

static uint64_t random64(void) {
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
    /* no entropy yet (early boot): uniqueness is what matters, and O_EXCL
     * catches the rest */
    static uint64_t counter;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    r = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 30) ^
        ((uint64_t)getpid() << 42) ^
        __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ULL;
    r ^= r >> 31;
    r *= 0xbf58476d1ce4e5b9ULL;
    return r ^ (r >> 29);
}

/* The pid in ".<stem>.vdxtmp.<pid>.<16 lowercase hex>", or 0 when name is
 * not exactly that. */
static long tmp_pid(const char *name, const char *stem) {
    size_t sl = strlen(stem), tl = strlen(FILEOUT_TAG);
    if (name[0] != '.' || strncmp(name + 1, stem, sl) != 0 ||
        strncmp(name + 1 + sl, FILEOUT_TAG, tl) != 0)
        return 0;
    const char *p = name + 1 + sl + tl;
    long pid = 0;
    int digits = 0;
    if (*p == '0') return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++digits > 9) return 0;
        pid = pid * 10 + (*p - '0');
    }
    if (digits == 0 || *p++ != '.') return 0;
    for (int i = 0; i < 16; i++, p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return *p ? 0 : pid;
}

int vdx_fileout_remove_stale(const char *target) {
    char *dir = NULL, *name = NULL;
    if (split(target, &dir, &name) != VDX_OK) return 0;
    char stem[FILEOUT_MAX_STEM + 1];
    stem_of(name, stem, sizeof stem);
    int removed = 0;
    DIR *d = opendir(dir);
    if (!d) goto out;
    int dfd = dirfd(d);
    long self = (long)getpid();
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = tmp_pid(e->d_name, stem);
        if (pid <= 0 || pid == self) continue;
        struct stat st, fst, again;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        int alive = kill((pid_t)pid, 0) == 0 || errno != ESRCH;
        if (alive && now - st.st_mtime < FILEOUT_STALE_S) continue;
        int fd = openat(dfd, e->d_name,
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            fd = openat(dfd, e->d_name,
                        O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        /* the lock taken, no writer has it; the name must still be that
         * file when it is unlinked */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &fst) == 0 &&
            fstatat(dfd, e->d_name, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
            fst.st_dev == again.st_dev && fst.st_ino == again.st_ino &&
            unlinkat(dfd, e->d_name, 0) == 0)
            removed++;
        close(fd);
    }
    closedir(d);
out:
    vdx_free(dir);
    vdx_free(name);
    return removed;
}

/* Creates and locks a temporary file for target in dir; its path goes to
 * *tmp.  Returns the descriptor, or -1 with errno set. */
static int create_tmp(const char *dir, const char *name, mode_t mode,
                      char **tmp) {
    char stem[FILEOUT_MAX_STEM + 1];
    stem_of(name, stem, sizeof stem);
    size_t len = strlen(dir) + strlen(stem) + 64;
    *tmp = NULL;
    for (int attempt = 0; attempt < 16; attempt++) {
        char *p = vdx_malloc(len);
        if (!p) {
            errno = ENOMEM;
            return -1;
        }
        snprintf(p, len, "%s/.%s%s%ld.%016llx", dir, stem, FILEOUT_TAG,
                 (long)getpid(), (unsigned long long)random64());
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      mode);
        if (fd >= 0) {
            /* blocking: a cleaner checking a fresh file lets go at once */
            while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
            }
            *tmp = p;
            return fd;
        }
        int err = errno;
        vdx_free(p);
        errno = err;
        if (err != EEXIST) return -1;
    }
    return -1;
}

/* Gives the new file at fd the old one's mode, and its owner and group
 * where the caller may. */
static int copy_attributes(int fd, const struct stat *old) {
    struct stat now;
    if (fstat(fd, &now) == 0 &&
        (now.st_uid != old->st_uid || now.st_gid != old->st_gid)) {
        if (fchown(fd, old->st_uid, old->st_gid) != 0 &&
            fchown(fd, (uid_t)-1, old->st_gid) != 0) {
            /* not permitted: the file stays the caller's */
        }
    }
    /* after chown, which may clear set-id bits */
    return fchmod(fd, old->st_mode & 07777);
}

/* SIGPIPE is blocked while writing through a FIFO; a pending one raised by
 * our writes is consumed before the mask is restored. */
static void sigpipe_block(vdx_fileout *o) {
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    o->sigpipe_was_pending = sigismember(&pending, SIGPIPE) == 1;
    o->sigpipe_blocked = pthread_sigmask(SIG_BLOCK, &pipe_set, &o->old_mask) == 0;
}

static void sigpipe_restore(vdx_fileout *o) {
    if (!o->sigpipe_blocked) return;
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    if (!o->sigpipe_was_pending && sigismember(&pending, SIGPIPE) == 1) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &o->old_mask, NULL);
    o->sigpipe_blocked = 0;
}

vdx_status vdx_fileout_open(vdx_fileout *o, const char *path) {
    memset(o, 0, sizeof *o);
    struct stat st;
    int exists = 0;
    char *target = NULL, *dir = NULL, *name = NULL;
    vdx_status s;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        /* a FIFO or device, perhaps behind a magic link whose "target" is
         * no path ("/dev/stdout" -> /proc/self/fd/1 -> "pipe:[123]"): the
         * kernel opens it as named */
        exists = 1;
        if (!(target = dup_str(path))) return VDX_ERR_OUT_OF_MEMORY;
    } else if ((s = resolve(path, &target, &st, &exists)) != VDX_OK) {
        return s;
    }
    if ((s = split(target, &dir, &name)) != VDX_OK) goto fail;
    if ((exists && S_ISDIR(st.st_mode)) || !name[0]) {
        s = vdx_raise(VDX_ERR_IO, "cannot write '%s': %s", path,
                      exists || path[0] ? "it is a directory"
                                        : "the path is empty");
        goto fail;
    }
    int fd = -1, in_place = exists && !S_ISREG(st.st_mode);
    o->regular = !in_place;
    if (o->regular) {
        if (exists && faccessat(AT_FDCWD, target, W_OK, AT_EACCESS) != 0 &&
            (errno == EACCES || errno == EPERM || errno == EROFS)) {
            s = vdx_raise(VDX_ERR_IO, "cannot write '%s': %s", target,
                          strerror(errno));
            goto fail;
        }
        vdx_fileout_remove_stale(target);
        in_place = exists && st.st_nlink > 1;
        struct stat ds;
        if (exists && !in_place && st.st_uid != geteuid() && geteuid() != 0 &&
            stat(dir, &ds) == 0 && (ds.st_mode & S_ISVTX) &&
            ds.st_uid != geteuid())
            in_place = 1; /* a sticky directory: only the owner may replace */
    }
    if (!in_place) {
        fd = create_tmp(dir, name, exists ? 0600 : 0666, &o->tmp);
        if (fd < 0 && exists && (errno == EACCES || errno == EPERM)) {
            in_place = 1; /* a writable file in a directory that is not */
        } else if (fd < 0) {
            s = vdx_raise(VDX_ERR_IO,
                          "cannot write '%s': cannot create a temporary file in "
                          "'%s': %s", path, dir, strerror(errno));
            goto fail;
        } else if (exists && copy_attributes(fd, &st) != 0) {
            s = vdx_raise(VDX_ERR_IO, "cannot set the mode of '%s': %s",
                          o->tmp, strerror(errno));
            unlink(o->tmp);
            close(fd);
            goto fail;
        }
    }
    if (in_place) {
        /* a FIFO waits for its reader here, as with fopen; a regular file
         * must still be the one examined, not a link put in its place */
        fd = open(target, O_WRONLY | O_NOCTTY | O_CLOEXEC |
                              (o->regular ? O_NOFOLLOW : 0));
        if (fd < 0) {
            s = vdx_raise(VDX_ERR_IO, "cannot open '%s': %s", target,
                          strerror(errno));
            goto fail;
        }
        if (o->regular) {
            /* truncated only under the lock, so that concurrent vecdex
             * writers of a hard-linked file take turns instead of mixing */
            while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
            }
            if (ftruncate(fd, 0) != 0) {
                s = vdx_raise(VDX_ERR_IO, "cannot truncate '%s': %s", target,
                              strerror(errno));
                close(fd);
                goto fail;
            }
        } else {
            sigpipe_block(o);
        }
    }
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        s = vdx_raise(VDX_ERR_IO, "cannot open '%s': %s", target,
                      strerror(errno));
        if (o->tmp) unlink(o->tmp);
        close(fd);
        sigpipe_restore(o);
        goto fail;
    }
    o->target = target;
    vdx_free(dir);
    vdx_free(name);
    return VDX_OK;
fail:
    vdx_free(o->tmp);
    vdx_free(target);
    vdx_free(dir);
    vdx_free(name);
    memset(o, 0, sizeof *o);
    return s;
}

/* fsync of the directory, so that the rename itself survives a crash;
 * best effort (some filesystems refuse it). */
static void sync_dir(const char *target) {
    char *dir = NULL, *name = NULL;
    if (split(target, &dir, &name) != VDX_OK) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) != 0) {
            /* EINVAL on some filesystems: the data itself is synced */
        }
        close(fd);
    }
    vdx_free(dir);
    vdx_free(name);
}

static void release(vdx_fileout *o) {
    sigpipe_restore(o);
    vdx_free(o->tmp);
    vdx_free(o->target);
    memset(o, 0, sizeof *o);
}

vdx_status vdx_fileout_commit(vdx_fileout *o) {
    vdx_status s = VDX_OK;
    if (fflush(o->fp) != 0)
        s = vdx_raise(VDX_ERR_IO, "write error on '%s': %s", o->target,
                      strerror(errno));
    else if (o->regular && fsync(fileno(o->fp)) != 0)
        s = vdx_raise(VDX_ERR_IO, "cannot sync '%s': %s", o->target,
                      strerror(errno));
    if (s == VDX_OK && o->tmp && rename(o->tmp, o->target) != 0)
        s = vdx_raise(VDX_ERR_IO, "cannot rename '%s' to '%s': %s", o->tmp,
                      o->target, strerror(errno));
    /* unlinked before the close drops the lock */
    if (s != VDX_OK && o->tmp) unlink(o->tmp);
    if (fclose(o->fp) != 0 && s == VDX_OK)
        s = vdx_raise(VDX_ERR_IO, "cannot close '%s': %s", o->target,
                      strerror(errno));
    if (s == VDX_OK && o->tmp) sync_dir(o->target);
    release(o);
    return s;
}

void vdx_fileout_abort(vdx_fileout *o) {
    if (!o->fp) return;
    if (o->tmp) unlink(o->tmp);
    fclose(o->fp);
    release(o);
}
