/* The admin endpoint's request checks (common/adminproto.c): UTF-8 text, frame and size
 * bounds. */
#include <check.h>
#include <string.h>

#include "adminproto.h"
#include "suites.h"

static const struct {
    const char *text;
    int ok;
} texts[] = {
    {"", 1},
    {"kick alice@localhost/phone", 1},
    {"tab\tis fine", 1},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 1},       /* 2, 3 and 4 bytes */
    {"\xf4\x8f\xbf\xbf", 1},                                 /* U+10FFFF */
    {"new\nline", 0},
    {"bell\x07", 0},
    {"del\x7f", 0},
    {"c1 control \xc2\x85", 0},                             /* U+0085 */
    {"overlong \xc0\xaf", 0},
    {"overlong \xe0\x80\xaf", 0},
    {"surrogate \xed\xa0\x80", 0},
    {"past U+10FFFF \xf4\x90\x80\x80", 0},
    {"truncated \xe2\x82", 0},
    {"lone continuation \x80", 0},
    {"\xff", 0},
};

START_TEST(test_text)
{
    ck_assert_msg(adminproto_text_ok(texts[_i].text, strlen(texts[_i].text)) == texts[_i].ok,
                  "'%s'", texts[_i].text);
}
END_TEST

START_TEST(test_parse_request)
{
    static admin_request_t r;
    const char *why = NULL;
    zpart_t parts[] = {{"kick", 4}, {"a@b/c", 5}, {"", 0}};
    ck_assert_int_eq(adminproto_parse(&r, parts, 3, &why), 0);
    ck_assert_int_eq(r.argc, 3);
    ck_assert_str_eq(r.argv[0], "kick");
    ck_assert_str_eq(r.argv[1], "a@b/c");
    ck_assert_str_eq(r.argv[2], "");

    ck_assert_int_eq(adminproto_parse(&r, parts, 0, &why), -1);
    ck_assert_str_eq(why, "no command");
    zpart_t empty[] = {{"", 0}};
    ck_assert_int_eq(adminproto_parse(&r, empty, 1, &why), -1);
    zpart_t nul[] = {{"stats", 5}, {"a\0b", 3}};
    ck_assert_int_eq(adminproto_parse(&r, nul, 2, &why), -1);
    ck_assert_str_eq(why, "an argument holds a NUL byte");
    zpart_t bad[] = {{"user", 4}, {"\xc0\xaf", 2}};
    ck_assert_int_eq(adminproto_parse(&r, bad, 2, &why), -1);
    ck_assert_str_eq(why, "an argument is not UTF-8 text");
    zpart_t many[ADMIN_MAX_ARGS + 1];
    for (int i = 0; i <= ADMIN_MAX_ARGS; i++)
        many[i] = (zpart_t){"x", 1};
    ck_assert_int_eq(adminproto_parse(&r, many, ADMIN_MAX_ARGS, &why), 0);
    ck_assert_int_eq(adminproto_parse(&r, many, ADMIN_MAX_ARGS + 1, &why), -1);
    ck_assert_str_eq(why, "too many arguments");
}
END_TEST

START_TEST(test_parse_bounds)
{
    static admin_request_t r;
    static char big[ADMIN_ARG_MAX + 1];
    memset(big, 'a', sizeof big);
    const char *why = NULL;
    zpart_t one[] = {{"announce", 8}, {big, ADMIN_ARG_MAX}};
    ck_assert_int_eq(adminproto_parse(&r, one, 2, &why), 0);
    ck_assert_uint_eq(strlen(r.argv[1]), ADMIN_ARG_MAX);
    one[1].len = ADMIN_ARG_MAX + 1;
    ck_assert_int_eq(adminproto_parse(&r, one, 2, &why), -1);
    ck_assert_str_eq(why, "an argument is too long");
    /* Each argument within its bound, the request past ADMIN_REQUEST_MAX in all. */
    zpart_t three[] = {{big, ADMIN_ARG_MAX}, {big, ADMIN_ARG_MAX}, {big, 1}};
    ck_assert_int_eq(adminproto_parse(&r, three, 2, &why), 0);
    ck_assert_int_eq(adminproto_parse(&r, three, 3, &why), -1);
    ck_assert_str_eq(why, "the request is too long");
}
END_TEST

Suite *make_adminproto_suite(void)
{
    Suite *s = suite_create("adminproto");
    TCase *tc = tcase_create("requests");
    tcase_add_loop_test(tc, test_text, 0, sizeof texts / sizeof texts[0]);
    tcase_add_test(tc, test_parse_request);
    tcase_add_test(tc, test_parse_bounds);
    suite_add_tcase(s, tc);
    return s;
}
