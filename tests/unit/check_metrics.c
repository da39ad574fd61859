/* Metrics: the text exposition format 0.0.4 as Prometheus parses it (families, label
 * escaping, histogram buckets), and the registry's rules. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ipc.h"
#include "metrics.h"
#include "suites.h"

static char *render(void)
{
    buf_t b = BUF_INIT;
    metrics_render(&b);
    return b.data ? buf_steal(&b) : strdup("");
}

static void teardown(void)
{
    metrics_reset();
}

START_TEST(family_printed_once)
{
    metric_t *a = metrics_counter("xmpp_test_total", "kind=\"message\"", "things seen");
    metric_t *b = metrics_counter("xmpp_test_total", "kind=\"iq\"", "ignored help");
    metric_t *g = metrics_gauge("xmpp_level", "", "a level\\with\nnewline");
    metric_inc(a);
    metric_inc(a);
    metric_add(b, 5);
    metric_add(b, -3); /* a counter never goes down */
    metric_set(g, 2.5);
    ck_assert_ptr_eq(metrics_counter("xmpp_test_total", "kind=\"iq\"", ""), b);
    ck_assert_ptr_eq(metrics_find("xmpp_test_total", "kind=\"message\""), a);
    ck_assert_ptr_null(metrics_find("xmpp_test_total", "kind=\"x\""));
    char *out = render();
    ck_assert_str_eq(out, "# HELP xmpp_test_total things seen\n"
                          "# TYPE xmpp_test_total counter\n"
                          "xmpp_test_total{kind=\"message\"} 2\n"
                          "xmpp_test_total{kind=\"iq\"} 5\n"
                          "# HELP xmpp_level a level\\\\with\\nnewline\n"
                          "# TYPE xmpp_level gauge\n"
                          "xmpp_level 2.5\n");
    free(out);
}
END_TEST

START_TEST(label_values_escaped)
{
    char label[64];
    ck_assert_int_eq(metrics_label(label, sizeof label, "frontend", "a\"b\\c\nd"), 0);
    ck_assert_str_eq(label, "frontend=\"a\\\"b\\\\c\\nd\"");
    metric_t *m = metrics_gauge("xmpp_router_sessions", label, "sessions");
    ck_assert_ptr_nonnull(m);
    metric_add(m, 3);
    metric_add(m, -1);
    char *out = render();
    ck_assert_ptr_nonnull(strstr(out, "xmpp_router_sessions{frontend=\"a\\\"b\\\\c\\nd\"} 2\n"));
    free(out);
    /* Too small a buffer: refused, never cut in the middle of an escape. */
    ck_assert_int_eq(metrics_label(label, 12, "frontend", "abc\"def"), -1);
    ck_assert_str_eq(label, "");
    ck_assert_int_eq(metrics_label(label, sizeof label, "bad-key", "x"), -1);
}
END_TEST

