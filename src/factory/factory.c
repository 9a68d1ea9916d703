/*
 * factory.c — vdx_index_factory: builds an index from a FAISS factory string
 * ("IVF1024,Flat", "IDMap2,Flat", ...).
 *
 * The grammar follows FAISS's index_factory for the kinds vecdex has:
 *
 *     description := { prefix "," } [ coarse "," ] encoding
 *     prefix      := wrapper | transform
 *     wrapper     := "IDMap" | "IDMap2"   (also as a suffix, ",IDMap" /
 *                                          ",IDMap2", as FAISS accepts)
 *     transform   := "PCA" ["W"] ["R"] <n> | "OPQ" <M> [ "_" <d> ]
 *                  | "RR" [ <n> ] | "L2norm"
 *     coarse      := "IVF" <n> [ "k" | "M" ] [ "_HNSW" [<M>] | "(" <description> ")" ]
 *                                    (k = *1024, M = *1024^2; _HNSW: an
 *                                    IndexHNSWFlat coarse quantizer)
 *                  | "Residual" <n>  (Index2Layer with n lists; the
 *                                    encoding must be PQ; L2 only)
 *                  | "HNSW" [<M>]    (graph over the encoding's storage,
 *                                    M = 32 when omitted:
 *                                    Flat, SQ or PQ; alone it means Flat;
 *                                    "HNSW32_PQ16" = "HNSW32,PQ16")
 *     encoding    := "Flat" | "PQ" <M> [ "x" <nbits> ] [ "np" ]
 *                  | "PQ" <M> "x4fs" [ "r" ] [ "_" <bbs> ]  (fast scan)
 *                  | "SQ4" | "SQ6" | "SQ8" | "SQfp16" | "SQbf16"
 *                  | "LSH" [ <nbits> ] [ "r" ] [ "t" ]   (not after IVF)
 *                  | <n> "+PQ" <m>   (after HNSW only: IndexHNSW2Level,
 *                                    "HNSW32_256+PQ8"; L2 only)
 *                  | "RQ" <M>x<b> { "_" <M>x<b> } [ norm ]   ("RQ1x16_6x8")
 *                  | "LSQ" <M>x<b> [ norm ]
 *                  | ("PRQ" | "PLSQ") <nsplits>x<Msub>x<b> [ norm ]
 *                  | ("RCQ" | "LSCQ") <M>x<b> ...   (additive coarse
 *                                    quantizers: alone, or as
 *                                    "IVF4096(RCQ2x6),Flat")
 *     norm        := "_Nfloat" | "_Nnone" | "_Nqint8" | "_Nqint4"
 *                  | "_Ncqint8" | "_Ncqint4" | "_Nlsq2x4" | "_Nrq2x4"
 *                    (the additive quantizers' search type; none: decompress
 *                    for L2, the table without norms for inner product)
 *
 * FAISS's MultiIndexQuantizer forms ("Residual<M>x<b>", "HNSW<M>_2x<b>+PQ<m>")
 * parse but are refused: vecdex has no MultiIndexQuantizer.
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
 *
 * Transforms (FAISS's VectorTransform prefixes): PCA<n> (PCAMatrix to n
 * dimensions; W whitens with eigen_power -0.5, R adds a random rotation),
 * OPQ<M>[_<d>] (OPQMatrix for M sub-quantizers, output d, default the
 * input's), RR[<n>] (RandomRotationMatrix, default n = input d), L2norm
 * (NormalizationTransform).  A run of transforms becomes one
 * IndexPreTransform whose sub-index is built from the rest of the
 * description in the chain's output dimension; wrappers and transforms may
 * alternate ("IDMap,PCA32,Flat" is an IDMap over the IndexPreTransform,
 * "PCA32,IDMap,Flat" the reverse), as in FAISS.
 */
#include <stdio.h>
#include <string.h>

#include "../common/common.h"
#include "../quant/transform.h"

/* The stages, in the order they must appear. */
enum stage { ST_WRAPPER = 0, ST_COARSE = 1, ST_ENCODING = 2, ST_TRANSFORM = 3 };

enum kind { K_IDMAP, K_IDMAP2, K_IVF, K_FLAT, K_PQ, K_SQ, K_LSH, K_HNSW,
            K_PCA, K_OPQ, K_RR, K_L2NORM, K_HR, K_RESID, K_2LEVEL, K_AQ, K_NSG };

