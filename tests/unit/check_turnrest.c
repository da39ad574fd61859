/* TURN REST credentials (session-router/core/turnrest.c) against values computed the way
 * coturn checks them (use-auth-secret: base64(HMAC-SHA1(secret, username))). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "turnrest.h"

START_TEST(credentials_are_coturns)
{
    char user[TURNREST_USERNAME_MAX];
    char *pw = turnrest_credentials("s3cret", "alice@localhost", ':', 1796619089, user,
                                    sizeof user);
    ck_assert_str_eq(user, "1796619089:alice@localhost");
    ck_assert_str_eq(pw, "23Rw+1JRc2SrKZZ0gfzf9hNnDxc=");
    free(pw);
    pw = turnrest_credentials("another secret", "bob@example.org", ';', 1700000000, user,
                              sizeof user);
    ck_assert_str_eq(user, "1700000000;bob@example.org");
    ck_assert_str_eq(pw, "if20P6Sqmu30Ph+PUhqt8qUkKs4=");
    free(pw);
}
END_TEST

START_TEST(username_that_does_not_fit_is_refused)
{
    char user[20];
    ck_assert_ptr_null(turnrest_credentials("s", "alice@localhost", ':', 1796619089, user,
                                            sizeof user));
    char fits[27]; /* "1796619089:alice@localhost" and the NUL */
    char *pw = turnrest_credentials("s", "alice@localhost", ':', 1796619089, fits, sizeof fits);
    ck_assert_ptr_nonnull(pw);
    free(pw);
}
END_TEST

START_TEST(datetime_is_xep0082_utc)
{
    char buf[32];
    turnrest_datetime(1796619089, buf, sizeof buf);
    ck_assert_str_eq(buf, "2026-12-07T04:51:29Z");
    turnrest_datetime(0, buf, sizeof buf);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00Z");
}
END_TEST

Suite *make_turnrest_suite(void)
{
    Suite *s = suite_create("turnrest");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, credentials_are_coturns);
    tcase_add_test(tc, username_that_does_not_fit_is_refused);
    tcase_add_test(tc, datetime_is_xep0082_utc);
    suite_add_tcase(s, tc);
    return s;
}
