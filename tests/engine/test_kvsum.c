/*
 * test_kvsum.c — checksums on every value Metron stores in LMDB (mt_kv.h):
 * a bit flipped in index.mdb itself, in a value or in a key, of every
 * database, is an error naming the database and the key, never data; the
 * open policy (refuse on a damaged index record, skip and name a damaged
 * head record, fail only the read that meets a damaged rollup, outbox or
 * state record); format 1 migrated in place; random bit flips over the
 * whole file give an error or the very same answers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mt_engine.h"
#include "mt_kv.h"
#include "test_util.h"

#define H  MT_HOUR_NS
#define T0 (1735689600LL * 1000000000LL) /* 2025-01-01T00:00:00Z */
#define S  1000000000LL

static char dir[256];
static int64_t fake_now;

static int64_t clock_fn(void *ud)
{
    (void)ud;
    return fake_now;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-kvsum-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    fake_now = T0 + 1000 * H;
}

static void teardown(void)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(kvsum, .init = setup, .fini = teardown, .timeout = 300);

static const char *const db_names[MT_DB__COUNT] = {
    "meta", "series", "series_by_id", "postings", "hours", "head", "rollups", "outbox", "state"};

static mt_engine_options opts(char *why, size_t cap)
{
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    o.outbox = true;
    o.clock_ns = clock_fn;
    o.why = why;
    o.why_cap = cap;
    return o;
}

static mt_engine *open_ok(void)
{
    char why[2048] = "";
    mt_engine_options o = opts(why, sizeof why);
    mt_engine *e = NULL;
    int rc = mt_engine_open(&o, &e);
    cr_assert_eq(rc, MT_OK, "open: %s %s", mt_strerror(rc), why);
    return e;
}

static void add(mt_batch *b, const char *host, const char *field, int64_t ts, double v)
{
    char k[512];
    mt_name tk[1] = {{"host", 4}}, tv[1] = {{host, strlen(host)}};
    size_t kl =
        mt_series_key(k, sizeof k, (mt_name){"cpu", 3}, tk, tv, 1, (mt_name){field, strlen(field)});
    cr_assert_gt(kl, 0);
    cr_assert_eq(mt_batch_add(b, k, kl, ts, MT_VT_FLOAT, (mt_val){.f = v}, NULL), MT_OK);
}

/*
 * Every database gets records: three series in two sealed hours (series,
 * series_by_id, postings, hours, rollups, outbox), points of a third hour
 * left in the head (head), an alert state (state, outbox), meta.
 */
static void populate(void)
{
    mt_engine *e = open_ok();
    mt_batch *b = mt_batch_new();
    const char *hosts[] = {"kvsum-host-alpha", "kvsum-host-bravo", "kvsum-host-charlie"};
    for (int h = 0; h < 3; h++)
        for (int i = 0; i < 2 * 60; i++) add(b, hosts[h], "usage", T0 + i * 60 * S, h * 100 + i);
    cr_assert_eq(mt_engine_write(e, b, NULL), MT_OK);
    mt_batch_reset(b);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    for (int h = 0; h < 3; h++)
        for (int i = 0; i < 30; i++) add(b, hosts[h], "usage", T0 + 2 * H + i * 60 * S, -i);
    cr_assert_eq(mt_engine_write(e, b, NULL), MT_OK);
    mt_batch_free(b);
    const char state[] = "firing since 2025-01-01T00:05:00Z";
    cr_assert_eq(mt_engine_state_put(e, "Akvsum-alert-1", 14, state, sizeof state, 'A'), MT_OK);
    /* only live pages: the bit flips below hit records, not the free pages' old copies */
    mt_compact_result cres;
    cr_assert_eq(mt_engine_compact(e, true, NULL, NULL, &cres), MT_OK);
    mt_engine_close(e);
}

/* ---- a canonical dump of everything the engine answers -------------------- */

static int dump_rollup(void *ud, const mt_rollup *r)
{
    fprintf(ud, "rollup %lld %u %.*s %llu %g %g %g %g %g %g\n", (long long)r->hour, r->id,
            (int)r->group_len, (const char *)r->group, (unsigned long long)r->count, r->sum, r->min,
            r->max, r->p50, r->p95, r->p99);
    return 0;
}

static int dump_outbox(void *ud, const mt_outbox_entry *en)
{
    fprintf(ud, "outbox %llu %c %lld %zu\n", (unsigned long long)en->seq, en->kind,
            (long long)en->queued_ns, en->len);
    return 0;
}

