/*
 * cmd_repair_replica.c — `metron repair --from URL --to URL --tenant T`:
 * after one node of a replica pair was down, copy the hours it missed from
 * the other one, over HTTP (docs/operations.md, "Repairing a replica").
 *
 * For each hour of [since, until) both sides' exports of the tenant's points
 * (GET /api/v1/export, line protocol: one point per line, values exact, the
 * same bytes for the same points on any node) are reduced to a count and an
 * order-independent checksum, the sum of each line's XXH3-64. An hour whose
 * figures differ is copied: the source's export of that hour is streamed
 * into the target's /write in chunks of whole lines (a repeated (series,
 * time) keeps the last value written, so the points the target has already
 * are written again harmlessly), and both sides are counted again. The
 * repair is one-way: an hour where the target holds points the source lacks
 * cannot become equal; --both copies each differing hour both ways (the
 * source's values win where both hold a point), for a pair that both missed
 * writes.
 *
 * The tenant comes from the tokens: a tenant's token reads and writes its
 * tenant only, and the export names it (X-Metron-Tenant), so a token of
 * another tenant than --tenant is refused before anything is copied; a
 * system token repairs the tenant named. Memory: one POST chunk and one line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "metron_cli.h"
#include "mt_hash.h"
#include "mt_time.h"

#define HOUR_NS     3600000000000LL
#define POST_CHUNK  (4u << 20) /* bytes of whole lines per /write request */
#define LINE_MAX_   (1u << 24) /* a line longer than this is an answer that is not an export */
#define VERIFY_TRYS 4          /* counts of an hour taken after its copy, 1 s apart */

/* One metrond: its base URL and the handles reused for every request to it. */
typedef struct side {
    const char *url;
    struct curl_slist *auth; /* NULL: no token */
    CURL *get, *post;
} side;

/* An hour's figures on one side. */
typedef struct digest {
    uint64_t points, sum;
} digest;

/* One export streamed: its lines counted and hashed, and with dst, posted to dst's /write. */
typedef struct stream {
    side *src, *dst;
    const char *tenant; /* the tenant asked for */
    long status;
    char token_tenant[128]; /* X-Metron-Tenant: the tenant the token narrowed the export to */
    char err[2048];         /* an error answer's body */
    size_t err_len;
    char *line; /* the partial last line of what came so far */
    size_t len, cap;
    digest d;
    char *out; /* dst: whole lines waiting for the next POST */
    size_t out_len;
    uint64_t posted; /* points dst took */
    bool failed;     /* a POST failed (its message is printed), or memory ran out */
} stream;

/* ---- the copy's POSTs -------------------------------------------------------------------- */

static int post_out(stream *x)
{
    if (!x->out_len) return 0;
    mt_cli_reply r;
    long status;
    CURLcode cc = mt_cli_post(x->dst->post, x->out, x->out_len, &status, &r);
    if (cc != CURLE_OK) {
        fprintf(stderr, "metron: %s/write: %s\n", x->dst->url, curl_easy_strerror(cc));
        return -1;
    }
    if (status != 204) {
        fprintf(stderr, "metron: %s/write answered %ld: %s\n", x->dst->url, status, r.body);
        return -1;
    }
    x->out_len = 0;
    return 0;
}

/*
 * One line of the export (without its '\n'). With dst, a full chunk is posted from inside
 * the export's write callback: another easy handle, so libcurl allows it, and the export
 * waits meanwhile (metrond fills its next chunk only once the last is read), which is
 * what bounds memory. A target slower than the source's idle_timeout cuts the export,
 * which is then reported incomplete, never taken as whole.
 */
