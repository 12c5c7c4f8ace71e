/*
 * mt_lp.c — line-protocol parser (contract and rules in mt_lp.h).
 *
 * One pass per line, left to right, no backtracking:
 *
 *   measurement  scan to an unescaped ',' or ' '
 *   tags         key scan to '=', value scan to ',' or ' '
 *   fields       key scan to '=', value: '"'-quoted string, or a token up
 *                to ',' or ' ' classified as number / integer / unsigned /
 *                boolean
 *   timestamp    optional token, then only blanks
 *
 * Speed comes from three choices: a byte-class table drives every scan
 * loop; names are unescaped into scratch space only when the scan saw a
 * backslash (the common case is zero-copy); and floats are converted with
 * Clinger's fast path — a mantissa below 2^53 times or divided by an exact
 * power of ten up to 10^22 is one correctly rounded IEEE operation — with
 * strtod_l in the C locale for everything else, so every float is correctly
 * rounded whichever path it takes.
 *
 * Encoding is checked once per line, eight bytes at a time: a line without
 * high-bit bytes is ASCII and needs no UTF-8 validation.
 */
#include "mt_lp.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Byte classes: which bytes end a scan for which element. */
enum {
    C_BACKSLASH = 1 << 0, /* '\\' */
    C_COMMA = 1 << 1,     /* ',' */
    C_SPACE = 1 << 2,     /* ' ' */
    C_EQUALS = 1 << 3,    /* '=' */
    C_QUOTE = 1 << 4,     /* '"' */
    C_TOKEN_END = 1 << 5, /* ',' ' ' (end of a field value or timestamp) */
};

/* What ends the scan of each element, and what its backslash may escape. */
#define STOP_MEAS     (C_BACKSLASH | C_COMMA | C_SPACE)
#define STOP_KEY      (C_BACKSLASH | C_COMMA | C_SPACE | C_EQUALS)
#define ESC_MEAS      (C_BACKSLASH | C_COMMA | C_SPACE)
#define ESC_KEY       (C_BACKSLASH | C_COMMA | C_SPACE | C_EQUALS)
#define ESC_STRING    (C_BACKSLASH | C_QUOTE)
#define MAX_SHOWN_VAL 64 /* bytes of an offending value quoted in a reason */

static const uint8_t cls[256] = {
    ['\\'] = C_BACKSLASH,
    [','] = C_COMMA | C_TOKEN_END,
    [' '] = C_SPACE | C_TOKEN_END,
    ['='] = C_EQUALS,
    ['"'] = C_QUOTE,
};

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const char *const errcode_labels[] = {
#define MT__LP_ERR_LABEL(code, label) [code] = label,
    MT_LP_ERRCODE_MAP(MT__LP_ERR_LABEL)
#undef MT__LP_ERR_LABEL
};

struct mt_lp_parser {
    mt_lp_options opt;
    locale_t c_locale; /* for strtod_l: parsing must not follow the process locale */

    mt_lp_tag *tags; /* per-line scratch, grown up to limits.max_tags */
    size_t tags_cap;
    mt_lp_field *fields; /* per-line scratch, grown up to limits.max_fields */
    size_t fields_cap;
    char *unesc;      /* unescaped names of the current line; max_line_len bytes */
    size_t unesc_len; /* bytes used by the current line */

    char *pend;       /* unfinished last line of the stream; max_line_len + 1 bytes */
    size_t pend_len;  /* bytes held */
    bool discarding;  /* skipping the rest of an overlong line */
    uint64_t lineno;  /* number of the line being received, from 1 */
    mt_lp_counts cnt; /* cumulative counters */
};

/* Where the parse of one line stands; errors record into err. */
typedef struct line_ctx {
    mt_lp_parser *p;
    const char *s; /* the line, blanks trimmed at both ends */
    size_t n;      /* its length */
    size_t base;   /* offset of s within the raw line, for columns */
    mt_lp_error *err;
} line_ctx;

