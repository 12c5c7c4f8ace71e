/*
 * mt_server.h — metrond's listeners: raw TCP and UDP line protocol and the
 * InfluxDB-compatible HTTP API (writes, queries, rollups, alerts, export,
 * /federate, Prometheus' query API and remote write, /metrics; the routes
 * are listed in mt_http.c).
 *
 * What arrives is turned into engine batches by the ingest module
 * (mt_ingest.h, mt_rw.h, tokens in mt_auth.h); reads go to the query
 * module. The listeners run on one libuv loop and hand batches to the
 * engine's writer thread; completions come back to the loop through a
 * uv_async_t, so an HTTP write is answered 204 only once its points are
 * durable. /metrics composes the families of each part: ingest's
 * (mt_ingest_metrics), the server's own (connections, HTTP, back-pressure),
 * the engine's, and the daemon's (more_metrics).
 *
 * Back-pressure: the bytes of batches submitted but not yet committed are
 * counted; above the memory budget every listener stops reading (TCP then
 * pushes back on the senders) until the writer has caught up to 3/4 of it.
 * HTTP bodies being received or inflated count in the same budget, but a
 * body over it is refused (503 with Retry-After), not paused: bodies that
 * wait for their own bytes cannot drain the budget, so pausing them could
 * stall every connection at once (details in mt_http.c).
 *
 * Connections: HTTP and raw TCP have limits of their own (max_conns_http,
 * max_conns_tcp; max_conns, if set, caps both together), so a flood on one
 * listener never locks out the other. At the HTTP limit the connection that
 * has gone longest without finishing a request (idle keep-alive, or slow
 * headers or body) is closed to make room; at the TCP limit a new
 * connection is refused (line-protocol streams are long-lived by design).
 * An HTTP request must finish its headers within header_timeout_ms of its
 * first byte (of the accept, for a connection's first request) and its body
 * within body_timeout_ms plus one second per body_min_rate bytes received;
 * a connection that misses either is answered 408 and closed.
 *
 * Threads: everything runs on the loop's thread; only the engine's
 * completion callback runs on the writer thread, and it only queues.
 */
#ifndef MT_SERVER_H
#define MT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mt_engine.h"
#include "mt_ingest.h"

typedef struct mt_server_config {
    const char *lp_tcp;         /* "host:port" of the raw TCP listener; NULL or "off": none */
    const char *lp_udp;         /* "host:port" of the UDP listener; NULL or "off": none */
    const char *http;           /* "host:port" of the HTTP API; NULL or "off": none */
    mt_precision lp_precision;  /* timestamps of raw TCP/UDP lines (default ns) */
    mt_lp_limits limits;        /* per-line limits (zeros: the parser's defaults) */
    size_t max_body;            /* HTTP body bytes, after gunzip (default 25 MB) */
    const char *default_db;     /* the database (db=, bucket=) written without a db tag; every
                                   other one is the tag db=<name> (NULL: "metron") */
    size_t max_conns_http;      /* open HTTP connections (default 1024) */
    size_t max_conns_tcp;       /* open raw TCP connections (default 1024) */
    size_t max_conns;           /* TCP + HTTP together (0, the default: no cap of its own; before
                                   max_conns_http/_tcp this was the only limit, 1024) */
    uint64_t idle_timeout_ms;   /* close a silent connection after (default 300000) */
    uint64_t header_timeout_ms; /* HTTP headers within this of the request's first byte (10000;
                                   0: no deadline) */
    uint64_t body_timeout_ms;   /* HTTP body within this after its headers ... (10000; 0: none) */
    uint64_t body_min_rate;     /* ... plus 1 s per this many bytes received (4096) */
    size_t mem_budget;          /* bytes of batches in flight and HTTP bodies held (24 MiB) */
    const char *tokens_file;    /* API tokens (see mt_auth.h); NULL: no request needs one.
                                   With tokens, every HTTP request but /ping, /health and
                                   /ready needs one, checked on the headers before the body
                                   is read; a tenant's token writes and reads only its own
                                   business_id; raw TCP and UDP are turned off: they cannot
                                   carry one. */
    bool metrics_public;        /* with tokens: /metrics without one (else a system token) */
    /* More /metrics families from the daemon's other parts (the SQL sink): Prometheus text,
       malloc'd, owned by the caller after; NULL for none. Called on the loop thread. */
    char *(*more_metrics)(void *ud, size_t *len);
    void *more_metrics_ud;
    /* GET /api/v1/alerts[?all=1]: the daemon's alert listing (malloc'd, tab-separated),
       of tenant's series only (NULL: every tenant's); NULL: 404, alerting is off. Called on
       the loop thread. */
    char *(*alerts)(void *ud, bool all, const char *tenant, size_t *len);
    void *alerts_ud;
} mt_server_config;

