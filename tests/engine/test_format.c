/*
 * test_format.c — tests/fixtures/format2.tar.gz, format3.tar.gz and
 * format6.tar.gz, data directories written by the format-2, format-3 and
 * format-6 builds from the same lines by the same recipe, read back value by
 * value and decoded by hand from their bytes (docs/format.md). A later
 * change must read this directory as it is or migrate it: a change to the
 * chunk encoding, the hour file, a key or value layout of index.mdb, the
 * head record, the rollups, the sketch or the outbox fails here.
 *
 * The expected values come from tests/fixtures/format2.lp, parsed here:
 * every point (last write wins on a repeated timestamp), and from them the
 * chunk summaries, the rollups (PERCENTILE_CONT by linear interpolation,
 * PostgreSQL's float8_lerp), the postings and the sketches' bins.
 *
 * How the fixture was made (main after 146f781, build/test, in an empty
 * directory; L=tests/fixtures/format2.lp, B=build/test/tools):
 *
 *   sed -n '1,/^# phase 2/p' $L > p1.lp
 *   sed -n '/^# phase 2/,$p' $L > p2.lp
 *   $B/metron import --data data --precision s p1.lp      # hours 00-02 sealed, gens 1-3
 *   $B/metrond --data data --http 127.0.0.1:18641 --lp-tcp off --lp-udp off \
 *     --grace 1000000000 --late-quiet 1 --postgres 'postgresql://127.0.0.1:1/none' \
 *     --retention-interval 0 --compact-interval 0 &       # outbox on, never delivered
 *   $B/metron import --url http://127.0.0.1:18641 --precision s p2.lp
 *   # wait for blocks/2025/03/01/00.4.blk and 01.5.blk (late points merged after 1 s
 *   # quiet: one outbox entry per merged hour), then stop metrond (SIGTERM: no seal,
 *   # hour 03 stays in the head log)
 *   $B/metron compact --data data                          # index.mdb without free pages
 *   tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2025-03-01 04:00Z' \
 *     -czf tests/fixtures/format2.tar.gz -C data index.mdb blocks
 *
 * format3.tar.gz: the same steps by the format-3 build (main at 33c1a49,
 * B=build/release/tools). Its hours records carry sealed_seq, and its head
 * log keeps the record of phase 2, which holds the late points merged into
 * hours 00 and 01 beside hour 03's: replay skips the first.
 *
 * format6.tar.gz: the same steps, flags and tar command by the format-6 build
 * (main at 4a552ba, B=build/release/tools of a Release build; every flag of
 * the recipe still exists, the others were left at their defaults). Its hour
 * files are version 3 with chunks of version 2, its rollup values the
 * compact version 2, its head records version 2; meta also holds the commit
 * floor (T0: no mirror raised it). metrond's minute mirror and alerting
 * (on by default with postgres set) only retried the unreachable server.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zstd.h>

#include "mt_buf.h"
#include "mt_engine.h"
#include "mt_hash.h"
#include "mt_kv.h"
#include "mt_sketch.h"

#define S      1000000000LL
#define T0     (1740787200LL * S) /* 2025-03-01T00:00:00Z */
#define HOUR0  (1740787200LL / 3600)
#define NHOURS 4 /* hours 00-02 sealed, 03 in the head */

static char dir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-format-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(format, .init = setup, .fini = teardown, .timeout = 120);

/* ---- the model: every point of format2.lp ------------------------------------------------ */

typedef struct pt {
    int64_t ts;
    mt_val v;   /* strings: v.u is the length, bytes at str */
    char *str;  /* strings: malloc'd */
    long order; /* the line it came from, for arrival order */
} pt;

typedef struct ser {
    char key[512];
    size_t klen;
    mt_vtype type;
    char bid[64], meas[32], field[32]; /* the rollup group */
    pt *p;
    size_t n, cap;
    uint32_t id; /* as the fixture has it */
} ser;

#define MAX_SERIES 32

static ser model[MAX_SERIES];
static size_t nmodel;

static ser *series_of(const char *key, size_t klen)
{
    for (size_t i = 0; i < nmodel; i++)
        if (model[i].klen == klen && !memcmp(model[i].key, key, klen)) return &model[i];
    cr_assert_lt(nmodel, MAX_SERIES);
    ser *s = &model[nmodel++];
    memset(s, 0, sizeof *s);
    memcpy(s->key, key, klen);
    s->klen = klen;
    s->type = MT_VT_COUNT;
    return s;
}

/* Add a point; a repeated timestamp replaces the value (last write wins). */
static void model_add(ser *s, int64_t ts, mt_vtype t, mt_val v, const char *str, size_t slen,
                      long order)
{
    if (s->type == MT_VT_COUNT) s->type = t;
    cr_assert_eq(s->type, t, "one type per series");
    char *copy = NULL;
    if (t == MT_VT_STRING) {
        copy = malloc(slen + 1);
        memcpy(copy, str, slen);
        v.u = slen;
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->p[i].ts == ts) {
            free(s->p[i].str);
            s->p[i] = (pt){ts, v, copy, order};
            return;
        }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->p = realloc(s->p, s->cap * sizeof *s->p);
    }
    s->p[s->n++] = (pt){ts, v, copy, order};
}

static int by_ts(const void *a, const void *b)
{
    const pt *x = a, *y = b;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

/*
 * One line of the subset format2.lp uses: names without escapes, tags
 * sorted, string fields with \" and \\, integer i, unsigned u, booleans,
 * floats; timestamps in seconds.
 */
static void parse_line(char *line, long order)
{
    char *sp = strchr(line, ' ');
    cr_assert_not_null(sp, "line %ld", order);
    *sp = '\0';
    char *fields = sp + 1;
    /* measurement and tags */
    mt_name meas, tk[8], tv[8];
    size_t ntags = 0;
    char *tok = strtok(line, ",");
    meas = (mt_name){tok, strlen(tok)};
    char bid[64] = "";
    while ((tok = strtok(NULL, ","))) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq);
        *eq = '\0';
        tk[ntags] = (mt_name){tok, strlen(tok)};
        tv[ntags] = (mt_name){eq + 1, strlen(eq + 1)};
        if (!strcmp(tok, "business_id")) snprintf(bid, sizeof bid, "%s", eq + 1);
        ntags++;
    }
    /* fields up to the space before the timestamp (outside quotes) */
    char *p = fields;
    struct {
        char *name, *val;
        size_t vlen;
        bool quoted;
    } f[8];
    size_t nf = 0;
    char strbuf[8][256];
    while (*p && *p != ' ') {
        f[nf].name = p;
        char *eq = strchr(p, '=');
        *eq = '\0';
        p = eq + 1;
        if (*p == '"') {
            size_t o = 0;
            for (p++; *p != '"'; p++) {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
                strbuf[nf][o++] = *p;
            }
            p++;
            f[nf].val = strbuf[nf];
            f[nf].vlen = o;
            f[nf].quoted = true;
        } else {
            f[nf].val = p;
            while (*p && *p != ',' && *p != ' ') p++;
            f[nf].vlen = (size_t)(p - f[nf].val);
            f[nf].quoted = false;
        }
        nf++;
        if (*p == ',') *p++ = '\0';
    }
    cr_assert_eq(*p, ' ', "line %ld: a timestamp", order);
    *p++ = '\0';
    int64_t ts = strtoll(p, NULL, 10) * S;
    for (size_t i = 0; i < nf; i++) {
        char key[512];
        mt_name field = {f[i].name, strlen(f[i].name)};
        size_t kl = mt_series_key(key, sizeof key, meas, tk, tv, ntags, field);
        cr_assert_gt(kl, 0, "line %ld", order);
        ser *s = series_of(key, kl);
        snprintf(s->bid, sizeof s->bid, "%s", bid);
        snprintf(s->meas, sizeof s->meas, "%.*s", (int)meas.len, meas.ptr);
        snprintf(s->field, sizeof s->field, "%s", f[i].name);
        char v[64];
        snprintf(v, sizeof v, "%.*s", (int)f[i].vlen, f[i].val);
        size_t vl = strlen(v);
        mt_val val = {0};
        mt_vtype t;
        if (f[i].quoted) {
            t = MT_VT_STRING;
        } else if (!strcmp(v, "t") || !strcmp(v, "true") || !strcmp(v, "f") ||
                   !strcmp(v, "false")) {
            t = MT_VT_BOOL;
            val.u = v[0] == 't';
        } else if (v[vl - 1] == 'i') {
            t = MT_VT_INT;
            val.i = strtoll(v, NULL, 10);
        } else if (v[vl - 1] == 'u') {
            t = MT_VT_UINT;
            val.u = strtoull(v, NULL, 10);
        } else {
            t = MT_VT_FLOAT;
            val.f = strtod(v, NULL);
        }
        model_add(s, ts, t, val, f[i].val, f[i].vlen, order);
    }
}

static void model_load(void)
{
    for (size_t i = 0; i < nmodel; i++) {
        for (size_t k = 0; k < model[i].n; k++) free(model[i].p[k].str);
        free(model[i].p);
    }
    nmodel = 0;
    FILE *f = fopen(MT_FIXTURES "/format2.lp", "r");
    cr_assert_not_null(f);
    char line[1024];
    long order = 0;
    while (fgets(line, sizeof line, f)) {
        order++;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] && line[0] != '#') parse_line(line, order);
    }
    fclose(f);
    for (size_t i = 0; i < nmodel; i++) qsort(model[i].p, model[i].n, sizeof(pt), by_ts);
    cr_assert_eq(nmodel, 13, "the series format2.lp holds");
}

static int64_t hour_of(int64_t ts)
{
    return ts / (3600 * S); /* no negative timestamps here */
}

static double as_double(mt_vtype t, mt_val v)
{
    return t == MT_VT_FLOAT ? v.f : t == MT_VT_INT ? (double)v.i : (double)v.u;
}

/* The points of s in hour h: [*first, *first + return). */
static size_t in_hour(const ser *s, int64_t h, size_t *first)
{
    size_t a = 0, n = 0;
    while (a < s->n && hour_of(s->p[a].ts) < h) a++;
    while (a + n < s->n && hour_of(s->p[a + n].ts) == h) n++;
    *first = a;
    return n;
}

static bool sealed_hour(int64_t h)
{
    return h >= HOUR0 && h < HOUR0 + 3;
}