const char *mt_lp_errcode_label(mt_lp_errcode code)
{
    if ((unsigned)code >= MT_LP_E__COUNT) return "unknown";
    return errcode_labels[code];
}

int mt_lp_error_format(const mt_lp_error *err, char *buf, size_t cap)
{
    return snprintf(buf, cap, "line %llu col %u: %s", (unsigned long long)err->lineno, err->col,
                    err->reason);
}

mt_lp_options mt_lp_options_default(void)
{
    return (mt_lp_options){
        .limits = {.max_line_len = 65536,
                   .max_tags = 256,
                   .max_fields = 1024,
                   .max_name_len = 4096},
        .precision = MT_PREC_NS,
    };
}

int mt_lp_parser_new(const mt_lp_options *opt, mt_lp_parser **out)
{
    mt_lp_options def = mt_lp_options_default();
    mt_lp_parser *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->opt = opt ? *opt : def;
    mt_lp_limits *l = &p->opt.limits;
    if (!l->max_line_len) l->max_line_len = def.limits.max_line_len;
    if (!l->max_tags) l->max_tags = def.limits.max_tags;
    if (!l->max_fields) l->max_fields = def.limits.max_fields;
    if (!l->max_name_len) l->max_name_len = def.limits.max_name_len;
    if ((unsigned)p->opt.precision > MT_PREC_H || l->max_line_len > (1u << 30)) {
        free(p);
        return MT_EINVAL;
    }
    p->lineno = 1;
    /* The scratch and the partial-line buffer are allocated when first needed:
       a connection that never sends an escape or a split line never pays for them. */
    p->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!p->c_locale) {
        mt_lp_parser_free(p);
        return -ENOMEM;
    }
    *out = p;
    return MT_OK;
}

void mt_lp_parser_free(mt_lp_parser *p)
{
    if (!p) return;
    if (p->c_locale) freelocale(p->c_locale);
    free(p->tags);
    free(p->fields);
    free(p->unesc);
    free(p->pend);
    free(p);
}

void mt_lp_parser_set_precision(mt_lp_parser *p, mt_precision precision)
{
    p->opt.precision = precision;
}

const mt_lp_counts *mt_lp_parser_counts(const mt_lp_parser *p)
{
    return &p->cnt;
}

/* ---- errors ------------------------------------------------------------ */

/* Record an error at offset pos of the trimmed line; returns MT_EPARSE. */
__attribute__((format(printf, 4, 5))) static int fail(line_ctx *c, mt_lp_errcode code, size_t pos,
                                                      const char *fmt, ...)
{
    c->err->code = code;
    c->err->col = (uint32_t)(c->base + pos + 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err->reason, sizeof c->err->reason, fmt, ap);
    va_end(ap);
    return MT_EPARSE;
}

/* The shown part of an offending value: at most MAX_SHOWN_VAL bytes. */
static int shown(size_t len)
{
    return (int)(len > MAX_SHOWN_VAL ? MAX_SHOWN_VAL : len);
}

/* ---- encoding ---------------------------------------------------------- */

/* Offset of the first byte that is not valid UTF-8, or n if all are. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, cp = c & 0x07;
        else
            return i;
        if (i + need >= n) return i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* overlong 3/4-byte forms, surrogates, beyond U+10FFFF */
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return i;
        i += need + 1;
    }
    return n;
}

/* Reject NUL bytes and invalid UTF-8; eight bytes at a time for the common ASCII line. */
static int check_encoding(line_ctx *c)
{
    const unsigned char *s = (const unsigned char *)c->s;
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t high = 0, zero = 0;
    size_t i = 0;
    for (; i + 8 <= c->n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        high |= w;
        zero |= (w - ones) & ~w;
    }
    for (; i < c->n; i++) {
        high |= s[i];
        if (!s[i]) zero |= highs;
    }
    if (((high | zero) & highs) == 0) return MT_OK;
    const unsigned char *nul = memchr(s, 0, c->n);
    if (nul) return fail(c, MT_LP_E_BAD_ENCODING, (size_t)(nul - s), "NUL byte in line");
    size_t bad = utf8_invalid_at(s, c->n);
    if (bad < c->n) return fail(c, MT_LP_E_BAD_ENCODING, bad, "invalid UTF-8");
    return MT_OK;
}

