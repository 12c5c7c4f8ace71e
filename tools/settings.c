/*
 * settings.c — metrond's settings table, the config file, the environment
 * and the flags (contract in settings.h).
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mt_ingest.h"
#include "mt_log.h"
#include "settings.h"
#include "version.h"

typedef struct setting {
    const char *name; /* config key; flag is --name with '_' as '-'; env METROND_NAME */
    const char *def;
    const char *help;
    char *value; /* current value (malloc'd) */
} setting;

static setting settings[] = {
    {"data", "./data", "data directory (created if missing)", NULL},
    {"lp_tcp", "127.0.0.1:8089", "raw line protocol over TCP, host:port or off", NULL},
    {"lp_udp", "127.0.0.1:8089", "line protocol over UDP (a datagram is a batch), or off", NULL},
    {"http", "127.0.0.1:8086", "HTTP API (/write, /api/v2/write, /ping, /health, /metrics), or off",
     NULL},
    {"lp_precision", "ns", "timestamp unit of raw TCP/UDP lines: ns, us, ms, s", NULL},
    {"max_line", "65536", "bytes per line", NULL},
    {"max_body", "25000000", "bytes of an HTTP body, after gunzip", NULL},
    {"default_db", "metron",
     "the InfluxDB database (db=, bucket=) stored as written; any other is the tag db=NAME", NULL},
    {"max_conns_http", "1024",
     "open HTTP connections; at the limit the most stalled (idle or slow) one is closed", NULL},
    {"max_conns_tcp", "1024", "open raw TCP connections; at the limit new ones are refused", NULL},
    {"max_conns", "0",
     "TCP and HTTP connections together (0: no cap beyond max_conns_http and max_conns_tcp; "
     "deprecated, it was the only limit)",
     NULL},
    {"idle_timeout", "300", "seconds before a silent connection is closed (0: never)", NULL},
    {"header_timeout", "10",
     "seconds an HTTP request's headers may take from its first byte (408; 0: no limit)", NULL},
    {"body_timeout", "10",
     "seconds an HTTP body may take after its headers, plus 1 s per body_min_rate bytes (408; "
     "0: no limit)",
     NULL},
    {"body_min_rate", "4096", "bytes per second an HTTP body must keep up after body_timeout",
     NULL},
    {"mem_budget", "25165824",
     "bytes of batches in flight (over it reading pauses) and HTTP bodies held (over it new "
     "bodies get 503)",
     NULL},
    {"grace", "300", "seconds after an hour ends before it is sealed", NULL},
    {"footer_cache", "268435456",
     "bytes of parsed hour-file footers kept in memory; the least recently read are dropped "
     "past it and read again when needed",
     NULL},
    {"late_quiet", "60",
     "seconds without a late point for an already sealed hour before its late points are merged "
     "into its file (sooner when they are as many as the file holds)",
     NULL},
    {"seal_settle", "16",
     "head records without a point of an hour, once the newest timestamp passed its end and the "
     "grace, before it is sealed: a stream still writing it keeps it open (0: sealed at once)",
     NULL},
    {"seal_settle_points", "262144",
     "points of other hours, as seal_settle but counted in points; whichever comes first seals "
     "the hour, so streams replaying history hold about one open hour each (0: sealed at once)",
     NULL},
    {"max_future", "600",
     "seconds a point may be ahead of this server's clock; later ones are refused per line "
     "(0: no limit)",
     NULL},
    {"commit_interval_ms", "0", "extra milliseconds to gather a group commit", NULL},
    {"sync", "true", "fsync every commit (false: faster, loses the last commits on power loss)",
     NULL},
    {"max_series", "0", "series in all; points of new series beyond it are refused (0: no limit)",
     NULL},
    {"max_new_series_per_hour", "0",
     "new series per tenant (business_id) per hour; beyond it they are refused (0: no limit)",
     NULL},
    {"postgres", "",
     "PostgreSQL to mirror rollups into (libpq URL; passwords in ~/.pgpass or PGPASSWORD, not "
     "here); empty: no mirror",
     NULL},
    {"postgres_outbox_budget", "100000",
     "outbox entries (sealed hours, alert changes) past 90% of which the log warns; nothing is "
     "dropped",
     NULL},
    {"postgres_flush_interval", "10",
     "seconds between upserts of the minutes points touched into monitoring.metrics_minute and "
     "series_minute (0: no minute mirror)",
     NULL},
    {"postgres_minute_retention", "172800",
     "seconds of minute rows kept in PostgreSQL (whole day partitions are dropped past it)", NULL},
    {"postgres_minute_values", "2097152",
     "values the minute mirror holds at once (16 bytes each, twice while sorted); a flush with "
     "more computes them measurement by measurement, reading the points twice",
     NULL},
    {"postgres_raw_rows", "false",
     "also a row per point in monitoring.performance_metrics, for each complete minute of the "
     "raw window (needs postgres and the minute mirror)",
     NULL},
    {"postgres_raw_window", "3600",
     "seconds of raw rows kept (whole hour partitions are dropped past it)", NULL},
    {"postgres_raw_max_rate", "20000",
     "points per second the raw rows may carry: above it metrond refuses to start, and a minute "
     "above it gets no raw rows (the store keeps every point)",
     NULL},
    {"rules_file", "",
     "alert rules (INI, docs/alerts.md); empty: the rules of monitoring.alert_rules when "
     "postgres is set, else no alerting",
     NULL},
    {"alert_interval", "30", "seconds between alert evaluations", NULL},
    {"public_url", "",
     "this metrond's address for links in webhooks (default: http:// and the http setting)", NULL},
    {"postgres_retention_interval", "3600",
     "seconds between applying the [retention] section's postgres.TABLE keep to PostgreSQL "
     "(old partitions dropped, old resolved alerts deleted; the first right after connecting; "
     "0: never)",
     NULL},
    {"retention_interval", "3600",
     "seconds between applying the [retention] policy (default 90d raw, 400d rollups; 0: never)",
     NULL},
    {"compact_interval", "3600",
     "seconds between compactions: backfilled hours merged, index.mdb shrunk when mostly free "
     "(0: never)",
     NULL},
    {"log_level", "info", "debug, info, warn or error", NULL},
    {"tokens_file", "",
     "API tokens, one 'business_id sha256-hex' per line; with tokens every HTTP request but "
     "/ping, /health and /ready needs one, a tenant's token reads and writes only its tenant, "
     "and TCP/UDP are off",
     NULL},
    {"metrics_public", "false",
     "with tokens_file: serve /metrics without a token (else it needs a system '*' token)", NULL},
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

static setting *find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0) return &settings[i];
    return NULL;
}

