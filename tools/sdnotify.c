/* sdnotify.c — metrond's readiness for systemd (sdnotify.h). */
#include "sdnotify.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "mt_log.h"

/* sd_notify: > 0 sent, 0 no NOTIFY_SOCKET (nothing to do), < 0 -errno. */
static void send_state(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        mt_log(MT_LOG_WARN, "msg=\"cannot tell systemd\" state=\"%.*s\" err=\"%s\"",
               (int)strcspn(state, "\n"), state, strerror(-rc));
}

void mt_sdnotify_ready(const char *status)
{
    char msg[512];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status);
    send_state(msg);
}

void mt_sdnotify_stopping(void)
{
    send_state("STOPPING=1\nSTATUS=stopping: draining and sealing");
}
