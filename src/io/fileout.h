/*
 * fileout.h — opening an output file the way vdx_write_index promises
 * (see fileout.c for the policy and include/vecdex.h for the contract):
 *
 *     vdx_fileout o;
 *     if ((s = vdx_fileout_open(&o, path)) != VDX_OK) return s;
 *     ... fwrite to o.fp ...
 *     s = ok ? vdx_fileout_commit(&o) : (vdx_fileout_abort(&o), s);
 *
 * Both commit and abort release everything open() acquired, on success and
 * on error.
 */
#ifndef VDX_IO_FILEOUT_H
#define VDX_IO_FILEOUT_H

#include <signal.h>
#include <stdio.h>

#include "../common/common.h"

typedef struct vdx_fileout {
    FILE *fp;     /* write the bytes here */
    char *target; /* the file written: `path` with its symlinks followed */
    char *tmp;    /* the temporary renamed over target at commit, or NULL
                     when writing through target in place */
    int regular;  /* the output is a regular file: fsync failures count */
    int sigpipe_blocked, sigpipe_was_pending; /* writing through a FIFO */
    sigset_t old_mask;
} vdx_fileout;

/* Prepares to write `path` (which the messages quote): follows symlinks to
 * the final target, removes stale temporaries of that target left by dead
 * writers, then opens a new temporary file next to it (a new file or a
 * regular file with one link, mode and owner copied from the old one) or
 * the target itself (a hard-linked file, a FIFO, a device, or a writable
 * file in a directory that is not).
 * @return VDX_OK with o->fp open; VDX_ERR_IO (nothing was created, o is
 *   cleared); VDX_ERR_OUT_OF_MEMORY. */
VDX_INTERNAL vdx_status vdx_fileout_open(vdx_fileout *o, const char *path);

/* Flushes and syncs, renames the temporary over the target (then syncs the
 * directory, best effort) and closes.  @return VDX_OK, or VDX_ERR_IO with
 * the temporary removed and the old file left as it was (unless written in
 * place, where the file holds what was written). */
VDX_INTERNAL vdx_status vdx_fileout_commit(vdx_fileout *o);

/* Closes and removes the temporary file; the target is left as it was
 * (unless written in place).  Keeps the calling thread's last error. */
VDX_INTERNAL void vdx_fileout_abort(vdx_fileout *o);

/* Removes the temporaries "<dir>/.<stem>.vdxtmp.<pid>.<16 hex>" of the file
 * `target` that belong to no live writer (the rule is in fileout.c).
 * Best effort: errors are ignored.  @return the number removed. */
VDX_INTERNAL int vdx_fileout_remove_stale(const char *target);

#endif
