/* mt_rw.c — Prometheus remote write 1.0 into engine batches (contract in mt_rw.h). */
#include "mt_rw.h"

#include <errno.h>
#include <math.h>
#include <protobuf-c/protobuf-c.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote.pb-c.h"

#define STALE_NAN_BITS 0x7ff0000000000002ULL /* Prometheus' value.StaleNaN */
#define MAX_TS_MS      (INT64_MAX / 1000000)

/* ---- protobuf-c's allocations: an arena, capped ---------------------------------------- */

/*
 * protobuf-c allocates every message, array and byte string on its own;
 * from malloc that was a third of the decoding time. A bump arena freed
 * whole after the request makes those allocations nearly free, and its
 * chunks are what the cap counts.
 */
typedef struct chunk {
    struct chunk *next;
    size_t size;
    _Alignas(16) char data[];
} chunk;

typedef struct arena {
    chunk *head;
    size_t used;       /* of head's data */
    size_t total, cap; /* bytes of every chunk, and their limit */
    bool refused;      /* an allocation was over the cap */
    bool oom;          /* malloc failed */
} arena;

#define CHUNK_MIN (64u * 1024)

static void *arena_alloc(void *ud, size_t n)
{
    arena *a = ud;
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->size - a->used < n) {
        size_t size = n > CHUNK_MIN ? n : CHUNK_MIN;
        if (a->head && a->head->size * 2 > size && a->head->size < (16u << 20))
            size = a->head->size * 2; /* fewer chunks for big requests */
        if (size > a->cap - a->total) size = n;
        if (size > a->cap - a->total) {
            a->refused = true;
            return NULL;
        }
        chunk *c = malloc(sizeof *c + size);
        if (!c) {
            a->oom = true;
            return NULL;
        }
        c->next = a->head;
        c->size = size;
        a->head = c;
        a->used = 0;
        a->total += size;
    }
    void *p = a->head->data + a->used;
    a->used += n;
    return p;
}

static void arena_free(void *ud, void *ptr)
{
    (void)ud, (void)ptr; /* everything goes at once, in arena_release */
}

