/*
 * mapping.c — read-only reference-counted file maps (see mapping.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapping.h"

vdx_status vdx_mapping_from_fd(int fd, uint64_t len, const char *path,
                               vdx_mapping **out) {
    *out = NULL;
    if (len > (uint64_t)SIZE_MAX / 2)
        return vdx_raise(VDX_ERR_IO, "cannot map '%s': %llu bytes", path,
                         (unsigned long long)len);
    vdx_mapping *m = vdx_calloc(1, sizeof *m);
    if (!m) return VDX_ERR_OUT_OF_MEMORY;
    if (len > 0) {
        void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            vdx_free(m);
            return vdx_raise(VDX_ERR_IO, "cannot map '%s' (%llu bytes): %s",
                             path, (unsigned long long)len, strerror(e));
        }
        /* no madvise: the kernel's readahead serves the sequential reads of
         * an inverted list or a flat scan from a cold cache (MADV_RANDOM
         * made a cold IVF query 4x slower) */
        m->base = p;
    }
    m->len = len;
    m->refs = 1;
    *out = m;
    return VDX_OK;
}

vdx_status vdx_mapping_open(const char *path, vdx_mapping **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return vdx_raise(VDX_ERR_IO, "cannot open '%s' for reading: %s", path,
                         strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return vdx_raise(VDX_ERR_IO, "cannot stat '%s': %s", path,
                         strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vdx_raise(VDX_ERR_IO, "'%s' is not a regular file", path);
    }
    vdx_status s = vdx_mapping_from_fd(fd, (uint64_t)st.st_size, path, out);
    close(fd); /* the map keeps the file's pages; the descriptor is not needed */
    return s;
}

vdx_mapping *vdx_mapping_ref(vdx_mapping *m) {
    if (m) __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void vdx_mapping_unref(vdx_mapping *m) {
    if (!m) return;
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (m->base) munmap((void *)(uintptr_t)m->base, (size_t)m->len);
    vdx_free(m);
}