static ser *by_id(uint32_t id)
{
    for (size_t i = 0; i < nmodel; i++)
        if (model[i].id == id) return &model[i];
    return NULL;
}

/* ---- expected statistics ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* PERCENTILE_CONT of sorted v[0..n) at p: PostgreSQL's float8_lerp between the two ranks. */
static double pct(const double *sorted, size_t n, double p)
{
    double pos = p * (double)(n - 1);
    size_t lo = (size_t)floor(pos), hi = (size_t)ceil(pos);
    return hi > lo ? sorted[lo] + (pos - (double)lo) * (sorted[hi] - sorted[lo]) : sorted[lo];
}

typedef struct stats {
    uint64_t count;
    double sum, min, max, p50, p95, p99;
} stats;

/* Statistics of v[0..n) as the engine computes them: sum, min and max in the given order. */
static stats describe(const double *v, size_t n)
{
    stats st = {.count = n, .min = v[0], .max = v[0]};
    for (size_t i = 0; i < n; i++) {
        st.sum += v[i];
        st.min = v[i] < st.min ? v[i] : st.min;
        st.max = v[i] > st.max ? v[i] : st.max;
    }
    double *sorted = malloc(n * sizeof *sorted);
    memcpy(sorted, v, n * sizeof *v);
    qsort(sorted, n, sizeof *sorted, cmp_double);
    st.p50 = pct(sorted, n, 0.5), st.p95 = pct(sorted, n, 0.95), st.p99 = pct(sorted, n, 0.99);
    free(sorted);
    return st;
}

/* ---- the fixture ---------------------------------------------------------------------------- */

static int fixture = 2; /* format2.tar.gz or format3.tar.gz: the same format2.lp, the same recipe */

static void extract(int format)
{
    fixture = format;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "tar -xzf '%s/format%d.tar.gz' -C '%s'", MT_FIXTURES, format, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    model_load();
}

static mt_engine *open_fixture(bool read_only)
{
    char why[2048] = "";
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.read_only = read_only;
    o.auto_seal = false; /* hour 03 stays in the head */
    o.outbox = true;
    o.why = why;
    o.why_cap = sizeof why;
    mt_engine *e = NULL;
    int rc = mt_engine_open(&o, &e);
    cr_assert_eq(rc, MT_OK, "open %s: %s %s", read_only ? "read-only" : "read-write",
                 mt_strerror(rc), why);
    return e;
}

/* Series keys, ids and types; every point of every series, exactly. */
static void check_points(mt_engine *e)
{
    bool seen[MAX_SERIES + 1] = {false};
    for (size_t i = 0; i < nmodel; i++) {
        ser *s = &model[i];
        mt_vtype t;
        cr_assert_eq(mt_engine_series_lookup(e, s->key, s->klen, &s->id, &t), MT_OK);
        cr_expect_eq(t, s->type, "%s.%s", s->meas, s->field);
        cr_assert(s->id >= 1 && s->id <= nmodel && !seen[s->id], "ids are dense: %u", s->id);
        seen[s->id] = true;
        char key[512];
        size_t kl;
        cr_assert_eq(mt_engine_series_key(e, s->id, key, sizeof key, &kl), MT_OK);
        cr_expect(kl == s->klen && !memcmp(key, s->key, kl), "the key of id %u", s->id);
        mt_scan *sc;
        cr_assert_eq(mt_scan_open(e, s->id, INT64_MIN, INT64_MAX, &sc), MT_OK);
        mt_points p;
        size_t n = 0;
        int rc;
        while ((rc = mt_scan_next(sc, &p)) == MT_OK) {
            cr_assert_eq(p.type, s->type);
            for (size_t k = 0; k < p.n; k++, n++) {
                cr_assert_lt(n, s->n, "%s.%s: more points than written", s->meas, s->field);
                const pt *w = &s->p[n];
                cr_expect_eq(p.ts[k], w->ts, "%s.%s point %zu", s->meas, s->field, n);
                if (s->type == MT_VT_STRING) {
                    cr_expect(MT_VAL_STR_LEN(p.vals[k]) == w->v.u &&
                                  !memcmp(p.strs + MT_VAL_STR_OFF(p.vals[k]), w->str, w->v.u),
                              "%s.%s point %zu: the string", s->meas, s->field, n);
                } else {
                    cr_expect_eq(p.vals[k].u, w->v.u, "%s.%s point %zu: %a vs %a (bits)", s->meas,
                                 s->field, n, p.vals[k].f, w->v.f);
                }
            }
        }
        cr_assert_eq(rc, MT_ENOTFOUND, "%s", mt_strerror(rc));
        mt_scan_close(sc);
        cr_expect_eq(n, s->n, "%s.%s: %zu points, %zu written", s->meas, s->field, n, s->n);
    }
}

static void expect_posting(mt_engine *e, mt_term_kind kind, const char *name, const char *value)
{
    uint32_t want[MAX_SERIES];
    size_t nw = 0;
    for (uint32_t id = 1; id <= nmodel; id++) {
        const ser *s = by_id(id);
        mt_series_parts parts;
        cr_assert_eq(mt_series_parse(s->key, s->klen, &parts), MT_OK);
        bool has = false;
        if (kind == MT_TERM_MEASUREMENT)
            has = parts.measurement.len == strlen(name) &&
                  !memcmp(parts.measurement.ptr, name, parts.measurement.len);
        else if (kind == MT_TERM_FIELD)
            has =
                parts.field.len == strlen(name) && !memcmp(parts.field.ptr, name, parts.field.len);
        else
            for (size_t k = 0; k < parts.ntags; k++)
                has |= parts.tag_keys[k].len == strlen(name) &&
                       !memcmp(parts.tag_keys[k].ptr, name, parts.tag_keys[k].len) &&
                       parts.tag_values[k].len == strlen(value) &&
                       !memcmp(parts.tag_values[k].ptr, value, parts.tag_values[k].len);
        if (has) want[nw++] = id;
    }
    uint32_t *ids = NULL;
    size_t n = 0;
    mt_name v = {value ? value : "", value ? strlen(value) : 0};
    cr_assert_eq(mt_engine_postings(e, kind, (mt_name){name, strlen(name)}, v, &ids, &n), MT_OK);
    cr_expect_eq(n, nw, "term %d %s=%s: %zu series, want %zu", kind, name, value ? value : "", n,
                 nw);
    for (size_t i = 0; i < n && i < nw; i++) cr_expect_eq(ids[i], want[i], "term %s", name);
    free(ids);
}

/* Every term of every series: its postings are exactly the series that carry it. */
static size_t check_postings(mt_engine *e)
{
    size_t pairs = 0;
    for (size_t i = 0; i < nmodel; i++) {
        mt_series_parts parts;
        cr_assert_eq(mt_series_parse(model[i].key, model[i].klen, &parts), MT_OK);
        char a[128], b[128];
        snprintf(a, sizeof a, "%.*s", (int)parts.measurement.len, parts.measurement.ptr);
        expect_posting(e, MT_TERM_MEASUREMENT, a, NULL);
        snprintf(a, sizeof a, "%.*s", (int)parts.field.len, parts.field.ptr);
        expect_posting(e, MT_TERM_FIELD, a, NULL);
        for (size_t k = 0; k < parts.ntags; k++) {
            snprintf(a, sizeof a, "%.*s", (int)parts.tag_keys[k].len, parts.tag_keys[k].ptr);
            snprintf(b, sizeof b, "%.*s", (int)parts.tag_values[k].len, parts.tag_values[k].ptr);
            expect_posting(e, MT_TERM_TAG, a, b);
        }
        pairs += 2 + parts.ntags; /* one (term, id) record each */
    }
    return pairs;
}

/* ---- chunks (the hour files' footers) ---------------------------------------------------- */

typedef struct chunk_seen {
    size_t n;
} chunk_seen;

static int on_chunk(void *ud, const mt_chunk_info *c)
{
    chunk_seen *cs = ud;
    cs->n++;
    const ser *s = by_id(c->id);
    cr_assert_not_null(s, "chunk of unknown id %u", c->id);
    size_t first, n = in_hour(s, c->hour, &first);
    cr_expect(sealed_hour(c->hour), "hour %lld", (long long)c->hour);
    cr_expect_eq(c->type, s->type);
    cr_expect_eq(c->count, n, "%s.%s hour %lld", s->meas, s->field, (long long)c->hour);
    cr_expect_eq(c->min_ts, s->p[first].ts);
    cr_expect_eq(c->max_ts, s->p[first + n - 1].ts);
    cr_expect_gt(c->bytes, fixture == 6 ? 9 : 20, "a chunk's header and a body");
    if (s->type == MT_VT_STRING) return 0;
    double sum = 0, min = INFINITY, max = -INFINITY; /* mt_summary_add, in time order */
    for (size_t i = first; i < first + n; i++) {
        double x = as_double(s->type, s->p[i].v);
        sum += x;
        if (x < min) min = x;
        if (x > max) max = x;
    }
    cr_expect_eq(c->sum, sum, "%s.%s hour %lld sum", s->meas, s->field, (long long)c->hour);
    cr_expect_eq(c->min, min);
    cr_expect_eq(c->max, max);
    cr_expect_eq(c->first, as_double(s->type, s->p[first].v));
    cr_expect_eq(c->last, as_double(s->type, s->p[first + n - 1].v));
    return 0;
}

static size_t sealed_chunks(void)
{
    size_t n = 0, first;
    for (size_t i = 0; i < nmodel; i++)
        for (int64_t h = HOUR0; h < HOUR0 + 3; h++) n += in_hour(&model[i], h, &first) > 0;
    return n;
}

/* ---- rollups -------------------------------------------------------------------------------- */

typedef struct roll_seen {
    size_t n;
} roll_seen;

static void expect_stats(const mt_rollup *r, const stats *w, bool exact_sum, const char *what)
{
    cr_expect_eq(r->count, w->count, "%s count", what);
    if (exact_sum)
        cr_expect_eq(r->sum, w->sum, "%s sum %a vs %a", what, r->sum, w->sum);
    else /* the engine adds a group's values in the order its selection left them */
        cr_expect(fabs(r->sum - w->sum) <= 1e-12 * fabs(w->sum), "%s sum %a vs %a", what, r->sum,
                  w->sum);
    cr_expect_eq(r->min, w->min, "%s min", what);
    cr_expect_eq(r->max, w->max, "%s max", what);
    cr_expect_eq(r->p50, w->p50, "%s p50 %a vs %a", what, r->p50, w->p50);
    cr_expect_eq(r->p95, w->p95, "%s p95 %a vs %a", what, r->p95, w->p95);
    cr_expect_eq(r->p99, w->p99, "%s p99 %a vs %a", what, r->p99, w->p99);
}

