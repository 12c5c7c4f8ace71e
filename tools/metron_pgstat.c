/*
 * metron-pgstat — the agent that reads PostgreSQL's own statistics
 * (sql/mt_pgstat.h) from one or more servers every interval and pushes
 * them to metrond as line protocol over HTTP (a 204 means durable).
 * A push that fails is kept in a spool directory and sent again, oldest
 * first, before the next one, so a metrond restart loses nothing.
 *
 *   metron-pgstat --pg URL [--pg URL ...] --url METROND_URL [--url ...] [--interval D]
 *                 (--sink-pg URL | --no-sink) [--business-id UUID] [--top N]
 *                 [--spool DIR] [--host NAME] [--once] [--print]
 *
 * Each interval it also writes the top statements into
 * monitoring.query_performance and a row into monitoring.system_health of
 * the sink PostgreSQL, the one metrond mirrors to (--sink-pg, required
 * unless --no-sink or --print: the watched database is no default, its
 * role usually may not write there), installing the schema there if it is
 * missing.
 *
 * --config FILE reads the same settings from the [pgstat] section of an
 * INI file (inih); flags given too win. Its [kpi.NAME] sections are
 * business KPIs computed by SQL on the application's tables every
 * interval (sql/mt_pgkpi.h), pushed as business_kpi lines.
 *
 * Passwords come from ~/.pgpass or PGPASSWORD, never from the command
 * line (which ps and logs show): a URL with a password is refused.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <ini.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mt_events.h"
#include "mt_log.h"
#include "mt_pg.h"
#include "mt_pgkpi.h"
#include "mt_pgstat.h"
#include "mt_schema.h"
#include "mt_time.h"
#include "version.h"

#define MAX_SERVERS 16
#define MAX_URLS    4 /* metrond nodes written to: a replica pair, docs/cluster.md */

static const char usage_text[] =
    "usage: metron-pgstat --pg URL [--pg URL ...] --url METROND_URL [--url URL ...] [options]\n"
    "\n"
    "  --pg URL          a PostgreSQL server to watch (libpq URL, no password in it:\n"
    "                    ~/.pgpass or PGPASSWORD); repeat for several\n"
    "  --url URL         metrond (http://127.0.0.1:8086): its /write; repeat (at most 4)\n"
    "                    to write every push to each, as to the two replicas of a pair;\n"
    "                    a node that fails gets its pushes later from a spool of its own\n"
    "  --interval D      between readings (15s)\n"
    "  --business-id ID  tag every line with this tenant\n"
    "  --top N           statements kept apart per interval, the rest as 'other' (20)\n"
    "  --spool DIR       pushes that failed wait here (./pgstat-spool; the second --url's\n"
    "                    in DIR/url2, and so on)\n"
    "  --sink-pg URL     metrond's PostgreSQL (its monitoring schema): where the\n"
    "                    query_performance and system_health rows go (required unless\n"
    "                    --no-sink or --print)\n"
    "  --no-sink         write no rows into PostgreSQL\n"
    "  --host NAME       the database host's name as host agents tag it (Telegraf's host\n"
    "                    tag), for system_health's cpu/memory/disk (default: the host of\n"
    "                    each --pg; this machine's name for a local connection)\n"
    "  --config FILE     the same settings from an INI file, section [pgstat]: pg (repeat),\n"
    "                    url (repeat), interval, business_id, top, spool, sink_pg, host;\n"
    "                    flags win (any --url replaces the file's urls);\n"
    "                    [kpi.NAME] sections: query, period, industry, category, target, pg\n"
    "  --once            a baseline, one interval, one push, then exit\n"
    "  --print           write the line protocol to stdout instead of pushing it\n"
    "  --version         the version, commit, build type and library versions\n"
    "\n"
    "Pushes carry the token in METRON_TOKEN when it is set (a metrond with a tokens file).\n";

static volatile sig_atomic_t stopping;

/* Settings, from the config file and then the flags. */
typedef struct settings {
    char *pg[MAX_SERVERS];
    size_t npg;
    char *url[MAX_URLS];
    size_t nurl;
    char *business, *spool, *sink, *interval, *top, *host;
    mt_pgkpi *kpi; /* the [kpi.NAME] sections (NULL: none) */
    bool bad;
} settings;

