/*
 * mt_hourfile.c — hour files: every chunk of one hour, then a footer that
 * indexes them.
 *
 *   header   16 bytes: "MTHF", u8 version (3; 1 and 2 are read too), 3 zero
 *            bytes, i64 hour (LE)
 *   chunks   back to back, ascending by series id (mt_codec format)
 *   keys     (versions 2, 3) one zstd frame: per chunk, in the same order,
 *            uvarint length and the series' canonical key (mt_series.h):
 *            enough, with the hour in the header and the generation in
 *            the name, to rebuild index.mdb from the files alone
 *            (mt_engine_rebuild_index); read only then, never by queries
 *   footer   one zstd frame: (versions 2, 3) uvarint keys frame length, u32
 *            its checksum (low 32 bits of XXH3), uvarint its raw length;
 *            then per chunk: uvarint id gap, u8 type, uvarint
 *            length, uvarint count, the times: (version 3) u8 k, uvarint
 *            (min_ts - hour start) / 10^k, uvarint (max_ts - min_ts) / 10^k
 *            with k the largest power of ten (at most 18) dividing both;
 *            (versions 1, 2) the two in nanoseconds; and for numeric types
 *            the exact summary sum, min, max, first, last: (version 3)
 *            near-decimal (put_summary below: 7-12 bytes for a series of
 *            decimals), (versions 1, 2) five 8-byte doubles (LE)
 *   trailer  32 bytes: u64 footer offset, u32 footer length, u32 footer
 *            raw length, u32 chunks, u32 checksum of the footer (low 32
 *            bits of XXH3), u32 zero, "MTHE"
 *
 * The index lives in the file rather than one LMDB entry per chunk: zstd
 * packs it to a few bytes per chunk, where B-tree entries cost ~80, and
 * the file and its index are published together by one rename. LMDB keeps
 * one entry per hour (generation, size), switched in the seal transaction.
 * Files are written to a temp name, fsynced, renamed, and the directory
 * fsynced before that transaction commits.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_fault.h"
#include "mt_fs.h"
#include "mt_hash.h"
#include "mt_zstd.h"

#define HF_VERSION    3 /* written; 2 (raw summaries) and 1 (no keys frame) are still read */
#define HF_HEADER     16
#define HF_TRAILER    32
#define HF_MAX_FOOTER (1u << 30)

struct mt_hf_writer {
    int fd;
    char path[4096], tmp[4200], dirpath[4096];
    int64_t hour;
    uint64_t off;
    uint8_t *foot; /* raw footer */
    size_t foot_len, foot_cap;
    uint32_t count, last_id;
    uint8_t *keys; /* raw keys frame */
    size_t keys_len, keys_cap;
    uint8_t *wbuf; /* write buffer */
    size_t wlen;
};

#define WBUF (1u << 20)
/* the longest footer entry: id gap, type, length, count, times, summary with corrections */
#define FOOT_ENTRY_MAX (10 + 1 + 10 + 10 + 21 + 2 + 5 * 10 + 5 * 10)

void mt_hf_path(char *out, size_t cap, const char *dir, int64_t hour, uint32_t gen)
{
    time_t t = (time_t)(hour * 3600);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%s/blocks/%04d/%02d/%02d/%02d.%u.blk", dir, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, gen);
}

bool mt_hf_parse_path(const char *path, int64_t *hour, uint32_t *gen, bool *temp)
{
    const char *rel = strstr(path, "/blocks/");
    int y, mo, d, h;
    unsigned g;
    char tail[16] = "";
    if (!rel || sscanf(rel, "/blocks/%d/%d/%d/%d.%u.blk%15s", &y, &mo, &d, &h, &g, tail) < 5)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h};
    *hour = (int64_t)timegm(&tm) / 3600;
    *gen = g;
    *temp = tail[0] != '\0';
    return true;
}

/* mkdir -p of the directory part of path (each new directory's parent fsynced: mt_fs.h). */
static int make_dirs(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    return slash ? mt_fs_make_dirs(dir) : MT_OK;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return MT_OK;
}

static int flush(mt_hf_writer *w)
{
    int rc = write_all(w->fd, w->wbuf, w->wlen);
    w->wlen = 0;
    return rc;
}

