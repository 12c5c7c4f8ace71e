/*
 * mt_ingest.h — the ingest façade: line protocol in, engine batches out.
 *
 * The ingest module turns what writers send into engine batches and says
 * who may send it: the line-protocol parser (mt_lp.h), mt_ingest_line
 * below (one parsed line into points), Prometheus remote write
 * (mt_rw.h) and the API tokens that bind a writer to its tenant
 * (mt_auth.h; loaded through mt_ingest_tokens_* here). It opens no socket
 * and runs no loop: the server (server/mt_server.h) feeds it from its
 * listeners, and `metron import` from files. It counts nothing itself
 * either: whoever feeds it keeps an mt_ingest_counters and renders it with
 * mt_ingest_metrics.
 */
#ifndef MT_INGEST_H
#define MT_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_engine.h"
#include "mt_lp.h"

/*
 * A cache of series key -> id for one thread (a connection loop): points
 * of known series then travel to the writer by id, not with their
 * ~100-byte keys, which cuts a batch's memory by about four. Entries are
 * checked byte for byte; when the key bytes reach max_bytes the cache
 * starts over. Not thread-safe.
 */
typedef struct mt_series_cache mt_series_cache;

/* A cache backed by e (max_bytes 0: 8 MiB of keys). MT_OK or -ENOMEM. */
int mt_series_cache_new(mt_engine *e, size_t max_bytes, mt_series_cache **out);

/* Free a cache. NULL is a no-op. */
void mt_series_cache_free(mt_series_cache *c);

/*
 * Append one point per field of line to b: the series key is the line's
 * measurement, sorted tags and the field key; the value keeps its type.
 * With a cache, known series are added by id. tenant (NULL: none, "*": any)
 * is the business_id the writer is bound to: a line without a business_id
 * tag gets it, a line with another one is refused. Returns MT_OK,
 * MT_ECONFLICT (another tenant's line), MT_ELIMIT when the series key would
 * exceed MT_SERIES_MAX_KEY, or -ENOMEM; on an error nothing of the line is
 * added (but for -ENOMEM).
 */
int mt_ingest_line(mt_batch *b, const mt_lp_line *line, mt_series_cache *cache, const char *tenant);

/*
 * mt_ingest_line for a write to database db (NULL or "": the default one,
 * whose points keep their lines' tags): every point gets the tag db=<db>,
 * unless its line has a db tag of its own, which then wins (metron-pgstat's
 * db tag is a PostgreSQL database). So two databases never share a series.
 * Returns as mt_ingest_line.
 */
int mt_ingest_line_db(mt_batch *b, const mt_lp_line *line, mt_series_cache *cache,
                      const char *tenant, const char *db);

/*
 * The line a tokens file holds for token (len bytes): its SHA-256 as 64
 * hex digits into hex (65 bytes, NUL-terminated). The file pairs each hash
 * with a business_id, or "*" for a system token:
 *   7f3c2a10-0000-4000-8000-000000000001 <hex>
 */
void mt_ingest_token_hash(const char *token, size_t len, char hex[65]);

/*
 * A tokens file (mt_auth.h), loaded off to the side for a reload. MT_OK
 * and *out (the caller's, until handed to the server (mt_server_set_tokens) or freed);
 * MT_EPARSE with "FILE line N: reason" in err; -errno when it cannot be
 * read (err then ""). Any thread.
 */
typedef struct mt_auth mt_ingest_tokens;
int mt_ingest_tokens_load(const char *path, mt_ingest_tokens **out, char *err, size_t errcap);

/* Free tokens not handed over. NULL is a no-op. */
void mt_ingest_tokens_free(mt_ingest_tokens *t);

/* Number of tokens in t (0 for NULL). */
size_t mt_ingest_tokens_count(const mt_ingest_tokens *t);

/*
 * What the ingest path accepted and refused, kept by its caller (the
 * server, on its loop thread) and rendered by mt_ingest_metrics.
 */
typedef struct mt_ingest_counters {
    uint64_t lines_ok;                       /* lines accepted */
    uint64_t points_ok;                      /* points accepted by the engine */
    uint64_t points_rejected;                /* points refused by the engine (types) */
    uint64_t lines_rejected[MT_LP_E__COUNT]; /* lines refused by the parser, by reason */
    /* POST /api/v1/write samples (mt_rw.h): decoded into a batch, refused as bad data, stale
       markers left out, of series with another tenant's business_id (403) */
    uint64_t rw_samples, rw_bad_samples, rw_stale, rw_forbidden;
} mt_ingest_counters;

/*
 * The /metrics families of c in the Prometheus text format 0.0.4 (HELP and
 * TYPE before each): metron_lines_accepted_total,
 * metron_lines_rejected_total{reason}, metron_points_accepted_total,
 * metron_points_rejected_total{reason}, metron_remote_write_samples_total
 * {outcome} and metron_remote_write_series_forbidden_total. e is the
 * engine's: its refusals (out of time, over a series limit) are counted in
 * points_rejected too, and split out by reason here. Returns the text
 * (malloc'd, the caller's; *len bytes, NUL-terminated), or NULL when out of
 * memory.
 */
char *mt_ingest_metrics(const mt_ingest_counters *c, const mt_engine_stats *e, size_t *len);

#endif
