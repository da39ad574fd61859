/* The router's protocol decisions (session-router/core/rules.c) against the RFC 6121
 * appendix A subscription state tables, the section 8.5 delivery rules, XEP-0280 section 6
 * and XEP-0191 section 3.2 matching. No Redis, no sockets: the functions are pure. */
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "rules.h"
#include "stanza.h"
#include "suites.h"

/* The nine states of appendix A, as the RFC names them. */
static sub_state_t state(const char *name)
{
    sub_state_t s = {0};
    s.exists = 1;
    s.to = strncmp(name, "To", 2) == 0 || strcmp(name, "Both") == 0;
    s.from = strncmp(name, "From", 4) == 0 || strcmp(name, "Both") == 0;
    s.ask_out = strstr(name, "Pending Out") != NULL;
    s.pending_in = strstr(name, "Pending In") != NULL || strstr(name, "Out+In") != NULL;
    if (strstr(name, "Out+In"))
        s.ask_out = 1;
    return s;
}

static int same(sub_state_t a, sub_state_t b)
{
    return a.to == b.to && a.from == b.from && a.ask_out == b.ask_out &&
           a.pending_in == b.pending_in;
}

/* One row: existing state, whether the stanza is routed/delivered, new state ("" = no
 * state change). */
typedef struct {
    const char *before;
    int yes;
    const char *after;
} row_t;

static void check_table(const row_t *rows, size_t n, ipc_stype_t t, int outbound)
{
    for (size_t i = 0; i < n; i++) {
        sub_state_t s = state(rows[i].before);
        unsigned what = outbound ? rules_sub_outbound(&s, t) : rules_sub_inbound(&s, t);
        sub_state_t want = state(*rows[i].after ? rows[i].after : rows[i].before);
        int yes = outbound ? (what & SUB_ROUTE) != 0 : (what & SUB_DELIVER) != 0;
        ck_assert_msg(yes == rows[i].yes, "%s %s from '%s': %s %d, expected %d",
                      outbound ? "outbound" : "inbound", ipc_stype_name(t), rows[i].before,
                      outbound ? "route" : "deliver", yes, rows[i].yes);
        ck_assert_msg(same(s, want), "%s %s from '%s': wrong new state",
                      outbound ? "outbound" : "inbound", ipc_stype_name(t), rows[i].before);
        if (!*rows[i].after)
            ck_assert_msg(!(what & (SUB_SAVE | SUB_REMOVE)) || s.approved,
                          "%s %s from '%s': saved without a change", outbound ? "out" : "in",
                          ipc_stype_name(t), rows[i].before);
    }
}

#define TABLE(rows, t, out) check_table(rows, sizeof rows / sizeof rows[0], t, out)

/* A.2.1 */
START_TEST(test_outbound_subscribe)
{
    static const row_t rows[] = {
        {"None", 1, "None + Pending Out"},
        {"None + Pending Out", 1, ""},
        {"None + Pending In", 1, "None + Pending Out+In"},
        {"None + Pending Out+In", 1, ""},
        {"To", 1, ""},
        {"To + Pending In", 1, ""},
        {"From", 1, "From + Pending Out"},
        {"From + Pending Out", 1, ""},
        {"Both", 1, ""},
    };
    TABLE(rows, IPC_ST_SUBSCRIBE, 1);
}
END_TEST

/* A.2.2 (where nothing is pending, section 3.4 makes it a pre-approval, never routed). */
START_TEST(test_outbound_subscribed)
{
    static const row_t rows[] = {
        {"None", 0, ""},
        {"None + Pending Out", 0, ""},
        {"None + Pending In", 1, "From"},
        {"None + Pending Out+In", 1, "From + Pending Out"},
        {"To", 0, ""},
        {"To + Pending In", 1, "Both"},
        {"From", 0, ""},
        {"From + Pending Out", 0, ""},
        {"Both", 0, ""},
    };
    TABLE(rows, IPC_ST_SUBSCRIBED, 1);
}
END_TEST

