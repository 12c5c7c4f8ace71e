/*
 * cmd_schema.c — `metron schema install|check`: the PostgreSQL monitoring
 * schema Metron mirrors into (sql/mt_schema.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_schema.h"

const char *const mt_cli_schema_help =
    "usage: metron schema install|check [--pg URL]\n"
    "\n"
    "  install   create the monitoring schema, or upgrade an older version in place\n"
    "            (one transaction; nothing changes when it is current), and create the\n"
    "            partitions of the month before to three ahead\n"
    "  check     compare the database with what install left: each difference on a\n"
    "            line ('+' there but not expected, '-' expected but missing or changed);\n"
    "            exit 1 when there is drift\n"
    "  --pg URL  the server (postgresql://user@host:port/db); without it, libpq's\n"
    "            environment (PGHOST, PGDATABASE, PGUSER ...) and ~/.pgpass. Put\n"
    "            passwords there, not in the URL: command lines show in ps and logs\n";

static void print_line(void *ud, const char *line)
{
    (void)ud;
    puts(line);
}

int cmd_schema(int argc, char **argv)
{
    const char *url = "";
    static const struct option opts[] = {
        {"pg", required_argument, 0, 'p'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p')
            url = optarg;
        else if (c == 'h')
            return fputs(mt_cli_schema_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_schema_help);
    }
    const char *what = optind < argc ? argv[optind] : "";
    bool install = !strcmp(what, "install");
    if ((!install && strcmp(what, "check")) || optind + 1 != argc)
        return mt_cli_usage("schema needs install or check", mt_cli_schema_help);
    char err[512];
    mt_pg *pg;
    if (mt_pg_open(url, &pg, err, sizeof err)) {
        fprintf(stderr, "metron: cannot connect to PostgreSQL: %s\n", err);
        return 1;
    }
    int rc;
    if (install) {
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
    return rc ? 1 : 0;
}
