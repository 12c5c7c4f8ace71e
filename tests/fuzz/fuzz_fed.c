/*
 * fuzz_fed.c — libFuzzer target for the Prometheus export's input and
 * names (query/mt_fed.c): any bytes as a match[] selector are refused with
 * MT_EPARSE or parse into matchers of which one does not match the empty
 * string; any bytes as a measurement, field or tag key give a name of
 * Prometheus' alphabet that does not start with a digit (labels: nor with
 * "__"); any bytes as a label value are escaped into valid UTF-8 without a
 * raw newline or an unescaped quote.
 *
 * The seam: this file includes mt_fed.c, so its static parser is driven as
 * it is (the library's mt_fed.o is then never linked in).
 */
#include "../../query/mt_fed.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_fed: %s\n", what);
        abort();
    }
}

static void check_name(const char *s, size_t n, bool colon)
{
    check(n > 0 && !(s[0] >= '0' && s[0] <= '9'), "a name is empty or starts with a digit");
    for (size_t i = 0; i < n; i++) check(name_char((unsigned char)s[i], colon), "a name's byte");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static psel s;
    char err[512];
    if (mt_psel_parse(text, NULL, &s, err, sizeof err) == MT_OK) {
        bool some = false;
        for (size_t i = 0; i < s.nm; i++) some |= !mt_matcher_match(&s.m[i], "");
        check(some, "a selector whose every matcher matches the empty string was taken");
    } else {
        check(err[0] != '\0', "a refusal without a reason");
    }
    mt_psel_free(&s);

    /* names: the input split in two at its first byte's value */
    size_t cut = size ? data[0] % (size + 1) : 0;
    mt_name a = {text, cut}, b = {text + cut, size - cut};
    char out[1024];
    if (a.len && b.len) {
        size_t n = mt_fed_metric_name(a, b, out, sizeof out);
        if (n < sizeof out) check_name(out, n, true);
    }
    if (size) {
        size_t n = mt_fed_label_name((mt_name){text, size}, out, sizeof out);
        if (n < sizeof out) {
            check_name(out, n, false);
            check(!(n >= 2 && out[0] == '_' && out[1] == '_'), "a label name starts with __");
        }
    }
    mt_sbuf e = {0};
    put_escaped(&e, text, size, false);
    for (size_t i = 0; i < e.len && !e.oom;) {
        size_t k = mt_query_utf8_seq((const unsigned char *)e.p + i, e.len - i);
        check(k > 0, "an escaped value is not valid UTF-8");
        check(e.p[i] != '\n', "an escaped value holds a newline");
        if (e.p[i] == '\\') {
            check(i + 1 < e.len && strchr("\\\"n", e.p[i + 1]), "a lone backslash");
            k = 2;
        } else {
            check(e.p[i] != '"', "an unescaped quote");
        }
        i += k;
    }
    free(e.p);
    free(text);
    return 0;
}