/* ---- names ------------------------------------------------------------- */

/*
 * Scan a name from *pos up to a byte of class stop (backslash excluded),
 * honouring the escapes of esc. Sets *escaped when a backslash was seen.
 * Returns the end offset, or (size_t)-1 after recording a trailing-backslash
 * error.
 */
static size_t scan_name(line_ctx *c, size_t pos, uint8_t stop, uint8_t esc, bool *escaped)
{
    const char *s = c->s;
    size_t n = c->n, i = pos;
    *escaped = false;
    for (;;) {
        while (i < n && !(cls[(unsigned char)s[i]] & stop)) i++;
        if (i >= n || s[i] != '\\') return i;
        *escaped = true;
        if (i + 1 >= n) {
            fail(c, MT_LP_E_TRAILING_BACKSLASH, i, "name ends with a lone backslash");
            return (size_t)-1;
        }
        i += (cls[(unsigned char)s[i + 1]] & esc) ? 2 : 1;
    }
}

/* Copy s[0..n) into the line's scratch space with the escapes of esc removed. */
static int unescape(mt_lp_parser *p, const char *s, size_t n, uint8_t esc, mt_lp_str *out)
{
    if (!p->unesc && !(p->unesc = malloc(p->opt.limits.max_line_len))) return -ENOMEM;
    char *dst = p->unesc + p->unesc_len;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && (cls[(unsigned char)s[i + 1]] & esc)) i++;
        dst[o++] = s[i];
    }
    p->unesc_len += o;
    *out = (mt_lp_str){dst, o};
    return MT_OK;
}

/* Finish a scanned name s[from..to): unescape if needed and check its length. */
static int take_name(line_ctx *c, size_t from, size_t to, bool escaped, uint8_t esc, mt_lp_str *out)
{
    if (!escaped)
        *out = (mt_lp_str){c->s + from, to - from};
    else if (unescape(c->p, c->s + from, to - from, esc, out))
        return -ENOMEM;
    if (out->len > c->p->opt.limits.max_name_len)
        return fail(c, MT_LP_E_NAME_TOO_LONG, from, "name too long (%zu bytes, limit %zu)",
                    out->len, c->p->opt.limits.max_name_len);
    return MT_OK;
}

/* ---- numbers ----------------------------------------------------------- */

typedef enum num_result { NUM_OK, NUM_SYNTAX, NUM_RANGE, NUM_NOMEM } num_result;

/*
 * Parse a float token (no suffix): -?digits[.digits][(e|E)[+-]digits],
 * at least one mantissa digit. Correctly rounded.
 */
static num_result parse_float(mt_lp_parser *p, const char *s, size_t n, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && s[i] == '-') neg = true, i++;
    uint64_t mant = 0;
    int mant_digits = 0; /* significant digits accumulated in mant */
    int dropped = 0;     /* integer digits beyond 19 (scale mant up) */
    int frac = 0;        /* fraction digits accumulated in mant */
    bool any = false, inexact = false;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        any = true;
        if (mant_digits < 19) {
            mant = mant * 10 + (uint64_t)(s[i] - '0');
            if (mant) mant_digits++;
        } else {
            dropped++;
            inexact |= s[i] != '0';
        }
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            any = true;
            if (mant_digits < 19) {
                mant = mant * 10 + (uint64_t)(s[i] - '0');
                if (mant) mant_digits++;
                frac++;
            } else {
                inexact |= s[i] != '0';
            }
        }
    }
    if (!any) return NUM_SYNTAX;
    int64_t e10 = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i] == '-', i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return NUM_SYNTAX;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if (e10 < 100000) e10 = e10 * 10 + (s[i] - '0');
        if (eneg) e10 = -e10;
    }
    if (i != n) return NUM_SYNTAX;
    e10 += dropped - frac;
    if (!inexact && mant <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double d = (double)mant;
        d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
        *out = neg ? -d : d;
        return NUM_OK;
    }
    if (mant == 0 && !inexact) {
        *out = neg ? -0.0 : 0.0;
        return NUM_OK;
    }
    /* Slow path: strtod_l on a NUL-terminated copy (the token is at most a line long). */
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return NUM_NOMEM;
    memcpy(buf, s, n);
    buf[n] = '\0';
    double d = strtod_l(buf, NULL, p->c_locale);
    if (buf != small) free(buf);
    if (isinf(d)) return NUM_RANGE;
    *out = d;
    return NUM_OK;
}

