/*
 * cli_table.c — aligned `--format table` output: the tab-separated table
 * the query library writes (`--format tsv`), re-laid with every column
 * padded to its widest cell, since a terminal's tab stops misalign any
 * cell of 8 bytes or more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metron_cli.h"

/* display columns of n bytes of UTF-8: one per character (no wide ones in our output) */
static size_t width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) w += ((unsigned char)s[i] & 0xC0) != 0x80;
    return w;
}

int mt_cli_align(const char *tsv, size_t len, FILE *out)
{
    size_t ncols = 0, *w = NULL;
    /* pass 1: the widest cell of each column */
    for (size_t i = 0; i < len;) {
        size_t end = i;
        while (end < len && tsv[end] != '\n') end++;
        size_t col = 0;
        for (size_t a = i; a <= end; col++) {
            size_t b = a;
            while (b < end && tsv[b] != '\t') b++;
            if (col >= ncols) {
                size_t *nw = realloc(w, (col + 1) * sizeof *w);
                if (!nw) {
                    free(w);
                    return -ENOMEM;
                }
                w = nw;
                for (; ncols <= col; ncols++) w[ncols] = 0;
            }
            size_t cw = width(tsv + a, b - a);
            if (cw > w[col]) w[col] = cw;
            a = b + 1;
        }
        i = end + 1;
    }
    /* pass 2: each cell padded, two spaces between columns, none after the last */
    for (size_t i = 0; i < len;) {
        size_t end = i;
        while (end < len && tsv[end] != '\n') end++;
        size_t col = 0;
        for (size_t a = i; a <= end; col++) {
            size_t b = a;
            while (b < end && tsv[b] != '\t') b++;
            fwrite(tsv + a, 1, b - a, out);
            if (b < end) fprintf(out, "%*s", (int)(w[col] - width(tsv + a, b - a) + 2), "");
            a = b + 1;
        }
        if (end < len || end > i) fputc('\n', out);
        i = end + 1;
    }
    free(w);
    return ferror(out) ? -EIO : 0;
}