static int on_series_rollup(void *ud, const mt_rollup *r)
{
    roll_seen *rs = ud;
    rs->n++;
    const ser *s = by_id(r->id);
    cr_assert_not_null(s);
    cr_expect_neq(s->type, MT_VT_STRING, "no rollups of strings");
    cr_expect(sealed_hour(r->hour));
    size_t first, n = in_hour(s, r->hour, &first);
    cr_assert_gt(n, 0);
    double v[256];
    for (size_t i = 0; i < n; i++) v[i] = as_double(s->type, s->p[first + i].v);
    stats w = describe(v, n);
    char what[128];
    snprintf(what, sizeof what, "series %s.%s hour %lld", s->meas, s->field, (long long)r->hour);
    expect_stats(r, &w, true, what);
    cr_expect_eq(r->sketch_len, 0, "series rows carry no sketch");
    return 0;
}

/* The sketch's bins as docs/format.md describes them, against the values' own bins. */
static void expect_sketch(const mt_rollup *r, const double *v, size_t n, const char *what)
{
    const double gamma = (1 + MT_SKETCH_ALPHA) / (1 - MT_SKETCH_ALPHA), lg = log(gamma);
    int64_t want_pos[256], want_neg[256];
    uint64_t zeros = 0;
    size_t np = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] > 0)
            want_pos[np++] = (int64_t)ceil(log(v[i]) / lg);
        else if (v[i] < 0)
            want_neg[nn++] = (int64_t)ceil(log(-v[i]) / lg);
        else
            zeros++;
    }
    mt_rd rd = {r->sketch, (const uint8_t *)r->sketch + r->sketch_len};
    uint8_t version;
    uint64_t lo, hi, zero;
    cr_assert_eq(mt_rd_u8(&rd, &version), MT_OK);
    cr_expect_eq(version, 1, "%s: sketch version", what);
    cr_assert_eq(mt_rd_u64le(&rd, &lo), MT_OK);
    cr_assert_eq(mt_rd_u64le(&rd, &hi), MT_OK);
    double mn, mx;
    memcpy(&mn, &lo, 8), memcpy(&mx, &hi, 8);
    cr_expect_eq(mn, r->min, "%s: sketch min", what);
    cr_expect_eq(mx, r->max, "%s: sketch max", what);
    cr_assert_eq(mt_rd_uvarint(&rd, &zero), MT_OK);
    cr_expect_eq(zero, zeros, "%s: zeros", what);
    for (int store = 0; store < 2; store++) {
        const int64_t *want = store ? want_neg : want_pos;
        size_t nwant = store ? nn : np;
        uint64_t bins, d, c, total = 0;
        int64_t idx = 0;
        cr_assert_eq(mt_rd_uvarint(&rd, &bins), MT_OK);
        for (uint64_t b = 0; b < bins; b++) {
            cr_assert_eq(mt_rd_uvarint(&rd, &d), MT_OK);
            cr_assert_eq(mt_rd_uvarint(&rd, &c), MT_OK);
            idx += mt_unzigzag(d);
            size_t in_bin = 0;
            for (size_t i = 0; i < nwant; i++) in_bin += want[i] == idx;
            cr_expect_eq(c, in_bin, "%s: store %d bin %lld", what, store, (long long)idx);
            total += c;
        }
        cr_expect_eq(total, nwant, "%s: store %d holds every value", what, store);
    }
    cr_expect_eq(mt_rd_left(&rd), 0, "%s: nothing after the negative store", what);
    /* and the engine's own reader agrees */
    mt_sketch *sk;
    cr_assert_eq(mt_sketch_new(&sk), MT_OK);
    cr_assert_eq(mt_sketch_decode_merge(sk, r->sketch, r->sketch_len), MT_OK);
    cr_expect_eq(mt_sketch_count(sk), n);
    double q;
    cr_assert_eq(mt_sketch_quantile(sk, 1, &q), MT_OK);
    cr_expect_eq(q, r->max);
    mt_sketch_free(sk);
}

static int on_group_rollup(void *ud, const mt_rollup *r)
{
    roll_seen *rs = ud;
    rs->n++;
    cr_expect_eq(r->id, 0);
    cr_expect(sealed_hour(r->hour));
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)r->business_id.len, r->business_id.ptr);
    char what[400];
    snprintf(what, sizeof what, "group %s/%.*s/%.*s hour %lld", key, (int)r->measurement.len,
             r->measurement.ptr, (int)r->field.len, r->field.ptr, (long long)r->hour);
    /* the group's values: its series by id, each in time order */
    double v[1024];
    size_t n = 0;
    for (uint32_t id = 1; id <= nmodel; id++) {
        const ser *s = by_id(id);
        if (s->type == MT_VT_STRING || strcmp(s->bid, key) ||
            strlen(s->meas) != r->measurement.len ||
            memcmp(s->meas, r->measurement.ptr, r->measurement.len) ||
            strlen(s->field) != r->field.len || memcmp(s->field, r->field.ptr, r->field.len))
            continue;
        size_t first, k = in_hour(s, r->hour, &first);
        for (size_t i = 0; i < k; i++) v[n++] = as_double(s->type, s->p[first + i].v);
    }
    cr_assert_gt(n, 0, "%s: no such group in format2.lp", what);
    size_t klen = strlen(key) + 1 + r->measurement.len + 1 + r->field.len;
    cr_expect_eq(r->group_len, klen, "%s: business_id 0 measurement 0 field", what);
    stats w = describe(v, n);
    expect_stats(r, &w, false, what);
    cr_assert_gt(r->sketch_len, 0, "%s: a sketch", what);
    expect_sketch(r, v, n, what);
    return 0;
}

static size_t numeric_series_hours(bool groups)
{
    size_t n = 0, first;
    for (int64_t h = HOUR0; h < HOUR0 + 3; h++) {
        for (size_t i = 0; i < nmodel; i++) {
            const ser *s = &model[i];
            if (s->type == MT_VT_STRING || !in_hour(s, h, &first)) continue;
            bool again = false; /* groups: count each (tenant, measurement, field) once */
            for (size_t j = 0; groups && j < i; j++)
                again |= model[j].type != MT_VT_STRING && in_hour(&model[j], h, &first) &&
                         !strcmp(model[j].bid, s->bid) && !strcmp(model[j].meas, s->meas) &&
                         !strcmp(model[j].field, s->field);
            n += !again;
        }
    }
    return n;
}

/* ---- outbox and state --------------------------------------------------------------------- */

typedef struct box_seen {
    size_t n;
    uint64_t seq[8];
    int64_t hour[8];
} box_seen;

static int on_outbox(void *ud, const mt_outbox_entry *en)
{
    box_seen *b = ud;
    cr_assert_lt(b->n, 8);
    cr_expect_eq(en->kind, 'H', "a sealed hour");
    cr_assert_eq(en->len, 8, "the hour, i64 LE");
    b->seq[b->n] = en->seq;
    b->hour[b->n] = (int64_t)mt_get_le(en->data, 8);
    /* queued when the fixture was made (December 2026), by the wall clock */
    cr_expect(en->queued_ns > T0 && en->queued_ns < ((int64_t)time(NULL) + 86400) * S,
              "queued at %lld", (long long)en->queued_ns);
    b->n++;
    return 0;
}

static int on_state(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k, (void)kl, (void)v, (void)vl;
    (*(size_t *)ud)++;
    return 0;
}

/* ---- everything the engine answers ------------------------------------------------------------
 */

static size_t head_points(void)
{
    size_t n = 0, first;
    for (size_t i = 0; i < nmodel; i++) n += in_hour(&model[i], HOUR0 + 3, &first);
    return n;
}

static void check_engine(mt_engine *e)
{
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.series, nmodel);
    cr_expect_eq(st.sealed_hours, 3, "hours 00, 01, 02");
    cr_expect_eq(st.head_points, head_points(), "hour 03 in the head: %llu",
                 (unsigned long long)st.head_points);
    cr_expect_eq(st.head_points, 33);
    cr_expect_eq(st.hours_unreadable, 0);
    cr_expect_eq(st.head_records_skipped, 0);
    check_points(e);
    check_postings(e);

    chunk_seen cs = {0};
    size_t unreadable = 0;
    cr_assert_eq(mt_engine_chunks(e, on_chunk, &cs, &unreadable), MT_OK);
    cr_expect_eq(unreadable, 0);
    cr_expect_eq(cs.n, sealed_chunks(), "one chunk per series-hour: %zu", cs.n);

    roll_seen rs = {0};
    cr_assert_eq(mt_engine_rollups(e, INT32_MIN, INT32_MAX, false, on_series_rollup, &rs), MT_OK);
    cr_expect_eq(rs.n, numeric_series_hours(false), "series rows: %zu", rs.n);
    roll_seen rg = {0};
    cr_assert_eq(mt_engine_rollups(e, INT32_MIN, INT32_MAX, true, on_group_rollup, &rg), MT_OK);
    cr_expect_eq(rg.n, numeric_series_hours(true), "group rows: %zu", rg.n);

    /* the two hours metrond merged with late points, in the order it sealed them */
    box_seen b = {0};
    cr_assert_eq(mt_engine_outbox_peek(e, 100, on_outbox, &b), MT_OK);
    cr_expect_eq(b.n, 2);
    cr_expect_eq(b.hour[0], HOUR0);
    cr_expect_eq(b.hour[1], HOUR0 + 1);
    cr_expect_lt(b.seq[0], b.seq[1]);
    size_t nstate = 0;
    cr_assert_eq(mt_engine_state_scan(e, "", 0, on_state, &nstate), MT_OK);
    cr_expect_eq(nstate, 0);
}

/* ---- by hand: the bytes as docs/format.md describes them ---------------------------------- */

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len ? (size_t)len : 1);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static uint8_t *unzstd(const uint8_t *z, size_t zn, size_t raw_len)
{
    uint8_t *raw = malloc(raw_len ? raw_len : 1);
    size_t got = ZSTD_decompress(raw, raw_len, z, zn);
    cr_assert(!ZSTD_isError(got) && got == raw_len, "a zstd frame of %zu bytes", raw_len);
    return raw;
}

