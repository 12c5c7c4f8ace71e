/*
 * test_query_pg.c — a DBA's check: the hourly p50/p95/p99 that Metron's
 * query engine returns by region equal, bit for bit, what PostgreSQL's
 * percentile_cont returns on the same points loaded into a table of the
 * test server (METRON_TEST_PG, started by tools/test.sh).
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_pg.h"
#include "mt_query.h"
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
    char text[64][256];
    int n;
} rows;

static int collect(void *ud, const mt_rollup *r)
{
    rows *x = ud;
    if (x->n < 64)
        snprintf(x->text[x->n++], 256,
                 "%lld|%.*s|%.*s|%.*s|%llu|%.17g|%.17g|%.17g|%.17g|%.17g|%.17g", (long long)r->hour,
                 (int)r->business_id.len, r->business_id.ptr, (int)r->measurement.len,
                 r->measurement.ptr, (int)r->field.len, r->field.ptr, (unsigned long long)r->count,
                 r->sum / (double)r->count, r->min, r->max, r->p50, r->p95, r->p99);
    return 0;
}

/*
 * The group rollups Metron stores at sealing against the seed's
 * hourly_metrics_summary query over the same points in PostgreSQL: the
 * same rows; count, min, max and the quantiles equal; avg to 1e-9.
 */
Test(query_pg, hourly_rollups_equal_the_seed_materialized_view, .timeout = 120)
{
    char err[512] = "";
    mt_pg *pg = NULL;
    cr_assert_eq(mt_pg_open(mt_test_pg_url(), &pg, err, sizeof err), MT_OK, "%s", err);
    mt_pg_exec(pg, "DROP TABLE IF EXISTS pm", 0, NULL);
    cr_assert_eq(mt_pg_exec(pg,
                            "CREATE TABLE pm (business_id uuid, metric_category text, metric_name "
                            "text, metric_value float8, collected_at timestamptz)",
                            0, NULL),
                 MT_OK, "%s", mt_pg_errmsg(pg));
    char dir[] = "/tmp/metron-rollup-pg-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    mt_batch *b = mt_batch_new();
    uint64_t seed = mt_test_seed();
    const char *tenants[] = {"11111111-1111-4111-8111-111111111111",
                             "22222222-2222-4222-8222-222222222222", NULL};
    size_t cap = 1 << 22, len = 0;
    char *arr = malloc(cap);
    arr[len++] = '{';
    for (int h = 0; h < 9; h++) {
        const char *tenant = tenants[h % 3];
        char host[8], key[256];
        snprintf(host, sizeof host, "h%d", h);
        mt_name tk[2] = {{"business_id", 11}, {"host", 4}},
                tv[2] = {{tenant ? tenant : "", tenant ? 36 : 0}, {host, strlen(host)}};
        const char *fields[] = {"usage", "iowait"};
        for (int f = 0; f < 2; f++) {
            /* no business_id tag at all for the system-wide tenant */
            size_t kl = tenant ? mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk, tv, 2,
                                               (mt_name){fields[f], strlen(fields[f])})
                               : mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk + 1, tv + 1,
                                               1, (mt_name){fields[f], strlen(fields[f])});
            double x = 40 + f * 10;
            for (int i = 0; i < 3 * 120; i++) {
                x += (double)((int64_t)(mt_test_rand(&seed) % 301) - 150) / 100;
                double v = (double)llround(x * 100) / 100;
                int64_t ts = T0 + (int64_t)i * 30 * S + h * S;
                cr_assert_eq(mt_batch_add(b, key, kl, ts, MT_VT_FLOAT, (mt_val){.f = v}, NULL),
                             MT_OK);
                len += (size_t)snprintf(arr + len, cap - len, "%s\"%s %s %lld %.17g\"",
                                        len > 1 ? "," : "", tenant ? tenant : "-", fields[f],
                                        (long long)(ts / S), v);
            }
        }
    }
    arr[len++] = '}';
    arr[len] = '\0';
    mt_write_result wr;
    cr_assert_eq(mt_engine_write(e, b, &wr), MT_OK);
    mt_batch_free(b);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    const char *params[] = {arr};
    cr_assert_eq(mt_pg_exec(pg,
                            "INSERT INTO pm SELECT nullif(split_part(p, ' ', 1), '-')::uuid, "
                            "'cpu', split_part(p, ' ', 2), split_part(p, ' ', 4)::float8, "
                            "to_timestamp(split_part(p, ' ', 3)::bigint) FROM "
                            "unnest($1::text[]) AS p",
                            1, params),
                 MT_OK, "%s", mt_pg_errmsg(pg));
    free(arr);
    rows mine = {.n = 0};
    cr_assert_eq(mt_engine_rollups(e, INT64_MIN, INT64_MAX, true, collect, &mine), MT_OK);
    /* the seed's view, as written there, over the same rows */
    char got[65536];
    cr_assert_eq(
        mt_pg_query_value(
            pg,
            "WITH hourly_metrics_summary AS (SELECT DATE_TRUNC('hour', collected_at) as "
            "hour_bucket, business_id, metric_category, metric_name, COUNT(*) as "
            "sample_count, AVG(metric_value) as avg_value, MIN(metric_value) as "
            "min_value, MAX(metric_value) as max_value, PERCENTILE_CONT(0.50) WITHIN "
            "GROUP (ORDER BY metric_value) as median_value, PERCENTILE_CONT(0.95) WITHIN "
            "GROUP (ORDER BY metric_value) as p95_value, PERCENTILE_CONT(0.99) WITHIN "
            "GROUP (ORDER BY metric_value) as p99_value FROM pm GROUP BY hour_bucket, "
            "business_id, metric_category, metric_name) "
            "SELECT string_agg(concat_ws('|', (extract(epoch from hour_bucket) / "
            "3600)::bigint, coalesce(business_id::text, ''), metric_category, "
            "metric_name, sample_count, avg_value, min_value, max_value, median_value, "
            "p95_value, p99_value), E'\\n' ORDER BY (extract(epoch from hour_bucket) / "
            "3600)::bigint, coalesce(business_id::text, ''), metric_category, metric_name) "
            "FROM hourly_metrics_summary",
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
    cr_expect_eq(n, 3 * 3 * 2, "3 tenants (one the NULL one) x 2 fields x 3 hours");
    mt_engine_close(e);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    mt_pg_exec(pg, "DROP TABLE pm", 0, NULL);
    mt_pg_close(pg);
}
