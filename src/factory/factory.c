/*
 * factory.c — vdx_index_factory: builds an index from a FAISS factory string
 * ("IVF1024,Flat", "IDMap2,Flat", ...).
 *
 * The grammar follows FAISS's index_factory for the kinds vecdex has:
 *
 *     description := { wrapper "," } [ coarse "," ] encoding
 *     wrapper     := "IDMap" | "IDMap2"
 *     coarse      := "IVF" <n> [ "k" | "M" ]     (k = *1024, M = *1024^2)
 *     encoding    := "Flat" | "PQ" <M> [ "x" <nbits> ]
 *                  | "SQ4" | "SQ6" | "SQ8" | "SQfp16" | "SQbf16"
 *                  | "LSH" [ <nbits> ] [ "r" ] [ "t" ]   (not after IVF)
 *
 * As in FAISS, tokens are case-sensitive and whitespace is not skipped.
 * A description may end with a refinement suffix, handled before the
 * tokens are split: ",RFlat" (IndexRefineFlat) or ",Refine(<description>)"
 * (IndexRefine whose refine index is built from the inner description).
 *
 * The parser is table-driven: each token kind is one row of `tokens` (a name
 * prefix, the stage it belongs to and a function that parses the rest of the
 * token).  Stages must appear in order (wrappers, then a coarse quantizer,
 * then exactly one encoding, last).  Adding PQ<m>x<b>, SQ8 or HNSW<M> later
 * is a matter of adding a row and, for a new encoding, a case in build().
 * Every error names the offending token and its 0-based character position.
 */
#include <stdio.h>
#include <string.h>

#include "../common/common.h"

/* The stages, in the order they must appear. */
enum stage { ST_WRAPPER = 0, ST_COARSE = 1, ST_ENCODING = 2 };

enum kind { K_IDMAP, K_IDMAP2, K_IVF, K_FLAT, K_PQ, K_SQ, K_LSH };

/* What the parser extracted from one token. */
typedef struct parsed_tok {
    enum kind kind;
    int64_t n;  /* IVF: nlist; PQ: M; SQ: qtype */
    int64_t n2; /* PQ: nbits */
    int64_t n3; /* PQ: 1 = fast scan ("x4fs"), | 2 = by_residual ("fsr") */
    int64_t n4; /* PQ fast scan: bbs ("_<bbs>", default 32) */
} parsed_tok;

typedef struct tok_def {
    const char *prefix; /* the token starts with this */
    enum stage stage;
    enum kind kind;
    /* Parses `rest` (the token after the prefix, `len` chars); 0 on
     * success.  NULL: the token must equal the prefix exactly. */
    int (*parse_rest)(const char *rest, size_t len, parsed_tok *out);
} tok_def;

/* <digits>[k|M], a positive count that fits comfortably in int64. */
static int parse_count(const char *rest, size_t len, parsed_tok *out) {
    if (len == 0) return -1;
    int64_t v = 0, mul = 1;
    size_t i = 0;
    for (; i < len && rest[i] >= '0' && rest[i] <= '9'; i++) {
        if (v > (INT64_C(1) << 40)) return -1;
        v = v * 10 + (rest[i] - '0');
    }
    if (i == 0) return -1;
    if (i + 1 == len && rest[i] == 'k') mul = 1024, i++;
    else if (i + 1 == len && rest[i] == 'M') mul = 1024 * 1024, i++;
    if (i != len) return -1;
    out->n = v * mul;
    return 0;
}

