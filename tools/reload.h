/*
 * reload.h — metrond's reload on SIGHUP (tools/ only), without a restart:
 * no listener is closed, no connection dropped, no write lost.
 *
 * What a reload reads again (docs/operations.md, "Reloading"):
 *   - the tokens file (tokens_file): added tokens work, removed ones get
 *     401 from the next request on, a connection kept alive stays open;
 *   - the rules file (rules_file): its rules and its [webhook]/[channel]
 *     sections; alert states are kept (by rule id), a changed set of
 *     endpoints gets a new notifier and the old one delivers what it
 *     holds on a thread of its own;
 *   - the config file's [retention] section: the policy of the next
 *     retention run, the age under which writes are refused (when
 *     retention runs), and the PostgreSQL keeps of the sink;
 *   - the config file's log_level (unless a flag or METROND_LOG_LEVEL set
 *     it: those still win, as at start).
 * Every other setting needs a restart; a reload that finds one changed in
 * the config file says so in the log (a warning naming the key) and
 * leaves it as it is.
 *
 * All or nothing: every file is read and checked off to the side first;
 * if any is unreadable or wrong, nothing is applied, the running
 * configuration stays whole, and the error names the file and the line.
 * Otherwise each part is swapped in at once:
 *   - tokens: on the loop thread, the only thread that checks them;
 *   - rules: under the alert loop's lock (a round in progress finishes
 *     with the old rules, the next takes the new ones);
 *   - the retention policy: a reference-counted snapshot; a retention run
 *     on the thread pool holds the one it started with
 *     (mt_reload_policy_acquire) and the old one is freed by the last
 *     release; the engine's age limit is an atomic word and the sink
 *     copies its keeps under its lock.
 * Counted in /metrics (mt_reload_metrics): metron_reloads_total{result},
 * metron_config_last_reload_successful and
 * metron_config_load_timestamp_seconds.
 */
#ifndef MT_RELOAD_H
#define MT_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "mt_alert.h"
#include "mt_engine.h"
#include "mt_ingest.h"
#include "mt_server.h"
#include "mt_sink.h"
#include "policy.h"

typedef struct mt_reload mt_reload;

typedef struct mt_reload_options {
    uv_loop_t *loop;             /* SIGHUP is watched here (uv_signal: on the loop thread) */
    const char *config;          /* the config file metrond started with; NULL: none */
    int argc;                    /* metrond's arguments: a --log-level flag pins the level */
    char **argv;                 /* (borrowed during mt_reload_start only) */
    bool (*known)(const char *); /* whether a [metrond] key is a setting (else refused) */
    const mt_policy *policy;     /* the policy in force at start (copied) */
    bool retention_on;           /* retention_interval > 0: the engine refuses what it drops */
    mt_engine *eng;              /* borrowed, outlives r */
    mt_server *ing;              /* borrowed; tokens are reloaded when tokens_file is set */
    const char *tokens_file;     /* "" or NULL: none (turning tokens on needs a restart) */
    mt_sink *sink;               /* NULL: no PostgreSQL */
    mt_alerting *alerting;       /* the alert loop of rules_file; NULL: none */
    const char *rules_file;      /* "" or NULL: none (rules from PostgreSQL are followed there) */
    mt_notifier **notifier;      /* the daemon's notifier: replaced (on the loop thread) when the
                                    endpoints of the rules file change */
} mt_reload_options;

/*
 * Watch SIGHUP on o->loop. Strings of o are copied; what o points at must
 * outlive r. MT_OK and *out, -ENOMEM, or a libuv error. Loop thread.
 */
int mt_reload_start(const mt_reload_options *o, mt_reload **out);

/*
 * Reload now, as SIGHUP does (tests, an admin endpoint): MT_OK when every
 * file was read and applied; MT_EPARSE or -errno when one was refused
 * (logged: file, line, reason; nothing applied). Loop thread.
 */
int mt_reload_now(mt_reload *r);

/*
 * The retention policy in force, held until mt_reload_policy_release: a
 * reload meanwhile neither changes nor frees it. r NULL: NULL. Any thread.
 */
const mt_policy *mt_reload_policy_acquire(mt_reload *r);
void mt_reload_policy_release(mt_reload *r, const mt_policy *p);

/*
 * Append the reload families (Prometheus text) to buf (capacity cap);
 * returns the bytes written (0 when they do not fit, or r is NULL). Loop
 * thread.
 */
size_t mt_reload_metrics(mt_reload *r, char *buf, size_t cap);

/*
 * Stop watching SIGHUP (no reload after this), then wait for the notifiers
 * reloads retired to deliver what they held. Call it in the ingest's stop
 * callback at the latest (a reload swaps the ingest's tokens, freed after
 * it) and before the alert loop and the engine go (retired notifiers
 * record their deliveries through them). NULL is a no-op. Loop thread.
 */
void mt_reload_stop(mt_reload *r);

/*
 * Free r, once the loop has run the stop (its handle closed) and no
 * policy is held (after uv_run returned). NULL is a no-op.
 */
void mt_reload_free(mt_reload *r);

#endif
