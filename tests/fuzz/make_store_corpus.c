/*
 * make_store_corpus — writes the seed corpora of the fuzz targets for
 * stored bytes and the HTTP request path from bytes the code itself
 * produces: a real hour file and its footer, real rollup values (both read
 * from a data directory metron import filled), head-log records made by
 * mt_rec_add/mt_rec_finish, alert and quarantine records from their
 * encoders, and HTTP requests as clients send them.
 *
 *   make_store_corpus DATA_DIR HOUR_FILE CORPUS_DIR     (tests/fuzz/corpus)
 *
 * Run by hand when a format changes (tests/fuzz/make_store_corpus.sh does
 * it); the files are committed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "mt_alert.h"
#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_kv.h"
#include "mt_quarantine.h"

static const char *out_dir;

static void seed(const char *target, const char *name, int sel, const void *p, size_t n)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (sel >= 0) fputc(sel, f);
    if (fwrite(p, 1, n, f) != n || fclose(f)) {
        perror(path);
        exit(1);
    }
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(*len);
    if (!p || fread(p, 1, *len, f) != *len) exit(1);
    fclose(f);
    return p;
}

/* The raw bytes of a zstd frame (the frame records its size), malloc'd. */
static uint8_t *unzstd(const uint8_t *z, size_t zl, size_t *len)
{
    unsigned long long n = ZSTD_getFrameContentSize(z, zl);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN) exit(1);
    uint8_t *raw = malloc(n ? n : 1);
    if (!raw || ZSTD_decompress(raw, n, z, zl) != n) exit(1);
    *len = n;
    return raw;
}

static void hour_file(const char *path)
{
    size_t len;
    uint8_t *f = slurp(path, &len);
    seed("hourfile", "real-hour", 0, f, len);
    /* its footer alone, for the wrapping mode: region length, count, raw footer */
    const uint8_t *t = f + len - 32;
    uint64_t foff = mt_get_le(t, 8);
    uint32_t zn = (uint32_t)mt_get_le(t + 8, 4), count = (uint32_t)mt_get_le(t + 16, 4);
    size_t rl;
    uint8_t *raw = unzstd(f + foff, zn, &rl);
    if (foff - 16 > 0xffff) {
        fprintf(stderr, "%s: chunk region over 64 KiB, pick a smaller hour\n", path);
        exit(1);
    }
    uint8_t *m = malloc(6 + rl);
    mt_put_le(m, foff - 16, 2);
    mt_put_le(m + 2, count, 4);
    memcpy(m + 6, raw, rl);
    seed("hourfile", "real-footer", 1 | (f[4] - 1) << 1, m,
         6 + rl); /* fuzz_hourfile: its version */
    free(m);
    free(raw);
    free(f);
}

static void rollups(const char *dir)
{
    mt_kv *kv;
    mt_kv_txn *t;
    mt_kv_cursor *c;
    mt_kv_options o = {.read_only = true};
    if (mt_kv_open(dir, &o, &kv) || mt_kv_begin(kv, false, &t) ||
        mt_kv_cursor_open(t, MT_DB_ROLLUPS, &c)) {
        fprintf(stderr, "%s: cannot read the rollups\n", dir);
        exit(1);
    }
    const void *k, *v;
    size_t kl, vl;
    int got[2] = {0, 0};
    for (int r = mt_kv_cursor_seek(c, "", 0, &k, &kl, &v, &vl); r == MT_OK;
         r = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        int groups = ((const uint8_t *)k)[0] == 'G';
        if (got[groups]++) continue; /* one hour of each kind */
        char name[32];
        /* version 2 (0x02 before the frame) gets its own names: version 1's seeds stay */
        int v2 = vl && ((const uint8_t *)v)[0] == 0x02;
        snprintf(name, sizeof name, "real-%s%s", groups ? "groups" : "series", v2 ? "-v2" : "");
        seed("rollup", name, groups, v, vl);
        size_t rl;
        uint8_t *raw = unzstd((const uint8_t *)v + v2, vl - (size_t)v2, &rl);
        snprintf(name, sizeof name, "real-%s%s-raw", groups ? "groups" : "series", v2 ? "-v2" : "");
        seed("rollup", name, (v2 ? 6 : 2) | groups, raw, rl);
        free(raw);
    }
    mt_kv_cursor_close(c);
    mt_kv_abort(t);
    mt_kv_close(kv);
    if (!got[0] || !got[1]) {
        fprintf(stderr, "%s: no rollups of both kinds\n", dir);
        exit(1);
    }
}