static void set(setting *s, const char *v)
{
    free(s->value);
    s->value = strdup(v);
}

static const char *get(const char *name)
{
    return find(name)->value;
}

typedef struct ini_ctx {
    const char *path;
    mt_settings *s;
} ini_ctx;

static int ini_entry(void *ud, const char *section, const char *name, const char *value)
{
    const ini_ctx *ctx = ud;
    const char *path = ctx->path;
    if (strcmp(section, "retention") == 0) {
        char err[512];
        if (!mt_policy_set(&ctx->s->policy, name, value, err, sizeof err)) return 1;
        fprintf(stderr, "metrond: %s: [retention] %s\n", path, err);
        return 0;
    }
    const char *kpi_name;
    if (mt_events_kpi_section(section, &kpi_name)) {
        char err[512];
        if (!ctx->s->kpis && mt_events_conf_new(&ctx->s->kpis)) return 0;
        if (mt_events_conf_set(ctx->s->kpis, kpi_name, name, value, err, sizeof err) == MT_OK)
            return 1;
        fprintf(stderr, "metrond: %s: %s\n", path, err);
        return 0;
    }
    if (strcmp(section, "metrond") != 0) return 1;
    setting *s = find(name);
    if (!s) {
        fprintf(stderr, "metrond: %s: unknown setting '%s'\n", path, name);
        return 0;
    }
    set(s, value);
    return 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: metrond [--config FILE] [--SETTING VALUE ...]\n\nsettings (default):\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", settings[i].name);
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
        fprintf(f, "  %-22s %s (%s)\n", flag, settings[i].help, settings[i].def);
    }
    fprintf(f, "  %-22s print the hash of the token read from stdin, for tokens_file\n",
            "--hash-token");
    fprintf(f, "  %-22s print the version, commit, build type and library versions\n", "--version");
    fprintf(f, "  %-22s print the settings as a config file (those not set commented)\n",
            "--print-config");
    fprintf(f, "\nEach setting may also come from a config file (INI, section [metrond],\n"
               "key as above with '_') or the environment (METROND_DATA, ...).\n"
               "Precedence: flags, then environment, then file, then defaults.\n"
               "SIGHUP reloads the tokens file, the rules file, the file's [retention]\n"
               "and log_level; other settings need a restart (docs/operations.md).\n");
}

