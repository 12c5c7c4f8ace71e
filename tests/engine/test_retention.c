/*
 * test_retention.c — retention and compaction on a real data directory:
 * expired data is gone from scans, whole hours lose their files and the
 * bytes on disk fall, hours that mix policies are rewritten without the
 * expired series, rollups follow their own keep, a failed commit changes
 * nothing, and compaction merges backfill and shrinks index.mdb.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mt_engine.h"
#include "mt_fault.h"
#include "mt_series.h"
#include "test_util.h"

#define H   MT_HOUR_NS
#define DAY (24 * H)
#define T0  (1735689600LL * 1000000000LL) /* 2025-01-01T00:00:00Z */
#define NOW (T0 + 10 * DAY)

static char dir[256];

static int64_t clock_fn(void *ud)
{
    (void)ud;
    return NOW;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-retention-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(retention, .init = setup, .fini = teardown);

static mt_engine *open_engine(void)
{
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    o.clock_ns = clock_fn;
    mt_engine *e = NULL;
    int rc = mt_engine_open(&o, &e);
    cr_assert_eq(rc, MT_OK, "open: %s", mt_strerror(rc));
    return e;
}

/* m,business_id=<tenant>,host=h v ("" tenant: no business_id tag, the system-wide one) */
static size_t key(char *out, const char *m, const char *tenant)
{
    mt_name tk[2] = {{"business_id", 11}, {"host", 4}},
            tv[2] = {{tenant, strlen(tenant)}, {"h", 1}};
    size_t n = *tenant
                   ? mt_series_key(out, 512, (mt_name){m, strlen(m)}, tk, tv, 2, (mt_name){"v", 1})
                   : mt_series_key(out, 512, (mt_name){m, strlen(m)}, tk + 1, tv + 1, 1,
                                   (mt_name){"v", 1});
    cr_assert_gt(n, 0);
    return n;
}

static const char *const ms[2] = {"cpu", "mem"}, *const tenants[3] = {"A", "B", ""};

/* 10 days, 6 points an hour, for every measurement and tenant; all sealed. */
static void fill(mt_engine *e)
{
    mt_batch *b = mt_batch_new();
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 3; t++) {
            char k[512];
            size_t kl = key(k, ms[m], tenants[t]);
            for (int64_t i = 0; i < 240 * 6; i++)
                cr_assert_eq(mt_batch_add(b, k, kl, T0 + i * 600 * 1000000000LL, MT_VT_FLOAT,
                                          (mt_val){.f = (double)(i % 97) + m}, NULL),
                             MT_OK);
        }
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_assert_eq(r.accepted, 6 * 240 * 6);
    mt_batch_free(b);
    size_t hours;
    cr_assert_eq(mt_engine_seal(e, true, &hours), MT_OK);
    cr_assert_eq(hours, 240);
}

static size_t points(mt_engine *e, const char *m, const char *tenant, int64_t *first)
{
    char k[512];
    size_t kl = key(k, m, tenant), n = 0;
    uint32_t id;
    mt_vtype t;
    cr_assert_eq(mt_engine_series_lookup(e, k, kl, &id, &t), MT_OK);
    mt_scan *s;
    cr_assert_eq(mt_scan_open(e, id, INT64_MIN, INT64_MAX, &s), MT_OK);
    mt_points p;
    *first = INT64_MAX;
    while (mt_scan_next(s, &p) == MT_OK) {
        if (!n) *first = p.ts[0];
        n += p.n;
    }
    mt_scan_close(s);
    return n;
}

static uint64_t disk_bytes(const char *sub)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "du -sb %s/%s | cut -f1", dir, sub);
    FILE *f = popen(cmd, "r");
    unsigned long long n = 0;
    cr_assert_eq(fscanf(f, "%llu", &n), 1);
    pclose(f);
    return n;
}

static int files(const char *suffix)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "find %s/blocks -name '*%s' | wc -l", dir, suffix);
    FILE *f = popen(cmd, "r");
    int n = -1;
    cr_assert_eq(fscanf(f, "%d", &n), 1);
    pclose(f);
    return n;
}

