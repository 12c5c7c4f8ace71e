/* mt_series.c — canonical series keys (layout in mt_series.h). */
#include "mt_series.h"

#include <string.h>

static int name_cmp(mt_name a, mt_name b)
{
    int r = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
    return r ? r : (a.len > b.len) - (a.len < b.len);
}

static bool put_name(char *out, size_t cap, size_t *pos, mt_name n)
{
    if (n.len == 0 || n.len > 0xFFFF || cap - *pos < 2 + n.len) return false;
    out[(*pos)++] = (char)(n.len >> 8);
    out[(*pos)++] = (char)n.len;
    memcpy(out + *pos, n.ptr, n.len);
    *pos += n.len;
    return true;
}

size_t mt_series_key(char *out, size_t cap, mt_name measurement, const mt_name *tag_keys,
                     const mt_name *tag_values, size_t ntags, mt_name field)
{
    if (cap > MT_SERIES_MAX_KEY) cap = MT_SERIES_MAX_KEY;
    size_t pos = 0;
    if (ntags > 256 || !put_name(out, cap, &pos, measurement) || cap - pos < 2) return 0;
    out[pos++] = (char)(ntags >> 8);
    out[pos++] = (char)ntags;
    for (size_t i = 0; i < ntags; i++) {
        if (i && name_cmp(tag_keys[i - 1], tag_keys[i]) >= 0) return 0;
        if (!put_name(out, cap, &pos, tag_keys[i]) || !put_name(out, cap, &pos, tag_values[i]))
            return 0;
    }
    if (!put_name(out, cap, &pos, field)) return 0;
    return pos;
}

static bool get_name(const unsigned char *k, size_t len, size_t *pos, mt_name *n)
{
    if (len - *pos < 2) return false;
    size_t l = (size_t)k[*pos] << 8 | k[*pos + 1];
    *pos += 2;
    if (l == 0 || len - *pos < l) return false;
    *n = (mt_name){(const char *)k + *pos, l};
    *pos += l;
    return true;
}

int mt_series_parse(const void *key, size_t len, mt_series_parts *out)
{
    const unsigned char *k = key;
    size_t pos = 0;
    if (!get_name(k, len, &pos, &out->measurement) || len - pos < 2) return MT_EINVAL;
    out->ntags = (size_t)k[pos] << 8 | k[pos + 1];
    pos += 2;
    if (out->ntags > 256) return MT_EINVAL;
    for (size_t i = 0; i < out->ntags; i++) {
        if (!get_name(k, len, &pos, &out->tag_keys[i]) ||
            !get_name(k, len, &pos, &out->tag_values[i]))
            return MT_EINVAL;
        if (i && name_cmp(out->tag_keys[i - 1], out->tag_keys[i]) >= 0) return MT_EINVAL;
    }
    if (!get_name(k, len, &pos, &out->field) || pos != len) return MT_EINVAL;
    return MT_OK;
}

enum { ESC_COMMA = 1, ESC_EQUALS = 2, ESC_SPACE = 4 };

/* Append n with a backslash before each backslash and each byte of the `esc` set; the
 * output names every series of a query's answer, so no strchr per byte. */
static void put_escaped(char *out, size_t cap, size_t *pos, mt_name n, unsigned esc)
{
    for (size_t i = 0; i < n.len; i++) {
        char c = n.ptr[i];
        if (c == '\\' || (c == ',' && (esc & ESC_COMMA)) || (c == '=' && (esc & ESC_EQUALS)) ||
            (c == ' ' && (esc & ESC_SPACE))) {
            if (*pos + 1 < cap) out[*pos] = '\\';
            (*pos)++;
        }
        if (*pos + 1 < cap) out[*pos] = c;
        (*pos)++;
    }
}

static void put_char(char *out, size_t cap, size_t *pos, char c)
{
    if (*pos + 1 < cap) out[*pos] = c;
    (*pos)++;
}

int mt_series_format(const void *key, size_t len, char *out, size_t cap)
{
    mt_series_parts p;
    if (mt_series_parse(key, len, &p)) return -1;
    size_t pos = 0;
    const unsigned all = ESC_COMMA | ESC_EQUALS | ESC_SPACE;
    put_escaped(out, cap, &pos, p.measurement, ESC_COMMA | ESC_SPACE);
    for (size_t i = 0; i < p.ntags; i++) {
        put_char(out, cap, &pos, ',');
        put_escaped(out, cap, &pos, p.tag_keys[i], all);
        put_char(out, cap, &pos, '=');
        put_escaped(out, cap, &pos, p.tag_values[i], all);
    }
    put_char(out, cap, &pos, ' ');
    put_escaped(out, cap, &pos, p.field, all);
    if (cap) out[pos < cap ? pos : cap - 1] = '\0';
    return (int)pos;
}
