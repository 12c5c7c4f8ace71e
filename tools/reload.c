/*
 * reload.c — SIGHUP: read the tokens, the rules and the config file again
 * (contract in reload.h).
 *
 * A reload runs on the loop thread in two steps. Build: every file is read
 * into new objects no other thread can see (a policy, a tokens table, a
 * rules array, a notifier when the endpoints changed); the first error
 * stops it, the new objects are freed and nothing changed. Swap: each
 * object replaces the running one under the lock its readers already take
 * (or on the only thread that reads it), so a request, an alert round or
 * a retention run in progress sees the old state whole or the new one
 * whole, never a mix. Nothing in the swap can fail.
 *
 * The policy is the one object read over a long stretch on another thread
 * (a retention run on the thread pool takes seconds): it is a snapshot with
 * a reference count, the current pointer holding one reference and each
 * run another; the last release frees it.
 */
#include "reload.h"

#include <errno.h>
#include <ini.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_err.h"
#include "mt_log.h"
#include "mt_time.h"
#include "rules.h"

/* A policy and its holders. pol first: a policy pointer handed out is its snapshot's. */
typedef struct snap {
    mt_policy pol;
    int refs; /* the current pointer (until replaced) and each acquire; under mt_reload.lock */
} snap;

/* One key of the config file that only a restart applies, as read at start. */
typedef struct kv {
    char *section, *key, *value;
} kv;

typedef struct kvs {
    kv *v;
    size_t n, cap;
} kvs;

struct mt_reload {
    mt_reload_options o;
    char *config, *tokens_file, *rules_file; /* copies of o's strings ("" none) */
    bool level_pinned;                       /* a flag or METROND_LOG_LEVEL set log_level */
    uv_signal_t sighup;
    bool stopped;
    pthread_mutex_t lock; /* cur and every snap's refs */
    snap *cur;
    kvs restart_only;  /* the config file's other keys at start: a change is reported */
    mt_webhook *hooks; /* the endpoints in force (from the rules file) */
    size_t nhooks;
    pthread_t *retired; /* threads stopping the notifiers reloads replaced */
    size_t nretired;
    uint64_t ok, failed;
    bool last_ok;
    double loaded_at; /* Unix seconds of the start or the last good reload */
};

/* ---- the config file -------------------------------------------------------------------- */

static void kvs_free(kvs *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].section);
        free(s->v[i].key);
        free(s->v[i].value);
    }
    free(s->v);
    *s = (kvs){0};
}

static const kv *kvs_find(const kvs *s, const char *section, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].section, section) && !strcmp(s->v[i].key, key)) return &s->v[i];
    return NULL;
}

/* Set section/key to value (the last one in the file wins, as at start). 0 or -ENOMEM. */
static int kvs_set(kvs *s, const char *section, const char *key, const char *value)
{
    kv *at = (kv *)kvs_find(s, section, key);
    if (at) {
        char *v = strdup(value);
        if (!v) return -ENOMEM;
        free(at->value);
        at->value = v;
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        kv *n = realloc(s->v, cap * sizeof *n);
        if (!n) return -ENOMEM;
        s->v = n;
        s->cap = cap;
    }
    kv *e = &s->v[s->n];
    *e = (kv){strdup(section), strdup(key), strdup(value)};
    if (!e->section || !e->key || !e->value) {
        free(e->section), free(e->key), free(e->value);
        return -ENOMEM;
    }
    s->n++;
    return 0;
}

/* What one reading of the config file found. */
typedef struct parsed {
    const mt_reload *r;
    mt_policy pol;  /* the [retention] section */
    bool has_level; /* [metrond] log_level was there */
    mt_log_level level;
    kvs others;    /* every other key, for the restart-only report */
    char why[400]; /* the first error, without file and line */
} parsed;

