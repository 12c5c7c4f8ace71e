/* policy.c — the [retention] section (policy.h), parsed with inih. */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_time.h"
#include "policy.h"

void mt_policy_init(mt_policy *p)
{
    *p = (mt_policy){
        .r = {.keep_ns = MT_POLICY_DEFAULT_KEEP, .rollup_keep_ns = MT_POLICY_DEFAULT_ROLLUP}};
    mt_pgretain_default(&p->pg);
}

void mt_policy_free(mt_policy *p)
{
    for (size_t i = 0; i < p->nrules; i++) {
        free((char *)p->rules[i].measurement);
        free((char *)p->rules[i].business_id);
    }
    free(p->rules);
    mt_policy_init(p);
}

int mt_policy_copy(mt_policy *dst, const mt_policy *src)
{
    mt_policy_init(dst);
    dst->r.keep_ns = src->r.keep_ns;
    dst->r.rollup_keep_ns = src->r.rollup_keep_ns;
    dst->pg = src->pg;
    if (!src->nrules) return 0;
    dst->rules = calloc(src->nrules, sizeof *dst->rules);
    if (!dst->rules) return -1;
    dst->cap = src->nrules;
    for (size_t i = 0; i < src->nrules; i++) {
        const mt_retention_rule *r = &src->rules[i];
        mt_retention_rule *c = &dst->rules[i];
        c->keep_ns = r->keep_ns;
        c->measurement = r->measurement ? strdup(r->measurement) : NULL;
        c->business_id = r->business_id ? strdup(r->business_id) : NULL;
        dst->nrules++; /* counted first: a failure below frees it */
        if ((r->measurement && !c->measurement) || (r->business_id && !c->business_id)) {
            mt_policy_free(dst);
            return -1;
        }
    }
    dst->r.rules = dst->rules;
    dst->r.nrules = dst->nrules;
    return 0;
}

static int keep_parse(const char *v, int64_t *out)
{
    if (!strcmp(v, "0") || !strcmp(v, "forever")) {
        *out = 0;
        return 0;
    }
    return mt_duration_parse(v, out) && *out > 0 ? 0 : -1;
}

int mt_policy_set(mt_policy *p, const char *key, const char *value, char *err, size_t errcap)
{
    int64_t keep;
    if (keep_parse(value, &keep)) {
        snprintf(err, errcap, "%s: '%s' is not a duration (90d, 12h) or forever", key, value);
        return -1;
    }
    if (!strcmp(key, "default")) {
        p->r.keep_ns = keep;
        return 0;
    }
    if (!strcmp(key, "rollups")) {
        p->r.rollup_keep_ns = keep;
        return 0;
    }
    if (!strncmp(key, "postgres.", 9)) {
        int64_t keep_s = keep > 0 && keep < 1000000000 ? 1 : keep / 1000000000;
        if (mt_pgretain_set(&p->pg, key + 9, keep_s) == MT_OK) return 0;
        char names[256];
        size_t n = 0;
        for (int i = 0; mt_pgretain_name(i) && n < sizeof names; i++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                                  mt_pgretain_name(i));
        snprintf(err, errcap, "unknown PostgreSQL table in '%s' (postgres.TABLE: %s)", key, names);
        return -1;
    }
    const char *tenant = NULL, *measurement = NULL;
    size_t tlen = 0;
    if (!strncmp(key, "tenant.", 7)) {
        tenant = key + 7;
        const char *dot = strchr(tenant, '.');
        tlen = dot ? (size_t)(dot - tenant) : strlen(tenant);
        if (dot && strncmp(dot, ".measurement.", 13))
            tenant = NULL; /* not a rule: refused below */
        else if (dot)
            measurement = dot + 13;
    } else if (!strncmp(key, "measurement.", 12)) {
        measurement = key + 12;
    }
    if ((!tenant && !measurement) || (tenant && !tlen) || (measurement && !*measurement)) {
        snprintf(err, errcap,
                 "unknown retention key '%s' (default, rollups, measurement.NAME, tenant.UUID, "
                 "tenant.UUID.measurement.NAME, postgres.TABLE)",
                 key);
        return -1;
    }
    if (mt_grow(&p->rules, &p->cap, p->nrules + 1, sizeof *p->rules, 8))
        return snprintf(err, errcap, "out of memory"), -1;
    mt_retention_rule *r = &p->rules[p->nrules];
    *r = (mt_retention_rule){.keep_ns = keep};
    if (tenant) /* "system": the series without a business_id */
        r->business_id =
            tlen == 6 && !strncmp(tenant, "system", 6) ? strdup("") : strndup(tenant, tlen);
    if (measurement) r->measurement = strdup(measurement);
    p->nrules++;
    p->r.rules = p->rules;
    p->r.nrules = p->nrules;
    return 0;
}

typedef struct loading {
    mt_policy *p;
    char *err;
    size_t errcap;
} loading;

static int on_entry(void *ud, const char *section, const char *name, const char *value)
{
    loading *l = ud;
    if (strcmp(section, "retention")) return 1;
    return mt_policy_set(l->p, name, value, l->err, l->errcap) ? 0 : 1;
}

int mt_policy_load(mt_policy *p, const char *path, char *err, size_t errcap)
{
    loading l = {p, err, errcap};
    err[0] = '\0';
    int line = ini_parse(path, on_entry, &l);
    if (line < 0) {
        snprintf(err, errcap, "cannot read %s", path);
        return -1;
    }
    if (line > 0) {
        char why[400];
        snprintf(why, sizeof why, "%s", err[0] ? err : "not INI");
        snprintf(err, errcap, "%s:%d: %s", path, line, why);
        return -1;
    }
    return 0;
}

static void print_keep(FILE *f, int64_t keep)
{
    if (keep <= 0)
        fputs("forever", f);
    else if (keep % (24 * MT_HOUR_NS) == 0)
        fprintf(f, "%lldd", (long long)(keep / (24 * MT_HOUR_NS)));
    else if (keep % MT_HOUR_NS == 0)
        fprintf(f, "%lldh", (long long)(keep / MT_HOUR_NS));
    else
        fprintf(f, "%llds", (long long)(keep / 1000000000));
}

void mt_policy_print(const mt_policy *p, FILE *f)
{
    fputs("raw points     ", f);
    print_keep(f, p->r.keep_ns);
    fputs("  (default)\nhourly rollups ", f);
    print_keep(f, p->r.rollup_keep_ns);
    fputc('\n', f);
    for (size_t i = 0; i < p->nrules; i++) {
        const mt_retention_rule *r = &p->rules[i];
        fputs("  ", f);
        if (r->business_id)
            fprintf(f, "tenant %s", *r->business_id ? r->business_id : "system (no business_id)");
        if (r->business_id && r->measurement) fputs(", ", f);
        if (r->measurement) fprintf(f, "measurement %s", r->measurement);
        fputs(": ", f);
        print_keep(f, r->keep_ns);
        fputc('\n', f);
    }
    fputs("PostgreSQL (metrond's sink, every postgres_retention_interval)\n", f);
    for (int i = 0; mt_pgretain_name(i); i++) {
        fprintf(f, "  %-24s ", mt_pgretain_name(i));
        print_keep(f, p->pg.keep_s[i] * 1000000000);
        fputs(i == MT_PGR_ALERTS ? "  (resolved alerts)\n" : "\n", f);
    }
}
