/*
 * cmd_io.c — `metron import` and `metron export`.
 *
 * import reads line protocol (plain or gzip, detected by zlib) and writes it
 * into a data directory through the engine, or posts it to a running
 * metrond's /write (--url) in chunks of whole lines. Bad lines are reported
 * like the daemon reports them and the good ones are kept.
 *
 * export prints a selector's points as line protocol (one field per line,
 * every value exact: import(export(x)) holds the same points), CSV, or the
 * Prometheus text format (query/mt_fed.h: every sample of the range).
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "metron_cli.h"
#include "mt_fed.h"
#include "mt_ingest.h"
#include "mt_query.h"
#include "mt_time.h"

#define CHUNK       (1u << 20) /* bytes read at a time */
#define POST_CHUNK  (4u << 20) /* bytes of whole lines per /write request */
#define BATCH       50000      /* points per engine write */
#define SHOW_ERRORS 5          /* rejected lines printed in full */

const char *const mt_cli_import_help =
    "usage: metron import (--data DIR | --url URL) [--precision ns|us|ms|s] FILE|-\n"
    "\n"
    "  Line protocol, plain or gzip, from FILE or stdin. --data writes into a data directory\n"
    "  that no metrond holds; --url posts to a running metrond's /write. Bad lines are\n"
    "  reported (the first few in full) and the good ones kept; the exit code is then 1.\n";

const char *const mt_cli_export_help =
    "usage: metron export (--data DIR | --url URL) SELECTOR [--from T] [--to T]\n"
    "                     [--format lp|csv|prometheus]\n"
    "\n"
    "  The points of the selected series, as line protocol (one field per line, values\n"
    "  exact, timestamps in ns; the default: `metron import` takes it back unchanged), CSV\n"
    "  (series,time,value), or the Prometheus text format (metric <measurement>_<field>,\n"
    "  tags as labels, timestamps in ms; string series left out; --data only:\n"
    "  docs/query.md). Without --from and --to, all of them ([from, to)).\n"
    "  SELECTOR '{__name__=~\".+\"}' (or '*') is every series: a whole backup.\n"
    "  --url streams from a running metrond's /api/v1/export, with the token in\n"
    "  METRON_TOKEN (a tenant's token exports its tenant only); progress is shown on\n"
    "  stderr when it is a terminal.\n";

typedef struct import_ctx {
    mt_engine *e;
    mt_batch *b;
    uint64_t lines, points, rejected, shown;
    int rc;
} import_ctx;

static void show_error(import_ctx *x, const char *what)
{
    x->rejected++;
    if (x->shown++ < SHOW_ERRORS) fprintf(stderr, "metron: %s\n", what);
}

static int flush_batch(import_ctx *x)
{
    if (!mt_batch_len(x->b)) return MT_OK;
    mt_write_result r;
    int rc = mt_engine_write(x->e, x->b, &r);
    if (rc) return rc;
    x->points += r.accepted;
    if (r.rejected) {
        char msg[256];
        snprintf(msg, sizeof msg, "%zu points refused: %s", r.rejected,
                 r.first_reason == MT_ECONFLICT ? "type conflict with the existing series"
                                                : mt_strerror(r.first_reason));
        show_error(x, msg);
    }
    mt_batch_reset(x->b);
    return MT_OK;
}

static int import_line(void *ud, const mt_lp_line *l)
{
    import_ctx *x = ud;
    int rc = mt_ingest_line(x->b, l, NULL, NULL);
    if (rc == -ENOMEM) return rc;
    if (rc) {
        char msg[300];
        snprintf(msg, sizeof msg, "line %llu: series key too long", (unsigned long long)l->lineno);
        show_error(x, msg);
        return 0;
    }
    x->lines++;
    return mt_batch_len(x->b) >= BATCH ? flush_batch(x) : 0;
}