static int on_config(void *ud, const char *section, const char *key, const char *value)
{
    parsed *p = ud;
    char err[300];
    if (!strcmp(section, "retention")) {
        if (!mt_policy_set(&p->pol, key, value, err, sizeof err)) return 1;
        if (!p->why[0]) snprintf(p->why, sizeof p->why, "[retention] %s", err);
        return 0;
    }
    if (!strcmp(section, "metrond")) {
        if (p->r->o.known && !p->r->o.known(key)) {
            if (!p->why[0]) snprintf(p->why, sizeof p->why, "[metrond] unknown setting '%s'", key);
            return 0;
        }
        if (!strcmp(key, "log_level")) {
            if (mt_log_level_parse(value, &p->level)) {
                if (!p->why[0])
                    snprintf(p->why, sizeof p->why,
                             "[metrond] log_level must be debug, info, warn or error, not '%s'",
                             value);
                return 0;
            }
            p->has_level = true;
            return 1;
        }
    }
    if (kvs_set(&p->others, section, key, value)) {
        if (!p->why[0]) snprintf(p->why, sizeof p->why, "out of memory");
        return 0;
    }
    return 1;
}

/*
 * Read path into p (p->r set by the caller). MT_OK, or MT_EPARSE / -errno
 * with "FILE:LINE: reason" in err; p is then freed.
 */
static int parse_config(const char *path, parsed *p, char *err, size_t errcap)
{
    mt_policy_init(&p->pol);
    int line = ini_parse(path, on_config, p);
    if (line == 0) return MT_OK;
    int rc = MT_EPARSE;
    if (line == -1) {
        rc = -ENOENT;
        snprintf(err, errcap, "%s: cannot read it", path);
    } else if (line < 0) {
        rc = -ENOMEM;
        snprintf(err, errcap, "%s: out of memory", path);
    } else {
        snprintf(err, errcap, "%s:%d: %s", path, line, p->why[0] ? p->why : "not INI");
    }
    mt_policy_free(&p->pol);
    kvs_free(&p->others);
    return rc;
}

/* Log each key of now that differs from start (added, changed or gone): a restart applies it. */
static void report_restart_only(const mt_reload *r, const kvs *now)
{
    const kvs *was = &r->restart_only;
    for (size_t i = 0; i < now->n; i++) {
        const kv *w = kvs_find(was, now->v[i].section, now->v[i].key);
        if (!w || strcmp(w->value, now->v[i].value))
            mt_log(MT_LOG_WARN,
                   "msg=\"setting changed in the config file: a restart applies it, a reload does "
                   "not\" file=%s section=%s key=%s",
                   r->config, now->v[i].section, now->v[i].key);
    }
    for (size_t i = 0; i < was->n; i++)
        if (!kvs_find(now, was->v[i].section, was->v[i].key))
            mt_log(MT_LOG_WARN,
                   "msg=\"setting removed from the config file: a restart applies it, a reload "
                   "does not\" file=%s section=%s key=%s",
                   r->config, was->v[i].section, was->v[i].key);
}

/* ---- the policy snapshot ---------------------------------------------------------------- */

static void snap_unref_locked(mt_reload *r, snap *s)
{
    (void)r;
    if (s && --s->refs == 0) {
        mt_policy_free(&s->pol);
        free(s);
    }
}

const mt_policy *mt_reload_policy_acquire(mt_reload *r)
{
    if (!r) return NULL;
    pthread_mutex_lock(&r->lock);
    snap *s = r->cur;
    s->refs++;
    pthread_mutex_unlock(&r->lock);
    return &s->pol;
}

void mt_reload_policy_release(mt_reload *r, const mt_policy *p)
{
    if (!r || !p) return;
    pthread_mutex_lock(&r->lock);
    snap_unref_locked(r, (snap *)p); /* pol is the snapshot's first member */
    pthread_mutex_unlock(&r->lock);
}

/* ---- webhooks ----------------------------------------------------------------------------- */

/* The same endpoints, their rate limits' counts aside (a running notifier's are newer). */
static bool same_hooks(const mt_webhook *a, size_t na, const mt_webhook *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (memcmp(&a[i], &b[i], offsetof(mt_webhook, hour_count))) return false;
    return true;
}

static void on_delivery(void *ud, const mt_notify_record *rec)
{
    mt_alerting_delivered(ud, rec);
}

static void *retire_main(void *nf)
{
    mt_notifier_stop(nf); /* delivers what it holds, with its retries, then frees */
    return NULL;
}

/* ---- the reload --------------------------------------------------------------------------- */