static int take_line(stream *x, const char *p, size_t n)
{
    if (!n) return 0;
    x->d.points++;
    x->d.sum += mt_hash64(p, n); /* a sum: the order of the lines does not matter */
    if (!x->dst) return 0;
    if (x->out_len + n + 1 > POST_CHUNK && post_out(x)) return -1;
    if (n + 1 > POST_CHUNK) { /* one line alone past the chunk: sent by itself */
        char *save = x->out;
        size_t cap = n + 1;
        x->out = malloc(cap);
        if (!x->out) return x->out = save, -1;
        memcpy(x->out, p, n);
        x->out[n] = '\n';
        x->out_len = n + 1;
        int rc = post_out(x);
        free(x->out);
        x->out = save;
        x->out_len = 0;
        return rc;
    }
    memcpy(x->out + x->out_len, p, n);
    x->out[x->out_len + n] = '\n';
    x->out_len += n + 1;
    return 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    stream *x = ud;
    size_t len = size * n;
    static const char name[] = "X-Metron-Tenant:";
    if (len > sizeof name - 1 && !strncasecmp(p, name, sizeof name - 1)) {
        const char *v = p + sizeof name - 1, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
        snprintf(x->token_tenant, sizeof x->token_tenant, "%.*s", (int)(end - v), v);
    }
    return len;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    stream *x = ud;
    size_t len = size * n;
    if (!x->status) curl_easy_getinfo(x->src->get, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->status != 200) { /* an error's JSON: kept for the message */
        size_t room = sizeof x->err - 1 - x->err_len, take = len < room ? len : room;
        memcpy(x->err + x->err_len, p, take);
        x->err_len += take;
        x->err[x->err_len] = '\0';
        return len;
    }
    const char *q = p, *end = p + len, *nl;
    while ((nl = memchr(q, '\n', (size_t)(end - q)))) {
        size_t k = (size_t)(nl - q);
        int rc;
        if (x->len) { /* the end of the line begun in the previous piece */
            if (x->len + k > x->cap) {
                size_t cap = x->len + k;
                char *g = cap <= LINE_MAX_ ? realloc(x->line, cap) : NULL;
                if (!g) return x->failed = true, 0;
                x->line = g;
                x->cap = cap;
            }
            memcpy(x->line + x->len, q, k);
            rc = take_line(x, x->line, x->len + k);
            x->len = 0;
        } else {
            rc = take_line(x, q, k);
        }
        if (rc) return x->failed = true, 0; /* stops the transfer */
        q = nl + 1;
    }
    size_t rest = (size_t)(end - q);
    if (rest) {
        if (x->len + rest > x->cap) {
            size_t cap = x->cap ? x->cap : 4096;
            while (cap < x->len + rest) cap *= 2;
            char *g = cap <= LINE_MAX_ ? realloc(x->line, cap) : NULL;
            if (!g) return x->failed = true, 0;
            x->line = g;
            x->cap = cap;
        }
        memcpy(x->line + x->len, q, rest);
        x->len += rest;
    }
    return len;
}

/*
 * Stream the tenant's export of [from, to) (ns, whole seconds) from src: its figures into *d,
 * and with dst, its lines into dst's /write (*posted: how many). 0, or 1 with the error
 * printed: the URL and its answer, or the token's tenant when it is not the one asked for.
 */
