/* mt_pg.c — libpq wrapper (contract in mt_pg.h). */
#include "mt_pg.h"

#include <errno.h>
#include <poll.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mt_pg {
    PGconn *conn;
    char errmsg[512]; /* last error, NUL-terminated; empty after a success */
    char sqlstate[6]; /* the last error's SQLSTATE; empty after a success or with none */
};

/* Keep the server's SQLSTATE of a failed result (libpq's own errors carry none). */
static void set_state(mt_pg *pg, const PGresult *res)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(pg->sqlstate, sizeof pg->sqlstate, "%s", st && strlen(st) == 5 ? st : "");
}

static void set_err(mt_pg *pg, const char *msg)
{
    snprintf(pg->errmsg, sizeof pg->errmsg, "%s", msg ? msg : "");
    /* libpq messages end with a newline; errors are printed inline. */
    size_t n = strlen(pg->errmsg);
    while (n && (pg->errmsg[n - 1] == '\n' || pg->errmsg[n - 1] == ' ')) pg->errmsg[--n] = '\0';
}

/* Run sql; on success return the result (caller PQclears), else NULL with errmsg set. */
static PGresult *run(mt_pg *pg, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        pg->errmsg[0] = '\0';
        pg->sqlstate[0] = '\0';
        return res;
    }
    set_err(pg, res ? PQresultErrorMessage(res) : PQerrorMessage(pg->conn));
    set_state(pg, res);
    PQclear(res);
    return NULL;
}

int mt_pg_open(const char *conninfo, mt_pg **out, char *errbuf, size_t errcap)
{
    if (!conninfo) return MT_EINVAL;
    mt_pg *pg = calloc(1, sizeof *pg);
    if (!pg) return -ENOMEM;
    pg->conn = PQconnectdb(conninfo);
    if (!pg->conn) {
        free(pg);
        return -ENOMEM;
    }
    int rc = MT_OK;
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        set_err(pg, PQerrorMessage(pg->conn));
        rc = MT_EPG;
    } else {
        rc = mt_pg_exec(pg, "SET synchronous_commit = on", 0, NULL);
        /* NOTICEs ("already exists, skipping") are not errors: keep them off stderr */
        if (!rc) rc = mt_pg_exec(pg, "SET client_min_messages = warning", 0, NULL);
    }
    if (rc != MT_OK) {
        if (errbuf && errcap) snprintf(errbuf, errcap, "%s", pg->errmsg);
        mt_pg_close(pg);
        return rc;
    }
    *out = pg;
    return MT_OK;
}

void mt_pg_close(mt_pg *pg)
{
    if (!pg) return;
    PQfinish(pg->conn);
    free(pg);
}

int mt_pg_lib_version(void)
{
    return PQlibVersion();
}

int mt_pg_server_version(const mt_pg *pg)
{
    return PQserverVersion(pg->conn);
}

const char *mt_pg_errmsg(const mt_pg *pg)
{
    return pg->errmsg;
}

const char *mt_pg_sqlstate(const mt_pg *pg)
{
    return pg->sqlstate;
}

int mt_pg_exec(mt_pg *pg, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = run(pg, sql, nparams, params);
    if (!res) return MT_EPG;
    PQclear(res);
    return MT_OK;
}

int mt_pg_query_value(mt_pg *pg, const char *sql, int nparams, const char *const *params, char *out,
                      size_t cap)
{
    if (!out || !cap) return MT_EINVAL;
    PGresult *res = run(pg, sql, nparams, params);
    if (!res) return MT_EPG;
    int rc = MT_OK;
    if (PQntuples(res) < 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
        rc = MT_ENOTFOUND;
    } else {
        const char *v = PQgetvalue(res, 0, 0);
        size_t n = (size_t)PQgetlength(res, 0, 0);
        if (n >= cap) {
            rc = MT_ELIMIT;
        } else {
            memcpy(out, v, n);
            out[n] = '\0';
        }
    }
    PQclear(res);
    return rc;
}

