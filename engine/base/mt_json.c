/* mt_json.c — see mt_json.h. */
#include "mt_json.h"

#include <stdio.h>

/* The escape of c (a quote, a backslash or a control byte) into e; its length. */
static size_t escape_of(unsigned char c, char e[7])
{
    if (c == '"' || c == '\\') {
        e[0] = '\\', e[1] = (char)c;
        return 2;
    }
    return (size_t)snprintf(e, 7, "\\u%04x", c);
}

static int plain(unsigned char c)
{
    return c != '"' && c != '\\' && c >= 0x20;
}

void mt_json_str(const char *s, size_t n, mt_json_put_fn put, void *ud)
{
    put(ud, "\"", 1);
    mt_json_body(s, n, put, ud);
    put(ud, "\"", 1);
}

void mt_json_body(const char *s, size_t n, mt_json_put_fn put, void *ud)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (plain((unsigned char)s[i])) continue;
        if (i > run) put(ud, s + run, i - run);
        char e[7];
        put(ud, e, escape_of((unsigned char)s[i], e));
        run = i + 1;
    }
    if (n > run) put(ud, s + run, n - run);
}

size_t mt_json_escape(char *out, size_t cap, size_t pos, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char e[7];
        size_t k =
            plain((unsigned char)s[i]) ? (e[0] = s[i], 1) : escape_of((unsigned char)s[i], e);
        if (pos + k >= cap) break;
        for (size_t j = 0; j < k; j++) out[pos++] = e[j];
    }
    out[pos] = '\0';
    return pos;
}