/* Print `comment` as '#' lines of at most 78 columns. */
static void print_comment(FILE *f, const char *comment)
{
    const char *p = comment;
    while (*p) {
        size_t n = strlen(p);
        if (n > 76) {
            n = 76;
            while (n > 0 && p[n] != ' ') n--;
            if (n == 0) n = strcspn(p, " ");
        }
        fprintf(f, "# %.*s\n", (int)n, p);
        p += n;
        while (*p == ' ') p++;
    }
}

/*
 * The settings as a config file, for /etc/metron/metrond.conf (the package
 * makes it with this, so no setting is missing): each with its help, and
 * commented out at its default unless the file, environment or a flag set it.
 */
static void print_config(FILE *f)
{
    fprintf(f, "# metrond's configuration (INI). Every setting is listed with its help and\n"
               "# default; a commented line is the default. The environment (METROND_DATA, ...)\n"
               "# and flags (--data, ...) override this file. `metrond --help` lists the same.\n"
               "\n[metrond]\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        fprintf(f, "\n");
        print_comment(f, settings[i].help);
        bool is_def = strcmp(settings[i].value, settings[i].def) == 0;
        fprintf(f, "%s%s = %s\n", is_def ? "# " : "", settings[i].name, settings[i].value);
    }
    fprintf(f,
            "\n# Retention (docs/operations.md): raw points, rollups, per measurement or tenant,\n"
            "# and the PostgreSQL mirror's tables. Durations: 90d, 12h, 3600s; 0 or forever.\n"
            "[retention]\n# default = 90d\n# rollups = 400d\n# measurement.mem = 30d\n"
            "# tenant.<business_id> = 365d\n# postgres.query_performance = 30d\n"
            "\n# KPIs mirrored into monitoring.business_metrics: one [kpi NAME] section each\n"
            "# (docs/postgres.md).\n");
}

