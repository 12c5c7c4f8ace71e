/* mt_tenant.c — tenant readers and Metron's roles (contract in mt_tenant.h). */
#include "mt_tenant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_uuid.h"

/* NAMEDATALEN - 1: PostgreSQL cuts longer names, and would map or create another role. */
#define ROLE_MAX 63
/* A quoted role name: every byte may be a doubled quote, plus two quotes and the NUL. */
#define QUOTED_MAX (2 * ROLE_MAX + 3)

bool mt_tenant_uuid_valid(const char *s)
{
    return mt_tenant_uuid_valid_n(s, strlen(s));
}

bool mt_tenant_uuid_valid_n(const char *s, size_t n)
{
    return mt_uuid_parse(s, n, NULL);
}

static int check_role(const char *role, char *why, size_t cap)
{
    size_t n = strlen(role);
    if (n == 0 || n > ROLE_MAX) {
        snprintf(why, cap, "role name '%.80s' is %s", role,
                 n ? "longer than 63 bytes (PostgreSQL would cut it)" : "empty");
        return MT_EINVAL;
    }
    if (!strncmp(role, "pg_", 3)) {
        snprintf(why, cap, "role name '%s': PostgreSQL reserves names starting with pg_", role);
        return MT_EINVAL;
    }
    return MT_OK;
}

static int quote(mt_pg *pg, const char *name, char out[QUOTED_MAX])
{
    return mt_pg_quote_ident(pg, name, out, QUOTED_MAX);
}

/* Row callbacks copying the text of each column into a fixed array of flags/strings. */
typedef struct row {
    int n;
    char v[10][128];
} row;

static int one_row(void *ud, int ncols, const char *const *vals)
{
    row *r = ud;
    for (int i = 0; i < ncols && i < 10; i++)
        snprintf(r->v[i], sizeof r->v[i], "%s", vals[i] ? vals[i] : "");
    r->n = ncols;
    return 0;
}

static bool yes(const row *r, int i)
{
    return !strcmp(r->v[i], "t");
}

/* What add must know of the role and of the connected one, in one query. */
static const char add_state_sql[] =
    "SELECT r.oid IS NOT NULL,"
    " coalesce(r.rolsuper OR r.rolbypassrls, false),"
    " coalesce(pg_has_role(r.oid, 'monitoring_dashboard', 'MEMBER'), false),"
    " coalesce(pg_has_role(r.oid, (SELECT relowner FROM pg_class"
    "   WHERE oid = 'monitoring.tenant_readers'::regclass), 'USAGE'), false),"
    " me.rolsuper OR me.rolcreaterole,"
    /* CREATEROLE may grant any role up to PostgreSQL 15; from 16 it needs ADMIN OPTION */
    " me.rolsuper OR pg_has_role(current_user, 'monitoring_dashboard', 'USAGE WITH ADMIN OPTION')"
    "   OR (me.rolcreaterole AND current_setting('server_version_num')::int < 160000),"
    " current_user"
    " FROM pg_roles me LEFT JOIN pg_roles r ON r.rolname = $1 WHERE me.rolname = current_user";