static int export_hour(side *src, side *dst, const char *select, const char *tenant, int64_t from,
                       int64_t to, digest *d, uint64_t *posted)
{
    stream x = {.src = src, .dst = dst, .tenant = tenant};
    if (dst && !(x.out = malloc(POST_CHUNK))) return fputs("metron: out of memory\n", stderr), 1;
    char url[8192];
    snprintf(url, sizeof url, "%s/api/v1/export?select=%s&format=lp&start=%lld&end=%lld", src->url,
             select, (long long)(from / 1000000000), (long long)(to / 1000000000));
    CURL *c = src->get;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    CURLcode cc = curl_easy_perform(c);
    if (!x.status && cc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x.status);
    int rc = 1;
    if (x.status && x.status != 200)
        fprintf(stderr, "metron: %s/api/v1/export answered %ld: %s\n", src->url, x.status, x.err);
    else if (x.token_tenant[0] && strcmp(x.token_tenant, tenant))
        fprintf(stderr,
                "metron: %s: the token is tenant %s's, not %s's: the tenant comes from the token "
                "(a tenant's token repairs its own tenant; a system token any)\n",
                src->url, x.token_tenant, tenant);
    else if (x.failed)
        ;                    /* the POST's error, printed; or memory */
    else if (cc != CURLE_OK) /* a cut stream: the daemon stopped, or met a damaged hour */
        fprintf(stderr, "metron: %s/api/v1/export incomplete after %llu points: %s\n", src->url,
                (unsigned long long)x.d.points, curl_easy_strerror(cc));
    else if (take_line(&x, x.line, x.len) || post_out(&x))
        ; /* the POST's error, printed */
    else
        rc = 0;
    *d = x.d;
    if (posted) *posted = x.d.points;
    free(x.line);
    free(x.out);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------- */

static const char *pick(const char *a, const char *b, const char *env1, const char *env2)
{
    if (a) return a;
    if (b) return b;
    const char *e = getenv(env1);
    return e && *e ? e : getenv(env2);
}

static bool side_open(side *s, const char *url, const char *token)
{
    s->url = url;
    s->auth = mt_cli_auth_header_for(token);
    s->get = curl_easy_init();
    s->post = curl_easy_init();
    if (!s->get || !s->post || (token && *token && !s->auth)) return false;
    char w[4096];
    snprintf(w, sizeof w, "%s/write?db=metron&precision=ns", url);
    curl_easy_setopt(s->post, CURLOPT_URL, w);
    curl_easy_setopt(s->get, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(s->post, CURLOPT_CONNECTTIMEOUT, 10L);
    if (s->auth) {
        curl_easy_setopt(s->get, CURLOPT_HTTPHEADER, s->auth);
        curl_easy_setopt(s->post, CURLOPT_HTTPHEADER, s->auth);
    }
    return true;
}

static void side_close(side *s)
{
    curl_easy_cleanup(s->get);
    curl_easy_cleanup(s->post);
    curl_slist_free_all(s->auth);
}

static bool same(const digest *a, const digest *b)
{
    return a->points == b->points && a->sum == b->sum;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int mt_cli_repair_replica(int argc, char **argv)
{
    const char *from_url = NULL, *to_url = NULL, *tenant = NULL, *since_s = "-24h",
               *until_s = "now", *tok = NULL, *from_tok = NULL, *to_tok = NULL;
    bool both = false, dry = false;
    static const struct option opts[] = {{"from", required_argument, 0, 'f'},
                                         {"to", required_argument, 0, 't'},
                                         {"tenant", required_argument, 0, 'T'},
                                         {"since", required_argument, 0, 's'},
                                         {"until", required_argument, 0, 'u'},
                                         {"token", required_argument, 0, 'k'},
                                         {"from-token", required_argument, 0, 'F'},
                                         {"to-token", required_argument, 0, 'O'},
                                         {"both", no_argument, 0, 'b'},
                                         {"dry-run", no_argument, 0, 'n'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': from_url = optarg; break;
        case 't': to_url = optarg; break;
        case 'T': tenant = optarg; break;
        case 's': since_s = optarg; break;
        case 'u': until_s = optarg; break;
        case 'k': tok = optarg; break;
        case 'F': from_tok = optarg; break;
        case 'O': to_tok = optarg; break;
        case 'b': both = true; break;
        case 'n': dry = true; break;
        case 'h': return fputs(mt_cli_repair_help, stdout), 0;
        default: return mt_cli_usage("unknown option", mt_cli_repair_help);
        }
    }
    if (!from_url || !to_url || !tenant || optind != argc)
        return mt_cli_usage("repair between replicas needs --from URL, --to URL and --tenant BID",
                            mt_cli_repair_help);
    if (!*tenant || strpbrk(tenant, "\"\\\n"))
        return mt_cli_usage("--tenant is a business_id (no quotes, backslashes or newlines)",
                            mt_cli_repair_help);
    if (!strcmp(from_url, to_url))
        return mt_cli_usage("--from and --to are the same URL", mt_cli_repair_help);
    int64_t now = mt_now_ns(), since, until;
    if (!mt_time_parse(since_s, now, &since) || !mt_time_parse(until_s, now, &until))
        return mt_cli_usage("--since and --until are times (RFC 3339, epoch seconds, -24h)",
                            mt_cli_repair_help);
    if (since >= until) return mt_cli_usage("--since is not before --until", mt_cli_repair_help);

    side a = {0}, b = {0};
    bool ok = side_open(&a, from_url, pick(from_tok, tok, "METRON_FROM_TOKEN", "METRON_TOKEN")) &&
              side_open(&b, to_url, pick(to_tok, tok, "METRON_TO_TOKEN", "METRON_TOKEN"));
    char sel[512], *esc = NULL;
    snprintf(sel, sizeof sel, "{business_id=\"%s\"}", tenant);
    if (ok) esc = curl_easy_escape(a.get, sel, 0);
    size_t cap = 4096;
    char *table = malloc(cap), *bad = malloc(cap);
    if (!ok || !esc || !table || !bad) {
        fputs("metron: out of memory\n", stderr);
        side_close(&a);
        side_close(&b);
        curl_free(esc);
        free(table);
        free(bad);
        return 1;
    }
    size_t tlen = (size_t)snprintf(table, cap,
                                   "hour\tfrom points\tfrom checksum\tto points\tto checksum\t"
                                   "copied\tverified\n");
    size_t blen = 0;
    bad[0] = '\0';
    int rc = 0;
    unsigned hours = 0, differing = 0, failed = 0;
    uint64_t copied_total = 0;
    int64_t t0 = mt_mono_ns();
    for (int64_t h = since - ((since % HOUR_NS) + HOUR_NS) % HOUR_NS; h < until && !rc;
         h += HOUR_NS) {
        int64_t end = h + HOUR_NS < until ? h + HOUR_NS : until;
        hours++;
        digest da, db;
        uint64_t copied = 0, back = 0;
        if (export_hour(&a, NULL, esc, tenant, h, end, &da, NULL) ||
            export_hour(&b, NULL, esc, tenant, h, end, &db, NULL)) {
            rc = 1;
            break;
        }
        const char *verdict = "yes";
        if (!same(&da, &db)) {
            differing++;
            if (dry) {
                verdict = "differs";
            } else {
                digest dummy;
                if (export_hour(&a, &b, esc, tenant, h, end, &dummy, &copied) ||
                    (both && export_hour(&b, &a, esc, tenant, h, end, &dummy, &back))) {
                    rc = 1;
                    break;
                }
                copied_total += copied + back;
                /* double writes may still be landing in the hour now being written: a few
                   counts, a second apart, before the hour is called unequal */
                for (int i = 0; i < VERIFY_TRYS; i++) {
                    if (i) sleep_ms(1000);
                    if (export_hour(&a, NULL, esc, tenant, h, end, &da, NULL) ||
                        export_hour(&b, NULL, esc, tenant, h, end, &db, NULL)) {
                        rc = 1;
                        break;
                    }
                    if (same(&da, &db)) break;
                }
                if (rc) break;
                verdict = same(&da, &db) ? "yes" : "no";
            }
        }
        char when[40], line[512];
        mt_time_format(h, when, sizeof when);
        int n = snprintf(line, sizeof line, "%s\t%llu\t%016llx\t%llu\t%016llx\t", when,
                         (unsigned long long)da.points, (unsigned long long)da.sum,
                         (unsigned long long)db.points, (unsigned long long)db.sum);
        if (both)
            n += snprintf(line + n, sizeof line - (size_t)n, "%llu+%llu\t%s\n",
                          (unsigned long long)copied, (unsigned long long)back, verdict);
        else
            n += snprintf(line + n, sizeof line - (size_t)n, "%llu\t%s\n",
                          (unsigned long long)copied, verdict);
        if (tlen + (size_t)n + 1 > cap || blen + 64 > cap) {
            char *g = realloc(table, cap * 2), *g2 = g ? realloc(bad, cap * 2) : NULL;
            if (g) table = g;
            if (g2) bad = g2;
            if (!g || !g2) {
                fputs("metron: out of memory\n", stderr);
                rc = 1;
                break;
            }
            cap *= 2;
        }
        memcpy(table + tlen, line, (size_t)n + 1);
        tlen += (size_t)n;
        if (!strcmp(verdict, "no")) {
            failed++;
            blen += (size_t)snprintf(bad + blen, cap - blen, " %s%s", when,
                                     db.points > da.points && !both ? " (to has more)" : "");
        }
        if (isatty(STDERR_FILENO))
            fprintf(stderr, "\r%u hours, %u differed, %llu points copied", hours, differing,
                    (unsigned long long)copied_total);
    }
    if (isatty(STDERR_FILENO)) fputc('\n', stderr);
    double secs = (double)(mt_mono_ns() - t0) / 1e9;
    if (!rc) {
        if (mt_cli_align(table, tlen, stdout)) rc = 1;
        if (dry)
            fprintf(stderr, "%u of %u hours differ (dry run: nothing copied)\n", differing, hours);
        else
            fprintf(stderr, "%u of %u hours differed; %llu points copied in %.1f s\n", differing,
                    hours, (unsigned long long)copied_total, secs);
        if (failed) {
            fprintf(stderr, "metron: %u hours do not verify equal:%s\n", failed, bad);
            if (!both && strstr(bad, "to has more"))
                fprintf(stderr,
                        "metron: %s holds points %s lacks there: it missed writes too; "
                        "repair both ways (--both)\n",
                        to_url, from_url);
            rc = 1;
        } else if (dry && differing) {
            rc = 3;
        }
    }
    curl_free(esc);
    free(table);
    free(bad);
    side_close(&a);
    side_close(&b);
    if (fflush(stdout) && !rc) rc = 1;
    return rc;
}