/* Parse -?digits as an int64 (neg allowed) or uint64 (no sign). */
static num_result parse_integer(const char *s, size_t n, bool allow_neg, uint64_t *mag, bool *neg)
{
    size_t i = 0;
    *neg = false;
    if (allow_neg && i < n && s[i] == '-') *neg = true, i++;
    if (i >= n) return NUM_SYNTAX;
    uint64_t v = 0;
    bool range = false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return NUM_SYNTAX;
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
            range = true;
    }
    if (range) return NUM_RANGE;
    *mag = v;
    return NUM_OK;
}

static bool is_bool(const char *s, size_t n, bool *out)
{
    static const struct {
        const char *text;
        bool value;
    } words[] = {{"t", true},  {"T", true},  {"true", true},   {"True", true},   {"TRUE", true},
                 {"f", false}, {"F", false}, {"false", false}, {"False", false}, {"FALSE", false}};
    if (n > 5) return false;
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++) {
        if (strlen(words[k].text) == n && memcmp(words[k].text, s, n) == 0) {
            *out = words[k].value;
            return true;
        }
    }
    return false;
}

/* NaN and Inf spelled out, in the forms strtod and other systems print. */
static bool is_nan_inf(const char *s, size_t n)
{
    if (n && (s[0] == '-' || s[0] == '+')) s++, n--;
    return (n == 3 && (strncasecmp(s, "nan", 3) == 0 || strncasecmp(s, "inf", 3) == 0)) ||
           (n == 8 && strncasecmp(s, "infinity", 8) == 0);
}

/* Parse the unquoted field value s[from..to) into f. */
static int parse_value(line_ctx *c, size_t from, size_t to, mt_lp_field *f)
{
    const char *s = c->s + from;
    size_t n = to - from;
    char last = s[n - 1];
    num_result r;
    if (is_nan_inf(s, n))
        return fail(c, MT_LP_E_NAN_INF, from, "NaN and Inf are not supported \"%.*s\"", shown(n),
                    s);
    if (s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')) {
        if (last == 'i' || last == 'u') {
            uint64_t mag;
            bool neg;
            r = parse_integer(s, n - 1, last == 'i', &mag, &neg);
            if (r == NUM_OK && last == 'i') {
                if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX) r = NUM_RANGE;
                f->type = MT_LP_INT;
                f->v.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
            } else if (r == NUM_OK) {
                f->type = MT_LP_UINT;
                f->v.u = mag;
            }
            if (r == NUM_RANGE)
                return fail(c, MT_LP_E_OUT_OF_RANGE, from, "%s value out of range \"%.*s\"",
                            last == 'i' ? "integer" : "unsigned", shown(n), s);
        } else {
            f->type = MT_LP_FLOAT;
            r = parse_float(c->p, s, n, &f->v.f);
            if (r == NUM_NOMEM) return -ENOMEM;
            if (r == NUM_RANGE)
                return fail(c, MT_LP_E_NAN_INF, from,
                            "float value out of range (Inf is not supported) \"%.*s\"", shown(n),
                            s);
        }
        if (r == NUM_OK) return MT_OK;
    } else if (is_bool(s, n, &f->v.b)) {
        f->type = MT_LP_BOOL;
        return MT_OK;
    }
    return fail(c, MT_LP_E_BAD_FIELD_VALUE, from, "invalid field value \"%.*s\"", shown(n), s);
}