int mt_tenant_add(mt_pg *pg, const char *role, const char *business_id, mt_tenant_add_result *res)
{
    *res = (mt_tenant_add_result){0};
    if (!mt_tenant_uuid_valid(business_id)) {
        snprintf(res->why, sizeof res->why,
                 "business id '%.60s' is not a UUID (8-4-4-4-12 hexadecimal digits)", business_id);
        return MT_EINVAL;
    }
    int rc = check_role(role, res->why, sizeof res->why);
    if (rc) return rc;
    if (!strcmp(role, "monitoring_dashboard")) {
        snprintf(res->why, sizeof res->why,
                 "role monitoring_dashboard is every reader's: mapped to a tenant, any reader "
                 "could SET ROLE to it and read that tenant");
        return MT_EINVAL;
    }
    char q[QUOTED_MAX], buf[8];
    rc = quote(pg, role, q);
    if (!rc) rc = mt_pg_exec(pg, "BEGIN", 0, NULL);
    if (!rc)
        rc = mt_pg_query_value(pg, "SELECT to_regclass('monitoring.tenant_readers') IS NOT NULL", 0,
                               NULL, buf, sizeof buf);
    if (!rc && strcmp(buf, "t")) rc = MT_ENOTFOUND;
    row st = {0};
    const char *p1[] = {role};
    if (!rc) rc = mt_pg_query_rows(pg, add_state_sql, 1, p1, one_row, &st);
    if (!rc && st.n != 7) rc = MT_ENOTFOUND; /* the connected role vanished: no row */
    if (rc) goto out;
    bool exists = yes(&st, 0), bypass = yes(&st, 1), member = yes(&st, 2), owner = yes(&st, 3),
         can_create = yes(&st, 4), can_grant = yes(&st, 5);
    if (bypass || owner) {
        snprintf(res->why, sizeof res->why,
                 "role %s %s: it would see every tenant whatever the map says", role,
                 bypass ? "is a superuser or has BYPASSRLS"
                        : "has the privileges of the owner of "
                          "the monitoring tables");
        rc = MT_EINVAL;
        goto out;
    }
    if ((!exists && !can_create) || (!member && !can_grant)) {
        snprintf(res->why, sizeof res->why, "role %s may not %s", st.v[6],
                 !exists && !can_create
                     ? "create roles (no CREATEROLE, as it should be)"
                     : "grant monitoring_dashboard (no ADMIN OPTION on it: `metron schema roles`)");
        snprintf(res->admin_sql, sizeof res->admin_sql, "%s%s%s%s%s%s",
                 exists ? "" : "CREATE ROLE ", exists ? "" : q, exists ? "" : " LOGIN;\n",
                 member ? "" : "GRANT monitoring_dashboard TO ", member ? "" : q,
                 member ? "" : ";\n");
        rc = -EPERM;
        goto out;
    }
    char sql[64 + QUOTED_MAX];
    if (!exists) {
        snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN", q);
        rc = mt_pg_exec(pg, sql, 0, NULL);
        res->created = !rc;
    }
    if (!rc && !member) {
        snprintf(sql, sizeof sql, "GRANT monitoring_dashboard TO %s", q);
        rc = mt_pg_exec(pg, sql, 0, NULL);
        res->granted = !rc;
    }
    const char *p2[] = {role, business_id};
    if (!rc)
        rc = mt_pg_query_value(
            pg,
            "WITH old AS (SELECT business_id FROM monitoring.tenant_readers WHERE role_name = $1)"
            " INSERT INTO monitoring.tenant_readers (role_name, business_id) VALUES ($1, $2)"
            " ON CONFLICT (role_name) DO UPDATE SET business_id = EXCLUDED.business_id,"
            "  created_at = now()"
            " RETURNING coalesce((SELECT business_id::text FROM old), '')",
            2, p2, res->previous, sizeof res->previous);
    if (rc == MT_ENOTFOUND) rc = MT_EPG; /* RETURNING always answers a row */
    if (!rc) rc = mt_pg_exec(pg, "COMMIT", 0, NULL);
out:
    if (rc) {
        mt_pg_abort(pg);
        res->created = res->granted = false;
    }
    return rc;
}

int mt_tenant_remove(mt_pg *pg, const char *role, char previous[40])
{
    const char *p[] = {role};
    previous[0] = '\0';
    return mt_pg_query_value(pg,
                             "DELETE FROM monitoring.tenant_readers WHERE role_name = $1"
                             " RETURNING business_id::text",
                             1, p, previous, 40);
}

typedef struct list_ctx {
    int (*fn)(void *ud, const char *role, const char *business_id, const char *created_at,
              const char *note);
    void *ud;
} list_ctx;

static int list_row(void *ud, int ncols, const char *const *v)
{
    list_ctx *c = ud;
    (void)ncols;
    return c->fn(c->ud, v[0], v[1], v[2], v[3]);
}

int mt_tenant_list(mt_pg *pg,
                   int (*fn)(void *ud, const char *role, const char *business_id,
                             const char *created_at, const char *note),
                   void *ud)
{
    list_ctx c = {fn, ud};
    return mt_pg_query_rows(
        pg,
        "SELECT t.role_name, t.business_id::text,"
        " to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " CASE WHEN r.oid IS NULL THEN 'role missing'"
        "  WHEN NOT pg_has_role(r.oid, 'monitoring_dashboard', 'MEMBER')"
        "   THEN 'not a member of monitoring_dashboard'"
        "  WHEN NOT r.rolcanlogin THEN 'NOLOGIN: reachable by SET ROLE only' ELSE '' END"
        " FROM monitoring.tenant_readers t LEFT JOIN pg_roles r ON r.rolname = t.role_name"
        " ORDER BY t.role_name",
        0, NULL, list_row, &c);
}

/* The state of the roles and the schema, for Metron's role $1. */
static const char roles_state_sql[] =
    "SELECT d.oid IS NOT NULL, o.oid IS NOT NULL, coalesce(o.rolsuper, false),"
    " coalesce(o.rolcreaterole, false),"
    " coalesce(pg_has_role(o.oid, d.oid, 'USAGE WITH ADMIN OPTION'), false),"
    " coalesce((SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'monitoring'),"
    "  ''),"
    " coalesce(has_database_privilege(o.oid, current_database(), 'CREATE'), false),"
    " to_regclass('monitoring.schema_migrations') IS NOT NULL"
    " FROM (SELECT 1) x LEFT JOIN pg_roles o ON o.rolname = $1"
    " LEFT JOIN pg_roles d ON d.rolname = 'monitoring_dashboard'";