/* The defaults above, every listener on: TCP and UDP 127.0.0.1:8089, HTTP 127.0.0.1:8086. */
mt_server_config mt_server_config_default(void);

/* Counters, all read on the loop thread. */
typedef struct mt_server_stats {
    mt_ingest_counters ingest;                    /* lines, points, remote-write samples */
    uint64_t bytes_received[3];                   /* by listener: tcp, udp, http */
    uint64_t connections_open, connections_total; /* TCP + HTTP */
    uint64_t connections_open_by[3];              /* by listener (udp stays 0) */
    uint64_t connections_refused;                 /* over a connection limit */
    uint64_t connections_evicted;                 /* HTTP, closed to make room at the limit */
    uint64_t
        connections_deferred; /* HTTP accepts that waited an iteration: room was not yet made */
    uint64_t connections_idle_closed; /* idle timeout */
    uint64_t http_header_timeouts;    /* 408: headers missed header_timeout_ms */
    uint64_t http_body_timeouts;      /* 408: body missed its deadline */
    uint64_t http_bodies_refused;     /* 503: no room in mem_budget for the body */
    uint64_t body_bytes;              /* now: HTTP body bytes held (and inflated) */
    uint64_t http_requests[6];        /* by class: 2xx..5xx, index status / 100 */
    uint64_t http_bodies_too_large;   /* 413s */
    uint64_t http_unauthorized;       /* 401s and 403s decided on the headers */
    uint64_t pauses;                  /* times reading paused for back-pressure */
    uint64_t inflight_bytes;          /* now */
    uint64_t write_errors;            /* batches the engine failed */
} mt_server_stats;

typedef struct mt_server mt_server;

/*
 * Start the listeners on loop. Returns MT_OK and *out, MT_EINVAL for a bad
 * address or an unreadable tokens file, or a negative libuv/errno code
 * (e.g. -EADDRINUSE) for a listener that could not start (none is left
 * running then).
 */
int mt_server_start(uv_loop_t *loop, mt_engine *eng, const mt_server_config *cfg, mt_server **out);

/*
 * Stop accepting, close every connection, and once every batch in flight
 * has come back, free the server and call done(ud) on the loop. Safe to
 * call once.
 */
void mt_server_stop(mt_server *srv, void (*done)(void *ud), void *ud);

/* The counters. */
const mt_server_stats *mt_server_stats_get(const mt_server *srv);

/*
 * Replace srv's tokens with t (mt_ingest_tokens_load), which srv then owns, and free the old ones.
 * Every request is authorized afresh from the next one on: a connection
 * kept alive stays open, and its next request with a removed token is
 * answered 401. MT_OK; MT_EINVAL, t not taken, when srv started without a
 * tokens file (turning tokens on or off needs a restart: it decides whether
 * TCP and UDP listen). Loop thread: every check runs there and copies the
 * tenant out, so the old table has no reader left when it is freed.
 */
int mt_server_set_tokens(mt_server *srv, mt_ingest_tokens *t);

#endif
