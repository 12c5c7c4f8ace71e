/*
 * test_query_pg.c — a DBA's check: the hourly p50/p95/p99 that Metron's
 * query engine returns by region, and the hourly rollups it stores at
 * sealing, equal, bit for bit, what PostgreSQL computes (percentile_cont,
 * the seed's materialized view) on the same points loaded into the test
 * server (METRON_TEST_PG, started by tools/test.sh).
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_pg.h"
#include "mt_query.h"
#include "mt_time.h"
#include "test_util.h"

#define T0 (1735689600LL * 1000000000LL)
#define S  1000000000LL

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

Test(query_pg, hourly_quantiles_by_region_equal_postgresql, .timeout = 120)
{
    char err[512] = "";
    mt_pg *pg = NULL;
    cr_assert_eq(mt_pg_open(mt_test_pg_url(), &pg, err, sizeof err), MT_OK, "%s", err);
    cr_assert_eq(mt_pg_exec(pg, "DROP TABLE IF EXISTS qpoints", 0, NULL), MT_OK);
    cr_assert_eq(
        mt_pg_exec(pg, "CREATE TABLE qpoints (region text, ts timestamptz, v float8)", 0, NULL),
        MT_OK, "%s", mt_pg_errmsg(pg));

    char dir[] = "/tmp/metron-query-pg-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    mt_engine_options o = mt_engine_options_default();
    o.settle_records = 0; /* hours seal as soon as the watermark passes them */
    o.dir = dir;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    mt_batch *b = mt_batch_new();
    uint64_t seed = mt_test_seed();
    /* 12 hosts in 3 regions, 3 hours, a point every 15 s: values with two decimals */
    size_t cap = 1 << 20;
    char *rows[3] = {0};
    size_t rlen[3] = {0};
    for (int r = 0; r < 3; r++) rows[r] = malloc(cap), rows[r][rlen[r]++] = '{';
    for (int h = 0; h < 12; h++) {
        char host[8], region[8], key[256];
        snprintf(host, sizeof host, "h%d", h);
        snprintf(region, sizeof region, "r%d", h % 3);
        mt_name tk[2] = {{"host", 4}, {"region", 6}}, tv[2] = {{host, strlen(host)}, {region, 2}};
        size_t kl =
            mt_series_key(key, sizeof key, (mt_name){"lat", 3}, tk, tv, 2, (mt_name){"ms", 2});
        double x = 50;
        for (int i = 0; i < 3 * 240; i++) {
            x += (double)((int64_t)(mt_test_rand(&seed) % 401) - 200) / 100;
            double v = (double)llround(x * 100) / 100;
            int64_t ts = T0 + (int64_t)i * 15 * S;
            cr_assert_eq(mt_batch_add(b, key, kl, ts, MT_VT_FLOAT, (mt_val){.f = v}, NULL), MT_OK);
            /* the same point for PostgreSQL: "(region,epoch,value)" rows, loaded below */
            int r = h % 3;
            rlen[r] += (size_t)snprintf(rows[r] + rlen[r], cap - rlen[r], "%s\"%lld %.17g\"",
                                        rlen[r] > 1 ? "," : "", (long long)(ts / S), v);
        }
    }
    mt_write_result wr;
    cr_assert_eq(mt_engine_write(e, b, &wr), MT_OK);
    cr_assert_eq(mt_engine_seal(e, false, NULL), MT_OK); /* some hours sealed, some in the head */
    mt_batch_free(b);
    for (int r = 0; r < 3; r++) {
        rows[r][rlen[r]++] = '}';
        rows[r][rlen[r]] = '\0';
        char region[8];
        snprintf(region, sizeof region, "r%d", r);
        const char *params[] = {region, rows[r]};
        cr_assert_eq(mt_pg_exec(pg,
                                "INSERT INTO qpoints SELECT $1, to_timestamp(split_part(p, ' ', "
                                "1)::float8), split_part(p, ' ', 2)::float8 FROM "
                                "unnest($2::text[]) AS p",
                                2, params),
                     MT_OK, "%s", mt_pg_errmsg(pg));
        free(rows[r]);
    }

    mt_agg aggs[3];
    size_t na;
    cr_assert_eq(mt_agg_parse("p50,p95,p99", aggs, 3, &na, err, sizeof err), MT_OK);
    mt_query_spec spec = {.select = "lat.ms",
                          .from = T0,
                          .to = T0 + 3 * MT_HOUR_NS,
                          .step = MT_HOUR_NS,
                          .aggs = aggs,
                          .naggs = na,
                          .by = {"region"},
                          .nby = 1};
    mt_query *q;
    cr_assert_eq(mt_query_open(e, &spec, &q, err, sizeof err), MT_OK, "%s", err);
    mt_row row;
    int n = 0;
    while (mt_query_next(q, &row) == MT_OK) {
        char region[16], hour[32], got[512];
        snprintf(region, sizeof region, "%s", row.group + strlen("region="));
        snprintf(hour, sizeof hour, "%lld", (long long)(row.time / S));
        const char *params[] = {region, hour};
        cr_assert_eq(mt_pg_query_value(pg,
                                       "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN "
                                       "GROUP (ORDER BY v) FROM qpoints WHERE region = $1 AND "
                                       "date_trunc('hour', ts) = to_timestamp($2::bigint)",
                                       2, params, got, sizeof got),
                     MT_OK, "%s", mt_pg_errmsg(pg));
        char *p = got + 1;
        for (size_t k = 0; k < na; k++) {
            char *end;
            double theirs = strtod(p, &end);
            cr_assert_eq(row.values[k], theirs, "%s hour %s %s: metron %.17g, postgresql %.17g",
                         region, hour, aggs[k].name, row.values[k], theirs);
            p = end + 1;
        }
        n++;
    }
    cr_expect_eq(n, 9, "3 regions x 3 hours");
    mt_query_close(q);
    mt_engine_close(e);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    mt_pg_exec(pg, "DROP TABLE qpoints", 0, NULL);
    mt_pg_close(pg);
}

