/*
 * mt_out.h — writing the cells of the output formats of docs/query.md
 * through an mt_write_fn (query/ only: mt_output.c, mt_rollq.c).
 */
#ifndef MT_OUT_H
#define MT_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include "mt_query.h"

/* A writer: rc holds the first error of fn, after which nothing more is written. */
typedef struct mt_out {
    mt_write_fn fn;
    void *ud;
    int rc;
} mt_out;

void mt_out_put(mt_out *o, const char *s, size_t n);
void mt_out_puts(mt_out *o, const char *s);
__attribute__((format(printf, 2, 3))) void mt_out_printf(mt_out *o, const char *fmt, ...);

/* A cell: quoted for the format (text cells are JSON strings), a separator before all
   but the first. */
void mt_out_cell(mt_out *o, mt_output_format f, bool first, const char *s, size_t n, bool text);

#endif
