/*
 * cmd_delete.c — `metron delete`: a tenant, or some series' points in a
 * range, taken out of a data directory (mt_engine_delete). A running
 * metrond holds the directory: the delete then goes through it
 * (POST /api/v1/admin/delete), and this command says so instead; with
 * --url it sends that request itself (a tenant only: moving a tenant off a
 * node, docs/cluster.md).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_query.h"
#include "mt_time.h"

const char *const mt_cli_delete_help =
    "usage: metron delete --data DIR --tenant BID\n"
    "       metron delete --data DIR SELECTOR --from T --to T\n"
    "       metron delete --url URL --tenant BID [--keep-mirror]   (METRON_TOKEN: a system token)\n"
    "\n"
    "  --tenant BID   every series of that business_id, all time: hour files rewritten\n"
    "                 or unlinked, rollups recomputed or deleted, head points and keys\n"
    "                 gone; index.mdb then compacted (no free page keeps the keys); the\n"
    "                 tenant's PostgreSQL rows are deleted by the next metrond --postgres\n"
    "  --keep-mirror  leave the tenant's PostgreSQL rows: it moved to other nodes, which\n"
    "                 mirror the same rows (docs/cluster.md, \"Moving a tenant\")\n"
    "  SELECTOR       the points in [--from, --to) of the series it matches\n"
    "                 (metron query's selector); their hours' PostgreSQL summaries are\n"
    "                 mirrored again\n"
    "  T              RFC 3339, or relative: -2h, now\n"
    "  --url URL      a running metrond: POST URL/api/v1/admin/delete with tenant=BID\n"
    "                 and the token of METRON_TOKEN; prints its JSON answer\n"
    "  Crash-safe: each hour is either as before or as after. Needs the directory to\n"
    "  itself: beside a running metrond, use POST /api/v1/admin/delete (docs/operations.md).\n";

/* --url: the tenant deleted through the metrond at url. 0, or 1 with the URL and status. */
static int delete_remote(const char *url, const char *tenant, bool keep_mirror)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *auth = mt_cli_auth_header();
    char *enc = curl ? curl_easy_escape(curl, tenant, 0) : NULL;
    size_t ulen = strlen(url) + sizeof "/api/v1/admin/delete";
    char *u = malloc(ulen),
         *body = enc ? malloc(strlen(enc) + sizeof "tenant=" + sizeof "&keep_mirror=true") : NULL;
    int rc = 1;
    if (!curl || !enc || !u || !body) {
        fprintf(stderr, "metron: delete through %s: out of memory\n", url);
        goto out;
    }
    /* a trailing '/' of URL would make "//api/...", which metrond does not route */
    size_t n = strlen(url);
    while (n && url[n - 1] == '/') n--;
    snprintf(u, ulen, "%.*s/api/v1/admin/delete", (int)n, url);
    size_t blen = (size_t)sprintf(body, "tenant=%s%s", enc, keep_mirror ? "&keep_mirror=true" : "");
    curl_easy_setopt(curl, CURLOPT_URL, u);
    if (auth) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, auth);
    mt_cli_reply r;
    long status;
    CURLcode cc = mt_cli_post(curl, body, blen, &status, &r);
    if (cc != CURLE_OK)
        fprintf(stderr, "metron: %s: %s\n", u, curl_easy_strerror(cc));
    else if (status != 200)
        fprintf(stderr, "metron: %s answered %ld: %s\n", u, status, r.body);
    else {
        printf("%s\n", r.body);
        rc = 0;
    }
out:
    free(body);
    free(u);
    curl_free(enc);
    curl_slist_free_all(auth);
    if (curl) curl_easy_cleanup(curl);
    return rc;
}

