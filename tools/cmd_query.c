/*
 * cmd_query.c — `metron query`: against a data directory (a read-only
 * snapshot beside a running metrond) or a daemon's /api/v1/query (--url).
 * Output formats are documented in docs/query.md.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metron_cli.h"
#include "mt_engine.h"
#include "mt_qparse.h"
#include "mt_query.h"
#include "mt_time.h"

const char *const mt_cli_query_help =
    "usage: metron query --data DIR SELECTOR --from T --to T [options]\n"
    "\n"
    "  SELECTOR         measurement.field{tag=\"v\", tag!=\"v\", tag=~\"re\", tag!~\"re\"};\n"
    "                   {...} without a measurement, or *, is every measurement:\n"
    "                   {__name__=~\".+\"} every series (__name__ matches the measurement)\n"
    "  --data DIR       the data directory (read-only; metrond may be running)\n"
    "  --url URL        or a running metrond (http://127.0.0.1:8086): its /api/v1/query\n"
    "  --from T, --to T the range [from, to): RFC 3339, epoch seconds, now, -24h, now-1h\n"
    "  --step D         bucket width (10s, 5m, 1h, 1d); buckets align to the epoch\n"
    "  --agg A,B,...    count sum avg min max first last stddev increase rate pNN quantile(q);\n"
    "                   without it, raw points\n"
    "  --by TAGS|none   group by these tags (comma-separated), or all series together\n"
    "  --field F        the field, when the measurement name has dots\n"
    "  --format F       table (aligned; default on a terminal), csv (default otherwise),\n"
    "                   tsv (the table tab-separated), json (rows), series (JSON grouped by\n"
    "                   series: labels once, then arrays of times and values)\n"
    "  --max-series N   refuse selectors matching more series (100000)\n"
    "  --plot           draw each series (or group) as a line of Unicode blocks instead,\n"
    "                   with its first aggregation (or its raw values), min and max\n"
    "                   (--data only)\n"
    "\n"
    "  Exit codes: 0 rows printed, 1 an error, 2 a usage error, 3 the selector matched no\n"
    "  series (with --url: no rows), said on stderr.\n";

static int usage_error(const char *msg)
{
    return mt_cli_usage(msg, mt_cli_query_help);
}

static int write_file(void *ud, const char *buf, size_t len)
{
    return fwrite(buf, 1, len, ud) == len ? 0 : -EIO;
}

/* Exit code 3: nothing matched (docs/query.md, Exit codes). */
#define EXIT_NO_SERIES 3

/* An answer (held in memory) to stdout: aligned when asked; true when it holds no rows. */
static int print_held(const char *buf, size_t len, bool aligned)
{
    if (aligned) {
        if (mt_cli_align(buf, len, stdout)) return 1;
    } else if (len && fwrite(buf, 1, len, stdout) != len) {
        return 1;
    }
    return fflush(stdout) ? 1 : 0;
}

/* No rows: only the header line (csv, table), or JSON's empty "rows". */
static bool no_rows(const char *buf, size_t len, mt_output_format f)
{
    if (f == MT_OUT_JSON) return strstr(buf, "\"rows\":[]") != NULL;
    if (f == MT_OUT_SERIES) return strstr(buf, "\"series\":[\n]") != NULL;
    const char *nl = memchr(buf, '\n', len);
    return !nl || (size_t)(nl - buf) + 1 >= len;
}

/* The query through metrond's HTTP API: the daemon formats, we print. */
static int query_url(const char *base, const char *select, const char *field, const char *from,
                     const char *to, const char *step, const char *agg, const char *by,
                     const char *max_series, mt_output_format f, bool aligned)
{
    const char *params[][2] = {{"select", select},
                               {"field", field},
                               {"from", from},
                               {"to", to},
                               {"step", step},
                               {"agg", agg},
                               {"by", by},
                               {"max_series", max_series},
                               {"format", mt_output_format_name(f)}};
    /* held, to align it and to tell an empty answer */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) return 1;
    int rc = mt_cli_get_to(base, "/api/v1/query", params, sizeof params / sizeof params[0], mem);
    fclose(mem);
    if (rc == 0) {
        rc = print_held(buf, len, aligned);
        if (rc == 0 && no_rows(buf, len, f)) {
            fprintf(stderr,
                    "metron: no rows: '%s' matches no series, or none with points in the "
                    "range\n",
                    select);
            rc = EXIT_NO_SERIES;
        }
    }
    free(buf);
    return rc;
}

/* ---- --plot ------------------------------------------------------------------------------ */

#define PLOT_WIDTH 60

typedef struct plot_line {
    char label[256];
    double *v;
    size_t n, cap;
} plot_line;

/* One line: the label, then the values resampled to PLOT_WIDTH blocks, then min and max. */
static void plot_print(const plot_line *p)
{
    static const char *const blocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    if (!p->n) return;
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < p->n; i++)
        if (isfinite(p->v[i])) mn = fmin(mn, p->v[i]), mx = fmax(mx, p->v[i]);
    printf("%s\n  ", p->label[0] ? p->label : "(all series)");
    size_t w = p->n < PLOT_WIDTH ? p->n : PLOT_WIDTH;
    for (size_t x = 0; x < w; x++) {
        /* the mean of the values that fall in this column */
        size_t a = x * p->n / w, b = (x + 1) * p->n / w;
        double sum = 0;
        size_t k = 0;
        for (size_t i = a; i < b; i++)
            if (isfinite(p->v[i])) sum += p->v[i], k++;
        if (!k) {
            fputs(" ", stdout);
            continue;
        }
        double t = mx > mn ? (sum / (double)k - mn) / (mx - mn) : 0.5;
        fputs(blocks[(int)lround(t * 7)], stdout);
    }
    char lo[32], hi[32];
    mt_format_double(mn, lo, sizeof lo);
    mt_format_double(mx, hi, sizeof hi);
    printf("  min %s  max %s  (%zu values)\n", lo, hi, p->n);
}