static int put(mt_hf_writer *w, const void *p, size_t n)
{
    if (w->wlen + n > WBUF) {
        int rc = flush(w);
        if (rc) return rc;
        if (n > WBUF) return write_all(w->fd, p, n);
    }
    memcpy(w->wbuf + w->wlen, p, n);
    w->wlen += n;
    return MT_OK;
}

int mt_hf_begin(const char *dir, int64_t hour, uint32_t gen, mt_hf_writer **out)
{
    *out = NULL;
    mt_hf_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->wbuf = malloc(WBUF))) {
        free(w);
        return -ENOMEM;
    }
    w->hour = hour;
    mt_hf_path(w->path, sizeof w->path, dir, hour, gen);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", w->path);
    snprintf(w->dirpath, sizeof w->dirpath, "%s", w->path);
    *strrchr(w->dirpath, '/') = '\0';
    int rc = make_dirs(w->path);
    w->fd = rc ? -1 : open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = rc ? rc : -errno;
        free(w->wbuf);
        free(w);
        return rc;
    }
    uint8_t h[HF_HEADER] = {'M', 'T', 'H', 'F', HF_VERSION};
    mt_put_le(h + 8, (uint64_t)hour, 8);
    w->off = HF_HEADER;
    if ((rc = put(w, h, sizeof h))) {
        mt_hf_abort(w);
        return rc;
    }
    *out = w;
    return MT_OK;
}

/* ---- footer entries (version 3) -------------------------------------------------------- */

/* u8 k, then the offset from the hour's start and the span in units of 10^k. */
static uint8_t *put_times(uint8_t *p, int64_t off, int64_t span)
{
    assert(off >= 0 && span >= 0);
    unsigned k = 0;
    while (k < 18 && (uint64_t)off % mt_pow10[k + 1] == 0 && (uint64_t)span % mt_pow10[k + 1] == 0)
        k++;
    *p++ = (uint8_t)k;
    p += mt_put_uvarint(p, (uint64_t)off / mt_pow10[k]);
    return p + mt_put_uvarint(p, (uint64_t)span / mt_pow10[k]);
}

static int get_times(mt_rd *r, uint64_t *off, uint64_t *span)
{
    uint8_t k;
    if (mt_rd_u8(r, &k) || k > 18 || mt_rd_uvarint(r, off) || mt_rd_uvarint(r, span) ||
        *off > (uint64_t)(MT_HOUR_NS - 1) / mt_pow10[k] ||
        *span > (uint64_t)(MT_HOUR_NS - 1) / mt_pow10[k])
        return MT_ECORRUPT;
    *off *= mt_pow10[k];
    *span *= mt_pow10[k];
    return MT_OK;
}

#define SUMMARY_RAW 0xFF /* the e that says: five doubles, 8 bytes each */

/*
 * A numeric entry's sum, min, max, first and last. Points are mostly
 * decimals of few digits, and the summaries are made of them: u8 e (the
 * smallest exponent at which min, max, first and last are exact decimals,
 * mt_decimal_at), u8 a bit per summary whose correction is not 0, svarint
 * m of min, svarint (m - m of min) of max, first and last, svarint m of the
 * sum, then svarint of each correction not 0 (mt_decimal_near: a sum's
 * rounding). Anything else (no such e, values beyond 2^53) is e = 0xFF and
 * the five doubles, 8 bytes LE each.
 */
