/*
 * mt_influxql.h — the InfluxQL statements InfluxDB 1.x clients send to set
 * themselves up, answered on /query as InfluxDB 1.8 answers them (Telegraf's
 * CREATE DATABASE, the influx shell's SHOW DATABASES, python3-influxdb's
 * create_database, get_list_database and query, Grafana's schema browser).
 *
 *   CREATE DATABASE name [...]             accepted; changes nothing (a database exists
 *                                          once written to)
 *   SHOW DATABASES                         default_db and every db tag value
 *   SHOW MEASUREMENTS [ON db]
 *   SHOW TAG KEYS [ON db] [FROM m]
 *   SHOW TAG VALUES [ON db] [FROM m] WITH KEY = k | WITH KEY IN (k, ...)
 *   SHOW FIELD KEYS [ON db] [FROM m]
 *
 * Statements are separated by ';'. What a database holds (docs/line-protocol.md):
 * default_db is every series; another database is the series with the tag
 * db=<name> (mt_ingest_line_db), and its db tag is not listed among its tag
 * keys. Anything else is answered with InfluxDB's error shape, naming the
 * statement: 400 {"error":"error parsing query: ..."}.
 */
#ifndef MT_INFLUXQL_H
#define MT_INFLUXQL_H

#include "mt_engine.h"
#include "mt_query.h"

/*
 * Answer q (NUL-terminated InfluxQL) through fn(ud, bytes, len): the whole
 * JSON body, and its status in *status (200: {"results":[...]}, a
 * statement's own error inside its result as InfluxDB puts it, e.g.
 * "database name required"; 400: {"error":...} when a statement is not
 * understood). db is the request's db parameter (NULL: none); default_db
 * the server's; tenant (NULL: every tenant) narrows every listing to the
 * series of that business_id. Reads e's series index only. Returns MT_OK,
 * -ENOMEM, or fn's error.
 */
int mt_influxql_run(mt_engine *e, const char *q, const char *db, const char *default_db,
                    const char *tenant, mt_write_fn fn, void *ud, int *status);

#endif
