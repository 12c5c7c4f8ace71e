/*
 * mt_series.h — canonical series keys.
 *
 * A series is (measurement, tag set sorted by key, field key). Its
 * canonical key is a byte string that two writers of the same series always
 * build identically:
 *
 *   u16 len, measurement | u16 ntags | ntags x (u16 len, key, u16 len, value)
 *   | u16 len, field
 *
 * (lengths big-endian; tags strictly ascending by key, bytewise; no empty
 * names). Keys are binary so that no escaping rule can make two series
 * collide; mt_series_format prints them in line-protocol form for people.
 * Pure functions; thread-safe.
 */
#ifndef MT_SERIES_H
#define MT_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_SERIES_MAX_KEY 65535 /* bytes of a canonical key */
/* The tag that names a series' tenant (DESIGN §1): absent means system-wide. */
#define MT_TENANT_TAG "business_id"

/* A name: bytes and length, not NUL-terminated. */
typedef struct mt_name {
    const char *ptr;
    size_t len;
} mt_name;

/*
 * Build the key of (measurement, tags[0..ntags) as key/value pairs, field)
 * into out (capacity cap). The tags must already be sorted by key with no
 * repeats (the line-protocol parser hands them so). Returns the key's
 * length, or 0 when a name is empty or too long, the tags are not strictly
 * ascending, or the key does not fit cap / MT_SERIES_MAX_KEY.
 */
size_t mt_series_key(char *out, size_t cap, mt_name measurement, const mt_name *tag_keys,
                     const mt_name *tag_values, size_t ntags, mt_name field);

/* A parsed key; names point into the key and live as long as it. */
typedef struct mt_series_parts {
    mt_name measurement;
    size_t ntags;
    mt_name tag_keys[256];
    mt_name tag_values[256];
    mt_name field;
} mt_series_parts;

/*
 * Split and validate a key (exact layout, sorted tags, at most 256 tags).
 * Returns MT_OK or MT_EINVAL.
 */
int mt_series_parse(const void *key, size_t len, mt_series_parts *out);

/*
 * Print a key as line protocol ("cpu,host=a usage_user", with the escapes
 * of each element) into out (capacity cap, always NUL-terminated when cap >
 * 0). Returns the length the whole text needs, like snprintf, or -1 if the
 * key is invalid.
 */
int mt_series_format(const void *key, size_t len, char *out, size_t cap);

#endif