static uint8_t *put_summary(uint8_t *p, const mt_hf_entry *e)
{
    const double v[5] = {e->sum, e->min, e->max, e->first, e->last};
    int64_t m[5], c[5];
    int x = 0;
    for (; x <= MT_DECIMAL_MAX_E; x++) {
        bool ok = true;
        for (int k = 1; k < 5 && ok; k++) ok = mt_decimal_at(v[k], x, &m[k]);
        if (ok) break;
    }
    bool near = x <= MT_DECIMAL_MAX_E;
    for (int k = 0; k < 5 && near; k++) near = mt_decimal_near(v[k], x, &m[k], &c[k]);
    if (!near) {
        *p++ = SUMMARY_RAW;
        for (int k = 0; k < 5; k++) {
            uint64_t b;
            memcpy(&b, &v[k], 8);
            mt_put_le(p, b, 8);
            p += 8;
        }
        return p;
    }
    *p++ = (uint8_t)x;
    uint8_t *mask = p++;
    *mask = 0;
    for (int k = 0; k < 5; k++) *mask |= (uint8_t)((c[k] != 0) << k);
    p += mt_put_uvarint(p, mt_zigzag(m[1]));
    for (int k = 2; k < 5; k++)
        p += mt_put_uvarint(p, mt_zigzag((int64_t)((uint64_t)m[k] - (uint64_t)m[1])));
    p += mt_put_uvarint(p, mt_zigzag(m[0]));
    for (int k = 0; k < 5; k++)
        if (c[k]) p += mt_put_uvarint(p, mt_zigzag(c[k]));
    return p;
}

static int get_summary(mt_rd *r, mt_hf_entry *e)
{
    uint8_t x, mask;
    double v[5];
    if (mt_rd_u8(r, &x)) return MT_ECORRUPT;
    if (x == SUMMARY_RAW) {
        for (int k = 0; k < 5; k++) {
            uint64_t b;
            if (mt_rd_u64le(r, &b)) return MT_ECORRUPT;
            memcpy(&v[k], &b, 8);
        }
    } else {
        int64_t m[5], c[5] = {0};
        if (x > MT_DECIMAL_MAX_E || mt_rd_u8(r, &mask) || mask > 31 || mt_rd_svarint(r, &m[1]))
            return MT_ECORRUPT;
        for (int k = 2; k < 5; k++) {
            int64_t d;
            if (mt_rd_svarint(r, &d)) return MT_ECORRUPT;
            m[k] = (int64_t)((uint64_t)m[1] + (uint64_t)d);
        }
        if (mt_rd_svarint(r, &m[0])) return MT_ECORRUPT;
        for (int k = 0; k < 5; k++)
            if ((mask >> k & 1) && mt_rd_svarint(r, &c[k])) return MT_ECORRUPT;
        for (int k = 0; k < 5; k++) v[k] = mt_decimal_near_value(m[k], x, c[k]);
    }
    e->sum = v[0], e->min = v[1], e->max = v[2], e->first = v[3], e->last = v[4];
    return MT_OK;
}

int mt_hf_add(mt_hf_writer *w, const mt_hf_entry *e, const void *chunk, size_t len, const void *key,
              size_t klen)
{
    if (e->id <= w->last_id || !len || len > UINT32_MAX || !klen || klen > MT_SERIES_MAX_KEY)
        return MT_EINVAL;
    if (w->keys_len + klen + 10 > w->keys_cap) {
        size_t cap = w->keys_cap ? w->keys_cap * 2 : 65536;
        while (cap < w->keys_len + klen + 10) cap *= 2;
        uint8_t *k = realloc(w->keys, cap);
        if (!k) return -ENOMEM;
        w->keys = k;
        w->keys_cap = cap;
    }
    w->keys_len += mt_put_uvarint(w->keys + w->keys_len, klen);
    memcpy(w->keys + w->keys_len, key, klen);
    w->keys_len += klen;
    if (w->foot_len + FOOT_ENTRY_MAX > w->foot_cap) {
        size_t cap = w->foot_cap ? w->foot_cap * 2 : 65536;
        uint8_t *f = realloc(w->foot, cap);
        if (!f) return -ENOMEM;
        w->foot = f;
        w->foot_cap = cap;
    }
    uint8_t *p = w->foot + w->foot_len;
    p += mt_put_uvarint(p, e->id - w->last_id);
    *p++ = e->type;
    p += mt_put_uvarint(p, len);
    p += mt_put_uvarint(p, e->count);
    p = put_times(p, e->min_ts - w->hour * MT_HOUR_NS, e->max_ts - e->min_ts);
    if (e->type != MT_VT_STRING) p = put_summary(p, e);
    w->foot_len = (size_t)(p - w->foot);
    w->last_id = e->id;
    w->count++;
    w->off += len;
    return put(w, chunk, len);
}

