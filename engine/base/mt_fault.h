/*
 * mt_fault.h — test-only fault injection. In a build with
 * MT_FAULT_INJECTION defined (the test build), mt_fault_hit(point) returns
 * true on the n-th call for a point armed with mt_fault_set; the code at
 * that point then fails as the real operation would (-EIO from an fsync or
 * a commit). In other builds mt_fault_hit is a constant false and costs
 * nothing.
 *
 * Points: "kv.commit" (LMDB commit), "hf.fsync" and "hf.rename" (hour
 * files), "webhook.sign" (a webhook's HMAC), "backup.vanish" (an hour file
 * a backup's snapshot names is gone when it is linked: mt_backup.c retries),
 * "maint.stall" (metrond's retention job takes 8 s more, as a long
 * compaction would: alert rounds must go on meanwhile).
 *
 * Crash points (mt_fault_crash): the process kills itself with SIGKILL
 * there, as a kill -9 or a power cut at that step would, so that a test
 * can fork a child, crash it at a chosen step and reopen what it left:
 * "delete.rewritten" (mt_engine_delete: the new hour files are written and
 * durable, the transaction that names them is not committed) and
 * "delete.committed" (committed, not yet published: the replaced files are
 * still there).
 *
 * A process started by a test (metrond) is armed from its environment:
 * MT_FAULT="point:n[,point:n...]" is read once, at the first mt_fault_hit,
 * as if mt_fault_set(point, n) had been called for each.
 */
#ifndef MT_FAULT_H
#define MT_FAULT_H

#include <stdbool.h>

#ifdef MT_FAULT_INJECTION
/* Make the nth (1-based) next call of point fail; 0 disarms. Thread-safe. */
void mt_fault_set(const char *point, int nth);
bool mt_fault_hit(const char *point);
/* If point is armed and this is its nth call: raise(SIGKILL), never returning. */
void mt_fault_crash(const char *point);
#else
static inline void mt_fault_set(const char *point, int nth)
{
    (void)point, (void)nth;
}
static inline bool mt_fault_hit(const char *point)
{
    (void)point;
    return false;
}
static inline void mt_fault_crash(const char *point)
{
    (void)point;
}
#endif

#endif