static void import_error(void *ud, const mt_lp_error *e)
{
    import_ctx *x = ud;
    char msg[1024];
    int n = mt_lp_error_format(e, msg, sizeof msg);
    if (n > 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, ": '%.*s'",
                 (int)(e->raw.len > 200 ? 200 : e->raw.len), e->raw.ptr);
    show_error(x, msg);
}

/* A progress line on stderr when it is a terminal: bytes read, rate, and the ETA of a file. */
typedef struct progress {
    bool on;
    int64_t start, last;
    uint64_t total; /* bytes of the input file (compressed), 0 when unknown */
} progress;

static void progress_show(progress *p, gzFile in, bool done)
{
    if (!p->on) return;
    int64_t now = mt_mono_ns();
    if (!done && now - p->last < 250000000) return;
    p->last = now;
    double secs = (double)(now - p->start) / 1e9, pos = (double)gzoffset(in);
    double rate = secs > 0 ? pos / secs : 0;
    fprintf(stderr, "\r%8.1f MB  %7.1f MB/s", pos / 1e6, rate / 1e6);
    if (p->total && rate > 0)
        fprintf(stderr, "  %3.0f%%  ETA %4.0f s", 100 * pos / (double)p->total,
                ((double)p->total - pos) / rate);
    if (done) fputc('\n', stderr);
}

static int import_data(gzFile in, const char *dir, mt_precision prec, progress *pg)
{
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    char why[2048] = "";
    o.why = why;
    o.why_cap = sizeof why;
    import_ctx x = {0};
    int rc = mt_engine_open(&o, &x.e);
    if (rc) {
        fprintf(stderr, "metron: cannot open %s: %s\n", dir,
                rc == -EBUSY ? "a metrond holds it: import through it with --url"
                : why[0]     ? why
                             : mt_strerror(rc));
        return 1;
    }
    mt_lp_options lo = mt_lp_options_default();
    lo.precision = prec;
    mt_lp_parser *p = NULL;
    char *buf = malloc(CHUNK);
    x.b = mt_batch_new();
    rc = !buf || !x.b || mt_lp_parser_new(&lo, &p) ? -ENOMEM : MT_OK;
    mt_lp_handler h = {import_line, import_error, &x};
    int n;
    int64_t now = mt_now_ns();
    while (!rc && (n = gzread(in, buf, CHUNK)) > 0) {
        rc = mt_lp_feed(p, buf, (size_t)n, now, &h);
        progress_show(pg, in, false);
    }
    progress_show(pg, in, true);
    if (!rc && n < 0) rc = -EIO;
    if (!rc) rc = mt_lp_finish(p, now, &h);
    if (!rc) rc = flush_batch(&x);
    /* an import is a batch: seal all of it (a later point for the same hour makes a new
       generation of its file) rather than leave it in the head */
    if (!rc) rc = mt_engine_seal(x.e, true, NULL);
    mt_lp_parser_free(p);
    mt_batch_free(x.b);
    free(buf);
    mt_engine_close(x.e);
    fprintf(stderr, "imported %llu points from %llu lines; %llu rejected\n",
            (unsigned long long)x.points, (unsigned long long)x.lines,
            (unsigned long long)x.rejected);
    if (rc) fprintf(stderr, "metron: import stopped: %s\n", mt_strerror(rc));
    return rc || x.rejected ? 1 : 0;
}

