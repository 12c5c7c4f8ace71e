/*
 * test_pg.c — the libpq wrapper against the real PostgreSQL that
 * tools/test.sh starts (METRON_TEST_PG). Without it these tests fail.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "mt_pg.h"
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
