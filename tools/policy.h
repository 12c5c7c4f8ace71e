/*
 * policy.h — the retention policy of the [retention] section of a config
 * file (tools/ only: metrond and metron retention read the same file).
 *
 *   [retention]
 *   default = 90d                 raw points, every series without a rule
 *   rollups = 400d                hourly rollups (may outlive raw points)
 *   measurement.mem = 30d         a measurement
 *   tenant.<uuid> = 365d          a tenant (business_id); tenant.system: no business_id
 *   tenant.<uuid>.measurement.mem = 7d   both
 *   postgres.query_performance = 30d     a table of the PostgreSQL mirror (mt_pgretain.h:
 *                                        the tables and their defaults)
 *
 * Durations: 90d, 12h, 3600s ...; 0 or "forever" keeps for ever. The most
 * specific rule wins (mt_engine.h).
 */
#ifndef MT_POLICY_H
#define MT_POLICY_H

#include <stddef.h>
#include <stdio.h>

#include "mt_engine.h"
#include "mt_pgretain.h"

#define MT_POLICY_DEFAULT_KEEP   (90LL * 24 * MT_HOUR_NS)  /* the seed's 'standard' policy */
#define MT_POLICY_DEFAULT_ROLLUP (400LL * 24 * MT_HOUR_NS) /* a year and a month back */

typedef struct mt_policy {
    mt_retention r; /* r.rules points into rules */
    mt_retention_rule *rules;
    size_t nrules, cap;
    mt_pgretain pg; /* the postgres.TABLE keys: metrond's sink applies them */
} mt_policy;

/* The defaults: 90 days raw, 400 days of rollups, no rules; PostgreSQL as mt_pgretain_default. */
void mt_policy_init(mt_policy *p);

/* Free the rules. */
void mt_policy_free(mt_policy *p);

/* A deep copy of src into dst (uninitialised): 0, or -1 (out of memory, dst then empty). */
int mt_policy_copy(mt_policy *dst, const mt_policy *src);

/* Apply one key = value of [retention]. 0, or -1 with the reason in err. */
int mt_policy_set(mt_policy *p, const char *key, const char *value, char *err, size_t errcap);

/* Read the [retention] section of an INI file. 0, or -1 with the reason (and line) in err. */
int mt_policy_load(mt_policy *p, const char *path, char *err, size_t errcap);

/* Print the policy, one rule a line, for people. */
void mt_policy_print(const mt_policy *p, FILE *f);

#endif