static int import_url(gzFile in, const char *base, mt_precision prec, progress *pg)
{
    CURL *curl = curl_easy_init();
    char *buf = malloc(POST_CHUNK + CHUNK);
    if (!curl || !buf) return 1;
    char url[2048];
    snprintf(url, sizeof url, "%s/write?db=metron&precision=%s", base, mt_precision_name(prec));
    curl_easy_setopt(curl, CURLOPT_URL, url);
    struct curl_slist *auth = mt_cli_auth_header();
    if (auth) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, auth);
    size_t len = 0;
    int n, rc = 0;
    uint64_t requests = 0, failed = 0;
    for (;;) {
        n = gzread(in, buf + len, CHUNK);
        if (n < 0) {
            fprintf(stderr, "metron: cannot read the input\n");
            rc = 1;
            break;
        }
        len += (size_t)n;
        progress_show(pg, in, n == 0);
        if (len < POST_CHUNK && n > 0) continue;
        /* send whole lines; keep a partial last line for the next request */
        size_t send = len;
        if (n > 0) {
            while (send && buf[send - 1] != '\n') send--;
            if (!send) send = len; /* one huge line: let the daemon refuse it */
        }
        if (send) {
            mt_cli_reply r;
            long status;
            CURLcode cc = mt_cli_post(curl, buf, send, &status, &r);
            requests++;
            if (cc != CURLE_OK) {
                fprintf(stderr, "metron: %s: %s\n", base, curl_easy_strerror(cc));
                rc = 1;
                break;
            }
            if (status != 204) {
                failed++;
                fprintf(stderr, "metron: %s answered %ld: %s\n", base, status, r.body);
                if (status != 400) {
                    rc = 1;
                    break;
                }
            }
            memmove(buf, buf + send, len - send);
            len -= send;
        }
        if (n == 0) break;
    }
    fprintf(stderr, "posted %llu requests; %llu with rejected lines\n",
            (unsigned long long)requests, (unsigned long long)failed);
    free(buf);
    curl_easy_cleanup(curl);
    curl_slist_free_all(auth);
    return rc || failed ? 1 : 0;
}

int cmd_import(int argc, char **argv)
{
    const char *data = NULL, *url = NULL, *prec_s = "ns";
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"url", required_argument, 0, 'u'},
                                         {"precision", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'u')
            url = optarg;
        else if (c == 'p')
            prec_s = optarg;
        else if (c == 'h')
            return fputs(mt_cli_import_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_import_help);
    }
    mt_precision prec;
    if (!mt_precision_parse(prec_s, strlen(prec_s), &prec) || prec > MT_PREC_S)
        return mt_cli_usage("--precision is ns, us, ms or s", mt_cli_import_help);
    if (!data == !url || optind != argc - 1)
        return mt_cli_usage("import needs --data DIR or --url URL, and FILE or -",
                            mt_cli_import_help);
    const char *file = argv[optind];
    gzFile in = !strcmp(file, "-") ? gzdopen(dup(STDIN_FILENO), "rb") : gzopen(file, "rb");
    if (!in) {
        fprintf(stderr, "metron: cannot open %s: %s\n", file, strerror(errno));
        return 1;
    }
    struct stat st;
    progress pg = {.on = isatty(STDERR_FILENO), .start = mt_mono_ns()};
    if (strcmp(file, "-") && stat(file, &st) == 0) pg.total = (uint64_t)st.st_size;
    int rc = data ? import_data(in, data, prec, &pg) : import_url(in, url, prec, &pg);
    gzclose(in);
    return rc;
}

/* ---- export ----------------------------------------------------------------------------- */

static int write_stdout(void *ud, const char *buf, size_t len)
{
    (void)ud;
    return fwrite(buf, 1, len, stdout) == len ? 0 : -EIO;
}

/* --url: what an export streams, to stdout, with its progress on a terminal. */
typedef struct url_export {
    uint64_t bytes, points;
    int64_t start, last;        /* monotonic ns */
    bool progress, failed, csv; /* csv: the first line is the header, not a point */
    long status; /* once the headers are in: 200, or an error whose body goes to err */
    char err[2048];
    size_t err_len;
    CURL *curl;
} url_export;

static void url_progress(url_export *x, bool done)
{
    if (!x->progress) return;
    int64_t now = mt_mono_ns();
    if (!done && now - x->last < 250000000) return; /* at most four times a second */
    x->last = now;
    double secs = (double)(now - x->start) / 1e9;
    uint64_t points = x->csv && x->points ? x->points - 1 : x->points;
    fprintf(stderr, "\r%10.1f MB  %12llu points  %7.1f MB/s  %9.0f points/s",
            (double)x->bytes / 1e6, (unsigned long long)points,
            secs > 0 ? (double)x->bytes / 1e6 / secs : 0, secs > 0 ? (double)points / secs : 0);
    if (done) fputc('\n', stderr);
}

