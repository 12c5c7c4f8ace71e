/*
 * cmd_backup.c — `metron backup` and `metron restore`: an online snapshot of
 * a data directory beside a running metrond, incremental by hour, and its
 * restore into a new directory (engine/mt_backup.h).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "metron_cli.h"
#include "mt_backup.h"

const char *const mt_cli_backup_help =
    "usage: metron backup --data DIR --to DEST [--incremental-from PREV | --full] [--copy]\n"
    "\n"
    "  A consistent snapshot of DIR, taken while metrond writes to it (nothing is\n"
    "  stopped): LMDB's copy of index.mdb, with the points acknowledged but not yet\n"
    "  sealed, and the hour files it names, into a new directory DEST/YYYYMMDDTHHMMSSZ/\n"
    "  with a MANIFEST (sizes and checksums); DEST/LATEST names it once it is whole.\n"
    "  Incremental by hour: an hour whose file did not change since the previous\n"
    "  snapshot (DEST's LATEST, or --incremental-from PREV) is hard-linked from it; the\n"
    "  others are hard-linked from DIR when DEST is on the same file system, else\n"
    "  copied. --copy: always copy from DIR (no inode shared with the live data).\n"
    "  --full: ignore previous snapshots. Run it where the data is (--url: not yet).\n"
    "  Prints one line: the snapshot and what was copied. Exit 0 done, 1 failed.\n";

const char *const mt_cli_restore_help =
    "usage: metron restore --from DEST|SNAPSHOT --data NEWDIR\n"
    "\n"
    "  Restore a snapshot (DEST's LATEST, or the snapshot directory given) into\n"
    "  NEWDIR, which must not exist or be empty: the manifest is checked, every file\n"
    "  copied and its checksum compared, index.mdb placed last, and NEWDIR opened as\n"
    "  metrond would read it. Then start metrond with --data NEWDIR. Nothing is left\n"
    "  in NEWDIR when it fails. Exit 0 done, 1 failed.\n";

int cmd_backup(int argc, char **argv)
{
    const char *data = NULL, *to = NULL;
    mt_backup_options bo = {0};
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"to", required_argument, 0, 't'},
                                         {"incremental-from", required_argument, 0, 'i'},
                                         {"full", no_argument, 0, 'f'},
                                         {"copy", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 't')
            to = optarg;
        else if (c == 'i')
            bo.incremental_from = optarg;
        else if (c == 'f')
            bo.full = true;
        else if (c == 'c')
            bo.copy = true;
        else if (c == 'h')
            return fputs(mt_cli_backup_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_backup_help);
    }
    if (!data || !to)
        return mt_cli_usage("backup needs --data DIR and --to DEST", mt_cli_backup_help);
    if (bo.full && bo.incremental_from)
        return mt_cli_usage("--full and --incremental-from exclude each other", mt_cli_backup_help);
    char why[4096] = "";
    bo.why = why;
    bo.why_cap = sizeof why;
    mt_backup_stats st;
    int rc = mt_engine_backup(data, to, &bo, &st);
    if (rc) {
        fprintf(stderr, "metron: backup of %s failed: %s%s%s\n", data,
                rc == -ENOENT && !why[0] ? "no Metron data there" : mt_strerror(rc),
                why[0] ? ": " : "", why);
        return 1;
    }
    printf("backup %s/%s: %" PRIu64 " hours (%" PRIu64 " copied, %" PRIu64 " bytes; %" PRIu64
           " linked, %" PRIu64 " bytes; %" PRIu64 " unchanged, %" PRIu64
           " bytes), index.mdb %" PRIu64 " bytes (format %u, %" PRIu64
           " head records), %u retries%s%s\n",
           to, st.snapshot, st.hours, st.hours_copied, st.bytes_copied, st.hours_linked,
           st.bytes_linked, st.hours_reused, st.bytes_reused, st.index_bytes, st.format,
           st.head_records, st.retries, st.previous[0] ? ", previous " : "", st.previous);
    return 0;
}

int cmd_restore(int argc, char **argv)
{
    const char *from = NULL, *data = NULL;
    static const struct option opts[] = {{"from", required_argument, 0, 'f'},
                                         {"data", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'f')
            from = optarg;
        else if (c == 'd')
            data = optarg;
        else if (c == 'h')
            return fputs(mt_cli_restore_help, stdout), 0;
        else
            return mt_cli_usage("unknown option", mt_cli_restore_help);
    }
    if (!from || !data)
        return mt_cli_usage("restore needs --from DEST and --data NEWDIR", mt_cli_restore_help);
    char why[4096] = "";
    mt_restore_stats st;
    int rc = mt_engine_restore(from, data, why, sizeof why, &st);
    if (rc) {
        fprintf(stderr, "metron: restore of %s failed: %s%s%s\n", from, mt_strerror(rc),
                why[0] ? ": " : "", why);
        return 1;
    }
    printf("restored %s into %s: %" PRIu64 " hours, %" PRIu64 " bytes, %" PRIu64 " series, %" PRIu64
           " points not yet sealed\n",
           st.snapshot, data, st.hours, st.bytes, st.series, st.head_points);
    return 0;
}
