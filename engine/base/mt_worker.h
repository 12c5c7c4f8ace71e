/*
 * mt_worker.h — a background thread that naps between rounds and stops on
 * request, and the monotonic-clock waits it is built on.
 *
 * Deadlines are on CLOCK_MONOTONIC (pthread_condattr_setclock): a wall clock
 * stepped by NTP or by hand neither wakes a nap early nor stretches it.
 *
 * mt_worker is a plain struct embedded in its owner, not an opaque handle:
 * its lock is the owner's lock too, guarding the owner's fields that the
 * thread shares with callers. Lifecycle: mt_worker_init, mt_worker_start,
 * mt_worker_stop (joins), mt_worker_destroy. mt_worker_stop and
 * mt_worker_destroy are valid on a worker that never started.
 *
 * Threads: mt_worker_nap and mt_worker_stopping belong to the worker thread;
 * mt_worker_wake and mt_worker_stop to any other. None may be called with
 * the lock held, but mt_worker_wait_unsafe, which needs it.
 */
#ifndef MT_WORKER_H
#define MT_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Initialize *c to time its waits on CLOCK_MONOTONIC. MT_OK or -errno. */
int mt_cond_init_monotonic(pthread_cond_t *c);

/* The CLOCK_MONOTONIC time ns nanoseconds (>= 0) from now, for pthread_cond_timedwait on a
   condition made by mt_cond_init_monotonic. */
struct timespec mt_deadline_after(int64_t ns);

typedef struct mt_worker {
    pthread_mutex_t lock; /* the owner's lock as well: guards stop and the owner's shared fields */
    pthread_cond_t wake;  /* signalled by mt_worker_wake and mt_worker_stop; monotonic clock */
    pthread_t thread;
    bool stop;    /* under lock: the thread should return */
    bool started; /* mt_worker_start succeeded: stop joins */
} mt_worker;

/* Make the lock and the condition. MT_OK or -errno (nothing to destroy then). */
int mt_worker_init(mt_worker *w);

/* Run fn(arg) on a new thread. MT_OK, MT_EINVAL if it already started, or -errno. */
int mt_worker_start(mt_worker *w, void *(*fn)(void *), void *arg);

/* On the worker: sleep ns (<= 0: not at all) unless stopped or woken first. True when
   stopping. */
bool mt_worker_nap(mt_worker *w, int64_t ns);

/* With w->lock held: wait up to ns on wake (the lock given up meanwhile), unless stopping. */
void mt_worker_wait_unsafe(mt_worker *w, int64_t ns);

/* True once mt_worker_stop was called. */
bool mt_worker_stopping(mt_worker *w);

/* Cut the worker's current nap short. */
void mt_worker_wake(mt_worker *w);

/* Ask the thread to stop, wake it and join it (if it started). */
void mt_worker_stop(mt_worker *w);

/* Free the lock and the condition; after mt_worker_stop, or if the thread never started. */
void mt_worker_destroy(mt_worker *w);

#endif
