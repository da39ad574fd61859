/* XEP-0115 verification (session-router/core/capsver.c) against the XEP's own examples and
 * the refusals of section 5.4. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "capsver.h"
#include "stanza.h"
#include "suites.h"

#define Q_OPEN "<query xmlns='http://jabber.org/protocol/disco#info'>"
#define FEATURES                                                                                   \
    "<feature var='http://jabber.org/protocol/caps'/>"                                            \
    "<feature var='http://jabber.org/protocol/disco#info'/>"                                      \
    "<feature var='http://jabber.org/protocol/disco#items'/>"                                     \
    "<feature var='http://jabber.org/protocol/muc'/>"
/* Section 5.2. */
#define SIMPLE Q_OPEN "<identity category='client' name='Exodus 0.9.1' type='pc'/>" FEATURES "</query>"
#define SIMPLE_VER "QgayPKawpkPSDYmwT/WM94uAlu0="
/* Section 5.3: two languages and a software-information form. */
#define COMPLEX                                                                                    \
    Q_OPEN "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"                \
           "<identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>" FEATURES   \
           "<x xmlns='jabber:x:data' type='result'>"                                               \
           "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>" \
           "<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>"              \
           "<field var='os'><value>Mac</value></field>"                                          \
           "<field var='os_version'><value>10.5.1</value></field>"                               \
           "<field var='software'><value>Psi</value></field>"                                    \
           "<field var='software_version'><value>0.11</value></field></x></query>"
#define COMPLEX_VER "q07IKJEyjvHSyhy//CH0CxmKi8w="

static int check(const char *xml, const char *hash, const char *ver, size_t *n_out)
{
    xml_node_t *q = stanza_parse(xml, strlen(xml));
    ck_assert_ptr_nonnull(q);
    char **features = NULL;
    size_t n = 0;
    int ok = capsver_check(q, hash, ver, &features, &n);
    if (ok) {
        for (size_t i = 1; i < n; i++)
            ck_assert_int_lt(strcmp(features[i - 1], features[i]), 0);
        capsver_free(features, n);
    }
    if (n_out)
        *n_out = n;
    xml_node_free(&q);
    return ok;
}

START_TEST(test_examples_verify)
{
    size_t n = 0;
    ck_assert_int_eq(check(SIMPLE, "sha-1", SIMPLE_VER, &n), 1);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(check(COMPLEX, "sha-1", COMPLEX_VER, NULL), 1);
}
END_TEST

START_TEST(test_mismatch_refused)
{
    ck_assert_int_eq(check(SIMPLE, "sha-1", COMPLEX_VER, NULL), 0);
    ck_assert_int_eq(check(SIMPLE, "sha-256", SIMPLE_VER, NULL), 0);
    ck_assert_int_eq(check(SIMPLE, "md5", SIMPLE_VER, NULL), 0);
    ck_assert_int_eq(capsver_hash_supported("md5"), 0);
    ck_assert_int_eq(capsver_hash_supported("sha-256"), 1);
}
END_TEST

/* 5.4 step 3.4 and 3.6: a feature twice, a FORM_TYPE that is not hidden, a form type twice. */
START_TEST(test_malformed_refused)
{
    const char *dup = Q_OPEN "<identity category='client' type='pc' name='x'/>" FEATURES
                             "<feature var='http://jabber.org/protocol/muc'/></query>";
    ck_assert_int_eq(check(dup, "sha-1", "anything", NULL), 0);
    const char *two_forms =
        Q_OPEN "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
               "<value>urn:a</value></field></x><x xmlns='jabber:x:data' type='result'>"
               "<field var='FORM_TYPE' type='hidden'><value>urn:a</value></field></x></query>";
    ck_assert_int_eq(check(two_forms, "sha-1", "anything", NULL), 0);
}
END_TEST

Suite *make_capsver_suite(void)
{
    Suite *s = suite_create("capsver");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_examples_verify);
    tcase_add_test(tc, test_mismatch_refused);
    tcase_add_test(tc, test_malformed_refused);
    suite_add_tcase(s, tc);
    return s;
}