static int dump_state(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
    fprintf(ud, "state %.*s = %.*s\n", (int)kl, (const char *)k, (int)vl, (const char *)v);
    return 0;
}

/* Everything e answers, as text into *out (malloc'd); the first error, or MT_OK. */
static int dump(mt_engine *e, char **out)
{
    size_t len;
    FILE *f = open_memstream(out, &len);
    int rc = MT_OK;
    for (uint32_t id = 1; !rc; id++) {
        char k[600];
        size_t kl;
        int r = mt_engine_series_key(e, id, k, sizeof k, &kl);
        if (r == MT_ENOTFOUND) break;
        if ((rc = r)) break;
        fprintf(f, "series %u %zu\n", id, kl);
        fwrite(k, 1, kl, f);
        mt_scan *s;
        if ((rc = mt_scan_open(e, id, 0, INT64_MAX, &s))) break;
        mt_points p;
        while ((r = mt_scan_next(s, &p)) == MT_OK)
            for (size_t i = 0; i < p.n; i++)
                fprintf(f, " %lld=%g", (long long)p.ts[i], p.vals[i].f);
        mt_scan_close(s);
        if (r != MT_ENOTFOUND) rc = r;
        fputc('\n', f);
    }
    const char *terms[] = {"cpu", "usage", "host"};
    for (int t = 0; t < 2 && !rc; t++) {
        uint32_t *ids = NULL;
        size_t n = 0;
        rc = mt_engine_postings(e, t ? MT_TERM_FIELD : MT_TERM_MEASUREMENT,
                                (mt_name){terms[t], strlen(terms[t])}, (mt_name){0}, &ids, &n);
        fprintf(f, "postings %s:", terms[t]);
        for (size_t i = 0; i < n; i++) fprintf(f, " %u", ids[i]);
        fputc('\n', f);
        free(ids);
    }
    if (!rc) rc = mt_engine_rollups(e, INT32_MIN, INT32_MAX, true, dump_rollup, f);
    if (!rc) rc = mt_engine_rollups(e, INT32_MIN, INT32_MAX, false, dump_rollup, f);
    if (!rc) rc = mt_engine_outbox_peek(e, 1000, dump_outbox, f);
    if (!rc) rc = mt_engine_state_scan(e, "", 0, dump_state, f);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    fprintf(f, "series %llu head %llu hours %llu seq %llu\n", (unsigned long long)st.series,
            (unsigned long long)st.head_points, (unsigned long long)st.sealed_hours,
            (unsigned long long)st.last_seq);
    fclose(f);
    return rc;
}

/* ---- index.mdb as bytes ---------------------------------------------------- */

static char *index_path(void)
{
    static char p[300];
    snprintf(p, sizeof p, "%s/index.mdb", dir);
    return p;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*n);
    cr_assert_eq(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

static void spill(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static const uint8_t *find(const uint8_t *hay, size_t hn, const uint8_t *needle, size_t nn)
{
    for (size_t i = 0; nn && i + nn <= hn; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, nn)) return hay + i;
    return NULL;
}

typedef struct rec {
    uint8_t k[600], v[4096];
    size_t kl, vl; /* vl: the stored value, its trailer included */
} rec;

/* The first record of db as stored (checksums off: the trailer is part of the value). */
static void first_record(mt_kv_db db, rec *r)
{
    mt_kv *kv;
    mt_kv_options ko = {.read_only = true};
    cr_assert_eq(mt_kv_open(dir, &ko, &kv), MT_OK);
    mt_kv_set_checksums(kv, false);
    mt_kv_txn *t;
    cr_assert_eq(mt_kv_begin(kv, false, &t), MT_OK);
    mt_kv_cursor *c;
    cr_assert_eq(mt_kv_cursor_open(t, db, &c), MT_OK);
    const void *k, *v;
    size_t kl, vl;
    cr_assert_eq(mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl), MT_OK, "%s is empty",
                 db_names[db]);
    cr_assert_leq(kl, sizeof r->k);
    r->kl = kl;
    r->vl = vl < sizeof r->v ? vl : sizeof r->v; /* a prefix is enough to find it */
    memcpy(r->k, k, kl);
    memcpy(r->v, v, r->vl);
    mt_kv_cursor_close(c);
    mt_kv_abort(t);
    mt_kv_close(kv);
}

