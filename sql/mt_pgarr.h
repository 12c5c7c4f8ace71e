/*
 * mt_pgarr.h — PostgreSQL array literals built in memory, so that rows go
 * to PostgreSQL as a few parameters (unnest($1::text[], ...)) and never as
 * SQL text: every value a parameter (RELIABILITY 10).
 *
 * A builder is a plain struct, zeroed to start ({0}); its elements are
 * appended with mt_pgarr_text/null/double/i64/u64 ("{a,b,...}" with the
 * quoting of the array literal syntax); mt_pgarr_finish closes it. Raw
 * bytes (mt_pgarr_put) and JSON string bodies (mt_pgarr_json) build other
 * text the same way (a JSON column value, a COPY line).
 *
 * Errors: the first allocation that fails sets rc to -ENOMEM and every
 * later call does nothing, so a caller checks once (finish, or rc).
 * Ownership: p belongs to the builder until mt_pgarr_free.
 */
#ifndef MT_PGARR_H
#define MT_PGARR_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_pgarr {
    char *p;         /* the text so far (NUL-terminated only by finish) */
    size_t len, cap; /* bytes used, bytes allocated */
    int rc;          /* MT_OK, or -ENOMEM once an allocation failed */
} mt_pgarr;

/* Append n raw bytes. */
void mt_pgarr_put(mt_pgarr *a, const char *s, size_t n);
/* Open the literal ("{") on the first element, else a separating ",". */
void mt_pgarr_sep(mt_pgarr *a);
/* An element: the text quoted, with a backslash before " and \. */
void mt_pgarr_text(mt_pgarr *a, const char *s, size_t n);
/* An element: NULL. */
void mt_pgarr_null(mt_pgarr *a);
/* An element: v with 17 significant digits (exact), NaN, Infinity or -Infinity. */
void mt_pgarr_double(mt_pgarr *a, double v);
void mt_pgarr_i64(mt_pgarr *a, int64_t v);
void mt_pgarr_u64(mt_pgarr *a, uint64_t v);
/* Close the literal ("{}" when empty) and NUL-terminate it: the text, owned by a; NULL when an
   allocation failed. */
const char *mt_pgarr_finish(mt_pgarr *a);
/* Append a JSON string's body (no quotes): " and \ escaped, control bytes as \u00XX. */
void mt_pgarr_json(mt_pgarr *a, const char *s, size_t n);
/* Empty it for reuse (keeps the memory). */
void mt_pgarr_reset(mt_pgarr *a);
/* Free the memory; a is zeroed. */
void mt_pgarr_free(mt_pgarr *a);

#endif
