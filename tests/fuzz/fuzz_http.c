/*
 * fuzz_http.c — libFuzzer target for the HTTP request path: raw bytes
 * through http-parser with server/mt_http.c's own settings and callbacks
 * (URL, headers, body limits, authorization on the headers with a real
 * tokens file: Token, Bearer, Basic and ?p=), then, for each complete
 * request, what the handlers read from it before touching the engine: the
 * query parameters and, for a gzip body, the inflated body.
 *
 * The seam: this file includes mt_http.c, so the static callbacks are
 * driven as they are, with no hook in the production file (the library's
 * mt_http.o is then never linked in: every symbol it defines is defined
 * here first). The connection is real but unconnected (a uv_tcp_t that was
 * never opened): the one write the parser path makes, "100 Continue",
 * fails with EBADF as on a closed peer. Requests are not answered: that
 * needs the engine and the event loop, which the socket tests drive.
 *
 * First input byte: bit 0 = tokens configured, bit 1 = /metrics public;
 * the rest is what the client sends, pipelined requests included.
 */
#include "../../server/mt_http.c"

#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mt_auth *fz_tokens(void)
{
    char path[] = "/tmp/fuzz_http_tokens.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) abort();
    char a[65], s[65], text[256];
    mt_auth_hash_hex("tenant-token", 12, a);
    mt_auth_hash_hex("system-token", 12, s);
    int n = snprintf(text, sizeof text, "7f3c2a10-0000-4000-8000-000000000001 %s\n* %s\n", a, s);
    if (write(fd, text, (size_t)n) != n) abort();
    close(fd);
    mt_auth *auth;
    char err[256];
    if (mt_auth_load(path, &auth, err, sizeof err)) abort();
    unlink(path);
    return auth;
}

/* What the handlers take from a complete request before the engine. */
static void fz_request(http_state *hs)
{
    static const char *names[] = {"db",     "precision", "p",   "u",    "org",  "bucket", "q",
                                  "format", "start",     "end", "step", "rule", "status", "limit"};
    char v[256];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (query_param(hs->url, names[i], v, sizeof v)) (void)strlen(v);
    (void)path_need(hs->conn->srv, hs->url);
    (void)read_tenant(hs);
    if (!hs->too_large && strcasecmp(hs->encoding, "gzip") == 0 && hs->body_len)
        (void)gunzip(hs->conn, hs, hs->max_body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static mt_server srv;
    static mt_auth *auth;
    if (!auth) {
        if (uv_loop_init(&loop)) abort();
        auth = fz_tokens();
    }
    if (size < 1) return 0;
    srv.auth = data[0] & 1 ? auth : NULL;
    srv.cfg.metrics_public = data[0] & 2;
    srv.cfg.max_body = 1 << 16;
    mt_conn *c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(&loop, &c->tcp)) abort();
    c->srv = &srv;
    c->kind = LISTENER_HTTP;
    if (http_init(c)) abort();
    http_state *hs = c->http;
    const char *p = (const char *)data + 1;
    size_t left = size - 1;
    for (int round = 0; left && round < 10000; round++) {
        size_t used = http_parser_execute(&hs->parser, &settings, p, left);
        enum http_errno err = HTTP_PARSER_ERRNO(&hs->parser);
        if (hs->denied || (err != HPE_OK && err != HPE_PAUSED)) break; /* answered, closed */
        if (used > left) abort();
        p += used, left -= used;
        if (err == HPE_PAUSED) http_parser_pause(&hs->parser, 0);
        if (hs->too_large && !hs->complete) break; /* 413, closed */
        if (!hs->complete) break;                  /* waits for more bytes */
        hs->complete = false;
        fz_request(hs);
        if (!http_should_keep_alive(&hs->parser)) break;
    }
    http_free(c);
    uv_close((uv_handle_t *)&c->tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    free(c);
    return 0;
}