/* <M>[x<nbits>] (nbits defaults to 8). */
static int parse_pq(const char *rest, size_t len, parsed_tok *out) {
    const char *x = memchr(rest, 'x', len);
    size_t mlen = x ? (size_t)(x - rest) : len;
    /* fast scan: <M>x4fs[r][_<bbs>] */
    const char *fs = x ? strstr(x, "fs") : NULL;
    out->n3 = 0;
    out->n4 = 32;
    if (fs && fs < rest + len) {
        const char *e = rest + len, *t = fs + 2;
        out->n3 = 1;
        if (t < e && *t == 'r') out->n3 |= 2, t++;
        if (t < e) {
            parsed_tok bb = {0};
            if (*t != '_' || e - t < 2) return -1;
            for (const char *c = t + 1; c < e; c++)
                if (*c < '0' || *c > '9') return -1;
            if (parse_count(t + 1, (size_t)(e - t - 1), &bb)) return -1;
            out->n4 = bb.n;
        }
        len = (size_t)(fs - rest);
    }
    parsed_tok m = {0}, b = {0};
    for (size_t i = 0; i < mlen; i++)
        if (rest[i] < '0' || rest[i] > '9') return -1;
    if (parse_count(rest, mlen, &m) || m.n < 1) return -1;
    b.n = 8;
    if (x) {
        size_t blen = len - mlen - 1;
        for (size_t i = 0; i < blen; i++)
            if (x[1 + i] < '0' || x[1 + i] > '9') return -1;
        if (parse_count(x + 1, blen, &b)) return -1;
    }
    out->n = m.n;
    out->n2 = b.n;
    return 0;
}

/* The scalar quantizer types, by FAISS's factory spelling. */
static int parse_sq(const char *rest, size_t len, parsed_tok *out) {
    static const struct { const char *s; int qt; } qts[] = {
        {"4", VDX_SQ_4BIT},   {"6", VDX_SQ_6BIT},     {"8", VDX_SQ_8BIT},
        {"fp16", VDX_SQ_FP16}, {"bf16", VDX_SQ_BF16},
    };
    for (size_t i = 0; i < sizeof qts / sizeof qts[0]; i++)
        if (strlen(qts[i].s) == len && !memcmp(rest, qts[i].s, len)) {
            out->n = qts[i].qt;
            return 0;
        }
    return -1;
}

/* LSH[<nbits>][r][t] (FAISS: nbits defaults to d, r = rotate_data,
 * t = train_thresholds): n = nbits or 0, n2 = r | t << 1. */
static int parse_lsh(const char *rest, size_t len, parsed_tok *out) {
    size_t i = 0;
    while (i < len && rest[i] >= '0' && rest[i] <= '9') i++;
    out->n = 0;
    if (i && (parse_count(rest, i, out) || out->n < 1)) return -1;
    out->n2 = 0;
    if (i < len && rest[i] == 'r') out->n2 |= 1, i++;
    if (i < len && rest[i] == 't') out->n2 |= 2, i++;
    return i == len ? 0 : -1;
}

/* Longer prefixes first where one is a prefix of another (IDMap2/IDMap). */
static const tok_def tokens[] = {
    {"IDMap2", ST_WRAPPER, K_IDMAP2, NULL},
    {"IDMap", ST_WRAPPER, K_IDMAP, NULL},
    {"IVF", ST_COARSE, K_IVF, parse_count},
    {"Flat", ST_ENCODING, K_FLAT, NULL},
    {"PQ", ST_ENCODING, K_PQ, parse_pq},
    {"SQ", ST_ENCODING, K_SQ, parse_sq},
    {"LSH", ST_ENCODING, K_LSH, parse_lsh},
};

#define MAX_TOKENS 16

typedef struct tok_span {
    const char *s;
    size_t len;
    size_t pos;
} tok_span;

/* Quotes a span into buf for messages. */
static const char *quote(char *buf, size_t cap, const tok_span *t) {
    size_t n = t->len < cap - 1 ? t->len : cap - 1;
    memcpy(buf, t->s, n);
    buf[n] = 0;
    return buf;
}

static vdx_status bad_token(const tok_span *t, const char *desc,
                            const char *why) {
    char b[64];
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                     "index_factory: %s '%s' at position %zu in '%s'", why,
                     quote(b, sizeof b, t), t->pos, desc);
}

