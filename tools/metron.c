/*
 * metron — the command line: queries against a data directory, read-only
 * and safe beside a running metrond (a snapshot of what was committed).
 *
 *   metron query --data DIR SELECTOR --from T --to T [--step D] [--agg A,B,...]
 *                [--by TAGS|none] [--field F] [--format table|csv|json]
 *   metron help [SUBCOMMAND]
 *
 * Exit codes: 0 ok, 1 error, 2 usage. Output formats are documented in
 * docs/query.md.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_engine.h"
#include "mt_query.h"
#include "mt_time.h"

static const char *query_help =
    "usage: metron query --data DIR SELECTOR --from T --to T [options]\n"
    "\n"
    "  SELECTOR         measurement.field{tag=\"v\", tag!=\"v\", tag=~\"re\", tag!~\"re\"}\n"
    "  --data DIR       the data directory (read-only; metrond may be running)\n"
    "  --from T, --to T the range [from, to): RFC 3339, epoch seconds, now, -24h, now-1h\n"
    "  --step D         bucket width (10s, 5m, 1h, 1d); buckets align to the epoch\n"
    "  --agg A,B,...    count sum avg min max first last stddev increase rate pNN quantile(q);\n"
    "                   without it, raw points\n"
    "  --by TAGS|none   group by these tags (comma-separated), or all series together\n"
    "  --field F        the field, when the measurement name has dots\n"
    "  --format F       table (default on a terminal), csv (default otherwise), json\n"
    "  --max-series N   refuse selectors matching more series (100000)\n";

static int usage_error(const char *msg)
{
    fprintf(stderr, "metron: %s\n\n%s", msg, query_help);
    return 2;
}

static int write_stdout(void *ud, const char *buf, size_t len)
{
    (void)ud;
    return fwrite(buf, 1, len, stdout) == len ? 0 : -EIO;
}

static int cmd_query(int argc, char **argv)
{
    const char *data = NULL, *from_s = NULL, *to_s = NULL, *step_s = NULL, *agg_s = NULL;
    const char *by_s = NULL, *field = NULL, *format_s = NULL;
    size_t max_series = 0;
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"from", required_argument, 0, 'f'},
                                         {"to", required_argument, 0, 't'},
                                         {"step", required_argument, 0, 's'},
                                         {"agg", required_argument, 0, 'a'},
                                         {"by", required_argument, 0, 'b'},
                                         {"field", required_argument, 0, 'F'},
                                         {"format", required_argument, 0, 'o'},
                                         {"max-series", required_argument, 0, 'm'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'f': from_s = optarg; break;
        case 't': to_s = optarg; break;
        case 's': step_s = optarg; break;
        case 'a': agg_s = optarg; break;
        case 'b': by_s = optarg; break;
        case 'F': field = optarg; break;
        case 'o': format_s = optarg; break;
        case 'm': max_series = strtoull(optarg, NULL, 10); break;
        case 'h': fputs(query_help, stdout); return 0;
        default: return usage_error("unknown option");
        }
    }
    if (optind != argc - 1) return usage_error("query needs one SELECTOR");
    if (!data) return usage_error("query needs --data DIR");
    if (!from_s || !to_s) return usage_error("query needs --from and --to");
    int64_t now = mt_now_ns();
    mt_query_spec spec = {.select = argv[optind], .field = field, .max_series = max_series};
    if (!mt_time_parse(from_s, now, &spec.from)) return usage_error("--from is not a time");
    if (!mt_time_parse(to_s, now, &spec.to)) return usage_error("--to is not a time");
    if (step_s && !mt_duration_parse(step_s, &spec.step))
        return usage_error("--step is not a duration (10s, 5m, 1h, 1d)");
    mt_agg aggs[MT_QUERY_MAX_AGGS];
    char err[512] = "";
    if (agg_s) {
        if (mt_agg_parse(agg_s, aggs, MT_QUERY_MAX_AGGS, &spec.naggs, err, sizeof err))
            return usage_error(err);
        spec.aggs = aggs;
    }
    char by_buf[512];
    if (by_s && !strcmp(by_s, "none")) {
        spec.by_none = true;
    } else if (by_s) {
        snprintf(by_buf, sizeof by_buf, "%s", by_s);
        for (char *save, *t = strtok_r(by_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (spec.nby == MT_QUERY_MAX_BY) return usage_error("too many --by tags");
            spec.by[spec.nby++] = t;
        }
    }
    mt_output_format f = isatty(STDOUT_FILENO) ? MT_OUT_TABLE : MT_OUT_CSV;
    if (format_s) {
        if (!strcmp(format_s, "table"))
            f = MT_OUT_TABLE;
        else if (!strcmp(format_s, "csv"))
            f = MT_OUT_CSV;
        else if (!strcmp(format_s, "json"))
            f = MT_OUT_JSON;
        else
            return usage_error("--format is table, csv or json");
    }

    mt_engine_options eo = mt_engine_options_default();
    eo.dir = data;
    eo.read_only = true;
    mt_engine *e = NULL;
    int rc;
    for (int attempt = 0; (rc = mt_engine_open(&eo, &e)) == -EAGAIN && attempt < 5; attempt++) {
    }
    if (rc) {
        fprintf(stderr, "metron: cannot read %s: %s\n", data,
                rc == MT_ENOTFOUND ? "no Metron data there" : mt_strerror(rc));
        return 1;
    }
    mt_query *q;
    rc = mt_query_open(e, &spec, &q, err, sizeof err);
    if (rc) {
        fprintf(stderr, "metron: %s\n", err[0] ? err : mt_strerror(rc));
        mt_engine_close(e);
        return rc == MT_EPARSE || rc == MT_EINVAL ? 2 : 1;
    }
    rc = mt_query_write(q, &spec, f, write_stdout, NULL, NULL);
    int exit_code = 0;
    if (rc) {
        fprintf(stderr, "metron: query stopped: %s\n",
                rc == MT_ELIMIT ? "more points than the limit" : mt_strerror(rc));
        exit_code = 1;
    }
    mt_query_close(q);
    mt_engine_close(e);
    return fflush(stdout) ? 1 : exit_code;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
        if (argc >= 3 && !strcmp(argv[2], "query")) {
            fputs(query_help, stdout);
            return 0;
        }
        printf("usage: metron SUBCOMMAND [options]\n\n"
               "  query    range queries and aggregations over a data directory\n"
               "  help     metron help SUBCOMMAND\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "query")) return cmd_query(argc - 1, argv + 1);
    fprintf(stderr, "metron: unknown subcommand '%s' (metron help)\n", argv[1]);
    return 2;
}
