/* Unit tests for common/jid: RFC 7622 splitting and stringprep preparation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"
#include "suites.h"

/* Valid JIDs and their prepared parts. */
static const struct {
    const char *in;
    const char *local, *domain, *resource;
} jid_valid[] = {
    /* Localpart and domain casefold, the resource keeps case. */
    {"Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony"},
    {"example.com", "", "example.com", ""},
    {"juliet@example.com", "juliet", "example.com", ""},
    {"example.com/Balcony", "", "example.com", "Balcony"},
    /* Resource: spaces kept, and everything after the first '/' belongs to it (3.1). */
    {"juliet@example.com/The Balcony Room", "juliet", "example.com", "The Balcony Room"},
    {"example.com/foo@bar", "", "example.com", "foo@bar"},
    {"juliet@example.com/foo/bar", "juliet", "example.com", "foo/bar"},
    {"juliet@example.com/@", "juliet", "example.com", "@"},
    {"juliet@example.com//", "juliet", "example.com", "/"},
    {"a@b", "a", "b", ""},
    /* One trailing dot is stripped (3.2). */
    {"example.com.", "", "example.com", ""},
    {"Juliet@Example.com./r", "juliet", "example.com", "r"},
    /* IP literals. */
    {"192.0.2.1", "", "192.0.2.1", ""},
    {"juliet@192.0.2.1/r", "juliet", "192.0.2.1", "r"},
    {"[::1]", "", "[::1]", ""},
    {"juliet@[::1]/r", "juliet", "[::1]", "r"},
    {"[2001:DB8::1]", "", "[2001:db8::1]", ""},
    /* One address, one form (RFC 5952; found by fuzz_jid). */
    {"[2001:0db8:0:0::1]", "", "[2001:db8::1]", ""},
    {"x@[0:0:0:0:0:ffff:c000:201]", "x", "[::ffff:192.0.2.1]", ""},
    /* IDNA label separators U+3002, U+FF0E, U+FF61 are dots (RFC 3490 3.1; found by
     * fuzz_jid: U+3002 made "example\u3002com" a domain of its own). */
    {"x@example\xe3\x80\x82" "com", "x", "example.com", ""},
    {"x@example\xef\xbc\x8e" "com", "x", "example.com", ""},
    {"x@example\xef\xbd\xa1" "com\xe3\x80\x82/r", "x", "example.com", "r"},
    /* Non-ASCII: U+015C casefolds to U+015D, U+00C9 to U+00E9. */
    {"\xc5\x9ctrange@example.com", "\xc5\x9dtrange", "example.com", ""},
    {"\xc3\x89milie@example.com", "\xc3\xa9milie", "example.com", ""},
    {"x@M\xc3\x9c" "NCHEN.example", "x", "m\xc3\xbc" "nchen.example", ""},
    /* Soft hyphen U+00AD maps to nothing; fullwidth letters fold by NFKC. */
    {"ju\xc2\xadliet@example.com", "juliet", "example.com", ""},
    {"\xef\xbc\xaa\xef\xbc\xb5liet@example.com", "juliet", "example.com", ""},
    {"example.com/\xc5\x9ctrange", "", "example.com", "\xc5\x9ctrange"},
    /* Hyphens inside labels. */
    {"xn--mnchen-3ya.example", "", "xn--mnchen-3ya.example", ""},
};

START_TEST(test_jid_valid)
{
    jid_t j;
    ck_assert_msg(jid_parse(&j, jid_valid[_i].in) == 0, "rejected: %s", jid_valid[_i].in);
    ck_assert_str_eq(j.local, jid_valid[_i].local);
    ck_assert_str_eq(j.domain, jid_valid[_i].domain);
    ck_assert_str_eq(j.resource, jid_valid[_i].resource);
}
END_TEST