static void head_records(void)
{
    mt_recbuf r = {0};
    mt_rec_reset(&r);
    int64_t ts = 1735689600000000000;
    /* ids by type as fuzz_headrec reads them: id % MT_VT_COUNT */
    for (uint32_t id = 5; id < 5 + 2 * MT_VT_COUNT; id++) {
        mt_vtype ty = (mt_vtype)(id % MT_VT_COUNT);
        for (int i = 0; i < 4; i++) {
            mt_val v = {.u = 0};
            if (ty == MT_VT_FLOAT) v.f = 12.5 * i;
            if (ty == MT_VT_INT) v.i = -3 * i;
            if (ty == MT_VT_UINT) v.u = 1000u * (unsigned)i;
            if (ty == MT_VT_BOOL) v.u = (unsigned)i & 1;
            if (ty == MT_VT_STRING) v.u = (unsigned)i;
            if (mt_rec_add(&r, id, ts + i * 10000000000LL, ty, v, "okay")) exit(1);
        }
    }
    if (mt_rec_finish(&r)) exit(1);
    seed("headrec", "real-record", 0, r.out, r.out_len);
    size_t rl;
    uint8_t *raw = unzstd(r.out + 9, r.out_len - 9, &rl);
    /* version 2 (mode 3 of fuzz_headrec); real-record-v1 and real-record-raw-v1 keep the
       bytes of version 1, which no encoder writes now */
    seed("headrec", "real-record-raw", 3, raw, rl);
    free(raw);
    mt_rec_free(&r);
    uint8_t pts[13 * 6];
    for (int i = 0; i < 6; i++) {
        mt_put_le(pts + 13 * i, 5 + (unsigned)i, 4);
        pts[13 * i + 4] = (uint8_t)(2 * i + 1);
        mt_put_le(pts + 13 * i + 5, 0x4029000000000000ull + (unsigned)i, 8);
    }
    seed("headrec", "round-trip", 2, pts, sizeof pts);
}

static void alerts(void)
{
    mt_alert_record a;
    memset(&a, 0, sizeof a);
    a.rule = mt_alert_rule_default();
    snprintf(a.alert_id, sizeof a.alert_id, "6f1c9a4e-51f4-4a43-9a0e-1f6f0d2b7c11");
    snprintf(a.rule.id, sizeof a.rule.id, "cpu-high");
    snprintf(a.rule.business_id, sizeof a.rule.business_id, "0b7c6a52-8f3e-4d21-9a57-3c1e2f4d5a01");
    snprintf(a.rule.name, sizeof a.rule.name, "CPU above 90%%");
    snprintf(a.rule.metric, sizeof a.rule.metric, "cpu.usage_user{hostname=~\"host_.*\"}");
    snprintf(a.series, sizeof a.series,
             "cpu,business_id=0b7c6a52-8f3e-4d21-9a57-3c1e2f4d5a01,hostname=host_3 usage_user");
    snprintf(a.business_id, sizeof a.business_id, "%s", a.rule.business_id);
    a.rule.has_warning = a.rule.has_critical = true;
    a.rule.warning = 80, a.rule.critical = 90;
    a.st.status = MT_ALERT_ACTIVE;
    a.st.severity = MT_SEV_CRITICAL;
    a.st.triggered_at = 1735689600000000000;
    a.st.notified_at = 1735689601000000000;
    a.st.value = 93.25, a.st.threshold = 90;
    a.st.notifications = 2;
    uint8_t *buf;
    size_t len;
    if (mt_alert_record_encode(&a, &buf, &len)) exit(1);
    seed("alert", "real-firing", -1, buf, len);
    free(buf);
    a.st.status = MT_ALERT_RESOLVED;
    a.st.resolved_at = 1735693200000000000;
    a.business_id[0] = '\0';
    if (mt_alert_record_encode(&a, &buf, &len)) exit(1);
    seed("alert", "real-resolved", -1, buf, len);
    free(buf);
}