static int first_rollup(void *ud, const mt_rollup *r)
{
    int64_t *first = ud;
    if (r->hour < *first) *first = r->hour;
    return 0;
}

static int count_rollup(void *ud, const mt_rollup *r)
{
    (void)r;
    (*(size_t *)ud)++;
    return 0;
}

/*
 * default 5 days; mem 2 days; tenant B 8 days (the tenant rule wins over
 * the measurement rule for mem of B); rollups 7 days.
 */
static const mt_retention_rule rules[] = {{.measurement = "mem", .keep_ns = 2 * DAY},
                                          {.business_id = "B", .keep_ns = 8 * DAY}};
static const mt_retention policy = {
    .keep_ns = 5 * DAY, .rules = rules, .nrules = 2, .rollup_keep_ns = 7 * DAY};

static void check_applied(mt_engine *e)
{
    int64_t first;
    /* hour h of a series is gone when h + 1 <= 240 - keep in hours */
    cr_expect_eq(points(e, "cpu", "A", &first), 120 * 6);
    cr_expect_eq(first, T0 + 120 * H);
    cr_expect_eq(points(e, "cpu", "", &first), 120 * 6);
    cr_expect_eq(points(e, "mem", "A", &first), 48 * 6);
    cr_expect_eq(first, T0 + 192 * H);
    cr_expect_eq(points(e, "cpu", "B", &first), 192 * 6);
    cr_expect_eq(points(e, "mem", "B", &first), 192 * 6, "the tenant rule wins");
    cr_expect_eq(files(".blk"), 192, "48 whole hours unlinked");
    /* rollups keep 7 days: hours from 72 on, also those whose raw cpu/A points are gone */
    int64_t fr = INT64_MAX;
    cr_assert_eq(mt_engine_rollups(e, INT32_MIN, INT32_MAX, true, first_rollup, &fr), MT_OK);
    cr_expect_eq(fr, T0 / H + 72);
    size_t n = 0;
    cr_assert_eq(mt_engine_rollups(e, T0 / H + 72, T0 / H + 120, true, count_rollup, &n), MT_OK);
    cr_expect_eq(n, 48 * 6, "every group of hours 72-119 keeps its rollup");
    n = 0;
    cr_assert_eq(mt_engine_rollups(e, INT32_MIN, T0 / H + 72, false, count_rollup, &n), MT_OK);
    cr_expect_eq(n, 0, "series rollups follow the same keep");
}

Test(retention, expired_data_goes_whole_hours_are_unlinked_and_bytes_fall)
{
    mt_engine *e = open_engine();
    fill(e);
    uint64_t before = disk_bytes("blocks");
    mt_retention_result r;
    cr_assert_eq(mt_engine_retention(e, &policy, NOW, true, &r), MT_OK);
    cr_expect_eq(r.hours_dropped, 48);
    cr_expect_eq(r.hours_rewritten, 144);
    cr_expect_eq(files(".blk"), 240, "a dry run changes nothing");
    cr_assert_eq(mt_engine_retention(e, &policy, NOW, false, &r), MT_OK);
    cr_expect_eq(r.hours_dropped, 48);
    cr_expect_eq(r.hours_rewritten, 144);
    /* hours 0-47: 6 series; 48-119: 4 (all but B's); 120-191: 2 (mem of A and none) */
    cr_expect_eq(r.chunks_dropped, 48 * 6 + 72 * 4 + 72 * 2);
    cr_expect_eq(r.points_dropped, r.chunks_dropped * 6);
    cr_expect_eq(r.rollup_hours_dropped, 72);
    cr_expect_gt(r.bytes_freed, 0);
    uint64_t after = disk_bytes("blocks");
    cr_expect_lt(after, before, "bytes on disk fall: %llu -> %llu", (unsigned long long)before,
                 (unsigned long long)after);
    cr_expect_eq(before - after, r.bytes_freed);
    check_applied(e);
    /* again: nothing left to do */
    cr_assert_eq(mt_engine_retention(e, &policy, NOW, false, &r), MT_OK);
    cr_expect_eq(r.hours_dropped + r.hours_rewritten + r.rollup_hours_dropped, 0);
    mt_engine_close(e);
    /* reopened: the same state, no stray files */
    e = open_engine();
    check_applied(e);
    cr_expect_eq(files(".tmp"), 0);
    mt_engine_close(e);
}