/* Builds the encoding, inside an IVF when the description has one. */
static vdx_status build_core(int64_t d, vdx_metric metric, const parsed_tok *enc,
                             const parsed_tok *ivf, vdx_index **out) {
    vdx_status st;
    if (!ivf) {
        switch (enc->kind) {
        case K_FLAT: return vdx_index_flat_new(d, metric, out);
        case K_PQ:
            if (enc->n3 & 2)
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "index_factory: 'fsr' (by_residual) needs an "
                                 "IVF token");
            if (enc->n3)
                return vdx_index_pq_fastscan_new(d, enc->n, (int)enc->n2,
                                                 metric, enc->n4, out);
            return vdx_index_pq_new(d, enc->n, (int)enc->n2, metric, out);
        case K_SQ: return vdx_index_sq_new(d, (int)enc->n, metric, out);
        case K_LSH:
            if (metric != VDX_METRIC_L2)
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "index_factory: LSH needs the L2 metric");
            if (enc->n > VDX_MAX_DIM)
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "index_factory: LSH nbits=%lld is too large",
                                 (long long)enc->n);
            return vdx_index_lsh_new(d, enc->n ? (int)enc->n : (int)d,
                                     (int)(enc->n2 & 1), (int)(enc->n2 >> 1),
                                     out);
        default: return vdx_raise(VDX_ERR_INTERNAL, "index_factory: bad encoding");
        }
    }
    if (enc->kind == K_LSH)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: LSH cannot follow an IVF token");
    vdx_index *q = NULL;
    if ((st = vdx_index_flat_new(d, metric, &q))) return st;
    switch (enc->kind) {
    case K_FLAT: st = vdx_index_ivf_flat_new(q, d, ivf->n, metric, out); break;
    case K_PQ:
        if (enc->n3) {
            st = vdx_index_ivfpq_fastscan_new(q, d, ivf->n, enc->n,
                                              (int)enc->n2, metric, enc->n4,
                                              out);
            if (!st && (enc->n3 & 2))
                st = vdx_index_fastscan_set_by_residual(*out, 1);
            if (st && *out) { /* the quantizer went with the index */
                vdx_index_free(*out);
                *out = NULL;
                return st;
            }
            break;
        }
        st = vdx_index_ivfpq_new(q, d, ivf->n, enc->n, (int)enc->n2, metric, out);
        break;
    case K_SQ:
        st = vdx_index_ivf_sq_new(q, d, ivf->n, (int)enc->n, metric, 1, out);
        break;
    default: st = vdx_raise(VDX_ERR_INTERNAL, "index_factory: bad encoding");
    }
    if (st) vdx_index_free(q); /* ownership passes on success only */
    return st;
}

static vdx_status build(int64_t d, vdx_metric metric, const parsed_tok *p,
                        int np, vdx_index **out) {
    vdx_status st;
    vdx_index *ix = NULL;
    int i = np - 1;
    const parsed_tok *ivf = np >= 2 && p[np - 2].kind == K_IVF ? &p[np - 2] : NULL;
    if ((st = build_core(d, metric, &p[i], ivf, &ix))) return st;
    /* then outwards: the wrappers */
    for (i -= ivf ? 2 : 1; i >= 0; i--) {
        vdx_index *outer = NULL;
        switch (p[i].kind) {
        case K_IDMAP:
            st = vdx_index_idmap_new(ix, &outer);
            break;
        case K_IDMAP2:
            st = vdx_index_idmap2_new(ix, &outer);
            break;
        default:
            st = vdx_raise(VDX_ERR_INTERNAL, "index_factory: bad stage");
        }
        if (st) {
            vdx_index_free(ix);
            return st;
        }
        ix = outer;
    }
    *out = ix;
    return VDX_OK;
}