/* What the parser extracted from one token. */
typedef struct parsed_tok {
    enum kind kind;
    int64_t n;  /* IVF: nlist; PQ: M; SQ: qtype */
    int64_t n2; /* PQ: nbits; IVF: M of an HNSW quantizer (0: flat);
                   PCA: 1 whiten | 2 rotate; OPQ: output d */
    int64_t n3; /* PQ: 1 = fast scan ("x4fs"), | 2 = by_residual ("fsr") */
    int64_t n4; /* PQ fast scan: bbs ("_<bbs>", default 32) */
    int64_t din, dout; /* transforms: their dimensions */
    /* IVF<n>(<description>): the coarse quantizer's own description */
    const char *sub;
    size_t sub_len;
    /* additive quantizers (K_AQ) */
    int aq_kind;      /* VDX_AQ_RQ .. PLSQ */
    int aq_coarse;    /* RCQ / LSCQ: a coarse quantizer index */
    int aq_st;        /* search type, -1 = the metric's default */
    int aq_fs;        /* 1 = fast scan, | 2 = by_residual ("fsr") */
    int64_t aq_bbs;   /* fast scan block size */
    int64_t aq_ns, aq_msub; /* product kinds */
    int aq_M;
    int aq_nbits[64]; /* RQ may mix widths: "RQ1x16_6x8" */
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
    if (i != len || v > (INT64_C(1) << 40) / mul) return -1; /* no overflow */
    out->n = v * mul;
    return 0;
}

/* HNSW<M>: the graph's M (2..512); "HNSW" alone is M = 32, FAISS's
 * default. */
