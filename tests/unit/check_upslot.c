/* XEP-0363 slot rules (common/upslot.c): names, content types, the PUT token and its
 * signature, slot paths, Range headers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "upslot.h"

#define ID "0123456789abcdef0123456789abcdef"

START_TEST(names)
{
    static const struct {
        const char *name;
        int ok;
    } cases[] = {
        {"photo.jpg", 1}, {"holiday photo é.png", 1}, {"..a", 1}, {"a..", 1},
        {"", 0}, {".", 0}, {"..", 0}, {"a/b", 0}, {"a\\b", 0}, {"a\nb", 0}, {"a\x7f", 0},
        {"\xc3", 0},           /* truncated UTF-8 */
        {"\xc0\xaf", 0},       /* overlong '/' */
        {"\xed\xa0\x80", 0},   /* surrogate */
        {"\xc2\x85", 0},       /* C1 control (NEL) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(upslot_name_ok(cases[i].name) == cases[i].ok, "%s", cases[i].name);
    char longname[300];
    memset(longname, 'a', 255);
    longname[255] = '\0';
    ck_assert(upslot_name_ok(longname));
    longname[255] = 'a';
    longname[256] = '\0';
    ck_assert(!upslot_name_ok(longname));
}
END_TEST

START_TEST(ctypes)
{
    ck_assert(upslot_ctype_ok("image/jpeg"));
    ck_assert(upslot_ctype_ok("text/plain; charset=utf-8"));
    ck_assert(upslot_ctype_ok("application/vnd.oasis.opendocument.text"));
    ck_assert(!upslot_ctype_ok(""));
    ck_assert(!upslot_ctype_ok("image"));
    ck_assert(!upslot_ctype_ok("image/"));
    ck_assert(!upslot_ctype_ok("/jpeg"));
    ck_assert(!upslot_ctype_ok("no type"));
    ck_assert(!upslot_ctype_ok("text/plain\r\nX-Evil: 1"));
}
END_TEST

START_TEST(token_round_trip_and_signature)
{
    char sig[UPSLOT_SIG_LEN + 1];
    ck_assert_int_eq(upslot_sign("s3cret", ID, "a.txt", 42, "text/plain", 1700000000,
                                 "alice@example.org", sig), 0);
    ck_assert_int_eq(strlen(sig), UPSLOT_SIG_LEN);
    buf_t b = BUF_INIT;
    upslot_token_make(&b, 1700000000, 42, "text/plain", "alice@example.org", sig);
    upslot_token_t t;
    ck_assert_int_eq(upslot_token_parse(b.data, &t), 0);
    ck_assert_int_eq(t.expiry, 1700000000);
    ck_assert_int_eq(t.size, 42);
    ck_assert_str_eq(t.ctype, "text/plain");
    ck_assert_str_eq(t.bare, "alice@example.org");
    ck_assert(upslot_verify("s3cret", ID, "a.txt", &t));
    /* Any other secret, id, name, size, type, expiry or owner fails. */
    ck_assert(!upslot_verify("other", ID, "a.txt", &t));
    ck_assert(!upslot_verify("s3cret", "1123456789abcdef0123456789abcdef", "a.txt", &t));
    ck_assert(!upslot_verify("s3cret", ID, "b.txt", &t));
    upslot_token_t u = t;
    u.size = 43;
    ck_assert(!upslot_verify("s3cret", ID, "a.txt", &u));
    u = t;
    strcpy(u.ctype, "text/html");
    ck_assert(!upslot_verify("s3cret", ID, "a.txt", &u));
    u = t;
    u.expiry++;
    ck_assert(!upslot_verify("s3cret", ID, "a.txt", &u));
    u = t;
    strcpy(u.bare, "mallory@example.org");
    ck_assert(!upslot_verify("s3cret", ID, "a.txt", &u));
    buf_free(&b);
}
END_TEST

