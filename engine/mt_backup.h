/*
 * mt_backup.h — online backup and restore of a data directory: part of the
 * engine's façade (mt_engine.h), in a header of its own.
 *
 * A backup is a consistent snapshot taken while metrond writes: LMDB's copy
 * of index.mdb (series, postings, the sealed hours and the head log, so
 * points acknowledged but not yet sealed are in it too) plus the hour files
 * that copy names, hard-linked when the backup is on the data's file system
 * (generations are immutable) or copied, and a MANIFEST listing each file
 * with its size and checksum. Nothing is locked against the writer: the
 * backup holds an LMDB read transaction from before the copy until every
 * named file is in place, and the writer unlinks a replaced or expired
 * generation only once no reader's snapshot is older than the transaction
 * that replaced it (mt_engine_bury), as for `metron query --data`. Should a
 * named file vanish anyway (a writer without memory to defer an unlink, or
 * one that compacted index.mdb meanwhile and so reads a new reader table),
 * the attempt is thrown away and a fresh snapshot taken (opt.retries).
 *
 * Layout of a backup destination DEST (a directory of snapshots):
 *   DEST/YYYYMMDDTHHMMSSZ/index.mdb                  the copy (without free pages)
 *   DEST/YYYYMMDDTHHMMSSZ/blocks/YYYY/MM/DD/HH.G.blk the hour files it names
 *   DEST/YYYYMMDDTHHMMSSZ/MANIFEST                   written last: the snapshot is whole
 *   DEST/LATEST                                      the newest whole snapshot's name
 * Each snapshot is a data directory by itself and stays as it was written.
 * Incremental by hour: a hour file whose (hour, generation, size) a previous
 * snapshot already holds is hard-linked from it, with its checksum taken
 * from its manifest; only the hours whose generation changed are linked or
 * copied from the data directory (docs/operations.md, "Backup").
 *
 * MANIFEST (text, one record a line, fields separated by one space):
 *   metron-backup 1
 *   created <UTC time, RFC 3339>
 *   format <index.mdb's format version>
 *   index index.mdb <bytes> <XXH3-64, 16 hex digits>
 *   hour <hour index> <generation> <bytes> <XXH3-64> <path under the snapshot>   (ascending)
 *   end <number of hour lines> <XXH3-64 of every byte before this line>
 *
 * Threads: each call is independent; any thread.
 */
#ifndef MT_BACKUP_H
#define MT_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_BACKUP_MANIFEST "MANIFEST"
#define MT_BACKUP_LATEST   "LATEST"

typedef struct mt_backup_options {
    const char *incremental_from; /* a previous snapshot (or a DEST: its LATEST) to link
                                     unchanged hours from; NULL: DEST's LATEST, if any
                                     and still there (else a full backup) */
    bool full;                    /* link or copy every hour from the data dir, no previous */
    bool copy;                    /* never hard-link from the data dir: copy (a backup on the
                                     data's disk then shares no inode with it) */
    unsigned retries;             /* fresh snapshots after a named file vanished (default 3) */
    char *why;                    /* on failure: what and where, for people (why_cap bytes) */
    size_t why_cap;
} mt_backup_options;

typedef struct mt_backup_stats {
    char snapshot[32];     /* the snapshot's name under DEST */
    char previous[4096];   /* the snapshot unchanged hours came from ("" none) */
    uint32_t format;       /* index.mdb's format version */
    uint64_t index_bytes;  /* bytes of the index.mdb copy */
    uint64_t hours;        /* hour files in the snapshot */
    uint64_t hours_copied; /* ... copied from the data dir */
    uint64_t bytes_copied;
    uint64_t hours_linked; /* ... hard-linked from the data dir */
    uint64_t bytes_linked;
    uint64_t hours_reused; /* ... unchanged since the previous snapshot, linked from it */
    uint64_t bytes_reused;
    uint64_t head_records; /* head log records (acknowledged, unsealed points) in the copy */
    uint32_t retries;      /* snapshots thrown away because a named file vanished */
} mt_backup_stats;

/*
 * Back the data directory dir up into a new snapshot under dest (created if
 * missing), beside a metrond writing dir or with nothing running. dir is
 * only read (LMDB's reader table aside). The new snapshot is complete once
 * its MANIFEST exists, and LATEST names it after that; a failed backup
 * removes its partial snapshot and leaves earlier ones and LATEST as they
 * were. *st (may be NULL) says what was done. MT_OK; -ENOENT (no index.mdb
 * in dir: not a data directory, or nothing committed yet); MT_ECORRUPT (the
 * copy failed its checksums, or a previous snapshot's manifest did);
 * MT_EFORMAT (a newer format than this build reads); -EAGAIN (named files
 * kept vanishing, retries exhausted); -EEXIST (a snapshot of that second
 * exists); -errno of the file system. opt->why names the file concerned.
 */
int mt_engine_backup(const char *dir, const char *dest, const mt_backup_options *opt,
                     mt_backup_stats *st);

typedef struct mt_restore_stats {
    char snapshot[4096];   /* the snapshot restored (from, or from/LATEST's) */
    uint64_t hours;        /* hour files restored */
    uint64_t bytes;        /* bytes written, index.mdb included */
    uint64_t sealed_hours; /* hours the restored index names (== hours) */
    uint64_t series;       /* series in the restored index */
    uint64_t head_points;  /* unsealed points in its head log */
} mt_restore_stats;

/*
 * Restore a snapshot into dir, which must not exist or be empty. from is a
 * snapshot directory or a DEST (its LATEST). The manifest is checked (its
 * own checksum, its records), every file copied and its copy's size and
 * checksum compared with the manifest, everything fsynced, index.mdb placed
 * last; then dir is opened read-only as metrond's reader would and must
 * name exactly the manifest's hours and report no damage. On failure what
 * was written into dir is removed. MT_OK and *st (may be NULL); -ENOTEMPTY
 * (dir holds something); -ENOENT (no snapshot at from); MT_EFORMAT (an
 * unknown manifest version); MT_ECORRUPT (a manifest, file or the restored
 * index that does not check: why names it); -errno.
 */
int mt_engine_restore(const char *from, const char *dir, char *why, size_t why_cap,
                      mt_restore_stats *st);

#endif
