/*
 * test_floor.c — the engine's commit hook and commit floor (mt_engine.h,
 * opt.committed and mt_engine_floor_get/raise): what the minute mirror
 * (sql/mt_minute.h) counts on to lose nothing to a crash.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_engine.h"
#include "test_util.h"

#define MIN_NS (60LL * 1000000000LL)

static char dir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-floor-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(floor, .init = setup, .fini = teardown);

typedef struct seen {
    int64_t ts[64];
    size_t n;
} seen;

static void on_commit(void *ud, int64_t ts)
{
    seen *s = ud;
    if (s->n < 64) s->ts[s->n++] = ts;
}

static mt_engine *open_engine(seen *s)
{
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    o.committed = s ? on_commit : NULL;
    o.committed_ud = s;
    o.committed_step_ns = MIN_NS;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    return e;
}

/* Points of cpu,host=a usage at ts[0..n) (ns). */
static void write_at(mt_engine *e, const int64_t *ts, size_t n)
{
    char key[128];
    mt_name tk[] = {{"host", 4}}, tv[] = {{"a", 1}};
    size_t kl = mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk, tv, 1, (mt_name){"u", 1});
    cr_assert_gt(kl, 0);
    mt_batch *b = mt_batch_new();
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(
            mt_batch_add(b, key, kl, ts[i], MT_VT_FLOAT, (mt_val){.f = 1.0 * (double)i}, NULL),
            MT_OK);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_assert_eq(r.accepted, n);
    mt_batch_free(b);
}

Test(floor, the_hook_hears_each_minute_of_a_batch_once_before_the_callback)
{
    seen s = {.n = 0};
    mt_engine *e = open_engine(&s);
    int64_t t0 = 1000 * MIN_NS;
    int64_t ts[] = {t0, t0 + 1, t0 + 2, t0 + MIN_NS, t0 + MIN_NS + 5, t0 - 1};
    write_at(e, ts, 6);
    /* mt_engine_write returned after the callback: the hook ran before it */
    cr_assert_eq(s.n, 3, "three runs of minutes: %zu", s.n);
    cr_expect_eq(s.ts[0], t0);
    cr_expect_eq(s.ts[1], t0 + MIN_NS);
    cr_expect_eq(s.ts[2], t0 - 1);
    mt_engine_close(e);
}

Test(floor, a_commit_below_the_floor_lowers_it_durably_and_raise_never_skips_a_commit)
{
    mt_engine *e = open_engine(NULL);
    int64_t f;
    cr_assert_eq(mt_engine_floor_get(e, &f), MT_OK);
    cr_expect_eq(f, MT_TS_MAX, "a new directory: nothing to mirror yet");
    int64_t t0 = 2000 * MIN_NS;
    write_at(e, &t0, 1);
    cr_assert_eq(mt_engine_floor_get(e, &f), MT_OK);
    cr_expect_eq(f, t0, "the first commit lowers it");
    cr_assert_eq(mt_engine_floor_raise(e, t0 + 10 * MIN_NS), MT_OK);
    cr_assert_eq(mt_engine_floor_get(e, &f), MT_OK);
    cr_expect_eq(f, t0 + 10 * MIN_NS, "raised");
    /* a point committed between get and raise holds the floor at it */
    int64_t t1 = t0 + 12 * MIN_NS;
    write_at(e, &t1, 1);
    cr_assert_eq(mt_engine_floor_raise(e, t0 + 20 * MIN_NS), MT_OK);
    cr_assert_eq(mt_engine_floor_get(e, &f), MT_OK);
    cr_expect_eq(f, t1, "not past a point committed while the mirror computed");
    /* a late point lowers it in its own commit: a reopen (as after kill -9) finds it */
    int64_t late = t0 - 30 * MIN_NS;
    write_at(e, &late, 1);
    mt_engine_close(e);
    e = open_engine(NULL);
    cr_assert_eq(mt_engine_floor_get(e, &f), MT_OK);
    cr_expect_eq(f, late, "the late point's floor survives the reopen");
    /* never lowered by raise */
    cr_assert_eq(mt_engine_floor_raise(e, late - MIN_NS), MT_OK);
    cr_assert_eq(mt_engine_floor_get(e, &f), MT_OK);
    cr_expect_eq(f, late);
    mt_engine_close(e);
}
