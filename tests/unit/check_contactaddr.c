/* The contact_addresses key (session-router/core/contactaddr.c): its text, the errors it
 * names, and the XEP-0128 form XEP-0157 asks for. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "contactaddr.h"
#include "suites.h"

static char err[512];

static char *form_text(const contactaddr_t *c)
{
    xml_node_t *x = contactaddr_form(c);
    if (!x)
        return NULL;
    buf_t b = BUF_INIT;
    xml_serialize(x, NULL, &b);
    xml_node_free(&x);
    char *s = strndup(b.data, b.len);
    buf_free(&b);
    return s;
}

START_TEST(groups_and_addresses_in_order)
{
    contactaddr_t c;
    ck_assert_int_eq(contactaddr_parse(" support = https://example.org/help ; abuse=mailto:"
                                       "abuse@example.org, xmpp:abuse@example.org;",
                                       &c, err, sizeof err),
                     0);
    ck_assert_uint_eq(contactaddr_count(&c), 3);
    char *x = form_text(&c);
    /* FORM_TYPE first and hidden; then the fields in the registry's order. */
    ck_assert_str_eq(x, "<x xmlns=\"jabber:x:data\" type=\"result\">"
                        "<field var=\"FORM_TYPE\" type=\"hidden\">"
                        "<value>http://jabber.org/network/serverinfo</value></field>"
                        "<field var=\"abuse-addresses\" type=\"list-multi\">"
                        "<value>mailto:abuse@example.org</value>"
                        "<value>xmpp:abuse@example.org</value></field>"
                        "<field var=\"support-addresses\" type=\"list-multi\">"
                        "<value>https://example.org/help</value></field></x>");
    free(x);
    contactaddr_free(&c);
    ck_assert_uint_eq(contactaddr_count(&c), 0);
}
END_TEST

START_TEST(every_kind_of_xep0157)
{
    contactaddr_t c;
    ck_assert_int_eq(contactaddr_parse("abuse=a:1;admin=a:2;feedback=a:3;sales=a:4;"
                                       "security=a:5;status=a:6;support=a:7",
                                       &c, err, sizeof err),
                     0);
    char *x = form_text(&c);
    const char *vars[] = {"abuse", "admin", "feedback", "sales", "security", "status",
                          "support"};
    for (size_t i = 0; i < 7; i++) {
        char want[64];
        snprintf(want, sizeof want, "<field var=\"%s-addresses\" type=\"list-multi\">", vars[i]);
        ck_assert_ptr_nonnull(strstr(x, want));
    }
    free(x);
    contactaddr_free(&c);
}
END_TEST

START_TEST(empty_text_gives_no_form)
{
    contactaddr_t c;
    ck_assert_int_eq(contactaddr_parse("", &c, err, sizeof err), 0);
    ck_assert_ptr_null(contactaddr_form(&c));
    ck_assert_int_eq(contactaddr_parse(" ; ", &c, err, sizeof err), 0);
    ck_assert_ptr_null(contactaddr_form(&c));
    contactaddr_free(&c);
}
END_TEST

static const struct {
    const char *text, *error;
} bad[] = {
    {"abuse", "'abuse' is not KIND=URI[,URI...]"},
    {"abuze=mailto:a@b", "unknown kind 'abuze'"},
    {"=mailto:a@b", "unknown kind ''"},
    {"abuse=mailto:a@b;abuse=xmpp:a@b", "kind 'abuse' is given twice"},
    {"abuse=", "kind 'abuse' has an empty address"},
    {"abuse=mailto:a@b,", "kind 'abuse' has an empty address"},
    {"admin=admin@example.org", "kind 'admin' has an address that is not a URI"},
    {"admin=xmpp:", "kind 'admin' has a URI with nothing after its scheme"},
    {"admin=1x:y", "kind 'admin' has an address that is not a URI"},
    {"admin=xmpp:a b@c", "kind 'admin' has an address with a space"},
    {"admin=xmpp:caf\xc3\xa9@c", "kind 'admin' has an address with a space, a control or a non-ASCII"},
};

START_TEST(bad_text_is_refused_with_a_reason)
{
    contactaddr_t c;
    int r = contactaddr_parse(bad[_i].text, &c, err, sizeof err);
    ck_assert_msg(r == -1, "accepted '%s'", bad[_i].text);
    ck_assert_msg(strstr(err, bad[_i].error), "'%s': got '%s'", bad[_i].text, err);
    ck_assert_uint_eq(contactaddr_count(&c), 0);
}
END_TEST

START_TEST(bounds)
{
    contactaddr_t c;
    buf_t b = BUF_INIT;
    buf_append_str(&b, "abuse=");
    for (int i = 0; i < CONTACTADDR_MAX_URIS; i++)
        buf_printf(&b, "%sxmpp:a%d@b", i ? "," : "", i);
    char *ok = strndup(b.data, b.len);
    ck_assert_int_eq(contactaddr_parse(ok, &c, err, sizeof err), 0);
    ck_assert_uint_eq(contactaddr_count(&c), CONTACTADDR_MAX_URIS);
    contactaddr_free(&c);
    buf_append_str(&b, ",xmpp:one@more");
    char *over = strndup(b.data, b.len);
    ck_assert_int_eq(contactaddr_parse(over, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "more than 16 addresses"));
    char longuri[CONTACTADDR_MAX_URI + 16];
    strcpy(longuri, "admin=https:");
    memset(longuri + 12, 'x', CONTACTADDR_MAX_URI);
    longuri[12 + CONTACTADDR_MAX_URI] = '\0';
    ck_assert_int_eq(contactaddr_parse(longuri, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "longer than 1024"));
    free(ok);
    free(over);
    buf_free(&b);
}
END_TEST

Suite *make_contactaddr_suite(void)
{
    Suite *s = suite_create("contactaddr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, groups_and_addresses_in_order);
    tcase_add_test(tc, every_kind_of_xep0157);
    tcase_add_test(tc, empty_text_gives_no_form);
    tcase_add_loop_test(tc, bad_text_is_refused_with_a_reason, 0, sizeof bad / sizeof bad[0]);
    tcase_add_test(tc, bounds);
    suite_add_tcase(s, tc);
    return s;
}
