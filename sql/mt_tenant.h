/*
 * mt_tenant.h — who reads which tenant in the PostgreSQL monitoring schema
 * (version 4 and later, sql/schema/004_tenant_roles.sql), and the roles
 * Metron needs.
 *
 * A reader is a PostgreSQL role, member of monitoring_dashboard, mapped to
 * one business_id in monitoring.tenant_readers. Row-level security (FORCEd,
 * keyed on current_user) shows it that tenant's rows and the system-wide
 * ones (NULL business_id); a role with no mapping sees no row. Only the
 * owner of the tables (Metron's role) reads or writes the map: these calls
 * run as that role, except mt_tenant_roles, which an administrator runs.
 *
 * Every call takes an open connection (mt_pg.h); role names travel as
 * parameters, or quoted by mt_pg_quote_ident where SQL takes no parameter
 * (CREATE ROLE, GRANT). Errors: MT_EPG (PostgreSQL's text in mt_pg_errmsg;
 * nothing changed), MT_EINVAL (an argument refused: the reason in why),
 * -EPERM (the connected role may not do it: nothing changed, the reason in
 * why, the statements an administrator runs instead in admin_sql),
 * MT_ENOTFOUND as said per call.
 */
#ifndef MT_TENANT_H
#define MT_TENANT_H

#include <stdbool.h>
#include <stddef.h>

#include "mt_pg.h"

/* Whether s is a UUID as PostgreSQL prints one: 8-4-4-4-12 hexadecimal digits. */
bool mt_tenant_uuid_valid(const char *s);
/* The same for the n bytes at s (no NUL needed). */
bool mt_tenant_uuid_valid_n(const char *s, size_t n);

typedef struct mt_tenant_add_result {
    bool created;         /* the role did not exist: created LOGIN, without a password */
    bool granted;         /* monitoring_dashboard was granted to it */
    char previous[40];    /* the tenant it was mapped to before ("": none) */
    char why[512];        /* MT_EINVAL, -EPERM: the reason, one line */
    char admin_sql[1024]; /* -EPERM: statements for an administrator, each ending ";\n" */
} mt_tenant_add_result;

/*
 * Map role to business_id (a new mapping, or a changed one), in one
 * transaction: create the role when it does not exist (LOGIN, no password:
 * an administrator sets one) and grant it monitoring_dashboard when it is
 * not a member. When the connected role may not (creating needs CREATEROLE,
 * granting needs ADMIN OPTION on monitoring_dashboard, which `metron schema
 * roles` gives Metron's role), nothing changes and -EPERM returns the
 * statements an administrator runs before calling again. MT_EINVAL: not a
 * UUID, a name PostgreSQL would truncate or reserves (pg_*), the dashboard
 * role itself, a role with the owner's privileges, a superuser or a
 * BYPASSRLS role (each would see every tenant whatever the map says).
 * MT_ENOTFOUND: no schema of version 4 or later (`metron schema install`).
 */
int mt_tenant_add(mt_pg *pg, const char *role, const char *business_id, mt_tenant_add_result *res);

/*
 * Remove role's mapping (the role stays: it may own things elsewhere; it
 * sees no row any more). previous (capacity 40) gets the tenant it had.
 * MT_ENOTFOUND: the role had no mapping.
 */
int mt_tenant_remove(mt_pg *pg, const char *role, char previous[40]);

/*
 * Each mapping, by role name: fn(ud, role, business_id, created_at, note),
 * note "" or what keeps the role from reading ("role missing", "not a member
 * of monitoring_dashboard", "NOLOGIN: reachable by SET ROLE only"). The
 * strings are valid during the call. fn returns 0 to go on.
 */
int mt_tenant_list(mt_pg *pg,
                   int (*fn)(void *ud, const char *role, const char *business_id,
                             const char *created_at, const char *note),
                   void *ud);

/*
 * The statements an administrator runs once so that Metron's role `owner`
 * needs neither SUPERUSER nor CREATEROLE: monitoring_dashboard NOLOGIN;
 * owner LOGIN (without a password: set one), NOCREATEROLE; owner may grant
 * monitoring_dashboard (ADMIN OPTION); the schema monitoring owned by owner
 * (an existing schema and its objects handed over); CREATE on the database
 * until the first install (the schema's version 1 says CREATE SCHEMA IF NOT
 * EXISTS). Only those not in place yet, each given to fn(ud, statement)
 * (no trailing ';') in order; *n gets their number. With apply, they run in
 * one transaction on pg, as its user. MT_EINVAL (why says it): owner is a
 * superuser (row-level security does not hold for it), or a bad name.
 */
int mt_tenant_roles(mt_pg *pg, const char *owner, bool apply,
                    void (*fn)(void *ud, const char *statement), void *ud, size_t *n, char *why,
                    size_t whycap);

#endif