/* Invalid JIDs. */
static const char *const jid_invalid[] = {
    "",
    "@example.com",
    "juliet@",
    "example.com/",
    "juliet@example.com/",
    "@",
    "/",
    "@/",
    "juliet@/r",
    /* The first '@' ends the localpart, so "b@c" is the domain, and '@' is not allowed. */
    "a@b@c",
    /* Nodeprep forbids " & ' : < > and the space in localparts. */
    "ju\"liet@example.com",
    "ju&liet@example.com",
    "ju'liet@example.com",
    "ju:liet@example.com",
    "ju<liet@example.com",
    "ju>liet@example.com",
    "ju liet@example.com",
    /* Domain syntax. */
    "example..com",
    ".example.com",
    "example.com..",
    ".",
    /* U+3002 is a dot: an empty label, or only the root. */
    "example\xe3\x80\x82\xe3\x80\x82" "com",
    "\xe3\x80\x82",
    "juliet@.",
    "-example.com",
    "example-.com",
    "exa mple.com",
    "exa_mple.com",
    "exa:mple.com",
    "256.0.0.1",
    "1.2.3",
    "01.2.3.4",
    "[::1",
    "[]",
    "[zz::1]",
    "[1.2.3.4]",
    "[::1]x",
    /* Control characters. */
    "ju\x01liet@example.com",
    "exa\x01mple.com",
    "example.com/res\x07",
    "example.com/res\x7f",
    "example.com/a\nb",
    /* U+0221 is unassigned in Unicode 3.2 (stored-strings rules refuse it). */
    "\xc8\xa1@example.com",
    "\xc8\xa1.example",
    "example.com/\xc8\xa1",
    /* Prohibited: private use U+E000, U+FFFD, non-ASCII space U+3000. */
    "\xee\x80\x80@example.com",
    "example.com/\xef\xbf\xbd",
    "a\xe3\x80\x80z@example.com",
    /* Bidi: Hebrew alef followed by a Latin letter. */
    "\xd7\x90" "a@example.com",
    /* Invalid UTF-8. */
    "\xff@example.com",
    "example.com/\xc3",
    "ex\xc0\xafmple.com",
    /* Mapped to nothing: an empty localpart after preparation. */
    "\xc2\xad@example.com",
};

START_TEST(test_jid_invalid)
{
    jid_t j;
    ck_assert_msg(jid_parse(&j, jid_invalid[_i]) == -1, "accepted: %s", jid_invalid[_i]);
}
END_TEST

static char *jid_repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* A domain of `labels` labels of `len` bytes each, separated by dots. */
static char *jid_make_domain(size_t labels, size_t len)
{
    size_t total = labels * (len + 1);
    char *s = malloc(total);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < total; i++)
        s[i] = (i % (len + 1) == len) ? '.' : 'd';
    s[total - 1] = '\0';
    return s;
}

START_TEST(test_jid_lengths)
{
    char buf[JID_MAX + 64];
    jid_t j;
    char *l1023 = jid_repeat('l', 1023), *l1024 = jid_repeat('l', 1024);
    char *r1023 = jid_repeat('r', 1023), *r1024 = jid_repeat('r', 1024);
    char *d1023 = jid_make_domain(16, 63); /* 16 * 63 + 15 dots = 1023 */
    char *d1087 = jid_make_domain(17, 63);
    ck_assert_uint_eq(strlen(d1023), 1023);

    snprintf(buf, sizeof buf, "%s@example.com", l1023);
    ck_assert_int_eq(jid_parse(&j, buf), 0);
    ck_assert_uint_eq(strlen(j.local), 1023);
    snprintf(buf, sizeof buf, "%s@example.com", l1024);
    ck_assert_int_eq(jid_parse(&j, buf), -1);

    snprintf(buf, sizeof buf, "example.com/%s", r1023);
    ck_assert_int_eq(jid_parse(&j, buf), 0);
    ck_assert_uint_eq(strlen(j.resource), 1023);
    snprintf(buf, sizeof buf, "example.com/%s", r1024);
    ck_assert_int_eq(jid_parse(&j, buf), -1);

    ck_assert_int_eq(jid_parse(&j, d1023), 0);
    ck_assert_int_eq(jid_parse(&j, d1087), -1);

    /* The longest JID: 1023 + '@' + 1023 + '/' + 1023 = 3071 bytes. */
    snprintf(buf, sizeof buf, "%s@%s/%s", l1023, d1023, r1023);
    ck_assert_uint_eq(strlen(buf), JID_MAX);
    ck_assert_int_eq(jid_parse(&j, buf), 0);
    char full[JID_MAX + 1];
    ck_assert_int_eq(jid_full(&j, full, sizeof full), JID_MAX);
    ck_assert_str_eq(full, buf);
    snprintf(buf, sizeof buf, "%s@%s/%sr", l1023, d1023, r1023);
    ck_assert_int_eq(jid_parse(&j, buf), -1);

    /* Labels: 63 bytes fine, 64 not. */
    char *lab63 = jid_repeat('a', 63), *lab64 = jid_repeat('a', 64);
    snprintf(buf, sizeof buf, "%s.example", lab63);
    ck_assert_int_eq(jid_parse(&j, buf), 0);
    snprintf(buf, sizeof buf, "%s.example", lab64);
    ck_assert_int_eq(jid_parse(&j, buf), -1);
    snprintf(buf, sizeof buf, "juliet@example.%s", lab64);
    ck_assert_int_eq(jid_parse(&j, buf), -1);

    /* Preparation can grow a part: U+0130 (2 bytes) casefolds to "i" U+0307 (3 bytes).
     * 341 of them come to 1023 bytes, 342 to 1026, which no longer fits. */
    char grow[700];
    size_t n = 0;
    for (int i = 0; i < 342; i++) {
        grow[n++] = '\xc4';
        grow[n++] = '\xb0';
    }
    grow[n] = '\0';
    ck_assert_int_eq(jid_prep_local(j.local, grow), -1);
    grow[n - 2] = '\0';
    ck_assert_int_eq(jid_prep_local(j.local, grow), 0);
    ck_assert_uint_eq(strlen(j.local), 1023);

    free(l1023);
    free(l1024);
    free(r1023);
    free(r1024);
    free(d1023);
    free(d1087);
    free(lab63);
    free(lab64);
}
END_TEST