/* Parse a quoted string starting at the '"' at *pos; *pos ends after the closing quote. */
static int parse_string(line_ctx *c, size_t *pos, mt_lp_field *f)
{
    const char *s = c->s;
    size_t n = c->n, start = *pos + 1, i = start;
    bool escaped = false;
    for (;;) {
        while (i < n && !(cls[(unsigned char)s[i]] & (C_QUOTE | C_BACKSLASH))) i++;
        if (i >= n) return fail(c, MT_LP_E_UNTERMINATED_STRING, *pos, "unterminated string");
        if (s[i] == '"') break;
        escaped = true;
        i += (i + 1 < n && (cls[(unsigned char)s[i + 1]] & ESC_STRING)) ? 2 : 1;
    }
    f->type = MT_LP_STRING;
    if (!escaped)
        f->v.s = (mt_lp_str){s + start, i - start};
    else if (unescape(c->p, s + start, i - start, ESC_STRING, &f->v.s))
        return -ENOMEM;
    *pos = i + 1;
    return MT_OK;
}

/* ---- line structure ---------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t limit)
{
    if (need <= *cap) return MT_OK;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > limit) ncap = limit;
    void *a = realloc(*arr, ncap * elem);
    if (!a) return -ENOMEM;
    *arr = a;
    *cap = ncap;
    return MT_OK;
}

static int str_cmp(mt_lp_str a, mt_lp_str b)
{
    int r = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
    if (r) return r;
    return (a.len > b.len) - (a.len < b.len);
}

static int tag_cmp(const void *a, const void *b)
{
    return str_cmp(((const mt_lp_tag *)a)->key, ((const mt_lp_tag *)b)->key);
}

/* Sort tags by key (most lines arrive sorted: one check), then reject duplicates. */
static int sort_tags(line_ctx *c, mt_lp_tag *tags, size_t n, size_t tags_pos)
{
    size_t k = 1;
    while (k < n && str_cmp(tags[k - 1].key, tags[k].key) < 0) k++;
    if (k >= n) return MT_OK;
    qsort(tags, n, sizeof *tags, tag_cmp);
    for (k = 1; k < n; k++) {
        if (str_cmp(tags[k - 1].key, tags[k].key) == 0)
            return fail(c, MT_LP_E_DUPLICATE_TAG, tags_pos, "duplicate tag key \"%.*s\"",
                        shown(tags[k].key.len), tags[k].key.ptr);
    }
    return MT_OK;
}

static size_t skip_blanks(const char *s, size_t n, size_t i)
{
    while (i < n && s[i] == ' ') i++;
    return i;
}

/* What a tag set and a field set differ in, for set_key. */
typedef struct set_kind {
    const char *what; /* "tag" or "field" */
    mt_lp_errcode no_key, no_value, too_many;
} set_kind;

static const set_kind TAGS = {"tag", MT_LP_E_MISSING_TAG_KEY, MT_LP_E_MISSING_TAG_VALUE,
                              MT_LP_E_TOO_MANY_TAGS};
static const set_kind FIELDS = {"field", MT_LP_E_MISSING_FIELD_KEY, MT_LP_E_MISSING_FIELD_VALUE,
                                MT_LP_E_TOO_MANY_FIELDS};

/*
 * The key of the count-th member of a set at *i: refused when missing, without a value or
 * past limit; room made in *arr (elements of elem bytes) for the member, whose key (at
 * key_off in it) is taken. *i ends at the key's '='.
 */
