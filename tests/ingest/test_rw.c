/*
 * test_rw.c — the remote-write decoder (ingest/mt_rw.h) on WriteRequests
 * built here with protobuf-c and snappy: the mapping, tenants, bad series,
 * stale markers, snappy bombs, truncated protobuf, huge label counts.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_rw.h"
#include "remote.pb-c.h"

/* A series for build(): labels as "name", "value" pairs (NULL-terminated), then samples. */
typedef struct tseries {
    const char *labels[16];
    size_t nsamples;
    double v[8];
    int64_t ms[8];
} tseries;

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

/* The raw (not yet compressed) protobuf of a WriteRequest of n series; malloc'd. */
static uint8_t *pack(const tseries *ts, size_t n, size_t *len)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries *series = calloc(n ? n : 1, sizeof *series);
    Prometheus__TimeSeries **sp = calloc(n ? n : 1, sizeof *sp);
    Prometheus__Label lab[8][8];
    Prometheus__Label *labp[8][8];
    Prometheus__Sample smp[8][8];
    Prometheus__Sample *smpp[8][8];
    cr_assert(n <= 8);
    for (size_t i = 0; i < n; i++) {
        prometheus__time_series__init(&series[i]);
        size_t nl = 0;
        for (; ts[i].labels[2 * nl]; nl++) {
            prometheus__label__init(&lab[i][nl]);
            lab[i][nl].name = bin(ts[i].labels[2 * nl]);
            lab[i][nl].value = bin(ts[i].labels[2 * nl + 1]);
            labp[i][nl] = &lab[i][nl];
        }
        series[i].n_labels = nl;
        series[i].labels = labp[i];
        for (size_t k = 0; k < ts[i].nsamples; k++) {
            prometheus__sample__init(&smp[i][k]);
            smp[i][k].value = ts[i].v[k];
            smp[i][k].timestamp = ts[i].ms[k];
            smpp[i][k] = &smp[i][k];
        }
        series[i].n_samples = ts[i].nsamples;
        series[i].samples = smpp[i];
        sp[i] = &series[i];
    }
    wr.n_timeseries = n;
    wr.timeseries = sp;
    *len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *out = malloc(*len + 1);
    prometheus__write_request__pack(&wr, out);
    free(series);
    free(sp);
    return out;
}

/* Snappy-compress raw; malloc'd. */
static char *compress(const void *raw, size_t len, size_t *clen)
{
    *clen = snappy_max_compressed_length(len);
    char *out = malloc(*clen);
    cr_assert_eq(snappy_compress(raw, len, out, clen), SNAPPY_OK);
    return out;
}

typedef struct decoded {
    int rc;
    mt_rw_result res;
    char err[512];
    char keys[16][256]; /* the points' series, as line protocol */
    size_t npoints;
} decoded;

static decoded *decode_raw(const void *raw, size_t len, const char *tenant, mt_batch *b)
{
    decoded *d = calloc(1, sizeof *d);
    size_t clen;
    char *body = compress(raw, len, &clen);
    d->rc = mt_rw_decode(body, clen, 1u << 20, b, NULL, tenant, &d->res, d->err, sizeof d->err);
    free(body);
    d->npoints = mt_batch_len(b);
    for (size_t i = 0; i < d->npoints && i < 16; i++) {
        mt_batch_pt pt;
        cr_assert_eq(mt_batch_point(b, i, &pt), MT_OK);
        cr_assert_eq(pt.type, MT_VT_FLOAT);
        mt_series_format(pt.key, pt.klen, d->keys[i], sizeof d->keys[i]);
    }
    return d;
}

static decoded *decode(const tseries *ts, size_t n, const char *tenant, mt_batch *b)
{
    size_t len;
    uint8_t *raw = pack(ts, n, &len);
    decoded *d = decode_raw(raw, len, tenant, b);
    free(raw);
    return d;
}

Test(rw, samples_become_points_of_field_value)
{
    mt_batch *b = mt_batch_new();
    tseries ts[] = {
        {{"__name__", "up", "job", "prom", "instance", "localhost:9090", NULL},
         2,
         {1, 0},
         {1700000000000, 1700000001000}},
        {{"__name__", "prometheus_build_info", "version", "2.42.0", NULL}, 1, {1}, {1700000000123}},
    };
    decoded *d = decode(ts, 2, NULL, b);
    cr_assert_eq(d->rc, MT_OK, "%s", d->err);
    cr_expect_eq(d->res.series, 2);
    cr_expect_eq(d->res.samples, 3);
    cr_expect_eq(d->res.bad_series, 0);
    cr_assert_eq(d->npoints, 3);
    /* labels come sorted as tags; the name is the measurement, the field "value" */
    cr_expect_str_eq(d->keys[0], "up,instance=localhost:9090,job=prom value");
    cr_expect_str_eq(d->keys[1], "up,instance=localhost:9090,job=prom value");
    cr_expect_str_eq(d->keys[2], "prometheus_build_info,version=2.42.0 value");
    free(d);
    mt_batch_free(b);
}