static void arena_release(arena *a)
{
    for (chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
}

/* ---- names ------------------------------------------------------------------------------ */

static bool valid_name(const ProtobufCBinaryData *s, bool colon)
{
    if (!s->len) return false;
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = s->data[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static bool is(const ProtobufCBinaryData *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->len == n && memcmp(s->data, lit, n) == 0;
}

/* The series as Prometheus writes it, name{a="b",...}, cut to cap. */
static void series_text(const Prometheus__TimeSeries *ts, char *out, size_t cap)
{
    size_t pos = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (pos < cap) {                                                                           \
            int n_ = snprintf(out + pos, cap - pos, __VA_ARGS__);                                  \
            pos += n_ > 0 ? (size_t)n_ : 0;                                                        \
        }                                                                                          \
    } while (0)
    for (size_t i = 0; i < ts->n_labels; i++)
        if (is(&ts->labels[i]->name, "__name__"))
            PUT("%.*s", (int)(ts->labels[i]->value.len > 200 ? 200 : ts->labels[i]->value.len),
                (const char *)ts->labels[i]->value.data);
    PUT("{");
    bool first = true;
    for (size_t i = 0; i < ts->n_labels && pos < cap; i++) {
        const Prometheus__Label *l = ts->labels[i];
        if (is(&l->name, "__name__")) continue;
        PUT("%s%.*s=\"%.*s\"", first ? "" : ",", (int)(l->name.len > 100 ? 100 : l->name.len),
            (const char *)l->name.data, (int)(l->value.len > 100 ? 100 : l->value.len),
            (const char *)l->value.data);
        first = false;
    }
    PUT("}");
#undef PUT
    if (pos >= cap && cap > 4) memcpy(out + cap - 4, "...", 4);
}

static int tag_cmp(const void *a, const void *b)
{
    const mt_lp_tag *x = a, *y = b;
    int r = memcmp(x->key.ptr, y->key.ptr, x->key.len < y->key.len ? x->key.len : y->key.len);
    return r ? r : (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

/* ---- decoding ---------------------------------------------------------------------------- */

int mt_rw_inflated_len(const void *body, size_t len, size_t *out)
{
    return snappy_uncompressed_length(body, len, out) == SNAPPY_OK ? MT_OK : MT_EPARSE;
}

/*
 * Why series ts is bad data (a static text), or NULL; its name and tags into
 * line (tags sorted, into tags: MT_RW_MAX_LABELS entries).
 */
static const char *series_line(const Prometheus__TimeSeries *ts, mt_lp_tag *tags, mt_lp_line *line)
{
    const ProtobufCBinaryData *name = NULL;
    size_t nt = 0;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const Prometheus__Label *l = ts->labels[i];
        if (is(&l->name, "__name__")) {
            if (name) return "label __name__ twice";
            name = &l->value;
            continue;
        }
        if (!valid_name(&l->name, false)) return "invalid label name";
        if (l->name.len >= 2 && l->name.data[0] == '_' && l->name.data[1] == '_')
            return "label names starting with __ are reserved";
        if (!l->value.len) continue; /* Prometheus: an empty label is an absent one */
        if (nt == MT_RW_MAX_LABELS) return "too many labels (limit 255)";
        tags[nt].key = (mt_lp_str){(const char *)l->name.data, l->name.len};
        tags[nt++].value = (mt_lp_str){(const char *)l->value.data, l->value.len};
    }
    if (!name || !name->len) return "no metric name (label __name__)";
    if (!valid_name(name, true)) return "invalid metric name";
    qsort(tags, nt, sizeof *tags, tag_cmp);
    for (size_t i = 1; i < nt; i++)
        if (tag_cmp(&tags[i - 1], &tags[i]) == 0) return "duplicate label name";
    line->measurement = (mt_lp_str){(const char *)name->data, name->len};
    line->tags = tags;
    line->ntags = nt;
    return NULL;
}

static void note_bad(mt_rw_result *res, const Prometheus__TimeSeries *ts, const char *why,
                     uint64_t samples)
{
    if (!res->bad_series++) {
        char s[900];
        series_text(ts, s, sizeof s);
        snprintf(res->first_bad, sizeof res->first_bad, "series %s: %s", s, why);
    }
    res->bad_samples += samples;
}

int mt_rw_decode(const void *body, size_t len, size_t max_inflated, mt_batch *b,
                 mt_series_cache *cache, const char *tenant, mt_rw_result *res, char *err,
                 size_t errcap)
{
    memset(res, 0, sizeof *res);
    size_t n;
    if (mt_rw_inflated_len(body, len, &n) != MT_OK) {
        snprintf(err, errcap,
                 "body is not a snappy block (remote write bodies are snappy-"
                 "compressed, block format)");
        return MT_EPARSE;
    }
    if (n > max_inflated) {
        snprintf(err, errcap,
                 "body inflates to %zu bytes, over the limit of %zu (the snappy header says so; "
                 "nothing was inflated)",
                 n, max_inflated);
        return MT_ELIMIT;
    }
    char *raw = malloc(n ? n : 1);
    if (!raw) return -ENOMEM;
    size_t got = n;
    if (snappy_uncompress(body, len, raw, &got) != SNAPPY_OK || got != n) {
        free(raw);
        snprintf(err, errcap, "body is not a valid snappy block (%zu bytes, %zu announced)", len,
                 n);
        return MT_EPARSE;
    }
    arena cap = {.cap = n * (size_t)MT_RW_DECODE_FACTOR + (1u << 20)};
    ProtobufCAllocator alloc = {arena_alloc, arena_free, &cap};
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(&alloc, n, (uint8_t *)raw);
    free(raw);
    if (!wr) {
        arena_release(&cap);
        if (cap.oom && !cap.refused) return -ENOMEM;
        if (cap.refused)
            snprintf(err, errcap,
                     "WriteRequest of %zu bytes needs more than %zu bytes to decode (%d times "
                     "its size plus 1 MiB): too many labels or samples for its size",
                     n, cap.cap, MT_RW_DECODE_FACTOR);
        else
            snprintf(err, errcap,
                     "body is not a protobuf prometheus.WriteRequest (%zu bytes inflated: "
                     "truncated or malformed)",
                     n);
        return cap.refused ? MT_ELIMIT : MT_EPARSE;
    }
    int rc = MT_OK;
    mt_lp_tag *tags = malloc(MT_RW_MAX_LABELS * sizeof *tags);
    if (!tags) rc = -ENOMEM;
    static const char value[] = "value";
    for (size_t s = 0; rc == MT_OK && s < wr->n_timeseries; s++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[s];
        if (!ts->n_samples) continue;
        mt_lp_field field = {.key = {value, sizeof value - 1}, .type = MT_LP_FLOAT};
        mt_lp_line line = {.fields = &field, .nfields = 1, .has_ts = true};
        const char *why = series_line(ts, tags, &line);
        if (why) {
            note_bad(res, ts, why, ts->n_samples);
            continue;
        }
        uint64_t added = 0, bad = 0;
        for (size_t k = 0; k < ts->n_samples; k++) {
            const Prometheus__Sample *sm = ts->samples[k];
            uint64_t bits;
            memcpy(&bits, &sm->value, sizeof bits);
            if (bits == STALE_NAN_BITS) {
                res->stale++;
                continue;
            }
            if (sm->timestamp > MAX_TS_MS || sm->timestamp < -MAX_TS_MS) {
                if (!bad++) note_bad(res, ts, "timestamp out of range", 0);
                res->bad_samples++;
                continue;
            }
            field.v.f = sm->value;
            line.ts = sm->timestamp * 1000000;
            int r = mt_ingest_line(b, &line, cache, tenant);
            if (r == MT_ECONFLICT) {
                if (!res->forbidden++)
                    series_text(ts, res->first_forbidden, sizeof res->first_forbidden);
                break; /* the whole series is another tenant's */
            }
            if (r == MT_ELIMIT) {
                note_bad(res, ts, "series key too long", ts->n_samples - added);
                break;
            }
            if (r) {
                rc = r;
                break;
            }
            added++;
        }
        res->samples += added;
        if (added) res->series++;
    }
    free(tags);
    arena_release(&cap); /* wr and all it holds */
    return rc;
}