static int set_key(line_ctx *c, const set_kind *k, size_t *i, size_t count, size_t limit,
                   void **arr, size_t *cap, size_t elem, size_t key_off)
{
    bool esc;
    size_t at = *i, kend = scan_name(c, at, STOP_KEY, ESC_KEY, &esc);
    if (kend == (size_t)-1) return MT_EPARSE;
    if (kend == at) return fail(c, k->no_key, at, "missing %s key", k->what);
    if (kend >= c->n || c->s[kend] != '=')
        return fail(c, k->no_value, at, "missing %s value for key \"%.*s\"", k->what,
                    shown(kend - at), c->s + at);
    if (count >= limit) return fail(c, k->too_many, at, "too many %ss (limit %zu)", k->what, limit);
    int rc = grow(arr, cap, count + 1, elem, limit);
    if (rc) return rc;
    *i = kend;
    return take_name(c, at, kend, esc, ESC_KEY,
                     (mt_lp_str *)((char *)*arr + count * elem + key_off));
}

/* Parse the tag set starting after the ',' at *pos; *pos ends at the separating space. */
static int parse_tags(line_ctx *c, size_t *pos, size_t *ntags)
{
    mt_lp_parser *p = c->p;
    const char *s = c->s;
    size_t n = c->n, i = *pos, count = 0;
    int rc;
    for (;;) {
        if ((rc = set_key(c, &TAGS, &i, count, p->opt.limits.max_tags, (void **)&p->tags,
                          &p->tags_cap, sizeof *p->tags, offsetof(mt_lp_tag, key))))
            return rc;
        mt_lp_tag *t = &p->tags[count];
        bool esc;
        size_t vstart = i + 1;
        size_t vend = scan_name(c, vstart, STOP_KEY, ESC_KEY, &esc);
        if (vend == (size_t)-1) return MT_EPARSE;
        if (vend < n && s[vend] == '=')
            return fail(c, MT_LP_E_BAD_TAG, vend, "unescaped '=' in tag value");
        if (vend == vstart)
            return fail(c, MT_LP_E_MISSING_TAG_VALUE, vstart, "missing tag value for key \"%.*s\"",
                        shown(t->key.len), t->key.ptr);
        if ((rc = take_name(c, vstart, vend, esc, ESC_KEY, &t->value))) return rc;
        count++;
        i = vend;
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        break;
    }
    *pos = i;
    *ntags = count;
    return MT_OK;
}

/* Parse the field set at *pos; *pos ends after the last value. */
static int parse_fields(line_ctx *c, size_t *pos, size_t *nfields)
{
    mt_lp_parser *p = c->p;
    const char *s = c->s;
    size_t n = c->n, i = *pos, count = 0;
    int rc;
    for (;;) {
        if ((rc = set_key(c, &FIELDS, &i, count, p->opt.limits.max_fields, (void **)&p->fields,
                          &p->fields_cap, sizeof *p->fields, offsetof(mt_lp_field, key))))
            return rc;
        mt_lp_field *f = &p->fields[count];
        i++; /* past the '=' */
        if (i < n && s[i] == '"') {
            if ((rc = parse_string(c, &i, f))) return rc;
            if (i < n && !(cls[(unsigned char)s[i]] & C_TOKEN_END))
                return fail(c, MT_LP_E_BAD_FIELD_VALUE, i, "unexpected data after string value");
        } else {
            size_t vend = i;
            while (vend < n && !(cls[(unsigned char)s[vend]] & C_TOKEN_END)) vend++;
            if (vend == i)
                return fail(c, MT_LP_E_MISSING_FIELD_VALUE, i,
                            "missing field value for key \"%.*s\"", shown(f->key.len), f->key.ptr);
            if ((rc = parse_value(c, i, vend, f))) return rc;
            i = vend;
        }
        count++;
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        break;
    }
    *pos = i;
    *nfields = count;
    return MT_OK;
}

