/* mt_schema.c — install, upgrade and check the monitoring schema (mt_schema.h). */
#include "mt_schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_hash.h"
#include "mt_schema_files.h"

/* What install leaves, one line per object, sorted: the reference for check. */
static const char catalog_sql[] =
    "SELECT coalesce(string_agg(line, E'\\n' ORDER BY line), '') FROM ("
    " SELECT 'column ' || c.relname || '.' || a.attname || ' ' ||"
    "   format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END"
    "   AS line"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_attribute a ON a.attrelid = c.oid"
    " WHERE n.nspname = 'monitoring' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition"
    "   AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> 'schema_migrations'"
    " UNION ALL"
    " SELECT 'index ' || pg_get_indexdef(i.indexrelid)"
    " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
    " JOIN pg_namespace n ON n.oid = t.relnamespace"
    " WHERE n.nspname = 'monitoring' AND NOT t.relispartition AND t.relname <> 'schema_migrations'"
    " UNION ALL"
    " SELECT 'constraint ' || t.relname || ' ' || con.conname || ' ' || "
    "pg_get_constraintdef(con.oid)"
    " FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid"
    " JOIN pg_namespace n ON n.oid = t.relnamespace"
    " WHERE n.nspname = 'monitoring' AND NOT t.relispartition AND t.relname <> 'schema_migrations'"
    " UNION ALL"
    " SELECT 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid))"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'monitoring' AND c.relkind = 'v'"
    " UNION ALL"
    " SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid))"
    " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'monitoring'"
    " UNION ALL"
    " SELECT 'trigger ' || pg_get_triggerdef(tg.oid)"
    " FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid"
    " JOIN pg_namespace n ON n.oid = t.relnamespace"
    " WHERE n.nspname = 'monitoring' AND NOT tg.tgisinternal AND NOT t.relispartition"
    " UNION ALL"
    " SELECT 'policy ' || tablename || ' ' || policyname || ' ' || coalesce(qual, '')"
    " FROM pg_policies WHERE schemaname = 'monitoring') x";

/*
 * Before version 1, which creates the role monitoring_dashboard when it is
 * missing and the schema with CREATE SCHEMA IF NOT EXISTS (a statement that
 * needs CREATE on the database even when the schema exists): when the
 * connected role may not, say what an administrator runs once, rather than
 * "permission denied to create role" at every retry of the sink.
 */
static const char preflight_sql[] =
    "DO $$ BEGIN"
    " IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'monitoring_dashboard')"
    "    AND NOT (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN"
    "  RAISE EXCEPTION 'role monitoring_dashboard does not exist and role % may not create it"
    " (no CREATEROLE, as it should be): an administrator runs once the statements that"
    " `metron schema roles --owner %` prints (or applies with --apply)',"
    "  current_user, current_user;"
    " END IF;"
    " IF NOT has_database_privilege(current_database(), 'CREATE') THEN"
    "  RAISE EXCEPTION 'role % may not create the schema monitoring in database %"
    " (no CREATE on it): an administrator runs once the statements that"
    " `metron schema roles --owner %` prints (or applies with --apply)',"
    "  current_user, current_database(), current_user;"
    " END IF;"
    " END $$";

int mt_schema_latest(void)
{
    return mt_schema_nfiles;
}

static void checksum(const char *sql, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)mt_hash64(sql, strlen(sql)));
}

/* The installed version (0: none) in *v. */
static int installed(mt_pg *pg, int *v)
{
    char buf[32];
    int rc = mt_pg_query_value(pg, "SELECT to_regclass('monitoring.schema_migrations') IS NOT NULL",
                               0, NULL, buf, sizeof buf);
    if (rc) return rc;
    *v = 0;
    if (strcmp(buf, "t")) return MT_OK;
    rc = mt_pg_query_value(pg, "SELECT coalesce(max(version), 0) FROM monitoring.schema_migrations",
                           0, NULL, buf, sizeof buf);
    if (!rc) *v = atoi(buf);
    return rc;
}