/* The new state, built off to the side: nothing of it is seen before the swap. */
typedef struct cand {
    parsed conf;
    bool has_conf;
    snap *pol;
    mt_ingest_tokens *tokens;
    mt_alert_rule *rules;
    size_t nrules;
    mt_webhook *hooks;
    size_t nhooks;
    bool new_notifier; /* the endpoints changed: nf replaces the running notifier */
    mt_notifier *nf;   /* NULL with new_notifier: no endpoint any more */
} cand;

static void cand_free(cand *c)
{
    if (c->has_conf) {
        mt_policy_free(&c->conf.pol);
        kvs_free(&c->conf.others);
    }
    if (c->pol) {
        mt_policy_free(&c->pol->pol);
        free(c->pol);
    }
    mt_ingest_tokens_free(c->tokens);
    free(c->rules);
    free(c->hooks);
    mt_notifier_stop(c->nf); /* started, never handed a notification: returns at once */
}

/*
 * Build c from the files. MT_OK, or an error with the file, line and
 * reason in err and the file refused in *file.
 */
static int build(mt_reload *r, cand *c, const char **file, char *err, size_t errcap)
{
    int rc;
    *file = r->config;
    if (r->config[0]) {
        c->conf.r = r;
        if ((rc = parse_config(r->config, &c->conf, err, errcap))) return rc;
        c->has_conf = true;
        c->pol = calloc(1, sizeof *c->pol);
        if (!c->pol) return snprintf(err, errcap, "out of memory"), -ENOMEM;
        c->pol->pol = c->conf.pol; /* moved: the snapshot owns the rules now */
        mt_policy_init(&c->conf.pol);
        c->pol->refs = 1;
    }
    *file = r->tokens_file;
    if (r->tokens_file[0]) {
        char why[512] = "";
        rc = mt_ingest_tokens_load(r->tokens_file, &c->tokens, why, sizeof why);
        if (rc) {
            if (why[0])
                snprintf(err, errcap, "%s", why);
            else
                snprintf(err, errcap, "%s: cannot read it: %s", r->tokens_file, mt_strerror(rc));
            return rc;
        }
    }
    *file = r->rules_file;
    if (r->rules_file[0] && r->o.alerting) {
        if (mt_rules_load(r->rules_file, &c->rules, &c->nrules, &c->hooks, &c->nhooks, err, errcap))
            return MT_EPARSE;
        if (!same_hooks(c->hooks, c->nhooks, r->hooks, r->nhooks)) {
            c->new_notifier = true;
            /* what an endpoint of the same name already sent this hour still counts */
            mt_notifier *old = r->o.notifier ? *r->o.notifier : NULL;
            for (size_t i = 0; old && i < c->nhooks; i++)
                for (size_t k = 0; k < r->nhooks; k++)
                    if (!strcmp(c->hooks[i].name, r->hooks[k].name)) {
                        mt_webhook_stats st;
                        mt_notifier_stats(old, k, &st);
                        c->hooks[i].hour_count = st.hour_count;
                        c->hooks[i].hour_start_ns = st.hour_start_ns;
                    }
            if (c->nhooks && (rc = mt_notifier_start(c->hooks, c->nhooks, &c->nf))) {
                snprintf(err, errcap, "%s: cannot start the webhooks: %s", r->rules_file,
                         mt_strerror(rc));
                return rc;
            }
        }
    }
    return MT_OK;
}

