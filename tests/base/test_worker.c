/* test_worker.c — engine/base/mt_worker.h: monotonic deadlines, naps cut short, stop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "mt_err.h"
#include "mt_worker.h"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

Test(worker, a_monotonic_deadline_waits_its_time_on_the_monotonic_clock)
{
    pthread_cond_t c;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    cr_assert_eq(mt_cond_init_monotonic(&c), 0);
    int64_t t0 = mono_ns();
    struct timespec ts = mt_deadline_after(60000000);
    int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    cr_expect_geq(at - t0, 60000000);
    cr_expect_lt(at - t0, 1000000000, "the deadline is on the monotonic clock, not the wall's");
    pthread_mutex_lock(&m);
    int rc = 0;
    while (rc != ETIMEDOUT) rc = pthread_cond_timedwait(&c, &m, &ts);
    pthread_mutex_unlock(&m);
    int64_t took = mono_ns() - t0;
    /* a condition on the wall clock would take this (much smaller) time as long past */
    cr_expect_geq(took, 60000000, "waited %lld ns", (long long)took);
    cr_expect_lt(took, 5000000000LL, "waited %lld ns", (long long)took);
    pthread_cond_destroy(&c);
}

typedef struct napper {
    mt_worker w;
    atomic_int rounds;
} napper;

static void *nap_long(void *arg)
{
    napper *n = arg;
    for (;;) {
        atomic_fetch_add(&n->rounds, 1);
        if (mt_worker_nap(&n->w, 60 * 1000000000LL)) break;
    }
    return NULL;
}

static bool wait_rounds(napper *n, int want)
{
    for (int64_t end = mono_ns() + 5000000000LL; mono_ns() < end;) {
        if (atomic_load(&n->rounds) >= want) return true;
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    return false;
}

Test(worker, wake_cuts_a_nap_short_and_stop_joins_a_napping_thread)
{
    napper n = {.rounds = 0};
    cr_assert_eq(mt_worker_init(&n.w), 0);
    cr_assert_eq(mt_worker_start(&n.w, nap_long, &n), 0);
    cr_expect_eq(mt_worker_start(&n.w, nap_long, &n), MT_EINVAL);
    cr_assert(wait_rounds(&n, 1));
    mt_worker_wake(&n.w);
    cr_expect(wait_rounds(&n, 2), "a woken nap of 60 s ends: %d rounds", atomic_load(&n.rounds));
    int64_t t0 = mono_ns();
    mt_worker_stop(&n.w);
    cr_expect_lt(mono_ns() - t0, 5000000000LL, "stop does not wait out the nap");
    cr_expect(mt_worker_stopping(&n.w));
    cr_expect(mt_worker_nap(&n.w, 60 * 1000000000LL), "a stopped worker does not nap");
    mt_worker_destroy(&n.w);
}

Test(worker, stop_and_destroy_are_fine_on_a_worker_that_never_started)
{
    mt_worker w;
    cr_assert_eq(mt_worker_init(&w), 0);
    cr_expect(!mt_worker_stopping(&w));
    int64_t t0 = mono_ns();
    cr_expect(!mt_worker_nap(&w, 20000000), "not stopping");
    cr_expect_geq(mono_ns() - t0, 20000000, "the nap took its time");
    mt_worker_stop(&w);
    mt_worker_destroy(&w);
}