#define VDX_FACTORY_HNSW_M 32
static int parse_hnsw(const char *rest, size_t len, parsed_tok *out) {
    if (len == 0) {
        out->n = VDX_FACTORY_HNSW_M;
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if (rest[i] < '0' || rest[i] > '9') return -1;
    if (parse_count(rest, len, out) || out->n < 2 || out->n > 512) return -1;
    return 0;
}

/* NSG<R>: the graph's out-degree (1..4096); "NSG" alone is R = 32,
 * FAISS's default.  Same forms as HNSW: "NSG32,Flat", "NSG32_PQ4np". */
static int parse_nsg(const char *rest, size_t len, parsed_tok *out) {
    if (len == 0) {
        out->n = 32;
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if (rest[i] < '0' || rest[i] > '9') return -1;
    if (parse_count(rest, len, out) || out->n < 1 || out->n > 4096) return -1;
    return 0;
}

/* IVF<n>[k|M][_HNSW<M>]: nlist, and an HNSW coarse quantizer. */
#define VDX_FACTORY_MAX_NLIST ((int64_t)1 << 24)
static int parse_ivf(const char *rest, size_t len, parsed_tok *out) {
    out->sub = NULL;
    out->sub_len = 0;
    const char *par = memchr(rest, '(', len);
    if (par) { /* IVF<n>(<description of the coarse quantizer>) */
        if (rest[len - 1] != ')' || par + 1 >= rest + len - 1) return -1;
        out->sub = par + 1;
        out->sub_len = (size_t)(rest + len - 1 - (par + 1));
        if (parse_count(rest, (size_t)(par - rest), out)) return -1;
        out->n2 = 0;
        return 0;
    }
    const char *u = memchr(rest, '_', len);
    size_t nl = u ? (size_t)(u - rest) : len;
    if (parse_count(rest, nl, out)) return -1;
    out->n2 = 0;
    if (!u) return 0;
    parsed_tok m = {0};
    size_t ul = len - nl - 1;
    if (ul < 4 || memcmp(u + 1, "HNSW", 4) || parse_hnsw(u + 5, ul - 4, &m))
        return -1;
    out->n2 = m.n;
    return 0;
}

/* <M>[x<nbits>] (nbits defaults to 8). */
static int parse_pq(const char *rest, size_t len, parsed_tok *out) {
    /* FAISS's "np" suffix turns polysemous training off; vecdex has none */
    if (len > 2 && !memcmp(rest + len - 2, "np", 2)) len -= 2;
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
        {"tqmse1", VDX_SQ_1BIT_TQMSE}, {"tqmse2", VDX_SQ_2BIT_TQMSE},
        {"tqmse3", VDX_SQ_3BIT_TQMSE}, {"tqmse4", VDX_SQ_4BIT_TQMSE},
        {"tqmse8", VDX_SQ_8BIT_TQMSE},
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

/* [W][R]<n> after "PCA". */
static int parse_pca(const char *rest, size_t len, parsed_tok *out) {
    int64_t flags = 0;
    size_t i = 0;
    if (i < len && rest[i] == 'W') flags |= 1, i++;
    if (i < len && rest[i] == 'R') flags |= 2, i++;
    for (size_t j = i; j < len; j++)
        if (rest[j] < '0' || rest[j] > '9') return -1;
    if (parse_count(rest + i, len - i, out) || out->n < 1) return -1;
    out->n2 = flags;
    return 0;
}

/* <M>[_<d>] after "OPQ" (n2 = 0: the input dimension). */
static int parse_opq(const char *rest, size_t len, parsed_tok *out) {
    const char *u = memchr(rest, '_', len);
    size_t mlen = u ? (size_t)(u - rest) : len;
    parsed_tok m = {0}, o = {0};
    for (size_t i = 0; i < len; i++)
        if ((rest[i] < '0' || rest[i] > '9') && rest + i != u) return -1;
    if (parse_count(rest, mlen, &m) || m.n < 1) return -1;
    if (u && (parse_count(u + 1, len - mlen - 1, &o) || o.n < 1)) return -1;
    out->n = m.n;
    out->n2 = u ? o.n : 0;
    return 0;
}

/* [<n>] after "RR" (0: the input dimension). */
static int parse_rr(const char *rest, size_t len, parsed_tok *out) {
    out->n = 0;
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++)
        if (rest[i] < '0' || rest[i] > '9') return -1;
    return parse_count(rest, len, out) || out->n < 1 ? -1 : 0;
}

/* "Residual" <n> (n = nlist) or <M>x<b> (a MultiIndexQuantizer: n2 = 1). */
static int parse_resid(const char *rest, size_t len, parsed_tok *out) {
    const char *x = memchr(rest, 'x', len);
    size_t nl = x ? (size_t)(x - rest) : len;
    for (size_t i = 0; i < len; i++)
        if ((rest[i] < '0' || rest[i] > '9') && rest + i != x) return -1;
    parsed_tok b = {0};
    if (parse_count(rest, nl, out) || out->n < 1) return -1;
    if (x && parse_count(x + 1, len - nl - 1, &b)) return -1;
    out->n2 = x ? 1 : 0;
    return 0;
}

/* <n>+PQ<m> (n lists, m sub-quantizers) or 2x<b>+PQ<m> (MultiIndex: n3 =
 * 1); the token has no prefix of its own. */
static int parse_2level(const char *rest, size_t len, parsed_tok *out) {
    const char *pl = NULL;
    for (size_t i = 0; i + 3 <= len && !pl; i++)
        if (!memcmp(rest + i, "+PQ", 3)) pl = rest + i;
    if (!pl || pl == rest) return -1;
    size_t hl = (size_t)(pl - rest), ml = len - hl - 3;
    parsed_tok a = {0}, m = {0};
    out->n3 = 0;
    if (hl > 2 && rest[0] == '2' && rest[1] == 'x') {
        out->n3 = 1;
        rest += 2;
        hl -= 2;
    }
    for (size_t i = 0; i < hl; i++)
        if (rest[i] < '0' || rest[i] > '9') return -1;
    for (size_t i = 0; i < ml; i++)
        if (pl[3 + i] < '0' || pl[3 + i] > '9') return -1;
    if (parse_count(rest, hl, &a) || a.n < 1 || parse_count(pl + 3, ml, &m) ||
        m.n < 1)
        return -1;
    out->n = a.n;
    out->n2 = m.n;
    return 0;
}

/* The search types of the "_N<name>" suffix of additive quantizers. */
static int aq_norm_suffix(const char *rest, size_t *len) {
    static const struct { const char *s; int st; } ns[] = {
        {"_Nfloat", VDX_AQ_ST_NORM_FLOAT},   {"_Nnone", VDX_AQ_ST_LUT_NONORM},
        {"_Nqint8", VDX_AQ_ST_NORM_QINT8},   {"_Nqint4", VDX_AQ_ST_NORM_QINT4},
        {"_Ncqint8", VDX_AQ_ST_NORM_CQINT8}, {"_Ncqint4", VDX_AQ_ST_NORM_CQINT4},
        {"_Nlsq2x4", VDX_AQ_ST_NORM_LSQ2X4}, {"_Nrq2x4", VDX_AQ_ST_NORM_RQ2X4},
    };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t l = strlen(ns[i].s);
        if (*len >= l && !memcmp(rest + *len - l, ns[i].s, l)) {
            *len -= l;
            return ns[i].st;
        }
    }
    return -1;
}

/* <digits>, a count in 1..max; advances *i */
static int aq_num(const char *s, size_t len, size_t *i, int64_t max,
                  int64_t *out) {
    size_t j = *i;
    int64_t v = 0;
    while (j < len && s[j] >= '0' && s[j] <= '9') {
        v = v * 10 + (s[j] - '0');
        if (v > max) return -1;
        j++;
    }
    if (j == *i || v < 1) return -1;
    *i = j;
    *out = v;
    return 0;
}

/* After RQ / LSQ / PRQ / PLSQ / RCQ / LSCQ (kind in out->aq_kind):
 *   RQ, RCQ     <M>x<b>(_<M>x<b>)*  |  <M>x4fs[r][_<bbs>]
 *   LSQ, LSCQ   <M>x<b>             |  <M>x4fs[r][_<bbs>]
 *   PRQ, PLSQ   <n>x<M>x<b>         |  <n>x<M>x4fs[r][_<bbs>]
 * each followed by an optional _N<norm> (FAISS's grammar). */
static int parse_aq_rest(const char *rest, size_t len, parsed_tok *out) {
    out->aq_st = aq_norm_suffix(rest, &len);
    out->aq_fs = 0;
    out->aq_bbs = 32;
    out->aq_ns = 1;
    out->aq_M = 0;
    const int prod = out->aq_kind == VDX_AQ_PRQ || out->aq_kind == VDX_AQ_PLSQ;
    const int multi = out->aq_kind == VDX_AQ_RQ && !prod;
    size_t i = 0;
    int64_t a, b;
    if (prod) {
        if (aq_num(rest, len, &i, 4096, &out->aq_ns) || i >= len || rest[i++] != 'x')
            return -1;
    }
    for (;;) {
        if (aq_num(rest, len, &i, 4096, &a) || i >= len || rest[i++] != 'x') return -1;
        if (i + 3 <= len && !memcmp(rest + i, "4fs", 3)) { /* fast scan */
            if (out->aq_M) return -1;
            i += 3;
            out->aq_fs = 1;
            if (i < len && rest[i] == 'r') out->aq_fs |= 2, i++;
            if (i < len) {
                if (rest[i++] != '_' || aq_num(rest, len, &i, 1 << 20, &out->aq_bbs))
                    return -1;
            }
            if (i != len || a > 64) return -1;
            out->aq_M = (int)a;
            for (int m = 0; m < out->aq_M; m++) out->aq_nbits[m] = 4;
            break;
        }
        if (aq_num(rest, len, &i, 64, &b)) return -1;
        if (out->aq_M + a > 64) return -1;
        for (int64_t m = 0; m < a; m++) out->aq_nbits[out->aq_M++] = (int)b;
        if (i == len) break;
        if (!multi || rest[i++] != '_') return -1;
    }
    out->aq_msub = out->aq_M;
    return 0;
}

static int parse_rq(const char *r, size_t l, parsed_tok *o) {
    o->aq_kind = VDX_AQ_RQ;
    o->aq_coarse = 0;
    return parse_aq_rest(r, l, o);
}
static int parse_lsq(const char *r, size_t l, parsed_tok *o) {
    o->aq_kind = VDX_AQ_LSQ;
    o->aq_coarse = 0;
    return parse_aq_rest(r, l, o);
}
static int parse_prq(const char *r, size_t l, parsed_tok *o) {
    o->aq_kind = VDX_AQ_PRQ;
    o->aq_coarse = 0;
    return parse_aq_rest(r, l, o);
}
static int parse_plsq(const char *r, size_t l, parsed_tok *o) {
    o->aq_kind = VDX_AQ_PLSQ;
    o->aq_coarse = 0;
    return parse_aq_rest(r, l, o);
}
static int parse_rcq(const char *r, size_t l, parsed_tok *o) {
    o->aq_kind = VDX_AQ_RQ;
    o->aq_coarse = 1;
    return parse_aq_rest(r, l, o) || o->aq_fs ? -1 : 0;
}
static int parse_lscq(const char *r, size_t l, parsed_tok *o) {
    o->aq_kind = VDX_AQ_LSQ;
    o->aq_coarse = 1;
    return parse_aq_rest(r, l, o) || o->aq_fs ? -1 : 0;
}

/* Longer prefixes first where one is a prefix of another (IDMap2/IDMap). */
static const tok_def tokens[] = {
    {"IDMap2", ST_WRAPPER, K_IDMAP2, NULL},
    {"IDMap", ST_WRAPPER, K_IDMAP, NULL},
    {"IVF", ST_COARSE, K_IVF, parse_ivf},
    {"HNSW", ST_COARSE, K_HNSW, parse_hnsw},
    {"NSG", ST_COARSE, K_NSG, parse_nsg},
    {"Flat", ST_ENCODING, K_FLAT, NULL},
    {"PQ", ST_ENCODING, K_PQ, parse_pq},
    {"SQ", ST_ENCODING, K_SQ, parse_sq},
    {"LSH", ST_ENCODING, K_LSH, parse_lsh},
    {"PCA", ST_TRANSFORM, K_PCA, parse_pca},
    {"OPQ", ST_TRANSFORM, K_OPQ, parse_opq},
    {"RR", ST_TRANSFORM, K_RR, parse_rr},
    {"L2norm", ST_TRANSFORM, K_L2NORM, NULL},
    {"HR", ST_TRANSFORM, K_HR, NULL},
    {"Residual", ST_COARSE, K_RESID, parse_resid},
    {"PRQ", ST_ENCODING, K_AQ, parse_prq},
    {"PLSQ", ST_ENCODING, K_AQ, parse_plsq},
    {"RQ", ST_ENCODING, K_AQ, parse_rq},
    {"LSQ", ST_ENCODING, K_AQ, parse_lsq},
    {"RCQ", ST_ENCODING, K_AQ, parse_rcq},
    {"LSCQ", ST_ENCODING, K_AQ, parse_lscq},
    {"", ST_ENCODING, K_2LEVEL, parse_2level}, /* no prefix: keep last */
};

/* Ordering rank of a stage: wrappers and transforms share the prefix. */
static int rank_of(enum stage s) { return s == ST_TRANSFORM ? 0 : (int)s; }

static vdx_status make_vt(const parsed_tok *t, vdx_vt **out) {
    switch (t->kind) {
    case K_PCA:
        return vdx_vt_pca_new(t->din, t->dout, (t->n2 & 1) ? -0.5f : 0.0f,
                              (int)(t->n2 >> 1), out);
    case K_OPQ: return vdx_vt_opq_new(t->din, t->n, t->dout, out);
    case K_RR: return vdx_vt_random_rotation_new(t->din, t->dout, out);
    case K_L2NORM: return vdx_vt_normalization_new(t->din, 2.0f, out);
    case K_HR: return vdx_vt_hadamard_new(t->din, 12345, out);
    default: return vdx_raise(VDX_ERR_INTERNAL, "index_factory: bad transform");
    }
}

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

/* The additive quantizer of a K_AQ token. */
static vdx_status make_aq(int64_t d, vdx_metric metric, const parsed_tok *t,
                          vdx_aq **out) {
    int lsq = t->aq_kind == VDX_AQ_LSQ || t->aq_kind == VDX_AQ_PLSQ;
    int st = t->aq_st;
    if (st < 0) /* FAISS's defaults; fast scan needs its 2 x 4-bit norms */
        st = t->aq_fs && metric == VDX_METRIC_L2
                 ? (lsq ? VDX_AQ_ST_NORM_LSQ2X4 : VDX_AQ_ST_NORM_RQ2X4)
             : metric == VDX_METRIC_L2 ? VDX_AQ_ST_DECOMPRESS
                                       : VDX_AQ_ST_LUT_NONORM;
    switch (t->aq_kind) {
    case VDX_AQ_RQ: return vdx_rq_new(d, t->aq_M, t->aq_nbits, st, out);
    case VDX_AQ_LSQ: return vdx_lsq_new(d, t->aq_M, t->aq_nbits[0], st, out);
    default:
        return vdx_product_aq_new(t->aq_kind, d, t->aq_ns, t->aq_msub,
                                  t->aq_nbits[0], st, out);
    }
}

/* The coarse quantizer of an IVF token: its parenthesised description,
 * an HNSW graph or a flat index. */
static vdx_status make_coarse(int64_t d, vdx_metric metric,
                              const parsed_tok *ivf, vdx_index **q) {
    if (ivf->sub) {
        char buf[1001];
        size_t l = ivf->sub_len < 1000 ? ivf->sub_len : 1000;
        memcpy(buf, ivf->sub, l);
        buf[l] = 0;
        return vdx_index_factory(d, buf, metric, q);
    }
    if (ivf->n2) return vdx_index_hnsw_flat_new(d, (int)ivf->n2, metric, q);
    return vdx_index_flat_new(d, metric, q);
}

/* Additive-quantizer encodings, alone or inside an IVF. */
static vdx_status build_aq(int64_t d, vdx_metric metric, const parsed_tok *enc,
                           const parsed_tok *ivf, vdx_index **out) {
    if (ivf && ivf->kind != K_IVF)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: an additive quantizer can follow an "
                         "IVF token only");
    if (ivf && enc->aq_coarse)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: RCQ / LSCQ is a coarse quantizer: "
                         "use it as IVF<n>(RCQ...)");
    if (!ivf && (enc->aq_fs & 2))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: 'fsr' (by_residual) needs an IVF token");
    vdx_aq *aq = NULL;
    vdx_status st = make_aq(d, metric, enc, &aq);
    if (st) return st;
    if (enc->aq_fs && !ivf) {
        st = vdx_index_aq_fastscan_new(aq, metric, enc->aq_bbs, out);
        if (st) vdx_aq_free(aq);
        return st;
    }
    if (!ivf) {
        st = enc->aq_coarse ? vdx_index_additive_coarse_new(aq, metric, out)
                            : vdx_index_aq_new(aq, metric, out);
        if (st) vdx_aq_free(aq);
        return st;
    }
    vdx_index *q = NULL;
    if ((st = make_coarse(d, metric, ivf, &q))) {
        vdx_aq_free(aq);
        return st;
    }
    if (enc->aq_fs) {
        /* as FAISS's factory: by_residual only with "fsr" (the
         * constructor's default is on) */
        st = vdx_index_ivf_aq_fastscan_new(q, ivf->n, aq, metric, enc->aq_bbs, out);
        if (!st) st = vdx_index_ivf_aq_set_by_residual(*out, (enc->aq_fs & 2) != 0);
        if (st && *out) {
            vdx_index_free(*out);
            *out = NULL;
            return st;
        }
    } else {
        st = vdx_index_ivf_aq_new(q, ivf->n, aq, metric, out);
    }
    if (st) {
        vdx_aq_free(aq);
        vdx_index_free(q);
    }
    return st;
}