/* Put c in force. Cannot fail; takes what c holds (c is left empty). */
static void swap_in(mt_reload *r, cand *c)
{
    if (c->tokens) {
        if (mt_server_set_tokens(r->o.ing, c->tokens) == MT_OK) c->tokens = NULL;
    }
    if (r->rules_file[0] && r->o.alerting) {
        if (mt_alerting_set_rules(r->o.alerting, c->rules, c->nrules)) /* copied */
            mt_log(MT_LOG_ERROR,
                   "msg=\"out of memory: the alert rules in force are kept\" "
                   "file=%s",
                   r->rules_file);
        if (c->new_notifier) {
            mt_notifier_on_delivery(c->nf, on_delivery, r->o.alerting);
            mt_notifier *old = mt_alerting_set_notifier(r->o.alerting, c->nf);
            if (r->o.notifier) *r->o.notifier = c->nf;
            c->nf = NULL;
            /* the alert loop no longer sends to old: it delivers what it holds, off the loop */
            pthread_t t;
            pthread_t *grown = old ? realloc(r->retired, (r->nretired + 1) * sizeof *grown) : NULL;
            if (grown) r->retired = grown;
            if (grown && pthread_create(&t, NULL, retire_main, old) == 0)
                r->retired[r->nretired++] = t;
            else if (old)
                mt_notifier_stop(old); /* no thread: here, as a restart would */
            free(r->hooks);
            r->hooks = c->hooks, r->nhooks = c->nhooks;
            c->hooks = NULL;
        }
    }
    if (c->pol) {
        const mt_policy *p = &c->pol->pol;
        if (r->o.retention_on && mt_engine_set_age_policy(r->o.eng, &p->r))
            mt_log(MT_LOG_ERROR, "msg=\"reload: out of memory: the old retention's age limit "
                                 "stays\"");
        mt_sink_set_retain(r->o.sink, &p->pg);
        pthread_mutex_lock(&r->lock);
        snap *old = r->cur;
        r->cur = c->pol;
        snap_unref_locked(r, old); /* freed now, or by the run that still holds it */
        pthread_mutex_unlock(&r->lock);
        c->pol = NULL;
    }
}

int mt_reload_now(mt_reload *r)
{
    if (r->stopped) return MT_ECLOSED;
    cand c = {0};
    char err[1024] = "";
    const char *file = "";
    int rc = build(r, &c, &file, err, sizeof err);
    if (rc) {
        r->failed++;
        r->last_ok = false;
        mt_log(MT_LOG_ERROR,
               "msg=\"reload refused: nothing changed, the running configuration is kept\" "
               "file=%s err=\"%s\"",
               file, err);
        cand_free(&c);
        return rc;
    }
    if (c.has_conf) report_restart_only(r, &c.conf.others);
    bool set_level = c.has_conf && c.conf.has_level && c.conf.level != mt_log_get_level();
    if (set_level && r->level_pinned) {
        set_level = false;
        mt_log(MT_LOG_WARN,
               "msg=\"log_level of the config file not applied: a flag or "
               "METROND_LOG_LEVEL sets it\" file=%s",
               r->config);
    }
    /* what the log line says, taken before the swap empties c */
    char what[256] = "";
    size_t n = 0;
    if (r->config[0])
        n += (size_t)snprintf(what + n, sizeof what - n, " config=%s retention_default_s=%lld",
                              r->config, (long long)(c.pol->pol.r.keep_ns / 1000000000));
    if (r->tokens_file[0] && n < sizeof what)
        n += (size_t)snprintf(what + n, sizeof what - n, " tokens=%zu",
                              mt_ingest_tokens_count(c.tokens));
    if (r->rules_file[0] && r->o.alerting && n < sizeof what)
        n += (size_t)snprintf(what + n, sizeof what - n, " rules=%zu webhooks=%zu%s", c.nrules,
                              c.nhooks, c.new_notifier ? " webhooks_changed=true" : "");
    if (set_level && n < sizeof what)
        snprintf(what + n, sizeof what - n, " log_level=%s",
                 c.conf.level == MT_LOG_DEBUG  ? "debug"
                 : c.conf.level == MT_LOG_INFO ? "info"
                 : c.conf.level == MT_LOG_WARN ? "warn"
                                               : "error");
    swap_in(r, &c);
    r->ok++;
    r->last_ok = true;
    r->loaded_at = (double)mt_now_ns() / 1e9;
    /* said before the level changes: a reload to warn or error still shows in the log */
    mt_log(MT_LOG_INFO, "msg=\"configuration reloaded\"%s", what);
    if (set_level) mt_log_set_level(c.conf.level);
    cand_free(&c);
    return MT_OK;
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    mt_reload *r = h->data;
    mt_log(MT_LOG_INFO, "msg=\"reloading\" signal=HUP");
    mt_reload_now(r);
}