int mt_pg_exec_script(mt_pg *pg, const char *sql)
{
    PGresult *res = PQexec(pg->conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? MT_OK : MT_EPG;
    if (rc)
        set_err(pg, res ? PQresultErrorMessage(res) : PQerrorMessage(pg->conn));
    else
        pg->errmsg[0] = '\0';
    set_state(pg, rc ? res : NULL);
    PQclear(res);
    return rc;
}

int mt_pg_copy_begin(mt_pg *pg, const char *sql)
{
    PGresult *res = PQexec(pg->conn, sql);
    if (res && PQresultStatus(res) == PGRES_COPY_IN) {
        PQclear(res);
        pg->errmsg[0] = '\0';
        pg->sqlstate[0] = '\0';
        return MT_OK;
    }
    set_err(pg, res ? PQresultErrorMessage(res) : PQerrorMessage(pg->conn));
    set_state(pg, res);
    PQclear(res);
    return MT_EPG;
}

int mt_pg_copy_put(mt_pg *pg, const char *buf, size_t len)
{
    while (len) { /* PQputCopyData takes an int */
        int n = len > (1u << 30) ? 1 << 30 : (int)len;
        if (PQputCopyData(pg->conn, buf, n) != 1) {
            set_err(pg, PQerrorMessage(pg->conn));
            pg->sqlstate[0] = '\0';
            return MT_EPG;
        }
        buf += n;
        len -= (size_t)n;
    }
    return MT_OK;
}

int mt_pg_copy_end(mt_pg *pg, bool abort)
{
    int rc = MT_OK;
    if (PQputCopyEnd(pg->conn, abort ? "metron: copy abandoned" : NULL) != 1) {
        set_err(pg, PQerrorMessage(pg->conn));
        pg->sqlstate[0] = '\0';
        rc = MT_EPG;
    }
    PGresult *res;
    bool first = true;
    while ((res = PQgetResult(pg->conn))) { /* the COPY's result, then NULL */
        if (first && !rc && PQresultStatus(res) != PGRES_COMMAND_OK) {
            set_err(pg, PQresultErrorMessage(res));
            set_state(pg, res);
            rc = MT_EPG;
        }
        first = false;
        PQclear(res);
        if (PQstatus(pg->conn) != CONNECTION_OK) break;
    }
    if (!rc && abort) rc = MT_EPG;
    return rc;
}

void mt_pg_abort(mt_pg *pg)
{
    PQclear(PQexec(pg->conn, "ROLLBACK"));
}

bool mt_pg_ok(const mt_pg *pg)
{
    return PQstatus(pg->conn) == CONNECTION_OK;
}

bool mt_pg_stale(const mt_pg *pg)
{
    const char *st = pg->sqlstate;
    return !mt_pg_ok(pg) || !strncmp(st, "25", 2) || !strncmp(st, "08", 2) ||
           !strcmp(st, "57P01") || !strcmp(st, "57P02") || !strcmp(st, "57P03");
}

int mt_pg_query_rows(mt_pg *pg, const char *sql, int nparams, const char *const *params,
                     int (*fn)(void *ud, int ncols, const char *const *vals), void *ud)
{
    PGresult *res = run(pg, sql, nparams, params);
    if (!res) return MT_EPG;
    int ncols = PQnfields(res), rc = MT_OK;
    const char **vals = calloc((size_t)(ncols ? ncols : 1), sizeof *vals);
    if (!vals) rc = -ENOMEM;
    for (int r = 0; !rc && r < PQntuples(res); r++) {
        for (int c = 0; c < ncols; c++)
            vals[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
        rc = fn(ud, ncols, vals);
    }
    free(vals);
    PQclear(res);
    return rc;
}

int mt_pg_wait_notify(mt_pg *pg, int timeout_ms, bool *notified)
{
    *notified = false;
    struct pollfd p = {.fd = PQsocket(pg->conn), .events = POLLIN};
    if (p.fd < 0) return MT_EPG;
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno != EINTR) return -errno;
    if (r > 0 && !PQconsumeInput(pg->conn)) {
        set_err(pg, PQerrorMessage(pg->conn));
        return MT_EPG;
    }
    PGnotify *n;
    while ((n = PQnotifies(pg->conn))) {
        *notified = true;
        PQfreemem(n);
    }
    return MT_OK;
}

void mt_pg_server_name(const mt_pg *pg, char *out, size_t cap)
{
    const char *host = PQhost(pg->conn), *port = PQport(pg->conn), *db = PQdb(pg->conn);
    snprintf(out, cap, "%s:%s/%s", host && *host ? host : "local", port ? port : "", db ? db : "");
}

int mt_pg_quote_ident(mt_pg *pg, const char *name, char *out, size_t cap)
{
    char *q = PQescapeIdentifier(pg->conn, name, strlen(name));
    if (!q) {
        set_err(pg, PQerrorMessage(pg->conn));
        return MT_EPG;
    }
    int rc = MT_OK;
    if (strlen(q) >= cap)
        rc = MT_ELIMIT;
    else
        memcpy(out, q, strlen(q) + 1);
    PQfreemem(q);
    return rc;
}
