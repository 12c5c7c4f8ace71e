/*
 * metron — the command line. One binary, one subcommand per job:
 *
 *   metron query   range queries and aggregations          (cmd_query.c)
 *   metron series  the series a selector matches            (cmd_list.c)
 *   metron tags    the values of a tag, with series counts  (cmd_list.c)
 *   metron import  line protocol into a data dir or daemon  (cmd_io.c)
 *   metron export  line protocol or CSV out of a data dir or a daemon (cmd_io.c)
 *   metron inspect facts about a data directory             (cmd_inspect.c)
 *   metron rollup  hourly rollups, or merged into days ...  (cmd_rollup.c)
 *   metron retention show|apply the retention policy        (cmd_maint.c)
 *   metron compact merge backfill, shrink index.mdb         (cmd_maint.c)
 *   metron schema  install|check|tenant|roles (PostgreSQL) (cmd_schema.c)
 *   metron rules   check|eval a local alert rules file      (cmd_rules.c)
 *   metron alerts  the alerts metrond raised                (cmd_alerts.c)
 *   metron sink    quarantine list|retry: rows PostgreSQL refused (cmd_sink.c)
 *   metron repair  --rebuild-index from the hour files; --from/--to a replica
 *                  over HTTP                  (cmd_repair.c, cmd_repair_replica.c)
 *   metron backup  an online snapshot, incremental by hour    (cmd_backup.c)
 *   metron restore a snapshot into a new data dir             (cmd_backup.c)
 *   metron help [SUBCOMMAND]
 *
 * Exit codes: 0 ok, 1 error, 2 usage; errors on stderr name what was wrong.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "metron_cli.h"
#include "version.h"

int mt_cli_usage(const char *msg, const char *help)
{
    fprintf(stderr, "metron: %s\n\n%s", msg, help);
    return 2;
}

mt_engine *mt_cli_open_ro(const char *dir)
{
    mt_engine_options eo = mt_engine_options_default();
    eo.dir = dir;
    eo.read_only = true;
    char why[2048] = ""; /* a damaged index record: which, and the way out */
    eo.why = why;
    eo.why_cap = sizeof why;
    mt_engine *e = NULL;
    int rc = mt_engine_open(&eo, &e); /* a snapshot: metrond keeps the files it names */
    if (rc) {
        fprintf(stderr, "metron: cannot read %s: %s\n", dir,
                rc == MT_ENOTFOUND ? "no Metron data there"
                : why[0]           ? why
                                   : mt_strerror(rc));
        return NULL;
    }
    return e;
}

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *const *help;
    const char *what;
} cmds[] = {
    {"query", cmd_query, &mt_cli_query_help, "range queries and aggregations"},
    {"series", cmd_series, &mt_cli_series_help, "the series a selector matches"},
    {"tags", cmd_tags, &mt_cli_tags_help, "the values of a tag, with series counts"},
    {"import", cmd_import, &mt_cli_import_help, "line protocol into a data dir or a daemon"},
    {"export", cmd_export, &mt_cli_export_help, "line protocol or CSV out of a data dir or daemon"},
    {"inspect", cmd_inspect, &mt_cli_inspect_help, "facts about a data dir"},
    {"rollup", cmd_rollup, &mt_cli_rollup_help, "hourly rollups (count, avg, min, max, p50-p99)"},
    {"retention", cmd_retention, &mt_cli_retention_help, "show or apply the retention policy"},
    {"compact", cmd_compact, &mt_cli_compact_help, "merge backfilled hours, shrink index.mdb"},
    {"alerts", cmd_alerts, &mt_cli_alerts_help, "the alerts metrond raised (open, or --all)"},
    {"rules", cmd_rules, &mt_cli_rules_help, "check or evaluate an alert rules file"},
    {"schema", cmd_schema, &mt_cli_schema_help,
     "the PostgreSQL monitoring schema, its tenant readers, its roles"},
    {"sink", cmd_sink, &mt_cli_sink_help, "quarantine list|retry: rows PostgreSQL refused"},
    {"repair", cmd_repair, &mt_cli_repair_help,
     "--rebuild-index: index.mdb from the hour files; --from/--to: a replica's missed hours"},
    {"backup", cmd_backup, &mt_cli_backup_help, "an online snapshot of a data dir, by hour"},
    {"restore", cmd_restore, &mt_cli_restore_help, "a snapshot into a new data dir"},
    {"delete", cmd_delete, &mt_cli_delete_help, "a tenant, or a selector's points in a range"},
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

static int help(FILE *f, const char *which)
{
    for (size_t i = 0; which && i < NCMDS; i++) {
        if (!strcmp(which, cmds[i].name)) {
            fputs(*cmds[i].help, f);
            return 0;
        }
    }
    fprintf(f, "usage: metron SUBCOMMAND [options]\n\n");
    for (size_t i = 0; i < NCMDS; i++) fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].what);
    fprintf(f, "  help       metron help SUBCOMMAND\n"
               "  version    the version, commit, build type and library versions (--version)\n\n"
               "With --url, requests carry the token in METRON_TOKEN when it is set (a metrond\n"
               "with tokens_file answers 401 without one; a tenant's token sees its tenant).\n");
    return which ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return help(stderr, NULL) ? 2 : 2;
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        mt_version_print(stdout, "metron");
        return 0;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help"))
        return help(stdout, argc >= 3 ? argv[2] : NULL);
    /* these read or change a data directory's files: refused by name rather than by getopt's
       "unknown option", which would leave the user to guess whether --url was misspelt
       (delete takes --url: a tenant deleted through a running metrond) */
    static const char *const local_only[] = {"series",  "tags",   "inspect", "retention",
                                             "compact", "repair", "backup",  "restore"};
    for (size_t i = 0; i < sizeof local_only / sizeof *local_only; i++) {
        if (strcmp(argv[1], local_only[i])) continue;
        for (int a = 2; a < argc && strcmp(argv[a], "--"); a++) {
            if (strcmp(argv[a], "--url") && strncmp(argv[a], "--url=", 6)) continue;
            fprintf(stderr,
                    "metron %s: --url is not supported: %s reads a data directory; run it "
                    "where the data is, with --data DIR (read-only beside a running metrond)\n",
                    argv[1], argv[1]);
            return 2;
        }
    }
    for (size_t i = 0; i < NCMDS; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "metron: unknown subcommand '%s' (metron help)\n", argv[1]);
    return 2;
}
