/*
 * mt_kinds.c — which kind of connection each listener serves: the one place
 * that names the kinds, so that mt_server.c reaches a connection's kind
 * only through its mt_conn_ops (mt_server_int.h).
 */
#include "mt_server_int.h"

const mt_conn_ops *const mt_listener_kinds[LISTENER__COUNT] = {
    [LISTENER_TCP] = &mt_tcp_ops,
    [LISTENER_UDP] = NULL, /* datagrams, no connections: mt_server.c reads them itself */
    [LISTENER_HTTP] = &mt_http_ops,
};