/* ---- the lifecycle ------------------------------------------------------------------------ */

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* Everything r holds, and r (its handle closed or never started). */
static void release_all(mt_reload *r)
{
    for (size_t i = 0; i < r->nretired; i++) pthread_join(r->retired[i], NULL);
    if (r->cur) {
        pthread_mutex_lock(&r->lock);
        snap_unref_locked(r, r->cur);
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_destroy(&r->lock);
    kvs_free(&r->restart_only);
    free(r->hooks);
    free(r->retired);
    free(r->config);
    free(r->tokens_file);
    free(r->rules_file);
    free(r);
}

static void on_closed_free(uv_handle_t *h)
{
    release_all(h->data);
}

int mt_reload_start(const mt_reload_options *o, mt_reload **out)
{
    mt_reload *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    r->o = *o;
    r->config = dup_or_empty(o->config);
    r->tokens_file = dup_or_empty(o->tokens_file);
    r->rules_file = dup_or_empty(o->rules_file);
    r->cur = calloc(1, sizeof *r->cur);
    r->last_ok = true;
    r->loaded_at = (double)mt_now_ns() / 1e9;
    int rc = r->config && r->tokens_file && r->rules_file && r->cur ? MT_OK : -ENOMEM;
    if (!rc && mt_policy_copy(&r->cur->pol, o->policy)) rc = -ENOMEM;
    if (!rc) r->cur->refs = 1;
    /* flags and the environment override the file, at a reload as at start */
    r->level_pinned = getenv("METROND_LOG_LEVEL") != NULL;
    for (int i = 1; i < o->argc && strcmp(o->argv[i], "--"); i++)
        if (!strncmp(o->argv[i], "--log", 5)) r->level_pinned = true; /* getopt takes prefixes */
    /* the baselines: the config file's restart-only keys and the endpoints, as read at start */
    if (!rc && r->config[0]) {
        parsed p = {.r = r};
        char err[512];
        if (parse_config(r->config, &p, err, sizeof err) == MT_OK) {
            r->restart_only = p.others;
            mt_policy_free(&p.pol);
        }
    }
    if (!rc && r->rules_file[0] && o->alerting) {
        mt_alert_rule *rules;
        size_t n;
        char err[512];
        if (mt_rules_load(r->rules_file, &rules, &n, &r->hooks, &r->nhooks, err, sizeof err) == 0)
            free(rules);
    }
    if (!rc) rc = uv_signal_init(o->loop, &r->sighup);
    if (rc) {
        if (r->cur && !r->cur->refs) { /* the copy failed: nothing to free in it */
            free(r->cur);
            r->cur = NULL;
        }
        release_all(r);
        return rc;
    }
    r->sighup.data = r;
    if ((rc = uv_signal_start(&r->sighup, on_sighup, SIGHUP))) {
        uv_close((uv_handle_t *)&r->sighup, on_closed_free);
        return rc;
    }
    /* SIGHUP alone must not keep the loop running once everything else stopped */
    uv_unref((uv_handle_t *)&r->sighup);
    *out = r;
    return MT_OK;
}

void mt_reload_stop(mt_reload *r)
{
    if (!r || r->stopped) return;
    r->stopped = true;
    uv_close((uv_handle_t *)&r->sighup, NULL);
    for (size_t i = 0; i < r->nretired; i++) pthread_join(r->retired[i], NULL);
    r->nretired = 0;
}

void mt_reload_free(mt_reload *r)
{
    if (r) release_all(r);
}

size_t mt_reload_metrics(mt_reload *r, char *buf, size_t cap)
{
    if (!r) return 0;
    int n = snprintf(buf, cap,
                     "# HELP metron_reloads_total Reloads asked for (SIGHUP), by result (failed: "
                     "a file was refused and the running configuration kept whole).\n"
                     "# TYPE metron_reloads_total counter\n"
                     "metron_reloads_total{result=\"ok\"} %llu\n"
                     "metron_reloads_total{result=\"failed\"} %llu\n"
                     "# HELP metron_config_last_reload_successful 1 when the last reload (or the "
                     "start) applied every file, 0 when it was refused.\n"
                     "# TYPE metron_config_last_reload_successful gauge\n"
                     "metron_config_last_reload_successful %d\n"
                     "# HELP metron_config_load_timestamp_seconds When the configuration in "
                     "force was loaded (the start or the last good reload), Unix seconds.\n"
                     "# TYPE metron_config_load_timestamp_seconds gauge\n"
                     "metron_config_load_timestamp_seconds %.3f\n",
                     (unsigned long long)r->ok, (unsigned long long)r->failed, r->last_ok ? 1 : 0,
                     r->loaded_at);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