static int on_ini(void *ud, const char *section, const char *k, const char *v)
{
    settings *s = ud;
    const char *name;
    if (mt_events_kpi_section(section, &name)) {
        char err[512];
        if ((!s->kpi && mt_pgkpi_new(&s->kpi)) ||
            mt_pgkpi_set(s->kpi, name, k, v, err, sizeof err)) {
            fprintf(stderr, "metron-pgstat: %s\n", s->kpi ? err : "out of memory");
            s->bad = true;
            return 0;
        }
        return 1;
    }
    if (strcmp(section, "pgstat")) return 1;
    char **slot = !strcmp(k, "business_id") ? &s->business
                  : !strcmp(k, "spool")     ? &s->spool
                  : !strcmp(k, "sink_pg")   ? &s->sink
                  : !strcmp(k, "interval")  ? &s->interval
                  : !strcmp(k, "top")       ? &s->top
                  : !strcmp(k, "host")      ? &s->host
                                            : NULL;
    if (!strcmp(k, "pg") && s->npg < MAX_SERVERS) {
        s->pg[s->npg++] = strdup(v);
        return 1;
    }
    if (!strcmp(k, "url") && s->nurl < MAX_URLS) {
        s->url[s->nurl++] = strdup(v);
        return 1;
    }
    if (!slot) {
        fprintf(stderr, "metron-pgstat: unknown setting '%s'\n", k);
        s->bad = true;
        return 0;
    }
    free(*slot);
    *slot = strdup(v);
    return 1;
}

