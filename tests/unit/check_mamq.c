/* What the archives share (session-router/core/mamq.c): archive ids, XEP-0082 date-times,
 * the XEP-0313 query with XEP-0059 paging turned into id bounds, what is worth keeping;
 * and the history request of a room join (muc_archive.c, XEP-0045 section 7.2.15). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mamq.h"
#include "muc.h"
#include "stanza.h"
#include "suites.h"

static xml_node_t *parse(const char *s)
{
    xml_node_t *x = stanza_parse(s, strlen(s));
    ck_assert_ptr_nonnull(x);
    return x;
}

START_TEST(ids)
{
    mamq_id_t a, b;
    char s[MAMQ_ID_MAX];
    ck_assert_int_eq(mamq_id_parse("1700000000000-3", &a), 0);
    ck_assert_uint_eq(a.ms, 1700000000000ULL);
    ck_assert_uint_eq(a.seq, 3);
    mamq_id_fmt(a, s);
    ck_assert_str_eq(s, "1700000000000-3");
    const char *bad[] = {"", "-1", "12", "12-", "12-x", "a-1", "1-2-3", "1 -2", "99999999999999999999999-1", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(mamq_id_parse(bad[i], &b) < 0, "%s", bad[i]);
    ck_assert_int_lt(mamq_id_parse(NULL, &b), 0);
    b = mamq_id_next(a);
    ck_assert_int_eq(mamq_id_cmp(a, b), -1);
    ck_assert_int_eq(mamq_id_cmp(b, a), 1);
    ck_assert_int_eq(mamq_id_prev(&b), 0);
    ck_assert_int_eq(mamq_id_cmp(a, b), 0);
    mamq_id_t m = {5, UINT64_MAX};
    m = mamq_id_next(m);
    ck_assert_uint_eq(m.ms, 6);
    ck_assert_uint_eq(m.seq, 0);
    ck_assert_int_eq(mamq_id_prev(&m), 0);
    ck_assert_uint_eq(m.ms, 5);
    ck_assert(m.seq == UINT64_MAX);
    mamq_id_t z = {0, 0};
    ck_assert_int_eq(mamq_id_prev(&z), -1);
    /* Strictly increasing, whatever the clock. */
    mamq_id_t p = mamq_next_id();
    for (int i = 0; i < 1000; i++) {
        mamq_id_t n = mamq_next_id();
        ck_assert_int_eq(mamq_id_cmp(p, n), -1);
        p = n;
    }
    ck_assert_uint_eq(mamq_min_kept(0, 5000000).ms, 0);
    ck_assert_uint_eq(mamq_min_kept(10, 5000000).ms, 4990000);
    ck_assert_uint_eq(mamq_min_kept(10, 5000).ms, 0);
}
END_TEST

