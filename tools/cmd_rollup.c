/*
 * cmd_rollup.c — `metron rollup`: the hourly rollups stored at sealing, with
 * the columns of the seed's monitoring.hourly_metrics_summary.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "metron_cli.h"
#include "mt_query.h"
#include "mt_time.h"

const char *const mt_cli_rollup_help =
    "usage: metron rollup --data DIR --from T --to T [--group | --series] [--format F]\n"
    "\n"
    "  The hourly rollups of the sealed hours in [from, to): per group (the default:\n"
    "  hour_bucket, business_id, metric_category, metric_name, sample_count, avg_value,\n"
    "  min_value, max_value, median_value, p95_value, p99_value, like the seed's\n"
    "  hourly_metrics_summary) or per series. Quantiles are PERCENTILE_CONT, exact.\n"
    "  --format table (default on a terminal), csv (default otherwise) or json.\n";

typedef struct printer {
    mt_engine *e;
    mt_output_format f;
    bool groups;
    size_t rows;
} printer;

static void text(const printer *p, bool first, const char *s, size_t n)
{
    if (!first) putchar(p->f == MT_OUT_TABLE ? '\t' : ',');
    if (p->f == MT_OUT_JSON) {
        putchar('"');
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"' || s[i] == '\\') putchar('\\');
            putchar(s[i]);
        }
        putchar('"');
    } else if (p->f == MT_OUT_CSV && (memchr(s, ',', n) || memchr(s, '"', n))) {
        putchar('"');
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"') putchar('"');
            putchar(s[i]);
        }
        putchar('"');
    } else {
        fwrite(s, 1, n, stdout);
    }
}

static int print_rollup(void *ud, const mt_rollup *r)
{
    printer *p = ud;
    char t[48], key[MT_SERIES_MAX_KEY], label[4096], num[64];
    mt_time_format(r->hour * MT_HOUR_NS, t, sizeof t);
    if (p->f == MT_OUT_JSON) fputs(p->rows ? ",[" : "[", stdout);
    text(p, true, t, strlen(t));
    if (p->groups) {
        if (r->business_id.len || p->f != MT_OUT_JSON) text(p, false, r->business_id.ptr, r->business_id.len);
        else fputs(",null", stdout); /* the system-wide tenant, NULL in the seed's table */
        text(p, false, r->measurement.ptr, r->measurement.len);
        text(p, false, r->field.ptr, r->field.len);
    } else {
        size_t kl;
        label[0] = '\0';
        if (mt_engine_series_key(p->e, r->id, key, sizeof key, &kl) == MT_OK)
            mt_series_format(key, kl, label, sizeof label);
        text(p, false, label, strlen(label));
    }
    printf("%c%llu", p->f == MT_OUT_TABLE ? '\t' : ',', (unsigned long long)r->count);
    const double v[6] = {r->sum / (double)r->count, r->min, r->max, r->p50, r->p95, r->p99};
    for (int i = 0; i < 6; i++) {
        mt_format_double(v[i], num, sizeof num);
        printf("%c%s", p->f == MT_OUT_TABLE ? '\t' : ',', num);
    }
    fputs(p->f == MT_OUT_JSON ? "]" : "\n", stdout);
    p->rows++;
    return 0;
}

int cmd_rollup(int argc, char **argv)
{
    const char *data = NULL, *from_s = NULL, *to_s = NULL, *format = NULL;
    bool series = false;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'}, {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'},   {"format", required_argument, 0, 'o'},
        {"group", no_argument, 0, 'g'},      {"series", no_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd') data = optarg;
        else if (c == 'f') from_s = optarg;
        else if (c == 't') to_s = optarg;
        else if (c == 'o') format = optarg;
        else if (c == 'g') series = false;
        else if (c == 's') series = true;
        else if (c == 'h') return fputs(mt_cli_rollup_help, stdout), 0;
        else return mt_cli_usage("unknown option", mt_cli_rollup_help);
    }
    int64_t now = mt_now_ns(), from, to;
    if (!data || optind != argc || !from_s || !to_s)
        return mt_cli_usage("rollup needs --data DIR, --from and --to", mt_cli_rollup_help);
    if (!mt_time_parse(from_s, now, &from) || !mt_time_parse(to_s, now, &to))
        return mt_cli_usage("--from and --to are times (RFC 3339, epoch seconds, -24h)",
                            mt_cli_rollup_help);
    printer p = {.f = isatty(STDOUT_FILENO) ? MT_OUT_TABLE : MT_OUT_CSV, .groups = !series};
    if (format) {
        if (!strcmp(format, "table")) p.f = MT_OUT_TABLE;
        else if (!strcmp(format, "csv")) p.f = MT_OUT_CSV;
        else if (!strcmp(format, "json")) p.f = MT_OUT_JSON;
        else return mt_cli_usage("--format is table, csv or json", mt_cli_rollup_help);
    }
    if (!(p.e = mt_cli_open_ro(data))) return 1;
    const char *cols = series ? "hour_bucket,series,sample_count,avg_value,min_value,max_value,"
                                "median_value,p95_value,p99_value"
                              : "hour_bucket,business_id,metric_category,metric_name,"
                                "sample_count,avg_value,min_value,max_value,median_value,"
                                "p95_value,p99_value";
    if (p.f == MT_OUT_JSON) {
        fputs("{\"columns\":[\"", stdout);
        for (const char *s = cols; *s; s++) fputs(*s == ',' ? "\",\"" : (char[2]){*s, 0}, stdout);
        fputs("\"],\"rows\":[", stdout);
    } else {
        for (const char *s = cols; *s; s++) putchar(*s == ',' && p.f == MT_OUT_TABLE ? '\t' : *s);
        putchar('\n');
    }
    /* hours that start in [from, to) */
    int64_t h0 = from / MT_HOUR_NS + (from % MT_HOUR_NS > 0), h1 = (to + MT_HOUR_NS - 1) / MT_HOUR_NS;
    int rc = mt_engine_rollups(p.e, h0, h1, !series, print_rollup, &p);
    if (p.f == MT_OUT_JSON) fputs("]}\n", stdout);
    mt_engine_close(p.e);
    if (rc) fprintf(stderr, "metron: %s\n", mt_strerror(rc));
    return rc || fflush(stdout) ? 1 : 0;
}