/* Flip bit 0 of the byte at delta in every copy of needle in copy (the live one among them). */
static size_t flip_all(const uint8_t *pristine, uint8_t *copy, size_t n, const uint8_t *needle,
                       size_t nn, size_t delta)
{
    size_t hits = 0;
    for (const uint8_t *at = find(pristine, n, needle, nn); at;
         at = find(at + 1, n - (size_t)(at + 1 - pristine), needle, nn)) {
        copy[(size_t)(at - pristine) + delta] ^= 0x01;
        hits++;
    }
    return hits;
}

/*
 * Flip one bit of db's first record in index.mdb: in its key (in_key) or in
 * its value. LMDB keeps a leaf's key and value side by side; a large value
 * lives on its own overflow pages and duplicates on a sub-page, where they
 * are found by themselves. Pages a commit made free may hold older copies of
 * the same bytes: every copy is flipped, so the live one is too.
 */
static void flip_record(const uint8_t *pristine, size_t n, mt_kv_db db, bool in_key)
{
    rec *r = calloc(1, sizeof *r);
    first_record(db, r);
    uint8_t *node = malloc(r->kl + r->vl), *copy = malloc(n);
    memcpy(node, r->k, r->kl);
    memcpy(node + r->kl, r->v, r->vl);
    memcpy(copy, pristine, n);
    size_t hits =
        flip_all(pristine, copy, n, node, r->kl + r->vl, in_key ? r->kl - 1 : r->kl + r->vl / 2);
    if (!hits)
        hits = in_key ? flip_all(pristine, copy, n, r->k, r->kl, r->kl - 1)
                      : flip_all(pristine, copy, n, r->v, r->vl, r->vl / 2);
    cr_assert_gt(hits, 0, "%s: record not found in index.mdb", db_names[db]);
    spill(index_path(), copy, n);
    free(copy);
    free(node);
    free(r);
}

/* Read db whole through mt_kv: the first error and the corruption text. */
static int read_db(mt_kv_db db, char *why, size_t cap)
{
    mt_kv *kv;
    mt_kv_options ko = {.read_only = true};
    cr_assert_eq(mt_kv_open(dir, &ko, &kv), MT_OK);
    mt_kv_txn *t;
    cr_assert_eq(mt_kv_begin(kv, false, &t), MT_OK);
    mt_kv_cursor *c;
    cr_assert_eq(mt_kv_cursor_open(t, db, &c), MT_OK);
    const void *k, *v;
    size_t kl, vl;
    int rc;
    for (rc = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl); rc == MT_OK;
         rc = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
    }
    mt_kv_cursor_close(c);
    mt_kv_abort(t);
    mt_kv_corruption(kv, why, cap);
    mt_kv_close(kv);
    return rc;
}

/* What names db's first record in an error (the decoded key). */
static const char *key_words(mt_kv_db db)
{
    switch (db) {
    case MT_DB_META: return "key 'flo"; /* "floor" (the first meta key), or the flipped "floos" */
    case MT_DB_SERIES: return "(a series key";
    case MT_DB_SERIES_BY_ID: return "key series id ";
    case MT_DB_POSTINGS: return "(a posting term";
    case MT_DB_HOURS: return "key hour 2025-01-01T0";
    case MT_DB_HEAD: return "key sequence ";
    case MT_DB_ROLLUPS: return "key 'G' hour 2025-01-01T0";
    case MT_DB_OUTBOX: return "key sequence ";
    case MT_DB_STATE: return "kvsum-alert";
    default: return "?";
    }
}

typedef struct lines {
    char text[8192];
    size_t n;
} lines;

static void collect(void *ud, const char *line)
{
    lines *l = ud;
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof l->text - used, "%s\n", line);
    l->n++;
}

static int count_rollup(void *ud, const mt_rollup *r)
{
    (void)r;
    (*(size_t *)ud)++;
    return 0;
}

static int rollups_cb(void *ud, const mt_rollup *r)
{
    (void)ud, (void)r;
    return 0;
}

static int outbox_cb(void *ud, const mt_outbox_entry *en)
{
    (void)ud, (void)en;
    return 0;
}

static int state_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)ud, (void)k, (void)kl, (void)v, (void)vl;
    return 0;
}

