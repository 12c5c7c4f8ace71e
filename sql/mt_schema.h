/*
 * mt_schema.h — the PostgreSQL `monitoring` schema that Metron mirrors into
 * (sql/schema/NNN_*.sql, compiled in): install, upgrade, drift check,
 * partition maintenance.
 *
 * Versions: file NNN is version NNN. monitoring.schema_migrations records
 * each applied version with the checksum of its text and, for the newest,
 * a description of the catalog it left (columns and types, indexes,
 * constraints, view and function bodies, policies; not partitions). Install
 * applies the missing versions in order, in one transaction, under an
 * advisory lock so two installers never race; an installed database is
 * left as it is, an older one upgraded in place. Check compares the
 * catalog with that description and reports each difference.
 *
 * Every call takes an open connection (mt_pg.h) and returns MT_OK, or
 * MT_EPG with PostgreSQL's text in mt_pg_errmsg (nothing changed: the
 * transaction rolled back), or MT_EFORMAT when the database holds a newer
 * version than this build knows.
 */
#ifndef MT_SCHEMA_H
#define MT_SCHEMA_H

#include <stddef.h>

#include "mt_pg.h"

/* The newest version this build carries. */
int mt_schema_latest(void);

typedef struct mt_schema_result {
    int from_version; /* before (0: none) */
    int to_version;   /* after */
    int partitions;   /* partitions created ahead */
} mt_schema_result;

/* Install or upgrade to mt_schema_latest(), then create partitions ahead. */
int mt_schema_install(mt_pg *pg, mt_schema_result *res);

/*
 * Compare the database with what install left. fn(ud, line) gets each
 * difference, "+ <object>" (there, not expected) or "- <object>" (expected,
 * missing or changed), and "version N, this build has M" when they differ.
 * *ndrift gets their number (0: no drift). MT_ENOTFOUND: no schema
 * installed.
 */
int mt_schema_check(mt_pg *pg, void (*fn)(void *ud, const char *line), void *ud, size_t *ndrift);

/* Monthly partitions from a month back to three ahead (*created: how many were new). */
int mt_schema_maintain(mt_pg *pg, int *created);

#endif