static uint64_t uv(mt_rd *r)
{
    uint64_t v;
    cr_assert_eq(mt_rd_uvarint(r, &v), MT_OK);
    return v;
}

static double f64(mt_rd *r)
{
    uint64_t b;
    cr_assert_eq(mt_rd_u64le(r, &b), MT_OK);
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* What the three hour files (and the head and rollups) hold between them: each encoding the
   fixture has is met at least once, so that a change to any of them fails. */
typedef struct coverage {
    size_t packed, plain, ts_regular, ts_rice, ts_scaled, float_decimal, float_xor,
        float_exceptions, int_delta, int_dod, bools, strings;
    size_t sum_decimal, sum_raw, sum_corrected;                       /* footer summaries (v3) */
    size_t roll_decimal, roll_shifted, roll_raw, sk_compact, sk_verb; /* rollup values (v2) */
    size_t head_decimal, head_raw;                                    /* head floats (v2) */
} coverage;

/* 10^e as a double: exact for e <= 22, and the table mt_decimal_value divides by. */
static double pow10d(int e)
{
    double p = 1;
    for (int i = 0; i < e; i++) p *= 10;
    return p;
}

static uint64_t pow10u(int k)
{
    uint64_t p = 1;
    for (int i = 0; i < k; i++) p *= 10;
    return p;
}

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* v as m / 10^e exactly, |m| < 2^53 (docs/format.md, "float" mode 0): the writer's test. */
static bool decimal_at(double v, int e, int64_t *m)
{
    double s = v * pow10d(e);
    if (!(fabs(s) < 9007199254740992.0)) return false;
    *m = (int64_t)llrint(s);
    return bits_of((double)*m / pow10d(e)) == bits_of(v);
}

/* The double's bits as an int64 in the order of the doubles (-0.0 is -1, +0.0 is 0). */
static int64_t ord(double d)
{
    uint64_t b = bits_of(d);
    return b >> 63 ? -(int64_t)(b & INT64_MAX) - 1 : (int64_t)b;
}

/* The double whose ordered bit pattern is that of m / 10^e plus c (docs/format.md, footer). */
static double near_value(int64_t m, int e, int64_t c)
{
    int64_t o = (int64_t)((uint64_t)ord((double)m / pow10d(e)) + (uint64_t)c);
    uint64_t b = o < 0 ? (uint64_t)(-(o + 1)) | 1ull << 63 : (uint64_t)o;
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* v within 2^32 ordered steps of m / 10^e, m = llrint(v 10^e), |v 10^e| < 2^62 (footer sums). */
static bool near_at(double v, int e)
{
    double x = v * pow10d(e);
    if (!(fabs(x) < 4611686018427387904.0)) return false;
    int64_t c;
    return !__builtin_sub_overflow(ord(v), ord((double)llrint(x) / pow10d(e)), &c) &&
           c <= (int64_t)1 << 32 && c >= -((int64_t)1 << 32);
}

static int64_t sv(mt_rd *r)
{
    int64_t v;
    cr_assert_eq(mt_rd_svarint(r, &v), MT_OK);
    return v;
}

static uint8_t u8(mt_rd *r)
{
    uint8_t v;
    cr_assert_eq(mt_rd_u8(r, &v), MT_OK);
    return v;
}

/* Bits least significant first within each byte, bytes in order (a Rice block's). */
typedef struct bitrd {
    const uint8_t *p;
    uint64_t at, n;
} bitrd;

static unsigned bit(bitrd *b)
{
    cr_assert_lt(b->at, b->n, "a Rice block past its bytes");
    unsigned v = b->p[b->at / 8] >> (b->at % 8) & 1u;
    b->at++;
    return v;
}

/* A Rice block of n values (docs/format.md, "Rice block"), bit by bit. */
static void rice(mt_rd *r, uint64_t *z, size_t n)
{
    unsigned k = u8(r);
    cr_assert_leq(k, 63, "Rice k");
    bitrd b = {r->p, 0, (uint64_t)mt_rd_left(r) * 8};
    for (size_t i = 0; i < n; i++) {
        uint64_t q = 0;
        while (q < 31 && bit(&b)) q++;   /* the zero-bit that ends a run is read here too */
        unsigned wide = q < 31 ? k : 64; /* 31 one-bits: the 64 bits of z, no zero-bit */
        uint64_t low = 0;
        for (unsigned x = 0; x < wide; x++) low |= (uint64_t)bit(&b) << x;
        z[i] = q < 31 ? q << k | low : low;
    }
    while (b.at % 8) cr_expect_eq(bit(&b), 0, "a Rice block's padding bits");
    r->p += b.at / 8;
}

/* An integer stream of n values (docs/format.md, "Integer stream"); returns its mode. */
static uint8_t int_stream(mt_rd *r, uint64_t *v, size_t n)
{
    uint8_t mode = u8(r);
    cr_assert_leq(mode, 1, "integer stream mode");
    uint64_t g = uv(r);
    cr_assert_geq(g, 1, "gcd");
    v[0] = (uint64_t)sv(r);
    if (n < 2) return mode;
    uint64_t *z = malloc(n * sizeof *z);
    if (mode == 0) {
        rice(r, z, n - 1);
        for (size_t i = 1; i < n; i++) v[i] = v[i - 1] + (uint64_t)mt_unzigzag(z[i - 1]) * g;
    } else {
        cr_assert_geq(n, 3, "delta-of-delta needs 3 values");
        uint64_t q = (uint64_t)sv(r);
        rice(r, z, n - 2);
        v[1] = v[0] + q * g;
        for (size_t i = 2; i < n; i++) {
            q += (uint64_t)mt_unzigzag(z[i - 2]);
            v[i] = v[i - 1] + q * g;
        }
    }
    free(z);
    return mode;
}

/* A chunk's body (docs/format.md, "Body"), every field, against the points written. */
static void check_body(const uint8_t *body, size_t blen, int version, const ser *s, size_t first,
                       size_t n, coverage *cov)
{
    mt_rd r = {body, body + blen};
    cr_expect_eq(u8(&r), s->type, "the body's type");
    cr_assert_eq(uv(&r), n, "the body's n");
    const pt *w = &s->p[first];
    /* timestamps: mode | k << 1, in units of 10^k */
    uint8_t tb = u8(&r);
    unsigned mode = tb & 1, k = tb >> 1;
    cr_assert_leq(k, 18, "timestamp k");
    if (version == 1) cr_expect_eq(k, 0, "version 1 chunks: stamps in ns");
    const uint64_t unit = pow10u((int)k);
    uint64_t *ts = malloc(n * sizeof *ts), *m = malloc(n * sizeof *m);
    ts[0] = (uint64_t)sv(&r) * unit;
    uint64_t step = n > 1 ? (uint64_t)sv(&r) * unit : 0;
    if (n > 1) ts[1] = ts[0] + step;
    if (mode == 0) {
        cov->ts_regular++;
        for (size_t i = 2; i < n; i++) ts[i] = ts[i - 1] + step;
    } else {
        cov->ts_rice++;
        cr_assert_geq(n, 3, "Rice stamps need 3 points");
        rice(&r, m, n - 2);
        for (size_t i = 2; i < n; i++) {
            step += (uint64_t)mt_unzigzag(m[i - 2]) * unit;
            ts[i] = ts[i - 1] + step;
        }
    }
    cov->ts_scaled += k > 0;
    for (size_t i = 0; i < n; i++)
        cr_expect_eq((int64_t)ts[i], w[i].ts, "%s.%s stamp %zu", s->meas, s->field, i);
    if (version >= 2) { /* the writer's k: the largest power of ten dividing ts0 and every step */
        bool finer = k < 18 && (uint64_t)w[0].ts % (unit * 10) == 0;
        for (size_t i = 1; i < n && finer; i++)
            finer = (uint64_t)(w[i].ts - w[i - 1].ts) % (unit * 10) == 0;
        cr_expect(!finer, "%s.%s: k %u, but 10^%u divides every stamp", s->meas, s->field, k,
                  k + 1);
    }
    /* values */
    switch (s->type) {
    case MT_VT_FLOAT:
        if (u8(&r) == 1) {
            cov->float_xor++;
            uint64_t last = 0;
            for (size_t i = 0; i < n; i++) {
                uint64_t x;
                cr_assert_eq(mt_rd_u64le(&r, &x), MT_OK);
                m[i] = last ^= x;
            }
        } else {
            cov->float_decimal++;
            uint8_t e = u8(&r);
            cr_assert_leq(e, 15, "decimal e");
            uint64_t nexc = uv(&r), at = 0, bits[64];
            size_t idx[64];
            cr_assert(nexc <= n && nexc < 64, "exceptions: %llu", (unsigned long long)nexc);
            cr_expect_leq(nexc, n / 8, "more than n/8 exceptions: XOR instead");
            for (uint64_t x = 0; x < nexc; x++) {
                uint64_t gap = uv(&r);
                cr_expect(x == 0 || gap > 0, "exception gaps > 0");
                at += gap;
                cr_assert_lt(at, n);
                idx[x] = at;
                cr_assert_eq(mt_rd_u64le(&r, &bits[x]), MT_OK);
            }
            int_stream(&r, m, n);
            for (uint64_t x = 0; x < nexc; x++) {
                /* no e <= 15 holds an exception; the writer stores its m as the previous
                   value's (0 before the first) to keep steps small */
                int64_t mm;
                for (int ee = 0; ee <= 15; ee++)
                    cr_expect(!decimal_at(w[idx[x]].v.f, ee, &mm), "%s.%s exception %zu", s->meas,
                              s->field, idx[x]);
                cr_expect_eq(m[idx[x]], idx[x] ? m[idx[x] - 1] : 0, "an exception's m");
            }
            if (e > 0) { /* e is the smallest at which every other value is exact */
                bool all = true;
                for (size_t i = 0; i < n; i++) {
                    bool exc = false;
                    int64_t mm;
                    for (uint64_t x = 0; x < nexc; x++) exc |= idx[x] == i;
                    all &= exc || decimal_at(w[i].v.f, e - 1, &mm);
                }
                cr_expect(!all, "%s.%s: e %u, but %u would do", s->meas, s->field, e, e - 1);
            }
            for (size_t i = 0; i < n; i++) m[i] = bits_of((double)(int64_t)m[i] / pow10d(e));
            for (uint64_t x = 0; x < nexc; x++) m[idx[x]] = bits[x];
            cov->float_exceptions += nexc;
        }
        break;
    case MT_VT_INT:
    case MT_VT_UINT: {
        uint8_t im = int_stream(&r, m, n);
        if (n > 2) *(im ? &cov->int_dod : &cov->int_delta) += 1;
        break;
    }
    case MT_VT_BOOL:
        cov->bools++;
        cr_assert_geq(mt_rd_left(&r), (n + 7) / 8);
        for (size_t i = 0; i < n; i++) m[i] = r.p[i / 8] >> (i % 8) & 1;
        if (n % 8) cr_expect_eq(r.p[n / 8] >> (n % 8), 0, "unused bits zero");
        r.p += (n + 7) / 8;
        break;
    case MT_VT_STRING:
        cov->strings++;
        for (size_t i = 0; i < n; i++) {
            uint64_t l = uv(&r);
            cr_assert_leq(l, mt_rd_left(&r));
            cr_expect(l == w[i].v.u && !memcmp(r.p, w[i].str, l), "%s.%s string %zu", s->meas,
                      s->field, i);
            r.p += l;
        }
        break;
    default: cr_assert_fail("type %d", s->type);
    }
    for (size_t i = 0; s->type != MT_VT_STRING && i < n; i++)
        cr_expect_eq(m[i], w[i].v.u, "%s.%s value %zu: bits %llx, written %llx", s->meas, s->field,
                     i, (unsigned long long)m[i], (unsigned long long)w[i].v.u);
    cr_expect_eq(mt_rd_left(&r), 0, "%s.%s: the body consumed exactly", s->meas, s->field);
    free(ts);
    free(m);
}

/* One chunk at c[0..len): header, checksum, and its body by hand. */
static void check_chunk(const uint8_t *c, size_t len, const ser *s, size_t first, size_t n,
                        coverage *cov)
{
    cr_assert_gt(len, 8);
    cr_expect(c[0] == 'M' && c[1] == 'C', "chunk magic");
    const int version = fixture == 6 ? 2 : 1; /* every chunk as the build that made it wrote */
    cr_assert_eq(c[2], version, "chunk version");
    cr_expect_eq(c[3] & 0x0F, s->type);
    cr_expect_eq(c[3] & 0x70, 0, "no other flag");
    const bool packed = c[3] & 0x80;
    const uint8_t *payload;
    size_t plen, blen, sum_at;
    if (version == 1) {
        cr_assert_gt(len, 20);
        cr_expect_eq(mt_get_le(c + 4, 4), n, "points");
        plen = (uint32_t)mt_get_le(c + 8, 4), blen = (uint32_t)mt_get_le(c + 12, 4);
        cr_assert_eq(plen, len - 20, "payload length");
        sum_at = 16, payload = c + 20;
    } else {
        mt_rd h = {c + 4, c + len};
        cr_expect_eq(uv(&h), n, "points");
        blen = packed ? uv(&h) : 0;
        sum_at = (size_t)(h.p - c);
        cr_assert_gt(len, sum_at + 4);
        payload = c + sum_at + 4, plen = len - sum_at - 4;
        if (!packed) blen = plen;
    }
    uint32_t sum = (uint32_t)mt_hash64_seeded(c, sum_at, mt_hash64(payload, plen));
    cr_expect_eq(mt_get_le(c + sum_at, 4), sum, "chunk checksum");
    const uint8_t *body = payload;
    uint8_t *unpacked = NULL;
    if (packed) {
        body = unpacked = unzstd(payload, plen, blen);
        cov->packed++;
        cr_expect_lt(plen, blen - blen / 16, "packed only when that saves 1/16");
    } else {
        cr_expect_eq(blen, plen);
        cov->plain++;
    }
    check_body(body, blen, version, s, first, n, cov);
    free(unpacked);
    /* and the codec decodes the bytes to the points written */
    mt_decoder *d;
    cr_assert_eq(mt_decoder_new(&d), MT_OK);
    mt_points p;
    cr_assert_eq(mt_decoder_decode(d, c, len, &p), MT_OK);
    cr_assert_eq(p.n, n);
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(p.ts[i], s->p[first + i].ts);
        if (s->type == MT_VT_STRING)
            cr_expect(MT_VAL_STR_LEN(p.vals[i]) == s->p[first + i].v.u &&
                      !memcmp(p.strs + MT_VAL_STR_OFF(p.vals[i]), s->p[first + i].str,
                              s->p[first + i].v.u));
        else
            cr_expect_eq(p.vals[i].u, s->p[first + i].v.u);
    }
    mt_decoder_free(d);
}

/*
 * A footer's near-decimal summary (hour file version 3): sum, min, max, first, last
 * against want[], bit for bit, and e as the writer chooses it.
 */
static void check_summary(mt_rd *r, const double want[5], const char *path, const ser *s,
                          coverage *cov)
{
    static const char *const names[5] = {"sum", "min", "max", "first", "last"};
    int want_e = 0; /* the smallest e at which min, max, first and last are exact decimals */
    for (int64_t m; want_e <= 15; want_e++) {
        bool all = true;
        for (int k = 1; k < 5; k++) all &= decimal_at(want[k], want_e, &m);
        if (all) break;
    }
    uint8_t e = u8(r);
    double got[5];
    if (e == 0xFF) {
        cov->sum_raw++;
        for (int k = 0; k < 5; k++) got[k] = f64(r);
    } else {
        cov->sum_decimal++;
        cr_assert_leq(e, 15, "%s: summary e", path);
        cr_expect_eq(e, want_e, "%s: %s.%s summary e", path, s->meas, s->field);
        uint8_t mask = u8(r);
        cr_expect_eq(mask & ~1u, 0, "%s: min, max, first and last exact: no correction", path);
        int64_t m[5], c[5] = {0};
        m[1] = sv(r);
        for (int k = 2; k < 5; k++) m[k] = (int64_t)((uint64_t)m[1] + (uint64_t)sv(r));
        m[0] = sv(r);
        for (int k = 0; k < 5; k++)
            if (mask >> k & 1) c[k] = sv(r);
        cov->sum_corrected += mask != 0;
        for (int k = 0; k < 5; k++) got[k] = near_value(m[k], e, c[k]);
    }
    /* raw exactly when no e suits the four, or the sum is not near a decimal at it */
    cr_expect_eq(e == 0xFF, want_e > 15 || !near_at(want[0], want_e), "%s: %s.%s summary e %u",
                 path, s->meas, s->field, e);
    for (int k = 0; k < 5; k++)
        cr_expect_eq(bits_of(got[k]), bits_of(want[k]), "%s: %s.%s %s %a, want %a", path, s->meas,
                     s->field, names[k], got[k], want[k]);
}

/* An hour file: header, chunks, keys frame, footer, trailer, each checksum. */
static void check_hour_file(const char *path, int64_t hour, uint64_t bytes, coverage *cov)
{
    size_t size;
    uint8_t *f = slurp(path, &size);
    cr_assert_eq(size, bytes, "%s: the size hours records", path);
    cr_assert_gt(size, 48);
    const int version = fixture == 6 ? 3 : 2; /* as the build that made the fixture wrote */
    cr_expect(!memcmp(f, "MTHF", 4) && f[4] == version && !f[5] && !f[6] && !f[7], "%s: header",
              path);
    cr_expect_eq((int64_t)mt_get_le(f + 8, 8), hour);
    const uint8_t *t = f + size - 32;
    uint64_t foff = mt_get_le(t, 8);
    uint32_t zn = (uint32_t)mt_get_le(t + 8, 4), raw_len = (uint32_t)mt_get_le(t + 12, 4);
    uint32_t count = (uint32_t)mt_get_le(t + 16, 4);
    cr_expect_eq(mt_get_le(t + 24, 4), 0);
    cr_expect(!memcmp(t + 28, "MTHE", 4), "%s: trailer magic", path);
    cr_assert_eq(foff + zn + 32, size, "%s: the footer ends at the trailer", path);
    cr_expect_eq((uint32_t)mt_hash64(f + foff, zn), (uint32_t)mt_get_le(t + 20, 4), "footer sum");
    uint8_t *raw = unzstd(f + foff, zn, raw_len);
    mt_rd r = {raw, raw + raw_len};
    uint64_t kzn = uv(&r);
    uint32_t ksum;
    cr_assert_eq(mt_rd_u32le(&r, &ksum), MT_OK);
    uint64_t kraw = uv(&r);
    const uint8_t *kz = f + foff - kzn;
    cr_expect_eq((uint32_t)mt_hash64(kz, kzn), ksum, "%s: keys frame sum", path);
    uint8_t *keys = unzstd(kz, kzn, kraw);
    mt_rd kr = {keys, keys + kraw};
    uint64_t off = 16, id = 0;
    size_t want = 0, first;
    for (size_t i = 0; i < nmodel; i++) want += in_hour(&model[i], hour, &first) > 0;
    cr_expect_eq(count, want, "%s: a chunk per series with points in the hour", path);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t gap = uv(&r);
        cr_expect_gt(gap, 0, "ids ascend");
        id += gap;
        const ser *s = by_id((uint32_t)id);
        cr_assert_not_null(s, "%s: entry %u, id %llu", path, i, (unsigned long long)id);
        uint8_t type;
        cr_assert_eq(mt_rd_u8(&r, &type), MT_OK);
        cr_expect_eq(type, s->type);
        uint64_t len = uv(&r), n = uv(&r), min_off, span;
        size_t nn = in_hour(s, hour, &first);
        cr_expect_eq(n, nn, "%s: %s.%s points", path, s->meas, s->field);
        const int64_t want_off = s->p[first].ts - hour * 3600 * S,
                      want_span = s->p[first + nn - 1].ts - s->p[first].ts;
        if (version >= 3) { /* u8 k, then both in units of 10^k: k the largest that divides both */
            uint8_t k = u8(&r);
            cr_assert_leq(k, 18);
            min_off = uv(&r) * pow10u(k), span = uv(&r) * pow10u(k);
            const uint64_t finer = pow10u(k + 1);
            cr_expect(k == 18 || want_off % (int64_t)finer || want_span % (int64_t)finer,
                      "%s: %s.%s times in 10^%u, but 10^%u divides both", path, s->meas, s->field,
                      k, k + 1);
        } else {
            min_off = uv(&r), span = uv(&r);
        }
        cr_expect_eq((int64_t)min_off, want_off);
        cr_expect_eq((int64_t)span, want_span);
        if (type != MT_VT_STRING) {
            double sum = 0, min = INFINITY, max = -INFINITY;
            for (size_t k = first; k < first + nn; k++) {
                double x = as_double(s->type, s->p[k].v);
                sum += x;
                min = x < min ? x : min;
                max = x > max ? x : max;
            }
            const double sums[5] = {sum, min, max, as_double(s->type, s->p[first].v),
                                    as_double(s->type, s->p[first + nn - 1].v)};
            if (version >= 3)
                check_summary(&r, sums, path, s, cov);
            else
                for (int k = 0; k < 5; k++) cr_expect_eq(f64(&r), sums[k]);
        }
        uint64_t kl = uv(&kr);
        cr_assert_leq(kl, mt_rd_left(&kr));
        cr_expect(kl == s->klen && !memcmp(kr.p, s->key, kl), "%s: key of entry %u", path, i);
        kr.p += kl;
        check_chunk(f + off, len, s, first, nn, cov);
        off += len;
    }
    cr_expect_eq(mt_rd_left(&r), 0, "%s: footer fully read", path);
    cr_expect_eq(mt_rd_left(&kr), 0, "%s: keys fully read", path);
    cr_expect_eq(off, foff - kzn, "%s: chunks end where the keys frame starts", path);
    free(keys);
    free(raw);
    free(f);
}

