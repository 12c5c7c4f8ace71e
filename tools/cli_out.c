/*
 * cli_out.c — what the subcommands share about output: --format, and the
 * --url side, a GET to a running metrond (libcurl) streamed to stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "metron_cli.h"
#include "mt_qparse.h"

bool mt_cli_format_parse(const char *name, mt_output_format *f)
{
    if (name) return mt_output_format_parse(name, f);
    *f = isatty(STDOUT_FILENO) ? MT_OUT_TABLE : MT_OUT_CSV;
    return true;
}

bool mt_cli_format_aligned(const char *name)
{
    return name ? !strcmp(name, "table") : isatty(STDOUT_FILENO);
}

/* Append to the query string: &name=value, value escaped. */
static void url_param(CURL *curl, char *url, size_t cap, const char *name, const char *value)
{
    if (!value) return;
    char *esc = curl_easy_escape(curl, value, 0);
    size_t n = strlen(url);
    snprintf(url + n, cap - n, "%s%s=%s", strchr(url, '?') ? "&" : "?", name, esc ? esc : "");
    curl_free(esc);
}

typedef struct answer {
    CURL *curl;
    FILE *out;      /* a 200 answer's body */
    char err[4096]; /* the body of a failed request */
    size_t len;
} answer;

/* Rows go to stdout as they arrive; the body of an error is kept for stderr. */
static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    answer *a = ud;
    long status = 0;
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) return fwrite(p, size, n, a->out) * size;
    size_t take = size * n < sizeof a->err - 1 - a->len ? size * n : sizeof a->err - 1 - a->len;
    memcpy(a->err + a->len, p, take);
    a->len += take;
    a->err[a->len] = '\0';
    return size * n;
}

struct curl_slist *mt_cli_auth_header(void)
{
    return mt_cli_auth_header_for(getenv("METRON_TOKEN"));
}

struct curl_slist *mt_cli_auth_header_for(const char *tok)
{
    if (!tok || !*tok) return NULL;
    char h[1024];
    if ((size_t)snprintf(h, sizeof h, "Authorization: Token %s", tok) >= sizeof h) return NULL;
    struct curl_slist *l = curl_slist_append(NULL, h);
    explicit_bzero(h, sizeof h);
    return l;
}

int mt_cli_get(const char *base, const char *path, const char *const params[][2], size_t n)
{
    return mt_cli_get_to(base, path, params, n, stdout);
}

int mt_cli_get_to(const char *base, const char *path, const char *const params[][2], size_t n,
                  FILE *out)
{
    CURL *curl = curl_easy_init();
    if (!curl) return 1;
    char url[8192];
    snprintf(url, sizeof url, "%s%s", base, path);
    for (size_t i = 0; i < n; i++) url_param(curl, url, sizeof url, params[i][0], params[i][1]);
    answer a = {.curl = curl, .out = out};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    struct curl_slist *auth = mt_cli_auth_header();
    if (auth) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, auth);
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    if (cc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    curl_slist_free_all(auth);
    if (cc != CURLE_OK) {
        fprintf(stderr, "metron: %s: %s\n", base, curl_easy_strerror(cc));
        return 1;
    }
    if (status != 200) {
        fprintf(stderr, "metron: %s answered %ld: %s\n", base, status, a.err);
        return status == 400 ? 2 : 1;
    }
    return fflush(out) ? 1 : 0;
}

/* Keeps the start of an answer's body (an error's JSON) for the message. */
static size_t on_reply(char *p, size_t size, size_t n, void *ud)
{
    mt_cli_reply *r = ud;
    size_t len = size * n, room = sizeof r->body - 1 - r->len;
    size_t take = len < room ? len : room;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return len;
}

CURLcode mt_cli_post(CURL *curl, const char *body, size_t len, long *status, mt_cli_reply *r)
{
    r->len = 0;
    r->body[0] = '\0';
    *status = 0;
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode cc = curl_easy_perform(curl);
    if (cc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    return cc;
}