int cmd_delete(int argc, char **argv)
{
    const char *url = NULL, *data = NULL, *tenant = NULL, *from_s = NULL, *to_s = NULL;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'}, {"tenant", required_argument, 0, 't'},
        {"from", required_argument, 0, 'f'}, {"to", required_argument, 0, 'T'},
        {"url", required_argument, 0, 'u'},  {"keep-mirror", no_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    int c;
    bool keep_mirror = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'u': url = optarg; break;
        case 't': tenant = optarg; break;
        case 'f': from_s = optarg; break;
        case 'T': to_s = optarg; break;
        case 'k': keep_mirror = true; break;
        case 'h': fputs(mt_cli_delete_help, stdout); return 0;
        default: return mt_cli_usage(NULL, mt_cli_delete_help);
        }
    }
    const char *sel = optind < argc ? argv[optind] : NULL;
    if (url) {
        if (data || sel || !tenant || !tenant[0])
            return mt_cli_usage("--url takes --tenant BID only (no --data, no SELECTOR)",
                                mt_cli_delete_help);
        return delete_remote(url, tenant, keep_mirror);
    }
    if (!data) return mt_cli_usage("--data or --url is required", mt_cli_delete_help);
    if (!tenant == !sel)
        return mt_cli_usage("give either --tenant BID or a SELECTOR", mt_cli_delete_help);
    if (tenant && !tenant[0]) return mt_cli_usage("--tenant is empty", mt_cli_delete_help);
    if (keep_mirror && !tenant)
        return mt_cli_usage("--keep-mirror goes with --tenant", mt_cli_delete_help);
    int64_t now = mt_now_ns(), from = 0, to = 0;
    if (sel && (!from_s || !to_s))
        return mt_cli_usage("a SELECTOR needs --from and --to", mt_cli_delete_help);
    if (sel && (!mt_time_parse(from_s, now, &from) || !mt_time_parse(to_s, now, &to) || from >= to))
        return mt_cli_usage("--from and --to must be times, --from before --to",
                            mt_cli_delete_help);

    mt_engine_options eo = mt_engine_options_default();
    eo.dir = data;
    eo.auto_seal = false;
    eo.outbox = true; /* the PostgreSQL mirror learns of it (metrond --postgres drains it) */
    char why[2048] = "";
    eo.why = why;
    eo.why_cap = sizeof why;
    mt_engine *e = NULL;
    int rc = mt_engine_open(&eo, &e);
    if (rc == -EBUSY || rc == -EWOULDBLOCK) {
        fprintf(stderr,
                "metron: %s is in use by a running metrond: delete through it with "
                "POST /api/v1/admin/delete (a system token), or stop it\n",
                data);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "metron: cannot open %s: %s\n", data, why[0] ? why : mt_strerror(rc));
        return 1;
    }
    mt_delete_spec sp = {.business_id = tenant, .keep_mirror = keep_mirror, .from = from, .to = to};
    uint32_t *ids = NULL;
    if (sel) {
        mt_query_spec qs = {.select = sel, .from = from, .to = to, .max_series = 10000000};
        mt_query *q = NULL;
        char err[512] = "";
        rc = mt_query_open(e, &qs, &q, err, sizeof err);
        if (rc) {
            fprintf(stderr, "metron delete: %s\n", err[0] ? err : mt_strerror(rc));
            mt_engine_close(e);
            return 2;
        }
        sp.nids = mt_query_series(q);
        ids = malloc((sp.nids ? sp.nids : 1) * sizeof *ids);
        if (!ids) rc = -ENOMEM;
        for (size_t i = 0; ids && i < sp.nids; i++) ids[i] = mt_query_series_id(q, i);
        mt_query_close(q);
        sp.ids = ids;
    }
    mt_delete_result r = {0};
    if (!rc) rc = mt_engine_delete(e, &sp, &r);
    mt_compact_result cr = {0};
    if (!rc && tenant) rc = mt_engine_compact(e, true, NULL, NULL, &cr);
    free(ids);
    mt_engine_close(e);
    if (rc) {
        fprintf(stderr,
                "metron: delete in %s failed: %s (nothing of it was committed unless "
                "the message says the compaction failed)\n",
                data, mt_strerror(rc));
        return 1;
    }
    printf("deleted: %zu series (%zu forgotten), %llu points; %zu hours rewritten, %zu hours "
           "removed, %zu head hours sealed first\n",
           r.series, r.series_forgotten, (unsigned long long)r.points_deleted, r.hours_rewritten,
           r.hours_dropped, r.hours_sealed);
    return 0;
}