static void settings_free(settings *s)
{
    for (size_t i = 0; i < s->npg; i++) free(s->pg[i]);
    for (size_t i = 0; i < s->nurl; i++) free(s->url[i]);
    free(s->business), free(s->spool), free(s->sink), free(s->interval), free(s->top),
        free(s->host);
    mt_pgkpi_free(s->kpi);
    *s = (settings){0};
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

/* POST body to base/write: true on 204. */
static bool push(const char *base, const char *body, size_t len)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/write?db=metron&precision=ns", base);
    CURL *c = curl_easy_init();
    if (!c) return false;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    /* a metrond with a tokens file takes writes with a token only (the CLI's variable) */
    struct curl_slist *hdr = NULL;
    const char *tok = getenv("METRON_TOKEN");
    char auth[600];
    if (tok && *tok && strlen(tok) < 512) {
        snprintf(auth, sizeof auth, "Authorization: Token %s", tok);
        if (!(hdr = curl_slist_append(NULL, auth))) {
            curl_easy_cleanup(c);
            return false;
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    }
    long status = 0;
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
    if (cc != CURLE_OK || status != 204)
        mt_log(MT_LOG_WARN, "msg=\"push to metrond failed; spooled\" url=%s err=\"%s\" status=%ld",
               base, cc != CURLE_OK ? curl_easy_strerror(cc) : "not 204", status);
    return cc == CURLE_OK && status == 204;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Send the spooled pushes, oldest first; stop at the first that fails. */
static void resend(const char *base, const char *spool)
{
    struct dirent **names;
    int n = scandir(spool, &names, NULL, by_name);
    for (int i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", spool, names[i]->d_name);
        bool sent = true;
        if (strstr(names[i]->d_name, ".lp")) {
            FILE *f = fopen(path, "r");
            char *body = NULL;
            size_t len = 0;
            if (f) {
                fseek(f, 0, SEEK_END);
                long sz = ftell(f);
                rewind(f);
                body = sz > 0 ? malloc((size_t)sz) : NULL;
                len = body ? fread(body, 1, (size_t)sz, f) : 0;
                fclose(f);
            }
            sent = !body || push(base, body, len);
            free(body);
            if (sent) unlink(path);
        }
        free(names[i]);
        if (!sent) {
            for (int k = i + 1; k < n; k++) free(names[k]);
            break;
        }
    }
    if (n >= 0) free(names);
}

static void spool_write(const char *spool, const char *body, size_t len)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%020lld.lp", spool, (long long)mt_now_ns());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    bool ok = f && fwrite(body, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f) fclose(f);
    if (ok && rename(tmp, path) == 0) return;
    unlink(tmp);
    mt_log(MT_LOG_ERROR, "msg=\"cannot spool a push: these readings are lost\" spool=%s", spool);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--version")) {
            mt_version_print(stdout, "metron-pgstat");
            return 0;
        }
    const char *pgs[MAX_SERVERS], *urls[MAX_URLS], *business = NULL, *spool = "./pgstat-spool",
                                                   *sink_url = NULL, *host = NULL;
    bool no_sink = false;
    size_t npg = 0, top = 20;
    int64_t interval = 15 * 1000000000LL;
    bool once = false, print = false;
    static const struct option opts[] = {
        {"pg", required_argument, 0, 'p'},       {"url", required_argument, 0, 'u'},
        {"interval", required_argument, 0, 'i'}, {"business-id", required_argument, 0, 'b'},
        {"top", required_argument, 0, 't'},      {"spool", required_argument, 0, 's'},
        {"once", no_argument, 0, 'o'},           {"print", no_argument, 0, 'P'},
        {"sink-pg", required_argument, 0, 'k'},  {"no-sink", no_argument, 0, 'n'},
        {"host", required_argument, 0, 'H'},     {"config", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    int c;
    settings conf = {0};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) /* the file first: flags win */
        if (c == 'c') {
            int line = ini_parse(optarg, on_ini, &conf);
            if (line || conf.bad) {
                if (line > 0)
                    fprintf(stderr,
                            "metron-pgstat: %s: error at line %d (a line is at most 200 bytes: "
                            "continue a long value on indented lines)\n",
                            optarg, line);
                else
                    fprintf(stderr, "metron-pgstat: cannot read %s\n", optarg);
                settings_free(&conf);
                return 2;
            }
        }
    for (size_t i = 0; i < conf.npg; i++) pgs[npg++] = conf.pg[i];
    size_t nurl = 0;
    bool url_flag = false; /* the first --url replaces the file's list */
    for (size_t i = 0; i < conf.nurl; i++) urls[nurl++] = conf.url[i];
    if (conf.business) business = conf.business;
    if (conf.spool) spool = conf.spool;
    if (conf.sink) sink_url = conf.sink;
    if (conf.top) top = strtoul(conf.top, NULL, 10);
    if (conf.host) host = conf.host;
    if (conf.interval && (!mt_duration_parse(conf.interval, &interval) || interval <= 0))
        return fprintf(stderr, "metron-pgstat: interval is a duration (15s)\n"), 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': break;
        case 'p':
            if (npg == MAX_SERVERS) return fprintf(stderr, "metron-pgstat: at most 16 --pg\n"), 2;
            pgs[npg++] = optarg;
            break;
        case 'u':
            if (!url_flag) nurl = 0, url_flag = true;
            if (nurl == MAX_URLS) return fprintf(stderr, "metron-pgstat: at most 4 --url\n"), 2;
            urls[nurl++] = optarg;
            break;
        case 'i':
            if (!mt_duration_parse(optarg, &interval) || interval <= 0)
                return fprintf(stderr, "metron-pgstat: --interval is a duration (15s)\n"), 2;
            break;
        case 'b': business = optarg; break;
        case 't': top = strtoul(optarg, NULL, 10); break;
        case 's': spool = optarg; break;
        case 'o': once = true; break;
        case 'k': sink_url = optarg; break;
        case 'n': no_sink = true; break;
        case 'H': host = optarg; break;
        case 'P': print = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (!npg || (!nurl && !print) || optind != argc) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (!sink_url && !no_sink && !print) {
        fprintf(stderr, "metron-pgstat: --sink-pg URL (metrond's PostgreSQL, where its monitoring "
                        "schema is) or --no-sink: the watched database is no sink\n");
        settings_free(&conf);
        return 2;
    }
    char kerr[512];
    if (conf.kpi && mt_pgkpi_check(conf.kpi, kerr, sizeof kerr)) {
        fprintf(stderr, "metron-pgstat: %s\n", kerr);
        settings_free(&conf);
        return 2;
    }
    for (size_t i = 0; i < npg; i++) /* a password on the command line shows in ps */
        if (strstr(pgs[i], "password=") ||
            (strstr(pgs[i], "://") && strchr(pgs[i], '@') &&
             memchr(strstr(pgs[i], "://") + 3, ':',
                    (size_t)(strchr(pgs[i], '@') - strstr(pgs[i], "://") - 3)))) {
            fprintf(stderr, "metron-pgstat: no password in --pg: use ~/.pgpass or PGPASSWORD\n");
            return 2;
        }
    /* a spool for each node: one that was down gets its own backlog, the others are not held */
    char spools[MAX_URLS][4200];
    for (size_t u = 0; u < nurl; u++) {
        if (u == 0)
            snprintf(spools[u], sizeof spools[u], "%s", spool);
        else
            snprintf(spools[u], sizeof spools[u], "%s/url%zu", spool, u + 1);
        if (!print && mkdir(spools[u], 0700) && errno != EEXIST) {
            fprintf(stderr, "metron-pgstat: cannot create the spool %s: %s\n", spools[u],
                    strerror(errno));
            return 1;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    mt_pg *sink = NULL;
    bool schema_ok = false;
    mt_pg *pg[MAX_SERVERS] = {0};
    mt_pgstat *st[MAX_SERVERS] = {0};
    int rounds = 0, rc = 0;
    while (!stopping) {
        char *buf = NULL;
        size_t len = 0, cap = 0;
        for (size_t i = 0; i < npg; i++) {
            char err[512], name[300];
            if (!pg[i] && mt_pg_open(pgs[i], &pg[i], err, sizeof err)) {
                mt_log(MT_LOG_WARN, "msg=\"cannot connect\" server=%zu err=\"%s\"", i, err);
                pg[i] = NULL;
                continue;
            }
            if (!st[i]) {
                mt_pg_server_name(pg[i], name, sizeof name);
                /* a local connection's host is this machine, as its host agent names it */
                char self[256] = "", *h = host ? (char *)host : self;
                size_t hl = strcspn(name, ":");
                if (!host &&
                    (!strncmp(name, "localhost:", 10) || !strncmp(name, "127.", 4) ||
                     !strncmp(name, "::1:", 4) || name[0] == '/' || !strncmp(name, "local:", 6)))
                    gethostname(self, sizeof self - 1);
                else if (!host)
                    snprintf(self, sizeof self, "%.*s", (int)hl, name);
                mt_pgstat_options o = {
                    .server = name, .business_id = business, .top = top, .host = h};
                if (mt_pgstat_new(&o, &st[i])) continue;
            }
            int64_t now = mt_now_ns();
            if (mt_pgstat_collect(st[i], pg[i], now, &buf, &len, &cap)) {
                mt_log(MT_LOG_WARN, "msg=\"reading failed; reconnecting\" err=\"%s\"",
                       mt_pg_errmsg(pg[i]));
                mt_pg_close(pg[i]);
                pg[i] = NULL;
                continue;
            }
            if (no_sink || print) continue;
            if (!sink && mt_pg_open(sink_url, &sink, err, sizeof err)) {
                mt_log(MT_LOG_WARN, "msg=\"cannot reach the sink PostgreSQL\" err=\"%s\"", err);
                sink = NULL;
                continue;
            }
            mt_schema_result sr;
            if (!schema_ok && mt_schema_install(sink, &sr)) {
                mt_log(MT_LOG_WARN, "msg=\"cannot install the schema\" err=\"%s\"",
                       mt_pg_errmsg(sink));
                continue;
            }
            schema_ok = true;
            if (mt_pgstat_write(st[i], sink, now)) {
                mt_log(MT_LOG_WARN,
                       "msg=\"cannot write query_performance, system_health\" err=\"%s\"",
                       mt_pg_errmsg(sink));
                if (mt_pg_stale(sink)) mt_pg_close(sink), sink = NULL; /* gone or read-only */
            }
        }
        size_t failed;
        if (conf.kpi &&
            mt_pgkpi_collect(conf.kpi, pg[0], business, mt_now_ns(), &buf, &len, &cap, &failed))
            mt_log(MT_LOG_ERROR, "msg=\"out of memory computing the KPIs\"");
        if (len && print) {
            fwrite(buf, 1, len, stdout);
            fflush(stdout);
        } else if (len) {
            for (size_t u = 0; u < nurl; u++) {
                resend(urls[u], spools[u]);
                if (!push(urls[u], buf, len)) spool_write(spools[u], buf, len);
            }
        }
        free(buf);
        if (once && ++rounds == 2) break;
        for (int64_t slept = 0; !stopping && slept < interval; slept += 100000000LL) {
            struct timespec ts = {0, 100000000L};
            nanosleep(&ts, NULL);
        }
    }
    for (size_t i = 0; i < npg; i++) {
        mt_pgstat_free(st[i]);
        mt_pg_close(pg[i]);
    }
    mt_pg_close(sink);
    settings_free(&conf);
    curl_global_cleanup();
    return rc;
}