typedef struct head_pt {
    uint32_t id;
    int64_t ts;
    mt_val v;
    const uint8_t *str;
} head_pt;

static int by_id_ts(const void *a, const void *b)
{
    const head_pt *x = a, *y = b;
    if (x->id != y->id) return (x->id > y->id) - (x->id < y->id);
    return (x->ts > y->ts) - (x->ts < y->ts);
}

/* A head record: header, checksum, and its points appended to pts. */
static uint8_t *decode_head(const uint8_t *v, size_t vl, head_pt *pts, size_t *npts, size_t cap,
                            coverage *cov)
{
    cr_assert_gt(vl, 9);
    const int version = fixture == 6 ? 2 : 1; /* as the build that made the fixture wrote */
    cr_assert_eq(v[0], version, "head record version");
    uint32_t raw_len = (uint32_t)mt_get_le(v + 1, 4);
    cr_expect_eq((uint32_t)mt_hash64(v + 9, vl - 9), (uint32_t)mt_get_le(v + 5, 4), "record sum");
    uint8_t *raw = unzstd(v + 9, vl - 9, raw_len);
    mt_rd r = {raw, raw + raw_len};
    uint64_t n = uv(&r);
    int64_t ts = 0, id = 0;
    for (uint64_t i = 0; i < n; i++) {
        cr_assert_lt(*npts, cap);
        head_pt *p = &pts[(*npts)++];
        id = version == 1 ? (int64_t)uv(&r) : id + sv(&r); /* version 2: the delta */
        cr_assert(id >= 1 && id <= UINT32_MAX, "head point id %lld", (long long)id);
        p->id = (uint32_t)id;
        ts += sv(&r);
        p->ts = ts;
        const ser *s = by_id(p->id);
        cr_assert_not_null(s);
        p->str = NULL;
        p->v.u = 0;
        switch (s->type) {
        case MT_VT_FLOAT:
            if (version == 1) {
                cr_assert_eq(mt_rd_u64le(&r, &p->v.u), MT_OK);
                break;
            }
            /* a tag: zigzag(m) << 5 | e for m / 10^e, or 16 and the 8 bytes */
            uint64_t tag = uv(&r);
            if ((tag & 31) <= 15) {
                cov->head_decimal++;
                p->v.f = (double)mt_unzigzag(tag >> 5) / pow10d((int)(tag & 31));
            } else {
                cr_assert_eq(tag, 16, "a float tag: decimal or 16");
                cov->head_raw++;
                cr_assert_eq(mt_rd_u64le(&r, &p->v.u), MT_OK);
            }
            break;
        case MT_VT_INT: p->v.i = sv(&r); break;
        case MT_VT_UINT: p->v.u = uv(&r); break;
        case MT_VT_BOOL:
            p->v.u = u8(&r);
            cr_expect_leq(p->v.u, 1, "a bool: 0 or 1");
            break;
        case MT_VT_STRING:
            p->v.u = uv(&r);
            cr_assert_leq(p->v.u, mt_rd_left(&r));
            p->str = r.p;
            r.p += p->v.u;
            break;
        }
    }
    cr_expect_eq(mt_rd_left(&r), 0, "head record fully read");
    return raw; /* the strings point into it */
}

