/* Logging: what peers send ends up quoted in log lines; it must not be able to forge one. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "suites.h"

/* Runs log_info(fmt, arg) with stderr sent to a temporary file; returns what was written. */
static void capture(const char *arg, char *out, size_t outlen)
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    log_info("bind: refused '%s'", arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, outlen - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
}

START_TEST(log_escapes_control_bytes)
{
    char out[4096];
    capture("a\nb\r\x1b[31m\x7f", out, sizeof out);
    /* One line, ending in its own newline; the peer's bytes shown as \xNN. */
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    ck_assert_ptr_nonnull(strstr(out, "refused 'a\\x0ab\\x0d\\x1b[31m\\x7f'"));
    capture("caf\xc3\xa9 ok", out, sizeof out); /* UTF-8 stays as it is */
    ck_assert_ptr_nonnull(strstr(out, "refused 'caf\xc3\xa9 ok'"));
}
END_TEST

Suite *make_log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, log_escapes_control_bytes);
    suite_add_tcase(s, tc);
    return s;
}
