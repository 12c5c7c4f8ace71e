/*
 * mt_pg.h — Metron's thin libpq wrapper; the only file that calls libpq.
 *
 * Every statement goes through PQexecParams with values as parameters: no
 * caller ever builds SQL by concatenating values. Sessions force
 * synchronous_commit=on so a COMMIT that returned is durable on the server
 * (RELIABILITY.md promise 8).
 *
 * Errors: MT_EPG when the server or libpq reported a failure (the text is
 * in mt_pg_errmsg), -ENOMEM, MT_EINVAL for bad arguments, MT_ENOTFOUND when
 * a single-value query returned no row or a NULL.
 *
 * Threading: one mt_pg per thread at a time (libpq connections are not
 * shared between threads).
 */
#ifndef MT_PG_H
#define MT_PG_H

#include <stdbool.h>
#include <stddef.h>

#include "mt_err.h"

typedef struct mt_pg mt_pg;

/*
 * Connect to conninfo (a libpq URL "postgresql://..." or "key=value" string)
 * and set synchronous_commit=on for the session. On success returns MT_OK
 * and sets *out. On failure returns MT_EPG (or -ENOMEM) and, when errbuf is
 * not NULL, writes libpq's reason into errbuf (capacity errcap,
 * NUL-terminated). *out is untouched on failure.
 */
int mt_pg_open(const char *conninfo, mt_pg **out, char *errbuf, size_t errcap);

/* Close the connection and free pg. NULL is a no-op. */
void mt_pg_close(mt_pg *pg);

/* The server's version number as libpq reports it (150018 for 15.18). */
int mt_pg_server_version(const mt_pg *pg);

/* The version of the libpq this process runs with, in the same form (for --version). */
int mt_pg_lib_version(void);

/*
 * The text of the last error on pg (empty when the last call succeeded).
 * Owned by pg; valid until the next call on pg.
 */
const char *mt_pg_errmsg(const mt_pg *pg);

/*
 * The five-character SQLSTATE of the last error on pg ("23514" for a check
 * constraint), empty when the last call succeeded or when the error came
 * from libpq itself (a lost connection has none). Owned by pg; valid until
 * the next call on pg.
 */
const char *mt_pg_sqlstate(const mt_pg *pg);

/*
 * Run one statement with nparams text parameters ($1..$n; a NULL entry is
 * SQL NULL) and discard any rows. Returns MT_OK or MT_EPG.
 */
int mt_pg_exec(mt_pg *pg, const char *sql, int nparams, const char *const *params);

/*
 * Run a script of several statements that carries no values at all (the
 * schema files compiled into Metron): the simple-query protocol, which
 * PQexecParams cannot do. Never pass text built from input. MT_OK or
 * MT_EPG (the first failing statement's error; later ones not run).
 */
int mt_pg_exec_script(mt_pg *pg, const char *sql);

/*
 * Run a query and call fn(ud, ncols, vals) for each row; vals[i] is the
 * text of column i, NULL for SQL NULL, valid during the call. fn returns 0
 * to go on. MT_OK, MT_EPG, or fn's result.
 */
int mt_pg_query_rows(mt_pg *pg, const char *sql, int nparams, const char *const *params,
                     int (*fn)(void *ud, int ncols, const char *const *vals), void *ud);

/*
 * Wait up to timeout_ms for a notification on a connection that LISTENs;
 * *notified tells whether one (or more) came. MT_OK, MT_EPG (connection
 * lost) or -errno.
 */
int mt_pg_wait_notify(mt_pg *pg, int timeout_ms, bool *notified);

/* "host:port/dbname" of the connection, for tags and logs (no user, no password). */
void mt_pg_server_name(const mt_pg *pg, char *out, size_t cap);

/* Whether the connection is still up (false after the server went away: open a new one). */
bool mt_pg_ok(const mt_pg *pg);

/*
 * Whether pg should be closed and a new connection opened before the next try: the
 * connection is gone, or the last error says that this server, not the statement, is the
 * problem: class 25 (25006 read_only_sql_transaction: the session's server was demoted or
 * turned read-only in place), 57P01-57P03 (shut down by an administrator, crashed, cannot
 * take connections now) or class 08 (the connection failed). A new connection walks the
 * conninfo's host list again and, with target_session_attrs=read-write, lands on whichever
 * host is the primary now (docs/postgres.md, "High availability"); the same session would
 * be refused for ever.
 */
bool mt_pg_stale(const mt_pg *pg);

/* ROLLBACK the open transaction, keeping the text of the error that led to it. */
void mt_pg_abort(mt_pg *pg);

/*
 * COPY rows in: mt_pg_copy_begin runs sql (a "COPY ... FROM STDIN" with no
 * parameters: the values travel as data, never as SQL), mt_pg_copy_put
 * sends len bytes of rows in the statement's format (split anywhere),
 * mt_pg_copy_end finishes it (abort: with an error of its own, so the
 * server discards the rows) and reads the statement's result. After a
 * successful begin, end is always called, also when a put failed. Nothing
 * else runs on pg in between. MT_OK or MT_EPG (the server's or libpq's
 * reason in mt_pg_errmsg, SQLSTATE in mt_pg_sqlstate).
 */
int mt_pg_copy_begin(mt_pg *pg, const char *sql);
int mt_pg_copy_put(mt_pg *pg, const char *buf, size_t len);
int mt_pg_copy_end(mt_pg *pg, bool abort);

/*
 * Run a query and copy the first column of its first row, as text, into out
 * (capacity cap, always NUL-terminated; a longer value is an MT_ELIMIT
 * error). Returns MT_OK, MT_ENOTFOUND (no row, or NULL), MT_ELIMIT or MT_EPG.
 */
int mt_pg_query_value(mt_pg *pg, const char *sql, int nparams, const char *const *params, char *out,
                      size_t cap);

/*
 * Quote name as an SQL identifier for pg's connection (PQescapeIdentifier:
 * in double quotes, embedded ones doubled, the client encoding respected)
 * into out (capacity cap, NUL-terminated). For role names, which CREATE
 * ROLE and GRANT cannot take as parameters. MT_OK, MT_ELIMIT (out too
 * small) or MT_EPG (not valid in the encoding; the reason in mt_pg_errmsg).
 */
int mt_pg_quote_ident(mt_pg *pg, const char *name, char *out, size_t cap);

#endif