/* A.2.3 */
START_TEST(test_outbound_unsubscribe)
{
    static const row_t rows[] = {
        {"None", 0, ""},
        {"None + Pending Out", 1, "None"},
        {"None + Pending In", 0, ""},
        {"None + Pending Out+In", 1, "None + Pending In"},
        {"To", 1, "None"},
        {"To + Pending In", 1, "None + Pending In"},
        {"From", 0, ""},
        {"From + Pending Out", 1, "From"},
        {"Both", 1, "From"},
    };
    TABLE(rows, IPC_ST_UNSUBSCRIBE, 1);
}
END_TEST

/* A.2.4 */
START_TEST(test_outbound_unsubscribed)
{
    static const row_t rows[] = {
        {"None", 0, ""},
        {"None + Pending Out", 0, ""},
        {"None + Pending In", 1, "None"},
        {"None + Pending Out+In", 1, "None + Pending Out"},
        {"To", 0, ""},
        {"To + Pending In", 1, "To"},
        {"From", 1, "None"},
        {"From + Pending Out", 1, "None + Pending Out"},
        {"Both", 1, "To"},
    };
    TABLE(rows, IPC_ST_UNSUBSCRIBED, 1);
}
END_TEST

/* A.3.1 */
START_TEST(test_inbound_subscribe)
{
    static const row_t rows[] = {
        {"None", 1, "None + Pending In"},
        {"None + Pending Out", 1, "None + Pending Out+In"},
        {"None + Pending In", 0, ""},
        {"None + Pending Out+In", 0, ""},
        {"To", 1, "To + Pending In"},
        {"To + Pending In", 0, ""},
        {"From", 0, ""},
        {"From + Pending Out", 0, ""},
        {"Both", 0, ""},
    };
    TABLE(rows, IPC_ST_SUBSCRIBE, 0);
    /* The states marked with an asterisk: the server answers 'subscribed' itself. */
    static const char *const auto_reply[] = {"From", "From + Pending Out", "Both"};
    for (size_t i = 0; i < 3; i++) {
        sub_state_t s = state(auto_reply[i]);
        ck_assert(rules_sub_inbound(&s, IPC_ST_SUBSCRIBE) & SUB_AUTO_SUBSCRIBED);
    }
}
END_TEST

/* A.3.2 */
START_TEST(test_inbound_subscribed)
{
    static const row_t rows[] = {
        {"None", 0, ""},
        {"None + Pending Out", 1, "To"},
        {"None + Pending In", 0, ""},
        {"None + Pending Out+In", 1, "To + Pending In"},
        {"To", 0, ""},
        {"To + Pending In", 0, ""},
        {"From", 0, ""},
        {"From + Pending Out", 1, "Both"},
        {"Both", 0, ""},
    };
    TABLE(rows, IPC_ST_SUBSCRIBED, 0);
}
END_TEST

/* A.3.3 */
START_TEST(test_inbound_unsubscribe)
{
    static const row_t rows[] = {
        {"None", 0, ""},
        {"None + Pending Out", 0, ""},
        {"None + Pending In", 1, "None"},
        {"None + Pending Out+In", 1, "None + Pending Out"},
        {"To", 0, ""},
        {"To + Pending In", 1, "To"},
        {"From", 1, "None"},
        {"From + Pending Out", 1, "None + Pending Out"},
        {"Both", 1, "To"},
    };
    TABLE(rows, IPC_ST_UNSUBSCRIBE, 0);
}
END_TEST

/* A.3.4 */
START_TEST(test_inbound_unsubscribed)
{
    static const row_t rows[] = {
        {"None", 0, ""},
        {"None + Pending Out", 1, "None"},
        {"None + Pending In", 0, ""},
        {"None + Pending Out+In", 1, "None + Pending In"},
        {"To", 1, "None"},
        {"To + Pending In", 1, "None + Pending In"},
        {"From", 0, ""},
        {"From + Pending Out", 1, "From"},
        {"Both", 1, "From"},
    };
    TABLE(rows, IPC_ST_UNSUBSCRIBED, 0);
}
END_TEST

