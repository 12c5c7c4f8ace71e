/*
 * metron_floor.c — `metron-floor --data DIR [--format text|md]`: where the
 * bytes of a data directory go, against the entropy floor of what the
 * chunk codec models (issue 23, "know the floor"). Read only: index.mdb is
 * opened read-only (LMDB takes a reader slot in its lock file, as for
 * `metron inspect`), the hour files its hours database names are read.
 *
 * Per (measurement, field), sealed points only: spent = its chunks' bytes
 * plus its share of the files' other bytes (header, keys frame, footer,
 * trailer: split evenly per chunk). Against it, in bits per point, the
 * order-0 entropy of the residuals the codec encodes, pooled over every
 * series and hour of the field:
 *   ts     zigzagged delta-of-delta of the timestamps within a chunk;
 *   delta  zigzagged deltas of the values divided by the chunk's gcd of them
 *          (floats decimal-scaled first at the smallest exponent at which
 *          the chunk's values are exact: the odd value exact at none is an
 *          exception, 64 bits, as is every value of a chunk where more than
 *          1/8 are: the codec's XOR mode); dod: deltas-of-deltas, plus the
 *          first delta each chunk then stores; pick: the residuals of the
 *          model the codec picks per chunk (the lower Rice cost; a pick by
 *          entropy within a chunk of 360 mostly distinct values is noise);
 *   fixed  first timestamp, first step and first value at their varint size.
 * floor = ts + the cheapest of delta, dod, pick + exceptions + fixed; rice
 * = mt_rice_cost of the ts and pick residuals (the k byte excluded; the
 * first deltas as pick has them), to set beside ts + pick; pick0 is pick's plain plug-in
 * entropy. Booleans: the entropy of the values; strings have no model (their floor is what
 * they spend).
 *
 * The entropies are estimated, not plain plug-in: the plug-in entropy of N samples cannot
 * exceed log2 N, and a wide residual (a byte counter's deltas) has most values seen once, so
 * it reads far low. Each stream's signed residuals are binned at width 2^b (bins aligned on
 * multiples of 2^b on both sides of 0), b the smallest with at least 32 samples per occupied
 * bin on average; the estimate is the bins' plug-in entropy plus b bits (a value uniform
 * within its bin: right where the density is smooth at that scale, high for a spike inside a
 * wide bin) plus Miller-Madow's (K - 1) / (2 N ln 2) bits for K occupied bins. Under 64
 * samples, b = 0.
 *
 * Then index.mdb: each database's records (key, value and the 4-byte
 * checksum mt_kv strips; a postings key once for all its ids), the live
 * pages and the file's size.
 */
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_buf.h"
#include "mt_codec.h"
#include "mt_engine_int.h"
#include "mt_format.h"
#include "mt_rice.h"
#include "mt_series.h"

/* A histogram of 64-bit residuals: open addressing, a count of 0 is an empty slot. */
typedef struct hist {
    uint64_t *key, *cnt;
    size_t cap, n;
} hist;

static size_t slot(const hist *h, uint64_t v)
{
    uint64_t x = (v ^ v >> 33) * 0xff51afd7ed558ccdULL;
    size_t s = (x ^ x >> 33) & (h->cap - 1);
    while (h->cnt[s] && h->key[s] != v) s = (s + 1) & (h->cap - 1);
    return s;
}

static void hist_add(hist *h, uint64_t v, uint64_t c)
{
    if (2 * (h->n + 1) > h->cap) {
        hist old = *h;
        h->cap = old.cap ? 2 * old.cap : 1024, h->n = 0;
        h->key = calloc(h->cap, sizeof *h->key), h->cnt = calloc(h->cap, sizeof *h->cnt);
        if (!h->key || !h->cnt) abort(); /* a measuring tool: out of memory ends it */
        for (size_t i = 0; i < old.cap; i++)
            if (old.cnt[i]) hist_add(h, old.key[i], old.cnt[i]);
        free(old.key), free(old.cnt);
    }
    size_t s = slot(h, v);
    h->n += !h->cnt[s];
    h->key[s] = v, h->cnt[s] += c;
}

