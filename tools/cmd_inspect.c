/*
 * cmd_inspect.c — `metron inspect`: facts about a data directory, from the
 * engine's counters and the hour files' indexes (nothing is decoded), read
 * beside a running metrond.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_json.h"
#include "mt_schema.h"
#include "mt_time.h"

const char *const mt_cli_inspect_help =
    "usage: metron inspect --data DIR [--format text|json]\n"
    "\n"
    "  Series, sealed hours, points (sealed and in the head), the oldest and newest sealed\n"
    "  points, bytes on disk, and bytes per point for each measurement.\n";

typedef struct per_series {
    uint64_t points, bytes;
} per_series;

typedef struct walk {
    per_series *s; /* by id */
    size_t n;
    uint64_t points, bytes;
    int64_t oldest, newest;
} walk;

static int on_chunk(void *ud, const mt_chunk_info *c)
{
    walk *w = ud;
    if (c->id < w->n) {
        w->s[c->id].points += c->count;
        w->s[c->id].bytes += c->bytes;
    }
    w->points += c->count;
    w->bytes += c->bytes;
    if (c->min_ts < w->oldest) w->oldest = c->min_ts;
    if (c->max_ts > w->newest) w->newest = c->max_ts;
    return 0;
}

typedef struct meas {
    char name[256];
    uint64_t series, points, bytes;
} meas;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const meas *)a)->name, ((const meas *)b)->name);
}

static void stdout_put(void *ud, const char *s, size_t n)
{
    fwrite(s, 1, n, ud);
}

static void json_str(const char *s)
{
    mt_json_str(s, strlen(s), stdout_put, stdout);
}

static void print_damage(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "damage            %s\n", line);
}

int cmd_inspect(int argc, char **argv)
{
    const char *data = NULL, *format = "text";
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"format", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'o')
            format = optarg;
        else if (c == 'h')
            return fputs(mt_cli_inspect_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_inspect_help);
    }
    bool json = !strcmp(format, "json");
    if (!data || optind != argc || (!json && strcmp(format, "text")))
        return mt_cli_usage("inspect needs --data DIR (and --format text or json)",
                            mt_cli_inspect_help);
    mt_engine *e = mt_cli_open_ro(data);
    if (!e) return 1;
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    walk w = {.n = st.series + 1, .oldest = INT64_MAX, .newest = INT64_MIN};
    w.s = calloc(w.n, sizeof *w.s);
    meas *m = calloc(st.series + 1, sizeof *m);
    if (!w.s || !m) return 1;
    size_t unreadable = 0;
    mt_engine_chunks(e, on_chunk, &w, &unreadable);
    /* per measurement: each series' key names it */
    size_t nm = 0;
    char key[MT_SERIES_MAX_KEY];
    mt_series_parts *parts = malloc(sizeof *parts);
    for (uint32_t id = 1; parts && id < w.n; id++) {
        size_t kl;
        if (mt_engine_series_key(e, id, key, sizeof key, &kl) || mt_series_parse(key, kl, parts))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)parts->measurement.len, parts->measurement.ptr);
        size_t i = 0;
        while (i < nm && strcmp(m[i].name, name)) i++;
        if (i == nm) snprintf(m[nm++].name, sizeof m->name, "%s", name);
        m[i].series++;
        m[i].points += w.s[id].points;
        m[i].bytes += w.s[id].bytes;
    }
    free(parts);
    qsort(m, nm, sizeof *m, by_name);
    char oldest[48] = "", newest[48] = "";
    if (w.points) {
        mt_time_format(w.oldest, oldest, sizeof oldest);
        mt_time_format(w.newest, newest, sizeof newest);
    }
    if (json) {
        printf("{\"data\":");
        json_str(data);
        printf(",\"format\":%llu,\"format_max\":%llu,\"schema_version\":%d",
               (unsigned long long)st.format, (unsigned long long)st.format_max,
               mt_schema_latest());
        printf(",\"series\":%llu,\"sealed_hours\":%llu,\"unreadable_hours\":%zu,"
               "\"head_records_skipped\":%llu,"
               "\"points_sealed\":%llu,\"points_head\":%llu,\"head_bytes\":%llu,",
               (unsigned long long)st.series, (unsigned long long)st.sealed_hours, unreadable,
               (unsigned long long)st.head_records_skipped, (unsigned long long)w.points,
               (unsigned long long)st.head_points, (unsigned long long)st.head_bytes);
        printf("\"oldest\":%s%s%s,\"newest\":%s%s%s,", w.points ? "\"" : "",
               w.points ? oldest : "null", w.points ? "\"" : "", w.points ? "\"" : "",
               w.points ? newest : "null", w.points ? "\"" : "");
        printf("\"block_bytes\":%llu,\"index_bytes\":%llu,\"index_live_bytes\":%llu,"
               "\"measurements\":[",
               (unsigned long long)st.block_bytes, (unsigned long long)st.index_bytes,
               (unsigned long long)st.index_live_bytes);
        for (size_t i = 0; i < nm; i++) {
            printf("%s{\"name\":", i ? "," : "");
            json_str(m[i].name);
            printf(",\"series\":%llu,\"points\":%llu,\"bytes\":%llu}",
                   (unsigned long long)m[i].series, (unsigned long long)m[i].points,
                   (unsigned long long)m[i].bytes);
        }
        printf("]}\n");
    } else {
        printf("data directory    %s\n", data);
        printf(
            "format            %llu (this build reads formats up to %llu; it installs PostgreSQL "
            "schema version %d)\n",
            (unsigned long long)st.format, (unsigned long long)st.format_max, mt_schema_latest());
        printf("series            %llu\n", (unsigned long long)st.series);
        printf("sealed hours      %llu%s\n", (unsigned long long)st.sealed_hours,
               unreadable ? " (some unreadable: listed under 'damage')" : "");
        printf("points            %llu sealed + %llu in the head (%.2f MB in memory)\n",
               (unsigned long long)w.points, (unsigned long long)st.head_points,
               (double)st.head_bytes / 1e6);
        if (w.points) printf("sealed range      %s .. %s\n", oldest, newest);
        printf("bytes on disk     %.2f MB hour files + %.2f MB index.mdb (%.2f MB live)\n",
               (double)st.block_bytes / 1e6, (double)st.index_bytes / 1e6,
               (double)st.index_live_bytes / 1e6);
        if (w.points)
            printf("bytes per point   %.3f in hour files\n",
                   (double)st.block_bytes / (double)w.points);
        printf("\n%-24s %8s %12s %12s\n", "measurement", "series", "points", "bytes/point");
        for (size_t i = 0; i < nm; i++)
            printf("%-24s %8llu %12llu %12.3f\n", m[i].name, (unsigned long long)m[i].series,
                   (unsigned long long)m[i].points,
                   m[i].points ? (double)m[i].bytes / (double)m[i].points : 0.0);
    }
    /* damage goes to stderr and into the exit code, in both formats: a script notices */
    size_t ndamage = mt_engine_damage(e, print_damage, NULL);
    free(w.s);
    free(m);
    mt_engine_close(e);
    return ndamage ? 1 : 0;
}
