/*
 * metron_cli.h — what the metron subcommands share (tools/ only).
 */
#ifndef METRON_CLI_H
#define METRON_CLI_H

#include "mt_engine.h"

/* Print msg and the subcommand's help to stderr; returns 2 (usage). */
int mt_cli_usage(const char *msg, const char *help);

/* Open DIR read-only beside a running metrond; prints why not and returns NULL on failure. */
mt_engine *mt_cli_open_ro(const char *dir);

int cmd_query(int argc, char **argv);
int cmd_series(int argc, char **argv);
int cmd_tags(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

extern const char *const mt_cli_query_help,
    *const mt_cli_series_help, *const mt_cli_tags_help, *const mt_cli_import_help,
                                                            *const mt_cli_export_help,
                                                                *const mt_cli_inspect_help;

#endif