Test(retention, a_read_only_snapshot_can_dry_run_only)
{
    mt_engine *e = open_engine();
    fill(e);
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.read_only = true;
    mt_engine *ro;
    cr_assert_eq(mt_engine_open(&o, &ro), MT_OK);
    mt_retention_result r;
    cr_assert_eq(mt_engine_retention(ro, &policy, NOW, true, &r), MT_OK);
    cr_expect_eq(r.hours_dropped, 48);
    cr_expect_eq(r.hours_rewritten, 144);
    cr_expect_eq(r.rollup_hours_dropped, 72);
    cr_expect_eq(mt_engine_retention(ro, &policy, NOW, false, &r), MT_EINVAL);
    mt_engine_close(ro);
    mt_engine_close(e);
}

#ifdef MT_FAULT_INJECTION
Test(retention, a_failed_commit_changes_nothing)
{
    mt_engine *e = open_engine();
    fill(e);
    mt_fault_set("kv.commit", 1);
    mt_retention_result r;
    cr_expect_neq(mt_engine_retention(e, &policy, NOW, false, &r), MT_OK);
    mt_engine_close(e);
    e = open_engine(); /* recovery removes the rewritten files nobody names */
    cr_expect_eq(files(".blk"), 240);
    int64_t first;
    cr_expect_eq(points(e, "mem", "A", &first), 240 * 6);
    cr_expect_eq(first, T0);
    cr_assert_eq(mt_engine_retention(e, &policy, NOW, false, &r), MT_OK);
    check_applied(e);
    mt_engine_close(e);
}
#endif

Test(retention, compaction_merges_backfill_and_shrinks_the_index)
{
    mt_engine *e = open_engine();
    fill(e);
    /* churn: the head log's pages come and go, leaving free pages in index.mdb */
    mt_batch *b = mt_batch_new();
    char k[512];
    size_t kl = key(k, "cpu", "A");
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 5000; i++)
            mt_batch_add(b, k, kl, NOW + (int64_t)(round * 5000 + i) * 1000000, MT_VT_FLOAT,
                         (mt_val){.f = i}, NULL);
        mt_write_result r;
        cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
        mt_batch_reset(b);
        cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    }
    /* backfill: late points for two sealed hours */
    mt_batch_add(b, k, kl, T0 + 5 * H + 1, MT_VT_FLOAT, (mt_val){.f = -1}, NULL);
    mt_batch_add(b, k, kl, T0 + 9 * H + 1, MT_VT_FLOAT, (mt_val){.f = -2}, NULL);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    mt_batch_free(b);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_assert_eq(st.head_points, 2);
    mt_compact_result c;
    cr_assert_eq(mt_engine_compact(e, true, NULL, NULL, &c), MT_OK);
    cr_expect_eq(c.hours_rewritten, 2);
    cr_expect_lt(c.index_after, c.index_before, "index.mdb %llu -> %llu",
                 (unsigned long long)c.index_before, (unsigned long long)c.index_after);
    struct stat sb;
    cr_assert_eq(stat(strcat(strcpy((char[300]){0}, dir), "/index.mdb"), &sb), 0);
    cr_expect_eq((uint64_t)sb.st_size, c.index_after);
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.head_points, 0, "the late points are in their hours' files now");
    int64_t first;
    cr_expect_eq(points(e, "cpu", "A", &first), 240 * 6 + 2 + 100000);
    /* the engine goes on writing and reading after the swap */
    b = mt_batch_new();
    mt_batch_add(b, k, kl, NOW + 200 * 1000000LL, MT_VT_FLOAT, (mt_val){.f = 1}, NULL);
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    mt_batch_free(b);
    mt_engine_close(e);
    e = open_engine();
    cr_expect_eq(points(e, "cpu", "A", &first), 240 * 6 + 2 + 100000);
    cr_expect_eq(points(e, "mem", "B", &first), 240 * 6);
    mt_engine_close(e);
}