/* Builds the encoding, inside an IVF when the description has one. */
static vdx_status build_core(int64_t d, vdx_metric metric, const parsed_tok *enc,
                             const parsed_tok *ivf, vdx_index **out) {
    vdx_status st;
    if (enc->kind == K_AQ) return build_aq(d, metric, enc, ivf, out);
    if (enc->kind == K_2LEVEL || (ivf && ivf->kind == K_RESID)) {
        /* the two-level kinds: a flat L2 quantizer, as FAISS builds them */
        int hnsw = enc->kind == K_2LEVEL;
        if (hnsw ? !ivf || ivf->kind != K_HNSW : enc->kind != K_PQ || enc->n3)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             hnsw ? "index_factory: '<n>+PQ<m>' must follow "
                                    "an HNSW token"
                                  : "index_factory: Residual takes a PQ<M> "
                                    "encoding");
        if (metric != VDX_METRIC_L2)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "index_factory: %s is implemented for L2 only",
                             hnsw ? "IndexHNSW2Level" : "Residual");
        if (hnsw ? enc->n3 : ivf->n2)
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "index_factory: a MultiIndexQuantizer "
                             "('Residual<M>x<b>', '2x<b>+PQ<m>') is not "
                             "supported");
        vdx_index *q = NULL;
        if ((st = vdx_index_flat_new(d, VDX_METRIC_L2, &q))) return st;
        st = hnsw ? vdx_index_hnsw_2level_new(q, enc->n, enc->n2, (int)ivf->n,
                                               out)
                  : vdx_index_2layer_new(q, ivf->n, enc->n, (int)enc->n2,
                                         VDX_METRIC_L2, out);
        if (st) vdx_index_free(q); /* ownership passes on success only */
        return st;
    }
    if (ivf && ivf->kind == K_NSG) {
        int R = (int)ivf->n;
        switch (enc->kind) {
        case K_FLAT: return vdx_index_nsg_flat_new(d, R, metric, out);
        case K_SQ: return vdx_index_nsg_sq_new(d, (int)enc->n, R, metric, out);
        case K_PQ:
            if (!enc->n3)
                return vdx_index_nsg_pq_new(d, enc->n, R, (int)enc->n2, metric,
                                            out);
            /* fall through */
        default:
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "index_factory: NSG takes Flat, SQ or PQ storage");
        }
    }
    if (ivf && ivf->kind == K_HNSW) {
        int M = (int)ivf->n;
        switch (enc->kind) {
        case K_FLAT: return vdx_index_hnsw_flat_new(d, M, metric, out);
        case K_SQ: return vdx_index_hnsw_sq_new(d, (int)enc->n, M, metric, out);
        case K_PQ:
            if (enc->n3)
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "index_factory: HNSW storage cannot be a "
                                 "fast-scan PQ");
            return vdx_index_hnsw_pq_new(d, enc->n, M, (int)enc->n2, metric, out);
        default:
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "index_factory: HNSW takes Flat, SQ or PQ storage");
        }
    }
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
    if ((st = make_coarse(d, metric, ivf, &q))) return st;
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
    /* FAISS's factory trains IVF centroids on the sphere for inner product */
    if (!st && metric == VDX_METRIC_INNER_PRODUCT && vdx_index_ivf_cp(*out))
        vdx_index_ivf_cp(*out)->spherical = 1;
    return st;
}

