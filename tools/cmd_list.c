/* cmd_list.c — `metron series` and `metron tags` over a data directory. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_query.h"

const char *const mt_cli_series_help =
    "usage: metron series --data DIR [SELECTOR]\n"
    "\n"
    "  Print each series the selector matches, as line protocol (measurement,tags field),\n"
    "  one per line, then their count on stderr. Selectors as in metron query;\n"
    "  '{__name__=~\".+\"}' (or '*') is every series.\n"
    "  Without a selector: each measurement, tab, its number of series.\n";

const char *const mt_cli_tags_help =
    "usage: metron tags --data DIR TAG [SELECTOR]\n"
    "\n"
    "  Print each value of tag TAG and the number of series that carry it, tab separated;\n"
    "  with a SELECTOR, among the series it matches only.\n";

/* --data DIR and one positional argument; returns the argument or NULL after usage. */
static const char *data_and_arg(int argc, char **argv, const char **data, const char *help, int *rc)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    *rc = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            *data = optarg;
        else if (c == 'h')
            return fputs(help, stdout), NULL;
        else
            return *rc = mt_cli_usage("unknown option", help), NULL;
    }
    /* one argument, and for tags an optional selector after it; series: none lists measurements */
    if (help == mt_cli_series_help && *data && optind == argc) return "";
    if (!*data || optind >= argc || optind < argc - (help == mt_cli_tags_help ? 2 : 1)) {
        *rc = mt_cli_usage("needs --data DIR and its argument", help);
        return NULL;
    }
    return argv[optind];
}

typedef struct tag_count {
    char value[256];
    size_t series;
} tag_count;

static int by_value(const void *a, const void *b)
{
    return strcmp(((const tag_count *)a)->value, ((const tag_count *)b)->value);
}

/* Each measurement of e and its number of series, in byte order: every series key once. */
static int measurements(mt_engine *e)
{
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    size_t nv = 0, cap = 64;
    tag_count *v = malloc(cap * sizeof *v);
    mt_series_parts *parts = malloc(sizeof *parts);
    char key[MT_SERIES_MAX_KEY];
    int rc = v && parts ? MT_OK : -ENOMEM;
    for (uint64_t id = 1; rc == MT_OK && id <= st.series; id++) {
        size_t kl;
        if (mt_engine_series_key(e, (uint32_t)id, key, sizeof key, &kl) ||
            mt_series_parse(key, kl, parts))
            continue; /* removed by retention */
        char m[256];
        snprintf(m, sizeof m, "%.*s", (int)parts->measurement.len, parts->measurement.ptr);
        size_t k = 0; /* measurements are few: a linear search is enough */
        while (k < nv && strcmp(v[k].value, m)) k++;
        if (k == nv) {
            if (nv == cap) {
                tag_count *nvp = realloc(v, (cap *= 2) * sizeof *v);
                if (!nvp) {
                    rc = -ENOMEM;
                    break;
                }
                v = nvp;
            }
            snprintf(v[nv].value, sizeof v->value, "%s", m);
            v[nv++].series = 0;
        }
        v[k].series++;
    }
    if (rc == MT_OK) {
        qsort(v, nv, sizeof *v, by_value);
        for (size_t k = 0; k < nv; k++) printf("%s\t%zu\n", v[k].value, v[k].series);
        fflush(stdout);
        fprintf(stderr, "%zu measurements\n", nv);
    }
    free(parts);
    free(v);
    return rc;
}

int cmd_series(int argc, char **argv)
{
    const char *data = NULL;
    int rc;
    const char *sel = data_and_arg(argc, argv, &data, mt_cli_series_help, &rc);
    if (!sel) return rc;
    mt_engine *e = mt_cli_open_ro(data);
    if (!e) return 1;
    if (!*sel) {
        rc = measurements(e);
        if (rc) fprintf(stderr, "metron: %s\n", mt_strerror(rc));
        mt_engine_close(e);
        return rc ? 1 : 0;
    }
    mt_query_spec spec = {.select = sel, .from = INT64_MIN, .to = INT64_MAX};
    mt_query *q;
    char err[512] = "";
    rc = mt_query_open(e, &spec, &q, err, sizeof err);
    if (rc) {
        fprintf(stderr, "metron: %s\n", err[0] ? err : mt_strerror(rc));
        mt_engine_close(e);
        return rc == MT_EPARSE ? 2 : 1;
    }
    size_t n = mt_query_series(q);
    for (size_t i = 0; i < n; i++) printf("%s\n", mt_query_series_name(q, i));
    fflush(stdout); /* the count comes after the list, also when both go to one place */
    fprintf(stderr, "%zu series\n", n);
    mt_query_close(q);
    mt_engine_close(e);
    return 0;
}

static int print_value(void *ud, mt_name v, size_t series)
{
    (void)ud;
    printf("%.*s\t%zu\n", (int)v.len, v.ptr, series);
    return 0;
}

/* The values of tag among the series sel matches, with their counts, in byte order. */
static int values_among(mt_engine *e, const char *tag, const char *sel)
{
    mt_query_spec spec = {.select = sel, .from = INT64_MIN, .to = INT64_MAX};
    mt_query *q;
    char err[512] = "";
    int rc = mt_query_open(e, &spec, &q, err, sizeof err);
    if (rc) {
        fprintf(stderr, "metron: %s\n", err[0] ? err : mt_strerror(rc));
        return rc;
    }
    size_t n = mt_query_series(q), nv = 0, tl = strlen(tag);
    tag_count *v = calloc(n ? n : 1, sizeof *v);
    mt_series_parts *parts = malloc(sizeof *parts);
    char key[MT_SERIES_MAX_KEY];
    for (size_t i = 0; v && parts && i < n; i++) {
        uint32_t id = mt_query_series_id(q, i);
        size_t kl;
        if (mt_engine_series_key(e, id, key, sizeof key, &kl) || mt_series_parse(key, kl, parts))
            continue;
        for (size_t t = 0; t < parts->ntags; t++) {
            if (parts->tag_keys[t].len != tl || memcmp(parts->tag_keys[t].ptr, tag, tl)) continue;
            char val[256];
            snprintf(val, sizeof val, "%.*s", (int)parts->tag_values[t].len,
                     parts->tag_values[t].ptr);
            size_t k = 0;
            while (k < nv && strcmp(v[k].value, val)) k++;
            if (k == nv) snprintf(v[nv++].value, sizeof v->value, "%s", val);
            v[k].series++;
        }
    }
    if (v) qsort(v, nv, sizeof *v, by_value);
    for (size_t k = 0; v && k < nv; k++) printf("%s\t%zu\n", v[k].value, v[k].series);
    free(parts);
    free(v);
    mt_query_close(q);
    return MT_OK;
}

int cmd_tags(int argc, char **argv)
{
    const char *data = NULL;
    int rc;
    const char *tag = data_and_arg(argc, argv, &data, mt_cli_tags_help, &rc);
    if (!tag) return rc;
    mt_engine *e = mt_cli_open_ro(data);
    if (!e) return 1;
    const char *sel = optind + 1 < argc ? argv[optind + 1] : NULL;
    rc = sel ? values_among(e, tag, sel)
             : mt_engine_tag_values(e, (mt_name){tag, strlen(tag)}, print_value, NULL);
    mt_engine_close(e);
    if (rc) fprintf(stderr, "metron: %s\n", mt_strerror(rc));
    return rc ? 1 : 0;
}
