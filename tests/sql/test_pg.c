/*
 * test_pg.c — the libpq wrapper against the real PostgreSQL that
 * tools/test.sh starts (METRON_TEST_PG). Without it these tests fail.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_pg.h"
#include "mt_stats.h"
#include "test_util.h"

static mt_pg *connect_or_fail(void)
{
    char err[512] = "";
    mt_pg *pg = NULL;
    int rc = mt_pg_open(mt_test_pg_url(), &pg, err, sizeof err);
    cr_assert_eq(rc, MT_OK, "cannot connect to %s: %s", mt_test_pg_url(), err);
    return pg;
}

Test(pg, connects_and_forces_synchronous_commit)
{
    mt_pg *pg = connect_or_fail();
    cr_expect_geq(mt_pg_server_version(pg), 150000);
    char v[64];
    cr_assert_eq(mt_pg_query_value(pg, "SHOW synchronous_commit", 0, NULL, v, sizeof v), MT_OK);
    cr_expect_str_eq(v, "on");
    mt_pg_close(pg);
}

Test(pg, server_is_the_harness_one)
{
    mt_pg *pg = connect_or_fail();
    char v[256];
    cr_assert_eq(mt_pg_query_value(pg, "SHOW shared_preload_libraries", 0, NULL, v, sizeof v),
                 MT_OK);
    cr_expect(strstr(v, "pg_stat_statements") != NULL, "shared_preload_libraries = %s", v);
    cr_assert_eq(mt_pg_query_value(pg, "SHOW listen_addresses", 0, NULL, v, sizeof v), MT_OK);
    cr_expect_str_eq(v, "127.0.0.1");
    cr_assert_eq(mt_pg_exec(pg, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", 0, NULL),
                 MT_OK, "%s", mt_pg_errmsg(pg));
    cr_assert_eq(
        mt_pg_query_value(pg, "SELECT count(*) >= 0 FROM pg_stat_statements", 0, NULL, v, sizeof v),
        MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_str_eq(v, "t");
    mt_pg_close(pg);
}

Test(pg, parameters_are_values_never_sql)
{
    mt_pg *pg = connect_or_fail();
    const char *params[] = {"x'); DROP TABLE t; --", NULL};
    char v[128];
    cr_assert_eq(mt_pg_query_value(pg, "SELECT $1::text || coalesce($2::text, '<null>')", 2, params,
                                   v, sizeof v),
                 MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_str_eq(v, "x'); DROP TABLE t; --<null>");
    cr_expect_eq(mt_pg_query_value(pg, "SELECT NULL", 0, NULL, v, sizeof v), MT_ENOTFOUND);
    cr_expect_eq(mt_pg_query_value(pg, "SELECT 1 WHERE false", 0, NULL, v, sizeof v), MT_ENOTFOUND);
    cr_expect_eq(mt_pg_query_value(pg, "SELECT repeat('x', 200)", 0, NULL, v, sizeof v), MT_ELIMIT);
    mt_pg_close(pg);
}

Test(pg, errors_carry_the_server_message)
{
    mt_pg *pg = connect_or_fail();
    cr_expect_eq(mt_pg_exec(pg, "SELECT * FROM no_such_table_here", 0, NULL), MT_EPG);
    cr_expect(strstr(mt_pg_errmsg(pg), "no_such_table_here") != NULL, "%s", mt_pg_errmsg(pg));
    cr_expect_eq(mt_pg_exec(pg, "SELECT 1", 0, NULL), MT_OK);
    cr_expect_str_eq(mt_pg_errmsg(pg), "");
    mt_pg_close(pg);
}

Test(pg, a_bad_url_is_a_clear_error)
{
    char err[512] = "";
    mt_pg *pg = NULL;
    cr_expect_eq(
        mt_pg_open("postgresql://127.0.0.1:1/none?connect_timeout=2", &pg, err, sizeof err),
        MT_EPG);
    cr_expect_null(pg);
    cr_expect(strlen(err) > 0);
    mt_pg_close(NULL);
}

/*
 * Metron's PERCENTILE_CONT by selection against PostgreSQL's own
 * percentile_cont on the same values: equal bit for bit (the rollups
 * promise exactness, DESIGN §5).
 */
Test(pg, percentile_cont_equals_postgresql_bit_for_bit, .timeout = 120)
{
    mt_pg *pg = connect_or_fail();
    uint64_t seed = mt_test_seed();
    const double fr[] = {0.5, 0.95, 0.99, 0.0, 1.0, 0.333};
    const size_t nf = sizeof fr / sizeof fr[0];
    for (int round = 0; round < 60; round++) {
        size_t n = 1 + mt_test_rand(&seed) % (round < 40 ? 50 : 20000);
        double *v = malloc(n * sizeof *v);
        size_t cap = n * 28 + 16, len = 0;
        char *arr = malloc(cap);
        arr[len++] = '{';
        for (size_t i = 0; i < n; i++) {
            uint64_t r = mt_test_rand(&seed);
            v[i] = round % 3 == 0   ? (double)(int64_t)(r % 100001) / 100      /* cpu-like */
                   : round % 3 == 1 ? (double)(r % 9)                          /* ties */
                                    : exp((double)(r % 200000) / 10000.0) - 5; /* heavy tail */
            len += (size_t)snprintf(arr + len, cap - len, "%s%.17g", i ? "," : "", v[i]);
        }
        arr[len++] = '}';
        arr[len] = '\0';
        const char *params[] = {arr};
        char res[1024];
        int rc = mt_pg_query_value(pg,
                                   "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99, 0.0, 1.0, "
                                   "0.333]::float8[]) WITHIN GROUP (ORDER BY x) "
                                   "FROM unnest($1::float8[]) AS x",
                                   1, params, res, sizeof res);
        cr_assert_eq(rc, MT_OK, "%s", mt_pg_errmsg(pg));
        double mine[6];
        cr_assert_eq(mt_percentiles_cont(v, n, fr, nf, mine), MT_OK);
        char *p = res + 1; /* "{a,b,...}" */
        for (size_t k = 0; k < nf; k++) {
            char *end;
            double theirs = strtod(p, &end);
            cr_assert_eq(mine[k], theirs,
                         "n %zu fraction %g: metron %.17g, postgresql %.17g (MT_TEST_SEED=%llu)", n,
                         fr[k], mine[k], theirs, (unsigned long long)mt_test_seed());
            p = end + 1;
        }
        free(v);
        free(arr);
    }
    mt_pg_close(pg);
}