Test(rw, unsorted_labels_sorted_and_empty_values_absent)
{
    mt_batch *b = mt_batch_new();
    tseries ts[] = {{{"zone", "b", "__name__", "m", "empty", "", "app", "x", NULL}, 1, {2}, {5}}};
    decoded *d = decode(ts, 1, NULL, b);
    cr_assert_eq(d->rc, MT_OK, "%s", d->err);
    cr_assert_eq(d->npoints, 1);
    cr_expect_str_eq(d->keys[0], "m,app=x,zone=b value");
    free(d);
    mt_batch_free(b);
}

Test(rw, out_of_order_samples_of_one_request_all_kept)
{
    mt_batch *b = mt_batch_new();
    tseries ts[] = {{{"__name__", "m", NULL}, 4, {3, 1, 2, 4}, {3000, 1000, 2000, 3000}}};
    decoded *d = decode(ts, 1, NULL, b);
    cr_assert_eq(d->rc, MT_OK, "%s", d->err);
    cr_expect_eq(d->res.samples, 4); /* the engine sorts, and of one ms keeps the last */
    cr_expect_eq(d->npoints, 4);
    free(d);
    mt_batch_free(b);
}

Test(rw, tenant_stamped_and_another_business_id_forbidden)
{
    const char *t = "7f3c2a10-0000-4000-8000-000000000001";
    mt_batch *b = mt_batch_new();
    tseries own[] = {{{"__name__", "up", "job", "a", NULL}, 1, {1}, {1000}},
                     {{"__name__", "up", "business_id", t, NULL}, 1, {1}, {1000}}};
    decoded *d = decode(own, 2, t, b);
    cr_assert_eq(d->rc, MT_OK, "%s", d->err);
    cr_expect_eq(d->res.forbidden, 0);
    cr_assert_eq(d->npoints, 2);
    cr_expect_str_eq(d->keys[0], "up,business_id=7f3c2a10-0000-4000-8000-000000000001,job=a value");
    cr_expect_str_eq(d->keys[1], "up,business_id=7f3c2a10-0000-4000-8000-000000000001 value");
    free(d);
    mt_batch_reset(b);
    /* the payload's business_id never picks the tenant */
    tseries other[] = {{{"__name__", "up", NULL}, 1, {1}, {1000}},
                       {{"__name__", "up", "business_id", "other", "job", "x", NULL}, 1, {1}, {1}}};
    d = decode(other, 2, t, b);
    cr_assert_eq(d->rc, MT_OK, "%s", d->err);
    cr_expect_eq(d->res.forbidden, 1);
    cr_expect_str_eq(d->res.first_forbidden, "up{business_id=\"other\",job=\"x\"}");
    free(d);
    mt_batch_free(b);
}

Test(rw, bad_series_refused_named_and_counted_good_ones_kept)
{
    mt_batch *b = mt_batch_new();
    tseries ts[] = {
        {{"job", "nameless", NULL}, 2, {1, 2}, {1, 2}},
        {{"__name__", "ok", NULL}, 1, {1}, {1}},
        {{"__name__", "m", "bad-label", "x", NULL}, 1, {1}, {1}},
        {{"__name__", "m", "__meta_x", "x", NULL}, 1, {1}, {1}},
        {{"__name__", "m", "a", "1", "a", "2", NULL}, 1, {1}, {1}},
        {{"__name__", "9m", NULL}, 1, {1}, {1}},
        {{"__name__", "m", NULL}, 2, {1, 2}, {1, INT64_MAX / 1000}},
    };
    decoded *d = decode(ts, 7, NULL, b);
    cr_assert_eq(d->rc, MT_OK, "%s", d->err);
    cr_expect_eq(d->res.bad_series, 6);
    cr_expect_eq(d->res.bad_samples, 7);
    cr_expect_eq(d->res.samples, 2);
    cr_expect_eq(d->npoints, 2);
    cr_expect_str_eq(d->res.first_bad,
                     "series {job=\"nameless\"}: no metric name (label __name__)");
    free(d);
    mt_batch_reset(b);
    static const struct {
        tseries ts;
        const char *why;
    } each[] = {
        {{{"__name__", "m", "bad-label", "x", NULL}, 1, {1}, {1}}, "invalid label name"},
        {{{"__name__", "m", "__meta_x", "x", NULL}, 1, {1}, {1}}, "reserved"},
        {{{"__name__", "m", "a", "1", "a", "2", NULL}, 1, {1}, {1}}, "duplicate label name"},
        {{{"__name__", "9m", NULL}, 1, {1}, {1}}, "invalid metric name"},
        {{{"__name__", "m", "__name__", "n", NULL}, 1, {1}, {1}}, "__name__ twice"},
        {{{"__name__", "m", NULL}, 1, {1}, {-INT64_MAX / 1000}}, "timestamp out of range"},
    };
    for (size_t i = 0; i < sizeof each / sizeof each[0]; i++) {
        d = decode(&each[i].ts, 1, NULL, b);
        cr_expect_eq(d->res.bad_series, 1, "%zu", i);
        cr_expect(strstr(d->res.first_bad, each[i].why), "%zu: %s", i, d->res.first_bad);
        cr_expect_eq(d->npoints, 0);
        free(d);
        mt_batch_reset(b);
    }
    mt_batch_free(b);
}