static size_t on_export(char *p, size_t size, size_t n, void *ud)
{
    url_export *x = ud;
    size_t len = size * n;
    if (!x->status) curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->status != 200) { /* an error's JSON: kept for the message */
        size_t take = len < sizeof x->err - 1 - x->err_len ? len : sizeof x->err - 1 - x->err_len;
        memcpy(x->err + x->err_len, p, take);
        x->err_len += take;
        x->err[x->err_len] = '\0';
        return len;
    }
    if (fwrite(p, 1, len, stdout) != len) {
        x->failed = true;
        return 0; /* stops the transfer */
    }
    x->bytes += len;
    for (const char *q = p; (q = memchr(q, '\n', (size_t)(p + len - q))); q++) x->points++;
    url_progress(x, false);
    return len;
}

/* ns as exact epoch seconds with nine decimals ("1735689600.000000001"). */
static void epoch_text(int64_t ns, char *out, size_t cap)
{
    int64_t s = ns / 1000000000, f = ns % 1000000000;
    if (f < 0) s--, f += 1000000000;
    snprintf(out, cap, "%lld.%09lld", (long long)s, (long long)f);
}

static int export_url(const char *base, const mt_query_spec *spec, const char *from_s,
                      const char *to_s, const char *format)
{
    url_export x = {.start = mt_mono_ns(), .progress = isatty(STDERR_FILENO)};
    x.csv = !strcmp(format, "csv");
    x.curl = curl_easy_init();
    if (!x.curl) return 1;
    /* times as the daemon reads them: the client's "-24h" is relative to the client's now */
    char from[48] = "", to[48] = "";
    if (from_s) epoch_text(spec->from, from, sizeof from);
    if (to_s) epoch_text(spec->to, to, sizeof to);
    char *sel = curl_easy_escape(x.curl, spec->select, 0);
    size_t cap = strlen(base) + (sel ? strlen(sel) : 0) + 200;
    char *url = malloc(cap);
    if (!sel || !url) {
        curl_free(sel);
        free(url);
        curl_easy_cleanup(x.curl);
        return 1;
    }
    snprintf(url, cap, "%s/api/v1/export?select=%s&format=%s%s%s%s%s", base, sel, format,
             from_s ? "&start=" : "", from, to_s ? "&end=" : "", to);
    curl_free(sel);
    curl_easy_setopt(x.curl, CURLOPT_URL, url);
    curl_easy_setopt(x.curl, CURLOPT_WRITEFUNCTION, on_export);
    curl_easy_setopt(x.curl, CURLOPT_WRITEDATA, &x);
    struct curl_slist *auth = mt_cli_auth_header();
    if (auth) curl_easy_setopt(x.curl, CURLOPT_HTTPHEADER, auth);
    CURLcode cc = curl_easy_perform(x.curl);
    if (!x.status && cc == CURLE_OK) curl_easy_getinfo(x.curl, CURLINFO_RESPONSE_CODE, &x.status);
    url_progress(&x, true);
    int rc = 0;
    if (x.status && x.status != 200) {
        fprintf(stderr, "metron: %s answered %ld: %s\n", base, x.status, x.err);
        rc = x.status == 400 ? 2 : 1;
    } else if (x.failed) {
        fprintf(stderr, "metron: cannot write the export to stdout\n");
        rc = 1;
    } else if (cc != CURLE_OK) {
        /* a cut stream (no last chunk: the daemon met a damaged hour, or stopped) lands here */
        fprintf(stderr, "metron: export from %s incomplete after %llu points: %s\n", base,
                (unsigned long long)x.points, curl_easy_strerror(cc));
        rc = 1;
    }
    free(url);
    curl_slist_free_all(auth);
    curl_easy_cleanup(x.curl);
    if (fflush(stdout) && !rc) rc = 1;
    return rc;
}