/* Pre-approval (3.4) and items that do not exist yet. */
START_TEST(test_preapproval_and_absent_items)
{
    sub_state_t s = {0};
    unsigned w = rules_sub_outbound(&s, IPC_ST_SUBSCRIBED);
    ck_assert(s.exists && s.approved && !s.hidden && !s.from);
    ck_assert_uint_eq(w, SUB_SAVE);
    /* The contact's request is then granted at once, answered by the server. */
    w = rules_sub_inbound(&s, IPC_ST_SUBSCRIBE);
    ck_assert(s.from && !s.approved && !s.pending_in);
    ck_assert_uint_eq(w, SUB_SAVE | SUB_AUTO_SUBSCRIBED);
    /* unsubscribed cancels a pre-approval without routing anything. */
    sub_state_t p = {0};
    rules_sub_outbound(&p, IPC_ST_SUBSCRIBED);
    w = rules_sub_outbound(&p, IPC_ST_UNSUBSCRIBED);
    ck_assert(!p.approved);
    ck_assert_uint_eq(w, SUB_SAVE);
    /* A request from a stranger is remembered in a hidden item. */
    sub_state_t n = {0};
    w = rules_sub_inbound(&n, IPC_ST_SUBSCRIBE);
    ck_assert(n.exists && n.hidden && n.pending_in);
    ck_assert_uint_eq(w, SUB_SAVE | SUB_DELIVER);
    /* Cancelled again, the hidden item is removed. */
    w = rules_sub_inbound(&n, IPC_ST_UNSUBSCRIBE);
    ck_assert(w & SUB_REMOVE);
    /* A subscribe to someone unknown creates a visible item with Pending Out. */
    sub_state_t o = {0};
    w = rules_sub_outbound(&o, IPC_ST_SUBSCRIBE);
    ck_assert(o.exists && !o.hidden && o.ask_out);
    ck_assert_uint_eq(w, SUB_SAVE | SUB_ROUTE);
    /* Nothing to cancel: nothing happens. */
    sub_state_t z = {0};
    ck_assert_uint_eq(rules_sub_outbound(&z, IPC_ST_UNSUBSCRIBE), 0);
    ck_assert_uint_eq(rules_sub_inbound(&z, IPC_ST_UNSUBSCRIBED), 0);
    ck_assert(!z.exists);
}
END_TEST

/* Presence side effects of approvals and cancellations (3.1.5, 3.2.3, 3.3.3). */
START_TEST(test_subscription_presence_effects)
{
    sub_state_t s = state("None + Pending Out");
    ck_assert(rules_sub_inbound(&s, IPC_ST_SUBSCRIBED) & SUB_PRESENCE_TO_USER);
    s = state("Both");
    ck_assert(rules_sub_inbound(&s, IPC_ST_UNSUBSCRIBE) & SUB_UNAVAILABLE_TO_SENDER);
    s = state("Both");
    ck_assert(rules_sub_inbound(&s, IPC_ST_UNSUBSCRIBED) & SUB_UNAVAILABLE_TO_USER);
}
END_TEST

/* RFC 6121 8.5.2.1: highest non-negative priority among available resources; headlines to
 * every non-negative one; none for negative priorities or unavailable resources. */