Test(rw, nan_kept_stale_markers_left_out)
{
    uint64_t bits = 0x7ff0000000000002ULL;
    double stale;
    memcpy(&stale, &bits, sizeof stale);
    mt_batch *b = mt_batch_new();
    tseries ts[] = {{{"__name__", "m", NULL}, 3, {NAN, stale, 1}, {1, 2, 3}}};
    decoded *d = decode(ts, 1, NULL, b);
    cr_assert_eq(d->rc, MT_OK, "%s", d->err);
    cr_expect_eq(d->res.stale, 1);
    cr_expect_eq(d->res.samples, 2);
    cr_expect_eq(d->res.bad_series, 0);
    cr_expect_eq(d->npoints, 2);
    free(d);
    mt_batch_free(b);
}

Test(rw, snappy_bomb_refused_from_its_header)
{
    /* a header announcing 2 GiB, then a few bytes: refused before anything is allocated */
    const unsigned char bomb[] = {0x80, 0x80, 0x80, 0x80, 0x08, 0x00, 'a', 'b'};
    size_t n;
    cr_assert_eq(mt_rw_inflated_len(bomb, sizeof bomb, &n), MT_OK);
    cr_expect_eq(n, (size_t)1 << 31);
    mt_batch *b = mt_batch_new();
    mt_rw_result res;
    char err[512];
    int rc = mt_rw_decode(bomb, sizeof bomb, 25u << 20, b, NULL, NULL, &res, err, sizeof err);
    cr_expect_eq(rc, MT_ELIMIT);
    cr_expect(strstr(err, "inflates to 2147483648 bytes, over the limit of 26214400"), "%s", err);
    cr_expect_eq(mt_batch_len(b), 0);
    /* a real one: 10 MB of zeros compress to ~470 KB */
    size_t big = 10u << 20, clen;
    char *zeros = calloc(1, big);
    char *body = compress(zeros, big, &clen);
    cr_expect_lt(clen, big / 20);
    rc = mt_rw_decode(body, clen, 1u << 20, b, NULL, NULL, &res, err, sizeof err);
    cr_expect_eq(rc, MT_ELIMIT);
    cr_expect(strstr(err, "inflates to 10485760 bytes"), "%s", err);
    free(zeros);
    free(body);
    mt_batch_free(b);
}

Test(rw, not_snappy_and_broken_snappy_are_parse_errors)
{
    mt_batch *b = mt_batch_new();
    mt_rw_result res;
    char err[512];
    const char lp[] = "cpu,host=a usage=1\n";
    cr_expect_eq(mt_rw_decode("", 0, 1u << 20, b, NULL, NULL, &res, err, sizeof err), MT_EPARSE);
    cr_expect(strstr(err, "not a snappy block"), "%s", err);
    int rc = mt_rw_decode(lp, sizeof lp - 1, 1u << 20, b, NULL, NULL, &res, err, sizeof err);
    cr_expect_eq(rc, MT_EPARSE, "%d", rc);
    /* a valid header, then bytes cut short */
    tseries ts[] = {{{"__name__", "up", "job", "prom", NULL}, 1, {1}, {1}}};
    size_t len, clen;
    uint8_t *raw = pack(ts, 1, &len);
    char *body = compress(raw, len, &clen);
    rc = mt_rw_decode(body, clen - 3, 1u << 20, b, NULL, NULL, &res, err, sizeof err);
    cr_expect_eq(rc, MT_EPARSE);
    cr_expect(strstr(err, "not a valid snappy block"), "%s", err);
    cr_expect_eq(mt_batch_len(b), 0);
    free(raw);
    free(body);
    mt_batch_free(b);
}