START_TEST(tokens_refused)
{
    upslot_token_t t;
    const char *sig = "abababababababababababababababababababababababababababababababab";
    char ok[256];
    snprintf(ok, sizeof ok, "Bearer 1.2..61.%s", sig);
    ck_assert_int_eq(upslot_token_parse(ok, &t), 0);
    const char *bad[] = {
        "", "Bearer ", "Basic 1.2..61.x", "Bearer 1.2..61.abab",
        "Bearer -1.2..61.abababababababababababababababababababababababababababababababab",
        "Bearer 01.2..61.abababababababababababababababababababababababababababababababab",
        "Bearer 1.2...abababababababababababababababababababababababababababababababab",
        "Bearer 1.2..6.abababababababababababababababababababababababababababababababab",
        "Bearer 1.2..0061.abababababababababababababababababababababababababababababababab",
        "Bearer 1.2..61.ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB",
        "Bearer 1.2..61.abababababababababababababababababababababababababababababababab.",
        "Bearer 1.2.6e6f.61.abababababababababababababababababababababababababababababababab",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(upslot_token_parse(bad[i], &t) < 0, "%s", bad[i]);
}
END_TEST

START_TEST(paths)
{
    upslot_path_t p;
    ck_assert_int_eq(upslot_path_parse("/upload/" ID "/a b.txt", "/upload", &p), 0);
    ck_assert_str_eq(p.id, ID);
    ck_assert_str_eq(p.name, "a b.txt");
    ck_assert_int_eq(upslot_path_parse("/" ID "/x", "", &p), 0);
    ck_assert_int_eq(upslot_path_parse("/other/" ID "/x", "/upload", &p), -2);
    ck_assert_int_eq(upslot_path_parse("/uploadx/" ID "/x", "/upload", &p), -2);
    ck_assert_int_eq(upslot_path_parse("/etc/passwd", "/upload", &p), -2);
    ck_assert_int_eq(upslot_path_parse("/upload/" ID "/..", "/upload", &p), -1);
    ck_assert_int_eq(upslot_path_parse("/upload/" ID "/../../etc/passwd", "/upload", &p), -1);
    ck_assert_int_eq(upslot_path_parse("/upload/" ID "/", "/upload", &p), -1);
    ck_assert_int_eq(upslot_path_parse("/upload/" ID, "/upload", &p), -1);
    ck_assert_int_eq(upslot_path_parse("/upload/../" ID "/x", "/upload", &p), -1);
    ck_assert_int_eq(upslot_path_parse("/upload/0123456789ABCDEF0123456789abcdef/x", "/upload", &p), -1);
    char path[64];
    ck_assert_int_eq(upslot_url_path("https://upload.example:5443/upload/", path, sizeof path), 0);
    ck_assert_str_eq(path, "/upload");
    ck_assert_int_eq(upslot_url_path("http://127.0.0.1:5280", path, sizeof path), 0);
    ck_assert_str_eq(path, "");
    ck_assert_int_eq(upslot_url_path("ftp://x/y", path, sizeof path), -1);
    ck_assert_int_eq(upslot_url_path("https://x/y?z", path, sizeof path), -1);
    buf_t b = BUF_INIT;
    upslot_url_escape(&b, "a b/é~.txt");
    ck_assert_str_eq(b.data, "a%20b%2F%C3%A9~.txt");
    buf_free(&b);
}
END_TEST

START_TEST(ranges)
{
    long long off, len;
    ck_assert_int_eq(upslot_range_parse("bytes=10-19", 100, &off, &len), 1);
    ck_assert(off == 10 && len == 10);
    ck_assert_int_eq(upslot_range_parse("bytes=90-", 100, &off, &len), 1);
    ck_assert(off == 90 && len == 10);
    ck_assert_int_eq(upslot_range_parse("bytes=90-500", 100, &off, &len), 1);
    ck_assert(off == 90 && len == 10);
    ck_assert_int_eq(upslot_range_parse("bytes=-5", 100, &off, &len), 1);
    ck_assert(off == 95 && len == 5);
    ck_assert_int_eq(upslot_range_parse("bytes=-500", 100, &off, &len), 1);
    ck_assert(off == 0 && len == 100);
    ck_assert_int_eq(upslot_range_parse("bytes=100-", 100, &off, &len), -1);
    ck_assert_int_eq(upslot_range_parse("bytes=-0", 100, &off, &len), -1);
    ck_assert_int_eq(upslot_range_parse("bytes=0-1,5-6", 100, &off, &len), 0);
    ck_assert_int_eq(upslot_range_parse("items=0-1", 100, &off, &len), 0);
    ck_assert_int_eq(upslot_range_parse("bytes=5-1", 100, &off, &len), 0);
    ck_assert_int_eq(upslot_range_parse("bytes=x-1", 100, &off, &len), 0);
}
END_TEST

Suite *make_upslot_suite(void)
{
    Suite *s = suite_create("upslot");
    TCase *tc = tcase_create("upslot");
    tcase_add_test(tc, names);
    tcase_add_test(tc, ctypes);
    tcase_add_test(tc, token_round_trip_and_signature);
    tcase_add_test(tc, tokens_refused);
    tcase_add_test(tc, paths);
    tcase_add_test(tc, ranges);
    suite_add_tcase(s, tc);
    return s;
}