/* --format prometheus: every sample of the range (query/mt_fed.h); closes e. */
static int export_prometheus(mt_engine *e, const mt_query_spec *q)
{
    mt_fed_spec spec = {.select = q->select, .from = q->from, .to = q->to, .max_series = SIZE_MAX};
    mt_fed_result res;
    char err[4608] = "";
    int rc = mt_fed_write(e, &spec, write_stdout, NULL, &res, err, sizeof err);
    mt_engine_close(e);
    if (rc) {
        fprintf(stderr, "metron: %s\n", err[0] ? err : mt_strerror(rc));
        return rc == MT_EPARSE || rc == MT_EINVAL ? 2 : 1;
    }
    if (res.strings_skipped || res.duplicates)
        fprintf(stderr,
                "metron: left out %zu string series (no Prometheus value) and %zu series whose "
                "name and labels an earlier series had\n",
                res.strings_skipped, res.duplicates);
    return fflush(stdout) ? 1 : 0;
}

int cmd_export(int argc, char **argv)
{
    const char *data = NULL, *url = NULL, *from_s = NULL, *to_s = NULL, *format = "lp";
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"url", required_argument, 0, 'u'},
                                         {"from", required_argument, 0, 'f'},
                                         {"to", required_argument, 0, 't'},
                                         {"format", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'u')
            url = optarg;
        else if (c == 'f')
            from_s = optarg;
        else if (c == 't')
            to_s = optarg;
        else if (c == 'o')
            format = optarg;
        else if (c == 'h')
            return fputs(mt_cli_export_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_export_help);
    }
    if (!data == !url || optind != argc - 1)
        return mt_cli_usage("export needs --data DIR or --url URL, and a SELECTOR",
                            mt_cli_export_help);
    bool lp = !strcmp(format, "lp"), prom = !strcmp(format, "prometheus");
    if (!lp && !prom && strcmp(format, "csv"))
        return mt_cli_usage("--format is lp, csv or prometheus", mt_cli_export_help);
    if (url && prom)
        return mt_cli_usage("--format prometheus reads a data directory (--data); a metrond "
                            "serves that format on /federate and /prometheus/api/v1/",
                            mt_cli_export_help);
    /* every series the selector names: a backup is not a query to hold back */
    mt_query_spec spec = {
        .select = argv[optind], .from = INT64_MIN, .to = INT64_MAX, .max_series = SIZE_MAX};
    int64_t now = mt_now_ns();
    if ((from_s && !mt_time_parse(from_s, now, &spec.from)) ||
        (to_s && !mt_time_parse(to_s, now, &spec.to)))
        return mt_cli_usage("--from and --to are times (RFC 3339, epoch seconds, -24h)",
                            mt_cli_export_help);
    if (url) return export_url(url, &spec, from_s, to_s, lp ? "lp" : "csv");
    mt_engine *e = mt_cli_open_ro(data);
    if (!e) return 1;
    if (prom) return export_prometheus(e, &spec);
    mt_query *q;
    char err[512] = "";
    int rc = mt_query_open(e, &spec, &q, err, sizeof err);
    if (rc) {
        fprintf(stderr, "metron: %s\n", err[0] ? err : mt_strerror(rc));
        mt_engine_close(e);
        return rc == MT_EPARSE || rc == MT_EINVAL ? 2 : 1;
    }
    rc = mt_query_write(q, &spec, lp ? MT_OUT_LP : MT_OUT_CSV, write_stdout, NULL, NULL);
    if (rc) {
        const char *damage = mt_query_damage(q);
        fprintf(stderr, "metron: export stopped: %s%s%s\n", mt_strerror(rc), *damage ? ": " : "",
                damage);
    }
    mt_query_close(q);
    mt_engine_close(e);
    return rc || fflush(stdout) ? 1 : 0;
}
