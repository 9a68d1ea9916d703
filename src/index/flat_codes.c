/*
 * flat_codes.c — read access to the code array of the flat-code indexes
 * (FAISS's IndexFlatCodes::codes): IndexFlat (the float vectors as bytes),
 * IndexPQ, IndexScalarQuantizer and IndexLSH all keep ntotal codes of
 * code_size bytes back to back, entry i at i * code_size.
 */
#include <string.h>

#include "index_internal.h"
#include "index_lsh.h"
#include "index_pq.h"
#include "index_sq.h"

/* The contiguous code array of ix and its code size, or NULL. */
static const uint8_t *codes_of(const vdx_index *ix, size_t *cs) {
    if (vdx_is_flat(ix)) {
        *cs = (size_t)ix->d * sizeof(float);
        return (const uint8_t *)(const void *)((const vdx_flat *)(const void *)ix)->xb;
    }
    if (vdx_is_index_pq(ix)) {
        const vdx_index_pq *p = (const vdx_index_pq *)(const void *)ix;
        *cs = p->pq.code_size;
        return p->codes;
    }
    if (vdx_is_index_sq(ix)) {
        const vdx_index_sq *s = (const vdx_index_sq *)(const void *)ix;
        *cs = s->sq.code_size;
        return s->codes;
    }
    if (vdx_is_lsh(ix)) {
        *cs = vdx_index_lsh_code_size(ix);
        return vdx_index_lsh_codes(ix);
    }
    *cs = 0;
    return NULL;
}

size_t vdx_index_codes_size(const vdx_index *ix) {
    size_t cs = 0;
    if (ix) codes_of(ix, &cs);
    return cs;
}

vdx_status vdx_index_codes_get(const vdx_index *ix, int64_t i0, int64_t n,
                               uint8_t *out) {
    vdx_clear_error();
    if (!ix) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "index is NULL");
    size_t cs;
    const uint8_t *c = codes_of(ix, &cs);
    if (!cs)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "codes: %s keeps no flat code array",
                         ix->ops->type_name);
    if (i0 < 0 || n < 0 || i0 > ix->ntotal || n > ix->ntotal - i0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "codes: entries %lld..%lld outside 0..ntotal=%lld",
                         (long long)i0, (long long)(i0 + n),
                         (long long)ix->ntotal);
    if (n && !out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    if (n) memcpy(out, c + (size_t)i0 * cs, (size_t)n * cs);
    return VDX_OK;
}