static int plot_rows(mt_query *q)
{
    plot_line p = {.n = 0};
    mt_row row;
    int rc;
    while ((rc = mt_query_next(q, &row)) == MT_OK) {
        if (strcmp(p.label, row.group)) { /* rows of a group come together */
            plot_print(&p);
            snprintf(p.label, sizeof p.label, "%s", row.group);
            p.n = 0;
        }
        double v = row.nvalues               ? row.values[0]
                   : row.type == MT_VT_FLOAT ? row.raw.f
                   : row.type == MT_VT_INT   ? (double)row.raw.i
                   : row.type == MT_VT_UINT  ? (double)row.raw.u
                   : row.type == MT_VT_BOOL  ? (double)row.raw.u
                                             : NAN;
        if (p.n == p.cap) {
            p.cap = p.cap ? p.cap * 2 : 1024;
            double *nv = realloc(p.v, p.cap * sizeof *nv);
            if (!nv) {
                free(p.v);
                return -ENOMEM;
            }
            p.v = nv;
        }
        p.v[p.n++] = v;
    }
    plot_print(&p);
    free(p.v);
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}

int cmd_query(int argc, char **argv)
{
    const char *data = NULL, *url = NULL, *from_s = NULL, *to_s = NULL, *step_s = NULL,
               *agg_s = NULL;
    const char *by_s = NULL, *field = NULL, *format_s = NULL, *max_s = NULL;
    bool plot = false;
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
                                         {"plot", no_argument, 0, 'P'},
                                         {"url", required_argument, 0, 'u'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'u': url = optarg; break;
        case 'f': from_s = optarg; break;
        case 't': to_s = optarg; break;
        case 's': step_s = optarg; break;
        case 'a': agg_s = optarg; break;
        case 'b': by_s = optarg; break;
        case 'F': field = optarg; break;
        case 'o': format_s = optarg; break;
        case 'm': max_s = optarg; break;
        case 'P': plot = true; break;
        case 'h': fputs(mt_cli_query_help, stdout); return 0;
        default: return usage_error("unknown option");
        }
    }
    if (optind != argc - 1) return usage_error("query needs one SELECTOR");
    if (!data == !url) return usage_error("query needs --data DIR or --url URL");
    /* the same parser as GET /api/v1/query's: the same refusals, flags named as flags */
    mt_query_args args = {.select = argv[optind],
                          .from = from_s,
                          .to = to_s,
                          .step = step_s,
                          .agg = agg_s,
                          .by = by_s,
                          .field = field,
                          .max_series = max_s};
    mt_query_parsed parsed; /* spec points into it */
    char err[512] = "";
    if (mt_query_args_parse(&args, MT_QPARSE_CLI, mt_now_ns(), &parsed, err, sizeof err))
        return usage_error(err);
    mt_query_spec spec = parsed.spec;
    mt_output_format f;
    if (!mt_cli_format_parse(format_s, &f))
        return usage_error("--format is " MT_OUTPUT_FORMAT_NAMES);
    bool aligned = f == MT_OUT_TABLE && mt_cli_format_aligned(format_s);

    if (url && plot)
        return usage_error("--plot draws from --data only (with --url, use --format csv)");
    if (url)
        return query_url(url, argv[optind], field, from_s, to_s, step_s, agg_s, by_s, max_s, f,
                         aligned);

    mt_engine *e = mt_cli_open_ro(data);
    if (!e) return 1;
    int rc;
    mt_query *q;
    rc = mt_query_open(e, &spec, &q, err, sizeof err);
    if (rc) {
        fprintf(stderr, "metron: %s\n", err[0] ? err : mt_strerror(rc));
        mt_engine_close(e);
        return rc == MT_EPARSE || rc == MT_EINVAL ? 2 : 1;
    }
    char *held = NULL;
    size_t held_len = 0;
    FILE *mem = aligned && !plot ? open_memstream(&held, &held_len) : NULL;
    if (aligned && !plot && !mem) {
        mt_query_close(q);
        mt_engine_close(e);
        return 1;
    }
    rc = plot ? plot_rows(q) : mt_query_write(q, &spec, f, write_file, mem ? mem : stdout, NULL);
    int exit_code = 0;
    if (mem) {
        fclose(mem);
        if (print_held(held, held_len, true)) exit_code = 1;
        free(held);
    }
    if (!rc && mt_query_series(q) == 0) {
        fprintf(stderr, "metron: no series matches '%s'\n", argv[optind]);
        exit_code = EXIT_NO_SERIES;
    }
    if (rc) {
        const char *damage = mt_query_damage(q);
        fprintf(stderr, "metron: query stopped: %s%s%s\n",
                rc == MT_ELIMIT ? "more points than the limit" : mt_strerror(rc),
                *damage ? ": " : "", damage);
        exit_code = 1;
    }
    mt_query_close(q);
    mt_engine_close(e);
    return fflush(stdout) ? 1 : exit_code;
}