/* The keys frame after the chunks; the footer's prefix that finds it into pre (*plen). */
static int put_keys(mt_hf_writer *w, uint8_t pre[32], size_t *plen)
{
    size_t bound = mt_zstd_bound(w->keys_len), zn;
    uint8_t *z = malloc(bound ? bound : 1);
    if (!z) return -ENOMEM;
    int rc = mt_zstd_compress(NULL, z, bound, w->keys, w->keys_len, 3, &zn);
    if (!rc) rc = put(w, z, zn);
    if (!rc) {
        uint8_t *p = pre;
        p += mt_put_uvarint(p, zn);
        mt_put_le(p, (uint32_t)mt_hash64(z, zn), 4);
        p += 4;
        p += mt_put_uvarint(p, w->keys_len);
        *plen = (size_t)(p - pre);
        w->off += zn;
    }
    free(z);
    return rc;
}

int mt_hf_commit(mt_hf_writer *w, uint64_t *bytes)
{
    uint8_t pre[32];
    size_t plen = 0;
    int rc = put_keys(w, pre, &plen);
    if (rc) {
        mt_hf_abort(w);
        return rc;
    }
    /* the footer: the keys frame's place, then the entries */
    uint8_t *raw = malloc(plen + w->foot_len + 1);
    if (!raw) {
        mt_hf_abort(w);
        return -ENOMEM;
    }
    memcpy(raw, pre, plen);
    if (w->foot_len) memcpy(raw + plen, w->foot, w->foot_len);
    size_t raw_len = plen + w->foot_len;
    size_t bound = mt_zstd_bound(raw_len), zn = 0;
    uint8_t *z = malloc(bound + HF_TRAILER);
    if (!z) {
        free(raw);
        mt_hf_abort(w);
        return -ENOMEM;
    }
    rc = mt_zstd_compress(NULL, z, bound, raw, raw_len, 9, &zn);
    free(raw);
    if (!rc) {
        uint8_t *t = z + zn;
        memset(t, 0, HF_TRAILER);
        mt_put_le(t, w->off, 8);
        mt_put_le(t + 8, zn, 4);
        mt_put_le(t + 12, raw_len, 4);
        mt_put_le(t + 16, w->count, 4);
        mt_put_le(t + 20, (uint32_t)mt_hash64(z, zn), 4);
        memcpy(t + 28, "MTHE", 4);
        rc = put(w, z, zn + HF_TRAILER);
    }
    free(z);
    if (!rc) rc = flush(w);
    if (!rc && mt_fault_hit("hf.fsync")) rc = -EIO;
    if (!rc && fsync(w->fd)) rc = -errno;
    if (!rc && close(w->fd)) rc = -errno;
    w->fd = -1;
    if (!rc && mt_fault_hit("hf.rename")) rc = -EIO;
    if (!rc && rename(w->tmp, w->path)) rc = -errno;
    if (!rc) rc = mt_fs_sync_dir(w->dirpath);
    if (rc) {
        mt_hf_abort(w);
        return rc;
    }
    if (bytes) *bytes = w->off + zn + HF_TRAILER;
    free(w->foot);
    free(w->keys);
    free(w->wbuf);
    free(w);
    return MT_OK;
}

void mt_hf_abort(mt_hf_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    unlink(w->tmp);
    free(w->foot);
    free(w->keys);
    free(w->wbuf);
    free(w);
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return MT_ECORRUPT; /* shorter than its index says */
        p += n, off += (uint64_t)n, len -= (size_t)n;
    }
    return MT_OK;
}

/* Where an index is read from: a file descriptor, or a mapping of the file (map not NULL). */
typedef struct hf_src {
    int fd;
    const mt_hfmap *map;
} hf_src;

static int src_read(const hf_src *s, void *buf, size_t len, uint64_t off)
{
    if (!s->map) return pread_all(s->fd, buf, len, off);
    if (off > s->map->size || len > s->map->size - off) return MT_ECORRUPT;
    memcpy(buf, s->map->base + off, len);
    return MT_OK;
}

