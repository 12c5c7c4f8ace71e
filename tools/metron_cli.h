/*
 * metron_cli.h — what the metron subcommands share (tools/ only).
 */
#ifndef METRON_CLI_H
#define METRON_CLI_H

#include <stdio.h>

#include <curl/curl.h>

#include "mt_engine.h"
#include "mt_query.h"

/* Print msg and the subcommand's help to stderr; returns 2 (usage). */
int mt_cli_usage(const char *msg, const char *help);

/* Open DIR read-only beside a running metrond; prints why not and returns NULL on failure. */
mt_engine *mt_cli_open_ro(const char *dir);

/*
 * GET base+path with the (name, value) query parameters (NULL values left
 * out, values escaped) and copy a 200 answer's body to stdout. Otherwise
 * print the error to stderr. Returns the exit code: 0, 1, or 2 for a 400.
 */
int mt_cli_get(const char *base, const char *path, const char *const params[][2], size_t n);

/* mt_cli_get, the 200 answer's body written to out instead of stdout. */
int mt_cli_get_to(const char *base, const char *path, const char *const params[][2], size_t n,
                  FILE *out);

/*
 * Write tab-separated lines (tsv, len bytes) to out with each column padded
 * to its widest cell, two spaces apart (tools/cli_table.c). 0, -ENOMEM or
 * -EIO.
 */
int mt_cli_align(const char *tsv, size_t len, FILE *out);

/*
 * True when --format (NULL: the default) asks for the aligned table: "table",
 * or nothing on a terminal. "tsv" is the same table with tabs, unaligned
 * (mt_cli_format_parse takes it as MT_OUT_TABLE).
 */
bool mt_cli_format_aligned(const char *name);

/*
 * The Authorization header for --url requests: "Token $METRON_TOKEN" when
 * that variable is set (a token on the command line would show in ps and
 * shell history), as a list for CURLOPT_HTTPHEADER; NULL when it is unset
 * or memory is short. The caller frees it with curl_slist_free_all.
 */
struct curl_slist *mt_cli_auth_header(void);

/* mt_cli_auth_header with the token tok (NULL or "": no header, NULL returned). */
struct curl_slist *mt_cli_auth_header_for(const char *tok);

/* The start of an answer's body: enough of an error's JSON for a message. */
typedef struct mt_cli_reply {
    char body[2048];
    size_t len;
} mt_cli_reply;

/*
 * POST body[0..len) with curl, whose URL and headers the caller set (a
 * metrond's /write: 204 when the points are durable). Sets *status (0 when
 * no answer came) and r (the body's start); the body is the caller's and is
 * not copied. Returns curl's code.
 */
CURLcode mt_cli_post(CURL *curl, const char *body, size_t len, long *status, mt_cli_reply *r);

/*
 * Parse --format (NULL: table on a terminal, csv otherwise) into *f;
 * false for an unknown name. The names are mt_output_format_parse's.
 */
bool mt_cli_format_parse(const char *name, mt_output_format *f);

int cmd_query(int argc, char **argv);
int cmd_series(int argc, char **argv);
int cmd_tags(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_rollup(int argc, char **argv);
int cmd_retention(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_schema(int argc, char **argv);
int cmd_rules(int argc, char **argv);
int cmd_alerts(int argc, char **argv);
int cmd_sink(int argc, char **argv);
int cmd_repair(int argc, char **argv);
int mt_cli_repair_replica(int argc, char **argv); /* cmd_repair_replica.c */
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_delete(int argc, char **argv); /* cmd_delete.c */

extern const char *const mt_cli_query_help,
    *const mt_cli_series_help, *const mt_cli_tags_help,
                                   *const mt_cli_import_help,
                                       *const mt_cli_export_help,
                                           *const mt_cli_inspect_help,
                                               *const mt_cli_rollup_help,
                                                   *const mt_cli_retention_help,
                                                       *const mt_cli_compact_help,
                                                           *const mt_cli_schema_help,
                                                               *const mt_cli_rules_help,
                                                                   *const mt_cli_alerts_help;

extern const char *const mt_cli_sink_help;
extern const char *const mt_cli_repair_help;
extern const char *const mt_cli_backup_help, *const mt_cli_restore_help;
extern const char *const mt_cli_delete_help;

#endif
