/* A PEP node's configuration (session-router/core/pepcfg.c): defaults, form fields,
 * publish-options preconditions (XEP-0060 7.1.5), access models, the stored form. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "pepcfg.h"
#include "stanza.h"
#include "suites.h"

#define LIMIT 100

/* A submitted form of `form_type` with the fields "var=value;var=value". */
static xml_node_t *form(const char *form_type, const char *fields)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                   "<value>%s</value></field>", form_type);
    char *copy = strdup(fields), *save = NULL;
    for (char *f = strtok_r(copy, ";", &save); f; f = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(f, '=');
        *eq = '\0';
        buf_printf(&b, "<field var='%s'><value>%s</value></field>", f, eq + 1);
    }
    buf_append_str(&b, "</x>");
    xml_node_t *x = stanza_parse(b.data, b.len);
    ck_assert_ptr_nonnull(x);
    free(copy);
    buf_free(&b);
    return x;
}

START_TEST(defaults_follow_xep0163)
{
    pep_config_t c;
    pepcfg_default(&c);
    ck_assert_int_eq(c.access, ACCESS_PRESENCE);
    ck_assert_int_eq(c.max_items, 1);
    ck_assert_int_eq(c.persist, 1);
    ck_assert_int_eq(c.sendlast, SENDLAST_ON_SUB_AND_PRESENCE);
}
END_TEST

START_TEST(fields_and_their_values)
{
    pep_config_t c;
    pepcfg_default(&c);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#access_model", "whitelist", LIMIT), 0);
    ck_assert_int_eq(c.access, ACCESS_WHITELIST);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#access_model", "authorize", LIMIT), -1);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#max_items", "max", LIMIT), 0);
    ck_assert_int_eq(c.max_items, MAX_ITEMS_MAX);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#max_items", "100", LIMIT), 0);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#max_items", "101", LIMIT), -1);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#max_items", "0", LIMIT), -1);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#max_items", "5x", LIMIT), -1);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#persist_items", "false", LIMIT), 0);
    ck_assert_int_eq(c.persist, 0);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#persist_items", "yes", LIMIT), -1);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#send_last_published_item", "never", LIMIT), 0);
    ck_assert_int_eq(c.sendlast, SENDLAST_NEVER);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#deliver_payloads", "1", LIMIT), 0);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#deliver_payloads", "0", LIMIT), -1);
    ck_assert_int_eq(pepcfg_set_field(&c, "pubsub#title", "x", LIMIT), -2);
}
END_TEST

START_TEST(stored_form_round_trips)
{
    pep_config_t c, d;
    pepcfg_default(&c);
    c.access = ACCESS_OPEN;
    c.max_items = MAX_ITEMS_MAX;
    c.persist = 0;
    c.sendlast = SENDLAST_NEVER;
    c.notify_retract = 0;
    buf_t b = BUF_INIT;
    pepcfg_encode(&c, &b);
    pepcfg_decode(b.data, &d);
    ck_assert(pepcfg_equal(&c, &d));
    buf_free(&b);
    /* Damaged text keeps the defaults where it cannot be read. */
    pepcfg_decode("access=bogus max=7 junk", &d);
    ck_assert_int_eq(d.access, ACCESS_PRESENCE);
    ck_assert_int_eq(d.max_items, 7);
}
END_TEST

START_TEST(items_kept)
{
    pep_config_t c;
    pepcfg_default(&c);
    c.max_items = 5;
    ck_assert_int_eq(pepcfg_keep(&c, LIMIT), 5);
    c.max_items = MAX_ITEMS_MAX;
    ck_assert_int_eq(pepcfg_keep(&c, LIMIT), LIMIT);
    c.persist = 0; /* a transient node keeps its last item only */
    ck_assert_int_eq(pepcfg_keep(&c, LIMIT), 1);
}
END_TEST