/* The open policy for a damaged record of db (docs/storage.md, "Damage"). */
static void check_policy(mt_kv_db db, bool in_key)
{
    const char *where = in_key ? "key" : "value";
    char why[2048] = "", name[64];
    snprintf(name, sizeof name, "database %s,", db_names[db]);
    mt_engine_options o = opts(why, sizeof why);
    mt_engine *e = NULL;
    int rc = mt_engine_open(&o, &e);
    switch (db) {
    case MT_DB_META:
    case MT_DB_SERIES:
    case MT_DB_SERIES_BY_ID:
    case MT_DB_POSTINGS:
    case MT_DB_HOURS: /* the index cannot be trusted: refused, with the reason and the way out */
        cr_assert_eq(rc, MT_ECORRUPT, "%s %s: open gave %s", db_names[db], where, mt_strerror(rc));
        cr_expect_not_null(strstr(why, name), "%s %s: %s", db_names[db], where, why);
        cr_expect_not_null(strstr(why, key_words(db)), "%s %s: %s", db_names[db], where, why);
        cr_expect_not_null(strstr(why, "restore index.mdb from a backup"), "%s", why);
        cr_expect_not_null(strstr(why, "index.mdb: database"), "names the file: %s", why);
        return;
    default: break;
    }
    cr_assert_eq(rc, MT_OK, "%s %s: open gave %s %s", db_names[db], where, mt_strerror(rc), why);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    if (db == MT_DB_HEAD) { /* skipped and named; the other head records are replayed */
        cr_expect_eq(st.head_records_skipped, 1, "%s", where);
    } else {
        cr_expect_eq(st.head_records_skipped, 0);
        cr_expect_eq(st.head_points, 90, "the head is whole");
        if (db == MT_DB_ROLLUPS)
            cr_expect_eq(mt_engine_rollups(e, INT32_MIN, INT32_MAX, true, rollups_cb, NULL),
                         MT_ECORRUPT, "%s", where);
        if (db == MT_DB_OUTBOX)
            cr_expect_eq(mt_engine_outbox_peek(e, 100, outbox_cb, NULL), MT_ECORRUPT, "%s", where);
        if (db == MT_DB_STATE) {
            cr_expect_eq(mt_engine_state_scan(e, "A", 1, state_cb, NULL), MT_ECORRUPT, "%s", where);
            if (!in_key) { /* the key itself is intact: a get meets the record */
                void *v = NULL;
                size_t vl;
                cr_expect_eq(mt_engine_state_get(e, "Akvsum-alert-1", 14, &v, &vl), MT_ECORRUPT);
                free(v);
            }
        }
    }
    lines l = {.n = 0};
    l.text[0] = '\0';
    mt_engine_damage(e, collect, &l);
    cr_expect_not_null(strstr(l.text, name), "%s %s: damage says %s", db_names[db], where, l.text);
    cr_expect_not_null(strstr(l.text, key_words(db)), "%s %s: damage says %s", db_names[db], where,
                       l.text);
    /* the engine keeps working: a write goes through */
    mt_batch *b = mt_batch_new();
    add(b, "kvsum-host-delta", "usage", T0 + 3 * H, 1);
    cr_expect_eq(mt_engine_write(e, b, NULL), MT_OK);
    mt_batch_free(b);
    mt_engine_close(e);
}

static void flip_each_database(bool in_key)
{
    populate();
    size_t n;
    uint8_t *pristine = slurp(index_path(), &n);
    for (int db = 0; db < MT_DB__COUNT; db++) {
        flip_record(pristine, n, (mt_kv_db)db, in_key);
        char why[2048] = "", name[64];
        snprintf(name, sizeof name, "database %s,", db_names[db]);
        cr_expect_eq(read_db((mt_kv_db)db, why, sizeof why), MT_ECORRUPT, "%s %s: read all",
                     db_names[db], in_key ? "key" : "value");
        cr_expect_not_null(strstr(why, name), "%s", why);
        cr_expect_not_null(strstr(why, key_words((mt_kv_db)db)), "%s", why);
        check_policy((mt_kv_db)db, in_key);
        spill(index_path(), pristine, n);
    }
    /* and the pristine file reads whole */
    mt_engine *e = open_ok();
    char *d = NULL;
    cr_expect_eq(dump(e, &d), MT_OK);
    free(d);
    mt_engine_close(e);
    free(pristine);
}

Test(kvsum, a_flipped_value_bit_of_every_database_is_an_error_naming_database_and_key)
{
    flip_each_database(false);
}

Test(kvsum, a_flipped_key_bit_of_every_database_is_an_error_naming_database_and_key)
{
    flip_each_database(true);
}

/* ---- format 1 ---------------------------------------------------------------- */

typedef struct plain_rec {
    void *k, *v;
    size_t kl, vl;
} plain_rec;

