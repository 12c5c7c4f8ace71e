/* mt_uuid.c — see mt_uuid.h. */
#include "mt_uuid.h"

#include <stdio.h>

void mt_uuid_v8(uint64_t hi, uint64_t lo, char out[MT_UUID_LEN + 1])
{
    /* version 8 (custom), variant 10 */
    snprintf(out, MT_UUID_LEN + 1, "%08x-%04x-8%03x-%04x-%012llx", (unsigned)(hi >> 32),
             (unsigned)(hi >> 16) & 0xffff, (unsigned)hi & 0xfff,
             (unsigned)((lo >> 48) & 0x3fff) | 0x8000,
             (unsigned long long)(lo & 0xffffffffffffULL));
}

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

bool mt_uuid_parse(const char *s, size_t n, uint8_t out[16])
{
    if (n != MT_UUID_LEN) return false;
    size_t o = 0;
    for (size_t i = 0; i < MT_UUID_LEN;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i++] != '-') return false;
            continue;
        }
        int h = hex(s[i]), l = hex(s[i + 1]);
        if (h < 0 || l < 0) return false;
        if (out) out[o] = (uint8_t)(h << 4 | l);
        o++, i += 2;
    }
    return true;
}