static int parse_u64(const char *name, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(get(name), &end, 10);
    if (errno || *end || end == get(name)) {
        fprintf(stderr, "metrond: %s must be a non-negative integer, not '%s'\n", name, get(name));
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bool(const char *name, bool *out)
{
    const char *v = get(name);
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
        *out = true;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
        *out = false;
    else {
        fprintf(stderr, "metrond: %s must be true or false, not '%s'\n", name, v);
        return -1;
    }
    return 0;
}

const char *mt_settings_get(const char *name)
{
    setting *s = find(name);
    assert(s && s->value); /* a name the code spells, set in mt_settings_load */
    return s->value;
}

bool mt_settings_known(const char *name)
{
    return find(name) != NULL;
}

/* --config FILE first: the file comes before the environment and flags in precedence. */
enum { OPT_SETTING = 1000 };

static void long_options(struct option *o, char (*names)[64])
{
    size_t k = 0;
    for (; k < NSETTINGS; k++) {
        snprintf(names[k], 64, "%s", settings[k].name);
        for (char *p = names[k]; *p; p++)
            if (*p == '_') *p = '-';
        o[k] = (struct option){names[k], required_argument, 0, OPT_SETTING + (int)k};
    }
    o[k++] = (struct option){"config", required_argument, 0, 'c'};
    o[k++] = (struct option){"nosync", no_argument, 0, 'n'};
    o[k++] = (struct option){"help", no_argument, 0, 'h'};
    o[k++] = (struct option){"hash-token", no_argument, 0, 't'};
    o[k++] = (struct option){"print-config", no_argument, 0, 'p'};
    o[k++] = (struct option){"version", no_argument, 0, 'v'};
    o[k] = (struct option){0, 0, 0, 0};
}

/* Print the hash of the token read from stdin (a token on the command line would show in ps
   and shell history). */
static int hash_token(void)
{
    char tok[512];
    if (!fgets(tok, sizeof tok, stdin)) return 2;
    tok[strcspn(tok, "\r\n")] = '\0';
    char hex[65];
    mt_ingest_token_hash(tok, strlen(tok), hex);
    printf("%s\n", hex);
    return 0;
}

/* The environment: METROND_ and the key in capitals. */
static void read_environment(void)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char env[64] = "METROND_";
        size_t n = strlen(env);
        for (const char *p = settings[i].name; *p && n + 1 < sizeof env; p++)
            env[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        env[n] = '\0';
        const char *v = getenv(env);
        if (v) set(&settings[i], v);
    }
}

/* The typed values: 0, or -1 with the setting named on stderr. */
static int check(mt_settings *s)
{
    const char *prec = mt_settings_get("lp_precision");
    if (parse_u64("postgres_outbox_budget", &s->postgres_outbox_budget) ||
        parse_u64("postgres_flush_interval", &s->postgres_flush_interval) ||
        parse_u64("postgres_minute_retention", &s->postgres_minute_retention) ||
        parse_u64("postgres_minute_values", &s->postgres_minute_values) ||
        parse_bool("postgres_raw_rows", &s->postgres_raw_rows) ||
        parse_u64("postgres_raw_window", &s->postgres_raw_window) ||
        parse_u64("postgres_raw_max_rate", &s->postgres_raw_max_rate) ||
        parse_u64("alert_interval", &s->alert_interval) ||
        parse_u64("retention_interval", &s->retention_interval) ||
        parse_u64("postgres_retention_interval", &s->postgres_retention_interval) ||
        parse_u64("compact_interval", &s->compact_interval) ||
        parse_u64("max_line", &s->max_line) || parse_u64("max_body", &s->max_body) ||
        parse_u64("max_conns", &s->max_conns) || parse_u64("idle_timeout", &s->idle_timeout) ||
        parse_u64("mem_budget", &s->mem_budget) ||
        parse_u64("max_conns_http", &s->max_conns_http) ||
        parse_u64("max_conns_tcp", &s->max_conns_tcp) ||
        parse_u64("header_timeout", &s->header_timeout) ||
        parse_u64("body_timeout", &s->body_timeout) ||
        parse_u64("body_min_rate", &s->body_min_rate) || parse_u64("grace", &s->grace) ||
        parse_u64("late_quiet", &s->late_quiet) || parse_u64("seal_settle", &s->seal_settle) ||
        parse_u64("seal_settle_points", &s->seal_settle_points) ||
        parse_u64("footer_cache", &s->footer_cache) || parse_u64("max_future", &s->max_future) ||
        parse_u64("commit_interval_ms", &s->commit_interval_ms) ||
        parse_u64("max_series", &s->max_series) ||
        parse_u64("max_new_series_per_hour", &s->max_new_series_per_hour) ||
        parse_bool("sync", &s->sync) || parse_bool("metrics_public", &s->metrics_public))
        return -1;
    if (!mt_precision_parse(prec, strlen(prec), &s->prec) || s->prec > MT_PREC_S) {
        fprintf(stderr, "metrond: lp_precision must be ns, us, ms or s\n");
        return -1;
    }
    if (s->postgres_raw_rows && (!*mt_settings_get("postgres") || !s->postgres_flush_interval ||
                                 !s->postgres_raw_max_rate || !s->postgres_raw_window)) {
        fprintf(stderr, "metrond: postgres_raw_rows needs postgres, postgres_flush_interval, "
                        "postgres_raw_window and postgres_raw_max_rate above 0\n");
        return -1;
    }
    mt_log_level level;
    if (mt_log_level_parse(mt_settings_get("log_level"), &level)) {
        fprintf(stderr, "metrond: log_level must be debug, info, warn or error\n");
        return -1;
    }
    mt_log_set_level(level);
    return 0;
}

int mt_settings_load(int argc, char **argv, mt_settings *s)
{
    *s = (mt_settings){.argc = argc, .argv = argv};
    mt_policy_init(&s->policy);
    for (size_t i = 0; i < NSETTINGS; i++) set(&settings[i], settings[i].def);
    struct option longopts[NSETTINGS + 7];
    char names[NSETTINGS][64];
    long_options(longopts, names);
    bool print = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': s->config = optarg; break;
        case 'p': print = true; break;
        case 't': return hash_token();
        case 'v': mt_version_print(stdout, "metrond"); return 0;
        case 'h': usage(stdout); return 0;
        case '?': usage(stderr); return 2;
        default: break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "metrond: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (s->config) {
        ini_ctx ctx = {s->config, s};
        int line = ini_parse(s->config, ini_entry, &ctx);
        if (line > 0) fprintf(stderr, "metrond: %s: error at line %d\n", s->config, line);
        if (line < 0) fprintf(stderr, "metrond: cannot read %s\n", s->config);
        if (line) return 2;
    }
    read_environment();
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        if (c >= OPT_SETTING)
            set(&settings[c - OPT_SETTING], optarg);
        else if (c == 'n')
            set(find("sync"), "false");
    }
    if (check(s)) return 2;
    if (print) { /* checked above: the values printed are ones metrond accepts */
        print_config(stdout);
        return 0;
    }
    return MT_SETTINGS_RUN;
}

void mt_settings_free(mt_settings *s)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        free(settings[i].value);
        settings[i].value = NULL;
    }
    mt_policy_free(&s->policy);
    mt_events_conf_free(s->kpis);
    s->kpis = NULL;
}