typedef struct rows {
    char text[256][256];
    int n;
} rows;

static int collect(void *ud, const mt_rollup *r)
{
    rows *x = ud;
    if (x->n < 256)
        snprintf(x->text[x->n++], 256,
                 "%lld|%.*s|%.*s|%.*s|%llu|%.17g|%.17g|%.17g|%.17g|%.17g|%.17g", (long long)r->hour,
                 (int)r->business_id.len, r->business_id.ptr, (int)r->measurement.len,
                 r->measurement.ptr, (int)r->field.len, r->field.ptr, (unsigned long long)r->count,
                 r->sum / (double)r->count, r->min, r->max, r->p50, r->p95, r->p99);
    return 0;
}

/* A growing text array literal for a query parameter: {a,b,...}. */
typedef struct arr {
    char *s;
    size_t len, cap;
} arr;

static void arr_add(arr *a, const char *fmt, ...)
{
    if (a->cap - a->len < 128) {
        a->cap = a->cap ? a->cap * 2 : 1 << 20;
        a->s = realloc(a->s, a->cap);
        if (!a->len) a->s[a->len++] = '{';
    }
    if (a->len > 1) a->s[a->len++] = ',';
    va_list ap;
    va_start(ap, fmt);
    a->len += (size_t)vsnprintf(a->s + a->len, a->cap - a->len, fmt, ap);
    va_end(ap);
}

static const char *arr_end(arr *a)
{
    a->s[a->len++] = '}';
    a->s[a->len] = '\0';
    return a->s;
}

/*
 * The group rollups Metron stores at sealing against the seed's
 * materialized view hourly_metrics_summary, created as the seed writes it
 * over the seed's performance_metrics (partitioned by range; metric_value
 * double precision, the audit's fix for NUMERIC(15,6) overflow) and
 * refreshed: 259,200 points, 5 tenants one of which is the NULL
 * (system-wide) one, 3 fields, 6 hours. The same rows; count, min, max and
 * the three quantiles equal; avg to 1e-9 relative.
 */