/* The values of a rollup row: a series' in the hour, or a group's (its series by id). */
static size_t row_values(uint8_t kind, const ser *s, const char *key, size_t klen, int64_t hour,
                         double *v, size_t cap)
{
    size_t n = 0, first;
    for (uint32_t id = 1; id <= nmodel; id++) {
        const ser *x = by_id(id);
        if (kind == 'S' && x != s) continue;
        if (kind == 'G') { /* business_id 0 measurement 0 field */
            char want[128];
            int wl = snprintf(want, sizeof want, "%s%c%s%c%s", x->bid, 0, x->meas, 0, x->field);
            if (x->type == MT_VT_STRING || (size_t)wl != klen || memcmp(want, key, klen)) continue;
        }
        size_t k = in_hour(x, hour, &first);
        cr_assert_leq(n + k, cap);
        for (size_t i = 0; i < k; i++) v[n++] = as_double(x->type, x->p[first + i].v);
    }
    return n;
}

/*
 * The compact values of n rows (rollup value version 2, docs/format.md): every column by hand,
 * each row's doubles against the model, each group's sketch rebuilt and checked bin by bin.
 */
static void check_compact(mt_rd *r, uint8_t kind, int64_t hour, uint64_t n, const ser **rows,
                          char (*keys)[128], const size_t *klens, coverage *cov)
{
    const int ncol = kind == 'G' ? 18 : 13;
    mt_rd c[18];
    for (int k = 0; k < ncol; k++) {
        uint64_t len = uv(r);
        cr_assert_leq(len, mt_rd_left(r), "column %d", k);
        c[k] = (mt_rd){r->p, r->p + len};
        r->p += len;
    }
    static const double frac[3] = {0.5, 0.95, 0.99};
    for (uint64_t i = 0; i < n; i++) {
        double v[1024];
        size_t nv =
            row_values(kind, kind == 'S' ? rows[i] : NULL, keys[i], klens[i], hour, v, 1024);
        cr_assert_gt(nv, 0, "a row of values");
        stats w = describe(v, nv);
        double sorted[1024];
        memcpy(sorted, v, nv * sizeof *v);
        qsort(sorted, nv, sizeof *sorted, cmp_double);
        char what[200];
        snprintf(what, sizeof what, "%c row %llu hour %lld", kind, (unsigned long long)i,
                 (long long)hour);

        uint64_t count = uv(&c[0]);
        cr_expect_eq(count, nv, "%s: count", what);
        uint8_t mode = u8(&c[1]);
        double got[6]; /* sum, min, max, p50, p95, p99 */
        if (mode == 0xFF) {
            cov->roll_raw++;
            for (int k = 0; k < 6; k++) got[k] = f64(&c[12]);
        } else {
            cov->roll_decimal++;
            int e = mode & 15, shift = mode >> 4;
            cr_assert_leq(shift, 14, "%s: shift", what);
            cov->roll_shifted += shift > 0;
            int64_t at[8]; /* min, lo50, hi50, lo95, hi95, lo99, hi99, max: decimal integers */
            at[0] = (int64_t)((uint64_t)sv(&c[2]) << shift);
            for (int k = 0; k < 7; k++) at[k + 1] = at[k] + (int64_t)(uv(&c[3 + k]) << shift);
            int64_t sum_m = sv(&c[10]) + (int64_t)count * at[1], corr = sv(&c[11]);
            got[0] = near_value(sum_m, e, corr);
            got[1] = (double)at[0] / pow10d(e);
            got[2] = (double)at[7] / pow10d(e);
            for (int q = 0; q < 3; q++) {
                double pos = frac[q] * (double)(count - 1), fl = floor(pos);
                double lo = (double)at[1 + 2 * q] / pow10d(e),
                       hi = (double)at[2 + 2 * q] / pow10d(e);
                /* the order statistics at floor and ceil of p (n - 1) */
                cr_expect_eq(bits_of(lo), bits_of(sorted[(size_t)fl]), "%s: lo of q%d", what, q);
                cr_expect_eq(bits_of(hi), bits_of(sorted[(size_t)ceil(pos)]), "%s: hi of q%d", what,
                             q);
                got[3 + q] = ceil(pos) > fl ? lo + (pos - fl) * (hi - lo) : lo;
            }
        }
        /* a group's sum adds its values in the order the seal's selection left them */
        if (kind == 'S')
            cr_expect_eq(bits_of(got[0]), bits_of(w.sum), "%s: sum %a, want %a", what, got[0],
                         w.sum);
        else
            cr_expect(fabs(got[0] - w.sum) <= 1e-12 * fabs(w.sum), "%s: sum %a vs %a", what, got[0],
                      w.sum);
        const double want[6] = {w.sum, w.min, w.max, w.p50, w.p95, w.p99};
        for (int k = 1; k < 6; k++)
            cr_expect_eq(bits_of(got[k]), bits_of(want[k]), "%s: value %d %a, want %a", what, k,
                         got[k], want[k]);
        if (kind != 'G') continue;

        uint8_t sk[4096]; /* the sketch's bytes, rebuilt as docs/format.md's "Sketch" */
        size_t sl = 0;
        uint8_t skmode = u8(&c[13]);
        if (skmode == 0) {
            cov->sk_verb++;
            uint64_t len = uv(&c[17]);
            cr_assert(len <= mt_rd_left(&c[17]) && len <= sizeof sk);
            memcpy(sk, c[17].p, len);
            c[17].p += len;
            sl = len;
        } else {
            cr_assert_eq(skmode, 1, "%s: sketch mode", what);
            cov->sk_compact++;
            sk[sl++] = u8(&c[14]); /* version */
            mt_put_le(sk + sl, bits_of(got[1]), 8), sl += 8;
            mt_put_le(sk + sl, bits_of(got[2]), 8), sl += 8;
            sl += mt_put_uvarint(sk + sl, uv(&c[14])); /* zero count */
            uint64_t bins[2] = {uv(&c[14]), uv(&c[14])};
            for (int st = 0; st < 2; st++) {
                sl += mt_put_uvarint(sk + sl, bins[st]);
                int64_t idx = 0, prev = 0;
                uint64_t cnt = 0;
                for (uint64_t j = 0; j < bins[st]; j++) {
                    cr_assert_lt(sl, sizeof sk - 32);
                    idx = j ? idx + (int64_t)uv(&c[15]) + 1 : sv(&c[15]);
                    cnt += (uint64_t)sv(&c[16]);
                    sl += mt_put_uvarint(sk + sl, mt_zigzag(idx - prev));
                    sl += mt_put_uvarint(sk + sl, cnt);
                    prev = idx;
                }
            }
        }
        mt_rollup ro = {.min = got[1], .max = got[2], .sketch = sk, .sketch_len = sl};
        expect_sketch(&ro, v, nv, what);
    }
    for (int k = 0; k < ncol; k++) cr_expect_eq(mt_rd_left(&c[k]), 0, "column %d fully read", k);
}