START_TEST(test_jid_prep_parts)
{
    char out[JID_PART_MAX + 1];
    ck_assert_int_eq(jid_prep_local(out, "JULIET"), 0);
    ck_assert_str_eq(out, "juliet");
    ck_assert_int_eq(jid_prep_local(out, ""), -1);
    ck_assert_int_eq(jid_prep_local(out, "a/b"), -1);
    ck_assert_int_eq(jid_prep_local(out, "a@b"), -1);
    ck_assert_int_eq(jid_prep_domain(out, "Example.COM."), 0);
    ck_assert_str_eq(out, "example.com");
    ck_assert_int_eq(jid_prep_domain(out, ""), -1);
    ck_assert_int_eq(jid_prep_domain(out, "a/b"), -1);
    ck_assert_int_eq(jid_prep_domain(out, "a@b"), -1);
    ck_assert_int_eq(jid_prep_resource(out, "My Phone"), 0);
    ck_assert_str_eq(out, "My Phone");
    ck_assert_int_eq(jid_prep_resource(out, "a/b@c"), 0);
    ck_assert_str_eq(out, "a/b@c");
    ck_assert_int_eq(jid_prep_resource(out, ""), -1);
}
END_TEST

START_TEST(test_jid_failed_parse_leaves_output)
{
    jid_t j;
    ck_assert_int_eq(jid_parse(&j, "juliet@example.com/r"), 0);
    ck_assert_int_eq(jid_parse(&j, "romeo@example..net/x"), -1);
    ck_assert_str_eq(j.local, "juliet");
    ck_assert_str_eq(j.domain, "example.com");
    ck_assert_str_eq(j.resource, "r");
}
END_TEST

START_TEST(test_jid_equal_after_prep)
{
    /* Equivalent spellings prepare to byte-identical structs (memcmp-comparable). */
    jid_t a, b;
    ck_assert_int_eq(jid_parse(&a, "Juliet@Example.COM./Balcony"), 0);
    ck_assert_int_eq(jid_parse(&b, "juliet@example.com/Balcony"), 0);
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
}
END_TEST

/* jid_bare / jid_full output for parsed JIDs. */
static const struct {
    const char *in, *bare, *full;
} jid_format[] = {
    {"Juliet@Example.COM/Balcony", "juliet@example.com", "juliet@example.com/Balcony"},
    {"juliet@example.com", "juliet@example.com", "juliet@example.com"},
    {"example.com/Balcony", "example.com", "example.com/Balcony"},
    {"example.com", "example.com", "example.com"},
};