START_TEST(datetimes)
{
    int64_t ms;
    ck_assert_int_eq(mamq_parse_datetime("1970-01-01T00:00:00Z", &ms), 0);
    ck_assert_int_eq(ms, 0);
    ck_assert_int_eq(mamq_parse_datetime("2023-11-14T22:13:20.5Z", &ms), 0);
    ck_assert_int_eq(ms, 1700000000500LL);
    ck_assert_int_eq(mamq_parse_datetime("2023-11-15T00:13:20.123456+02:00", &ms), 0);
    ck_assert_int_eq(ms, 1700000000123LL);
    ck_assert_int_eq(mamq_parse_datetime("2023-11-14T21:13:20-01:00", &ms), 0);
    ck_assert_int_eq(ms, 1700000000000LL);
    const char *bad[] = {"2023-11-14", "2023-11-14T22:13:20", "2023-02-31T00:00:00Z",
                         "2023-13-01T00:00:00Z", "2023-11-14T24:00:00Z", "1969-12-31T23:59:59Z",
                         "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zjunk",
                         "2023-11-14T22:13:20+2:00", "x", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(mamq_parse_datetime(bad[i], &ms) < 0, "%s", bad[i]);
    char out[40];
    mamq_fmt_datetime(1700000000500ULL, out, sizeof out);
    ck_assert_str_eq(out, "2023-11-14T22:13:20.500Z");
    ck_assert_int_eq(mamq_parse_datetime(out, &ms), 0);
    ck_assert_int_eq(ms, 1700000000500LL);
}
END_TEST

#define Q(body) "<query xmlns='urn:xmpp:mam:2' queryid='q1'>" body "</query>"
#define FORM(fields) "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" fields "</x>"
#define F(var, val) "<field var='" var "'><value>" val "</value></field>"

static int query(const char *s, mamq_query_t *q, const char **cond)
{
    xml_node_t *x = parse(s);
    const char *etype = NULL;
    *cond = NULL;
    int rc = mamq_query_parse(x, 50, (mamq_id_t){1000, 0}, q, &etype, cond);
    if (rc < 0)
        ck_assert_ptr_nonnull(etype);
    /* queryid borrows the tree: the tests read it before freeing. */
    if (rc == 0 && q->queryid)
        ck_assert_str_eq(q->queryid, "q1");
    xml_node_free(&x);
    q->queryid = NULL;
    return rc;
}

START_TEST(query_bounds)
{
    mamq_query_t q;
    const char *cond;
    ck_assert_int_eq(query(Q(""), &q, &cond), 0);
    ck_assert_uint_eq(q.lo.ms, 1000);
    ck_assert(q.hi.ms == UINT64_MAX);
    ck_assert_int_eq(q.max, 50);
    ck_assert_int_eq(q.backward, 0);
    ck_assert_str_eq(q.with_bare, "");
    mamq_query_free(&q);
    ck_assert_int_eq(query(Q(FORM(F("start", "2023-11-14T22:13:20Z") F("end", "2023-11-14T22:13:21Z") F("with", "Room@Conference.Example/Nick"))
                             "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set><flip-page/>"),
                           &q, &cond),
                     0);
    ck_assert_uint_eq(q.lo.ms, 1700000000000ULL);
    ck_assert_uint_eq(q.hi.ms, 1700000001000ULL);
    ck_assert_int_eq(q.max, 10);
    ck_assert_int_eq(q.flip, 1);
    ck_assert_str_eq(q.with_bare, "room@conference.example");
    ck_assert_str_eq(q.with_full, "room@conference.example/Nick");
    mamq_query_free(&q);
    /* A larger max is lowered to the page limit; a bare 'with' matches every resource. */
    ck_assert_int_eq(query(Q(FORM(F("with", "a@b")) "<set xmlns='http://jabber.org/protocol/rsm'><max>5000</max></set>"), &q, &cond), 0);
    ck_assert_int_eq(q.max, 50);
    ck_assert_str_eq(q.with_full, "");
    mamq_query_free(&q);
    /* after/before ids must exist and bound the range. */
    ck_assert_int_eq(query(Q(FORM(F("after-id", "2000-1") F("before-id", "3000-0"))), &q, &cond), 0);
    ck_assert_int_eq(q.nmust, 2);
    ck_assert_uint_eq(q.lo.ms, 2000);
    ck_assert_uint_eq(q.lo.seq, 2);
    ck_assert_uint_eq(q.hi.ms, 2999);
    ck_assert(q.hi.seq == UINT64_MAX);
    mamq_query_free(&q);
    ck_assert_int_eq(query(Q("<set xmlns='http://jabber.org/protocol/rsm'><before/></set>"), &q, &cond), 0);
    ck_assert_int_eq(q.backward, 1);
    ck_assert_int_eq(q.nmust, 0);
    mamq_query_free(&q);
    ck_assert_int_eq(query(Q("<set xmlns='http://jabber.org/protocol/rsm'><after>4000-0</after></set>"), &q, &cond), 0);
    ck_assert_int_eq(q.nmust, 1);
    ck_assert_uint_eq(q.lo.seq, 1);
    mamq_query_free(&q);
    ck_assert_int_eq(query(Q(FORM("<field var='ids'><value>1-1</value><value>nope</value><value>2-2</value></field>")), &q, &cond), 0);
    ck_assert_int_eq(q.have_ids, 1);
    ck_assert_int_eq(q.nids, 2);
    mamq_query_free(&q);
}
END_TEST

START_TEST(query_errors)
{
    static const struct {
        const char *q, *cond;
    } rows[] = {
        {Q(FORM(F("lunch", "1"))), "bad-request"},
        {Q(FORM(F("start", "yesterday"))), "bad-request"},
        {Q(FORM(F("with", "@@"))), "bad-request"},
        {Q(FORM(F("after-id", "not-ours"))), "item-not-found"},
        {Q(FORM(F("after-id", "1-1") F("after-id", "1-2"))), "bad-request"},
        {Q("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x>"), "bad-request"},
        {Q("<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>"), "bad-request"},
        {Q("<set xmlns='http://jabber.org/protocol/rsm'><max>ten</max></set>"), "bad-request"},
        {Q("<set xmlns='http://jabber.org/protocol/rsm'><after>x</after></set>"), "item-not-found"},
        {Q("<set xmlns='http://jabber.org/protocol/rsm'><before>x</before></set>"), "item-not-found"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        mamq_query_t q;
        const char *cond;
        ck_assert_msg(query(rows[i].q, &q, &cond) < 0, "row %zu", i);
        ck_assert_str_eq(cond, rows[i].cond);
        mamq_query_free(&q);
    }
    /* More ids than a page: policy-violation. */
    buf_t b = BUF_INIT;
    buf_append_str(&b, "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='ids'>");
    for (int i = 0; i < 51; i++)
        buf_printf(&b, "<value>%d-0</value>", i);
    buf_append_str(&b, "</field></x></query>");
    mamq_query_t q;
    const char *cond;
    ck_assert_int_lt(query(b.data, &q, &cond), 0);
    ck_assert_str_eq(cond, "policy-violation");
    mamq_query_free(&q);
    buf_free(&b);
}
END_TEST

START_TEST(worth_keeping)
{
    static const struct {
        const char *m;
        int plain, room;
    } rows[] = {
        {"<message><body>hi</body></message>", 1, 1},
        {"<message><subject>topic</subject></message>", 0, 1},
        {"<message><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", 0, 0},
        {"<message><body>hi</body><no-store xmlns='urn:xmpp:hints'/></message>", 0, 0},
        {"<message><encrypted xmlns='urn:xmpp:omemo:2'/></message>", 1, 1},
        {"<message><reactions xmlns='urn:xmpp:reactions:0' id='x'/></message>", 1, 1},
        {"<message><received xmlns='urn:xmpp:receipts' id='x'/></message>", 0, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        xml_node_t *m = parse(rows[i].m);
        ck_assert_msg(mamq_worth(m, 0) == rows[i].plain, "row %zu", i);
        ck_assert_msg(mamq_worth(m, 1) == rows[i].room, "row %zu", i);
        xml_node_free(&m);
    }
}
END_TEST

START_TEST(result_and_fin)
{
    buf_t b = BUF_INIT;
    const char *stored = "<message from='r@c/n' type='groupchat'><body>x</body></message>";
    mamq_result_text(&b, "u@d/r", "r@c", "q'1", "1700000000500-0", stored, strlen(stored));
    xml_node_t *m = stanza_parse(b.data, b.len);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(xml_node_attr(m, "from"), "r@c");
    xml_node_t *r = xml_node_child(m, "result", NS_MAM);
    ck_assert_str_eq(xml_node_attr(r, "queryid"), "q'1");
    ck_assert_str_eq(xml_node_attr(r, "id"), "1700000000500-0");
    xml_node_t *f = xml_node_child(r, "forwarded", NS_FORWARD);
    ck_assert_str_eq(xml_node_attr(xml_node_child(f, "delay", NS_DELAY), "stamp"),
                     "2023-11-14T22:13:20.500Z");
    ck_assert_str_eq(xml_node_attr(xml_node_child(f, "message", XML_NS_CLIENT), "from"), "r@c/n");
    xml_node_free(&m);
    buf_free(&b);
    xml_node_t *fin = mamq_fin("1-0", "2-0", 1);
    ck_assert_str_eq(xml_node_attr(fin, "complete"), "true");
    ck_assert_ptr_nonnull(xml_node_child(xml_node_child(fin, "set", NS_RSM), "first", NS_RSM));
    xml_node_free(&fin);
    fin = mamq_fin(NULL, NULL, 0);
    ck_assert_ptr_null(xml_node_attr(fin, "complete"));
    ck_assert_ptr_null(xml_node_first_element(xml_node_child(fin, "set", NS_RSM)));
    xml_node_free(&fin);
}
END_TEST

START_TEST(history_request)
{
    muc_history_req_t r;
    ck_assert_int_eq(muc_history_parse(NULL, &r), 0);
    ck_assert_int_eq(r.maxchars, -1);
    ck_assert_int_eq(r.maxstanzas, -1);
    ck_assert_int_eq(r.seconds, -1);
    ck_assert_int_eq(r.since_ms, -1);
    xml_node_t *h = parse("<history xmlns='http://jabber.org/protocol/muc' maxchars='0' maxstanzas='20' "
                          "seconds='180' since='2023-11-14T22:13:20Z'/>");
    ck_assert_int_eq(muc_history_parse(h, &r), 0);
    ck_assert_int_eq(r.maxchars, 0);
    ck_assert_int_eq(r.maxstanzas, 20);
    ck_assert_int_eq(r.seconds, 180);
    ck_assert_int_eq(r.since_ms, 1700000000000LL);
    xml_node_free(&h);
    h = parse("<history maxstanzas='99999999999999999999999'/>");
    ck_assert_int_eq(muc_history_parse(h, &r), 0);
    ck_assert_int_eq(r.maxstanzas, 1000000000L);
    xml_node_free(&h);
    const char *bad[] = {"<history maxchars='-1'/>", "<history maxstanzas=''/>",
                         "<history seconds='1e3'/>", "<history since='yesterday'/>",
                         "<history maxstanzas=' 5'/>", NULL};
    for (int i = 0; bad[i]; i++) {
        h = parse(bad[i]);
        ck_assert_msg(muc_history_parse(h, &r) < 0, "%s", bad[i]);
        xml_node_free(&h);
    }
}
END_TEST

Suite *make_mamq_suite(void)
{
    Suite *s = suite_create("mamq");
    TCase *tc = tcase_create("mamq");
    tcase_add_test(tc, ids);
    tcase_add_test(tc, datetimes);
    tcase_add_test(tc, query_bounds);
    tcase_add_test(tc, query_errors);
    tcase_add_test(tc, worth_keeping);
    tcase_add_test(tc, result_and_fin);
    tcase_add_test(tc, history_request);
    suite_add_tcase(s, tc);
    return s;
}
