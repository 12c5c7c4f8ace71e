/*
 * cmd_rollup.c — `metron rollup`: the hourly rollups stored at sealing,
 * with the columns of the seed's monitoring.hourly_metrics_summary, or
 * merged into longer buckets (query/mt_rollq.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_qparse.h"
#include "mt_rollq.h"
#include "mt_time.h"

const char *const mt_cli_rollup_help =
    "usage: metron rollup (--data DIR | --url URL) --from T --to T [SELECTOR] [options]\n"
    "\n"
    "  The rollups of the sealed hours that start in [from, to): sample_count, avg, min,\n"
    "  max, p50, p95, p99 (PERCENTILE_CONT), per group (business_id, measurement, field:\n"
    "  the columns of the seed's hourly_metrics_summary) or per series.\n"
    "\n"
    "  SELECTOR         only the groups or series of the series it matches (metron query)\n"
    "  --data DIR       the data directory (read-only; metrond may be running)\n"
    "  --url URL        or a running metrond: its /api/v1/rollup\n"
    "  --group          one row per group and hour (the default)\n"
    "  --series         one row per series and hour\n"
    "  --step D         merge the hours into buckets of D (1d, 7d, 30d; whole hours), aligned\n"
    "                   to the epoch; a group's quantiles then come from merged DDSketches\n"
    "                   (relative error <= 1%)\n"
    "  --exact          with --step: exact quantiles from every value instead of sketches\n"
    "  --format F       table (default on a terminal), csv (default otherwise), json\n"
    "  --grace D        with --data: metrond's grace (default 5m), to say when an open\n"
    "                   hour's rollup appears (table: a last line; json: \"open\"; csv:\n"
    "                   on stderr); with --url the daemon knows its own\n";

static int write_stdout(void *ud, const char *buf, size_t len)
{
    (void)ud;
    return fwrite(buf, 1, len, stdout) == len ? 0 : -EIO;
}

int cmd_rollup(int argc, char **argv)
{
    const char *data = NULL, *url = NULL, *from_s = NULL, *to_s = NULL, *format = NULL,
               *step_s = NULL, *grace_s = NULL;
    bool series = false, exact = false;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'}, {"url", required_argument, 0, 'u'},
        {"from", required_argument, 0, 'f'}, {"to", required_argument, 0, 't'},
        {"step", required_argument, 0, 'p'}, {"format", required_argument, 0, 'o'},
        {"group", no_argument, 0, 'g'},      {"series", no_argument, 0, 's'},
        {"exact", no_argument, 0, 'x'},      {"grace", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'u': url = optarg; break;
        case 'f': from_s = optarg; break;
        case 't': to_s = optarg; break;
        case 'p': step_s = optarg; break;
        case 'o': format = optarg; break;
        case 'g': series = false; break;
        case 's': series = true; break;
        case 'x': exact = true; break;
        case 'r': grace_s = optarg; break;
        case 'h': fputs(mt_cli_rollup_help, stdout); return 0;
        default: return mt_cli_usage("unknown option", mt_cli_rollup_help);
        }
    }
    const char *select = optind < argc ? argv[optind] : NULL;
    if (!data == !url || optind + (select != NULL) != argc || !from_s || !to_s)
        return mt_cli_usage("rollup needs --data DIR or --url URL, --from and --to",
                            mt_cli_rollup_help);
    mt_rollq_spec spec = {.series = series, .exact = exact, .select = select};
    int64_t now = mt_now_ns();
    if (!mt_time_parse(from_s, now, &spec.from) || !mt_time_parse(to_s, now, &spec.to))
        return mt_cli_usage("--from and --to are times (RFC 3339, epoch seconds, -24h)",
                            mt_cli_rollup_help);
    if (step_s && !mt_duration_parse(step_s, &spec.step))
        return mt_cli_usage("--step is a duration (1h, 1d, 30d)", mt_cli_rollup_help);
    if (grace_s && (!mt_duration_parse(grace_s, &spec.grace_ns) || spec.grace_ns <= 0))
        return mt_cli_usage("--grace is a duration (5m, 300s)", mt_cli_rollup_help);
    mt_output_format f;
    if (!mt_cli_format_parse(format, &f))
        return mt_cli_usage("--format is table, csv or json", mt_cli_rollup_help);
    if (url) {
        const char *params[][2] = {{"select", select},
                                   {"from", from_s},
                                   {"to", to_s},
                                   {"step", step_s},
                                   {"series", series ? "1" : NULL},
                                   {"exact", exact ? "1" : NULL},
                                   {"format", mt_output_format_name(f)}};
        return mt_cli_get(url, "/api/v1/rollup", params, sizeof params / sizeof params[0]);
    }
    mt_engine *e = mt_cli_open_ro(data);
    if (!e) return 1;
    char err[512];
    int rc = mt_rollq_write(e, &spec, f, write_stdout, NULL, NULL, err, sizeof err);
    mt_rollq_open op[4];
    int nop = !rc && f == MT_OUT_CSV ? mt_rollq_open_hours(e, &spec, now, op, 4) : 0;
    for (int i = 0; i < nop; i++) { /* CSV stays rows only: the note goes beside it */
        char h[48], at[48];
        mt_time_format(op[i].hour_ns, h, sizeof h);
        mt_time_format(op[i].available_ns, at, sizeof at);
        fprintf(stderr,
                "metron: hour %s is open: its rollup appears at %s (its end plus the grace, once "
                "its writes settle)\n",
                h, at);
    }
    mt_engine_close(e);
    if (rc) {
        fprintf(stderr, "metron: %s\n", err);
        return rc == MT_EINVAL || rc == MT_EPARSE ? 2 : 1;
    }
    return fflush(stdout) ? 1 : 0;
}
