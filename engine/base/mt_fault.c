/* mt_fault.c — fault injection points for tests (contract in mt_fault.h). */
#include "mt_fault.h"

#ifdef MT_FAULT_INJECTION
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POINTS 8

static struct {
    const char *name;
    int countdown;
} armed[MAX_POINTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void mt_fault_set(const char *point, int nth)
{
    pthread_mutex_lock(&lock);
    int free_slot = -1;
    for (int i = 0; i < MAX_POINTS; i++) {
        if (armed[i].name && strcmp(armed[i].name, point) == 0) {
            armed[i].countdown = nth;
            free_slot = -2;
            break;
        }
        if (!armed[i].name && free_slot == -1) free_slot = i;
    }
    if (free_slot >= 0) armed[free_slot].name = point, armed[free_slot].countdown = nth;
    pthread_mutex_unlock(&lock);
}

/* MT_FAULT="point:n,...": the points a test armed in the environment of a process it started. */
static void from_env(void)
{
    static char spec[512]; /* the names armed point into it, for the life of the process */
    const char *env = getenv("MT_FAULT");
    if (!env || strlen(env) >= sizeof spec) return;
    memcpy(spec, env, strlen(env) + 1);
    for (char *save, *p = strtok_r(spec, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(p, ':');
        if (!colon) continue;
        *colon = '\0';
        mt_fault_set(p, atoi(colon + 1));
    }
}

bool mt_fault_hit(const char *point)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, from_env);
    bool hit = false;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_POINTS; i++) {
        if (armed[i].name && armed[i].countdown > 0 && strcmp(armed[i].name, point) == 0) {
            hit = --armed[i].countdown == 0;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return hit;
}

void mt_fault_crash(const char *point)
{
    if (!mt_fault_hit(point)) return;
    raise(SIGKILL); /* no handler, no atexit, no flush: as kill -9 */
    abort();        /* not reached */
}
#else
typedef int mt_fault_unused; /* ISO C wants a translation unit to declare something */
#endif