Test(query_pg, hourly_rollups_equal_the_seed_materialized_view, .timeout = 300)
{
    char err[512] = "";
    mt_pg *pg = NULL;
    cr_assert_eq(mt_pg_open(mt_test_pg_url(), &pg, err, sizeof err), MT_OK, "%s", err);
    mt_pg_exec(pg, "DROP SCHEMA IF EXISTS rollup_exact CASCADE", 0, NULL);
    /* the seed's view keeps the last 30 days: the points are recent hours */
    int64_t t0 = (mt_now_ns() / MT_HOUR_NS - 8) * MT_HOUR_NS;
    char ddl[2048];
    cr_assert_eq(mt_pg_exec(pg, "CREATE SCHEMA rollup_exact", 0, NULL), MT_OK);
    cr_assert_eq(
        mt_pg_exec(pg,
                   "CREATE TABLE rollup_exact.performance_metrics (id uuid DEFAULT "
                   "gen_random_uuid(), business_id uuid, metric_name varchar(100) NOT NULL, "
                   "metric_category varchar(50) NOT NULL, metric_type varchar(20) NOT NULL, "
                   "metric_value double precision NOT NULL, metric_unit varchar(20), dimensions "
                   "jsonb DEFAULT '{}', tags jsonb DEFAULT '{}', collected_at timestamptz NOT NULL "
                   "DEFAULT now(), created_at timestamptz DEFAULT now(), retention_policy "
                   "varchar(20) DEFAULT 'standard') PARTITION BY RANGE (collected_at)",
                   0, NULL),
        MT_OK, "%s", mt_pg_errmsg(pg));
    snprintf(ddl, sizeof ddl,
             "CREATE TABLE rollup_exact.pm_recent PARTITION OF rollup_exact.performance_metrics "
             "FOR VALUES FROM (to_timestamp(%lld) - interval '1 day') TO (to_timestamp(%lld) + "
             "interval '1 day')",
             (long long)(t0 / S), (long long)(t0 / S));
    cr_assert_eq(mt_pg_exec(pg, ddl, 0, NULL), MT_OK, "%s", mt_pg_errmsg(pg));
    char dir[] = "/tmp/metron-rollup-pg-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    mt_engine_options o = mt_engine_options_default();
    o.settle_records = 0; /* hours seal as soon as the watermark passes them */
    o.dir = dir;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    uint64_t seed = mt_test_seed();
    const char *tenants[] = {
        "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333", "44444444-4444-4444-8444-444444444444", NULL};
    const char *fields[] = {"usage", "iowait", "latency_ms"};
    enum { HOSTS = 40, HOURS = 6, PER_HOUR = 360 };
    for (int h = 0; h < HOSTS; h++) {
        mt_batch *b = mt_batch_new();
        arr tenant = {0}, name = {0}, ts_a = {0}, val = {0};
        const char *t = tenants[h % 5];
        char host[8], key[256];
        snprintf(host, sizeof host, "h%d", h);
        mt_name tk[2] = {{"business_id", 11}, {"host", 4}},
                tv[2] = {{t ? t : "", t ? 36 : 0}, {host, strlen(host)}};
        for (int f = 0; f < 3; f++) {
            /* no business_id tag at all for the system-wide tenant */
            mt_name fn = {fields[f], strlen(fields[f])};
            size_t kl =
                t ? mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk, tv, 2, fn)
                  : mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk + 1, tv + 1, 1, fn);
            double x = 40 + f * 10;
            for (int i = 0; i < HOURS * PER_HOUR; i++) {
                double v;
                if (f < 2) { /* a random walk in hundredths: many ties */
                    x += (double)((int64_t)(mt_test_rand(&seed) % 301) - 150) / 100;
                    v = (double)llround(x * 100) / 100;
                } else { /* heavy-tailed latencies, full precision */
                    double u = ((double)(mt_test_rand(&seed) >> 11) + 0.5) / 9007199254740992.0;
                    v = 0.5 / pow(u, 1 / 1.3);
                }
                int64_t ts = t0 + (int64_t)i * 10 * S + h * 100000000LL;
                cr_assert_eq(mt_batch_add(b, key, kl, ts, MT_VT_FLOAT, (mt_val){.f = v}, NULL),
                             MT_OK);
                arr_add(&tenant, "%s", t ? t : "NULL");
                arr_add(&name, "%s", fields[f]);
                arr_add(&ts_a, "%lld.%09lld", (long long)(ts / S), (long long)(ts % S));
                arr_add(&val, "%.17g", v);
            }
        }
        mt_write_result wr;
        cr_assert_eq(mt_engine_write(e, b, &wr), MT_OK);
        mt_batch_free(b);
        const char *params[] = {arr_end(&tenant), arr_end(&name), arr_end(&ts_a), arr_end(&val)};
        cr_assert_eq(mt_pg_exec(pg,
                                "INSERT INTO rollup_exact.performance_metrics (business_id, "
                                "metric_category, metric_name, metric_type, metric_value, "
                                "collected_at) SELECT b, 'cpu', n, 'gauge', v, to_timestamp(t) "
                                "FROM unnest($1::uuid[], $2::text[], $3::float8[], "
                                "$4::float8[]) AS u(b, n, t, v)",
                                4, params),
                     MT_OK, "%s", mt_pg_errmsg(pg));
        free(tenant.s), free(name.s), free(ts_a.s), free(val.s);
    }
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    /* the seed's view, word for word but for the schema */
    cr_assert_eq(
        mt_pg_exec(pg,
                   "CREATE MATERIALIZED VIEW rollup_exact.hourly_metrics_summary AS SELECT "
                   "DATE_TRUNC('hour', collected_at) as hour_bucket, business_id, "
                   "metric_category, metric_name, COUNT(*) as sample_count, AVG(metric_value) "
                   "as avg_value, MIN(metric_value) as min_value, MAX(metric_value) as "
                   "max_value, PERCENTILE_CONT(0.50) WITHIN GROUP (ORDER BY metric_value) as "
                   "median_value, PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY metric_value) "
                   "as p95_value, PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY metric_value) "
                   "as p99_value FROM rollup_exact.performance_metrics WHERE collected_at >= "
                   "NOW() - INTERVAL '30 days' GROUP BY hour_bucket, business_id, "
                   "metric_category, metric_name WITH NO DATA",
                   0, NULL),
        MT_OK, "%s", mt_pg_errmsg(pg));
    cr_assert_eq(
        mt_pg_exec(pg, "REFRESH MATERIALIZED VIEW rollup_exact.hourly_metrics_summary", 0, NULL),
        MT_OK, "%s", mt_pg_errmsg(pg));
    rows mine = {.n = 0};
    cr_assert_eq(mt_engine_rollups(e, INT64_MIN, INT64_MAX, true, collect, &mine), MT_OK);
    /* the seed's view, as written there, over the same rows */
    static char got[1 << 18];
    cr_assert_eq(
        mt_pg_query_value(
            pg,
            "SELECT string_agg(concat_ws('|', (extract(epoch from hour_bucket) / "
            "3600)::bigint, coalesce(business_id::text, ''), metric_category, "
            "metric_name, sample_count, avg_value, min_value, max_value, median_value, "
            "p95_value, p99_value), E'\\n' ORDER BY (extract(epoch from hour_bucket) / "
            "3600)::bigint, coalesce(business_id::text, ''), metric_category, metric_name) "
            "FROM rollup_exact.hourly_metrics_summary",
            0, NULL, got, sizeof got),
        MT_OK, "%s", mt_pg_errmsg(pg));
    /* compare row by row: the same keys and counts; values equal (avg to 1e-9) */
    int n = 0;
    for (char *save, *line = strtok_r(got, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), n++) {
        cr_assert_lt(n, mine.n, "PostgreSQL has more rows than Metron");
        char *a = line, *m = mine.text[n];
        for (int col = 0; col < 11; col++) {
            char *ae = strchr(a, '|'), *me = strchr(m, '|');
            size_t al = ae ? (size_t)(ae - a) : strlen(a), ml = me ? (size_t)(me - m) : strlen(m);
            if (col < 5) {
                cr_assert(al == ml && !memcmp(a, m, al),
                          "row %d col %d: postgresql %.*s, metron %.*s", n, col, (int)al, a,
                          (int)ml, m);
            } else {
                double pv = strtod(a, NULL), mv = strtod(m, NULL);
                if (col == 5)
                    cr_assert(fabs(pv - mv) <= 1e-9 * fabs(pv), "row %d avg", n);
                else
                    cr_assert_eq(pv, mv, "row %d col %d: postgresql %.17g, metron %.17g", n, col,
                                 pv, mv);
            }
            a = ae ? ae + 1 : a + al;
            m = me ? me + 1 : m + ml;
        }
    }
    cr_expect_eq(n, mine.n, "Metron has %d rows, PostgreSQL %d", mine.n, n);
    cr_expect_eq(n, 5 * 3 * HOURS, "5 tenants (one the NULL one) x 3 fields x 6 hours");
    mt_engine_close(e);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    mt_pg_exec(pg, "DROP SCHEMA rollup_exact CASCADE", 0, NULL);
    mt_pg_close(pg);
}