/* Rewrite DIR's index.mdb as a format-1 build wrote it: no trailers, meta version 1. */
static void downgrade_to_format1(void)
{
    mt_kv *kv;
    cr_assert_eq(mt_kv_open(dir, NULL, &kv), MT_OK);
    mt_kv_txn *t;
    cr_assert_eq(mt_kv_begin(kv, true, &t), MT_OK);
    for (int db = 0; db < MT_DB__COUNT; db++) {
        plain_rec *rs = NULL;
        size_t n = 0;
        mt_kv_cursor *c;
        cr_assert_eq(mt_kv_cursor_open(t, (mt_kv_db)db, &c), MT_OK);
        const void *k, *v;
        size_t kl, vl;
        int rc;
        for (rc = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl); rc == MT_OK;
             rc = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) { /* verified and stripped */
            rs = realloc(rs, (n + 1) * sizeof *rs);
            rs[n] = (plain_rec){malloc(kl), malloc(vl ? vl : 1), kl, vl};
            memcpy(rs[n].k, k, kl);
            memcpy(rs[n].v, v, vl);
            n++;
        }
        cr_assert_eq(rc, MT_ENOTFOUND);
        mt_kv_cursor_close(c);
        cr_assert_eq(mt_kv_drop_all(t, (mt_kv_db)db), MT_OK);
        mt_kv_set_checksums(kv, false);
        for (size_t i = 0; i < n; i++) {
            uint64_t one = 1;
            bool version = db == MT_DB_META && rs[i].kl == 7 && !memcmp(rs[i].k, "version", 7);
            cr_assert_eq(
                mt_kv_put(t, (mt_kv_db)db, rs[i].k, rs[i].kl, version ? &one : rs[i].v, rs[i].vl),
                MT_OK);
            free(rs[i].k);
            free(rs[i].v);
        }
        mt_kv_set_checksums(kv, true);
        free(rs);
    }
    cr_assert_eq(mt_kv_commit(t), MT_OK);
    mt_kv_close(kv);
}

/* Records of every database, each verified: the count; asserts none is damaged. */
static size_t verify_all(uint64_t *version)
{
    mt_kv *kv;
    mt_kv_options ko = {.read_only = true};
    cr_assert_eq(mt_kv_open(dir, &ko, &kv), MT_OK);
    mt_kv_txn *t;
    cr_assert_eq(mt_kv_begin(kv, false, &t), MT_OK);
    size_t total = 0;
    for (int db = 0; db < MT_DB__COUNT; db++) {
        mt_kv_cursor *c;
        cr_assert_eq(mt_kv_cursor_open(t, (mt_kv_db)db, &c), MT_OK);
        const void *k, *v;
        size_t kl, vl;
        int rc;
        for (rc = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl); rc == MT_OK;
             rc = mt_kv_cursor_next(c, &k, &kl, &v, &vl))
            total++;
        cr_assert_eq(rc, MT_ENOTFOUND, "%s: %s", db_names[db], mt_strerror(rc));
        mt_kv_cursor_close(c);
    }
    const void *v;
    size_t vl;
    cr_assert_eq(mt_kv_get(t, MT_DB_META, "version", 7, &v, &vl), MT_OK);
    cr_assert_eq(vl, 8);
    memcpy(version, v, 8);
    mt_kv_abort(t);
    mt_kv_close(kv);
    return total;
}

Test(kvsum, a_format1_index_is_read_as_it_is_and_migrated_in_place_at_open)
{
    populate();
    mt_engine *e = open_ok();
    char *before = NULL, *after = NULL, *ro = NULL;
    cr_assert_eq(dump(e, &before), MT_OK);
    mt_engine_close(e);
    uint64_t version;
    size_t records = verify_all(&version);
    cr_assert_eq(version, 6);
    downgrade_to_format1();
    /* format 1 as stored: the version record is 8 bytes, no trailer */
    char why[512];
    cr_assert_eq(read_db(MT_DB_SERIES_BY_ID, why, sizeof why), MT_ECORRUPT,
                 "a format-1 value does not pass as a format-2 one");

    /* a reader (metron --data) reads it as it is, and changes nothing */
    mt_engine_options o = opts(NULL, 0);
    o.read_only = true;
    mt_engine *r = NULL;
    cr_assert_eq(mt_engine_open(&o, &r), MT_OK);
    cr_assert_eq(dump(r, &ro), MT_OK);
    mt_engine_close(r);
    cr_expect_str_eq(ro, before);
    cr_assert_eq(read_db(MT_DB_SERIES_BY_ID, why, sizeof why), MT_ECORRUPT, "still format 1");

    /* the writer migrates it: every record gets its trailer, the answers are the same */
    e = open_ok();
    cr_assert_eq(dump(e, &after), MT_OK);
    mt_engine_close(e);
    cr_expect_str_eq(after, before);
    cr_expect_eq(verify_all(&version), records, "every record, each with its checksum");
    cr_expect_eq(version, 6);
    free(before);
    free(after);
    free(ro);
}