START_TEST(test_jid_format)
{
    jid_t j;
    char out[256];
    const char *bare = jid_format[_i].bare, *full = jid_format[_i].full;
    int blen = (int)strlen(bare), flen = (int)strlen(full);

    ck_assert_int_eq(jid_parse(&j, jid_format[_i].in), 0);
    ck_assert_int_eq(jid_bare(&j, out, sizeof out), blen);
    ck_assert_str_eq(out, bare);
    ck_assert_int_eq(jid_full(&j, out, sizeof out), flen);
    ck_assert_str_eq(out, full);

    /* Exactly enough room (length + NUL), then one byte short. */
    ck_assert_int_eq(jid_bare(&j, out, (size_t)blen + 1), blen);
    ck_assert_str_eq(out, bare);
    ck_assert_int_eq(jid_bare(&j, out, (size_t)blen), -1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(jid_full(&j, out, (size_t)flen + 1), flen);
    ck_assert_str_eq(out, full);
    ck_assert_int_eq(jid_full(&j, out, (size_t)flen), -1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(jid_bare(&j, NULL, 0), -1);
    ck_assert_int_eq(jid_full(&j, NULL, 0), -1);
}
END_TEST


/* The printable-ASCII fast path gives what libidn's stringprep gives, for every printable
 * character alone, with letters around it, and for whole JIDs. */
START_TEST(test_jid_ascii_fast_path_matches_libidn)
{
    int (*const preps[])(char *, const char *) = {jid_prep_local, jid_prep_domain,
                                                   jid_prep_resource};
    char in[8], fast[JID_PART_MAX + 1], slow[JID_PART_MAX + 1];
    for (int c = 0x20; c <= 0x7E; c++) {
        const char *forms[] = {"%c", "a%cB", "%cZ9", "Xx%c"};
        for (size_t f = 0; f < 4; f++) {
            snprintf(in, sizeof in, forms[f], c);
            for (size_t p = 0; p < 3; p++) {
                jid_ascii_fast_path = 1;
                int rf = preps[p](fast, in);
                jid_ascii_fast_path = 0;
                int rs = preps[p](slow, in);
                jid_ascii_fast_path = 1;
                ck_assert_msg(rf == rs && (rf < 0 || strcmp(fast, slow) == 0),
                              "part %zu of '%s': fast %d '%s', libidn %d '%s'", p, in, rf,
                              rf < 0 ? "" : fast, rs, rs < 0 ? "" : slow);
            }
        }
    }
    const char *jids[] = {"Juliet@Example.COM/Balcony Room", "romeo@example.com/ab c",
                          "a b@example.com", "x@EXAMPLE.com.", "x@1.2.3.4", "x@-bad.com",
                          "HEAD@[::A]/R", "\"q\"@example.com"};
    for (size_t i = 0; i < sizeof jids / sizeof jids[0]; i++) {
        jid_t a, b;
        jid_ascii_fast_path = 0;
        int rs = jid_parse(&b, jids[i]);
        jid_ascii_fast_path = 1;
        int rf = jid_parse(&a, jids[i]);
        ck_assert_msg(rf == rs && (rf < 0 || memcmp(&a, &b, sizeof a) == 0), "%s", jids[i]);
    }
}
END_TEST

Suite *make_jid_suite(void)
{
    Suite *s = suite_create("jid");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_jid_valid, 0, sizeof jid_valid / sizeof jid_valid[0]);
    tcase_add_loop_test(tc, test_jid_invalid, 0, sizeof jid_invalid / sizeof jid_invalid[0]);
    tcase_add_test(tc, test_jid_lengths);
    tcase_add_test(tc, test_jid_prep_parts);
    tcase_add_test(tc, test_jid_failed_parse_leaves_output);
    tcase_add_test(tc, test_jid_equal_after_prep);
    tcase_add_test(tc, test_jid_ascii_fast_path_matches_libidn);
    suite_add_tcase(s, tc);

    tc = tcase_create("format");
    tcase_add_loop_test(tc, test_jid_format, 0, sizeof jid_format / sizeof jid_format[0]);
    suite_add_tcase(s, tc);
    return s;
}
