/*
 * mt_uuid.h — UUIDs as text (8-4-4-4-12 hexadecimal digits, RFC 9562): the
 * ids Metron derives from hashes (rules, alerts) and the tenants' business
 * ids PostgreSQL keeps as uuid. Pure; thread-safe.
 */
#ifndef MT_UUID_H
#define MT_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_UUID_LEN 36 /* characters of the text form, without the NUL */

/*
 * Write into out (MT_UUID_LEN + 1 bytes, NUL-terminated) the version-8
 * ("custom") UUID, variant 10, made of the 128 bits hi:lo, lowercase. The
 * version and variant take 6 of those bits (hi's bits 12-15, lo's top two),
 * so ids derived from two hashes stay stable across releases.
 */
void mt_uuid_v8(uint64_t hi, uint64_t lo, char out[MT_UUID_LEN + 1]);

/*
 * Read the text UUID s[0..n) (either case) into out's 16 bytes, or only
 * check it when out is NULL. False, with out unspecified, for anything but
 * exactly 36 characters of 8-4-4-4-12 hexadecimal digits.
 */
bool mt_uuid_parse(const char *s, size_t n, uint8_t out[16]);

#endif
