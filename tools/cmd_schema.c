/*
 * cmd_schema.c — `metron schema install|check|tenant|roles`: the PostgreSQL
 * monitoring schema Metron mirrors into (sql/mt_schema.h), who reads which
 * tenant of it, and the roles it needs (sql/mt_tenant.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_schema.h"
#include "mt_tenant.h"

const char *const mt_cli_schema_help =
    "usage: metron schema install|check [--pg URL]\n"
    "       metron schema tenant add ROLE BUSINESS_ID | remove ROLE | list [--pg URL]\n"
    "       metron schema roles [--owner ROLE] [--apply] [--pg URL]\n"
    "\n"
    "  install   create the monitoring schema, or upgrade an older version in place\n"
    "            (one transaction; nothing changes when it is current), and create the\n"
    "            partitions of the month before to three ahead\n"
    "  check     compare the database with what install left: each difference on a\n"
    "            line ('+' there but not expected, '-' expected but missing or changed);\n"
    "            exit 1 when there is drift\n"
    "  tenant add ROLE BUSINESS_ID\n"
    "            let ROLE read tenant BUSINESS_ID (a UUID) and the system-wide rows, and\n"
    "            nothing else, whatever it SETs; grant it monitoring_dashboard and create\n"
    "            it (LOGIN, no password: set one) when needed. Run as Metron's role; when\n"
    "            that role may not, print what an administrator runs, change nothing, exit 1\n"
    "  tenant remove ROLE\n"
    "            ROLE sees no row any more (the role itself stays)\n"
    "  tenant list\n"
    "            each reader role, its tenant, since when, what keeps it from reading\n"
    "  roles     print the statements an administrator runs once so that Metron's role\n"
    "            needs no SUPERUSER and no CREATEROLE (those not in place yet): role\n"
    "            monitoring_dashboard NOLOGIN, Metron's role LOGIN, allowed to grant it,\n"
    "            owning the schema monitoring, CREATE on the database until installed\n"
    "  --owner ROLE\n"
    "            Metron's login role, the owner of the schema (default metron)\n"
    "  --apply   run them, in one transaction, as the user of --pg (a superuser)\n"
    "  --pg URL  the server (postgresql://user@host:port/db); without it, libpq's\n"
    "            environment (PGHOST, PGDATABASE, PGUSER ...) and ~/.pgpass. Put\n"
    "            passwords there, not in the URL: command lines show in ps and logs\n";

static void print_line(void *ud, const char *line)
{
    (void)ud;
    puts(line);
}

static void print_statement(void *ud, const char *sql)
{
    (void)ud;
    printf("%s;\n", sql);
}

static int print_reader(void *ud, const char *role, const char *business_id, const char *created_at,
                        const char *note)
{
    int *n = ud;
    if (!(*n)++) printf("%-32s %-36s %-20s %s\n", "ROLE", "BUSINESS_ID", "SINCE", "NOTE");
    printf("%-32s %-36s %-20s %s\n", role, business_id, created_at, note);
    return 0;
}

static int schema_tenant(mt_pg *pg, int argc, char **argv)
{
    const char *what = argv[0];
    int rc;
    if (!strcmp(what, "add") && argc == 3) {
        mt_tenant_add_result r;
        rc = mt_tenant_add(pg, argv[1], argv[2], &r);
        if (rc == MT_EINVAL) {
            fprintf(stderr, "metron: tenant add %s: %s\n", argv[1], r.why);
        } else if (rc == -EPERM) {
            fprintf(stderr, "metron: tenant add %s: %s; nothing changed. An administrator runs:\n",
                    argv[1], r.why);
            fputs(r.admin_sql, stdout);
            fprintf(stderr, "and then this command again.\n");
        } else if (rc == MT_ENOTFOUND) {
            fprintf(stderr, "metron: no monitoring schema of version 4 or later (metron schema "
                            "install)\n");
        } else if (rc) {
            fprintf(stderr, "metron: tenant add %s failed, nothing changed: %s\n", argv[1],
                    mt_pg_errmsg(pg));
        } else {
            printf("role %s reads tenant %s%s%s%s%s\n", argv[1], argv[2],
                   *r.previous ? " (was " : "", r.previous, *r.previous ? ")" : "",
                   r.created   ? "; role created (LOGIN, no password yet: ALTER ROLE ... "
                                 "PASSWORD, or \\password in psql)"
                   : r.granted ? "; monitoring_dashboard granted"
                               : "");
        }
        return rc ? 1 : 0;
    }
    if (!strcmp(what, "remove") && argc == 2) {
        char previous[40];
        rc = mt_tenant_remove(pg, argv[1], previous);
        if (rc == MT_ENOTFOUND)
            fprintf(stderr, "metron: role %s reads no tenant\n", argv[1]);
        else if (rc)
            fprintf(stderr, "metron: tenant remove %s failed: %s\n", argv[1], mt_pg_errmsg(pg));
        else
            printf("role %s no longer reads tenant %s (it sees no row; the role stays)\n", argv[1],
                   previous);
        return rc ? 1 : 0;
    }
    if (!strcmp(what, "list") && argc == 1) {
        int n = 0;
        rc = mt_tenant_list(pg, print_reader, &n);
        if (rc)
            fprintf(stderr, "metron: tenant list failed: %s\n", mt_pg_errmsg(pg));
        else if (!n)
            fprintf(stderr, "no reader role maps to a tenant (metron schema tenant add)\n");
        return rc ? 1 : 0;
    }
    return mt_cli_usage("schema tenant needs add ROLE BUSINESS_ID, remove ROLE or list",
                        mt_cli_schema_help);
}

static int schema_roles(mt_pg *pg, const char *owner, bool apply)
{
    size_t n;
    char why[512];
    int rc = mt_tenant_roles(pg, owner, apply, print_statement, NULL, &n, why, sizeof why);
    if (rc == MT_EINVAL)
        fprintf(stderr, "metron: schema roles: %s\n", why);
    else if (rc)
        fprintf(stderr, "metron: schema roles%s failed%s: %s %s\n", apply ? " --apply" : "",
                apply ? ", nothing changed" : "", mt_pg_errmsg(pg), why);
    else if (!n)
        printf("-- roles and schema in place for %s: nothing to do\n", owner);
    else if (apply)
        fprintf(stderr, "schema roles: %zu statements applied\n", n);
    return rc ? 1 : 0;
}

int cmd_schema(int argc, char **argv)
{
    const char *url = "", *owner = "metron";
    bool apply = false;
    static const struct option opts[] = {{"pg", required_argument, 0, 'p'},
                                         {"owner", required_argument, 0, 'o'},
                                         {"apply", no_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p')
            url = optarg;
        else if (c == 'o')
            owner = optarg;
        else if (c == 'a')
            apply = true;
        else if (c == 'h')
            return fputs(mt_cli_schema_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_schema_help);
    }
    const char *what = optind < argc ? argv[optind] : "";
    bool install = !strcmp(what, "install"), tenant = !strcmp(what, "tenant"),
         roles = !strcmp(what, "roles");
    if (tenant && optind + 1 >= argc)
        return mt_cli_usage("schema tenant needs add, remove or list", mt_cli_schema_help);
    if (!tenant && ((!install && !roles && strcmp(what, "check")) || optind + 1 != argc))
        return mt_cli_usage("schema needs install, check, tenant or roles", mt_cli_schema_help);
    if ((apply || strcmp(owner, "metron")) && !roles)
        return mt_cli_usage("--owner and --apply go with schema roles", mt_cli_schema_help);
    char err[512];
    mt_pg *pg;
    if (mt_pg_open(url, &pg, err, sizeof err)) {
        fprintf(stderr, "metron: cannot connect to PostgreSQL: %s\n", err);
        return 1;
    }
    int rc;
    if (tenant) {
        rc = schema_tenant(pg, argc - optind - 1, argv + optind + 1);
    } else if (roles) {
        rc = schema_roles(pg, owner, apply);
    } else if (install) {
        mt_schema_result r;
        rc = mt_schema_install(pg, &r);
        if (rc == MT_EFORMAT)
            fprintf(stderr, "metron: the database has schema version %d; this metron knows %d\n",
                    r.from_version, mt_schema_latest());
        else if (rc)
            fprintf(stderr, "metron: schema install failed, nothing changed: %s\n",
                    mt_pg_errmsg(pg));
        else if (r.from_version == r.to_version)
            printf("schema monitoring: at version %d already; %d partitions created\n",
                   r.to_version, r.partitions);
        else
            printf("schema monitoring: version %d -> %d; %d partitions created\n", r.from_version,
                   r.to_version, r.partitions);
    } else {
        size_t drift = 0;
        rc = mt_schema_check(pg, print_line, NULL, &drift);
        if (rc == MT_ENOTFOUND)
            fprintf(stderr, "metron: no monitoring schema installed (metron schema install)\n");
        else if (rc)
            fprintf(stderr, "metron: schema check failed: %s\n", mt_pg_errmsg(pg));
        else if (drift)
            fprintf(stderr, "schema monitoring: %zu differences from version %d\n", drift,
                    mt_schema_latest());
        else
            printf("schema monitoring: version %d, no drift\n", mt_schema_latest());
        if (!rc && drift) rc = 1;
    }
    mt_pg_close(pg);
    return tenant || roles ? rc : rc ? 1 : 0;
}