START_TEST(histogram_buckets)
{
    static const double bounds[] = {0.001, 0.01, 0.1};
    metric_t *h = metrics_histogram("xmpp_op_seconds", "op=\"get\"", "op time", bounds, 3);
    metric_observe(h, 0.0005);
    metric_observe(h, 0.001); /* on a bound: counted in it (le) */
    metric_observe(h, 0.05);
    metric_observe(h, 7);
    ck_assert(metric_value(h) == 4);
    char *out = render();
    ck_assert_str_eq(out, "# HELP xmpp_op_seconds op time\n"
                          "# TYPE xmpp_op_seconds histogram\n"
                          "xmpp_op_seconds_bucket{op=\"get\",le=\"0.001\"} 2\n"
                          "xmpp_op_seconds_bucket{op=\"get\",le=\"0.01\"} 2\n"
                          "xmpp_op_seconds_bucket{op=\"get\",le=\"0.1\"} 3\n"
                          "xmpp_op_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                          "xmpp_op_seconds_sum{op=\"get\"} 7.0515\n"
                          "xmpp_op_seconds_count{op=\"get\"} 4\n");
    free(out);
}
END_TEST

START_TEST(histogram_without_labels)
{
    static const double bounds[] = {1};
    metric_t *h = metrics_histogram("xmpp_h_seconds", "", "h", bounds, 1);
    metric_observe(h, 0.25);
    char *out = render();
    ck_assert_ptr_nonnull(strstr(out, "xmpp_h_seconds_bucket{le=\"1\"} 1\n"
                                      "xmpp_h_seconds_bucket{le=\"+Inf\"} 1\n"
                                      "xmpp_h_seconds_sum 0.25\n"
                                      "xmpp_h_seconds_count 1\n"));
    free(out);
}
END_TEST

static double forty_two(void *ud)
{
    return *(double *)ud;
}

START_TEST(gauge_fn_and_null)
{
    static double v = 42;
    metric_t *m = metrics_gauge_fn("xmpp_computed", "", "computed", forty_two, &v);
    metric_set(m, 1); /* asked for at rendering, never set */
    v = 43;
    char *out = render();
    ck_assert_ptr_nonnull(strstr(out, "xmpp_computed 43\n"));
    free(out);
    /* NULL is accepted everywhere: a metric nobody registered is not counted. */
    metric_inc(NULL);
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
    ck_assert(metric_value(NULL) == 0);
}
END_TEST

START_TEST(values_round_trip)
{
    metric_t *g = metrics_gauge("xmpp_v", "", "v");
    metric_set(g, 0.1);
    char *out = render();
    ck_assert_ptr_nonnull(strstr(out, "xmpp_v 0.1\n"));
    free(out);
    metric_set(g, 1e20);
    out = render();
    ck_assert_ptr_nonnull(strstr(out, "xmpp_v 1e+20\n"));
    free(out);
    metric_set(g, INFINITY);
    out = render();
    ck_assert_ptr_nonnull(strstr(out, "xmpp_v +Inf\n"));
    free(out);
}
END_TEST

START_TEST(registry_is_bounded)
{
    metric_t *last = NULL;
    for (int i = 0; i < METRICS_MAX_SERIES + 10; i++) {
        char label[32];
        snprintf(label, sizeof label, "n=\"%d\"", i);
        metric_t *m = metrics_counter("xmpp_many_total", label, "many");
        if (i < METRICS_MAX_SERIES)
            ck_assert_ptr_nonnull(m);
        else
            ck_assert_ptr_null(m);
        last = m;
    }
    metric_inc(last); /* refused: a no-op */
}
END_TEST

/* Deliveries are counted by kind from the serialised stanza's first element name. */
START_TEST(payload_kinds)
{
    static const struct {
        const char *xml;
        ipc_kind_t kind;
    } cases[] = {
        {"<message to='a@b'/>", IPC_KIND_MESSAGE},
        {"<message>", IPC_KIND_MESSAGE},
        {"<presence/>", IPC_KIND_PRESENCE},
        {"<iq type='get'>", IPC_KIND_IQ},
        {"<client:iq xmlns:client='jabber:client'/>", IPC_KIND_IQ},
        {"\n <message/>", IPC_KIND_MESSAGE},
        {"<messages/>", IPC_KIND_NONE},
        {"<mess", IPC_KIND_NONE},
        {"message", IPC_KIND_NONE},
        {"", IPC_KIND_NONE},
        {"<averyveryverylongelementname/>", IPC_KIND_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(ipc_kind_of_payload(cases[i].xml, strlen(cases[i].xml)) == cases[i].kind,
                      "%s", cases[i].xml);
    /* Only `len` bytes are looked at. */
    ck_assert(ipc_kind_of_payload("<iqx", 3) == IPC_KIND_IQ);
}
END_TEST

Suite *make_metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, family_printed_once);
    tcase_add_test(tc, label_values_escaped);
    tcase_add_test(tc, histogram_buckets);
    tcase_add_test(tc, histogram_without_labels);
    tcase_add_test(tc, gauge_fn_and_null);
    tcase_add_test(tc, values_round_trip);
    tcase_add_test(tc, registry_is_bounded);
    tcase_add_test(tc, payload_kinds);
    suite_add_tcase(s, tc);
    return s;
}