static int is_transform(enum kind k) {
    return k == K_PCA || k == K_OPQ || k == K_RR || k == K_L2NORM || k == K_HR;
}

/* Wraps ix in one IndexPreTransform over the transforms p[j..i]; frees ix
 * on failure. */
static vdx_status wrap_transforms(const parsed_tok *p, int j, int i,
                                  vdx_index *ix, vdx_index **out) {
    vdx_vt *vt = NULL;
    vdx_index *pt = NULL;
    vdx_status st = make_vt(&p[i], &vt);
    if (st) { /* ix is ours to free on every failure, as below */
        vdx_index_free(ix);
        return st;
    }
    if ((st = vdx_index_pretransform_new(vt, ix, &pt))) {
        vdx_vt_free(vt);
        vdx_index_free(ix);
        return st;
    }
    for (int t = i - 1; t >= j; t--) {
        if ((st = make_vt(&p[t], &vt)) ||
            (st = vdx_index_pretransform_prepend(pt, vt))) {
            vdx_vt_free(vt);
            vdx_index_free(pt); /* and ix with it */
            return st;
        }
    }
    *out = pt;
    return VDX_OK;
}

static vdx_status build(int64_t d, vdx_metric metric, const parsed_tok *p,
                        int np, vdx_index **out) {
    vdx_status st;
    vdx_index *ix = NULL;
    int i = np - 1;
    const parsed_tok *ivf = np >= 2 && (p[np - 2].kind == K_IVF ||
                                        p[np - 2].kind == K_HNSW ||
                                        p[np - 2].kind == K_NSG ||
                                        p[np - 2].kind == K_RESID)
                                ? &p[np - 2]
                                : NULL;
    parsed_tok flat = {.kind = K_FLAT};
    const parsed_tok *enc = &p[i];
    if (p[np - 1].kind == K_HNSW || p[np - 1].kind == K_NSG) {
        /* "HNSW32" / "NSG32" alone: flat storage */
        ivf = &p[np - 1];
        i = np; /* the encoding slot is implicit */
        enc = &flat;
    }
    /* the core works in the output dimension of the last transform */
    for (int t = i - (ivf ? 2 : 1); t >= 0; t--)
        if (is_transform(p[t].kind)) {
            d = p[t].dout;
            break;
        }
    if ((st = build_core(d, metric, enc, ivf, &ix))) return st;
    /* then outwards: the wrappers and runs of transforms */
    for (i -= ivf ? 2 : 1; i >= 0; i--) {
        vdx_index *outer = NULL;
        if (is_transform(p[i].kind)) {
            int j = i;
            while (j > 0 && is_transform(p[j - 1].kind)) j--;
            if ((st = wrap_transforms(p, j, i, ix, &outer))) return st;
            ix = outer;
            i = j;
            continue;
        }
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
    /* "X,IDMap" / "X,IDMap2": FAISS takes the wrapper as a suffix too (the
     * same index as the prefix form) */
    for (int w = 2; w >= 1; w--) {
        const char *suf = w == 2 ? ",IDMap2" : ",IDMap";
        size_t sl = strlen(suf);
        if (dl > sl && !strcmp(description + dl - sl, suf)) {
            char pre[1001];
            memcpy(pre, description, dl - sl);
            pre[dl - sl] = 0;
            vdx_index *sub = NULL;
            vdx_status st = vdx_index_factory(d, pre, metric, &sub);
            if (st) return st;
            st = w == 2 ? vdx_index_idmap2_new(sub, out)
                        : vdx_index_idmap_new(sub, out);
            if (st) vdx_index_free(sub);
            return st;
        }
    }
    /* "IDMap,X,RFlat" is IDMap(Refine(X)), as in FAISS: the wrapper takes
     * the whole refined index */
    int idm = !strncmp(description, "IDMap2,", 7) ? 2
              : !strncmp(description, "IDMap,", 6) ? 1 : 0;
    if (rf && idm) {
        vdx_index *sub = NULL;
        vdx_status st = vdx_index_factory(d, description + (idm == 2 ? 7 : 6),
                                          metric, &sub);
        if (st) return st;
        st = idm == 2 ? vdx_index_idmap2_new(sub, out)
                      : vdx_index_idmap_new(sub, out);
        if (st) vdx_index_free(sub);
        return st;
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
        /* the next comma outside parentheses ("IVF256(RCQ2x4),Flat") */
        const char *c = NULL;
        int depth = 0;
        for (const char *e = s; *e; e++) {
            if (*e == '(') depth++;
            else if (*e == ')') depth--;
            else if (*e == ',' && depth == 0) {
                c = e;
                break;
            }
        }
        size_t len = c ? (size_t)(c - s) : strlen(s);
        /* "HNSW32_PQ16" = "HNSW32,PQ16", "NSG32_SQ8" = "NSG32,SQ8" */
        if (!strncmp(s, "HNSW", 4) || !strncmp(s, "NSG", 3)) {
            const char *u = memchr(s, '_', len);
            if (u) {
                len = (size_t)(u - s);
                c = u;
            }
        }
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
    int last_stage = -1, last_wrapper = 0;
    int64_t dcur = d; /* the dimension the next token receives */
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
        int rk = rank_of(def->stage);
        if (rk < last_stage || (rk != 0 && rk == last_stage))
            return bad_token(t, description, "misplaced token");
        if (def->stage == ST_WRAPPER && last_wrapper)
            return bad_token(t, description, "repeated wrapper");
        if (def->kind == K_IVF && p[i].n < 1)
            return bad_token(t, description, "nlist must be >= 1 in token");
        /* an empty IVF index holds a list header per list (32 bytes): a
         * mistyped IVF999990999 would ask for 32 GB before any vector */
        if (def->kind == K_IVF && p[i].n > VDX_FACTORY_MAX_NLIST)
            return bad_token(t, description,
                             "nlist must be <= 2^24 (16777216) in token");
        if (def->stage == ST_TRANSFORM) {
            p[i].din = dcur;
            switch (def->kind) {
            case K_PCA:
                if (p[i].n > dcur)
                    return bad_token(t, description,
                                     "PCA output larger than its input "
                                     "dimension in token");
                p[i].dout = p[i].n;
                break;
            case K_OPQ:
                p[i].dout = p[i].n2 ? p[i].n2 : dcur;
                if (p[i].dout > VDX_MAX_DIM || p[i].dout % p[i].n != 0)
                    return bad_token(t, description,
                                     "OPQ M must divide the output dimension "
                                     "in token");
                break;
            case K_RR:
                p[i].dout = p[i].n ? p[i].n : dcur;
                if (p[i].dout > VDX_MAX_DIM)
                    return bad_token(t, description, "dimension too large in");
                break;
            case K_HR: /* zero-padded to the next power of 2 */
                p[i].dout = 1;
                while (p[i].dout < dcur) p[i].dout <<= 1;
                if (p[i].dout > VDX_MAX_DIM)
                    return bad_token(t, description, "dimension too large in");
                break;
            default: p[i].dout = dcur; break;
            }
            dcur = p[i].dout;
        }
        last_wrapper = def->stage == ST_WRAPPER;
        last_stage = rk;
        if (def->stage == ST_ENCODING && i != nt - 1)
            return bad_token(&spans[i + 1], description,
                             "unexpected token after the encoding:");
    }
    if (last_stage != ST_ENCODING &&
        !(p[nt - 1].kind == K_HNSW || p[nt - 1].kind == K_NSG)) {
        char b[64];
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_factory: '%s' ends with '%s' at position %zu; "
                         "expected an encoding such as 'Flat' last",
                         description, quote(b, sizeof b, &spans[nt - 1]),
                         spans[nt - 1].pos);
    }
    return build(d, metric, p, nt, out);
}
