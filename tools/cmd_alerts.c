/*
 * cmd_alerts.c — `metron alerts`: the alert instances metrond keeps in the
 * data directory (read beside it), newest first.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_alert.h"

const char *const mt_cli_alerts_help =
    "usage: metron alerts (--data DIR | --url URL) [--all]\n"
    "\n"
    "  The alerts metrond raised: id, status, severity, rule, series, value, threshold,\n"
    "  triggered (and resolved) times, business_id (the series' tenant). Open ones (active,\n"
    "  acknowledged, suppressed) only,\n"
    "  unless --all. --data reads the data directory (beside metrond), --url asks metrond\n"
    "  (its /api/v1/alerts).\n";

typedef struct listing {
    mt_alert_record *r;
    size_t n, cap;
    bool all;
} listing;

static int on_record(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key, (void)klen;
    listing *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        mt_alert_record *r = realloc(l->r, cap * sizeof *r);
        if (!r) return -1;
        l->r = r;
        l->cap = cap;
    }
    mt_alert_record *r = &l->r[l->n];
    if (mt_alert_record_decode(val, vlen, r)) return 0; /* not readable: not listed */
    bool open = r->st.status == MT_ALERT_ACTIVE || r->st.status == MT_ALERT_ACKNOWLEDGED ||
                r->st.status == MT_ALERT_SUPPRESSED;
    if (open || (l->all && r->st.status == MT_ALERT_RESOLVED)) l->n++;
    return 0;
}

static int newest_first(const void *a, const void *b)
{
    int64_t x = ((const mt_alert_record *)a)->st.triggered_at,
            y = ((const mt_alert_record *)b)->st.triggered_at;
    return (x < y) - (x > y);
}

int cmd_alerts(int argc, char **argv)
{
    const char *data = NULL, *url = NULL;
    listing l = {0};
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"url", required_argument, 0, 'u'},
                                         {"all", no_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'u')
            url = optarg;
        else if (c == 'a')
            l.all = true;
        else if (c == 'h')
            return fputs(mt_cli_alerts_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_alerts_help);
    }
    if (!data == !url || optind != argc)
        return mt_cli_usage("alerts needs --data DIR or --url URL", mt_cli_alerts_help);
    if (url) {
        const char *params[][2] = {{"all", l.all ? "1" : NULL}};
        return mt_cli_get(url, "/api/v1/alerts", params, 1);
    }
    mt_engine *e = mt_cli_open_ro(data);
    if (!e) return 1;
    int rc = mt_engine_state_scan(e, "A", 1, on_record, &l);
    mt_engine_close(e);
    if (rc) {
        fprintf(stderr, "metron: cannot read the alerts: %s\n", mt_strerror(rc));
        free(l.r);
        return 1;
    }
    qsort(l.r, l.n, sizeof *l.r, newest_first);
    fputs(mt_alert_listing_header(), stdout);
    for (size_t i = 0; i < l.n; i++) {
        char row[2048];
        mt_alert_record_row(&l.r[i], row, sizeof row);
        fputs(row, stdout);
    }
    free(l.r);
    return fflush(stdout) ? 1 : 0;
}