static int read_index(const hf_src *src, uint64_t size, int64_t hour, mt_hf_index *out)
{
    memset(out, 0, sizeof *out);
    out->hour = hour;
    uint8_t h[HF_HEADER], t[HF_TRAILER];
    if (size < HF_HEADER + HF_TRAILER) return MT_ECORRUPT;
    int rc = src_read(src, h, HF_HEADER, 0);
    if (!rc) rc = src_read(src, t, HF_TRAILER, size - HF_TRAILER);
    if (rc) return rc;
    if (memcmp(h, "MTHF", 4) || memcmp(t + 28, "MTHE", 4)) return MT_ECORRUPT;
    int version = h[4];
    if (version < 1 || version > HF_VERSION) return MT_EFORMAT;
    uint64_t foff = mt_get_le(t, 8);
    uint32_t zn = (uint32_t)mt_get_le(t + 8, 4), raw_len = (uint32_t)mt_get_le(t + 12, 4);
    uint32_t count = (uint32_t)mt_get_le(t + 16, 4), sum = (uint32_t)mt_get_le(t + 20, 4);
    /* every chunk takes a byte of the file at least: a count the file cannot hold is damage,
       found before an array is sized by it */
    if ((int64_t)mt_get_le(h + 8, 8) != hour || foff < HF_HEADER ||
        foff + zn + HF_TRAILER != size || raw_len > HF_MAX_FOOTER || count > raw_len / 6 + 1 ||
        count > foff - HF_HEADER)
        return MT_ECORRUPT;
    uint8_t *z = malloc(zn ? zn : 1), *raw = malloc(raw_len ? raw_len : 1);
    if (!z || !raw) rc = -ENOMEM;
    if (!rc) rc = src_read(src, z, zn, foff);
    if (!rc && (uint32_t)mt_hash64(z, zn) != sum) rc = MT_ECORRUPT;
    if (!rc) rc = mt_zstd_decompress(NULL, raw, raw_len, z, zn);
    if (!rc && !(out->e = calloc(count ? count : 1, sizeof *out->e))) rc = -ENOMEM;
    mt_rd r = {raw, raw + raw_len};
    uint64_t off = HF_HEADER, id = 0, chunks_end = foff;
    if (!rc && version >= 2) {
        uint64_t kzn, kraw;
        uint32_t ksum;
        if (mt_rd_uvarint(&r, &kzn) || mt_rd_u32le(&r, &ksum) || mt_rd_uvarint(&r, &kraw) ||
            kzn > foff - HF_HEADER || kraw > HF_MAX_FOOTER)
            rc = MT_ECORRUPT;
        else
            chunks_end = foff - kzn, out->keys_off = chunks_end, out->keys_len = (uint32_t)kzn,
            out->keys_raw = (uint32_t)kraw, out->keys_sum = ksum;
    }
    int64_t start = hour * MT_HOUR_NS;
    for (uint32_t i = 0; !rc && i < count; i++) {
        mt_hf_entry *e = &out->e[i];
        uint64_t gap, len, n, min_off, span; /* the entry, in the order written by mt_hf_add */
        if (mt_rd_uvarint(&r, &gap) || mt_rd_u8(&r, &e->type) || e->type >= MT_VT_COUNT ||
            mt_rd_uvarint(&r, &len) || mt_rd_uvarint(&r, &n) ||
            (version >= 3 ? get_times(&r, &min_off, &span)
                          : mt_rd_uvarint(&r, &min_off) || mt_rd_uvarint(&r, &span))) {
            rc = MT_ECORRUPT;
            break;
        }
        /* ids ascend within 32 bits: the gap is checked before it is added (the sum could wrap
           round and go back) */
        if (gap == 0 || gap > UINT32_MAX - id || len == 0 || len > UINT32_MAX || n == 0 ||
            n > MT_CODEC_MAX_POINTS || min_off >= (uint64_t)MT_HOUR_NS ||
            span >= (uint64_t)MT_HOUR_NS - min_off || off + len > chunks_end) {
            rc = MT_ECORRUPT;
            break;
        }
        id += gap;
        e->id = (uint32_t)id;
        e->off = off;
        e->len = (uint32_t)len;
        e->count = (uint32_t)n;
        e->min_ts = start + (int64_t)min_off;
        e->max_ts = e->min_ts + (int64_t)span;
        off += len;
        if (e->type != MT_VT_STRING && version >= 3) {
            rc = get_summary(&r, e);
        } else if (e->type != MT_VT_STRING) {
            double sv[5];
            for (int k = 0; k < 5 && !rc; k++) {
                uint64_t b;
                rc = mt_rd_u64le(&r, &b);
                memcpy(&sv[k], &b, 8);
            }
            e->sum = sv[0], e->min = sv[1], e->max = sv[2], e->first = sv[3], e->last = sv[4];
        }
    }
    if (!rc && (mt_rd_left(&r) || off != chunks_end)) rc = MT_ECORRUPT;
    free(z);
    free(raw);
    if (rc) {
        free(out->e);
        out->e = NULL;
        return rc;
    }
    out->n = count;
    return MT_OK;
}

