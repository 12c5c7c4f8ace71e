/*
 * test_rules_agree.c — `metron rules check` and `metron rules eval` on the
 * same files (issue 19): a file with webhooks and rules is valid for both
 * and evaluates exactly its rules (a [webhook NAME] adds no rule), and
 * each invalid file fails both, so check fails exactly when eval does.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mt_engine.h"
#include "test_util.h"

#define T0 (1735689600LL * 1000000000LL) /* 2025-01-01T00:00:00Z */
#define S  1000000000LL

static char dir[128];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

/* cpu,host=a usage = 90.5 every 30 s for an hour from T0 */
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-rules-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    mt_batch *b = mt_batch_new();
    char key[256];
    mt_name tk[1] = {{"host", 4}}, tv[1] = {{"a", 1}};
    size_t kl =
        mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk, tv, 1, (mt_name){"usage", 5});
    for (int i = 0; i < 120; i++)
        mt_batch_add(b, key, kl, T0 + i * 30 * S, MT_VT_FLOAT, (mt_val){.f = 90.5}, NULL);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    mt_batch_free(b);
    mt_engine_close(e);
}

static void teardown(void)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(rules_agree, .init = setup, .fini = teardown);

/* metron with args, stdout and stderr into out; the exit status. */
static int run(const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", METRON_PATH, args);
    return mt_test_run(out, cap, cmd);
}

static void write_file(char *path, const char *text)
{
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* check and eval on one file: their exit codes, outputs in chk and ev */
static void both(const char *text, int *check_rc, int *eval_rc, char *chk, char *ev, size_t cap)
{
    char path[] = "/tmp/metron-rules-file-XXXXXX", args[1024];
    write_file(path, text);
    snprintf(args, sizeof args, "rules check %s", path);
    *check_rc = run(args, chk, cap);
    snprintf(args, sizeof args, "rules eval --data %s %s --at 2025-01-01T00:59:00Z", dir, path);
    *eval_rc = run(args, ev, cap);
    unlink(path);
}

static const char valid[] = "[webhook ops]\n"
                            "url = http://127.0.0.1:9/hook\n"
                            "secret_token = s3cret\n"
                            "\n"
                            "[rule cpu_high]\n"
                            "metric_name = cpu.usage{host=\"a\"}\n"
                            "evaluation_window = 5m\n"
                            "warning_threshold = 80\n"
                            "critical_threshold = 95\n"
                            "comparison_operator = gt\n"
                            "notification_channels = ops, pager\n"
                            "\n"
                            "[webhook pager]\n"
                            "url = http://127.0.0.1:9/pager\n"
                            "\n"
                            "[rule cpu_low]\n"
                            "metric_name = cpu.usage\n"
                            "evaluation_window = 5m\n"
                            "warning_threshold = 10\n"
                            "comparison_operator = lt\n";

Test(rules_agree, webhooks_and_rules_valid_for_both_and_no_phantom_rule)
{
    char chk[8192], ev[8192];
    int crc, erc;
    both(valid, &crc, &erc, chk, ev, sizeof chk);
    cr_assert_eq(crc, 0, "%s", chk);
    cr_expect(strstr(chk, "2 rules, 2 webhooks, all valid"), "%s", chk);
    cr_assert_eq(erc, 0, "%s", ev);
    /* exactly the two rules, one line each for the one series: no rule from a webhook */
    cr_expect(strstr(ev, "cpu_high\tcpu,host=a usage\twarning\t90.5\tgt 80\n"), "%s", ev);
    cr_expect(strstr(ev, "cpu_low\tcpu,host=a usage\tnone\t90.5\n"), "%s", ev);
    int lines = 0;
    for (const char *p = ev; (p = strchr(p, '\n')); p++) lines++;
    cr_expect_eq(lines, 2, "%s", ev);
    /* the phantom was named "ok NAME" */
    cr_expect(strncmp(ev, "ok ", 3) && !strstr(ev, "\nok "), "%s", ev);
    cr_expect(strncmp(chk, "ok ", 3) && !strstr(chk, "\nok "), "%s", chk);
}

/* Each file is invalid in one way; both commands fail on it, with the same reason. */
Test(rules_agree, an_invalid_rule_fails_check_and_eval_alike)
{
    static const char *const bad[] = {
        /* a selector evaluation cannot parse (check used to pass it) */
        "[rule r]\nmetric_name = cpu.usage{host=a}\nwarning_threshold = 1\n",
        "[rule r]\nmetric_name = cpu.usage{host=~\"(\"}\nwarning_threshold = 1\n",
        /* no threshold */
        "[rule r]\nmetric_name = cpu.usage\n",
        /* a channel that is no [webhook] */
        "[webhook ops]\nurl = http://127.0.0.1:9/\n[rule r]\nmetric_name = cpu.usage\n"
        "warning_threshold = 1\nnotification_channels = nope\n",
        /* a webhook without its url */
        "[rule r]\nmetric_name = cpu.usage\nwarning_threshold = 1\n[webhook ops]\n"
        "secret_token = x\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char chk[4096], ev[4096];
        int crc, erc;
        both(bad[i], &crc, &erc, chk, ev, sizeof chk);
        cr_expect_neq(crc, 0, "file %zu: check passed: %s", i, chk);
        cr_expect_neq(erc, 0, "file %zu: eval passed: %s", i, ev);
        /* the same reason, after the temporary file's name */
        const char *a = strchr(chk, ':'), *b = strchr(ev, ':');
        cr_expect(a && b && !strcmp(a, b), "file %zu: check said %s, eval said %s", i, chk, ev);
    }
}