int mt_schema_install(mt_pg *pg, mt_schema_result *res)
{
    *res = (mt_schema_result){0};
    int rc = mt_pg_exec(pg, "BEGIN", 0, NULL);
    /* one installer at a time; the key is hashtext('metron.schema') */
    if (!rc)
        rc = mt_pg_exec(pg, "SELECT pg_advisory_xact_lock(hashtext('metron.schema'))", 0, NULL);
    if (!rc) rc = installed(pg, &res->from_version);
    if (!rc && res->from_version > mt_schema_latest()) rc = MT_EFORMAT;
    if (!rc && res->from_version == 0) rc = mt_pg_exec_script(pg, preflight_sql);
    if (!rc && res->from_version == 0)
        rc = mt_pg_exec_script(pg, "CREATE SCHEMA IF NOT EXISTS monitoring;"
                                   "CREATE TABLE monitoring.schema_migrations ("
                                   " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                                   " checksum TEXT NOT NULL, catalog TEXT,"
                                   " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    for (int v = res->from_version + 1; !rc && v <= mt_schema_latest(); v++) {
        const mt_schema_file *f = &mt_schema_files[v - 1];
        char ver[16], sum[17];
        snprintf(ver, sizeof ver, "%d", v);
        checksum(f->sql, sum);
        const char *params[] = {ver, f->name, sum};
        rc = mt_pg_exec_script(pg, f->sql);
        if (!rc)
            rc = mt_pg_exec(pg,
                            "INSERT INTO monitoring.schema_migrations (version, name, checksum) "
                            "VALUES ($1, $2, $3)",
                            3, params);
    }
    res->to_version = rc ? res->from_version : mt_schema_latest();
    if (!rc && res->to_version != res->from_version) {
        char sql[sizeof catalog_sql + 160];
        snprintf(sql, sizeof sql,
                 "UPDATE monitoring.schema_migrations SET catalog = (%s) WHERE version = %d",
                 catalog_sql, res->to_version); /* an integer this build chose, not input */
        rc = mt_pg_exec(pg, sql, 0, NULL);
    }
    if (!rc) rc = mt_schema_maintain(pg, &res->partitions);
    if (!rc) rc = mt_pg_exec(pg, "COMMIT", 0, NULL);
    if (rc) {
        mt_pg_abort(pg);
        res->to_version = res->from_version;
    }
    return rc;
}

int mt_schema_maintain(mt_pg *pg, int *created)
{
    char buf[32];
    int rc = mt_pg_query_value(pg, "SELECT monitoring.create_partitions(1, 3)", 0, NULL, buf,
                               sizeof buf);
    if (!rc && created) *created = atoi(buf);
    return rc;
}

int mt_schema_check(mt_pg *pg, void (*fn)(void *ud, const char *line), void *ud, size_t *ndrift)
{
    *ndrift = 0;
    int v;
    int rc = installed(pg, &v);
    if (rc) return rc;
    if (v == 0) return MT_ENOTFOUND;
    char line[256];
    if (v != mt_schema_latest()) {
        snprintf(line, sizeof line, "version %d, this build has %d", v, mt_schema_latest());
        fn(ud, line);
        (*ndrift)++;
    }
    /* a migration whose text differs from the one applied */
    for (int i = 1; i <= v && i <= mt_schema_latest(); i++) {
        char ver[16], sum[17], have[64];
        snprintf(ver, sizeof ver, "%d", i);
        checksum(mt_schema_files[i - 1].sql, sum);
        const char *params[] = {ver};
        rc = mt_pg_query_value(
            pg, "SELECT checksum FROM monitoring.schema_migrations WHERE version = $1", 1, params,
            have, sizeof have);
        if (rc == MT_ENOTFOUND || (!rc && strcmp(have, sum))) {
            snprintf(line, sizeof line, "- migration %s applied %s, this build's text differs",
                     mt_schema_files[i - 1].name, rc ? "never" : "from another text");
            fn(ud, line);
            (*ndrift)++;
            rc = MT_OK;
        }
        if (rc) return rc;
    }
    /* the catalog against the description install stored */
    size_t cap = 1 << 20;
    char *diff = malloc(cap), *sql = malloc(sizeof catalog_sql * 2 + 512);
    if (!diff || !sql) {
        free(diff);
        free(sql);
        return -ENOMEM;
    }
    snprintf(sql, sizeof catalog_sql * 2 + 512,
             "WITH want AS (SELECT unnest(string_to_array((SELECT catalog"
             "   FROM monitoring.schema_migrations WHERE catalog IS NOT NULL"
             "   ORDER BY version DESC LIMIT 1), E'\\n')) AS l),"
             " have AS (SELECT unnest(string_to_array((%s), E'\\n')) AS l)"
             " SELECT coalesce(string_agg(d, E'\\n' ORDER BY d), '') FROM ("
             "  SELECT '- ' || l AS d FROM (SELECT l FROM want EXCEPT SELECT l FROM have) m"
             "  UNION ALL"
             "  SELECT '+ ' || l FROM (SELECT l FROM have EXCEPT SELECT l FROM want) p) x",
             catalog_sql);
    rc = mt_pg_query_value(pg, sql, 0, NULL, diff, cap);
    if (rc == MT_ENOTFOUND) rc = MT_OK, diff[0] = '\0';
    for (char *save, *l = rc ? NULL : strtok_r(diff, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        fn(ud, l);
        (*ndrift)++;
    }
    free(diff);
    free(sql);
    return rc;
}