START_TEST(test_bare_targets)
{
    static const struct {
        rules_res_t res[4];
        size_t n;
        ipc_stype_t t;
        int want[4];
    } cases[] = {
        {{{1, 5}, {1, 5}, {1, 1}}, 3, IPC_ST_CHAT, {1, 1, 0}},
        {{{1, 5}, {1, 5}, {1, 1}}, 3, IPC_ST_NORMAL, {1, 1, 0}},
        {{{1, 5}, {1, 5}, {1, 1}}, 3, IPC_ST_NONE, {1, 1, 0}},
        {{{1, 5}, {1, 0}, {1, -1}}, 3, IPC_ST_HEADLINE, {1, 1, 0}},
        {{{1, -1}, {1, -5}}, 2, IPC_ST_CHAT, {0, 0}},
        {{{1, -1}, {1, -5}}, 2, IPC_ST_HEADLINE, {0, 0}},
        {{{0, 10}, {1, 0}}, 2, IPC_ST_CHAT, {0, 1}},
        {{{0, 10}, {0, 0}}, 2, IPC_ST_CHAT, {0, 0}},
        {{{1, 0}, {1, 0}, {1, 0}, {1, 0}}, 4, IPC_ST_CHAT, {1, 1, 1, 1}},
        {{{1, 127}, {1, -128}, {1, 126}}, 3, IPC_ST_CHAT, {1, 0, 0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int chosen[4] = {0}, want = 0;
        int n = rules_bare_targets(cases[c].res, cases[c].n, cases[c].t, chosen);
        for (size_t i = 0; i < cases[c].n; i++) {
            ck_assert_msg(chosen[i] == cases[c].want[i], "case %zu resource %zu", c, i);
            want += cases[c].want[i];
        }
        ck_assert_int_eq(n, want);
    }
}
END_TEST

/* RFC 6121 8.5.2.2 (no resource takes it) and 8.5.3.2 (full JID not online), every type. */
START_TEST(test_fallbacks)
{
    ck_assert_int_eq(rules_bare_fallback(IPC_ST_NONE), RULE_OFFLINE);
    ck_assert_int_eq(rules_bare_fallback(IPC_ST_NORMAL), RULE_OFFLINE);
    ck_assert_int_eq(rules_bare_fallback(IPC_ST_CHAT), RULE_OFFLINE);
    ck_assert_int_eq(rules_bare_fallback(IPC_ST_HEADLINE), RULE_DROP);
    ck_assert_int_eq(rules_bare_fallback(IPC_ST_ERROR), RULE_DROP);
    ck_assert_int_eq(rules_bare_fallback(IPC_ST_GROUPCHAT), RULE_BOUNCE);

    ck_assert_int_eq(rules_full_fallback(IPC_KIND_MESSAGE, IPC_ST_CHAT), RULE_TO_BARE);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_MESSAGE, IPC_ST_NONE), RULE_DROP);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_MESSAGE, IPC_ST_NORMAL), RULE_DROP);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_MESSAGE, IPC_ST_HEADLINE), RULE_DROP);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_MESSAGE, IPC_ST_ERROR), RULE_DROP);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_MESSAGE, IPC_ST_GROUPCHAT), RULE_BOUNCE);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_PRESENCE, IPC_ST_NONE), RULE_TO_BARE);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_PRESENCE, IPC_ST_SUBSCRIBE), RULE_TO_BARE);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_IQ, IPC_ST_GET), RULE_BOUNCE);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_IQ, IPC_ST_SET), RULE_BOUNCE);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_IQ, IPC_ST_RESULT), RULE_DROP);
    ck_assert_int_eq(rules_full_fallback(IPC_KIND_IQ, IPC_ST_ERROR), RULE_DROP);
}
END_TEST

static int carbon(ipc_kind_t kind, ipc_stype_t t, const char *xml)
{
    return rules_carbon_eligible(kind, t, xml, strlen(xml));
}