vdx_status vdx_index_factory(int64_t d, const char *description,
                             vdx_metric metric, vdx_index **out) {
    vdx_clear_error();
    if (!out)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "index_factory: out is NULL");
    *out = NULL;
    if (!description)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: description is NULL");
    if (d <= 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: expected d > 0, got %lld",
                         (long long)d);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: unknown metric %d", (int)metric);
    if (strlen(description) > 1000)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: description longer than 1000 chars");

    /* refinement suffix: the rest is built recursively, then wrapped */
    size_t dl = strlen(description);
    const char *rf = NULL, *inner = NULL;
    if (dl >= 6 && !strcmp(description + dl - 6, ",RFlat")) {
        rf = description + dl - 6;
    } else if (dl >= 1 && description[dl - 1] == ')') {
        const char *c = strstr(description, ",Refine(");
        if (c) {
            rf = c;
            inner = c + 8;
        }
    }
    if (rf) {
        char pre[1001], in[1001];
        size_t pl = (size_t)(rf - description);
        memcpy(pre, description, pl);
        pre[pl] = 0;
        vdx_index *base = NULL, *ref = NULL;
        vdx_status st = vdx_index_factory(d, pre, metric, &base);
        if (st) return st;
        if (!inner) {
            st = vdx_index_refine_flat_new(base, out);
        } else {
            size_t il = dl - 1 - (size_t)(inner - description);
            memcpy(in, inner, il);
            in[il] = 0;
            if (!(st = vdx_index_factory(d, in, metric, &ref)))
                st = vdx_index_refine_new(base, ref, out);
        }
        if (st) {
            vdx_index_free(base);
            vdx_index_free(ref);
        }
        return st;
    }

    /* split on commas, keeping each token's position */
    tok_span spans[MAX_TOKENS];
    int nt = 0;
    const char *s = description;
    for (;;) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        if (nt == MAX_TOKENS)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "index_factory: more than %d tokens in '%s'",
                             MAX_TOKENS, description);
        spans[nt].s = s;
        spans[nt].len = len;
        spans[nt].pos = (size_t)(s - description);
        nt++;
        if (!c) break;
        s = c + 1;
    }

    parsed_tok p[MAX_TOKENS];
    int last_stage = -1;
    for (int i = 0; i < nt; i++) {
        const tok_span *t = &spans[i];
        if (t->len == 0)
            return bad_token(t, description, "empty token");
        const tok_def *def = NULL;
        for (size_t j = 0; j < sizeof tokens / sizeof tokens[0]; j++) {
            size_t pl = strlen(tokens[j].prefix);
            if (t->len < pl || memcmp(t->s, tokens[j].prefix, pl)) continue;
            if (tokens[j].parse_rest
                    ? tokens[j].parse_rest(t->s + pl, t->len - pl, &p[i]) == 0
                    : t->len == pl) {
                def = &tokens[j];
                break;
            }
        }
        if (!def) return bad_token(t, description, "unknown token");
        p[i].kind = def->kind;
        if ((int)def->stage < last_stage ||
            (def->stage != ST_WRAPPER && (int)def->stage == last_stage))
            return bad_token(t, description, "misplaced token");
        if (def->stage == ST_WRAPPER && last_stage == ST_WRAPPER)
            return bad_token(t, description, "repeated wrapper");
        if (def->kind == K_IVF && p[i].n < 1)
            return bad_token(t, description, "nlist must be >= 1 in token");
        last_stage = (int)def->stage;
        if (def->stage == ST_ENCODING && i != nt - 1)
            return bad_token(&spans[i + 1], description,
                             "unexpected token after the encoding:");
    }
    if (last_stage != ST_ENCODING) {
        char b[64];
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: '%s' ends with '%s' at position %zu; "
                         "expected an encoding such as 'Flat' last",
                         description, quote(b, sizeof b, &spans[nt - 1]),
                         spans[nt - 1].pos);
    }
    return build(d, metric, p, nt, out);
}