static void quarantine(void)
{
    mt_quar_row rows[2] = {
        {.table = MT_QUAR_GROUPS,
         .hour = 482136,
         .at_ns = 1735693300000000000,
         .refusals = 1,
         .sqlstate = "22P02",
         .reason = "invalid input syntax for type uuid: \"acme\"",
         .natural = "hour=482136 business_id=acme measurement=cpu field=usage_user",
         .nparams = 4,
         .params = {"2025-01-01 00:00:00+00", "acme", "cpu", NULL}},
        {.table = MT_QUAR_ALERTS,
         .at_ns = 1735693300000000000,
         .refusals = 3,
         .reason = "measurement over 50 bytes",
         .natural = "alert=6f1c9a4e-51f4-4a43-9a0e-1f6f0d2b7c11",
         .nparams = 2,
         .params = {"6f1c9a4e-51f4-4a43-9a0e-1f6f0d2b7c11", ""}},
    };
    for (int i = 0; i < 2; i++) {
        void *buf;
        size_t len;
        if (mt_quar_encode(&rows[i], &buf, &len)) exit(1);
        char name[32];
        snprintf(name, sizeof name, "real-%d", i);
        seed("quar", name, 0, buf, len);
        snprintf(name, sizeof name, "real-%d-unsummed", i);
        seed("quar", name, 1, buf, len - 8);
        free(buf);
    }
}

static void http(void)
{
    static const char lp[] =
        "cpu,host=a,business_id=0b7c6a52-8f3e-4d21-9a57-3c1e2f4d5a01 usage_user=1.5 "
        "1735689600000000000\nmem,host=a used=12i\n";
    /* a gzip body, as Telegraf sends with content_encoding = "gzip" */
    uint8_t gz[512];
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
    z.next_in = (Bytef *)lp;
    z.avail_in = sizeof lp - 1;
    z.next_out = gz;
    z.avail_out = sizeof gz;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
    size_t gzl = sizeof gz - z.avail_out;
    deflateEnd(&z);
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST /write?db=telegraf&precision=ns HTTP/1.1\r\nHost: metron\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof lp - 1, lp);
    seed("http", "write-v1", 0, req, (size_t)n);
    n = snprintf(req, sizeof req,
                 "POST /api/v2/write?org=o&bucket=b&precision=s HTTP/1.1\r\nHost: metron\r\n"
                 "Authorization: Token tenant-token\r\nContent-Encoding: gzip\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 gzl);
    memcpy(req + n, gz, gzl);
    seed("http", "write-v2-gzip-token", 1, req, (size_t)n + gzl);
    n = snprintf(req, sizeof req,
                 "POST /write?db=x HTTP/1.1\r\nAuthorization: Basic dXNlcjp0ZW5hbnQtdG9rZW4=\r\n"
                 "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
                 "1a\r\nmem,host=b used=7i 17356896\r\n0\r\n\r\n"
                 "GET /ping HTTP/1.1\r\n\r\n"
                 "GET /metrics HTTP/1.1\r\nAuthorization: Bearer system-token\r\n\r\n");
    seed("http", "chunked-basic-pipelined", 1, req, (size_t)n);
    n = snprintf(req, sizeof req,
                 "GET /api/v1/query?q=cpu.usage_user%%7Bhost%%3D%%22a%%22%%7D&start=-1h&end=now"
                 "&step=1m&format=json&u=me&p=tenant-token HTTP/1.1\r\nHost: metron\r\n\r\n"
                 "GET /api/v1/rollup?from=-24h&to=now HTTP/1.0\r\n\r\n");
    seed("http", "query-rollup", 3, req, (size_t)n);
    n = snprintf(req, sizeof req, "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n");
    seed("http", "health-close", 1, req, (size_t)n);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: make_store_corpus DATA_DIR HOUR_FILE CORPUS_DIR\n");
        return 2;
    }
    out_dir = argv[3];
    hour_file(argv[2]);
    rollups(argv[1]);
    head_records();
    alerts();
    quarantine();
    http();
    return 0;
}
