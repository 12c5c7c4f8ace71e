/*
 * fuzz_influxql.c — libFuzzer target for the InfluxQL statements /query
 * answers (server/mt_influxql.h): any bytes as a query, with and without a
 * db parameter and a tenant, are answered 200 or 400 with a JSON object
 * (never a crash, a read out of bounds, or an empty answer), over an engine
 * in a directory of its own, opened once.
 */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mt_influxql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_influxql: %s\n", what);
        abort();
    }
}

typedef struct answer {
    size_t len;
    char first;
} answer;

static int collect(void *ud, const char *buf, size_t len)
{
    answer *a = ud;
    if (!a->len && len) a->first = buf[0];
    a->len += len;
    return 0;
}

static mt_engine *e;
static char dir[] = "/tmp/fuzz-influxql-XXXXXX";

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* At exit: the engine closed, its directory removed (a replay leaves nothing behind). */
static void cleanup(void)
{
    mt_engine_close(e);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static mt_engine *engine(void)
{
    if (e) return e;
    check(mkdtemp(dir) != NULL, "mkdtemp");
    atexit(cleanup);
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    check(mt_engine_open(&o, &e) == MT_OK, "the engine does not open");
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    if (!q) return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    /* the first byte picks the request's db parameter and tenant */
    unsigned pick = size ? data[0] : 0;
    const char *db = (pick & 3) == 0 ? NULL : (pick & 3) == 1 ? "metron" : "telegraf";
    const char *tenant = pick & 4 ? "aaaaaaaa-0000-4000-8000-000000000001" : NULL;
    answer a = {0};
    int status = 0;
    int rc = mt_influxql_run(engine(), q, db, "metron", tenant, collect, &a, &status);
    check(rc == MT_OK || rc == -ENOMEM, "an error other than memory");
    if (rc == MT_OK) {
        check(status == 200 || status == 400, "a status other than 200 or 400");
        check(a.len > 0 && a.first == '{', "an answer that is not a JSON object");
    }
    free(q);
    return 0;
}