Test(rw, truncated_protobuf_never_half_added)
{
    tseries ts[] = {{{"__name__", "up", "job", "prom", NULL}, 2, {1, 2}, {1000, 2000}},
                    {{"__name__", "x", NULL}, 1, {3}, {3000}}};
    size_t len;
    uint8_t *raw = pack(ts, 2, &len);
    int parse_errors = 0;
    mt_batch *b = mt_batch_new();
    for (size_t cut = 0; cut < len; cut++) {
        decoded *d = decode_raw(raw, cut, NULL, b);
        if (d->rc == MT_EPARSE) {
            parse_errors++;
            cr_expect_eq(d->npoints, 0, "cut at %zu", cut);
            cr_expect(strstr(d->err, "not a protobuf prometheus.WriteRequest"), "%s", d->err);
        } else {
            /* cut between fields: a shorter, valid request */
            cr_expect_eq(d->rc, MT_OK, "cut at %zu", cut);
            cr_expect_eq(d->npoints, d->res.samples);
        }
        free(d);
        mt_batch_reset(b);
    }
    cr_expect_gt(parse_errors, (int)len / 2);
    /* a field of a wire type that is not its own */
    uint8_t wrong[] = {0x0d, 1, 2, 3, 4}; /* field 1 as fixed32 */
    decoded *d = decode_raw(wrong, sizeof wrong, NULL, b);
    cr_expect_eq(d->rc, MT_EPARSE);
    free(d);
    free(raw);
    mt_batch_free(b);
}

/* A WriteRequest of one series "m" with n labels: empty (2 bytes each) or l0, l1, ... = "v". */
static uint8_t *many_labels(size_t n, bool empty, size_t *len)
{
    size_t cap = 64 + n * 24;
    uint8_t *ts = malloc(cap), *p = ts;
    /* __name__ = "m" */
    *p++ = 0x0a, *p++ = 13, *p++ = 0x0a, *p++ = 8;
    memcpy(p, "__name__", 8), p += 8;
    *p++ = 0x12, *p++ = 1, *p++ = 'm';
    for (size_t i = 0; i < n; i++) {
        if (empty) {
            *p++ = 0x0a, *p++ = 0;
            continue;
        }
        char name[16];
        int nl = snprintf(name, sizeof name, "l%zu", i);
        *p++ = 0x0a, *p++ = (uint8_t)(2 + nl + 3);
        *p++ = 0x0a, *p++ = (uint8_t)nl;
        memcpy(p, name, (size_t)nl), p += nl;
        *p++ = 0x12, *p++ = 1, *p++ = 'v';
    }
    /* one sample: value 1.0, timestamp 1 */
    const uint8_t s[] = {0x12, 11, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 1};
    memcpy(p, s, sizeof s), p += sizeof s;
    size_t tl = (size_t)(p - ts);
    uint8_t *wr = malloc(tl + 16), *q = wr;
    *q++ = 0x0a;
    for (size_t v = tl;; v >>= 7) { /* varint length */
        *q++ = (uint8_t)(v & 0x7f) | (v >= 0x80 ? 0x80 : 0);
        if (v < 0x80) break;
    }
    memcpy(q, ts, tl);
    *len = (size_t)(q - wr) + tl;
    free(ts);
    return wr;
}

Test(rw, huge_label_counts)
{
    mt_batch *b = mt_batch_new();
    size_t len;
    /* 255 labels are taken, 256 are one too many */
    uint8_t *raw = many_labels(255, false, &len);
    decoded *d = decode_raw(raw, len, NULL, b);
    cr_expect_eq(d->rc, MT_OK, "%s", d->err);
    cr_expect_eq(d->res.samples, 1);
    free(d);
    free(raw);
    mt_batch_reset(b);
    raw = many_labels(256, false, &len);
    d = decode_raw(raw, len, NULL, b);
    cr_expect_eq(d->rc, MT_OK, "%s", d->err);
    cr_expect_eq(d->res.bad_series, 1);
    cr_expect(strstr(d->res.first_bad, "too many labels (limit 255)"), "%s", d->res.first_bad);
    cr_expect_eq(d->npoints, 0);
    free(d);
    free(raw);
    mt_batch_reset(b);
    /* 400,000 empty labels: 800 KB that protobuf-c would decode to ~26 MB, refused */
    raw = many_labels(400000, true, &len);
    d = decode_raw(raw, len, NULL, b);
    cr_expect_eq(d->rc, MT_ELIMIT);
    cr_expect(strstr(d->err, "too many labels or samples for its size"), "%s", d->err);
    cr_expect_eq(d->npoints, 0);
    free(d);
    free(raw);
    mt_batch_free(b);
}
