/*
 * sdnotify.h — tell systemd how metrond is doing (tools/ only): the
 * service manager's readiness protocol of a Type=notify unit, through
 * Debian's libsystemd (sd_notify(3)).
 *
 * systemd passes the socket to tell in NOTIFY_SOCKET; without it (metrond
 * run by hand, by a test, under another supervisor) every call does
 * nothing. The variable is kept, so a process metrond started would not
 * see it either way (metrond starts none).
 */
#ifndef MT_SDNOTIFY_H
#define MT_SDNOTIFY_H

/*
 * Send "READY=1" and a STATUS= line saying what listens: the engine is open
 * and the listeners accept. Logs (warn) when the message could not be sent;
 * metrond runs on either way (systemd then stops it at TimeoutStartSec, and
 * the log says why).
 */
void mt_sdnotify_ready(const char *status);

/* Send "STOPPING=1": shutdown began (draining, sealing); logs a failure as above. */
void mt_sdnotify_stopping(void);

#endif