/* Points of series cpu,host=<host> <field> over all time, into ts/v (at most cap). */
static size_t read_series(mt_engine *e, const char *host, const char *field, int64_t *ts, double *v,
                          size_t cap)
{
    char k[512];
    mt_name tk[1] = {{"host", 4}}, tv[1] = {{host, strlen(host)}};
    size_t kl =
        mt_series_key(k, sizeof k, (mt_name){"cpu", 3}, tk, tv, 1, (mt_name){field, strlen(field)});
    uint32_t id;
    mt_vtype t;
    cr_assert_eq(mt_engine_series_lookup(e, k, kl, &id, &t), MT_OK, "%s %s", host, field);
    mt_scan *s;
    cr_assert_eq(mt_scan_open(e, id, 0, INT64_MAX, &s), MT_OK);
    mt_points p;
    size_t n = 0;
    int rc;
    while ((rc = mt_scan_next(s, &p)) == MT_OK)
        for (size_t i = 0; i < p.n && n < cap; i++, n++)
            ts[n] = p.ts[i], v[n] = t == MT_VT_INT ? (double)p.vals[i].i : p.vals[i].f;
    cr_assert_eq(rc, MT_ENOTFOUND, "%s", mt_strerror(rc));
    mt_scan_close(s);
    return n;
}

/*
 * tests/fixtures/format1.tar.gz: a data dir the format-1 build (main at
 * 22f8b40) wrote with `metron import --data`, from these lines:
 *   cpu,host=fx-a usage=i*0.5,idle=i       at 2025-01-01T00:00Z + i min, i < 120
 *   cpu,host=fx-b usage=100+i*0.5,idle=i   likewise
 *   cpu,host=fx-a usage=-i.25 (0.25 for i 0)  at 2030-01-01T00:00Z + i min, i < 10
 * (three sealed hours, their rollups, 4 series).
 */
Test(kvsum, a_data_dir_written_by_the_format1_build_opens_migrated_with_every_point)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "tar -xzf '%s/format1.tar.gz' -C '%s'", MT_FIXTURES, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    mt_engine *e = open_ok();
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.series, 4);
    cr_expect_eq(st.sealed_hours, 3);
    int64_t ts[200];
    double v[200];
    cr_assert_eq(read_series(e, "fx-a", "usage", ts, v, 200), 130);
    for (int i = 0; i < 120; i++) {
        cr_expect_eq(ts[i], T0 + i * 60 * S);
        cr_expect_eq(v[i], i * 0.5);
    }
    for (int i = 0; i < 10; i++) {
        cr_expect_eq(ts[120 + i], 1893456000LL * S + i * 60 * S);
        cr_expect_eq(v[120 + i], i ? -i - 0.25 : 0.25);
    }
    cr_assert_eq(read_series(e, "fx-b", "usage", ts, v, 200), 120);
    for (int i = 0; i < 120; i++) cr_expect_eq(v[i], 100 + i * 0.5);
    cr_assert_eq(read_series(e, "fx-b", "idle", ts, v, 200), 120);
    for (int i = 0; i < 120; i++) cr_expect_eq(v[i], i);
    uint32_t *ids = NULL;
    size_t n = 0;
    cr_expect_eq(
        mt_engine_postings(e, MT_TERM_TAG, (mt_name){"host", 4}, (mt_name){"fx-b", 4}, &ids, &n),
        MT_OK);
    cr_expect_eq(n, 2, "fx-b: usage and idle");
    free(ids);
    size_t rollups = 0;
    cr_expect_eq(mt_engine_rollups(e, INT32_MIN, INT32_MAX, false, count_rollup, &rollups), MT_OK);
    cr_expect_eq(rollups, 9, "series rollups: 4 in each of 2025's hours, 1 in 2030's: %zu",
                 rollups);
    mt_engine_close(e);
    uint64_t version;
    cr_expect_gt(verify_all(&version), 0);
    cr_expect_eq(version, 6);
}

