/*
 * cmd_repair.c — `metron repair --rebuild-index`: a lost or damaged
 * index.mdb rebuilt from the hour files (mt_engine_options.rebuild_index).
 * With --from/--to, the repair of a replica over HTTP (cmd_repair_replica.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "metron_cli.h"

const char *const mt_cli_repair_help =
    "usage: metron repair --rebuild-index --data DIR\n"
    "       metron repair --from URL --to URL --tenant BID [--since T] [--until T]\n"
    "                     [--both] [--dry-run] [--token TOKEN | --from-token T --to-token T]\n"
    "\n"
    "  --rebuild-index: rebuild index.mdb from the hour files alone: the series, their\n"
    "  postings, the sealed hours and their rollups. For when metrond refuses to start\n"
    "  because index.mdb is missing, empty or not this directory's, or when it is damaged.\n"
    "  The index present, if any, is moved aside (index.mdb.replaced-TIME), never\n"
    "  deleted. What cannot come back is listed: the points written since their hour\n"
    "  was last sealed lived only in the index's head log; hour files too damaged to\n"
    "  read are moved to lost+found/. Needs the directory to itself (stop metrond).\n"
    "  Exit 0 when the index was rebuilt, 1 otherwise.\n"
    "\n"
    "  --from/--to: after one node of a replica pair was down, for each hour from --since\n"
    "  (default -24h) to --until (default now), count the tenant's points on both\n"
    "  metronds and checksum them (GET /api/v1/export); copy every hour that differs\n"
    "  from --from's export into --to's /write (idempotent: a point written twice keeps\n"
    "  one value), then count both sides again. Prints one row per hour: both sides'\n"
    "  figures after the repair, the points copied, whether the hour verified equal.\n"
    "  --both      also copy each differing hour back from --to to --from (a pair where\n"
    "              both missed writes: each ends with the union, --from's value winning\n"
    "              where both hold a point); without it the repair is one-way and an\n"
    "              hour where --to holds points --from lacks does not verify\n"
    "  --dry-run   only list the hours that differ (exit 3 when some do)\n"
    "  Tokens: --from-token / --to-token, else --token, else METRON_FROM_TOKEN /\n"
    "  METRON_TO_TOKEN, else METRON_TOKEN (the environment keeps them out of ps). A\n"
    "  tenant's token repairs its own tenant only (another --tenant is refused); a\n"
    "  system token (`*` in the tokens file) repairs the tenant named.\n"
    "  Exit 0 when every hour verified equal, 1 otherwise (the hours are named), 2 usage.\n";

static void print_line(void *ud, const char *line)
{
    (void)ud;
    printf("%s\n", line);
}

int cmd_repair(int argc, char **argv)
{
    const char *data = NULL;
    bool rebuild = false;
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"rebuild-index", no_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strncmp(argv[i], "--from", 6) || !strncmp(argv[i], "--to", 4))
            return mt_cli_repair_replica(argc, argv);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'r')
            rebuild = true;
        else if (c == 'h')
            return fputs(mt_cli_repair_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_repair_help);
    }
    if (!data || !rebuild)
        return mt_cli_usage("repair needs --rebuild-index and --data DIR", mt_cli_repair_help);
    mt_engine_options eo = mt_engine_options_default();
    eo.dir = data;
    eo.auto_seal = false;
    eo.rebuild_index = true;
    eo.report = print_line;
    mt_engine *e = NULL;
    int rc = mt_engine_open(&eo, &e);
    if (rc == -EBUSY) {
        fprintf(stderr, "metron: %s is in use by a running metrond: stop it first\n", data);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "metron: cannot rebuild the index of %s: %s\n", data, mt_strerror(rc));
        return 1;
    }
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    printf("index.mdb: %llu series, %llu sealed hours%s\n", (unsigned long long)st.series,
           (unsigned long long)st.sealed_hours,
           st.files_set_aside ? "; unreadable files are in lost+found/" : "");
    mt_engine_close(e);
    return 0;
}
