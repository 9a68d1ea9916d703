/*
 * cli.h — private header of the `vecdex` command.
 *
 *   vecdex_cli.c   main, usage, demo, version
 *   commands.c     build, search, eval, bench, info
 *   vecio.c        vector files: .fvecs .ivecs .bvecs .npy .f32
 *   store_cmd.c    vecdex store ...
 *
 * Exit codes: 0 success, 1 runtime failure (bad file, library error),
 * 2 usage error (bad option or value).
 */
#ifndef VDX_CLI_H
#define VDX_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vecdex.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* Element types of a matrix read from or written to a file. */
typedef enum mat_type { MT_F32, MT_I32, MT_I64, MT_U8 } mat_type;

/* An n x d row-major matrix. */
typedef struct matrix {
    int64_t n, d;
    mat_type type;
    void *data;
} matrix;

/* Reads a vector file, choosing the format by extension (.fvecs, .ivecs,
 * .bvecs, .npy, .f32 / .fbin-less raw float32 which needs dim > 0).
 * Every size is checked against the file's length before any allocation.
 * Returns 0, or -1 with a message in err. */
int mat_read(const char *path, int64_t dim, matrix *out, char *err,
             size_t errlen);
/* The matrix as float32 (converted in place when needed); 0 or -1. */
int mat_to_f32(matrix *m, char *err, size_t errlen);
/* The matrix as int64 (converted in place when needed); 0 or -1. */
int mat_to_i64(matrix *m, char *err, size_t errlen);
/* Writes by extension: .npy (any type), .fvecs (F32), .ivecs (I32 / I64
 * with values in int32 range), .f32 (F32), as write_index writes files
 * (src/io/fileout.c: atomic replace, links and modes kept).  0 or -1 with
 * err. */
int mat_write(const char *path, const matrix *m, char *err, size_t errlen);
void mat_free(matrix *m);

/* Prints s as a JSON string (quoted, escaped) on stdout. */
void json_str(const char *s);

/* Subcommands: argc/argv after the command name; return the exit code. */
int cmd_build(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
/* store_cmd.c: vecdex store create|upsert|search|hybrid|delete|get|info|compact */
int cmd_store(int argc, char **argv);

#endif /* VDX_CLI_H */
