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