/* XEP-0280 section 6. */
START_TEST(test_carbons_eligible)
{
    ck_assert(carbon(IPC_KIND_MESSAGE, IPC_ST_CHAT, "<message type='chat'><body>x</body></message>"));
    /* chat without a body (chat states) is copied too */
    ck_assert(carbon(IPC_KIND_MESSAGE, IPC_ST_CHAT, "<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    ck_assert(carbon(IPC_KIND_MESSAGE, IPC_ST_NORMAL, "<message type='normal'><body>x</body></message>"));
    ck_assert(carbon(IPC_KIND_MESSAGE, IPC_ST_NONE, "<message><body>x</body></message>"));
    ck_assert(!carbon(IPC_KIND_MESSAGE, IPC_ST_NONE, "<message><subject>x</subject></message>"));
    ck_assert(!carbon(IPC_KIND_MESSAGE, IPC_ST_HEADLINE, "<message type='headline'><body>x</body></message>"));
    ck_assert(!carbon(IPC_KIND_MESSAGE, IPC_ST_GROUPCHAT, "<message type='groupchat'><body>x</body></message>"));
    ck_assert(!carbon(IPC_KIND_MESSAGE, IPC_ST_ERROR, "<message type='error'><body>x</body></message>"));
    ck_assert(!carbon(IPC_KIND_PRESENCE, IPC_ST_NONE, "<presence/>"));
    ck_assert(!carbon(IPC_KIND_IQ, IPC_ST_GET, "<iq type='get'/>"));
    ck_assert(!carbon(IPC_KIND_MESSAGE, IPC_ST_CHAT, "<message type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>"));
    ck_assert(!carbon(IPC_KIND_MESSAGE, IPC_ST_CHAT, "<message type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>"));
    ck_assert(!carbon(IPC_KIND_MESSAGE, IPC_ST_CHAT, "<message type='chat'><received xmlns='urn:xmpp:carbons:2'/></message>"));
    ck_assert(!carbon(IPC_KIND_MESSAGE, IPC_ST_CHAT, "<message type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>"));
    /* Another hint is no reason not to copy. */
    ck_assert(carbon(IPC_KIND_MESSAGE, IPC_ST_CHAT, "<message type='chat'><body>x</body><store xmlns='urn:xmpp:hints'/></message>"));
    /* A room's private message (XEP-0045 7.5) is not copied; a mediated invitation with a
     * body (type normal) is. */
    ck_assert(!carbon(IPC_KIND_MESSAGE, IPC_ST_CHAT, "<message type='chat'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>"));
    ck_assert(carbon(IPC_KIND_MESSAGE, IPC_ST_NORMAL, "<message><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x></message>"));
}
END_TEST

/* XEP-0191 section 3.2: full JID, bare JID, domain/resource, domain. */
START_TEST(test_blocklist_match)
{
    hmap_t *list = hmap_new();
    ck_assert(!rules_blocklist_match(list, "a@example.org"));
    ck_assert(!rules_blocklist_match(NULL, "a@example.org"));
    hmap_sput(list, "romeo@example.net", "x");
    hmap_sput(list, "tybalt@example.org/sword", "x");
    hmap_sput(list, "evil.example", "x");
    hmap_sput(list, "example.com/bot", "x");
    ck_assert(rules_blocklist_match(list, "romeo@example.net"));
    ck_assert(rules_blocklist_match(list, "romeo@example.net/orchard"));
    ck_assert(rules_blocklist_match(list, "tybalt@example.org/sword"));
    ck_assert(!rules_blocklist_match(list, "tybalt@example.org"));
    ck_assert(!rules_blocklist_match(list, "tybalt@example.org/dagger"));
    ck_assert(rules_blocklist_match(list, "anyone@evil.example"));
    ck_assert(rules_blocklist_match(list, "anyone@evil.example/r"));
    ck_assert(rules_blocklist_match(list, "evil.example"));
    ck_assert(rules_blocklist_match(list, "x@example.com/bot"));
    ck_assert(rules_blocklist_match(list, "example.com/bot"));
    ck_assert(!rules_blocklist_match(list, "x@example.com/other"));
    ck_assert(!rules_blocklist_match(list, "romeo@example.org"));
    ck_assert(!rules_blocklist_match(list, "juliet@example.net"));
    hmap_destroy(&list);
}
END_TEST

/* XEP-0352: what an inactive client gets at once, what is held. */
static const struct {
    const char *xml;
    rules_csi_t want;
} csi_cases[] = {
    {"<presence from='b@d/r'/>", RULES_CSI_PRESENCE},
    {"<presence from='b@d/r' type='unavailable'/>", RULES_CSI_PRESENCE},
    {"<presence from='b@d/r' type='error'/>", RULES_CSI_URGENT},
    {"<presence from='b@d' type='subscribe'/>", RULES_CSI_URGENT},
    {"<presence from='b@d' type='subscribed'/>", RULES_CSI_URGENT},
    {"<presence from='b@d' type='unsubscribed'/>", RULES_CSI_URGENT},
    {"<iq type='result' id='1'/>", RULES_CSI_URGENT},
    {"<iq type='get' id='1'><query xmlns='jabber:iq:version'/></iq>", RULES_CSI_URGENT},
    {"<message type='chat'><body>hi</body></message>", RULES_CSI_URGENT},
    {"<message type='headline'><body>announce</body></message>", RULES_CSI_URGENT},
    {"<message><subject>topic</subject></message>", RULES_CSI_URGENT},
    {"<message type='error'><error type='cancel'/></message>", RULES_CSI_URGENT},
    {"<message><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>", RULES_CSI_URGENT},
    {"<message><encrypted xmlns='urn:xmpp:omemo:2'/></message>", RULES_CSI_URGENT},
    {"<message><openpgp xmlns='urn:xmpp:openpgp:0'>x</openpgp></message>", RULES_CSI_URGENT},
    {"<message><x xmlns='jabber:x:encrypted'>x</x></message>", RULES_CSI_URGENT},
    {"<message><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>", RULES_CSI_URGENT},
    {"<message><retract xmlns='urn:xmpp:jingle-message:0' id='c'/></message>", RULES_CSI_URGENT},
    {"<message><x xmlns='jabber:x:conference' jid='room@muc'/></message>", RULES_CSI_URGENT},
    {"<message><x xmlns='http://jabber.org/protocol/muc#user'><invite/></x></message>", RULES_CSI_URGENT},
    {"<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", RULES_CSI_HOLD},
    {"<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>", RULES_CSI_HOLD},
    {"<message><received xmlns='urn:xmpp:receipts' id='x'/></message>", RULES_CSI_HOLD},
    {"<message type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>", RULES_CSI_HOLD},
    /* A body in another namespace is no body. */
    {"<message><body xmlns='urn:example'>x</body></message>", RULES_CSI_HOLD},
    {"<message><x xmlns='http://jabber.org/protocol/muc#user'/></message>", RULES_CSI_HOLD},
    /* Carbons: what they carry decides. */
    {"<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
     "<message xmlns='jabber:client' type='chat'><body>x</body></message></forwarded></received></message>",
     RULES_CSI_URGENT},
    {"<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
     "<message xmlns='jabber:client' type='chat'><body>x</body></message></forwarded></sent></message>",
     RULES_CSI_URGENT},
    {"<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
     "<message xmlns='jabber:client' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/>"
     "</message></forwarded></received></message>",
     RULES_CSI_HOLD},
};

START_TEST(test_csi_class)
{
    xml_node_t *st = stanza_parse(csi_cases[_i].xml, strlen(csi_cases[_i].xml));
    ck_assert_ptr_nonnull(st);
    ck_assert_msg(rules_csi_class(st) == csi_cases[_i].want, "%s", csi_cases[_i].xml);
    xml_node_free(&st);
}
END_TEST

Suite *make_rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("subscriptions");
    tcase_add_test(tc, test_outbound_subscribe);
    tcase_add_test(tc, test_outbound_subscribed);
    tcase_add_test(tc, test_outbound_unsubscribe);
    tcase_add_test(tc, test_outbound_unsubscribed);
    tcase_add_test(tc, test_inbound_subscribe);
    tcase_add_test(tc, test_inbound_subscribed);
    tcase_add_test(tc, test_inbound_unsubscribe);
    tcase_add_test(tc, test_inbound_unsubscribed);
    tcase_add_test(tc, test_preapproval_and_absent_items);
    tcase_add_test(tc, test_subscription_presence_effects);
    suite_add_tcase(s, tc);
    tc = tcase_create("delivery");
    tcase_add_test(tc, test_bare_targets);
    tcase_add_test(tc, test_fallbacks);
    tcase_add_test(tc, test_carbons_eligible);
    tcase_add_test(tc, test_blocklist_match);
    tcase_add_loop_test(tc, test_csi_class, 0, sizeof csi_cases / sizeof csi_cases[0]);
    suite_add_tcase(s, tc);
    return s;
}