/* A residual and its count, in offset binary (the signed value + 2^63): sorting and shifting
   these orders and bins the signed values, a bin of width 2^b starting at a multiple of 2^b
   on either side of 0. */
typedef struct vcount {
    uint64_t u, c;
} vcount;

static int by_u(const void *a, const void *b)
{
    uint64_t x = ((const vcount *)a)->u, y = ((const vcount *)b)->u;
    return (x > y) - (x < y);
}

/*
 * Bits of the order-0 code of the residuals counted (zigzagged), estimated
 * (see the header comment): the plug-in entropy of the values binned at the
 * smallest width 2^b that leaves at least 32 samples per occupied bin, plus
 * b bits a sample, plus Miller-Madow's (K - 1) / (2 ln 2) for K bins. The
 * plain plug-in (b = 0, uncorrected) into *exact.
 */
static double hist_bits(const hist *h, double *exact)
{
    *exact = 0;
    if (!h->n) return 0;
    vcount *a = malloc(h->n * sizeof *a);
    if (!a) abort(); /* a measuring tool: out of memory ends it */
    size_t k = 0;
    double total = 0;
    for (size_t i = 0; i < h->cap; i++)
        if (h->cnt[i]) {
            a[k].u = (uint64_t)mt_unzigzag(h->key[i]) + (1ULL << 63), a[k++].c = h->cnt[i];
            total += (double)h->cnt[i];
        }
    qsort(a, k, sizeof *a, by_u);
    double bits = 0;
    /* fewer than 64 samples cannot fill two bins: the plug-in then, whatever it is worth */
    for (unsigned b = 0; b < 64; b++) {
        double s = 0, bins = 0;
        for (size_t i = 0; i < k;) {
            uint64_t bin = a[i].u >> b, c = 0;
            for (; i < k && a[i].u >> b == bin; i++) c += a[i].c;
            s += (double)c * log2((double)c), bins++;
        }
        double plug = total * log2(total) - s;
        if (b == 0) *exact = plug;
        bits = plug + b * total + (bins - 1) / (2 * log(2));
        if (32 * bins <= total || total < 64) break;
    }
    free(a);
    return bits;
}

typedef struct group {
    char meas[256], field[256];
    mt_vtype type;
    uint64_t series, chunks, points, chunk_bytes, hdr_bytes;
    double file_bytes;         /* share of the files' bytes outside chunks */
    hist ts, delta, dod, pick; /* residuals: of every model, and of the codec's pick */
    uint64_t exc, fixed_bits, rice_bits;
    uint64_t q1_all, q1_pick; /* first deltas that delta-of-delta pays: everywhere, as picked */
    double str_bytes; /* spent on string chunks (no model: their floor is what they spend) */
} group;

typedef struct floor_run {
    group *g;
    size_t ng, gcap;
    uint32_t *gid_of; /* by series id: its group's index + 1 (0: not seen yet) */
    size_t nid;
    uint64_t *scratch; /* 3 arrays of n values */
    size_t scratch_n;
    const char *path;      /* the hour file being read */
    const mt_hf_index *ix; /* its footer */
    uint64_t points;       /* every sealed point */
} floor_run;