/* An 'S' or 'G' rollup value: version 1 rows by column, or version 2's compact values. */
static void check_rollup_value(uint8_t kind, int64_t hour, const uint8_t *z, size_t zn,
                               coverage *cov)
{
    cr_assert_gt(zn, 1);
    const bool v2 = fixture == 6; /* as the build that made the fixture wrote */
    cr_assert_eq(z[0], v2 ? 0x02 : 0x28, "rollup value: 0x02 and a frame, or a bare frame");
    if (v2) z++, zn--;
    unsigned long long raw_len = ZSTD_getFrameContentSize(z, zn);
    cr_assert(raw_len != ZSTD_CONTENTSIZE_ERROR && raw_len != ZSTD_CONTENTSIZE_UNKNOWN);
    uint8_t *raw = unzstd(z, zn, (size_t)raw_len);
    mt_rd r = {raw, raw + raw_len};
    uint64_t n = uv(&r), id = 0;
    cr_assert(n > 0 && n < 64);
    const ser *rows[64] = {NULL};
    char keys[64][128];
    size_t klens[64] = {0};
    for (uint64_t i = 0; i < n; i++) {
        if (kind == 'S') {
            id += uv(&r);
            rows[i] = by_id((uint32_t)id);
            cr_assert_not_null(rows[i]);
        } else {
            uint64_t kl = uv(&r);
            cr_assert(kl < sizeof keys[i] && kl <= mt_rd_left(&r));
            memcpy(keys[i], r.p, kl);
            klens[i] = kl;
            if (i) {
                size_t m = klens[i - 1] < kl ? klens[i - 1] : kl;
                int c = memcmp(keys[i - 1], keys[i], m);
                cr_expect(c < 0 || (c == 0 && klens[i - 1] < kl), "groups in key order");
            }
            r.p += kl;
        }
    }
    if (v2) {
        check_compact(&r, kind, hour, n, rows, keys, klens, cov);
        cr_expect_eq(mt_rd_left(&r), 0, "rollup value fully read");
        free(raw);
        return;
    }
    uint64_t counts[64];
    for (uint64_t i = 0; i < n; i++) counts[i] = uv(&r);
    cr_assert_geq(mt_rd_left(&r), 48 * n);
    const uint8_t *cols = r.p;
    r.p += 48 * n;
    for (uint64_t i = 0; i < n && kind == 'S'; i++) {
        size_t first, k = in_hour(rows[i], hour, &first);
        double v[256];
        for (size_t j = 0; j < k; j++) v[j] = as_double(rows[i]->type, rows[i]->p[first + j].v);
        stats w = describe(v, k);
        cr_expect_eq(counts[i], k);
        double col[6];
        for (int c = 0; c < 6; c++) {
            uint64_t b = mt_get_le(cols + 8 * (c * n + i), 8);
            memcpy(&col[c], &b, 8);
        }
        cr_expect(col[0] == w.sum && col[1] == w.min && col[2] == w.max && col[3] == w.p50 &&
                      col[4] == w.p95 && col[5] == w.p99,
                  "series row %s.%s hour %lld by column", rows[i]->meas, rows[i]->field,
                  (long long)hour);
    }
    for (uint64_t i = 0; i < n && kind == 'G'; i++) { /* then a sketch per group */
        uint64_t sl = uv(&r);
        cr_assert_leq(sl, mt_rd_left(&r));
        cr_expect_eq(r.p[0], 1, "sketch version");
        r.p += sl;
    }
    cr_expect_eq(mt_rd_left(&r), 0, "rollup value fully read");
    free(raw);
}

static const char *const db_names[MT_DB__COUNT] = {
    "meta", "series", "series_by_id", "postings", "hours", "head", "rollups", "outbox", "state"};

/*
 * Every record of index.mdb by hand: its checksum trailer recomputed, its
 * key and value decoded; the hour files and head records they name.
 */