int mt_hf_read_index(int fd, int64_t hour, mt_hf_index *out)
{
    struct stat st;
    if (fstat(fd, &st)) return -errno;
    hf_src s = {.fd = fd};
    return read_index(&s, (uint64_t)st.st_size, hour, out);
}

int mt_hf_read_index_map(const mt_hfmap *m, int64_t hour, mt_hf_index *out)
{
    hf_src s = {.fd = -1, .map = m};
    return read_index(&s, m->size, hour, out);
}

void mt_hf_index_free(mt_hf_index *ix)
{
    if (!ix) return;
    free(ix->e);
    ix->e = NULL;
    ix->n = 0;
}

const mt_hf_entry *mt_hf_find(const mt_hf_index *ix, uint32_t id)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ix->e[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ix->n && ix->e[lo].id == id ? &ix->e[lo] : NULL;
}

int mt_hfmap_open(int fd, mt_hfmap **out)
{
    struct stat st;
    if (fstat(fd, &st)) return -errno;
    mt_hfmap *m = malloc(sizeof *m);
    if (!m) return -ENOMEM;
    m->size = (size_t)st.st_size;
    void *p = mmap(NULL, m->size ? m->size : 1, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int rc = -errno;
        free(m);
        return rc;
    }
    m->base = p;
    m->refs = 1;
    *out = m;
    return MT_OK;
}

void mt_hfmap_acquire(mt_hfmap *m)
{
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
}

void mt_hfmap_release(mt_hfmap *m)
{
    if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    munmap((void *)m->base, m->size ? m->size : 1);
    free(m);
}

mt_chunk_info mt_hf_entry_info(int64_t hour, const mt_hf_entry *en)
{
    return (mt_chunk_info){.hour = hour,
                           .id = en->id,
                           .type = (mt_vtype)en->type,
                           .count = en->count,
                           .bytes = en->len,
                           .min_ts = en->min_ts,
                           .max_ts = en->max_ts,
                           .sum = en->sum,
                           .min = en->min,
                           .max = en->max,
                           .first = en->first,
                           .last = en->last};
}

int mt_hf_read_keys(int fd, const mt_hf_index *ix,
                    int (*fn)(void *ud, size_t i, const void *key, size_t klen), void *ud)
{
    if (!ix->keys_len) return MT_EFORMAT; /* a version 1 file: no keys */
    uint8_t *z = malloc(ix->keys_len), *raw = malloc(ix->keys_raw ? ix->keys_raw : 1);
    int rc = z && raw ? pread_all(fd, z, ix->keys_len, ix->keys_off) : -ENOMEM;
    if (!rc && (uint32_t)mt_hash64(z, ix->keys_len) != ix->keys_sum) rc = MT_ECORRUPT;
    if (!rc) rc = mt_zstd_decompress(NULL, raw, ix->keys_raw, z, ix->keys_len);
    mt_rd r = {raw, raw + ix->keys_raw};
    for (size_t i = 0; !rc && i < ix->n; i++) {
        uint64_t kl;
        if (mt_rd_uvarint(&r, &kl) || kl == 0 || kl > (uint64_t)mt_rd_left(&r)) {
            rc = MT_ECORRUPT;
            break;
        }
        rc = fn(ud, i, r.p, (size_t)kl);
        r.p += kl;
    }
    if (!rc && mt_rd_left(&r)) rc = MT_ECORRUPT;
    free(z);
    free(raw);
    return rc;
}
