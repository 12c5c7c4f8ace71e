/* mt_auth.c — hashed API tokens (contract in mt_auth.h); libcrypto for SHA-256. */
#include "mt_auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_err.h"
#include "mt_ingest.h"

typedef struct entry {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    char tenant[MT_AUTH_TENANT_MAX + 1];
} entry;

struct mt_auth {
    entry *e;
    size_t n;
};

void mt_ingest_token_hash(const char *token, size_t len, char hex[65])
{
    mt_auth_hash_hex(token, len, hex);
}

void mt_auth_hash_hex(const char *token, size_t len, char hex[65])
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, len, h);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) sprintf(hex + 2 * i, "%02x", h[i]);
}

static int unhex(const char *s, unsigned char *out)
{
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (unsigned char)v;
    }
    return s[2 * SHA256_DIGEST_LENGTH] == '\0' ? 0 : -1;
}

int mt_auth_load(const char *path, mt_auth **out, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -errno;
    mt_auth *a = calloc(1, sizeof *a);
    size_t cap = 0;
    char line[512];
    int lineno = 0, rc = a ? MT_OK : -ENOMEM;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char tenant[128], hash[128], extra[8];
        int n = sscanf(line, "%127s %127s %7s", tenant, hash, extra);
        if (n <= 0 || tenant[0] == '#') continue;
        if (n != 2 || strlen(tenant) > MT_AUTH_TENANT_MAX || strlen(hash) != 64) {
            snprintf(err, errcap, "%s line %d: expected 'business_id sha256-hex'", path, lineno);
            rc = MT_EPARSE;
            break;
        }
        if (a->n == cap) {
            cap = cap ? cap * 2 : 8;
            entry *e = realloc(a->e, cap * sizeof *e);
            if (!e) {
                rc = -ENOMEM;
                break;
            }
            a->e = e;
        }
        entry *e = &a->e[a->n];
        if (unhex(hash, e->hash)) {
            snprintf(err, errcap, "%s line %d: the hash must be 64 hex digits", path, lineno);
            rc = MT_EPARSE;
            break;
        }
        memcpy(e->tenant, tenant, strlen(tenant) + 1); /* length checked above */
        a->n++;
    }
    fclose(f);
    if (rc) {
        mt_auth_free(a);
        return rc;
    }
    *out = a;
    return MT_OK;
}

void mt_auth_free(mt_auth *a)
{
    if (!a) return;
    OPENSSL_cleanse(a->e, a->n * sizeof *a->e);
    free(a->e);
    free(a);
}

int mt_ingest_tokens_load(const char *path, mt_ingest_tokens **out, char *err, size_t errcap)
{
    if (errcap) err[0] = '\0';
    return mt_auth_load(path, out, err, errcap);
}

void mt_ingest_tokens_free(mt_ingest_tokens *t)
{
    mt_auth_free(t);
}

size_t mt_ingest_tokens_count(const mt_ingest_tokens *t)
{
    return mt_auth_count(t);
}

size_t mt_auth_count(const mt_auth *a)
{
    return a ? a->n : 0;
}

bool mt_auth_check(const mt_auth *a, const char *token, size_t len, char *tenant)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, len, h);
    const entry *found = NULL;
    for (size_t i = 0; i < a->n; i++) /* every entry, whatever matches: no early exit */
        if (CRYPTO_memcmp(h, a->e[i].hash, sizeof h) == 0) found = &a->e[i];
    if (found) snprintf(tenant, MT_AUTH_TENANT_MAX + 1, "%s", found->tenant);
    return found != NULL;
}
