/*
 * cmd_sink.c — `metron sink quarantine list|retry`: the rows the SQL sink
 * held back because PostgreSQL does not take them (sql/mt_quarantine.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_quarantine.h"
#include "mt_time.h"

const char *const mt_cli_sink_help =
    "usage: metron sink quarantine list --data DIR\n"
    "       metron sink quarantine retry --data DIR [--pg URL]\n"
    "\n"
    "  list     the rows the SQL sink holds back because PostgreSQL refused them for good\n"
    "           (a constraint, a value out of range, an invalid encoding) or would: one\n"
    "           per line, tab-separated: table, natural key, SQLSTATE (- for the sink's\n"
    "           own checks), reason, refusals, time of the last refusal. Works beside a\n"
    "           running metrond (a read-only snapshot).\n"
    "  retry    after fixing the cause (the schema, a constraint): without --pg, queue\n"
    "           every row for the sink again; metrond sends them when it starts. With\n"
    "           --pg URL, send them now, one transaction each. Rows that land leave the\n"
    "           quarantine; rows refused again stay, with the new reason. Needs the\n"
    "           directory to itself: stop metrond first.\n"
    "\n"
    "  Exit codes: 0 ok (retry --pg: every row landed), 1 error, 2 usage, 3 retry --pg:\n"
    "  some rows were refused again.\n";

/* Text on one line: tabs and line breaks (PostgreSQL's DETAIL) as spaces. */
static void flat(const char *s, FILE *f)
{
    for (; *s; s++) fputc(*s == '\n' || *s == '\t' || *s == '\r' ? ' ' : *s, f);
}

static int print_row(void *ud, const uint8_t key[MT_QUAR_KEY_LEN], const mt_quar_row *r)
{
    size_t *n = ud;
    (*n)++;
    if (!r) {
        printf("%s\t(unreadable record %02x%02x...)\t-\tthe record fails its checksum\t0\t-\n",
               mt_quar_table_name(key[1]), key[2], key[3]);
        return 0;
    }
    char when[40];
    mt_time_format(r->at_ns, when, sizeof when);
    printf("%s\t", mt_quar_table_name(r->table));
    flat(r->natural, stdout);
    printf("\t%s\t", r->sqlstate[0] ? r->sqlstate : "-");
    flat(r->reason, stdout);
    printf("\t%u\t%s\n", r->refusals, when);
    return 0;
}

/* Open DIR for writing with an outbox, or say why not (a running metrond holds it). */
static mt_engine *open_rw(const char *dir)
{
    mt_engine_options eo = mt_engine_options_default();
    eo.dir = dir;
    eo.auto_seal = false;
    char why[2048] = "";
    eo.why = why;
    eo.why_cap = sizeof why;
    eo.outbox = true; /* retry queues the rows for the sink */
    mt_engine *e = NULL;
    int rc = mt_engine_open(&eo, &e);
    if (rc == -EBUSY || rc == -EWOULDBLOCK)
        fprintf(stderr,
                "metron: %s is in use by a running metrond: stop it to retry the quarantine "
                "(it sends the rows queued again when it starts); list works beside it\n",
                dir);
    else if (rc)
        fprintf(stderr, "metron: cannot open %s: %s\n", dir, why[0] ? why : mt_strerror(rc));
    return rc ? NULL : e;
}

int cmd_sink(int argc, char **argv)
{
    const char *data = NULL, *pg = NULL;
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"pg", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'p')
            pg = optarg;
        else if (c == 'h')
            return fputs(mt_cli_sink_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_sink_help);
    }
    const char *what = optind + 1 < argc ? argv[optind + 1] : "";
    bool list = !strcmp(what, "list"), retry = !strcmp(what, "retry");
    if (optind + 2 != argc || strcmp(argv[optind], "quarantine") || (!list && !retry) || !data)
        return mt_cli_usage("sink needs quarantine list|retry and --data DIR", mt_cli_sink_help);
    if (list && pg) return mt_cli_usage("--pg goes with retry", mt_cli_sink_help);
    mt_engine *e = list ? mt_cli_open_ro(data) : open_rw(data);
    if (!e) return 1;
    int rc, code = 0;
    if (list) {
        size_t n = 0;
        rc = mt_quar_list(e, print_row, &n);
        if (rc)
            fprintf(stderr, "metron: cannot read the quarantine of %s: %s\n", data,
                    mt_strerror(rc));
    } else if (!pg) {
        size_t n = 0;
        rc = mt_quar_requeue(e, &n);
        if (rc)
            fprintf(stderr, "metron: cannot queue the quarantine of %s again, nothing queued: %s\n",
                    data, mt_strerror(rc));
        else
            printf("queued %zu rows for the sink: metrond sends them when it starts\n", n);
    } else {
        mt_quar_result res;
        char err[600];
        rc = mt_quar_retry(e, pg, &res, err, sizeof err);
        printf("landed %zu rows, %zu refused again\n", res.landed, res.refused);
        if (rc)
            fprintf(stderr, "metron: retry stopped (what was decided is kept): %s\n", err);
        else if (res.refused)
            code = 3;
    }
    mt_engine_close(e);
    if (rc) return 1;
    return fflush(stdout) ? 1 : code;
}