/* Parse the optional timestamp at *pos (blanks skipped already). */
static int parse_timestamp(line_ctx *c, size_t pos, int64_t *ts)
{
    const char *s = c->s;
    size_t n = c->n, end = pos;
    while (end < n && s[end] != ' ') end++;
    uint64_t mag;
    bool neg;
    num_result r = parse_integer(s + pos, end - pos, true, &mag, &neg);
    if (r == NUM_SYNTAX)
        return fail(c, MT_LP_E_BAD_TIMESTAMP, pos, "invalid timestamp \"%.*s\"", shown(end - pos),
                    s + pos);
    int64_t v = 0;
    if (r == NUM_OK && mag <= (uint64_t)INT64_MAX) v = neg ? -(int64_t)mag : (int64_t)mag;
    if (r == NUM_RANGE || mag > (uint64_t)INT64_MAX || !mt_time_to_ns(v, c->p->opt.precision, ts))
        return fail(c, MT_LP_E_BAD_TIMESTAMP, pos, "timestamp out of range \"%.*s\"",
                    shown(end - pos), s + pos);
    end = skip_blanks(s, n, end);
    if (end < n) return fail(c, MT_LP_E_TRAILING_DATA, end, "unexpected data after timestamp");
    return MT_OK;
}

/* Parse one trimmed, non-empty, non-comment line into *line. */
static int parse_structure(line_ctx *c, mt_lp_line *line)
{
    mt_lp_parser *p = c->p;
    const char *s = c->s;
    size_t n = c->n;
    int rc;
    bool esc;
    size_t i = scan_name(c, 0, STOP_MEAS, ESC_MEAS, &esc);
    if (i == (size_t)-1) return MT_EPARSE;
    if (i == 0) return fail(c, MT_LP_E_MISSING_MEASUREMENT, 0, "missing measurement");
    if ((rc = take_name(c, 0, i, esc, ESC_MEAS, &line->measurement))) return rc;
    line->ntags = 0;
    if (i < n && s[i] == ',') {
        size_t tags_pos = ++i;
        if ((rc = parse_tags(c, &i, &line->ntags))) return rc;
        if ((rc = sort_tags(c, p->tags, line->ntags, tags_pos))) return rc;
    }
    line->tags = p->tags;
    i = skip_blanks(s, n, i);
    if (i >= n) return fail(c, MT_LP_E_MISSING_FIELDS, i, "missing fields");
    if ((rc = parse_fields(c, &i, &line->nfields))) return rc;
    line->fields = p->fields;
    i = skip_blanks(s, n, i);
    line->has_ts = i < n;
    if (line->has_ts) return parse_timestamp(c, i, &line->ts);
    return MT_OK;
}

/* Count a rejected line and hand it to on_error. */
static void reject(mt_lp_parser *p, mt_lp_error *err, uint64_t lineno, const char *raw, size_t len,
                   const mt_lp_handler *h)
{
    p->cnt.rejected++;
    p->cnt.rejected_by[err->code]++;
    err->lineno = lineno;
    err->raw = (mt_lp_str){raw, len};
    if (h->on_error) h->on_error(h->ud, err);
}

/* Parse one line (terminator removed) and report it. Returns MT_OK, -ENOMEM or on_line's stop. */
static int parse_line(mt_lp_parser *p, const char *raw, size_t len, int64_t now_ns,
                      const mt_lp_handler *h)
{
    uint64_t lineno = p->lineno++;
    if (len && raw[len - 1] == '\r') len--;
    mt_lp_error err;
    line_ctx c = {.p = p, .s = raw, .n = len, .base = 0, .err = &err};
    if (len > p->opt.limits.max_line_len) {
        fail(&c, MT_LP_E_LINE_TOO_LONG, 0, "line too long (limit %zu bytes)",
             p->opt.limits.max_line_len);
        reject(p, &err, lineno, raw, p->opt.limits.max_line_len, h);
        return MT_OK;
    }
    while (c.n && (c.s[0] == ' ' || c.s[0] == '\t')) c.s++, c.n--, c.base++;
    while (c.n && (c.s[c.n - 1] == ' ' || c.s[c.n - 1] == '\t')) c.n--;
    if (c.n == 0 || c.s[0] == '#') return MT_OK;

    mt_lp_line line = {.lineno = lineno, .raw = {raw, len}, .ts = now_ns};
    p->unesc_len = 0;
    int rc = check_encoding(&c);
    if (rc == MT_OK) rc = parse_structure(&c, &line);
    if (rc == MT_OK) {
        p->cnt.lines++;
        p->cnt.points += line.nfields;
        return h->on_line ? h->on_line(h->ud, &line) : MT_OK;
    }
    if (rc != MT_EPARSE) return rc;
    reject(p, &err, lineno, raw, len, h);
    return MT_OK;
}

