/*
 * mt_auth.h — API tokens, each bound to one tenant (business_id): loaded
 * and checked here, used by the server (server/mt_http.c) on every
 * request's headers; callers outside the two load them through
 * mt_ingest_tokens_load (mt_ingest.h).
 *
 * Tokens are never stored: the tokens file holds the SHA-256 of each, as
 * 64 hex digits, after the tenant it belongs to:
 *
 *   # business_id                          sha256(token), hex
 *   7f3c2a10-0000-4000-8000-000000000001   9f86d0818...
 *   *                                      2c26b46b6...     (system: any tenant)
 *
 * A presented token is hashed and compared with every entry in constant
 * time (CRYPTO_memcmp), so neither the file nor timing reveals a token.
 */
#ifndef MT_AUTH_H
#define MT_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define MT_AUTH_TENANT_MAX 64

typedef struct mt_auth mt_auth;

/*
 * Load a tokens file. MT_OK and *out; MT_EPARSE with a message in err
 * (line number and reason); -errno when it cannot be read.
 */
int mt_auth_load(const char *path, mt_auth **out, char *err, size_t errcap);

void mt_auth_free(mt_auth *a);

/* Number of tokens loaded. */
size_t mt_auth_count(const mt_auth *a);

/*
 * Check a presented token (len bytes). On success returns true and copies
 * its tenant into tenant (capacity MT_AUTH_TENANT_MAX + 1): a business_id,
 * or "*" for a system token.
 */
bool mt_auth_check(const mt_auth *a, const char *token, size_t len, char *tenant);

/* Write the hex SHA-256 of token into hex (65 bytes, NUL-terminated). */
void mt_auth_hash_hex(const char *token, size_t len, char hex[65]);

#endif
