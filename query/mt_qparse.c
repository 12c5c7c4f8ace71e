/* mt_qparse.c — a query's strings into an mt_query_spec (mt_qparse.h). */
#include "mt_qparse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_err.h"
#include "mt_time.h"

bool mt_output_format_parse(const char *name, mt_output_format *f)
{
    static const struct {
        const char *name;
        mt_output_format f;
    } names[] = {{"table", MT_OUT_TABLE},
                 {"tsv", MT_OUT_TABLE},
                 {"csv", MT_OUT_CSV},
                 {"json", MT_OUT_JSON},
                 {"series", MT_OUT_SERIES}};
    for (size_t i = 0; name && i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i].name)) {
            *f = names[i].f;
            return true;
        }
    return false;
}

const char *mt_output_format_name(mt_output_format f)
{
    switch (f) {
    case MT_OUT_CSV: return "csv";
    case MT_OUT_TABLE: return "table";
    case MT_OUT_JSON: return "json";
    case MT_OUT_SERIES: return "series";
    case MT_OUT_LP: return "lp";
    }
    return "csv";
}

/* How style spells argument k. */
enum { A_SELECT, A_FROM, A_TO, A_STEP, A_BY, A_MAX_SERIES };

static const char *arg_name(mt_qparse_style style, int k)
{
    static const char *http[] = {"select", "from", "to", "step", "by", "max_series"};
    static const char *cli[] = {"SELECTOR", "--from", "--to", "--step", "--by", "--max-series"};
    return style == MT_QPARSE_CLI ? cli[k] : http[k];
}

#define TIMES "RFC 3339, epoch seconds, now, -24h"

static int time_arg(const char *s, mt_qparse_style style, int k, int64_t now, int64_t *out,
                    char *err, size_t errcap)
{
    if (!s) {
        snprintf(err, errcap, "%s is required: " TIMES, arg_name(style, k));
        return MT_EINVAL;
    }
    if (!mt_time_parse(s, now, out)) {
        snprintf(err, errcap, "%s is not a time: " TIMES, arg_name(style, k));
        return MT_EINVAL;
    }
    return MT_OK;
}

/* by into out: "none", or its tags (a copy cut at the commas; empty names skipped). */
static int by_arg(const char *by, mt_qparse_style style, mt_query_parsed *out, char *err,
                  size_t errcap)
{
    if (!strcmp(by, "none")) {
        out->spec.by_none = true;
        return MT_OK;
    }
    if (strlen(by) > MT_QPARSE_MAX_BY_LEN) {
        snprintf(err, errcap, "%s is longer than %d bytes", arg_name(style, A_BY),
                 MT_QPARSE_MAX_BY_LEN);
        return MT_EINVAL;
    }
    memcpy(out->by, by, strlen(by) + 1);
    for (char *save, *t = strtok_r(out->by, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (out->spec.nby == MT_QUERY_MAX_BY) {
            snprintf(err, errcap, "too many %s tags (at most %d)", arg_name(style, A_BY),
                     MT_QUERY_MAX_BY);
            return MT_EINVAL;
        }
        out->spec.by[out->spec.nby++] = t;
    }
    return MT_OK;
}

int mt_query_args_parse(const mt_query_args *a, mt_qparse_style style, int64_t now,
                        mt_query_parsed *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    mt_query_spec *s = &out->spec;
    s->select = a->select;
    s->field = a->field;
    if (!a->select) {
        snprintf(err, errcap, "%s is required", arg_name(style, A_SELECT));
        return MT_EINVAL;
    }
    int rc = time_arg(a->from, style, A_FROM, now, &s->from, err, errcap);
    if (!rc) rc = time_arg(a->to, style, A_TO, now, &s->to, err, errcap);
    if (rc) return rc;
    if (a->step && !mt_duration_parse(a->step, &s->step)) {
        snprintf(err, errcap, "%s is not a duration (10s, 5m, 1h, 1d)", arg_name(style, A_STEP));
        return MT_EINVAL;
    }
    if (a->agg) {
        if (mt_agg_parse(a->agg, out->aggs, MT_QUERY_MAX_AGGS, &s->naggs, err, errcap))
            return MT_EINVAL;
        s->aggs = out->aggs;
    }
    if (a->by && (rc = by_arg(a->by, style, out, err, errcap))) return rc;
    if (a->max_series) {
        char *end;
        s->max_series = strtoull(a->max_series, &end, 10);
        if (*end || !*a->max_series || *a->max_series == '-') {
            snprintf(err, errcap, "%s is a number of series", arg_name(style, A_MAX_SERIES));
            return MT_EINVAL;
        }
    }
    return MT_OK;
}
