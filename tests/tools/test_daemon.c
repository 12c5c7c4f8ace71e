/*
 * test_daemon.c — metrond's start and its maintenance jobs (tools/metrond.c):
 * a part that cannot start stops metrond with its name and a status; a long
 * maintenance job does not hold back the alert rounds.
 */
#include <criterion/criterion.h>

#include "metrond_harness.h"

/* Run metrond with args until it exits (it must: a start that fails); its status, the log in
   log (cap bytes). */
static int run_failing(const char *args, char *log, size_t cap)
{
    char dir[] = "/tmp/metrond-start-XXXXXX", path[64], cmd[2048];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s.log", dir);
    snprintf(cmd, sizeof cmd,
             "timeout 20 %s --data %s --lp-tcp off --lp-udp off --http 127.0.0.1:%d %s >%s 2>&1",
             METROND_PATH, dir, mth_free_port(), args, path);
    int st = system(cmd);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(log, 1, cap - 1, f) : 0;
    log[n] = '\0';
    if (f) fclose(f);
    unlink(path);
    mth_daemon d = {0};
    snprintf(d.dir, sizeof d.dir, "%s", dir);
    mth_cleanup(&d);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(daemon, a_rules_file_that_cannot_be_read_stops_metrond_with_status_2)
{
    char rules[] = "/tmp/metrond-rules-XXXXXX", log[8192], args[256];
    int fd = mkstemp(rules);
    cr_assert_geq(fd, 0);
    const char *bad = "[rule hot]\nmetric_name = cpu.usage\ncomparison_operator = sideways\n";
    cr_assert_eq(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    snprintf(args, sizeof args, "--rules-file %s", rules);
    int status = run_failing(args, log, sizeof log);
    unlink(rules);
    cr_expect_eq(status, 2, "exit status %d: %s", status, log);
    cr_expect(strstr(log, "msg=\"cannot read the rules\""), "%s", log);
    cr_expect(strstr(log, rules), "the file is named: %s", log);
    cr_expect(!strstr(log, "msg=\"listening\""), "nothing listened: %s", log);
}

Test(daemon, a_listener_that_cannot_bind_stops_metrond_with_status_1)
{
    char log[8192];
    int status = run_failing("--lp-tcp 256.0.0.1:1", log, sizeof log);
    cr_expect_eq(status, 1, "exit status %d: %s", status, log);
    cr_expect(strstr(log, "msg=\"cannot start the listeners\""), "%s", log);
}

#ifdef MT_FAULT_INJECTION
/* Retention (first run 5 s after start) is held 8 s by a fault; alert rounds every second
   must go on meanwhile. One job slot for all three made them wait for the retention. */
Test(daemon, alert_rounds_go_on_while_a_maintenance_job_runs_long, .timeout = 60)
{
    char rules[] = "/tmp/metrond-rules-XXXXXX", args[512];
    int fd = mkstemp(rules);
    cr_assert_geq(fd, 0);
    const char *ini = "[rule hot]\nmetric_name = cpu.usage\nevaluation_window = 10m\n"
                      "critical_threshold = 90\ncomparison_operator = gt\n";
    cr_assert_eq(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    mth_daemon d;
    snprintf(args, sizeof args, "--rules-file %s --alert-interval 1 --retention-interval 3600",
             rules);
    mth_start(&d, "MT_FAULT=maint.stall:1", args);
    int64_t end = mth_now_ms() + 15000;
    while (mth_now_ms() < end && !mth_log_lines(&d, "maintenance job held")) mth_sleep_ms(50);
    cr_assert(mth_log_lines(&d, "maintenance job held"), "the retention never started");
    char line[128];
    snprintf(line, sizeof line, "cpu,host=a usage=95 %lld\n", (long long)time(NULL));
    mth_write(&d, line);
    end = mth_now_ms() + 5000;
    while (mth_now_ms() < end && !mth_log_lines(&d, "msg=\"alert fired\"")) mth_sleep_ms(50);
    cr_expect(mth_log_lines(&d, "msg=\"alert fired\""), "no alert round within 5 s");
    cr_expect_eq(mth_log_lines(&d, "maintenance job released"), 0,
                 "the alert fired only once the retention was done");
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(rules);
}
#endif