typedef struct stmts {
    char sql[1024][384]; /* a schema handed over lists each partition: a few a month */
    size_t n;
    const char *owner_q;
} stmts;

static int add_stmt(stmts *s, const char *sql)
{
    if (s->n == sizeof s->sql / sizeof s->sql[0]) return MT_ELIMIT;
    snprintf(s->sql[s->n++], sizeof s->sql[0], "%s", sql);
    return MT_OK;
}

/* Each relation and function of monitoring another role owns, handed to Metron's role. */
static int owned_row(void *ud, int ncols, const char *const *v)
{
    stmts *s = ud;
    (void)ncols;
    char sql[512];
    snprintf(sql, sizeof sql, "ALTER %s %s OWNER TO %s", v[0], v[1], s->owner_q);
    return add_stmt(s, sql);
}

int mt_tenant_roles(mt_pg *pg, const char *owner, bool apply,
                    void (*fn)(void *ud, const char *statement), void *ud, size_t *n, char *why,
                    size_t whycap)
{
    *n = 0;
    why[0] = '\0';
    int rc = check_role(owner, why, whycap);
    if (rc) return rc;
    if (!strcmp(owner, "monitoring_dashboard")) {
        snprintf(why, whycap, "monitoring_dashboard is the readers' role, not Metron's");
        return MT_EINVAL;
    }
    char q[QUOTED_MAX], db[QUOTED_MAX], dbname[128], sql[128 + 2 * QUOTED_MAX];
    rc = quote(pg, owner, q);
    if (!rc)
        rc = mt_pg_query_value(pg, "SELECT current_database()", 0, NULL, dbname, sizeof dbname);
    if (!rc) rc = quote(pg, dbname, db);
    row st = {0};
    const char *p[] = {owner};
    if (!rc) rc = mt_pg_query_rows(pg, roles_state_sql, 1, p, one_row, &st);
    if (rc) return rc;
    if (yes(&st, 2)) {
        snprintf(why, whycap,
                 "role %s is a superuser: row-level security does not hold for it; give Metron "
                 "a role of its own",
                 owner);
        return MT_EINVAL;
    }
    stmts *s = calloc(1, sizeof *s); /* 32 KB: off the stack */
    if (!s) return -ENOMEM;
    s->owner_q = q;
    if (!yes(&st, 0)) add_stmt(s, "CREATE ROLE monitoring_dashboard NOLOGIN");
    if (!yes(&st, 1)) {
        snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEROLE", q);
        add_stmt(s, sql);
    } else if (yes(&st, 3)) {
        snprintf(sql, sizeof sql, "ALTER ROLE %s NOCREATEROLE", q);
        add_stmt(s, sql);
    }
    if (!yes(&st, 4)) {
        snprintf(sql, sizeof sql, "GRANT monitoring_dashboard TO %s WITH ADMIN OPTION", q);
        add_stmt(s, sql);
    }
    const char *schema_owner = st.v[5];
    if (!*schema_owner) {
        snprintf(sql, sizeof sql, "CREATE SCHEMA monitoring AUTHORIZATION %s", q);
        add_stmt(s, sql);
    } else if (strcmp(schema_owner, owner)) {
        snprintf(sql, sizeof sql, "ALTER SCHEMA monitoring OWNER TO %s", q);
        add_stmt(s, sql);
        rc = mt_pg_query_rows(
            pg,
            "SELECT CASE WHEN c.relkind = 'v' THEN 'VIEW' ELSE 'TABLE' END, c.oid::regclass::text"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'monitoring' AND c.relkind IN ('r', 'p', 'v')"
            "  AND pg_get_userbyid(c.relowner) <> $1"
            " UNION ALL"
            " SELECT 'FUNCTION', p.oid::regprocedure::text"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'monitoring' AND pg_get_userbyid(p.proowner) <> $1"
            " ORDER BY 1, 2",
            1, p, owned_row, s);
        if (rc == MT_ELIMIT)
            snprintf(why, whycap, "more than %zu objects to hand over",
                     sizeof s->sql / sizeof s->sql[0]);
    }
    if (!rc && !yes(&st, 6) && !yes(&st, 7)) {
        snprintf(sql, sizeof sql, "GRANT CREATE ON DATABASE %s TO %s", db, q);
        add_stmt(s, sql);
    }
    if (!rc) {
        *n = s->n;
        for (size_t i = 0; i < s->n; i++) fn(ud, s->sql[i]);
    }
    if (!rc && apply && s->n) {
        rc = mt_pg_exec(pg, "BEGIN", 0, NULL);
        for (size_t i = 0; !rc && i < s->n; i++) rc = mt_pg_exec(pg, s->sql[i], 0, NULL);
        if (!rc) rc = mt_pg_exec(pg, "COMMIT", 0, NULL);
        if (rc) mt_pg_abort(pg);
    }
    free(s);
    return rc;
}