/* want_version: as written, or 6 once a writer of format 6 opened it (it changes that only). */
static void check_index_bytes(uint64_t want_version)
{
    mt_kv *kv;
    mt_kv_options ko = {.read_only = true};
    cr_assert_eq(mt_kv_open(dir, &ko, &kv), MT_OK);
    mt_kv_set_checksums(kv, false); /* values as stored: with their trailers */
    mt_kv_txn *t;
    cr_assert_eq(mt_kv_begin(kv, false, &t), MT_OK);
    size_t count[MT_DB__COUNT] = {0};
    uint64_t meta_version = 0, meta_seq = 0, meta_gen = 0, last_head = 0;
    int64_t meta_floor = INT64_MIN;
    head_pt hp[128];
    size_t nhp = 0;
    uint64_t sealed_seq[3] = {0}; /* of hours 00-02 (format 3) */
    size_t skipped = 0;
    uint8_t *hraw[8];
    size_t nhraw = 0;
    coverage cov = {0};
    uint64_t prev_box = 0;
    for (int db = 0; db < MT_DB__COUNT; db++) {
        mt_kv_cursor *c;
        cr_assert_eq(mt_kv_cursor_open(t, (mt_kv_db)db, &c), MT_OK);
        const void *kp, *vp;
        size_t kl, vl;
        int rc;
        for (rc = mt_kv_cursor_seek(c, NULL, 0, &kp, &kl, &vp, &vl); rc == MT_OK;
             rc = mt_kv_cursor_next(c, &kp, &kl, &vp, &vl)) {
            const uint8_t *k = kp, *v = vp;
            count[db]++;
            cr_assert_geq(vl, 4, "%s: a trailer", db_names[db]);
            vl -= 4;
            uint64_t h = mt_hash64_seeded(k, kl, 0x4d54524f4e4b5653ULL + (uint64_t)db);
            cr_expect_eq((uint32_t)mt_hash64_seeded(v, vl, h), (uint32_t)mt_get_le(v + vl, 4),
                         "%s: the checksum trailer of record %zu", db_names[db], count[db]);
            switch ((mt_kv_db)db) {
            case MT_DB_META:
                cr_assert_eq(vl, 8, "meta values are u64 LE");
                if (kl == 7 && !memcmp(k, "version", 7))
                    meta_version = mt_get_le(v, 8);
                else if (kl == 3 && !memcmp(k, "seq", 3))
                    meta_seq = mt_get_le(v, 8);
                else if (kl == 3 && !memcmp(k, "gen", 3))
                    meta_gen = mt_get_le(v, 8);
                else if (kl == 5 && !memcmp(k, "floor", 5) && fixture == 6)
                    meta_floor = (int64_t)mt_get_le(v, 8);
                else
                    cr_expect_fail("meta: unknown key %.*s", (int)kl, (const char *)k);
                break;
            case MT_DB_SERIES: {
                ser *s = NULL;
                for (size_t i = 0; i < nmodel; i++)
                    if (model[i].klen == kl && !memcmp(model[i].key, k, kl)) s = &model[i];
                cr_assert_not_null(s, "series: a key format2.lp has");
                cr_assert_eq(vl, 5);
                cr_expect_eq(be32(v), s->id, "series: id BE");
                cr_expect_eq(v[4], s->type);
                break;
            }
            case MT_DB_SERIES_BY_ID: {
                cr_assert_eq(kl, 4);
                const ser *s = by_id(be32(k));
                cr_assert_not_null(s);
                cr_expect_eq(v[0], s->type);
                cr_expect(vl == 1 + s->klen && !memcmp(v + 1, s->key, s->klen), "series_by_id");
                break;
            }
            case MT_DB_POSTINGS: {
                cr_assert_eq(vl, 4, "an id BE");
                const ser *s = by_id(be32(v));
                cr_assert_not_null(s);
                mt_series_parts p;
                cr_assert_eq(mt_series_parse(s->key, s->klen, &p), MT_OK);
                const char *name = (const char *)k + 1;
                size_t nl = kl - 1;
                bool has = false;
                if (k[0] == 1)
                    has = nl == p.measurement.len && !memcmp(name, p.measurement.ptr, nl);
                if (k[0] == 2) has = nl == p.field.len && !memcmp(name, p.field.ptr, nl);
                for (size_t i = 0; k[0] == 3 && i < p.ntags; i++) {
                    size_t a = p.tag_keys[i].len, b = p.tag_values[i].len;
                    has |= nl == a + 1 + b && !memcmp(name, p.tag_keys[i].ptr, a) && !name[a] &&
                           !memcmp(name + a + 1, p.tag_values[i].ptr, b);
                }
                cr_expect(has, "postings: term %.*s holds id %u", (int)kl, (const char *)k,
                          be32(v));
                break;
            }
            case MT_DB_HOURS: {
                cr_assert_eq(kl, 4);
                cr_assert_eq(vl, fixture == 2 ? 12 : 20, "format 2: no sealed_seq (read as 0)");
                int64_t hour = (int64_t)be32(k) - 0x80000000LL;
                cr_assert(sealed_hour(hour), "hours: %lld", (long long)hour);
                if (vl == 20) sealed_seq[hour - HOUR0] = mt_get_le(v + 12, 8);
                uint32_t gen = (uint32_t)mt_get_le(v, 4);
                static const uint32_t gens[3] = {4, 5, 3}; /* 00 and 01 merged by metrond */
                cr_expect_eq(gen, gens[hour - HOUR0], "hour %lld gen", (long long)hour);
                char path[600];
                snprintf(path, sizeof path, "%s/blocks/2025/03/01/%02d.%u.blk", dir,
                         (int)(hour - HOUR0), gen);
                check_hour_file(path, hour, mt_get_le(v + 4, 8), &cov);
                break;
            }
            case MT_DB_HEAD:
                cr_assert_eq(kl, 8);
                cr_expect_gt(be64(k), last_head, "head: sequences ascend");
                last_head = be64(k);
                cr_assert_lt(nhraw, 8);
                size_t before = nhp;
                hraw[nhraw++] = decode_head(v, vl, hp, &nhp, 128, &cov);
                /* replay skips a point whose hour's file holds it: sealed_seq >= the record's */
                size_t kept = before;
                for (size_t i = before; i < nhp; i++) {
                    int64_t ph = hp[i].ts >= 0 ? hp[i].ts / MT_HOUR_NS : -1;
                    if (sealed_hour(ph) && sealed_seq[ph - HOUR0] >= be64(k)) {
                        skipped++;
                        continue;
                    }
                    hp[kept++] = hp[i];
                }
                nhp = kept;
                break;
            case MT_DB_ROLLUPS: {
                cr_assert_eq(kl, 5);
                cr_assert(k[0] == 'G' || k[0] == 'S');
                int64_t hour = (int64_t)be32(k + 1) - 0x80000000LL;
                cr_expect(sealed_hour(hour));
                check_rollup_value(k[0], hour, v, vl, &cov);
                break;
            }
            case MT_DB_OUTBOX:
                cr_assert_eq(kl, 8);
                cr_expect_gt(be64(k), prev_box);
                prev_box = be64(k);
                cr_assert_eq(vl, 17, "kind, queued, hour");
                cr_expect_eq(v[0], 'H');
                cr_expect_eq((int64_t)mt_get_le(v + 9, 8), HOUR0 + (int64_t)count[db] - 1);
                break;
            default: cr_expect_fail("%s: no record expected", db_names[db]); break;
            }
        }
        cr_assert_eq(rc, MT_ENOTFOUND, "%s: %s", db_names[db], mt_strerror(rc));
        mt_kv_cursor_close(c);
    }
    mt_kv_abort(t);
    mt_kv_close(kv);

    cr_expect_eq(meta_version, want_version, "format");
    cr_expect_eq(meta_gen, 6, "the next generation: 1-3 by the import, 4-5 by the merge");
    cr_expect_eq(meta_seq, last_head, "seq: the last head record's");
    /* format 6 keeps the commit floor: no mirror ever raised it, so the lowest point committed */
    cr_expect_eq(count[MT_DB_META], fixture == 6 ? 4 : 3, "version, seq, gen (and floor)");
    if (fixture == 6) cr_expect_eq(meta_floor, T0, "floor: the first point of format2.lp");
    cr_expect_eq(count[MT_DB_SERIES], nmodel);
    cr_expect_eq(count[MT_DB_SERIES_BY_ID], nmodel);
    size_t pairs = 0;
    for (size_t i = 0; i < nmodel; i++) {
        mt_series_parts p;
        cr_assert_eq(mt_series_parse(model[i].key, model[i].klen, &p), MT_OK);
        pairs += 2 + p.ntags;
    }
    cr_expect_eq(count[MT_DB_POSTINGS], pairs, "a (term, id) per measurement, field and tag");
    cr_expect_eq(count[MT_DB_HOURS], 3);
    cr_expect_eq(count[MT_DB_ROLLUPS], 6, "'G' and 'S' of each sealed hour");
    cr_expect_eq(count[MT_DB_OUTBOX], 2);
    cr_expect_eq(count[MT_DB_STATE], 0);
    cr_expect_geq(count[MT_DB_HEAD], 1);

    /* the head log holds exactly hour 03's points */
    size_t first;
    head_pt want[64];
    size_t nw = 0;
    for (size_t i = 0; i < nmodel; i++) {
        size_t n = in_hour(&model[i], HOUR0 + 3, &first);
        for (size_t k = 0; k < n; k++)
            want[nw++] = (head_pt){model[i].id, model[i].p[first + k].ts, model[i].p[first + k].v,
                                   (const uint8_t *)model[i].p[first + k].str};
    }
    cr_assert_eq(nhp, nw, "head points: %zu, want %zu", nhp, nw);
    if (fixture == 3) cr_expect_gt(skipped, 0, "a kept head record holds points of a sealed hour");
    qsort(hp, nhp, sizeof *hp, by_id_ts);
    qsort(want, nw, sizeof *want, by_id_ts);
    for (size_t i = 0; i < nw; i++) {
        cr_expect(hp[i].id == want[i].id && hp[i].ts == want[i].ts && hp[i].v.u == want[i].v.u,
                  "head point %zu", i);
        if (want[i].str) cr_expect(!memcmp(hp[i].str, want[i].str, want[i].v.u));
    }
    for (size_t i = 0; i < nhraw; i++) free(hraw[i]);

    /* the encodings the fixture holds, so that a change to any of them fails above */
    cr_expect_gt(cov.packed, 0, "a zstd-packed chunk");
    cr_expect_gt(cov.plain, 0, "a chunk stored as it is");
    cr_expect_gt(cov.ts_regular, 0, "regular timestamps");
    cr_expect_gt(cov.ts_rice, 0, "Rice-coded timestamps");
    cr_expect_gt(cov.float_decimal, 0, "decimal floats");
    cr_expect_gt(cov.float_xor, 0, "XOR floats");
    cr_expect_gt(cov.int_delta, 0, "integers by delta");
    cr_expect_gt(cov.int_dod, 0, "integers by delta-of-delta");
    cr_expect_gt(cov.float_exceptions, 0, "exceptions among decimal floats");
    cr_expect_gt(cov.bools, 0, "booleans");
    cr_expect_gt(cov.strings, 0, "strings");
    if (fixture == 6) { /* and those of hour file 3, chunk 2, rollup value 2, head record 2 */
        cr_expect_gt(cov.ts_scaled, 0, "stamps in units of 10^k");
        cr_expect_gt(cov.sum_decimal, 0, "near-decimal summaries");
        cr_expect_gt(cov.sum_corrected, 0, "a summary with a correction (a sum's rounding)");
        cr_expect_gt(cov.sum_raw, 0, "raw summaries (1/3, integers past 2^53)");
        cr_expect_gt(cov.roll_decimal, 0, "decimal rollup rows");
        cr_expect_gt(cov.roll_shifted, 0, "decimal rollup rows with a shift");
        cr_expect_gt(cov.roll_raw, 0, "raw rollup rows");
        cr_expect_gt(cov.sk_compact, 0, "compact sketches");
        cr_expect_gt(cov.head_decimal, 0, "head floats as decimal tags");
        /* not in format2.lp's points: verbatim sketches (a non-finite value), raw head floats */
    }

    /* and the engine's own check of every database */
    cr_assert_eq(mt_kv_open(dir, &ko, &kv), MT_OK);
    cr_assert_eq(mt_kv_begin(kv, false, &t), MT_OK);
    for (int db = 0; db < MT_DB__COUNT; db++) {
        size_t n = 0;
        cr_expect_eq(mt_kv_verify(t, (mt_kv_db)db, &n), MT_OK, "%s", db_names[db]);
        cr_expect_eq(n, count[db], "%s: records", db_names[db]);
    }
    mt_kv_abort(t);
    mt_kv_close(kv);
}

/* ---- the tests ------------------------------------------------------------------------------ */

static void read_only_answers_every_value(int format)
{
    extract(format);
    mt_engine *e = open_fixture(true);
    check_engine(e);
    mt_engine_close(e);
    check_index_bytes((uint64_t)format); /* a reader changed nothing */
}

static void read_write_keeps_every_byte(int format)
{
    extract(format);
    mt_engine *e = open_fixture(false);
    check_engine(e);
    mt_engine_close(e);
    struct stat st;
    char path[600];
    snprintf(path, sizeof path, "%s/lost+found", dir);
    cr_expect_neq(stat(path, &st), 0, "recovery set nothing aside");
    check_index_bytes(6); /* the same records, files and generations after a writer's open */
    e = open_fixture(false);
    check_engine(e); /* and again, as the writer left it */
    mt_engine_close(e);
}

static void decodes_by_hand(int format)
{
    extract(format);
    /* ids as the engine gave them: the by-hand check keys on them */
    mt_engine *e = open_fixture(true);
    for (size_t i = 0; i < nmodel; i++) {
        mt_vtype t;
        cr_assert_eq(mt_engine_series_lookup(e, model[i].key, model[i].klen, &model[i].id, &t),
                     MT_OK);
    }
    mt_engine_close(e);
    check_index_bytes((uint64_t)format);
}

Test(format, the_format2_fixture_read_only_answers_every_value)
{
    read_only_answers_every_value(2);
}

Test(format, the_format2_fixture_read_write_answers_every_value_and_keeps_every_byte)
{
    read_write_keeps_every_byte(2);
}

Test(format, the_format2_bytes_decode_by_hand_as_docs_format_md_says)
{
    decodes_by_hand(2);
}

/* format 3: its head log keeps a record that holds sealed points too (trimmed, not rewritten) */
Test(format, the_format3_fixture_read_only_answers_every_value)
{
    read_only_answers_every_value(3);
}

Test(format, the_format3_fixture_read_write_answers_every_value_and_keeps_every_byte)
{
    read_write_keeps_every_byte(3);
}

Test(format, the_format3_bytes_decode_by_hand_as_docs_format_md_says)
{
    decodes_by_hand(3);
}

/* format 6: hour files of version 3 with chunks of version 2, compact rollup values, head
   records of version 2 */
Test(format, the_format6_fixture_read_only_answers_every_value)
{
    read_only_answers_every_value(6);
}

Test(format, the_format6_fixture_read_write_answers_every_value_and_keeps_every_byte)
{
    read_write_keeps_every_byte(6);
}

Test(format, the_format6_bytes_decode_by_hand_as_docs_format_md_says)
{
    decodes_by_hand(6);
}