Test(kvsum, a_newer_format_is_refused_with_its_version)
{
    populate();
    mt_kv *kv;
    cr_assert_eq(mt_kv_open(dir, NULL, &kv), MT_OK);
    mt_kv_txn *t;
    cr_assert_eq(mt_kv_begin(kv, true, &t), MT_OK);
    uint64_t seven = 7;
    cr_assert_eq(mt_kv_put(t, MT_DB_META, "version", 7, &seven, 8), MT_OK);
    cr_assert_eq(mt_kv_commit(t), MT_OK);
    mt_kv_close(kv);
    char why[512] = "";
    mt_engine_options o = opts(why, sizeof why);
    mt_engine *e = NULL;
    cr_assert_eq(mt_engine_open(&o, &e), MT_EFORMAT);
    cr_expect_not_null(strstr(why, "format 7"), "%s", why);
}

/* ---- LMDB's page structure ---------------------------------------------------- */

/*
 * The offset in b of the root page number of named database `name`, as the
 * main database records it (its root page a leaf). LMDB 0.9, 64-bit:
 * meta page = 16-byte page header, then mm_magic, mm_version, mm_address,
 * mm_mapsize, mm_dbs[2] (48 bytes each: FREE at 40, MAIN at 88; md_depth at
 * +6, md_root at +40), mm_last_pg, mm_txnid at 144; the current meta has
 * the higher txnid. A leaf page: mp_lower at 12, node offsets from 16; a
 * node: mn_ksize at 6, the key at 8, then the record (an MDB_db).
 */
static size_t named_root_offset(const uint8_t *b, size_t n, const char *name)
{
    uint32_t psize;
    uint64_t tx0, tx1, root;
    uint16_t depth, lower;
    memcpy(&psize, b + 40, 4);
    memcpy(&tx0, b + 144, 8);
    memcpy(&tx1, b + psize + 144, 8);
    const uint8_t *m = b + (tx1 > tx0 ? psize : 0);
    memcpy(&depth, m + 88 + 6, 2);
    memcpy(&root, m + 88 + 40, 8);
    cr_assert_eq(depth, 1, "the main database fits one leaf page");
    cr_assert_lt((root + 1) * psize, n + 1);
    const uint8_t *pg = b + root * psize;
    memcpy(&lower, pg + 12, 2);
    for (size_t i = 0; i < (size_t)(lower - 16) / 2; i++) {
        uint16_t off, ksize;
        memcpy(&off, pg + 16 + 2 * i, 2);
        memcpy(&ksize, pg + off + 6, 2);
        if (ksize == strlen(name) && !memcmp(pg + off + 8, name, ksize))
            return (size_t)(pg + off + 8 + ksize + 40 - b);
    }
    cr_assert_fail("no record of database %s in the main database", name);
    return 0;
}

/* Set the root page of db name to page, then open read-only and read-write: both refuse. */
static void damaged_root(const char *name, uint64_t page, const char *words)
{
    size_t n;
    uint8_t *b = slurp(index_path(), &n);
    memcpy(b + named_root_offset(b, n, name), &page, 8);
    spill(index_path(), b, n);
    free(b);
    for (int ro = 1; ro >= 0; ro--) {
        char why[2048] = "";
        mt_engine_options o = opts(why, sizeof why);
        o.read_only = ro;
        mt_engine *e = NULL;
        int rc = mt_engine_open(&o, &e);
        cr_expect_eq(rc, MT_ECORRUPT, "%s root page %llu, %s: %s (%s)", name,
                     (unsigned long long)page, ro ? "read-only" : "read-write", mt_strerror(rc),
                     why);
        cr_expect_not_null(strstr(why, index_path()), "%s", why);
        cr_expect_not_null(strstr(why, words), "%s", why);
        cr_expect_not_null(strstr(why, name), "%s", why);
        mt_engine_close(e);
    }
}

/* LMDB checks a page number against the meta's last page, but on opening a cursor it does not
   return the error: the next call's MDB_BAD_TXN must still be called damage, by database */
Test(kvsum, a_root_page_past_the_end_of_the_file_is_an_error_naming_the_database)
{
    populate();
    size_t n;
    free(slurp(index_path(), &n));
    damaged_root("hours", n / 4096 + 3, "LMDB page missing");
}

Test(kvsum, a_root_page_far_outside_the_map_is_an_error_naming_the_database)
{
    populate();
    damaged_root("series", (uint64_t)1 << 40, "LMDB page missing");
}