static void run_free(floor_run *r)
{
    for (size_t i = 0; i < r->ng; i++) {
        hist *h[] = {&r->g[i].ts, &r->g[i].delta, &r->g[i].dod, &r->g[i].pick};
        for (size_t k = 0; k < 4; k++) free(h[k]->key), free(h[k]->cnt);
    }
    free(r->g), free(r->gid_of), free(r->scratch);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* The integer stream of the codec (mt_codec.c) on v[0..n): its residuals into g's histograms. */
static void model_ints(group *g, const uint64_t *v, size_t n, uint64_t *dz, uint64_t *ddz)
{
    g->fixed_bits += 8 * mt_uvarint_size(mt_zigzag((int64_t)v[0]));
    if (n < 2) return;
    uint64_t gc = 0;
    for (size_t i = 1; i < n; i++) {
        int64_t d = (int64_t)(v[i] - v[i - 1]);
        gc = gcd64(gc, d < 0 ? 0 - (uint64_t)d : (uint64_t)d);
    }
    if (gc == 0 || gc > (uint64_t)INT64_MAX) gc = 1;
    bool dod_ok = n > 2;
    int64_t q1 = 0, prev = 0;
    for (size_t i = 1; i < n; i++) {
        int64_t q = (int64_t)(v[i] - v[i - 1]) / (int64_t)gc, dd;
        dz[i - 1] = mt_zigzag(q);
        if (i == 1)
            q1 = q;
        else if (__builtin_sub_overflow(q, prev, &dd))
            dod_ok = false;
        else
            ddz[i - 2] = mt_zigzag(dd);
        prev = q;
    }
    /* the codec's pick: the lower Rice cost, delta-of-delta paying for its first delta */
    uint64_t q1_bits = 8 * mt_uvarint_size(mt_zigzag(q1)), rd = mt_rice_cost(dz, n - 1);
    uint64_t rdd = dod_ok ? mt_rice_cost(ddz, n - 2) + q1_bits : UINT64_MAX;
    for (size_t i = 0; i + 1 < n; i++) hist_add(&g->delta, dz[i], 1);
    for (size_t i = 0; i + 2 < n + !dod_ok; i++) hist_add(&g->dod, dod_ok ? ddz[i] : dz[i], 1);
    g->q1_all += dod_ok ? q1_bits : 0;
    const uint64_t *z = rdd < rd ? ddz : dz;
    for (size_t i = 0; i + 1 < n - (rdd < rd); i++) hist_add(&g->pick, z[i], 1);
    g->q1_pick += rdd < rd ? q1_bits : 0;
    g->rice_bits += rdd < rd ? rdd : rd; /* as pick: with the first delta */
}

/* One decoded chunk into its group's counts. */
static void model_chunk(floor_run *r, group *g, const mt_points *p)
{
    size_t n = p->n;
    if (p->type == MT_VT_STRING) return; /* no model: read_hour counts what it spends */
    if (mt_grow(&r->scratch, &r->scratch_n, 3 * n, sizeof *r->scratch, 4096)) abort();
    uint64_t *v = r->scratch, *dz = v + n, *ddz = dz + n;
    /* timestamps: ts0 and the first step are fixed; a regular chunk costs the codec nothing more */
    g->fixed_bits += 8 * mt_uvarint_size(mt_zigzag(p->ts[0]));
    if (n > 1) g->fixed_bits += 8 * mt_uvarint_size(mt_zigzag(p->ts[1] - p->ts[0]));
    bool regular = true;
    for (size_t i = 2; i < n; i++) {
        int64_t dd = (p->ts[i] - p->ts[i - 1]) - (p->ts[i - 1] - p->ts[i - 2]);
        ddz[i - 2] = mt_zigzag(dd);
        regular = regular && dd == 0;
        hist_add(&g->ts, ddz[i - 2], 1);
    }
    if (!regular) g->rice_bits += mt_rice_cost(ddz, n - 2);
    switch (p->type) {
    case MT_VT_FLOAT: {
        int e = 0; /* the smallest exponent that fits all but the odd value (choose_exponent) */
        size_t misfits = 0;
        int64_t m = 0, prev = 0;
        for (size_t i = 0; i < n && e >= 0; i++) {
            int k = e;
            while (k <= MT_DECIMAL_MAX_E && !mt_decimal_at(p->vals[i].f, k, &m)) k++;
            if (k <= MT_DECIMAL_MAX_E)
                e = k;
            else if (++misfits > n / 8)
                e = -1;
        }
        size_t nexc = 0;
        for (size_t i = 0; e >= 0 && i < n; i++) {
            if (mt_decimal_at(p->vals[i].f, e, &m))
                prev = m;
            else
                nexc++;
            v[i] = (uint64_t)prev; /* an exception repeats the previous m, as the codec does */
        }
        if (e < 0 || nexc > n / 8) {
            g->exc += n;
            break;
        }
        g->exc += nexc;
        model_ints(g, v, n, dz, ddz);
        break;
    }
    case MT_VT_INT:
    case MT_VT_UINT:
        for (size_t i = 0; i < n; i++) v[i] = p->vals[i].u;
        model_ints(g, v, n, dz, ddz);
        break;
    case MT_VT_BOOL:
        for (size_t i = 0; i < n; i++) hist_add(&g->pick, p->vals[i].u, 1);
        g->rice_bits += n;
        break;
    case MT_VT_STRING: break;
    }
}

/* mt_hf_read_keys: the group of each series id met for the first time. */
static int on_key(void *ud, size_t i, const void *key, size_t klen)
{
    floor_run *r = ud;
    uint32_t id = r->ix->e[i].id;
    if (id >= r->nid) {
        size_t old = r->nid;
        if (mt_grow(&r->gid_of, &r->nid, (size_t)id + 1, sizeof *r->gid_of, 1024)) abort();
        memset(r->gid_of + old, 0, (r->nid - old) * sizeof *r->gid_of);
    }
    if (r->gid_of[id]) return MT_OK;
    static mt_series_parts parts;
    if (mt_series_parse(key, klen, &parts)) {
        fprintf(stderr, "metron-floor: %s: series id %u: its key does not parse\n", r->path, id);
        return 1; /* said: read_hour passes it on */
    }
    char meas[256], field[256];
    snprintf(meas, sizeof meas, "%.*s", (int)parts.measurement.len, parts.measurement.ptr);
    snprintf(field, sizeof field, "%.*s", (int)parts.field.len, parts.field.ptr);
    size_t k = 0;
    while (k < r->ng && (strcmp(r->g[k].meas, meas) || strcmp(r->g[k].field, field))) k++;
    if (k == r->ng) {
        if (mt_grow(&r->g, &r->gcap, r->ng + 1, sizeof *r->g, 16)) abort();
        memset(&r->g[k], 0, sizeof *r->g);
        memcpy(r->g[k].meas, meas, sizeof meas);
        memcpy(r->g[k].field, field, sizeof field);
        r->g[k].type = (mt_vtype)r->ix->e[i].type;
        r->ng++;
    }
    r->g[k].series++;
    r->gid_of[id] = (uint32_t)k + 1;
    return MT_OK;
}

/*
 * The bytes of a chunk's header, read from the chunk (which decoded): version
 * 1 has a fixed header of 20 bytes (MT_CHUNK_HEADER_SIZE then, written out
 * here as version 2 renames it); version 2 has magic (2), version, type and
 * flags, uvarint number of points, uvarint body length if zstd, checksum (4).
 */
static size_t chunk_header_size(const uint8_t *c, size_t len)
{
    if (len < 4 || c[2] == 1) return len < 20 ? len : 20;
    mt_rd rd = {c + 4, c + len};
    uint64_t x;
    if (mt_rd_uvarint(&rd, &x) || ((c[3] & MT_CHUNK_FLAG_ZSTD) && mt_rd_uvarint(&rd, &x)))
        return len; /* cannot be: the chunk decoded; counted as all header */
    size_t h = (size_t)(rd.p - c) + 4;
    return h < len ? h : len;
}

/* One hour file: every chunk decoded and counted. 0, or 1 with the error said. */
static int read_hour(floor_run *r, mt_decoder *dec, const char *data, int64_t hour, uint32_t gen)
{
    char path[4200];
    mt_hf_path(path, sizeof path, data, hour, gen);
    r->path = path;
    mt_hf_index ix = {0};
    mt_hfmap *map = NULL;
    int rc, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        rc = -errno;
    else if (!(rc = mt_hfmap_open(fd, &map)) && !(rc = mt_hf_read_index(fd, hour, &ix)))
        rc = mt_hf_read_keys(fd, (r->ix = &ix), on_key, r);
    uint64_t in_chunks = 0;
    for (size_t i = 0; !rc && i < ix.n; i++) in_chunks += ix.e[i].len;
    double share = ix.n ? (double)(map->size - in_chunks) / (double)ix.n : 0;
    for (size_t i = 0; !rc && i < ix.n; i++) {
        const mt_hf_entry *en = &ix.e[i]; /* read_index checked it lies among the chunks */
        group *g = &r->g[r->gid_of[en->id] - 1];
        mt_points p;
        if ((rc = mt_decoder_decode(dec, map->base + en->off, en->len, &p))) {
            fprintf(stderr, "metron-floor: %s: the chunk of series id %u: %s\n", path, en->id,
                    mt_strerror(rc));
            rc = 1;
            break;
        }
        g->chunks++, g->points += p.n, r->points += p.n;
        g->chunk_bytes += en->len, g->file_bytes += share;
        g->hdr_bytes += chunk_header_size(map->base + en->off, en->len);
        if (p.type == MT_VT_STRING) g->str_bytes += en->len + share;
        model_chunk(r, g, &p);
    }
    if (rc < 0) /* not said yet */
        fprintf(stderr, "metron-floor: %s: %s%s\n", path, mt_strerror(rc),
                rc == MT_EFORMAT ? " (a version 1 file has no series keys)" : "");
    mt_hf_index_free(&ix);
    if (map) mt_hfmap_release(map);
    if (fd >= 0) close(fd);
    return rc ? 1 : 0;
}

/* ---- output: aligned columns; as Markdown, the same with bars ------------ */

static bool md;  /* --format md */
static int wide; /* of the measurement and field columns */

/* What a row shows, in bytes and bits, summed over groups for the totals. */
typedef struct sums {
    double series, chunks, points, chunk_bytes, hdr_bytes, file_bytes;
    double ts, delta, dod, pick, pick0, exc, fixed, rice, floor; /* bits */
} sums;

static const struct {
    const char *name;
    int width, prec;
} cols[] = {{"series", 6, 0},      {"chunks", 7, 0},      {"points", 9, 0},
            {"spent B/pt", 10, 3}, {"hdr B/pt", 8, 3},    {"file B/pt", 9, 3},
            {"ts b/pt", 7, 2},     {"delta b/pt", 10, 2}, {"dod b/pt", 8, 2},
            {"pick b/pt", 9, 2},   {"pick0 b/pt", 10, 2}, {"exc b/pt", 8, 2},
            {"fixed b/pt", 10, 2}, {"rice b/pt", 9, 2},   {"floor B/pt", 10, 3},
            {"gap B/pt", 8, 3},    {"gap %", 5, 0}};
#define NCOL (sizeof cols / sizeof *cols)

static void sums_row(const char *meas, const char *field, const char *type, const sums *s)
{
    const char *sep = md ? " | " : "  ";
    const sums zero = {0};
    bool head = !s; /* the header: column names */
    if (head) s = &zero;
    double p = s->points > 0 ? s->points : 1, spent = s->chunk_bytes + s->file_bytes;
    double gap = spent - s->floor / 8;
    double v[NCOL] = {s->series,
                      s->chunks,
                      s->points,
                      spent / p,
                      s->hdr_bytes / p,
                      s->file_bytes / p,
                      s->ts / p,
                      s->delta / p,
                      s->dod / p,
                      s->pick / p,
                      s->pick0 / p,
                      s->exc / p,
                      s->fixed / p,
                      s->rice / p,
                      s->floor / 8 / p,
                      gap / p,
                      spent > 0 ? 100 * gap / spent : 0};
    printf("%s%-*s%s%-*s%s%-8s", md ? "| " : "", wide, meas, sep, wide, field, sep, type);
    for (size_t k = 0; k < NCOL; k++)
        if (head)
            printf("%s%*s", sep, cols[k].width, cols[k].name);
        else
            printf("%s%*.*f", sep, cols[k].width, cols[k].prec, v[k]);
    printf("%s\n", md ? " |" : "");
    for (size_t k = 0; md && head && k < NCOL + 3; k++)
        printf("%s%s", k < 3 ? "|---" : "|---:", k + 1 == NCOL + 3 ? "|\n" : "");
}

static void sums_add(sums *a, const sums *b)
{
    double *x = (double *)a;
    const double *y = (const double *)b;
    for (size_t i = 0; i < sizeof *a / sizeof(double); i++) x[i] += y[i];
}

/* A group's row. The floor takes the cheapest of the three value models, pooled. */
static sums group_sums(const group *g)
{
    sums s = {0};
    s.series = (double)g->series, s.chunks = (double)g->chunks, s.points = (double)g->points;
    s.chunk_bytes = (double)g->chunk_bytes, s.file_bytes = g->file_bytes;
    s.hdr_bytes = (double)g->hdr_bytes;
    double exact;
    s.ts = hist_bits(&g->ts, &exact), s.delta = hist_bits(&g->delta, &exact);
    s.dod = hist_bits(&g->dod, &exact) + (double)g->q1_all;
    s.pick = hist_bits(&g->pick, &exact) + (double)g->q1_pick;
    s.pick0 = exact + (double)g->q1_pick;
    s.exc = 64.0 * (double)g->exc, s.fixed = (double)g->fixed_bits, s.rice = (double)g->rice_bits;
    double v = s.pick;
    if (g->delta.n && s.delta < v) v = s.delta; /* booleans have neither */
    if (g->dod.n && s.dod < v) v = s.dod;
    s.floor = s.ts + v + s.exc + s.fixed + 8 * g->str_bytes;
    return s;
}

static int by_name(const void *a, const void *b)
{
    const group *x = a, *y = b;
    int c = strcmp(x->meas, y->meas);
    return c ? c : strcmp(x->field, y->field);
}

/* ---- index.mdb ------------------------------------------------------------- */

static const char *const db_names[MT_DB__COUNT] = {
    "meta", "series", "series_by_id", "postings", "hours", "head", "rollups", "outbox", "state"};

/* A row of the index.mdb table (records < 0: none; p 0: the header). */
static void idx_row(const char *name, long long records, uint64_t bytes, double p)
{
    const char *sep = md ? " | " : "  ";
    char rec[24] = "", b[24] = "bytes", bpp[24] = "B/pt";
    if (records >= 0) snprintf(rec, sizeof rec, "%lld", records);
    if (p > 0) snprintf(b, sizeof b, "%llu", (unsigned long long)bytes);
    if (p > 0) snprintf(bpp, sizeof bpp, "%.3f", (double)bytes / p);
    printf("%s%-24s%s%8s%s%10s%s%6s%s\n", md ? "| " : "", name, sep, p > 0 ? rec : "records", sep,
           b, sep, bpp, md ? " |" : "");
    if (md && p == 0) printf("|---|---:|---:|---:|\n");
}

typedef struct db_use {
    uint64_t records, bytes;
} db_use;

typedef struct hour_gen {
    int64_t hour;
    uint32_t gen;
} hour_gen;

/* Every record of db into use[db] (rollups: the group rows into use[MT_DB__COUNT]); the hours
   database's into *hours too. */
static int walk_db(mt_kv_txn *t, mt_kv_db db, db_use use[MT_DB__COUNT + 1], hour_gen **hours,
                   size_t *nh, size_t *hcap)
{
    mt_kv_cursor *c;
    int rc = mt_kv_cursor_open(t, db, &c);
    if (rc) return rc;
    const void *k, *v, *pk = NULL;
    size_t kl, vl, pkl = 0;
    for (rc = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl); !rc;
         rc = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        db_use *u = &use[db == MT_DB_ROLLUPS && kl && *(const char *)k == 'G' ? MT_DB__COUNT : db];
        bool dup = pk && kl == pkl && !memcmp(k, pk, kl); /* postings: one key, many ids */
        u->records++;
        u->bytes += (dup ? 0 : kl) + vl + 4; /* the checksum trailer mt_kv strips */
        pk = k, pkl = kl;
        uint64_t bytes, sealed;
        if (db != MT_DB_HOURS) continue;
        if (mt_grow(hours, hcap, *nh + 1, sizeof **hours, 64)) abort();
        if (kl != 4 || mt_engine_hour_parse(v, vl, &(*hours)[*nh].gen, &bytes, &sealed)) {
            rc = MT_ECORRUPT;
            break;
        }
        (*hours)[(*nh)++].hour = (int64_t)mt_load_be32(k) - 0x80000000LL;
    }
    mt_kv_cursor_close(c);
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}

