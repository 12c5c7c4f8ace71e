/*
 * cmd_repair.c — `metron repair --rebuild-index`: a lost or damaged
 * index.mdb rebuilt from the hour files (mt_engine_options.rebuild_index).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "metron_cli.h"

const char *const mt_cli_repair_help =
    "usage: metron repair --rebuild-index --data DIR\n"
    "\n"
    "  Rebuild index.mdb from the hour files alone: the series, their postings, the\n"
    "  sealed hours and their rollups. For when metrond refuses to start because\n"
    "  index.mdb is missing, empty or not this directory's, or when it is damaged.\n"
    "  The index present, if any, is moved aside (index.mdb.replaced-TIME), never\n"
    "  deleted. What cannot come back is listed: the points written since their hour\n"
    "  was last sealed lived only in the index's head log; hour files too damaged to\n"
    "  read are moved to lost+found/. Needs the directory to itself (stop metrond).\n"
    "  Exit 0 when the index was rebuilt, 1 otherwise.\n";

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
