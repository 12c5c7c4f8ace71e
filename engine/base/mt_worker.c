/* mt_worker.c — see mt_worker.h. */
#include "mt_worker.h"

#include "mt_err.h"

int mt_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc) return -rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (!rc) rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return -rc;
}

struct timespec mt_deadline_after(int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ns < 0) ns = 0;
    int64_t at = ts.tv_nsec + ns % 1000000000;
    ts.tv_sec += (time_t)(ns / 1000000000 + at / 1000000000);
    ts.tv_nsec = (long)(at % 1000000000);
    return ts;
}

int mt_worker_init(mt_worker *w)
{
    *w = (mt_worker){.stop = false};
    int rc = pthread_mutex_init(&w->lock, NULL);
    if (rc) return -rc;
    rc = mt_cond_init_monotonic(&w->wake);
    if (rc) pthread_mutex_destroy(&w->lock);
    return rc;
}

int mt_worker_start(mt_worker *w, void *(*fn)(void *), void *arg)
{
    if (w->started) return MT_EINVAL;
    int rc = pthread_create(&w->thread, NULL, fn, arg);
    if (rc) return -rc;
    w->started = true;
    return MT_OK;
}

void mt_worker_wait_unsafe(mt_worker *w, int64_t ns)
{
    if (w->stop || ns <= 0) return;
    struct timespec ts = mt_deadline_after(ns);
    pthread_cond_timedwait(&w->wake, &w->lock, &ts);
}

bool mt_worker_nap(mt_worker *w, int64_t ns)
{
    pthread_mutex_lock(&w->lock);
    mt_worker_wait_unsafe(w, ns);
    bool stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

bool mt_worker_stopping(mt_worker *w)
{
    pthread_mutex_lock(&w->lock);
    bool stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

void mt_worker_wake(mt_worker *w)
{
    pthread_mutex_lock(&w->lock);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

void mt_worker_stop(mt_worker *w)
{
    if (!w->started) return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->started = false;
}

void mt_worker_destroy(mt_worker *w)
{
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
}