/* Report an overlong line from the first bytes we saw of it. */
static void reject_overlong(mt_lp_parser *p, const char *head, size_t head_len,
                            const mt_lp_handler *h)
{
    mt_lp_error err = {.code = MT_LP_E_LINE_TOO_LONG, .col = 1};
    snprintf(err.reason, sizeof err.reason, "line too long (limit %zu bytes)",
             p->opt.limits.max_line_len);
    reject(p, &err, p->lineno, head, head_len, h);
}

int mt_lp_feed(mt_lp_parser *p, const char *buf, size_t len, int64_t now_ns, const mt_lp_handler *h)
{
    const size_t hold = p->opt.limits.max_line_len + 1; /* room for a '\r' */
    size_t off = 0;
    int rc;
    p->cnt.bytes += len;
    if (p->discarding) {
        const char *nl = memchr(buf, '\n', len);
        if (!nl) return MT_OK;
        off = (size_t)(nl - buf) + 1;
        p->discarding = false;
        p->lineno++;
    }
    if (p->pend_len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t take = nl ? (size_t)(nl - (buf + off)) : len - off;
        if (p->pend_len + take > hold) {
            /* Show the line's first max_line_len bytes, as a whole-buffer parse would. */
            size_t max = p->opt.limits.max_line_len;
            size_t room = p->pend_len < max ? max - p->pend_len : 0;
            memcpy(p->pend + p->pend_len, buf + off, take < room ? take : room);
            reject_overlong(p, p->pend, max, h);
            p->pend_len = 0;
            if (!nl) {
                p->discarding = true;
                return MT_OK;
            }
            p->lineno++;
        } else {
            memcpy(p->pend + p->pend_len, buf + off, take);
            p->pend_len += take;
            if (!nl) return MT_OK;
            size_t plen = p->pend_len;
            p->pend_len = 0;
            if ((rc = parse_line(p, p->pend, plen, now_ns, h))) return rc;
        }
        off += take + 1;
    }
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        if (!nl) {
            size_t tail = len - off;
            if (tail > hold) {
                reject_overlong(p, buf + off, p->opt.limits.max_line_len, h);
                p->discarding = true;
            } else {
                if (!p->pend && !(p->pend = malloc(hold))) return -ENOMEM;
                memcpy(p->pend, buf + off, tail);
                p->pend_len = tail;
            }
            return MT_OK;
        }
        size_t llen = (size_t)(nl - (buf + off));
        if ((rc = parse_line(p, buf + off, llen, now_ns, h))) return rc;
        off += llen + 1;
    }
    return MT_OK;
}

int mt_lp_finish(mt_lp_parser *p, int64_t now_ns, const mt_lp_handler *h)
{
    int rc = MT_OK;
    if (p->pend_len) rc = parse_line(p, p->pend, p->pend_len, now_ns, h);
    p->pend_len = 0;
    p->discarding = false;
    p->lineno = 1;
    return rc;
}

int mt_lp_parse(mt_lp_parser *p, const char *buf, size_t len, int64_t now_ns,
                const mt_lp_handler *h)
{
    p->pend_len = 0;
    p->discarding = false;
    p->lineno = 1;
    size_t whole = len;
    const char *last_nl = len ? memrchr(buf, '\n', len) : NULL;
    whole = last_nl ? (size_t)(last_nl - buf) + 1 : 0;
    int rc = mt_lp_feed(p, buf, whole, now_ns, h);
    /* The final unterminated line is parsed in place, not copied. */
    if (rc == MT_OK && whole < len) {
        p->cnt.bytes += len - whole;
        rc = parse_line(p, buf + whole, len - whole, now_ns, h);
    }
    p->lineno = 1;
    return rc;
}
