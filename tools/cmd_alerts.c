/*
 * cmd_alerts.c — `metron alerts`: the alert instances metrond keeps in the
 * data directory (read beside it), newest first.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_alert.h"
#include "mt_time.h"

const char *const mt_cli_alerts_help =
    "usage: metron alerts --data DIR [--all]\n"
    "\n"
    "  The alerts metrond raised: id, status, severity, rule, series, value, threshold,\n"
    "  triggered (and resolved) times. Open ones (active, acknowledged) only, unless --all.\n";

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
    const char *data = NULL;
    listing l = {0};
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"all", no_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'a')
            l.all = true;
        else if (c == 'h')
            return fputs(mt_cli_alerts_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_alerts_help);
    }
    if (!data || optind != argc) return mt_cli_usage("alerts needs --data DIR", mt_cli_alerts_help);
    mt_engine *e = mt_cli_open_ro(data);
    if (!e) return 1;
    int rc = mt_engine_state_scan(e, "A", 1, on_record, &l);
    mt_engine_close(e);
    if (rc) {
        fprintf(stderr, "metron: cannot read the alerts: %s\n", mt_strerror(rc));
        free(l.r);
        return 1;
    }
    static const char *const statuses[] = {"none", "active", "acknowledged", "resolved",
                                           "suppressed"};
    qsort(l.r, l.n, sizeof *l.r, newest_first);
    printf("id\tstatus\tseverity\trule\tseries\tvalue\tthreshold\ttriggered_at\tresolved_at\n");
    for (size_t i = 0; i < l.n; i++) {
        const mt_alert_record *r = &l.r[i];
        char trig[48], res[48] = "";
        mt_time_format(r->st.triggered_at, trig, sizeof trig);
        if (r->st.resolved_at) mt_time_format(r->st.resolved_at, res, sizeof res);
        printf("%s\t%s\t%s\t%s\t%s\t%.17g\t", r->alert_id, statuses[r->st.status],
               mt_severity_name(r->st.severity), r->rule.name, r->series, r->st.value);
        if (!isnan(r->st.threshold)) printf("%.17g", r->st.threshold);
        printf("\t%s\t%s\n", trig, res);
    }
    free(l.r);
    return fflush(stdout) ? 1 : 0;
}