START_TEST(access_models)
{
    pep_config_t c;
    pepcfg_default(&c);
    static const struct {
        pep_access_t access;
        pep_rel_t rel;
        const char *cond, *app;
    } cases[] = {
        {ACCESS_OPEN, REL_OTHER, NULL, NULL},
        {ACCESS_PRESENCE, REL_SUBSCRIBED, NULL, NULL},
        {ACCESS_PRESENCE, REL_OTHER, "not-authorized", "presence-subscription-required"},
        {ACCESS_WHITELIST, REL_SUBSCRIBED, "not-allowed", "closed-node"},
        {ACCESS_WHITELIST, REL_OWNER, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        c.access = cases[i].access;
        const pep_err_t *e = pepcfg_refuses(&c, cases[i].rel);
        if (!cases[i].cond) {
            ck_assert_ptr_null(e);
        } else {
            ck_assert_ptr_nonnull(e);
            ck_assert_str_eq(e->cond, cases[i].cond);
            ck_assert_str_eq(e->app, cases[i].app);
        }
    }
}
END_TEST

START_TEST(publish_options_preconditions)
{
    pep_config_t c;
    pepcfg_default(&c);
    xml_node_t *x = form(FORM_PUBLISH_OPTIONS,
                         "pubsub#access_model=whitelist;pubsub#max_items=max");
    char *ft = pepcfg_form_type(x);
    ck_assert_str_eq(ft, FORM_PUBLISH_OPTIONS);
    free(ft);
    /* A new node takes them. */
    ck_assert_int_eq(pepcfg_preconditions(&c, 0, x, LIMIT), 0);
    ck_assert_int_eq(c.access, ACCESS_WHITELIST);
    ck_assert_int_eq(c.max_items, MAX_ITEMS_MAX);
    /* The node has them: they hold. */
    ck_assert_int_eq(pepcfg_preconditions(&c, 1, x, LIMIT), 0);
    xml_node_free(&x);
    /* Another value, an unknown field: not met, and nothing changed. */
    x = form(FORM_PUBLISH_OPTIONS, "pubsub#access_model=open");
    ck_assert_int_eq(pepcfg_preconditions(&c, 1, x, LIMIT), -1);
    ck_assert_int_eq(c.access, ACCESS_WHITELIST);
    xml_node_free(&x);
    x = form(FORM_PUBLISH_OPTIONS, "pubsub#x-unknown=1");
    ck_assert_int_eq(pepcfg_preconditions(&c, 0, x, LIMIT), -1);
    xml_node_free(&x);
}
END_TEST

START_TEST(configuration_form)
{
    pep_config_t c;
    pepcfg_default(&c);
    xml_node_t *x = form(FORM_NODE_CONFIG, "pubsub#max_items=3;pubsub#title=ignored");
    ck_assert_int_eq(pepcfg_apply_form(&c, x, LIMIT), 0);
    ck_assert_int_eq(c.max_items, 3);
    xml_node_free(&x);
    x = form(FORM_NODE_CONFIG, "pubsub#max_items=1000");
    ck_assert_int_eq(pepcfg_apply_form(&c, x, LIMIT), -1);
    xml_node_free(&x);
    /* The form given out names the current values. */
    xml_node_t *f = pepcfg_form(&c);
    buf_t b = BUF_INIT;
    xml_serialize(f, NULL, &b);
    ck_assert_ptr_nonnull(strstr(b.data, "<field var=\"pubsub#max_items\" type=\"text-single\"><value>3</value>"));
    buf_free(&b);
    xml_node_free(&f);
}
END_TEST

Suite *make_pepcfg_suite(void)
{
    Suite *s = suite_create("pepcfg");
    TCase *tc = tcase_create("pepcfg");
    tcase_add_test(tc, defaults_follow_xep0163);
    tcase_add_test(tc, fields_and_their_values);
    tcase_add_test(tc, stored_form_round_trips);
    tcase_add_test(tc, items_kept);
    tcase_add_test(tc, access_models);
    tcase_add_test(tc, publish_options_preconditions);
    tcase_add_test(tc, configuration_form);
    suite_add_tcase(s, tc);
    return s;
}