static const char usage[] =
    "usage: metron-floor --data DIR [--format text|md]\n"
    "  bytes spent per measurement and field against the entropy floor of the codec's\n"
    "  residuals, then index.mdb's bytes per database (read only)\n";

int main(int argc, char **argv)
{
    const char *data = NULL, *format = "text";
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'}, {"format", required_argument, 0, 'f'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 'd')
            data = optarg;
        else if (c == 'f')
            format = optarg;
        else
            return fputs(usage, stderr), 2;
    }
    md = !strcmp(format, "md");
    if (!data || optind != argc || (!md && strcmp(format, "text"))) return fputs(usage, stderr), 2;

    mt_kv *kv;
    char why[600] = "";
    mt_kv_options ko = {.read_only = true, .why = why, .why_cap = sizeof why};
    int rc = mt_kv_open(data, &ko, &kv);
    if (rc) {
        fprintf(stderr, "metron-floor: %s/index.mdb: %s %s\n", data, mt_strerror(rc), why);
        return 1;
    }
    /* one snapshot: the hours it names, and every database's records */
    mt_kv_txn *t;
    db_use use[MT_DB__COUNT + 1] = {{0}};
    hour_gen *hours = NULL;
    size_t nh = 0, hcap = 0;
    if (!(rc = mt_kv_begin(kv, false, &t))) {
        for (int db = 0; !rc && db < MT_DB__COUNT; db++)
            rc = walk_db(t, (mt_kv_db)db, use, &hours, &nh, &hcap);
        mt_kv_abort(t);
    }
    if (rc) {
        fprintf(stderr, "metron-floor: %s/index.mdb: %s\n", data, mt_strerror(rc));
        return 1;
    }

    floor_run r = {0};
    mt_decoder *dec;
    if (mt_decoder_new(&dec)) abort();
    for (size_t i = 0; !rc && i < nh; i++)
        rc = read_hour(&r, dec, data, hours[i].hour, hours[i].gen);
    mt_decoder_free(dec);
    free(hours);
    if (rc) return run_free(&r), mt_kv_close(kv), 1;
    qsort(r.g, r.ng, sizeof *r.g, by_name);

    wide = 12;
    for (size_t i = 0; i < r.ng; i++) {
        if ((int)strlen(r.g[i].meas) > wide) wide = (int)strlen(r.g[i].meas);
        if ((int)strlen(r.g[i].field) > wide) wide = (int)strlen(r.g[i].field);
    }
    printf("%s%s: %zu sealed hours, %llu points (B = bytes, b = bits, per point)\n\n",
           md ? "" : "metron-floor ", data, nh, (unsigned long long)r.points);
    sums_row("measurement", "field", "type", NULL);
    sums all = {0}, meas = {0};
    for (size_t i = 0; i < r.ng; i++) {
        sums s = group_sums(&r.g[i]);
        sums_row(r.g[i].meas, r.g[i].field, mt_vtype_name(r.g[i].type), &s);
        sums_add(&meas, &s);
        sums_add(&all, &s);
        if (i + 1 == r.ng || strcmp(r.g[i].meas, r.g[i + 1].meas)) {
            sums_row(r.g[i].meas, "(all)", "", &meas);
            memset(&meas, 0, sizeof meas);
        }
    }
    sums_row("(all)", "(all)", "", &all);

    double p = r.points ? (double)r.points : 1;
    printf("\n");
    idx_row("index.mdb", 0, 0, 0);
    uint64_t recs = 0, bytes = 0;
    for (int i = 0; i <= MT_DB__COUNT; i++) { /* the group rollups right after the series' */
        int db = i <= MT_DB_ROLLUPS ? i : i == MT_DB_ROLLUPS + 1 ? MT_DB__COUNT : i - 1;
        idx_row(db == MT_DB_ROLLUPS  ? "rollups S (series rows)"
                : db == MT_DB__COUNT ? "rollups G (group rows)"
                                     : db_names[db],
                (long long)use[db].records, use[db].bytes, p);
        recs += use[db].records, bytes += use[db].bytes;
    }
    idx_row("sum of records", (long long)recs, bytes, p);
    idx_row("live pages", -1, mt_kv_live_bytes(kv), p);
    char path[4200];
    struct stat st = {0};
    snprintf(path, sizeof path, "%s/index.mdb", data);
    if (stat(path, &st))
        return fprintf(stderr, "metron-floor: %s: %m\n", path), run_free(&r), mt_kv_close(kv), 1;
    idx_row("index.mdb file", -1, (uint64_t)st.st_size, p);
    printf("\n(records: key + value + the 4-byte checksum; compaction would leave between the sum "
           "of records and the live pages)\n");
    run_free(&r);
    mt_kv_close(kv);
    return 0;
}
