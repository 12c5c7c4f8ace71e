/*
 * fuzz_promql.c — libFuzzer target for the PromQL parser (query/mt_promql.c):
 * any bytes are refused with MT_EPARSE and a reason, or parse into an
 * expression whose fully parenthesized form parses again to the same form
 * (the printer and the parser agree; nothing is lost or re-associated),
 * unless the printed form, with its parentheses, nests past the limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_promql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_promql: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static char once[65536], twice[65536], err[1024];
    err[0] = '\0';
    int rc = mt_promql_format(text, once, sizeof once, err, sizeof err);
    if (rc == MT_OK && strlen(once) + 1 < sizeof once) {
        err[0] = '\0';
        rc = mt_promql_format(once, twice, sizeof twice, err, sizeof err);
        /* the printed form has a pair of parentheses per operator: it may nest deeper than
           the input did, past the parser's limit */
        if (rc == MT_EPARSE && strstr(err, "nests too deeply")) {
            free(text);
            return 0;
        }
        if (rc != MT_OK) fprintf(stderr, "fuzz_promql: '%s' -> '%s': %s\n", text, once, err);
        check(rc == MT_OK, "the printed form does not parse");
        check(strcmp(once, twice) == 0, "the printed form parses differently");
    } else if (rc != MT_OK) {
        check(rc == MT_EPARSE && err[0] != '\0', "a refusal without a reason");
    }
    free(text);
    return 0;
}