/* A page LMDB reads in place past the end of the file is a SIGBUS inside LMDB (truncated under
   a reader here; a damaged node offset or size does the same): an error, not a crash */
Test(kvsum, index_mdb_truncated_under_a_reader_is_an_error_naming_the_file_not_a_crash)
{
    populate();
    char why[2048] = "";
    mt_engine_options o = opts(why, sizeof why);
    o.read_only = true;
    mt_engine *e = NULL;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK, "%s", why);
    cr_assert_eq(truncate(index_path(), 2 * 4096), 0); /* the two meta pages stay */
    char *got = NULL;
    int rc = dump(e, &got);
    free(got);
    cr_expect_eq(rc, MT_ECORRUPT, "%s", mt_strerror(rc));
    lines l = {0};
    cr_expect_geq(mt_engine_damage(e, collect, &l), 1);
    cr_expect_not_null(strstr(l.text, index_path()), "%s", l.text);
    cr_expect_not_null(strstr(l.text, "past the end of the file"), "%s", l.text);
    rc = dump(e, &got); /* again: a new transaction meets the same fault, as an error */
    free(got);
    cr_expect_eq(rc, MT_ECORRUPT, "%s", mt_strerror(rc));
    mt_engine_close(e);
}

/* ---- random bit flips over the whole file ------------------------------------ */

static void copy_tree(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(kvsum, random_bit_flips_in_index_mdb_give_an_error_or_the_same_answers)
{
    populate();
    mt_engine *e = open_ok();
    char *want = NULL;
    cr_assert_eq(dump(e, &want), MT_OK);
    mt_engine_close(e);
    char pristine[300];
    snprintf(pristine, sizeof pristine, "%s.pristine", dir);
    copy_tree(dir, pristine);
    size_t n;
    uint8_t *bytes = slurp(index_path(), &n);
    const char *env = getenv("MT_KVSUM_FLIPS");
    int trials = env ? atoi(env) : 300;
    /* A fixed seed in the suite, so that a run is repeatable; MT_TEST_SEED explores */
    uint64_t seed = getenv("MT_TEST_SEED") ? mt_test_seed() : 12345;
    uint64_t rs = seed;
    int same = 0, refused = 0, failed = 0, silent = 0, crashed = 0, meta_silent = 0;
    for (int i = 0; i < trials; i++) {
        size_t bit = (size_t)(mt_test_rand(&rs) % (n * 8));
        if (getenv("MT_KVSUM_BIT")) bit = strtoull(getenv("MT_KVSUM_BIT"), NULL, 10); /* replay */
        copy_tree(pristine, dir);
        uint8_t *copy = malloc(n);
        memcpy(copy, bytes, n);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        spill(index_path(), copy, n);
        free(copy);
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) { /* the child opens and reads; its exit status is the outcome */
            mt_engine_options o = opts(NULL, 0);
            mt_engine *c = NULL;
            if (mt_engine_open(&o, &c)) _exit(10);
            char *got = NULL;
            int rc = dump(c, &got);
            mt_engine_close(c);
            _exit(rc ? 11 : strcmp(got, want) ? 12 : 0);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (code == 0) same++;
        if (code == 10) refused++;
        if (code == 11) failed++;
        if (code == 12 && bit / 8 < 2 * 4096) meta_silent++;
        if (code == 12 && bit / 8 >= 2 * 4096) {
            silent++;
            cr_log_error("silent difference: bit %zu (byte %zu, page %zu)", bit, bit / 8,
                         bit / 8 / 4096);
        }
        if (code < 0 || (code != 0 && code < 10) || code > 12) {
            crashed++;
            cr_log_error("crash: bit %zu (byte %zu, page %zu), status %#x", bit, bit / 8,
                         bit / 8 / 4096, status);
        }
    }
    copy_tree(pristine, dir);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", pristine);
    cr_assert_eq(system(cmd), 0);
    fprintf(stderr,
            "kvsum flips (seed %llu, %zu-byte index.mdb): %d trials: %d same answers, %d open "
            "refused, %d read failed, %d silent (meta pages: %d), %d crashed\n",
            (unsigned long long)seed, n, trials, same, refused, failed, silent, meta_silent,
            crashed);
    free(bytes);
    free(want);
    cr_expect_eq(silent, 0, "seed %llu", (unsigned long long)seed);
    cr_expect_eq(crashed, 0, "seed %llu", (unsigned long long)seed);
}
