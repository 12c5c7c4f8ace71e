/*
 * cmd_maint.c — `metron retention` and `metron compact`: the maintenance
 * metrond also runs on its own schedule, by hand on a data directory.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "metron_cli.h"
#include "mt_time.h"
#include "policy.h"

const char *const mt_cli_retention_help =
    "usage: metron retention show|apply --data DIR [--config FILE] [--dry-run] [--now T]\n"
    "\n"
    "  show       the policy, and what applying it now would remove (a dry run; metrond\n"
    "             may be running)\n"
    "  apply      remove it: hours past every policy are unlinked whole, hours that mix\n"
    "             policies are rewritten without the expired series, old rollups deleted.\n"
    "             Needs the directory to itself: a running metrond applies the same policy\n"
    "             every retention_interval.\n"
    "  --config FILE  the [retention] section (metrond's config file; docs/operations.md);\n"
    "                 without it, the defaults: raw points 90d, rollups 400d\n"
    "  --dry-run      apply: say what would go, change nothing\n"
    "  --now T        the time to apply it at (default now)\n";

const char *const mt_cli_compact_help =
    "usage: metron compact --data DIR [--no-index]\n"
    "\n"
    "  Merge the late points of sealed hours (backfill) into one new file per hour,\n"
    "  then rewrite index.mdb without its free pages (LMDB's file never shrinks on\n"
    "  its own) and swap it in atomically. Needs the directory to itself: a running\n"
    "  metrond compacts on its own every compact_interval.\n"
    "  --no-index     only the hours\n";

/* Open DIR for writing, or say clearly why not (a running metrond holds it). */
static mt_engine *open_rw(const char *dir, const char *job)
{
    mt_engine_options eo = mt_engine_options_default();
    eo.dir = dir;
    eo.auto_seal = false;
    char why[2048] = "";
    eo.why = why;
    eo.why_cap = sizeof why;
    mt_engine *e = NULL;
    int rc = mt_engine_open(&eo, &e);
    if (rc == -EBUSY || rc == -EWOULDBLOCK)
        fprintf(stderr,
                "metron: %s is in use by a running metrond: it runs %s on its own schedule; "
                "stop it to run %s by hand\n",
                dir, job, job);
    else if (rc)
        fprintf(stderr, "metron: cannot open %s: %s\n", dir, why[0] ? why : mt_strerror(rc));
    return rc ? NULL : e;
}

static void print_result(const mt_retention_result *r, bool dry)
{
    printf("%s: %zu whole hours, %zu hours rewritten, %llu series-hours (%llu points), "
           "rollups of %zu hours; %llu bytes of hour files%s\n",
           dry ? "would remove" : "removed", r->hours_dropped, r->hours_rewritten,
           (unsigned long long)r->chunks_dropped, (unsigned long long)r->points_dropped,
           r->rollup_hours_dropped, (unsigned long long)r->bytes_freed,
           dry && r->hours_rewritten ? " (plus what rewriting frees)" : "");
}

int cmd_retention(int argc, char **argv)
{
    const char *data = NULL, *config = NULL, *now_s = NULL;
    bool dry = false;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'}, {"config", required_argument, 0, 'c'},
        {"now", required_argument, 0, 'n'},  {"dry-run", no_argument, 0, 'y'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'c': config = optarg; break;
        case 'n': now_s = optarg; break;
        case 'y': dry = true; break;
        case 'h': fputs(mt_cli_retention_help, stdout); return 0;
        default: return mt_cli_usage("unknown option", mt_cli_retention_help);
        }
    }
    const char *what = optind < argc ? argv[optind] : "";
    bool show = !strcmp(what, "show");
    if ((!show && strcmp(what, "apply")) || optind + 1 != argc || !data)
        return mt_cli_usage("retention needs show or apply, and --data DIR", mt_cli_retention_help);
    int64_t now = mt_now_ns();
    if (now_s && !mt_time_parse(now_s, mt_now_ns(), &now))
        return mt_cli_usage("--now is a time (RFC 3339, epoch seconds)", mt_cli_retention_help);
    mt_policy p;
    mt_policy_init(&p);
    char err[512];
    if (config && mt_policy_load(&p, config, err, sizeof err)) {
        fprintf(stderr, "metron: %s\n", err);
        mt_policy_free(&p);
        return 2;
    }
    dry = dry || show;
    mt_engine *e = show ? mt_cli_open_ro(data) : open_rw(data, "retention");
    if (!e) {
        mt_policy_free(&p);
        return 1;
    }
    if (show) mt_policy_print(&p, stdout);
    mt_retention_result r;
    int rc = mt_engine_retention(e, &p.r, now, dry, &r);
    mt_engine_close(e);
    mt_policy_free(&p);
    if (rc) {
        fprintf(stderr, "metron: retention failed, nothing removed: %s\n", mt_strerror(rc));
        return 1;
    }
    print_result(&r, dry);
    return fflush(stdout) ? 1 : 0;
}

/* A progress line on a terminal: phase, a bar, done/total. */
static void progress(void *ud, const char *phase, uint64_t done, uint64_t total)
{
    (void)ud;
    if (!isatty(STDERR_FILENO)) return;
    int width = 30, fill = total ? (int)(done * (uint64_t)width / total) : width;
    fprintf(stderr, "\r%-6s [", phase);
    for (int i = 0; i < width; i++) fputs(i < fill ? "#" : ".", stderr);
    fprintf(stderr, "] %llu/%llu%s", (unsigned long long)done, (unsigned long long)total,
            done == total ? "\n" : "");
}

int cmd_compact(int argc, char **argv)
{
    const char *data = NULL;
    bool index = true;
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"no-index", no_argument, 0, 'x'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'x')
            index = false;
        else if (c == 'h')
            return fputs(mt_cli_compact_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_compact_help);
    }
    if (!data || optind != argc)
        return mt_cli_usage("compact needs --data DIR", mt_cli_compact_help);
    mt_engine *e = open_rw(data, "compaction");
    if (!e) return 1;
    mt_compact_result r;
    int rc = mt_engine_compact(e, index, progress, NULL, &r);
    mt_engine_close(e);
    if (rc) {
        fprintf(stderr, "metron: compaction failed: %s\n", mt_strerror(rc));
        return 1;
    }
    printf("compacted: %zu hours merged with their late points", r.hours_rewritten);
    if (index)
        printf("; index.mdb %.1f MB -> %.1f MB", (double)r.index_before / 1e6,
               (double)r.index_after / 1e6);
    putchar('\n');
    return fflush(stdout) ? 1 : 0;
}
