/* The registration rules shared by the frontend and the router (common/registration.c)
 * and the one credential maker (scram_creds_make). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "registration.h"
#include "scram.h"
#include "suites.h"

static const struct {
    const char *password;
    long min;
    register_pw_t want;
} passwords[] = {
    {"long-enough", 8, REGISTER_PW_OK},
    {"12345678", 8, REGISTER_PW_OK},
    {"1234567", 8, REGISTER_PW_TOO_SHORT},
    {"", 1, REGISTER_PW_TOO_SHORT},
    {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 4, REGISTER_PW_OK}, /* counted in characters */
    {"\xc3\xa9\xc3\xa9\xc3\xa9", 4, REGISTER_PW_TOO_SHORT},
    {"\xc2\xad\xc2\xad\xc2\xad\xc2\xad" "ab", 4, REGISTER_PW_TOO_SHORT}, /* soft hyphens vanish */
    {"tab\there-pw", 1, REGISTER_PW_SASLPREP},
    {"del\x7fhere-pw", 1, REGISTER_PW_SASLPREP},
    {"private\xee\x80\x80use", 1, REGISTER_PW_SASLPREP}, /* U+E000 */
    {"not utf-8 \xff", 1, REGISTER_PW_SASLPREP},
};

START_TEST(test_password_policy)
{
    ck_assert_msg(register_password_check(passwords[_i].password, passwords[_i].min) ==
                      passwords[_i].want,
                  "password %d", _i);
}
END_TEST

START_TEST(test_password_too_long)
{
    char *p = malloc(REGISTER_PASSWORD_MAX + 2);
    memset(p, 'a', REGISTER_PASSWORD_MAX + 1);
    p[REGISTER_PASSWORD_MAX + 1] = '\0';
    ck_assert_int_eq(register_password_check(p, 8), REGISTER_PW_TOO_LONG);
    p[REGISTER_PASSWORD_MAX] = '\0';
    ck_assert_int_eq(register_password_check(p, 8), REGISTER_PW_OK);
    free(p);
    ck_assert_ptr_nonnull(strstr(register_password_text(REGISTER_PW_TOO_SHORT), "short"));
    ck_assert_ptr_nonnull(strstr(register_password_text(REGISTER_PW_SASLPREP), "SASLprep"));
}
END_TEST

START_TEST(test_tokens)
{
    ck_assert(register_token_valid("abcXYZ019_-"));
    ck_assert(!register_token_valid(""));
    ck_assert(!register_token_valid("has space"));
    ck_assert(!register_token_valid("slash/"));
    ck_assert(!register_token_valid("colon:"));
    char t[REGISTER_TOKEN_MAX + 2];
    memset(t, 'a', sizeof t - 1);
    t[sizeof t - 1] = '\0';
    ck_assert(!register_token_valid(t));
    t[REGISTER_TOKEN_MAX] = '\0';
    ck_assert(register_token_valid(t));
}
END_TEST

START_TEST(test_creds_join_split)
{
    char buf[64], *a, *b;
    ck_assert_int_eq(register_creds_join(buf, sizeof buf, "one", "two"), 0);
    ck_assert_int_eq(register_creds_split(buf, &a, &b), 0);
    ck_assert_str_eq(a, "one");
    ck_assert_str_eq(b, "two");
    ck_assert_int_eq(register_creds_join(buf, 6, "one", "two"), -1);
    char bad1[] = "no newline", bad2[] = "\nsecond", bad3[] = "first\n", bad4[] = "a\nb\nc";
    ck_assert_int_eq(register_creds_split(bad1, &a, &b), -1);
    ck_assert_int_eq(register_creds_split(bad2, &a, &b), -1);
    ck_assert_int_eq(register_creds_split(bad3, &a, &b), -1);
    ck_assert_int_eq(register_creds_split(bad4, &a, &b), -1);
}
END_TEST

static xml_node_t *query(void)
{
    xml_node_t *q = xml_node_new("query", NS_REGISTER);
    return q;
}

START_TEST(test_form_values)
{
    int twice = 0;
    xml_node_t *q = query();
    xml_node_add_text(xml_node_new_child(q, "username", NS_REGISTER), "juliet", 6);
    char *v = register_form_value(q, "username", &twice);
    ck_assert_str_eq(v, "juliet");
    free(v);
    ck_assert_ptr_null(register_form_value(q, "password", &twice));
    ck_assert_int_eq(twice, 0);
    /* The data form too; a field in both forms counts as given twice. */
    xml_node_t *x = xml_node_new_child(q, "x", NS_XDATA);
    xml_node_set_attr(x, "type", "submit");
    xml_node_t *f = xml_node_new_child(x, "field", NS_XDATA);
    xml_node_set_attr(f, "var", "password");
    xml_node_add_text(xml_node_new_child(f, "value", NS_XDATA), "secret-pw", 9);
    f = xml_node_new_child(x, "field", NS_XDATA);
    xml_node_set_attr(f, "var", "username");
    xml_node_add_text(xml_node_new_child(f, "value", NS_XDATA), "romeo", 5);
    v = register_form_value(q, "password", &twice);
    ck_assert_str_eq(v, "secret-pw");
    free(v);
    ck_assert_int_eq(twice, 0);
    v = register_form_value(q, "username", &twice);
    ck_assert_str_eq(v, "juliet");
    free(v);
    ck_assert_int_eq(twice, 1);
    /* A form of type 'form' (not submitted) is not read. */
    xml_node_set_attr(x, "type", "form");
    twice = 0;
    ck_assert_ptr_null(register_form_value(q, "password", &twice));
    xml_node_free(&q);
}
END_TEST

/* The credentials xmppctl, the frontend and the router make check against the password
 * as a client prepares it. */
START_TEST(test_creds_make)
{
    char *s1, *s256;
    ck_assert_int_eq(scram_creds_make("I\xc2\xadX-password", 4096, &s1, &s256), 0);
    scram_cred_t c1, c256;
    ck_assert_int_eq(scram_cred_decode(&c1, SCRAM_SHA1, s1), 0);
    ck_assert_int_eq(scram_cred_decode(&c256, SCRAM_SHA256, s256), 0);
    ck_assert_uint_eq(c1.iter, 4096);
    ck_assert(scram_cred_check_password(&c1, "IX-password"));
    ck_assert(scram_cred_check_password(&c256, "IX-password"));
    ck_assert(!scram_cred_check_password(&c256, "ix-password"));
    free(s1);
    free(s256);
    ck_assert_int_eq(scram_creds_make("bad\x07", 4096, &s1, &s256), -1);
    ck_assert_ptr_null(s1);
    ck_assert_int_eq(scram_creds_make("\xc2\xad", 4096, &s1, &s256), -2);
    ck_assert_ptr_null(s256);
}
END_TEST

Suite *make_registration_suite(void)
{
    Suite *s = suite_create("registration");
    TCase *tc = tcase_create("rules");
    tcase_add_loop_test(tc, test_password_policy, 0, sizeof passwords / sizeof passwords[0]);
    tcase_add_test(tc, test_password_too_long);
    tcase_add_test(tc, test_tokens);
    tcase_add_test(tc, test_creds_join_split);
    tcase_add_test(tc, test_form_values);
    tcase_add_test(tc, test_creds_make);
    suite_add_tcase(s, tc);
    return s;
}
