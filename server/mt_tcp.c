/*
 * mt_tcp.c — raw line protocol over TCP (Telegraf's socket_writer,
 * VictoriaMetrics' -influxListenAddr): newline-delimited lines, many
 * connections, lines split across reads. There is no reply channel: a bad
 * line is counted and logged (rate-limited) and the stream goes on; the
 * points of each read are one batch, durable within the writer's group
 * commit (milliseconds).
 */
#include <errno.h>
#include <stdlib.h>

#include "mt_server_int.h"

static int tcp_line(void *ud, const mt_lp_line *l)
{
    mt_conn *c = ud;
    int rc = mt_server_take_line(c, l, NULL, NULL);
    if (rc == -ENOMEM) return rc;
    if (rc) {
        c->rejected++;
        mt_log_limited(&c->srv->bad_line_log, 5, MT_LOG_WARN,
                       "msg=\"rejected line\" peer=%s line=%llu reason=\"series key too long\"",
                       c->peer, (unsigned long long)l->lineno);
        return 0;
    }
    c->lines++;
    return 0;
}

static void tcp_error(void *ud, const mt_lp_error *e)
{
    mt_conn *c = ud;
    c->rejected++;
    mt_server_bad_line(c->srv, c->peer, e);
}

static void flush(mt_conn *c)
{
    if (!c->batch || mt_batch_len(c->batch) == 0) return;
    if (mt_server_submit(c->srv, c, c->batch) == MT_OK)
        c->batch = NULL;
    else
        mt_batch_reset(c->batch); /* the engine is closing: nothing can be written */
}

static void tcp_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    mt_conn *c = s->data;
    mt_lp_handler h = {tcp_line, tcp_error, c};
    if (n > 0) {
        c->bytes += (uint64_t)n;
        c->srv->st.bytes_received[LISTENER_TCP] += (uint64_t)n;
        mt_conn_touch(c);
        if (mt_lp_feed(c->lp, buf->base, (size_t)n, mt_now_ns(), &h) == -ENOMEM) {
            mt_log(MT_LOG_ERROR, "msg=\"out of memory: connection closed\" peer=%s", c->peer);
            mt_conn_close(c);
        } else {
            flush(c);
        }
    } else if (n < 0) {
        mt_lp_finish(c->lp, mt_now_ns(), &h); /* a last line without its newline */
        flush(c);
        if (n != UV_EOF)
            mt_log(MT_LOG_INFO, "msg=\"connection error\" peer=%s err=%s", c->peer,
                   uv_strerror((int)n));
        mt_conn_close(c);
    }
    mt_conn_read_done(c, buf);
}

static void tcp_job_done(mt_job *job)
{
    mt_batch_free(job->b);
    if (job->conn) mt_conn_job_released(job->conn);
    free(job);
}

static void tcp_free(mt_conn *c)
{
    mt_batch_free(c->batch);
}

/* A connection's line parser, with the listener's precision and limits. */
static int tcp_init(mt_conn *c)
{
    mt_lp_options o = mt_lp_options_default();
    o.precision = c->srv->cfg.lp_precision;
    if (c->srv->cfg.limits.max_line_len) o.limits = c->srv->cfg.limits;
    return mt_lp_parser_new(&o, &c->lp);
}

/* No deadlines, and refused at the limit: line-protocol streams are long-lived by design. */
const mt_conn_ops mt_tcp_ops = {
    .name = "tcp",
    .init = tcp_init,
    .on_read = tcp_on_read,
    .job_done = tcp_job_done,
    .free = tcp_free,
};
