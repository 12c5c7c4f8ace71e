/*
 * mt_json.h — JSON strings as Metron writes them everywhere (HTTP errors and
 * bodies, the query formats, PostgreSQL jsonb, the CLI): '"' and '\' get a
 * backslash, bytes below 0x20 become \u00XX, every other byte (UTF-8
 * included, valid or not) goes out as it is. Pure; thread-safe.
 */
#ifndef MT_JSON_H
#define MT_JSON_H

#include <stddef.h>

/* Where escaped text goes: n bytes at s, borrowed for the call only. */
typedef void (*mt_json_put_fn)(void *ud, const char *s, size_t n);

/*
 * Write s[0..n) as a JSON string, quotes included, through put(ud, ...). Runs
 * of plain bytes go out in one call: the sink may cost more than a copy.
 */
void mt_json_str(const char *s, size_t n, mt_json_put_fn put, void *ud);

/* The same without the quotes: a string's body, for a caller that builds it in pieces. */
void mt_json_body(const char *s, size_t n, mt_json_put_fn put, void *ud);

/*
 * Append s[0..n) escaped, without quotes, to out at pos (capacity cap, room
 * for the NUL included); stops before the byte whose escape would not fit.
 * Returns the new pos; out[pos] is NUL. cap must be more than pos.
 */
size_t mt_json_escape(char *out, size_t cap, size_t pos, const char *s, size_t n);

#endif
