/*
 * settings.h — metrond's settings: defaults, then the config file (INI,
 * section [metrond], parsed by inih), then METROND_* environment
 * variables, then flags; later ones win. The file's [retention] section is
 * the retention policy (policy.h), its [kpi NAME] sections the KPIs
 * mirrored into PostgreSQL (mt_events.h).
 *
 * The values live in this file's table for the process's life (one metrond
 * per process); mt_settings_load fills them and the typed copy the daemon
 * starts from.
 */
#ifndef MT_SETTINGS_H
#define MT_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "mt_events.h"
#include "mt_lp.h"
#include "policy.h"

/* Every setting the daemon reads as a number or a flag, checked. Times are seconds unless
   named otherwise. */
typedef struct mt_settings {
    const char *config; /* --config FILE (argv's), or NULL */
    int argc;           /* the command line, for a reload to apply the same flags again */
    char **argv;
    mt_precision prec; /* lp_precision */
    uint64_t max_line, max_body, max_conns, max_conns_http, max_conns_tcp;
    uint64_t idle_timeout, header_timeout, body_timeout, body_min_rate, mem_budget;
    uint64_t grace, late_quiet, seal_settle, seal_settle_points, footer_cache, max_future,
        commit_interval_ms;
    uint64_t max_series, max_new_series_per_hour;
    uint64_t retention_interval, compact_interval, alert_interval;
    uint64_t postgres_outbox_budget, postgres_flush_interval, postgres_minute_retention,
        postgres_minute_values, postgres_raw_window, postgres_raw_max_rate,
        postgres_retention_interval;
    bool sync, metrics_public, postgres_raw_rows;
    mt_policy policy;     /* [retention] */
    mt_events_conf *kpis; /* [kpi NAME] sections; NULL: none */
} mt_settings;

/* mt_settings_load: go on and run the daemon (else its result is the exit status). */
#define MT_SETTINGS_RUN (-1)

/*
 * Read the command line (argv is kept, not copied), the config file and
 * the environment into *s. MT_SETTINGS_RUN when metrond should run; else
 * the process's exit status, what was asked printed on stdout (--help,
 * --version, --hash-token, --print-config: 0) or the reason on stderr,
 * naming the setting, file and line (2). *s is to be freed by
 * mt_settings_free in every case.
 */
int mt_settings_load(int argc, char **argv, mt_settings *s);

/* A setting's text value ("" when empty; never NULL), by its config key. */
const char *mt_settings_get(const char *name);

/* Whether name is a [metrond] key (a reload refuses unknown ones). */
bool mt_settings_known(const char *name);

/* Free the values, the policy and the KPI sections. */
void mt_settings_free(mt_settings *s);

#endif
