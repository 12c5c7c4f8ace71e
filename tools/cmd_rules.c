/*
 * cmd_rules.c — `metron rules check|eval`: a local rules file validated,
 * or evaluated once on a data directory.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_time.h"
#include "rules.h"

const char *const mt_cli_rules_help =
    "usage: metron rules check FILE\n"
    "       metron rules eval --data DIR FILE [--at T]\n"
    "\n"
    "  check   read the rules file (docs/alerts.md) and report the first error, with its\n"
    "          line, section and key; prints one line per rule when it is valid\n"
    "  eval    evaluate every rule once at T (default now) on a data directory (metrond\n"
    "          may be running) and print, per rule and series: severity, value, threshold\n";

static int print_eval(void *ud, const mt_alert_eval *ev)
{
    const mt_alert_rule *r = ud;
    if (ev->nodata) {
        printf("%s\t%s\tno data\n", r->name, ev->series);
        return 0;
    }
    printf("%s\t%s\t%s\t%.17g", r->name, ev->series, mt_severity_name(ev->severity), ev->value);
    if (!isnan(ev->threshold)) printf("\t%s %.17g", mt_cmp_name(r->op), ev->threshold);
    putchar('\n');
    return 0;
}

int cmd_rules(int argc, char **argv)
{
    const char *data = NULL, *at = NULL;
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"at", required_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'a')
            at = optarg;
        else if (c == 'h')
            return fputs(mt_cli_rules_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_rules_help);
    }
    const char *what = optind < argc ? argv[optind] : "";
    bool eval = !strcmp(what, "eval");
    if ((!eval && strcmp(what, "check")) || optind + 2 != argc || (eval && !data))
        return mt_cli_usage("rules needs check FILE, or eval --data DIR FILE", mt_cli_rules_help);
    int64_t now = mt_now_ns();
    if (at && !mt_time_parse(at, mt_now_ns(), &now))
        return mt_cli_usage("--at is a time (RFC 3339, epoch seconds)", mt_cli_rules_help);
    mt_alert_rule *rules;
    mt_webhook *hooks = NULL;
    size_t n, nh = 0;
    char err[512];
    if (mt_rules_load(argv[optind + 1], &rules, &n, &hooks, &nh, err, sizeof err)) {
        fprintf(stderr, "metron: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (!eval) {
        for (size_t i = 0; i < n; i++)
            printf("%s\t%s\t%s\n", rules[i].name, rules[i].id, rules[i].metric);
        for (size_t i = 0; i < nh; i++) printf("webhook %s\t%s\n", hooks[i].name, hooks[i].url);
        printf("%zu rules, %zu webhooks, all valid\n", n, nh);
    } else {
        mt_engine *e = mt_cli_open_ro(data);
        if (!e) rc = 1;
        for (size_t i = 0; !rc && i < n; i++)
            if (mt_alert_evaluate(e, &rules[i], now, print_eval, &rules[i], err, sizeof err)) {
                fprintf(stderr, "metron: rule %s: %s\n", rules[i].name, err);
                rc = 1;
            }
        if (e) mt_engine_close(e);
    }
    free(rules);
    free(hooks);
    return rc || fflush(stdout) ? 1 : 0;
}
