/* The router's routing code end to end, in process: route_stanza (core/route.c) with the
 * real session table, user cache, module registry and modules, registered as
 * session-router/main.c does, over a fake link (every message to a frontend is recorded)
 * and a fake Redis (fake_redis.c: an in-memory key space behind hiredis's async API).
 * Stanzas enter as the frontend forwards them (c2s-frontend/stream.c, forward): 'from'
 * stamped with the sender's full JID, serialised for jabber:client, routing facts in the
 * header. What comes out is parsed with the project's own stanza_parse.
 *
 * Covered: RFC 6121 section 8.5 delivery for every message type and combination of
 * resources and priorities (bare JID, full JID online, full JID not online, iq), the
 * subscription flows of appendix A through presence stanzas, XEP-0280 carbons (section 6)
 * and XEP-0191 blocking. The expected outcomes are written here from the specifications,
 * not computed with core/rules.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin_cmds.h"
#include "adminproto.h"
#include "config.h"
#include "fake_router.h"
#include "ipc.h"
#include "keys.h"
#include "module.h"
#include "modules.h"
#include "remote.h"
#include "registration.h"
#include "route.h"
#include "rpresence.h"
#include "scram.h"
#include "session.h"
#include "sm.h"
#include "stanza.h"
#include "storage.h"
#include "suites.h"
#include "user.h"
#include "util.h"

#define DOM "example.com"
#define ALICE "alice@example.com"
#define BOB "bob@example.com"
#define CAROL "carol@example.com"
#define NOBODY "nobody@example.com" /* no account */
#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_ROSTER "jabber:iq:roster"

/* The same list, in the same order, as session-router/main.c. */
static module_t *const modules[] = {
    &mod_disco,    &mod_ping,     &mod_version, &mod_time,    &mod_last,  &mod_roster,
    &mod_presence, &mod_blocking, &mod_carbons, &mod_offline, &mod_vcard, &mod_private,
    &mod_register, &mod_csi,
};

static rt_frontend_t fe;
static uint64_t next_conn;
static redisAsyncContext fake_ctx; /* never dereferenced: fake_redis.c answers */

/* Fake storage set-up and inspection. */
static void redis_do(redisReply *r)
{
    ck_assert_ptr_nonnull(r);
    ck_assert_int_ne(r->type, REDIS_REPLY_ERROR);
    fake_redis_reply_free(r);
}

static void account(const char *bare)
{
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_ACCOUNT, bare);
    redis_do(fake_redis_cmd("HSET %s scram-sha-256 x", key));
}

static void preload_block(const char *bare, const char *jid)
{
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_BLOCKLIST, bare);
    redis_do(fake_redis_cmd("SADD %s %s", key, jid));
}

/* A stored roster item in core/user.c's encoding: six flags (to, from, ask_out,
 * pending_in, approved, hidden), then the name and groups after \x1f. */
static void preload_item(const char *bare, const char *contact, const char *flags)
{
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_ROSTER, bare);
    redis_do(fake_redis_cmd("HSET %s %s %s\x1f", key, contact, flags));
}

/* The six stored flags of a roster item, or "" when there is no item. */
static const char *stored_flags(const char *bare, const char *contact)
{
    static char out[8];
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_ROSTER, bare);
    redisReply *r = fake_redis_cmd("HGET %s %s", key, contact);
    ck_assert_ptr_nonnull(r);
    snprintf(out, sizeof out, "%.6s", r->type == REDIS_REPLY_STRING ? r->str : "");
    fake_redis_reply_free(r);
    return out;
}

static long long offline_count(const char *bare)
{
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_OFFLINE, bare);
    redisReply *r = fake_redis_cmd("LLEN %s", key);
    ck_assert_ptr_nonnull(r);
    long long n = r->integer;
    fake_redis_reply_free(r);
    return n;
}

static void setup(void)
{
    char err[256];
    config_reset();
    config_register(config_base_keys);
    config_register(register_config_keys);
    config_register(scram_config_keys);
    config_register(sm_config_keys);
    config_register(remote_config_keys);
    module_declare_config(modules, sizeof modules / sizeof modules[0]);
    ck_assert_int_eq(config_load(NULL, err, sizeof err), 0);
    memset(&rt, 0, sizeof rt);
    rt.loop = evloop_new();
    sm_open();
    rt.domain = DOM;
    rt.redis_prefix = "xmpp:";
    rt.max_resources = 10;
    rt.started_ms = now_ms();
    rt.frontends = hmap_new();
    rt.by_conn = hmap_new();
    rt.by_jid = hmap_new();
    rt.users = hmap_new();
    rt.redis = &fake_ctx;
    rt.redis_ready = 1;
    memset(&fe, 0, sizeof fe);
    strcpy(fe.ident, "fe1:1");
    fe.ident_len = strlen(fe.ident);
    strcpy(fe.name, "fe1");
    hmap_put(rt.frontends, fe.ident, fe.ident_len, &fe);
    next_conn = 0;
    fake_redis_init();
    module_register(modules, sizeof modules / sizeof modules[0]);
    account(ALICE);
    account(BOB);
    account(CAROL);
}

/* As the router shuts down (main.c): storage first (pending callbacks get no reply), then
 * the sessions, then the modules. Every user must have been let go by then. */
static void teardown(void)
{
    fake_redis_flush();
    ck_assert_int_eq(fake_redis_unknown(), 0);
    rt.redis_ready = 0;
    fake_redis_disconnect();
    sessions_free_all();
    size_t rp_users, rp_entries, rp_conns;
    rpresence_counts(&rp_users, &rp_entries, &rp_conns);
    ck_assert_int_eq(rp_users + rp_entries + rp_conns, 0); /* every user left */
    rpresence_close();
    remote_close(); /* the copies kept for the s2s frontends still in the table */
    sm_close();
    module_close_all();
    evloop_destroy(&rt.loop);
    ck_assert_int_eq(hmap_count(rt.users), 0);
    ck_assert_int_eq(hmap_count(rt.by_jid), 0);
    hmap_destroy(&rt.frontends);
    hmap_destroy(&rt.by_conn);
    hmap_destroy(&rt.by_jid);
    hmap_destroy(&rt.users);
    fake_link_clear();
    fake_redis_free();
    config_reset();
}

/* A client binds a full JID (the frontend's IPC_BIND): the session starts and its roster
 * is loaded. */
static session_t *bind_jid(const char *full)
{
    session_t *s = session_attach(&fe, ++next_conn, full);
    ck_assert_ptr_nonnull(s);
    fake_redis_flush();
    return s;
}

/* A client sends a stanza: stamped and forwarded as the frontend does, routed, and every
 * storage answer it causes is pumped. */
static void send_xml(session_t *s, const char *xml)
{
    xml_node_t *st = stanza_parse(xml, strlen(xml));
    ck_assert_msg(st != NULL, "bad test stanza %s", xml);
    ipc_kind_t kind = ipc_kind_from_name(st->name);
    ipc_stype_t stype = ipc_stype_from_attr(kind, xml_node_attr(st, "type"));
    ck_assert_int_ne(stype, IPC_ST_INVALID);
    const char *to = xml_node_attr(st, "to");
    const char *id = xml_node_attr(st, "id");
    xml_node_set_attr(st, "from", s->full);
    buf_t b = BUF_INIT;
    xml_serialize(st, XML_NS_CLIENT, &b);
    /* Built and read back as the link does, so the reader's checks apply too. */
    ipc_stanza_t msg = {.conn = s->conn, .kind = kind, .stype = stype, .to = to ? to : "",
                        .from = s->full, .id = id};
    ipc_hdr_t h;
    ck_assert_int_eq(ipc_stanza_build(&h, &msg), 0);
    ipc_stanza_t got;
    ck_assert_int_eq(ipc_stanza_read(&h, &got), 0);
    route_stanza(s, &got, b.data, b.len);
    buf_free(&b);
    xml_node_free(&st);
    fake_redis_flush();
}

static void sendf(session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sendf(session_t *s, const char *fmt, ...)
{
    char xml[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(xml, sizeof xml, fmt, ap);
    va_end(ap);
    send_xml(s, xml);
}

/* Available presence with a priority, through the presence module. */
static void avail(session_t *s, int prio)
{
    sendf(s, "<presence><priority>%d</priority></presence>", prio);
}

/* The roster get that makes a resource "interested" in roster pushes. */
static void roster_get(session_t *s)
{
    send_xml(s, "<iq type='get' id='roster-get'><query xmlns='jabber:iq:roster'/></iq>");
}

/* Delivered stanzas. `conn` rather than a session: a session may be gone when asked. */
static xml_node_t *delivered(size_t i, uint64_t conn)
{
    const fake_sent_t *m = fake_link_get(i);
    if (!m || m->type != IPC_DELIVER || m->fe != &fe || m->conn != conn)
        return NULL;
    xml_node_t *st = stanza_parse(m->data, m->len);
    ck_assert_msg(st != NULL, "unparsable delivery: %s", m->data);
    return st;
}

static int is_error(const xml_node_t *st)
{
    const char *t = xml_node_attr(st, "type");
    return t && strcmp(t, "error") == 0;
}

static int attr_is(const xml_node_t *st, const char *name, const char *want)
{
    const char *v = xml_node_attr(st, name);
    return want ? v && strcmp(v, want) == 0 : v == NULL;
}

/* How many stanzas went to the session's client in all. */
static int total(const session_t *s)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        n += st != NULL;
        xml_node_free(&st);
    }
    return n;
}

/* How many copies of the stanza with this id reached the client, each addressed as sent
 * (to = `to`, or the client's own full JID when `to` is NULL). For a recipient: errors the
 * server sends back are the sender's (bounce). */
static int got_to(const session_t *s, const char *id, const char *to)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        if (st && attr_is(st, "id", id)) {
            ck_assert_msg(attr_is(st, "to", to ? to : s->full), "%s: delivered with to=%s",
                          id, xml_node_attr(st, "to"));
            n++;
        }
        xml_node_free(&st);
    }
    return n;
}

/* Same, for a stanza whose 'to' the test does not care about. */
static int got(const session_t *s, const char *id)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        n += st && attr_is(st, "id", id);
        xml_node_free(&st);
    }
    return n;
}

/* The condition of the error answering the stanza with this id ("" when none came); the
 * error must be addressed to the sender's full JID. Several errors for one id fail. */
static const char *bounce(const session_t *s, const char *id)
{
    static char cond[64];
    int n = 0;
    cond[0] = '\0';
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        if (st && attr_is(st, "id", id) && is_error(st)) {
            n++;
            ck_assert(attr_is(st, "to", s->full));
            const xml_node_t *e = xml_node_child(st, "error", NULL);
            ck_assert_ptr_nonnull(e);
            const xml_node_t *c = e->children;
            while (c && !(c->name && c->ns && strcmp(c->ns, NS_STANZAS) == 0))
                c = c->next;
            snprintf(cond, sizeof cond, "%s", c ? c->name : "?");
        }
        xml_node_free(&st);
    }
    ck_assert_msg(n <= 1, "%d errors for %s", n, id);
    return cond;
}

/* The error answering `id` also carries this child (e.g. XEP-0191's <blocked/>). */
static int bounce_has(const session_t *s, const char *id, const char *name, const char *ns)
{
    int found = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        const xml_node_t *e = st && is_error(st) && attr_is(st, "id", id)
                                  ? xml_node_child(st, "error", NULL)
                                  : NULL;
        found |= e && xml_node_child(e, name, ns) != NULL;
        xml_node_free(&st);
    }
    return found;
}

/* XEP-0280 copies (`what` "sent" or "received") of the message with this id: wrapped in a
 * message from the user's bare JID to the client, <what/> holding <forwarded/> holding the
 * original. */
static int carbon(const session_t *s, const char *what, const char *id)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        const xml_node_t *w = st ? xml_node_child(st, what, NS_CARBONS) : NULL;
        const xml_node_t *f = w ? xml_node_child(w, "forwarded", NS_FORWARD) : NULL;
        const xml_node_t *m = f ? xml_node_child(f, "message", XML_NS_CLIENT) : NULL;
        if (m && attr_is(m, "id", id)) {
            ck_assert(attr_is(st, "from", s->user->bare));
            ck_assert(attr_is(st, "to", s->full));
            n++;
        }
        xml_node_free(&st);
    }
    return n;
}

/* Carbon copies of any kind the client got. */
static int carbons_total(const session_t *s)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        n += st && (xml_node_child(st, "sent", NS_CARBONS) || xml_node_child(st, "received", NS_CARBONS));
        xml_node_free(&st);
    }
    return n;
}

/* Presence stanzas the client got: of this type (NULL: available) from this JID, to the
 * client's full JID or its bare JID (both are the client's address; a stanza the server
 * keeps and hands over later keeps the bare JID it was sent to, RFC 6121 3.1.3). */
static int presence_from(const session_t *s, const char *type, const char *from)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        n += st && strcmp(st->name, "presence") == 0 && attr_is(st, "type", type) &&
             attr_is(st, "from", from) &&
             (attr_is(st, "to", s->full) || attr_is(st, "to", s->user->bare));
        xml_node_free(&st);
    }
    return n;
}

/* Roster pushes the client got for `jid`: subscription and ask as given ("" ask: none). */
static int pushes(const session_t *s, const char *jid, const char *sub, const char *ask)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        const xml_node_t *q = st && strcmp(st->name, "iq") == 0 && attr_is(st, "type", "set")
                                  ? xml_node_child(st, "query", NS_ROSTER)
                                  : NULL;
        const xml_node_t *it = q ? xml_node_child(q, "item", NS_ROSTER) : NULL;
        if (it && attr_is(it, "jid", jid)) {
            ck_assert(attr_is(st, "to", s->full));
            n += attr_is(it, "subscription", sub) && attr_is(it, "ask", *ask ? ask : NULL);
        }
        xml_node_free(&st);
    }
    return n;
}

/* Pushes of any kind for this contact. */
static int any_push(const session_t *s, const char *jid)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, s->conn);
        const xml_node_t *q = st && strcmp(st->name, "iq") == 0
                                  ? xml_node_child(st, "query", NS_ROSTER)
                                  : NULL;
        const xml_node_t *it = q ? xml_node_child(q, "item", NS_ROSTER) : NULL;
        n += it && attr_is(it, "jid", jid);
        xml_node_free(&st);
    }
    return n;
}

/* ---------------------------------------------------------------------------------------
 * RFC 6121 8.5.2: messages to the bare JID, every type, for sets of resources. */

typedef struct {
    int available, priority;
} res_spec_t;

typedef struct {
    const char *name;
    int n;
    res_spec_t r[3];
} res_set_t;

static const res_set_t res_sets[] = {
    {"no resource", 0, {{0, 0}}},
    {"one available, priority 0", 1, {{1, 0}}},
    {"one available, priority 5", 1, {{1, 5}}},
    {"one available, negative", 1, {{1, -1}}},
    {"one connected, not available", 1, {{0, 0}}},
    {"two, distinct priorities", 2, {{1, 1}, {1, 5}}},
    {"two, equal priorities", 2, {{1, 3}, {1, 3}}},
    {"two, one negative", 2, {{1, -1}, {1, 0}}},
    {"two, both negative", 2, {{1, -5}, {1, -1}}},
    {"two, one not available", 2, {{0, 0}, {1, 2}}},
    {"two, none available", 2, {{0, 0}, {0, 0}}},
    {"three, two equal highest", 3, {{1, 5}, {1, 1}, {1, 5}}},
    {"three, one highest", 3, {{1, 2}, {1, 9}, {1, 2}}},
    {"three, negative, not available, zero", 3, {{1, -3}, {0, 0}, {1, 0}}},
    {"three, not available with higher priority", 3, {{1, 1}, {0, 0}, {1, 1}}},
};

/* The message types: the 'type' attribute (NULL: none, "normal") and what 8.5.2 says. */
typedef struct {
    const char *type;
    int headline, groupchat, error; /* the type's own rules */
} msg_type_t;

static const msg_type_t msg_types[] = {
    {NULL, 0, 0, 0},        {"normal", 0, 0, 0}, {"chat", 0, 0, 0},
    {"groupchat", 0, 1, 0}, {"headline", 1, 0, 0}, {"error", 0, 0, 1},
};

#define NTYPES (sizeof msg_types / sizeof msg_types[0])

/* Binds bob's resources as described (available ones send presence with a priority). */
static void bind_set(const res_set_t *set, session_t **out)
{
    for (int i = 0; i < set->n; i++) {
        char full[64];
        snprintf(full, sizeof full, BOB "/r%d", i);
        out[i] = bind_jid(full);
        if (set->r[i].available)
            avail(out[i], set->r[i].priority);
    }
}

/* 8.5.2.1.1: which of bob's resources get a message of this type sent to the bare JID.
 * Written from the RFC: normal and chat go to the available resources of the highest
 * non-negative priority (all of them when several share it); headline to every available
 * resource of non-negative priority; groupchat and error to none. */
static int expect_bare(const res_set_t *set, const msg_type_t *t, int *want)
{
    int best = -1, count = 0;
    for (int i = 0; i < set->n; i++)
        if (set->r[i].available && set->r[i].priority >= 0 && set->r[i].priority > best)
            best = set->r[i].priority;
    for (int i = 0; i < set->n; i++) {
        int eligible = set->r[i].available && set->r[i].priority >= 0;
        want[i] = !t->groupchat && !t->error && eligible &&
                  (t->headline || set->r[i].priority == best);
        count += want[i];
    }
    return count;
}

START_TEST(test_bare_delivery)
{
    const res_set_t *set = &res_sets[_i];
    session_t *alice = bind_jid(ALICE "/a");
    session_t *bob[3];
    bind_set(set, bob);
    for (size_t k = 0; k < NTYPES; k++) {
        const msg_type_t *t = &msg_types[k];
        char id[32];
        snprintf(id, sizeof id, "m-%s", t->type ? t->type : "none");
        long long stored = offline_count(BOB);
        fake_link_clear();
        if (t->type)
            sendf(alice, "<message to='" BOB "' type='%s' id='%s'><body>hi</body></message>",
                  t->type, id);
        else
            sendf(alice, "<message to='" BOB "' id='%s'><body>hi</body></message>", id);
        int want[3];
        int n = expect_bare(set, t, want);
        for (int i = 0; i < set->n; i++)
            ck_assert_msg(got_to(bob[i], id, BOB) == want[i], "%s, %s: resource %d got %d",
                          set->name, id, i, got(bob[i], id));
        /* 8.5.2.2.1: nobody took it: normal and chat are stored offline; headline and error
         * are dropped; groupchat is refused whether resources are online or not. */
        int offline = n == 0 && !t->headline && !t->groupchat && !t->error;
        ck_assert_msg(offline_count(BOB) == stored + offline, "%s, %s: stored %lld -> %lld",
                      set->name, id, stored, offline_count(BOB));
        ck_assert_str_eq(bounce(alice, id), t->groupchat ? "service-unavailable" : "");
        if (!t->groupchat)
            ck_assert_int_eq(total(alice), 0);
    }
}
END_TEST

/* 8.5.2.2.1 / 8.5.1: no account, storage full, storage away. */
START_TEST(test_bare_no_account)
{
    session_t *alice = bind_jid(ALICE "/a");
    for (size_t k = 0; k < NTYPES; k++) {
        const msg_type_t *t = &msg_types[k];
        char id[32];
        snprintf(id, sizeof id, "n-%s", t->type ? t->type : "none");
        fake_link_clear();
        sendf(alice, "<message to='" NOBODY "' type='%s' id='%s'><body>hi</body></message>",
              t->type ? t->type : "normal", id);
        /* Looks exactly like an existing account that cannot take it. */
        ck_assert_str_eq(bounce(alice, id),
                         t->headline || t->error ? "" : "service-unavailable");
    }
    ck_assert_int_eq(offline_count(NOBODY), 0);
}
END_TEST

START_TEST(test_bare_offline_full)
{
    session_t *alice = bind_jid(ALICE "/a");
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_OFFLINE, BOB);
    long max = config_int("max_offline_messages");
    for (long i = 0; i + 1 < max; i++)
        redis_do(fake_redis_cmd("RPUSH %s x", key));
    send_xml(alice, "<message to='" BOB "' type='chat' id='last'><body>1</body></message>");
    ck_assert_str_eq(bounce(alice, "last"), "");
    ck_assert_int_eq(offline_count(BOB), max);
    send_xml(alice, "<message to='" BOB "' type='chat' id='over'><body>2</body></message>");
    ck_assert_str_eq(bounce(alice, "over"), "service-unavailable");
    ck_assert_int_eq(offline_count(BOB), max);
}
END_TEST

START_TEST(test_bare_storage_down)
{
    session_t *alice = bind_jid(ALICE "/a");
    rt.redis_ready = 0;
    send_xml(alice, "<message to='" BOB "' type='chat' id='c'><body>1</body></message>");
    send_xml(alice, "<message to='" BOB "' id='n'><body>1</body></message>");
    send_xml(alice, "<message to='" BOB "' type='headline' id='h'><body>1</body></message>");
    /* The message is not lost in silence: the sender learns it failed, for now. */
    ck_assert_str_eq(bounce(alice, "c"), "internal-server-error");
    ck_assert_str_eq(bounce(alice, "n"), "internal-server-error");
    ck_assert_str_eq(bounce(alice, "h"), "");
    rt.redis_ready = 1;
    ck_assert_int_eq(offline_count(BOB), 0);
}
END_TEST

/* The stored message reaches bob's first resource that comes online with a non-negative
 * priority (XEP-0160), with a XEP-0203 stamp, and then leaves storage. */
START_TEST(test_offline_then_delivered)
{
    session_t *alice = bind_jid(ALICE "/a");
    send_xml(alice, "<message to='" BOB "' type='chat' id='o1'><body>1</body></message>");
    ck_assert_int_eq(offline_count(BOB), 1);
    session_t *neg = bind_jid(BOB "/neg");
    avail(neg, -1);
    ck_assert_int_eq(got(neg, "o1"), 0);
    ck_assert_int_eq(offline_count(BOB), 1);
    session_t *b = bind_jid(BOB "/r");
    fake_link_clear();
    avail(b, 0);
    ck_assert_int_eq(got_to(b, "o1", BOB), 1);
    ck_assert_int_eq(got(neg, "o1"), 0);
    ck_assert_int_eq(offline_count(BOB), 0);
}
END_TEST

/* A stanza a frontend could not write, its client gone before the router heard of it,
 * comes back (IPC_RETURN): routed as for a resource not online (8.5.3.2.1) when the user
 * has no available resource: a chat message to offline storage; an iq request answered
 * with an error in any case; a presence dropped. */
START_TEST(test_returned_stanzas)
{
    session_t *alice = bind_jid(ALICE "/a");
    avail(alice, 0);
    session_t *b = bind_jid(BOB "/r");
    avail(b, 0);
    send_xml(alice, "<message to='" BOB "' type='chat' id='r1'><body>1</body></message>");
    ck_assert_int_eq(got(b, "r1"), 1);
    session_end(b);
    fake_redis_flush();
    static const char msg[] = "<message to='" BOB "' type='chat' id='r1' from='" ALICE "/a'>"
                              "<body>1</body></message>";
    route_returned(msg, sizeof msg - 1);
    fake_redis_flush();
    ck_assert_int_eq(offline_count(BOB), 1);
    /* With another resource available, a message is not routed again: that resource had
     * it (bare JID) or its carbon copy; nor is it sent back to a session still available
     * (its frontend ended the stream before sending the unbind). */
    session_t *b2 = bind_jid(BOB "/r2");
    avail(b2, 0);
    fake_link_clear();
    static const char msg2[] = "<message to='" BOB "/r' type='chat' id='r2' from='" ALICE "/a'>"
                               "<body>2</body></message>";
    route_returned(msg2, sizeof msg2 - 1);
    fake_redis_flush();
    ck_assert_int_eq(got(b2, "r2"), 0);
    ck_assert_uint_eq(fake_link_count(), 0);
    ck_assert_int_eq(offline_count(BOB), 0);
    static const char iq[] = "<iq type='get' id='q1' to='" BOB "/r' from='" ALICE "/a'>"
                             "<query xmlns='jabber:iq:version'/></iq>";
    route_returned(iq, sizeof iq - 1);
    ck_assert_str_eq(bounce(alice, "q1"), "service-unavailable");
    static const char pres[] = "<presence to='" BOB "/r' from='" ALICE "/a'/>";
    size_t before = fake_link_count();
    route_returned(pres, sizeof pres - 1);
    route_returned("<message", 8); /* not a stanza: nothing */
    ck_assert_uint_eq(fake_link_count(), before);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * RFC 6121 8.5.3: to a full JID. */

/* 8.5.3.1: an online resource gets every type, whatever its priority or availability. */
/* More resources than route.c keeps on its stack: the same rule, from the heap. */

/* A batch lost with its frontend (link.c on_lost): the deliveries in it come back to their
 * senders as resource-constraint (wait), as a send that fails at once does; never an error,
 * an iq result or a carbon copy, and nothing for a sender we do not know. */
START_TEST(test_lost_delivery_bounced)
{
    session_t *alice = bind_jid(ALICE "/a");
    bind_jid(BOB "/b");
    const char *chat = "<message from='" ALICE "/a' to='" BOB "/b' type='chat' id='lost-1'>"
                       "<body>hi</body></message>";
    const char *err = "<message from='" ALICE "/a' to='" BOB "/b' type='error' id='lost-2'/>";
    const char *result = "<iq from='" ALICE "/a' to='" BOB "/b' type='result' id='lost-3'/>";
    const char *cc = "<message from='" ALICE "' to='" ALICE "/b' type='chat' id='lost-4'>"
                     "<received xmlns='urn:xmpp:carbons:2'/></message>";
    const char *stranger = "<message from='" NOBODY "/x' to='" BOB "/b' id='lost-5'/>";
    fake_link_clear();
    route_bounce_delivery(chat, strlen(chat));
    route_bounce_delivery(err, strlen(err));
    route_bounce_delivery(result, strlen(result));
    route_bounce_delivery(cc, strlen(cc));
    route_bounce_delivery(stranger, strlen(stranger));
    ck_assert_str_eq(bounce(alice, "lost-1"), "resource-constraint");
    ck_assert_int_eq(total(alice), 1);
}
END_TEST

START_TEST(test_bare_many_resources)
{
    session_t *a = bind_jid(ALICE "/a");
    session_t *b[20];
    for (int i = 0; i < 20; i++) {
        char full[64];
        snprintf(full, sizeof full, BOB "/r%d", i);
        b[i] = bind_jid(full);
        avail(b[i], i == 13 || i == 17 ? 50 : i);
    }
    send_xml(a, "<message to='" BOB "' type='chat' id='many'><body>x</body></message>");
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(got(b[i], "many"), i == 13 || i == 17);
}
END_TEST

START_TEST(test_full_online)
{
    static const res_spec_t specs[] = {{1, 5}, {1, 0}, {1, -1}, {0, 0}};
    session_t *alice = bind_jid(ALICE "/a");
    session_t *bob[4];
    for (int i = 0; i < 4; i++) {
        char full[32];
        snprintf(full, sizeof full, BOB "/r%d", i);
        bob[i] = bind_jid(full);
        if (specs[i].available)
            avail(bob[i], specs[i].priority);
    }
    for (int target = 0; target < 4; target++) {
        for (size_t k = 0; k < NTYPES; k++) {
            const msg_type_t *t = &msg_types[k];
            char id[32];
            snprintf(id, sizeof id, "f%d-%s", target, t->type ? t->type : "none");
            fake_link_clear();
            sendf(alice, "<message to='%s' type='%s' id='%s'><body>x</body></message>",
                  bob[target]->full, t->type ? t->type : "normal", id);
            for (int i = 0; i < 4; i++)
                ck_assert_msg(got_to(bob[i], id, bob[target]->full) == (i == target),
                              "%s: resource %d", id, i);
            ck_assert_int_eq(total(alice), 0);
        }
        static const char *iqtypes[] = {"get", "set", "result", "error"};
        for (int k = 0; k < 4; k++) {
            char id[32];
            snprintf(id, sizeof id, "iq%d-%s", target, iqtypes[k]);
            fake_link_clear();
            sendf(alice, "<iq to='%s' type='%s' id='%s'><query xmlns='x:y'/></iq>",
                  bob[target]->full, iqtypes[k], id);
            for (int i = 0; i < 4; i++)
                ck_assert_int_eq(got_to(bob[i], id, bob[target]->full), i == target);
            ck_assert_int_eq(total(alice), 0);
        }
    }
    ck_assert_int_eq(offline_count(BOB), 0);
}
END_TEST

/* 8.5.3.2: no such resource. The user is online elsewhere (loop 0), or not at all (1). */
START_TEST(test_full_not_online)
{
    session_t *alice = bind_jid(ALICE "/a");
    session_t *b1 = NULL, *b2 = NULL;
    if (_i == 0) {
        b1 = bind_jid(BOB "/one");
        b2 = bind_jid(BOB "/two");
        avail(b1, 1);
        avail(b2, 4);
    }
    for (size_t k = 0; k < NTYPES; k++) {
        const msg_type_t *t = &msg_types[k];
        char id[32];
        snprintf(id, sizeof id, "g-%s", t->type ? t->type : "none");
        long long stored = offline_count(BOB);
        fake_link_clear();
        sendf(alice, "<message to='" BOB "/gone' type='%s' id='%s'><body>x</body></message>",
              t->type ? t->type : "normal", id);
        int chat = t->type && strcmp(t->type, "chat") == 0;
        /* 8.5.3.2.1: chat is treated as sent to the bare JID; groupchat is refused;
         * normal, headline and error are silently ignored. */
        if (_i == 0) {
            ck_assert_int_eq(got(b1, id), 0);
            ck_assert_int_eq(got(b2, id), chat);
        }
        ck_assert_int_eq(offline_count(BOB), stored + (_i == 1 && chat));
        ck_assert_str_eq(bounce(alice, id), t->groupchat ? "service-unavailable" : "");
        if (!t->groupchat)
            ck_assert_int_eq(total(alice), 0);
    }
    /* 8.5.3.2.3: requests are refused, responses ignored. */
    static const char *iqtypes[] = {"get", "set", "result", "error"};
    for (int k = 0; k < 4; k++) {
        char id[32];
        snprintf(id, sizeof id, "iq-%s", iqtypes[k]);
        fake_link_clear();
        sendf(alice, "<iq to='" BOB "/gone' type='%s' id='%s'><query xmlns='x:y'/></iq>",
              iqtypes[k], id);
        ck_assert_str_eq(bounce(alice, id), k < 2 ? "service-unavailable" : "");
        if (b1)
            ck_assert_int_eq(total(b1) + total(b2), 0);
    }
}
END_TEST

/* 8.5.1 / 8.5.2.1.3: an iq to a bare JID is the server's to answer; a full JID of no
 * account is like one not online; another domain is unreachable (no s2s). */
START_TEST(test_iq_bare_and_remote)
{
    session_t *alice = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/r");
    avail(b, 0);
    fake_link_clear();
    send_xml(alice, "<iq to='" BOB "' type='get' id='unknown'><query xmlns='x:y'/></iq>");
    send_xml(alice, "<iq to='" NOBODY "' type='get' id='vc'><vCard xmlns='vcard-temp'/></iq>");
    send_xml(alice, "<iq to='" BOB "' type='get' id='vb'><vCard xmlns='vcard-temp'/></iq>");
    send_xml(alice, "<iq to='" BOB "' type='result' id='res'/>");
    send_xml(alice, "<iq to='" NOBODY "/x' type='get' id='nx'><query xmlns='x:y'/></iq>");
    send_xml(alice, "<message to='bob@elsewhere.example' type='chat' id='rem'><body>x</body></message>");
    send_xml(alice, "<message to='bob@elsewhere.example' type='error' id='rem-err'/>");
    ck_assert_str_eq(bounce(alice, "unknown"), "service-unavailable");
    ck_assert_str_eq(bounce(alice, "vc"), "service-unavailable");
    ck_assert_str_eq(bounce(alice, "vb"), "");
    ck_assert_int_eq(got(alice, "vb"), 1); /* the server answers for bob: an empty vCard */
    ck_assert_str_eq(bounce(alice, "res"), "");
    ck_assert_str_eq(bounce(alice, "nx"), "service-unavailable");
    ck_assert_str_eq(bounce(alice, "rem"), "remote-server-not-found");
    ck_assert_str_eq(bounce(alice, "rem-err"), "");
    ck_assert_int_eq(total(b), 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * XEP-0077 through mod_register: what needs no account creation (Lua scripts, which the
 * fake Redis does not run; tests/integration/test_register.py covers those). */

/* A frontend's IPC_REGISTER through the core's hook, as dispatch.c runs it; returns the
 * status of the reply (-1 when none was sent). */
static int register_request(uint8_t flags, const char *user, const char *creds,
                            const char *token)
{
    ipc_hdr_t h;
    ipc_register_t m;
    ck_assert_int_eq(ipc_register_build(&h, &(ipc_register_t){77, 9, flags, user, creds,
                                                              "192.0.2.7", token}), 0);
    ck_assert_int_eq(ipc_register_read(&h, &m), 0);
    fake_link_clear();
    hook_ev_t ev = {.frontend = &fe, .reg = &m};
    ck_assert_int_eq(hook_run(HOOK_REGISTER, &ev), MOD_HANDLED);
    fake_redis_flush();
    for (size_t i = 0; i < fake_link_count(); i++) {
        const fake_sent_t *s = fake_link_get(i);
        if (s->type == IPC_REGISTER_REPLY) {
            ck_assert_uint_eq(s->conn, 77);
            ck_assert_uint_eq(s->seq, 9);
            return s->status;
        }
    }
    return -1;
}

START_TEST(test_register_requests)
{
    /* allow_registration is off by default: without a token, refused. */
    ck_assert_int_eq(register_request(0, "newbie", "a\nb", ""), IPC_REFUSED);
    /* A token of the wrong form. */
    ck_assert_int_eq(register_request(0, "newbie", "a\nb", "bad token"), IPC_NOT_FOUND);
    ck_assert_int_eq(register_request(IPC_REGISTER_CHECK, "", "", "bad/token"), IPC_NOT_FOUND);
    /* A request whose credentials are not two SCRAM credentials is refused before storage. */
    ck_assert_int_eq(register_request(0, "newbie", "a\nb", "tok-1"), IPC_REFUSED);
    ck_assert_int_eq(register_request(0, "New Bie", "a\nb", "tok-1"), IPC_REFUSED);
    /* Redis away: temporary. */
    rt.redis_ready = 0;
    ck_assert_int_eq(register_request(IPC_REGISTER_CHECK, "", "", "tok-1"), IPC_TEMPORARY);
    rt.redis_ready = 1;
}
END_TEST

START_TEST(test_register_query_logged_in)
{
    session_t *alice = bind_jid(ALICE "/a");
    fake_link_clear();
    send_xml(alice, "<iq type='get' id='rq'><query xmlns='jabber:iq:register'/></iq>");
    int found = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = delivered(i, alice->conn);
        if (st && attr_is(st, "id", "rq") && attr_is(st, "type", "result")) {
            const xml_node_t *q = xml_node_child(st, "query", NS_REGISTER);
            ck_assert_ptr_nonnull(q);
            ck_assert_ptr_nonnull(xml_node_child(q, "registered", NS_REGISTER));
            char *u = xml_node_text(xml_node_child(q, "username", NS_REGISTER));
            ck_assert_str_eq(u, "alice");
            free(u);
            found++;
        }
        xml_node_free(&st);
    }
    ck_assert_int_eq(found, 1);
    /* Someone else's username, a missing password, a short one: refused without storage. */
    send_xml(alice, "<iq type='set' id='p1'><query xmlns='jabber:iq:register'>"
                    "<username>bob</username><password>long-enough-1</password></query></iq>");
    send_xml(alice, "<iq type='set' id='p2'><query xmlns='jabber:iq:register'>"
                    "<username>alice</username></query></iq>");
    send_xml(alice, "<iq type='set' id='p3'><query xmlns='jabber:iq:register'>"
                    "<username>alice</username><password>short</password></query></iq>");
    ck_assert_str_eq(bounce(alice, "p1"), "not-authorized");
    ck_assert_str_eq(bounce(alice, "p2"), "bad-request");
    ck_assert_str_eq(bounce(alice, "p3"), "not-acceptable");
    /* Cancellation is not this module's: with no other taker, service-unavailable. */
    send_xml(alice, "<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>");
    ck_assert_str_eq(bounce(alice, "rm"), "service-unavailable");
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * RFC 6121 section 3 and appendix A, through presence stanzas. Stored flags: to, from,
 * ask_out, pending_in, approved, hidden. */

START_TEST(test_subscribe_approve)
{
    session_t *a1 = bind_jid(ALICE "/a1");
    session_t *a2 = bind_jid(ALICE "/a2");
    session_t *b1 = bind_jid(BOB "/b1");
    session_t *b2 = bind_jid(BOB "/b2");
    session_t *b3 = bind_jid(BOB "/b3"); /* connected, never available, not interested */
    avail(a1, 0);
    avail(a2, 0);
    avail(b1, 1);
    avail(b2, 0);
    roster_get(a1);
    roster_get(b1);
    fake_link_clear();

    /* A.2.1 / A.3.1: None -> None + Pending Out for alice; bob gets the request on his
     * available resources and keeps Pending In on a hidden item. */
    send_xml(a1, "<presence to='" BOB "' type='subscribe' id='s1'/>");
    ck_assert_str_eq(stored_flags(ALICE, BOB), "001000");
    ck_assert_str_eq(stored_flags(BOB, ALICE), "000101");
    ck_assert_int_eq(pushes(a1, BOB, "none", "subscribe"), 1);
    ck_assert_int_eq(any_push(a2, BOB), 0); /* a2 never asked for the roster */
    ck_assert_int_eq(any_push(b1, ALICE), 0); /* hidden: not pushed */
    ck_assert_int_eq(presence_from(b1, "subscribe", ALICE), 1);
    ck_assert_int_eq(presence_from(b2, "subscribe", ALICE), 1);
    ck_assert_int_eq(total(b3), 0);
    ck_assert_int_eq(presence_from(a1, "subscribe", ALICE) + presence_from(a2, "subscribe", ALICE), 0);

    /* Sent again while pending: routed, not delivered again (A.3.1). */
    fake_link_clear();
    send_xml(a1, "<presence to='" BOB "' type='subscribe' id='s2'/>");
    ck_assert_int_eq(presence_from(b1, "subscribe", ALICE), 0);

    /* A.2.2 / A.3.2: bob approves: bob None + Pending In -> From, alice Pending Out -> To;
     * both pushed; alice gets 'subscribed' and bob's presence from each available
     * resource. */
    fake_link_clear();
    send_xml(b2, "<presence to='" ALICE "' type='subscribed' id='ok'/>");
    ck_assert_str_eq(stored_flags(BOB, ALICE), "010000");
    ck_assert_str_eq(stored_flags(ALICE, BOB), "100000");
    ck_assert_int_eq(pushes(b1, ALICE, "from", ""), 1);
    ck_assert_int_eq(any_push(b2, ALICE), 0);
    ck_assert_int_eq(pushes(a1, BOB, "to", ""), 1);
    ck_assert_int_eq(presence_from(a1, "subscribed", BOB), 1);
    ck_assert_int_eq(presence_from(a2, "subscribed", BOB), 1);
    ck_assert_int_eq(presence_from(a1, NULL, BOB "/b1"), 1);
    ck_assert_int_eq(presence_from(a1, NULL, BOB "/b2"), 1);
    ck_assert_int_eq(presence_from(a2, NULL, BOB "/b1"), 1);
    ck_assert_int_eq(presence_from(a1, NULL, BOB "/b3"), 0);

    /* Bob's presence now goes to alice (4.2.2 / 4.4.2), alice's not to bob. */
    fake_link_clear();
    send_xml(b1, "<presence><show>away</show></presence>");
    ck_assert_int_eq(presence_from(a1, NULL, BOB "/b1"), 1);
    ck_assert_int_eq(presence_from(a2, NULL, BOB "/b1"), 1);
    fake_link_clear();
    send_xml(a1, "<presence><show>dnd</show></presence>");
    ck_assert_int_eq(presence_from(b1, NULL, ALICE "/a1"), 0);

    /* A.2.3 / A.3.3: alice unsubscribes: alice To -> None, bob From -> None (the hidden-less
     * item stays, with no subscription); bob is told, alice gets bob's unavailable. */
    fake_link_clear();
    send_xml(a2, "<presence to='" BOB "' type='unsubscribe' id='u'/>");
    ck_assert_str_eq(stored_flags(ALICE, BOB), "000000");
    ck_assert_str_eq(stored_flags(BOB, ALICE), "000000");
    ck_assert_int_eq(pushes(a1, BOB, "none", ""), 1);
    ck_assert_int_eq(pushes(b1, ALICE, "none", ""), 1);
    ck_assert_int_eq(presence_from(b1, "unsubscribe", ALICE), 1);
    ck_assert_int_eq(presence_from(b2, "unsubscribe", ALICE), 1);
    ck_assert_int_eq(presence_from(a1, "unavailable", BOB "/b1"), 1);
    ck_assert_int_eq(presence_from(a2, "unavailable", BOB "/b2"), 1);
    fake_link_clear();
    send_xml(b1, "<presence/>");
    ck_assert_int_eq(presence_from(a1, NULL, BOB "/b1"), 0);
}
END_TEST

/* A.2.4 / A.3.4: the contact cancels the user's subscription with 'unsubscribed'. */
START_TEST(test_unsubscribed)
{
    preload_item(ALICE, BOB, "110000");
    preload_item(BOB, ALICE, "110000");
    session_t *a = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/b");
    avail(a, 0);
    avail(b, 0);
    roster_get(a);
    roster_get(b);
    fake_link_clear();
    send_xml(b, "<presence to='" ALICE "' type='unsubscribed' id='x'/>");
    ck_assert_str_eq(stored_flags(BOB, ALICE), "100000");
    ck_assert_str_eq(stored_flags(ALICE, BOB), "010000");
    ck_assert_int_eq(pushes(b, ALICE, "to", ""), 1);
    ck_assert_int_eq(pushes(a, BOB, "from", ""), 1);
    ck_assert_int_eq(presence_from(a, "unsubscribed", BOB), 1);
    ck_assert_int_eq(presence_from(a, "unavailable", BOB "/b"), 1);
    /* Nothing to cancel any more: not routed, nothing changes (A.2.4). */
    fake_link_clear();
    send_xml(b, "<presence to='" ALICE "' type='unsubscribed' id='y'/>");
    ck_assert_int_eq(total(a) + total(b), 0);
    ck_assert_str_eq(stored_flags(BOB, ALICE), "100000");
}
END_TEST

/* 3.1.3: a request to a contact with no available resource is kept and delivered when the
 * contact next sends initial presence; a request to no account is dropped (8.5.1). */
START_TEST(test_subscribe_offline_contact)
{
    session_t *a = bind_jid(ALICE "/a");
    avail(a, 0);
    send_xml(a, "<presence to='" BOB "' type='subscribe'/>");
    send_xml(a, "<presence to='" NOBODY "' type='subscribe'/>");
    ck_assert_str_eq(stored_flags(BOB, ALICE), "000101");
    ck_assert_str_eq(stored_flags(NOBODY, ALICE), "");
    ck_assert_str_eq(stored_flags(ALICE, NOBODY), "001000");
    session_t *b = bind_jid(BOB "/b");
    ck_assert_int_eq(total(b), 0);
    avail(b, 0);
    ck_assert_int_eq(presence_from(b, "subscribe", ALICE), 1);
}
END_TEST

/* 3.4: pre-approval; a later request is answered by the server for the user. */
START_TEST(test_preapproval)
{
    session_t *a = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/b");
    avail(a, 0);
    avail(b, 0);
    send_xml(b, "<presence to='" ALICE "' type='subscribed'/>");
    ck_assert_str_eq(stored_flags(BOB, ALICE), "000010");
    ck_assert_int_eq(presence_from(a, "subscribed", BOB), 0); /* nothing routed yet */
    fake_link_clear();
    send_xml(a, "<presence to='" BOB "' type='subscribe'/>");
    ck_assert_str_eq(stored_flags(BOB, ALICE), "010000");
    ck_assert_str_eq(stored_flags(ALICE, BOB), "100000");
    ck_assert_int_eq(presence_from(b, "subscribe", ALICE), 0);
    ck_assert_int_eq(presence_from(a, "subscribed", BOB), 1);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * XEP-0280 message carbons. */

static void enable_carbons(session_t *s)
{
    send_xml(s, "<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    ck_assert_int_eq(got(s, "cb"), 1);
}

START_TEST(test_carbons)
{
    session_t *a1 = bind_jid(ALICE "/a1");
    session_t *a2 = bind_jid(ALICE "/a2");
    session_t *a3 = bind_jid(ALICE "/a3"); /* not enabled */
    session_t *b1 = bind_jid(BOB "/b1");
    session_t *b2 = bind_jid(BOB "/b2");
    session_t *b3 = bind_jid(BOB "/b3");
    session_t *b4 = bind_jid(BOB "/b4"); /* not enabled */
    avail(a1, 0);
    avail(a2, 0);
    avail(a3, 0);
    avail(b1, 5);
    avail(b2, 1);
    avail(b3, 5);
    avail(b4, 0);
    enable_carbons(a1);
    enable_carbons(a2);
    enable_carbons(b1);
    enable_carbons(b2);
    enable_carbons(b3);

    /* To the bare JID: b1 and b3 (highest priority) get the message itself; b2 a
     * 'received' copy; the sender's other enabled resource a 'sent' copy. */
    fake_link_clear();
    send_xml(a1, "<message to='" BOB "' type='chat' id='c1'><body>x</body></message>");
    ck_assert_int_eq(got(b1, "c1") + got(b3, "c1"), 2);
    ck_assert_int_eq(got(b2, "c1"), 0);
    ck_assert_int_eq(carbon(b2, "received", "c1"), 1);
    ck_assert_int_eq(carbons_total(b1) + carbons_total(b3) + carbons_total(b4), 0);
    ck_assert_int_eq(carbon(a2, "sent", "c1"), 1);
    ck_assert_int_eq(carbons_total(a1) + carbons_total(a3), 0);

    /* To a full JID: the other enabled resources of bob get 'received'. */
    fake_link_clear();
    send_xml(a2, "<message to='" BOB "/b2' type='chat' id='c2'><body>x</body></message>");
    ck_assert_int_eq(got(b2, "c2"), 1);
    ck_assert_int_eq(carbon(b1, "received", "c2"), 1);
    ck_assert_int_eq(carbon(b3, "received", "c2"), 1);
    ck_assert_int_eq(carbons_total(b2) + carbons_total(b4), 0);
    ck_assert_int_eq(carbon(a1, "sent", "c2"), 1);
    ck_assert_int_eq(carbons_total(a2) + carbons_total(a3), 0);

    /* Normal with a body qualifies; without one, headline, groupchat and error do not. */
    fake_link_clear();
    send_xml(a1, "<message to='" BOB "/b2' id='n1'><body>x</body></message>");
    ck_assert_int_eq(carbon(b1, "received", "n1") + carbon(a2, "sent", "n1"), 2);
    fake_link_clear();
    send_xml(a1, "<message to='" BOB "/b2' id='n2'><subject>x</subject></message>");
    send_xml(a1, "<message to='" BOB "/b2' type='headline' id='h'><body>x</body></message>");
    send_xml(a1, "<message to='" BOB "/b2' type='groupchat' id='g'><body>x</body></message>");
    send_xml(a1, "<message to='" BOB "/b2' type='error' id='e'><body>x</body></message>");
    ck_assert_int_eq(got(b2, "n2") + got(b2, "h") + got(b2, "g") + got(b2, "e"), 4);
    for (session_t *s = a1->user->sessions; s; s = s->next)
        ck_assert_int_eq(carbons_total(s), 0);
    for (session_t *s = b1->user->sessions; s; s = s->next)
        ck_assert_int_eq(carbons_total(s), 0);

    /* <private/> and the no-copy hint exclude a message; so do carbons themselves. */
    fake_link_clear();
    send_xml(a1, "<message to='" BOB "' type='chat' id='p'><body>x</body>"
                 "<private xmlns='urn:xmpp:carbons:2'/></message>");
    send_xml(a1, "<message to='" BOB "/b2' type='chat' id='nc'><body>x</body>"
                 "<no-copy xmlns='urn:xmpp:hints'/></message>");
    ck_assert_int_eq(got(b1, "p") + got(b3, "p") + got(b2, "nc"), 3);
    for (session_t *s = a1->user->sessions; s; s = s->next)
        ck_assert_int_eq(carbons_total(s), 0);
    for (session_t *s = b1->user->sessions; s; s = s->next)
        ck_assert_int_eq(carbons_total(s), 0);

    /* Disabled: nothing more. */
    send_xml(b2, "<iq type='set' id='off'><disable xmlns='urn:xmpp:carbons:2'/></iq>");
    send_xml(a2, "<iq type='set' id='off'><disable xmlns='urn:xmpp:carbons:2'/></iq>");
    fake_link_clear();
    send_xml(a1, "<message to='" BOB "' type='chat' id='d'><body>x</body></message>");
    ck_assert_int_eq(carbons_total(b2) + carbons_total(a2), 0);
}
END_TEST

/* Enabling is a request to the server on the account's behalf (no 'to', the domain or the
 * own bare JID), not to another account; a message to one's own other resource is both
 * sent and received. */
START_TEST(test_carbons_enable_and_self)
{
    session_t *a1 = bind_jid(ALICE "/a1");
    session_t *a2 = bind_jid(ALICE "/a2");
    session_t *a3 = bind_jid(ALICE "/a3");
    avail(a1, 0);
    avail(a2, 0);
    avail(a3, 0);
    send_xml(a2, "<iq to='" DOM "' type='set' id='e2'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    send_xml(a3, "<iq to='" BOB "' type='set' id='e3'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    ck_assert_int_eq(got(a2, "e2"), 1);
    ck_assert_str_eq(bounce(a3, "e3"), "service-unavailable");
    fake_link_clear();
    send_xml(a1, "<message to='" ALICE "/a3' type='chat' id='self'><body>x</body></message>");
    ck_assert_int_eq(got(a3, "self"), 1);
    ck_assert_int_eq(carbons_total(a3), 0); /* never enabled */
    ck_assert_int_eq(carbon(a2, "sent", "self"), 1);
    ck_assert_int_eq(carbon(a2, "received", "self"), 1);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * XEP-0352 client state indication (mod_csi). */

/* The client's <inactive/> or <active/>, as dispatch.c hands IPC_CLIENT_STATE on. */
static void client_state(session_t *s, int inactive)
{
    hook_run(HOOK_CLIENT_STATE, &(hook_ev_t){.session = s, .user = s->user, .inactive = inactive});
    fake_redis_flush();
}

/* The i-th stanza the session's client got (from the start of the fake link's record):
 * its element name and the text of its <status/> or its id, as "name:what". */
static const char *nth_to(const session_t *s, int i)
{
    static char out[128];
    int n = 0;
    out[0] = '\0';
    for (size_t k = 0; k < fake_link_count(); k++) {
        xml_node_t *st = delivered(k, s->conn);
        if (st && n++ == i) {
            const xml_node_t *status = xml_node_child(st, "status", NULL);
            char *text = status ? xml_node_text(status) : NULL;
            const char *id = xml_node_attr(st, "id");
            snprintf(out, sizeof out, "%s:%s", st->name, text ? text : id ? id : "");
            free(text);
        }
        xml_node_free(&st);
    }
    return out;
}

#define CHATSTATE(id) "<message to='" ALICE "/a' type='chat' id='" id "'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"

/* Held while inactive: presence (newest per sender), chat states; a message with a body
 * releases them in order, then itself; <active/> releases too. */
START_TEST(test_csi_hold_and_release)
{
    preload_item(ALICE, BOB, "110000");
    preload_item(BOB, ALICE, "110000");
    preload_item(ALICE, CAROL, "110000");
    preload_item(CAROL, ALICE, "110000");
    session_t *a = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/b");
    session_t *c = bind_jid(CAROL "/c");
    avail(a, 0);
    avail(b, 0);
    avail(c, 0);
    client_state(a, 1);
    fake_link_clear();
    send_xml(b, "<presence><status>b1</status></presence>");
    send_xml(b, CHATSTATE("cs1"));
    send_xml(c, "<presence><status>c1</status></presence>");
    send_xml(b, "<presence><status>b2</status></presence>");
    send_xml(b, "<presence><status>b3</status></presence>");
    send_xml(b, "<message to='" ALICE "/a' id='rcpt'><received xmlns='urn:xmpp:receipts' id='x'/></message>");
    ck_assert_int_eq(total(a), 0);
    /* Bob's first two updates were replaced by his third. */
    send_xml(c, "<message to='" ALICE "/a' type='chat' id='m1'><body>hi</body></message>");
    ck_assert_int_eq(total(a), 5);
    ck_assert_str_eq(nth_to(a, 0), "message:cs1");
    ck_assert_str_eq(nth_to(a, 1), "presence:c1");
    ck_assert_str_eq(nth_to(a, 2), "presence:b3");
    ck_assert_str_eq(nth_to(a, 3), "message:rcpt");
    ck_assert_str_eq(nth_to(a, 4), "message:m1");
    /* Still inactive: held again; <active/> releases. */
    fake_link_clear();
    send_xml(c, "<presence><status>c2</status></presence>");
    ck_assert_int_eq(total(a), 0);
    client_state(a, 0);
    ck_assert_int_eq(total(a), 1);
    ck_assert_str_eq(nth_to(a, 0), "presence:c2");
    /* Active: nothing is held. */
    send_xml(c, "<presence><status>c3</status></presence>");
    ck_assert_int_eq(total(a), 2);
}
END_TEST

/* What a person should see now releases what is held: an iq (here the answer to the
 * client's own ping, XEP-0352 5.1), an encrypted message, a call, a subscription request,
 * a carbon copy of a message with a body; a carbon of a chat state is held. */
START_TEST(test_csi_urgent)
{
    static const char *const urgent[] = {
        "<iq type='get' id='u' to='" DOM "'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<message to='" ALICE "/a' id='u'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>",
        "<message to='" ALICE "/a' id='u'><encrypted xmlns='urn:xmpp:omemo:2'/></message>",
        "<message to='" ALICE "/a' id='u'><openpgp xmlns='urn:xmpp:openpgp:0'>x</openpgp></message>",
        "<message to='" ALICE "/a' id='u'><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>",
        "<presence to='" ALICE "' type='subscribe' id='u'/>",
    };
    preload_item(ALICE, BOB, "110000");
    preload_item(BOB, ALICE, "110000");
    session_t *a = bind_jid(ALICE "/a");
    session_t *a2 = bind_jid(ALICE "/a2");
    session_t *b = bind_jid(BOB "/b");
    session_t *c = bind_jid(CAROL "/c"); /* not in Alice's roster: she may ask */
    avail(a, 0);
    avail(b, 0);
    avail(c, 0);
    enable_carbons(a);
    client_state(a, 1);
    for (size_t i = 0; i < sizeof urgent / sizeof urgent[0]; i++) {
        fake_link_clear();
        send_xml(b, "<presence><status>held</status></presence>");
        ck_assert_int_eq(total(a), 0);
        /* The ping is the client's own: its answer comes to it. */
        send_xml(i == 0 ? a : i == 5 ? c : b, urgent[i]);
        ck_assert_msg(total(a) == 2, "%zu: %d stanzas", i, total(a));
        ck_assert_str_eq(nth_to(a, 0), "presence:held");
        ck_assert_str_eq(nth_to(a, 1), i == 0 ? "iq:u" : i == 5 ? "presence:u" : "message:u");
    }
    /* Carbons of what Bob sends to Alice's other resource: judged by what they carry. */
    fake_link_clear();
    send_xml(b, "<message to='" ALICE "/a2' type='chat' id='cs'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>");
    ck_assert_int_eq(got(a2, "cs"), 1);
    ck_assert_int_eq(total(a), 0);
    send_xml(b, "<message to='" ALICE "/a2' type='chat' id='m'><body>x</body></message>");
    ck_assert_int_eq(carbon(a, "received", "cs"), 1);
    ck_assert_int_eq(carbon(a, "received", "m"), 1);
    ck_assert_int_eq(total(a), 2);
}
END_TEST

/* Held data is bounded (csi_max_held): past it everything goes out, in order; what is
 * held when the session ends is dropped (no leak: the sanitizer and valgrind runs). */
START_TEST(test_csi_bounded_and_dropped)
{
    preload_item(ALICE, BOB, "110000");
    preload_item(BOB, ALICE, "110000");
    session_t *a = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/b");
    avail(a, 0);
    avail(b, 0);
    client_state(a, 1);
    fake_link_clear();
    long max = config_int("csi_max_held");
    for (long i = 0; i < max; i++)
        sendf(b, "<message to='" ALICE "/a' type='chat' id='cs%ld'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", i);
    ck_assert_int_eq(total(a), 0);
    send_xml(b, CHATSTATE("one-more"));
    ck_assert_int_eq(total(a), max + 1);
    ck_assert_str_eq(nth_to(a, 0), "message:cs0");
    ck_assert_str_eq(nth_to(a, (int)max), "message:one-more");
    /* Held, then the session goes: nothing is sent to it. */
    fake_link_clear();
    send_xml(b, CHATSTATE("late"));
    uint64_t conn = a->conn;
    session_end(a);
    for (size_t k = 0; k < fake_link_count(); k++) {
        xml_node_t *st = delivered(k, conn);
        ck_assert_ptr_null(st);
    }
}
END_TEST

/* A restarted router gets the state back from the frontend's resync (IPC_RESYNC_INACTIVE);
 * a resync without it makes the session active again. */
START_TEST(test_csi_resync)
{
    preload_item(ALICE, BOB, "110000");
    preload_item(BOB, ALICE, "110000");
    session_t *a = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/b");
    avail(a, 0);
    avail(b, 0);
    ipc_resync_t m = {.conn = a->conn, .full_jid = a->full, .flags = IPC_RESYNC_INACTIVE};
    hook_run(HOOK_SESSION_RESYNC, &(hook_ev_t){.session = a, .user = a->user, .resync = &m});
    fake_link_clear();
    send_xml(b, "<presence><status>b1</status></presence>");
    ck_assert_int_eq(total(a), 0);
    m.flags = 0;
    hook_run(HOOK_SESSION_RESYNC, &(hook_ev_t){.session = a, .user = a->user, .resync = &m});
    ck_assert_int_eq(total(a), 1);
    send_xml(b, "<presence><status>b2</status></presence>");
    ck_assert_int_eq(total(a), 2);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * XEP-0191 blocking, enforced on routing (section 3.3). */

START_TEST(test_block_outbound)
{
    preload_block(ALICE, BOB);
    session_t *a = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/b");
    avail(b, 0);
    fake_link_clear();
    send_xml(a, "<message to='" BOB "' type='chat' id='m'><body>x</body></message>");
    send_xml(a, "<message to='" BOB "/b' id='mf'><body>x</body></message>");
    send_xml(a, "<iq to='" BOB "/b' type='get' id='q'><query xmlns='x:y'/></iq>");
    send_xml(a, "<iq to='" BOB "' type='get' id='qb'><vCard xmlns='vcard-temp'/></iq>");
    send_xml(a, "<presence to='" BOB "' id='p'/>");
    send_xml(a, "<iq to='" BOB "/b' type='result' id='r'/>");
    send_xml(a, "<message to='" BOB "/b' type='error' id='e'/>");
    static const char *refused[] = {"m", "mf", "q", "qb"};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(bounce(a, refused[i]), "not-acceptable");
        ck_assert(bounce_has(a, refused[i], "blocked", "urn:xmpp:blocking:errors"));
    }
    ck_assert_str_eq(bounce(a, "p"), "");
    ck_assert_str_eq(bounce(a, "r"), "");
    ck_assert_str_eq(bounce(a, "e"), "");
    ck_assert_int_eq(total(b), 0);
    ck_assert_int_eq(offline_count(BOB), 0);
}
END_TEST

START_TEST(test_block_inbound)
{
    preload_block(BOB, ALICE);
    session_t *a = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/b");
    avail(b, 0);
    fake_link_clear();
    send_xml(a, "<message to='" BOB "' type='chat' id='m'><body>x</body></message>");
    send_xml(a, "<message to='" BOB "/b' id='mf'><body>x</body></message>");
    send_xml(a, "<iq to='" BOB "/b' type='get' id='q'><query xmlns='x:y'/></iq>");
    send_xml(a, "<iq to='" BOB "/b' type='set' id='qs'><query xmlns='x:y'/></iq>");
    send_xml(a, "<presence to='" BOB "' id='p'/>");
    send_xml(a, "<presence to='" BOB "' type='subscribe' id='ps'/>");
    send_xml(a, "<message to='" BOB "' type='headline' id='h'><body>x</body></message>");
    send_xml(a, "<message to='" BOB "/b' type='error' id='e'/>");
    send_xml(a, "<iq to='" BOB "/b' type='result' id='r'/>");
    /* As if bob were not there: service-unavailable for messages and requests; presence,
     * headlines, errors and results dropped in silence. */
    ck_assert_str_eq(bounce(a, "m"), "service-unavailable");
    ck_assert_str_eq(bounce(a, "mf"), "service-unavailable");
    ck_assert_str_eq(bounce(a, "q"), "service-unavailable");
    ck_assert_str_eq(bounce(a, "qs"), "service-unavailable");
    ck_assert(!bounce_has(a, "m", "blocked", "urn:xmpp:blocking:errors"));
    static const char *silent[] = {"p", "ps", "h", "e", "r"};
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(bounce(a, silent[i]), "");
    ck_assert_int_eq(total(b), 0);
    ck_assert_str_eq(stored_flags(BOB, ALICE), "");
    ck_assert_int_eq(offline_count(BOB), 0);
    /* Others still get through. */
    session_t *c = bind_jid(CAROL "/c");
    send_xml(c, "<message to='" BOB "' type='chat' id='ok'><body>x</body></message>");
    ck_assert_int_eq(got(b, "ok"), 1);
}
END_TEST

/* A blocked sender's message to a user with no resource is refused, not stored. */
START_TEST(test_block_inbound_offline)
{
    preload_block(BOB, ALICE);
    session_t *a = bind_jid(ALICE "/a");
    send_xml(a, "<message to='" BOB "' type='chat' id='m'><body>x</body></message>");
    ck_assert_str_eq(bounce(a, "m"), "service-unavailable");
    ck_assert_int_eq(offline_count(BOB), 0);
}
END_TEST

/* Matching (XEP-0191 3.2 / privacy lists): a bare JID entry covers every resource, a full
 * JID entry that resource only, a domain every JID of it. Each loop a different entry in
 * bob's list; alice/a and alice/z send to bob. */
typedef struct {
    const char *entry;
    int a_blocked, z_blocked;
} match_case_t;

static const match_case_t match_cases[] = {
    {ALICE, 1, 1},
    {ALICE "/a", 1, 0},
    {DOM, 1, 1},
    {DOM "/a", 1, 0}, /* domain/resource: that resource of any JID of the domain */
    {"carol@" DOM, 0, 0},
    {"other.example", 0, 0},
};

START_TEST(test_block_matching)
{
    const match_case_t *mc = &match_cases[_i];
    preload_block(BOB, mc->entry);
    session_t *a = bind_jid(ALICE "/a");
    session_t *z = bind_jid(ALICE "/z");
    session_t *b = bind_jid(BOB "/b");
    avail(b, 0);
    fake_link_clear();
    send_xml(a, "<message to='" BOB "/b' type='chat' id='fa'><body>x</body></message>");
    send_xml(z, "<message to='" BOB "/b' type='chat' id='fz'><body>x</body></message>");
    ck_assert_msg(got(b, "fa") == !mc->a_blocked, "entry %s, alice/a", mc->entry);
    ck_assert_msg(got(b, "fz") == !mc->z_blocked, "entry %s, alice/z", mc->entry);
    ck_assert_str_eq(bounce(a, "fa"), mc->a_blocked ? "service-unavailable" : "");
    ck_assert_str_eq(bounce(z, "fz"), mc->z_blocked ? "service-unavailable" : "");
    /* And the other way: bob's outbound stanzas to a blocked JID. */
    fake_link_clear();
    send_xml(b, "<message to='" ALICE "/a' type='chat' id='ta'><body>x</body></message>");
    send_xml(b, "<message to='" ALICE "/z' type='chat' id='tz'><body>x</body></message>");
    ck_assert_int_eq(got(a, "ta"), !mc->a_blocked);
    ck_assert_int_eq(got(z, "tz"), !mc->z_blocked);
    ck_assert_str_eq(bounce(b, "ta"), mc->a_blocked ? "not-acceptable" : "");
    ck_assert_str_eq(bounce(b, "tz"), mc->z_blocked ? "not-acceptable" : "");
}
END_TEST

/* A block made through the iq takes effect on routing at once, an unblock too; presence
 * stops both ways for a contact who could see the user. */
START_TEST(test_block_iq_then_route)
{
    preload_item(ALICE, BOB, "110000");
    preload_item(BOB, ALICE, "110000");
    session_t *a = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/b");
    avail(a, 0);
    avail(b, 0);
    fake_link_clear();
    send_xml(b, "<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'>"
                "<item jid='" ALICE "'/></block></iq>");
    ck_assert_int_eq(got(b, "blk"), 1);
    ck_assert_int_eq(presence_from(a, "unavailable", BOB "/b"), 1);
    fake_link_clear();
    send_xml(a, "<message to='" BOB "' type='chat' id='m1'><body>x</body></message>");
    send_xml(b, "<presence><show>away</show></presence>");
    send_xml(a, "<presence><show>away</show></presence>");
    ck_assert_str_eq(bounce(a, "m1"), "service-unavailable");
    ck_assert_int_eq(got(b, "m1"), 0);
    ck_assert_int_eq(presence_from(a, NULL, BOB "/b"), 0);
    ck_assert_int_eq(presence_from(b, NULL, ALICE "/a"), 0);
    fake_link_clear();
    send_xml(b, "<iq type='set' id='ub'><unblock xmlns='urn:xmpp:blocking'>"
                "<item jid='" ALICE "'/></unblock></iq>");
    ck_assert_int_eq(presence_from(a, NULL, BOB "/b"), 1);
    send_xml(a, "<message to='" BOB "' type='chat' id='m2'><body>x</body></message>");
    ck_assert_int_eq(got(b, "m2"), 1);
}
END_TEST

/* XEP-0191 3.3: stanzas from a blocked JID never reach the user, whether or not the user
 * is online: with the recipient offline (not held), an iq to the bare JID must not be
 * answered on the user's behalf and a subscription request must not be stored. */
START_TEST(test_block_inbound_offline_iq)
{
    preload_block(BOB, ALICE);
    session_t *a = bind_jid(ALICE "/a");
    send_xml(a, "<iq to='" BOB "' type='get' id='vc'><vCard xmlns='vcard-temp'/></iq>");
    ck_assert_str_eq(bounce(a, "vc"), "service-unavailable");
}
END_TEST

START_TEST(test_block_inbound_offline_subscribe)
{
    preload_block(BOB, ALICE);
    session_t *a = bind_jid(ALICE "/a");
    send_xml(a, "<presence to='" BOB "' type='subscribe' id='s'/>");
    ck_assert_str_eq(stored_flags(BOB, ALICE), "");
}
END_TEST


/* The admin commands (core/admin_cmds.c) run in process with admin_run: what xmppctl
 * would print, and what the router does (close orders on the fake link, Redis reads). */
typedef struct {
    int called, ok;
    char text[16384];
} answer_t;

static void on_answer(void *ud, int ok, const char *text)
{
    answer_t *a = ud;
    a->called++;
    a->ok = ok;
    snprintf(a->text, sizeof a->text, "%s", text);
}

/* Runs an admin command (argv ends with NULL), pumps Redis, returns its single answer. */
static const answer_t *admin(const char *cmd, ...)
{
    static answer_t a;
    const char *argv[ADMIN_MAX_ARGS];
    int argc = 0;
    va_list ap;
    va_start(ap, cmd);
    for (const char *s = cmd; s && argc < ADMIN_MAX_ARGS; s = va_arg(ap, const char *))
        argv[argc++] = s;
    va_end(ap);
    memset(&a, 0, sizeof a);
    admin_cmds_register();
    admin_run(argc, argv, on_answer, &a);
    fake_redis_flush();
    ck_assert_msg(a.called == 1, "%s answered %d times", cmd, a.called);
    return &a;
}

/* The close orders the fake link saw for a connection: the last one's condition and text. */
static int closed(uint64_t conn, const char *condition, const char *text)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        const fake_sent_t *m = fake_link_get(i);
        if (m->type == IPC_CLOSE && m->conn == conn) {
            ck_assert_str_eq(m->field0, condition);
            ck_assert_str_eq(m->field1, text);
            n++;
        }
    }
    return n;
}

START_TEST(test_admin_sessions)
{
    session_t *a1 = bind_jid(ALICE "/one"), *a2 = bind_jid(ALICE "/two");
    session_t *b = bind_jid(BOB "/x");
    session_set_facts(a1, "192.0.2.1:5000", "TLSv1.3", 1765000000);
    session_set_facts(a2, "[2001:db8::2]:6000", "TLSv1.2", 0);
    (void)b;
    const answer_t *r = admin("sessions", NULL);
    ck_assert(r->ok);
    /* Sorted by full JID; unknown facts are "-". */
    ck_assert_msg(strncmp(r->text,
                          ALICE "/one\tfe1\t192.0.2.1:5000\t2025-12-06T05:46:40Z\tTLSv1.3\tno\n"
                          ALICE "/two\tfe1\t[2001:db8::2]:6000\t", 
                          strlen(ALICE "/one\tfe1\t192.0.2.1:5000\t2025-12-06T05:46:40Z\tTLSv1.3\tno\n"
                                 ALICE "/two\tfe1\t[2001:db8::2]:6000\t")) == 0,
                  "%s", r->text);
    ck_assert_ptr_nonnull(strstr(r->text, "\tTLSv1.2\tno\n" BOB "/x\tfe1\t-\t"));
    ck_assert_ptr_nonnull(strstr(r->text, "\t-\tno\n"));
    r = admin("sessions", "Alice@Example.com", NULL);
    ck_assert(r->ok);
    ck_assert_ptr_nonnull(strstr(r->text, ALICE "/one\t"));
    ck_assert_ptr_nonnull(strstr(r->text, ALICE "/two\t"));
    ck_assert_ptr_null(strstr(r->text, BOB));
    r = admin("sessions", ALICE "/two", NULL);
    ck_assert(r->ok && strncmp(r->text, ALICE "/two\t", strlen(ALICE "/two\t")) == 0);
    ck_assert_ptr_null(strchr(strchr(r->text, '\n') + 1, '\n'));
    r = admin("sessions", CAROL, NULL);
    ck_assert(r->ok && r->text[0] == '\0');
    r = admin("sessions", "@bad", NULL);
    ck_assert(!r->ok && strstr(r->text, "not a valid JID"));
}
END_TEST

START_TEST(test_admin_kick)
{
    session_t *a1 = bind_jid(ALICE "/one"), *a2 = bind_jid(ALICE "/two");
    session_t *b = bind_jid(BOB "/x");
    uint64_t c1 = a1->conn, c2 = a2->conn;
    avail(a1, 0);
    const answer_t *r = admin("kick", ALICE "/one", "Flooding the room", NULL);
    ck_assert_msg(r->ok && strcmp(r->text, "kicked " ALICE "/one\n") == 0, "%s", r->text);
    ck_assert_int_eq(closed(c1, "policy-violation", "Flooding the room"), 1);
    ck_assert_ptr_null(session_find_jid(ALICE "/one"));
    ck_assert_ptr_eq(session_find_jid(ALICE "/two"), a2);
    ck_assert_int_eq(closed(c2, "", ""), 0);
    r = admin("kick", ALICE, NULL);
    ck_assert(r->ok && strcmp(r->text, "kicked " ALICE "/two\n") == 0);
    ck_assert_int_eq(closed(c2, "policy-violation", "Disconnected by the server administrator"), 1);
    ck_assert_ptr_null(user_find(ALICE));
    r = admin("kick", ALICE, NULL);
    ck_assert(!r->ok && strstr(r->text, "has no session"));
    ck_assert_ptr_eq(session_find_jid(BOB "/x"), b);
    char reason[1002];
    memset(reason, 'x', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    r = admin("kick", BOB "/x", reason, NULL);
    ck_assert(!r->ok && strstr(r->text, "longer than"));
    ck_assert_ptr_eq(session_find_jid(BOB "/x"), b);
}
END_TEST

START_TEST(test_admin_stats)
{
    session_t *a = bind_jid(ALICE "/one");
    bind_jid(BOB "/x");
    avail(a, 0);
    sendf(a, "<message to='%s' type='chat' id='off1'><body>later</body></message>", CAROL);
    const answer_t *r = admin("stats", NULL);
    ck_assert(r->ok);
    ck_assert_ptr_nonnull(strstr(r->text, "\nsessions: 2\n"));
    ck_assert_ptr_nonnull(strstr(r->text, "\navailable sessions: 1\n"));
    ck_assert_ptr_nonnull(strstr(r->text, "\nusers online: 2\n"));
    ck_assert_ptr_nonnull(strstr(r->text, "\nfrontends: 1\nfrontend fe1: 2 sessions\n"));
    ck_assert_ptr_nonnull(strstr(r->text, "\nstanzas per second: "));
    ck_assert_ptr_nonnull(strstr(r->text, "\nredis: connected\n"));
    /* The offline module's counter grew with the message stored for carol. */
    const char *line = strstr(r->text, "\noffline messages stored since start: ");
    ck_assert_ptr_nonnull(line);
    unsigned long long before = strtoull(strchr(line + 1, ':') + 2, NULL, 10);
    ck_assert_uint_ge(before, 1);
    sendf(a, "<message to='%s' type='chat' id='off2'><body>later</body></message>", CAROL);
    r = admin("stats", NULL);
    line = strstr(r->text, "\noffline messages stored since start: ");
    ck_assert_uint_eq(strtoull(strchr(line + 1, ':') + 2, NULL, 10), before + 1);
    r = admin("stats", "extra", NULL);
    ck_assert(!r->ok && strncmp(r->text, "usage: stats", 12) == 0);
}
END_TEST

START_TEST(test_admin_user)
{
    preload_item(CAROL, ALICE, "110000");
    preload_item(CAROL, BOB, "100000");
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_OFFLINE, CAROL);
    redis_do(fake_redis_cmd("RPUSH %s <message/>", key));
    const answer_t *r = admin("user", CAROL, NULL);
    ck_assert_msg(r->ok && strcmp(r->text, "user: " CAROL "\nexists: yes\nroster items: 2\n"
                                           "offline messages: 1\ntombstone: none\n"
                                           "sessions: 0\n") == 0,
                  "%s", r->text);
    storage_key(key, KEYS_TOMBSTONE, NOBODY);
    redis_do(fake_redis_cmd("SET %s 1765000000", key));
    r = admin("user", NOBODY, NULL);
    ck_assert_msg(r->ok && strstr(r->text, "exists: no\n") &&
                      strstr(r->text, "tombstone: deleted 2025-12-06T05:46:40Z\n"),
                  "%s", r->text);
    r = admin("user", ALICE "/res", NULL);
    ck_assert(!r->ok);
    r = admin("user", "someone@elsewhere.example", NULL);
    ck_assert(!r->ok && strstr(r->text, "not an account of " DOM));
    rt.redis_ready = 0;
    r = admin("user", ALICE, NULL);
    ck_assert(!r->ok && strstr(r->text, "Redis is not connected"));
    rt.redis_ready = 1;
}
END_TEST

START_TEST(test_admin_announce)
{
    session_t *a = bind_jid(ALICE "/one"), *b = bind_jid(BOB "/x");
    session_t *quiet = bind_jid(CAROL "/q");
    avail(a, 0);
    avail(b, -1);
    fake_link_clear();
    const answer_t *r = admin("announce", "Back at 5 <pm> & later", NULL);
    ck_assert_msg(r->ok && strcmp(r->text, "announced to 2 sessions") == 0, "%s", r->text);
    ck_assert_int_eq(total(quiet), 0);
    session_t *to[] = {a, b};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(total(to[i]), 1);
        xml_node_t *m = NULL;
        for (size_t k = 0; k < fake_link_count() && !m; k++)
            m = delivered(k, to[i]->conn);
        ck_assert_ptr_nonnull(m);
        ck_assert(attr_is(m, "type", "headline") && attr_is(m, "from", DOM) &&
                  attr_is(m, "to", to[i]->full));
        char *body = xml_node_text(xml_node_child(m, "body", NULL));
        ck_assert_str_eq(body, "Back at 5 <pm> & later");
        free(body);
        xml_node_free(&m);
    }
    r = admin("announce", "", NULL);
    ck_assert(!r->ok);
}
END_TEST

/* A module's own commands (module_t.admin) are registered with it and served like the
 * core's; a command answers later from a callback just as well. */
static admin_req_t *held;
static void cmd_echo(admin_req_t *req, int argc, const char *const *argv)
{
    admin_replyf(req, 1, "%d %s", argc, argv[1]);
}
static void cmd_later(admin_req_t *req, int argc, const char *const *argv)
{
    (void)argc;
    (void)argv;
    held = req;
}
static const admin_command_t test_commands[] = {
    {"echo", 1, 1, cmd_echo, "echo WORD  says it back"},
    {"later", 0, 0, cmd_later, "later  answers when the test says so"},
    {0},
};
static module_t mod_admin_test = {.name = "admin-test", .admin = test_commands};

START_TEST(test_admin_module_commands)
{
    module_t *const mods[] = {&mod_admin_test};
    module_register(mods, 1);
    const answer_t *r = admin("echo", "hello", NULL);
    ck_assert(r->ok && strcmp(r->text, "2 hello") == 0);
    r = admin("echo", NULL);
    ck_assert(!r->ok && strcmp(r->text, "usage: echo WORD  says it back") == 0);
    r = admin("frobnicate", NULL);
    ck_assert(!r->ok && strstr(r->text, "unknown command 'frobnicate'"));
    r = admin("help", NULL);
    ck_assert(r->called && strstr(r->text, "echo WORD  says it back\n") &&
              strstr(r->text, "kick JID [REASON]"));
    static answer_t late;
    memset(&late, 0, sizeof late);
    admin_run(1, (const char *const[]){"later"}, on_answer, &late);
    ck_assert_int_eq(late.called, 0);
    ck_assert_ptr_nonnull(held);
    admin_reply(held, 1, "done");
    ck_assert(late.called == 1 && late.ok && strcmp(late.text, "done") == 0);
    module_close_all();
}
END_TEST


/* XEP-0198 4: the counters wrap at 2^32 (0 follows 4294967295); acknowledgements, the
 * checks against what was sent and resumption follow them across the wrap, and what is
 * left unacknowledged when the session ends goes to offline storage. */
#define SM_MSG "<message from='" BOB "/x' to='" ALICE "/phone' type='chat'><body>%d</body></message>"
START_TEST(test_sm_wrap_around)
{
    session_t *s = bind_jid(ALICE "/phone");
    uint64_t conn = s->conn;
    sm_on_state(&fe, &(ipc_sm_state_t){.conn = conn, .resumable = 1, .id = "wrap1",
                                       .in = 0xFFFFFFFFu, .out = 0xFFFFFFFDu,
                                       .acked = 0xFFFFFFFDu});
    fake_link_clear();
    char m[128];
    for (int i = 0; i < 5; i++) {
        snprintf(m, sizeof m, SM_MSG, i);
        ck_assert_int_eq(session_deliver(s, m, strlen(m)), 0);
    }
    static const uint32_t want[] = {0xFFFFFFFEu, 0xFFFFFFFFu, 0, 1, 2};
    ck_assert_uint_eq(fake_link_count(), 5);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(fake_link_get(i)->type, IPC_DELIVER);
        ck_assert_uint_eq(fake_link_get(i)->seq, want[i]);
    }
    ck_assert(sm_ack_valid(0xFFFFFFFDu, 2, 0));
    ck_assert(sm_ack_valid(0xFFFFFFFDu, 2, 2));
    ck_assert(!sm_ack_valid(0xFFFFFFFDu, 2, 3));
    ck_assert(!sm_ack_valid(0xFFFFFFFDu, 2, 0xFFFFFFFCu));
    sm_on_ack(&fe, &(ipc_sm_ack_t){conn, 0}); /* the first three */
    /* The connection is lost after the client acknowledged one more: the session waits. */
    sm_connection_lost(s, IPC_UNBIND_DETACH | IPC_UNBIND_ACK, 1);
    ck_assert_ptr_null(session_find_conn(&fe, conn));
    ck_assert_ptr_eq(session_find_jid(ALICE "/phone"), s);
    ck_assert_uint_eq(sm_waiting(), 1);
    ck_assert_int_eq(s->available, 0); /* it never sent presence: nothing changes there */

    fake_link_clear();
    ipc_sm_resume_t rq = {.conn = 100, .seq = 7, .id = "wrap1", .username = "alice", .h = 3};
    sm_on_resume(&fe, &rq); /* claims more than was sent */
    ck_assert_uint_eq(fake_link_count(), 1);
    ck_assert_int_eq(fake_link_get(0)->type, IPC_SM_RESUMED);
    ck_assert_int_eq(fake_link_get(0)->status, IPC_REFUSED);
    rq.username = "bob"; /* another account: no such session */
    rq.h = 1;
    sm_on_resume(&fe, &rq);
    ck_assert_int_eq(fake_link_get(1)->status, IPC_NOT_FOUND);
    rq.username = "alice";
    sm_on_resume(&fe, &rq);
    ck_assert_uint_eq(fake_link_count(), 4);
    ck_assert_int_eq(fake_link_get(2)->type, IPC_SM_RESUMED);
    ck_assert_int_eq(fake_link_get(2)->status, IPC_OK);
    ck_assert_str_eq(fake_link_get(2)->field0, ALICE "/phone");
    ck_assert_str_eq(fake_link_get(2)->field1, "4294967295 2"); /* in, out */
    /* Only the one stanza not acknowledged (number 2) comes again. */
    ck_assert_int_eq(fake_link_get(3)->type, IPC_DELIVER);
    ck_assert_uint_eq(fake_link_get(3)->seq, 2);
    ck_assert_ptr_nonnull(strstr(fake_link_get(3)->data, "<body>4</body>"));
    ck_assert_ptr_eq(session_find_conn(&fe, 100), s);
    ck_assert_uint_eq(sm_waiting(), 0);

    /* One more, then the client closes its stream: both go to offline storage. */
    snprintf(m, sizeof m, SM_MSG, 5);
    ck_assert_int_eq(session_deliver(s, m, strlen(m)), 0);
    ck_assert_uint_eq(fake_link_get(4)->seq, 3);
    sm_connection_lost(s, IPC_UNBIND_ACK, 2);
    ck_assert_ptr_null(session_find_jid(ALICE "/phone"));
    fake_redis_flush();
    ck_assert_int_eq(offline_count(ALICE), 1);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Federation (core/remote.c): stanzas to other domains leave as IPC_S2S_OUT to an s2s
 * frontend; stanzas from other domains (IPC_S2S_IN) are routed as from another account. */

#define ROMEO "romeo@remote.example"
#define REMOTE_DOM "remote.example"

static rt_frontend_t s2s_a, s2s_b;

/* A frontend that said hello with the s2s flag (link.c sets rt_frontend_t.s2s). */
static void s2s_join(rt_frontend_t *f, const char *name)
{
    memset(f, 0, sizeof *f);
    snprintf(f->ident, sizeof f->ident, "%s:1", name);
    f->ident_len = strlen(f->ident);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->s2s = 1;
    hmap_put(rt.frontends, f->ident, f->ident_len, f);
}

static void s2s_leave(rt_frontend_t *f)
{
    hmap_del(rt.frontends, f->ident, f->ident_len);
    remote_journal_free(f); /* what link.c's gone callback would have taken */
}

/* A stanza another server sent, as the s2s frontend forwards it (IPC_S2S_IN: the facts in
 * the header, checked by the reader; the payload serialised without an xmlns on the top
 * element), routed, and every storage answer pumped. */
static void remote_in_via(rt_frontend_t *f, uint64_t conn, const char *xml)
{
    xml_node_t *st = stanza_parse(xml, strlen(xml));
    ck_assert_msg(st != NULL, "bad test stanza %s", xml);
    ipc_kind_t kind = ipc_kind_from_name(st->name);
    ipc_s2s_t msg = {.conn = conn, .kind = kind,
                     .stype = ipc_stype_from_attr(kind, xml_node_attr(st, "type")),
                     .to = xml_node_attr(st, "to"), .from = xml_node_attr(st, "from"),
                     .id = xml_node_attr(st, "id")};
    buf_t b = BUF_INIT;
    xml_serialize(st, XML_NS_CLIENT, &b);
    ipc_hdr_t h;
    ck_assert_int_eq(ipc_s2s_in_build(&h, &msg), 0);
    ipc_s2s_t got;
    ck_assert_int_eq(ipc_s2s_in_read(&h, &got), 0);
    route_remote_stanza(f, &got, b.data, b.len);
    buf_free(&b);
    xml_node_free(&st);
    fake_redis_flush();
}

static void remote_in(const char *xml)
{
    remote_in_via(&s2s_a, 7, xml);
}

/* The i-th message sent, when it is an s2s-out: parsed, its header's to/from checked
 * against the stanza's; NULL otherwise. `*f` gets the frontend it went to. */
static xml_node_t *sent_out(size_t i, rt_frontend_t **f)
{
    const fake_sent_t *m = fake_link_get(i);
    if (!m || m->type != IPC_S2S_OUT)
        return NULL;
    ck_assert_msg(strncmp(m->data, "<", 1) == 0 && !strstr(m->data, "xmlns='jabber:client'") &&
                      !strstr(m->data, "xmlns=\"jabber:client\""),
                  "s2s-out payload with the client namespace: %s", m->data);
    xml_node_t *st = stanza_parse(m->data, m->len);
    ck_assert_msg(st != NULL, "unparsable s2s-out: %s", m->data);
    ck_assert(attr_is(st, "to", m->field0));
    ck_assert(attr_is(st, "from", m->field1));
    ck_assert_uint_eq(m->conn, 0);
    if (f)
        *f = m->fe;
    return st;
}

/* How many s2s-out stanzas matched: element, type (NULL: none), from, to. */
static int out_count(const char *name, const char *type, const char *from, const char *to)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        xml_node_t *st = sent_out(i, NULL);
        n += st && strcmp(st->name, name) == 0 && attr_is(st, "type", type) &&
             attr_is(st, "from", from) && attr_is(st, "to", to);
        xml_node_free(&st);
    }
    return n;
}

static int out_total(void)
{
    int n = 0;
    for (size_t i = 0; i < fake_link_count(); i++)
        n += fake_link_get(i)->type == IPC_S2S_OUT;
    return n;
}

/* The s2s-out stanza with this id (exactly one), or NULL when none left. */
static xml_node_t *out_id(const char *id, rt_frontend_t **f)
{
    xml_node_t *found = NULL;
    for (size_t i = 0; i < fake_link_count(); i++) {
        rt_frontend_t *fe_out;
        xml_node_t *st = sent_out(i, &fe_out);
        if (st && attr_is(st, "id", id)) {
            ck_assert_msg(!found, "two s2s-out stanzas with id %s", id);
            found = st;
            if (f)
                *f = fe_out;
        } else {
            xml_node_free(&st);
        }
    }
    return found;
}

/* The condition of the error that went out for `id` ("" when none). */
static const char *out_error(const char *id)
{
    static char cond[64];
    xml_node_t *st = out_id(id, NULL);
    cond[0] = '\0';
    if (st && is_error(st)) {
        const xml_node_t *e = xml_node_child(st, "error", NULL);
        for (const xml_node_t *c = e ? e->children : NULL; c; c = c->next)
            if (c->name && c->ns && strcmp(c->ns, NS_STANZAS) == 0)
                snprintf(cond, sizeof cond, "%s", c->name);
    }
    xml_node_free(&st);
    return cond;
}

/* Each domain always leaves through the same s2s frontend (never a c2s one); when that one
 * goes only its domains move, and they come back when it does. */
START_TEST(test_remote_frontend_choice)
{
    s2s_join(&s2s_a, "s2s-a");
    s2s_join(&s2s_b, "s2s-b");
    session_t *a = bind_jid(ALICE "/a");
    enum { N = 24 };
    rt_frontend_t *first[N];
    int on_a = 0;
    for (int round = 0; round < 2; round++) {
        fake_link_clear();
        for (int i = 0; i < N; i++)
            sendf(a, "<message to='user@d%d.example' type='chat' id='m%d'><body>x</body></message>",
                  i, i);
        for (int i = 0; i < N; i++) {
            char id[16];
            snprintf(id, sizeof id, "m%d", i);
            rt_frontend_t *f = NULL;
            xml_node_t *st = out_id(id, &f);
            ck_assert_msg(st != NULL, "%s did not leave", id);
            ck_assert(attr_is(st, "from", ALICE "/a"));
            ck_assert(f == &s2s_a || f == &s2s_b);
            if (round == 0) {
                first[i] = f;
                on_a += f == &s2s_a;
            } else {
                ck_assert_ptr_eq(f, first[i]);
            }
            xml_node_free(&st);
        }
    }
    ck_assert_int_gt(on_a, 0);
    ck_assert_int_lt(on_a, N);
    /* s2s-a goes: its domains move to s2s-b, the others stay where they were. */
    s2s_leave(&s2s_a);
    fake_link_clear();
    for (int i = 0; i < N; i++)
        sendf(a, "<message to='user@d%d.example/r' id='n%d'><body>x</body></message>", i, i);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "n%d", i);
        rt_frontend_t *f = NULL;
        xml_node_t *st = out_id(id, &f);
        ck_assert_ptr_nonnull(st);
        ck_assert_ptr_eq(f, &s2s_b);
        xml_node_free(&st);
    }
    /* Back (a restart: same name, new epoch): it gets its domains back. */
    s2s_join(&s2s_a, "s2s-a");
    fake_link_clear();
    for (int i = 0; i < N; i++)
        sendf(a, "<message to='user@d%d.example' id='p%d'><body>x</body></message>", i, i);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "p%d", i);
        rt_frontend_t *f = NULL;
        xml_node_t *st = out_id(id, &f);
        ck_assert_ptr_eq(f, first[i]);
        xml_node_free(&st);
    }
    /* Our own subdomains are never another server's. */
    fake_link_clear();
    send_xml(a, "<message to='x@pubsub." DOM "' type='chat' id='sub'><body>x</body></message>");
    ck_assert_str_eq(bounce(a, "sub"), "remote-server-not-found");
    ck_assert_int_eq(out_total(), 0);
}
END_TEST

/* With no s2s frontend alive (only client frontends), other domains are unreachable and
 * nothing changes for the sender. */
START_TEST(test_remote_no_s2s)
{
    session_t *a = bind_jid(ALICE "/a");
    avail(a, 0);
    fake_link_clear();
    send_xml(a, "<message to='" ROMEO "' type='chat' id='m'><body>x</body></message>");
    send_xml(a, "<iq to='" ROMEO "/r' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>");
    send_xml(a, "<presence to='" ROMEO "' type='subscribe' id='s'/>");
    send_xml(a, "<message to='" ROMEO "' type='error' id='e'/>");
    ck_assert_str_eq(bounce(a, "m"), "remote-server-not-found");
    ck_assert_str_eq(bounce(a, "q"), "remote-server-not-found");
    ck_assert_str_eq(bounce(a, "s"), "remote-server-not-found");
    ck_assert_str_eq(bounce(a, "e"), "");
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "");
    ck_assert_int_eq(out_total(), 0);
}
END_TEST

/* Messages both ways: out with the sender's full JID and the original 'to', 'sent' carbons;
 * in to a bare JID, a full JID ('received' carbons), a user with no resource (stored). */
START_TEST(test_remote_messages)
{
    s2s_join(&s2s_a, "s2s-a");
    session_t *a1 = bind_jid(ALICE "/a1");
    session_t *a2 = bind_jid(ALICE "/a2");
    avail(a1, 0);
    avail(a2, 0);
    enable_carbons(a2);
    fake_link_clear();
    send_xml(a1, "<message to='" ROMEO "/balcony' type='chat' id='out'><body>hi</body></message>");
    xml_node_t *st = out_id("out", NULL);
    ck_assert_ptr_nonnull(st);
    ck_assert(attr_is(st, "from", ALICE "/a1"));
    ck_assert(attr_is(st, "to", ROMEO "/balcony"));
    ck_assert_ptr_nonnull(xml_node_child(st, "body", XML_NS_CLIENT));
    xml_node_free(&st);
    ck_assert_int_eq(carbon(a2, "sent", "out"), 1);

    fake_link_clear();
    remote_in("<message from='" ROMEO "/balcony' to='" ALICE "' type='chat' id='in-bare'>"
              "<body>hello</body></message>");
    ck_assert_int_eq(got_to(a1, "in-bare", ALICE), 1);
    ck_assert_int_eq(got_to(a2, "in-bare", ALICE), 1);
    remote_in("<message from='" ROMEO "/balcony' to='" ALICE "/a1' type='chat' id='in-full'>"
              "<body>hello</body></message>");
    ck_assert_int_eq(got_to(a1, "in-full", ALICE "/a1"), 1);
    ck_assert_int_eq(got(a2, "in-full"), 0);
    ck_assert_int_eq(carbon(a2, "received", "in-full"), 1);
    /* Bob has no resource: stored for him (XEP-0160), nothing back out. */
    remote_in("<message from='" ROMEO "/balcony' to='" BOB "' type='chat' id='in-off'>"
              "<body>later</body></message>");
    ck_assert_int_eq(offline_count(BOB), 1);
    ck_assert_int_eq(out_total(), 0);
    session_t *b = bind_jid(BOB "/b");
    avail(b, 0);
    ck_assert_int_eq(got(b, "in-off"), 1);
}
END_TEST

/* What cannot be delivered goes back out as an error, never for an error. */
START_TEST(test_remote_undeliverable)
{
    s2s_join(&s2s_a, "s2s-a");
    remote_in("<message from='" ROMEO "/r' to='" NOBODY "' type='chat' id='m'><body>x</body></message>");
    remote_in("<message from='" ROMEO "/r' to='" NOBODY "/x' type='chat' id='mf'><body>x</body></message>");
    remote_in("<iq from='" ROMEO "/r' to='" NOBODY "' type='get' id='q'><vCard xmlns='vcard-temp'/></iq>");
    remote_in("<iq from='" ROMEO "/r' to='" BOB "/gone' type='get' id='qf'><ping xmlns='urn:xmpp:ping'/></iq>");
    remote_in("<message from='" ROMEO "/r' to='" NOBODY "' type='error' id='e'/>");
    remote_in("<presence from='" ROMEO "/r' to='" NOBODY "' id='p'/>");
    remote_in("<message from='" ROMEO "/r' to='room@conference." DOM "' type='groupchat' id='g'><body>x</body></message>");
    ck_assert_str_eq(out_error("m"), "service-unavailable");
    ck_assert_str_eq(out_error("mf"), "service-unavailable");
    ck_assert_str_eq(out_error("q"), "service-unavailable");
    ck_assert_str_eq(out_error("qf"), "service-unavailable");
    xml_node_t *st = out_id("q", NULL);
    ck_assert(attr_is(st, "from", NOBODY));
    ck_assert(attr_is(st, "to", ROMEO "/r"));
    xml_node_free(&st);
    ck_assert_ptr_null(out_id("e", NULL));
    ck_assert_ptr_null(out_id("p", NULL));
    ck_assert_int_eq(offline_count(NOBODY), 0);
    /* The frontend's own error for a stanza it could not send reaches the sender. */
    session_t *a = bind_jid(ALICE "/a");
    fake_link_clear();
    remote_in("<message from='" ROMEO "' to='" ALICE "/a' type='error' id='x'>"
              "<error type='cancel'><remote-server-not-found xmlns='" NS_STANZAS "'/></error></message>");
    ck_assert_str_eq(bounce(a, "x"), "remote-server-not-found");
    ck_assert_int_eq(out_total(), 0);
}
END_TEST

/* RFC 6121 section 3 with a contact at another domain: the user's side here, the
 * contact's side at its server; 4.2.2 / 4.3.1 / 4.5.2 presence to and probes of it. */
START_TEST(test_remote_subscription)
{
    s2s_join(&s2s_a, "s2s-a");
    session_t *a = bind_jid(ALICE "/a");
    avail(a, 0);
    roster_get(a);
    fake_link_clear();
    /* 3.1.2: Pending Out, pushed, stamped with the bare JID and sent on. */
    send_xml(a, "<presence to='" ROMEO "' type='subscribe' id='s'/>");
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "001000");
    ck_assert_int_eq(pushes(a, ROMEO, "none", "subscribe"), 1);
    ck_assert_int_eq(out_count("presence", "subscribe", ALICE, ROMEO), 1);
    /* 3.1.6: the contact approves: To, pushed, delivered. */
    fake_link_clear();
    remote_in("<presence from='" ROMEO "' to='" ALICE "' type='subscribed' id='ok'/>");
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "100000");
    ck_assert_int_eq(pushes(a, ROMEO, "to", ""), 1);
    ck_assert_int_eq(presence_from(a, "subscribed", ROMEO), 1);
    ck_assert_int_eq(out_total(), 0);
    /* Its presence, as its server sends it, reaches alice. */
    remote_in("<presence from='" ROMEO "/balcony' to='" ALICE "'><show>chat</show></presence>");
    ck_assert_int_eq(presence_from(a, NULL, ROMEO "/balcony"), 1);
    /* 3.1.3: the contact asks in return: Pending In, delivered. */
    fake_link_clear();
    remote_in("<presence from='" ROMEO "/balcony' to='" ALICE "' type='subscribe' id='s2'/>");
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "100100");
    ck_assert_int_eq(presence_from(a, "subscribe", ROMEO), 1);
    /* 3.1.5: alice approves: Both; 'subscribed' goes out, then her presence (the
     * contact's server would have sent it for a local contact). */
    fake_link_clear();
    send_xml(a, "<presence to='" ROMEO "' type='subscribed' id='ok2'/>");
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "110000");
    ck_assert_int_eq(pushes(a, ROMEO, "both", ""), 1);
    ck_assert_int_eq(out_count("presence", "subscribed", ALICE, ROMEO), 1);
    ck_assert_int_eq(out_count("presence", NULL, ALICE "/a", ROMEO), 1);
    /* 4.4.2: a presence update goes to the contact; 4.3.1: a new resource's initial
     * presence probes it (from the bare JID) and is broadcast. */
    fake_link_clear();
    send_xml(a, "<presence><show>away</show></presence>");
    ck_assert_int_eq(out_count("presence", NULL, ALICE "/a", ROMEO), 1);
    ck_assert_int_eq(out_count("presence", "probe", ALICE, ROMEO), 0);
    session_t *a2 = bind_jid(ALICE "/a2");
    fake_link_clear();
    avail(a2, 0);
    ck_assert_int_eq(out_count("presence", "probe", ALICE, ROMEO), 1);
    ck_assert_int_eq(out_count("presence", NULL, ALICE "/a2", ROMEO), 1);
    /* 4.5.2: unavailable too, and when a session just ends. */
    fake_link_clear();
    send_xml(a2, "<presence type='unavailable'/>");
    ck_assert_int_eq(out_count("presence", "unavailable", ALICE "/a2", ROMEO), 1);
    fake_link_clear();
    session_end(a);
    fake_redis_flush();
    ck_assert_int_eq(out_count("presence", "unavailable", ALICE "/a", ROMEO), 1);
    /* 3.3.3: the contact unsubscribes: From goes, it gets alice's unavailable (none
     * available now: nothing), and 3.2.3 unsubscribed: To goes. */
    remote_in("<presence from='" ROMEO "' to='" ALICE "' type='unsubscribe'/>");
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "100000");
    remote_in("<presence from='" ROMEO "' to='" ALICE "' type='unsubscribed'/>");
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "000000");
}
END_TEST

/* 3.1.3: a remote contact's request to a user with no resource waits for its next initial
 * presence; 3.4: a pre-approved one is answered for the user at once (with its presence,
 * 3.1.5, as the contact's server would for a local contact). */
START_TEST(test_remote_subscribe_offline_and_preapproved)
{
    s2s_join(&s2s_a, "s2s-a");
    remote_in("<presence from='" ROMEO "/x' to='" BOB "' type='subscribe'/>");
    ck_assert_str_eq(stored_flags(BOB, ROMEO), "000101");
    ck_assert_int_eq(out_total(), 0);
    session_t *b = bind_jid(BOB "/b");
    avail(b, 0);
    ck_assert_int_eq(presence_from(b, "subscribe", ROMEO), 1);
    ck_assert_int_eq(out_count("presence", "probe", BOB, ROMEO), 0); /* not subscribed to it */

    session_t *a = bind_jid(ALICE "/a");
    avail(a, 0);
    send_xml(a, "<presence to='" ROMEO "' type='subscribed'/>"); /* pre-approval: kept */
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "000010");
    ck_assert_int_eq(out_total(), 0);
    remote_in("<presence from='" ROMEO "' to='" ALICE "' type='subscribe'/>");
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "010000");
    ck_assert_int_eq(out_count("presence", "subscribed", ALICE, ROMEO), 1);
    ck_assert_int_eq(out_count("presence", NULL, ALICE "/a", ROMEO), 1);
    ck_assert_int_eq(presence_from(a, "subscribe", ROMEO), 0);
}
END_TEST

/* Subscription requests from strangers wait in the user's roster (3.1.3) and are delivered
 * again on every initial presence: another server must not be able to pile up as many as
 * it likes (one per JID it makes up). Past max_roster_items waiting requests, new ones are
 * ignored; a request from a JID already in the roster is still taken. */
START_TEST(test_remote_subscribe_bounded)
{
    char err[128];
    ck_assert_int_eq(config_set("max_roster_items", "3", "test", err, sizeof err), 0);
    s2s_join(&s2s_a, "s2s-a");
    preload_item(ALICE, ROMEO, "100000"); /* To: alice sees romeo */
    for (int i = 0; i < 6; i++) {
        char xml[160];
        snprintf(xml, sizeof xml, "<presence from='s%d@" REMOTE_DOM "' to='" ALICE "' type='subscribe'/>", i);
        remote_in(xml);
    }
    for (int i = 0; i < 6; i++) {
        char jid[64];
        snprintf(jid, sizeof jid, "s%d@" REMOTE_DOM, i);
        ck_assert_str_eq(stored_flags(ALICE, jid), i < 3 ? "000101" : "");
    }
    remote_in("<presence from='" ROMEO "' to='" ALICE "' type='subscribe'/>");
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "100100");
    session_t *a = bind_jid(ALICE "/a");
    avail(a, 0);
    ck_assert_int_eq(presence_from(a, "subscribe", "s2@" REMOTE_DOM), 1);
    ck_assert_int_eq(presence_from(a, "subscribe", "s3@" REMOTE_DOM), 0);
}
END_TEST

/* 4.3.2: a probe from a contact at another domain is answered on the user's behalf. */
START_TEST(test_remote_probe)
{
    s2s_join(&s2s_a, "s2s-a");
    preload_item(ALICE, ROMEO, "010000"); /* From: romeo may see alice */
    preload_item(BOB, ROMEO, "010000");
    session_t *a = bind_jid(ALICE "/a");
    send_xml(a, "<presence><status>here</status></presence>");
    fake_link_clear();
    remote_in("<presence from='" ROMEO "' to='" ALICE "' type='probe'/>");
    ck_assert_int_eq(out_count("presence", NULL, ALICE "/a", ROMEO), 1);
    ck_assert_int_eq(out_total(), 1);
    /* Bob has no available resource: unavailable. */
    fake_link_clear();
    remote_in("<presence from='" ROMEO "' to='" BOB "' type='probe'/>");
    ck_assert_int_eq(out_count("presence", "unavailable", BOB, ROMEO), 1);
    /* Someone not subscribed: unsubscribed, nothing of alice's presence. */
    fake_link_clear();
    remote_in("<presence from='juliet@remote.example/x' to='" ALICE "' type='probe'/>");
    ck_assert_int_eq(out_count("presence", "unsubscribed", ALICE, "juliet@remote.example"), 1);
    ck_assert_int_eq(out_total(), 1);
    /* No such account: answered as for an account the prober is not subscribed to
     * (4.3.2, first case), so that a probe does not tell which accounts exist. */
    fake_link_clear();
    remote_in("<presence from='" ROMEO "' to='" NOBODY "' type='probe'/>");
    ck_assert_int_eq(out_count("presence", "unsubscribed", NOBODY, ROMEO), 1);
    ck_assert_int_eq(out_total(), 1);
    /* Alice's broadcast reaches the contact with From (4.2.2). */
    send_xml(a, "<presence><show>dnd</show></presence>");
    ck_assert_int_eq(out_count("presence", NULL, ALICE "/a", ROMEO), 1);
}
END_TEST

/* iq requests from another domain answered by the modules that serve them (MOD_REMOTE),
 * out by address; to a full JID forwarded, and the client's answer goes back out. */
START_TEST(test_remote_iq)
{
    s2s_join(&s2s_a, "s2s-a");
    remote_in("<iq from='" REMOTE_DOM "' to='" DOM "' type='get' id='di'>"
              "<query xmlns='" NS_DISCO_INFO "'/></iq>");
    xml_node_t *st = out_id("di", NULL);
    ck_assert_ptr_nonnull(st);
    ck_assert(attr_is(st, "type", "result"));
    ck_assert(attr_is(st, "from", DOM));
    ck_assert(attr_is(st, "to", REMOTE_DOM));
    const xml_node_t *q = xml_node_child(st, "query", NS_DISCO_INFO);
    const xml_node_t *id = q ? xml_node_child(q, "identity", NULL) : NULL;
    ck_assert_ptr_nonnull(id);
    ck_assert(attr_is(id, "category", "server"));
    xml_node_free(&st);
    remote_in("<iq from='" ROMEO "/r' to='" ALICE "' type='get' id='da'>"
              "<query xmlns='" NS_DISCO_INFO "'/></iq>");
    st = out_id("da", NULL);
    ck_assert(attr_is(st, "type", "result"));
    ck_assert(attr_is(st, "from", ALICE));
    ck_assert(attr_is(st, "to", ROMEO "/r"));
    xml_node_free(&st);
    remote_in("<iq from='" ROMEO "/r' to='" ALICE "' type='get' id='vc'><vCard xmlns='vcard-temp'/></iq>");
    st = out_id("vc", NULL);
    ck_assert(attr_is(st, "type", "result"));
    ck_assert_ptr_nonnull(xml_node_child(st, "vCard", "vcard-temp"));
    xml_node_free(&st);
    remote_in("<iq from='" ROMEO "/r' to='" ALICE "' type='set' id='vs'><vCard xmlns='vcard-temp'/></iq>");
    ck_assert_str_eq(out_error("vs"), "forbidden");
    remote_in("<iq from='" REMOTE_DOM "' to='" DOM "' type='get' id='png'><ping xmlns='urn:xmpp:ping'/></iq>");
    st = out_id("png", NULL);
    ck_assert(attr_is(st, "type", "result"));
    xml_node_free(&st);
    /* What serves only local users is not offered to other domains. */
    remote_in("<iq from='" ROMEO "/r' to='" DOM "' type='get' id='ro'><query xmlns='" NS_ROSTER "'/></iq>");
    remote_in("<iq from='" ROMEO "/r' to='" ALICE "' type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    ck_assert_str_eq(out_error("ro"), "service-unavailable");
    ck_assert_str_eq(out_error("bl"), "service-unavailable");
    /* Results to the server are dropped. */
    fake_link_clear();
    remote_in("<iq from='" REMOTE_DOM "' to='" DOM "' type='result' id='r'/>");
    ck_assert_int_eq(out_total(), 0);
    /* To a full JID: forwarded; the client's result leaves through s2s. */
    session_t *a = bind_jid(ALICE "/a");
    remote_in("<iq from='" ROMEO "/r' to='" ALICE "/a' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>");
    ck_assert_int_eq(got_to(a, "v", ALICE "/a"), 1);
    send_xml(a, "<iq to='" ROMEO "/r' type='result' id='v'><query xmlns='jabber:iq:version'/></iq>");
    st = out_id("v", NULL);
    ck_assert(attr_is(st, "type", "result"));
    ck_assert(attr_is(st, "from", ALICE "/a"));
    xml_node_free(&st);
}
END_TEST

/* XEP-0191 with a JID at another domain, both ways. */
START_TEST(test_remote_blocking)
{
    s2s_join(&s2s_a, "s2s-a");
    preload_block(ALICE, ROMEO);
    preload_block(BOB, REMOTE_DOM); /* a whole domain */
    preload_item(ALICE, ROMEO, "110000");
    session_t *a = bind_jid(ALICE "/a");
    session_t *b = bind_jid(BOB "/b");
    avail(a, 0);
    avail(b, 0);
    fake_link_clear();
    /* Out: refused with <blocked/>, nothing leaves; presence dropped. */
    send_xml(a, "<message to='" ROMEO "/r' type='chat' id='m'><body>x</body></message>");
    send_xml(a, "<presence to='" ROMEO "' type='subscribe' id='s'/>");
    ck_assert_str_eq(bounce(a, "m"), "not-acceptable");
    ck_assert(bounce_has(a, "m", "blocked", "urn:xmpp:blocking:errors"));
    ck_assert_str_eq(bounce(a, "s"), "");
    ck_assert_int_eq(out_total(), 0);
    /* The broadcast does not reach a blocked contact either. */
    send_xml(a, "<presence><show>away</show></presence>");
    ck_assert_int_eq(out_total(), 0);
    fake_link_clear();
    /* In: as if the user were not there (messages and requests: service-unavailable back
     * out), presence and probes dropped. */
    remote_in("<message from='" ROMEO "/r' to='" ALICE "' type='chat' id='im'><body>x</body></message>");
    remote_in("<message from='juliet@" REMOTE_DOM "/r' to='" BOB "/b' type='chat' id='ib'><body>x</body></message>");
    remote_in("<iq from='" ROMEO "/r' to='" ALICE "/a' type='get' id='iq'><ping xmlns='urn:xmpp:ping'/></iq>");
    remote_in("<iq from='" ROMEO "/r' to='" ALICE "' type='get' id='iqb'><vCard xmlns='vcard-temp'/></iq>");
    remote_in("<presence from='" ROMEO "/r' to='" ALICE "' id='ip'/>");
    remote_in("<presence from='" ROMEO "' to='" ALICE "' type='probe' id='pr'/>");
    remote_in("<presence from='" ROMEO "' to='" ALICE "' type='subscribe' id='is'/>");
    ck_assert_str_eq(out_error("im"), "service-unavailable");
    ck_assert_str_eq(out_error("ib"), "service-unavailable");
    ck_assert_str_eq(out_error("iq"), "service-unavailable");
    ck_assert_str_eq(out_error("iqb"), "service-unavailable");
    ck_assert_int_eq(out_total(), 4);
    ck_assert_int_eq(total(a) + total(b), 0);
    ck_assert_str_eq(stored_flags(ALICE, ROMEO), "110000");
    /* Offline: not stored either. */
    session_end(b);
    fake_redis_flush();
    fake_link_clear();
    remote_in("<message from='juliet@" REMOTE_DOM "/r' to='" BOB "' type='chat' id='ob'><body>x</body></message>");
    ck_assert_str_eq(out_error("ob"), "service-unavailable");
    ck_assert_int_eq(offline_count(BOB), 0);
}
END_TEST

/* Runs the loop for a few milliseconds (timers due now: the probes of lost contacts). */
static void stop_loop(evloop_t *loop, void *ud)
{
    (void)ud;
    evloop_stop(loop);
}

static void run_loop_briefly(void)
{
    evloop_timer(rt.loop, 5, stop_loop, NULL);
    evloop_run(rt.loop);
}

static size_t rp_entries(void)
{
    size_t u, e, c;
    rpresence_counts(&u, &e, &c);
    return e;
}

static size_t rp_conns(void)
{
    size_t u, e, c;
    rpresence_counts(&u, &e, &c);
    return c;
}

/* A remote contact's presence is taken back when the server connection that carried it
 * is lost (IPC_S2S_CLOSED with "lost") or its s2s frontend is gone: unavailable from its
 * full JID to the user's resources, then one probe from the user's bare JID (RFC 6121 4.3);
 * a connection closed in order keeps it; only contacts with a 'to' subscription are kept,
 * and only while the user is available. */
START_TEST(test_remote_presence_lost)
{
    s2s_join(&s2s_a, "s2s-a");
    s2s_join(&s2s_b, "s2s-b");
    preload_item(ALICE, ROMEO, "110000");            /* both */
    preload_item(ALICE, "juliet@" REMOTE_DOM, "010000"); /* from only: not kept */
    session_t *a = bind_jid(ALICE "/a");
    avail(a, 0);
    fake_link_clear();
    remote_in_via(&s2s_a, 7, "<presence from='" ROMEO "/balcony' to='" ALICE "'/>");
    remote_in_via(&s2s_a, 7, "<presence from='" ROMEO "/garden' to='" ALICE "'/>");
    remote_in_via(&s2s_a, 7, "<presence from='juliet@" REMOTE_DOM "/x' to='" ALICE "'/>");
    remote_in_via(&s2s_a, 7, "<presence from='tybalt@" REMOTE_DOM "/x' to='" ALICE "'/>");
    ck_assert_int_eq(presence_from(a, NULL, ROMEO "/balcony"), 1);
    ck_assert_int_eq(rp_entries(), 2);
    ck_assert_int_eq(rp_conns(), 1);

    /* Unavailable from one resource forgets it. */
    remote_in_via(&s2s_a, 7, "<presence from='" ROMEO "/garden' to='" ALICE "' type='unavailable'/>");
    ck_assert_int_eq(rp_entries(), 1);

    /* A connection closed in order: the presence stays, the connection is not watched. */
    rpresence_conn_closed(&s2s_a, 7, REMOTE_DOM, 0);
    ck_assert_int_eq(rp_entries(), 1);
    ck_assert_int_eq(rp_conns(), 0);
    fake_link_clear();
    rpresence_frontend_gone(&s2s_a);
    ck_assert_int_eq(fake_link_count(), 0);

    /* The same resource again on another connection, which is lost. */
    remote_in_via(&s2s_a, 8, "<presence from='" ROMEO "/balcony' to='" ALICE "'><show>away</show></presence>");
    ck_assert_int_eq(rp_conns(), 1);
    fake_link_clear();
    rpresence_conn_closed(&s2s_b, 8, REMOTE_DOM, 1); /* another frontend's connection 8 */
    ck_assert_int_eq(fake_link_count(), 0);
    rpresence_conn_closed(&s2s_a, 8, REMOTE_DOM, 1);
    fake_redis_flush();
    ck_assert_int_eq(presence_from(a, "unavailable", ROMEO "/balcony"), 1);
    ck_assert_int_eq(rp_entries(), 0);
    ck_assert_int_eq(out_count("presence", "probe", ALICE, ROMEO), 0); /* on the next turn */
    run_loop_briefly();
    ck_assert_int_eq(out_count("presence", "probe", ALICE, ROMEO), 1);

    /* The answer brings it back; then its frontend is gone: two resources, one probe. */
    remote_in_via(&s2s_b, 3, "<presence from='" ROMEO "/balcony' to='" ALICE "'/>");
    remote_in_via(&s2s_b, 4, "<presence from='" ROMEO "/garden' to='" ALICE "/a'/>");
    ck_assert_int_eq(rp_entries(), 2);
    ck_assert_int_eq(rp_conns(), 2);
    fake_link_clear();
    rpresence_frontend_gone(&s2s_b);
    fake_redis_flush();
    ck_assert_int_eq(presence_from(a, "unavailable", ROMEO "/balcony"), 1);
    ck_assert_int_eq(presence_from(a, "unavailable", ROMEO "/garden"), 1);
    ck_assert_int_eq(rp_entries() + rp_conns(), 0);
    run_loop_briefly();
    ck_assert_int_eq(out_count("presence", "probe", ALICE, ROMEO), 1);

    /* Bounded: RPRESENCE_RESOURCES_MAX resources of one contact. */
    for (int i = 0; i < RPRESENCE_RESOURCES_MAX + 5; i++) {
        char xml[200];
        snprintf(xml, sizeof xml, "<presence from='" ROMEO "/r%d' to='" ALICE "'/>", i);
        remote_in_via(&s2s_a, 9, xml);
    }
    ck_assert_int_eq(rp_entries(), RPRESENCE_RESOURCES_MAX);
    /* Unavailable from the bare JID (a probe's answer) forgets them all. */
    remote_in_via(&s2s_a, 9, "<presence from='" ROMEO "' to='" ALICE "' type='unavailable'/>");
    ck_assert_int_eq(rp_entries() + rp_conns(), 0);

    /* The user's last available resource goes: its records go. */
    remote_in_via(&s2s_a, 10, "<presence from='" ROMEO "/balcony' to='" ALICE "'/>");
    ck_assert_int_eq(rp_entries(), 1);
    send_xml(a, "<presence type='unavailable'/>");
    fake_redis_flush();
    ck_assert_int_eq(rp_entries() + rp_conns(), 0);
    /* Unavailable: nothing is kept (nobody would see it). */
    remote_in_via(&s2s_a, 10, "<presence from='" ROMEO "/balcony' to='" ALICE "'/>");
    ck_assert_int_eq(rp_entries(), 0);
    avail(a, 0);
    remote_in_via(&s2s_a, 10, "<presence from='" ROMEO "/balcony' to='" ALICE "'/>");
    ck_assert_int_eq(rp_entries(), 1);
    session_end(a);
    fake_redis_flush();
    ck_assert_int_eq(rp_entries() + rp_conns(), 0);
    s2s_leave(&s2s_a);
    s2s_leave(&s2s_b);
}
END_TEST

static int journal_bounces;

static void count_bounce(const ipc_s2s_t *m, const char *payload, size_t len, const char *etype,
                         const char *cond)
{
    (void)m, (void)payload, (void)len, (void)etype, (void)cond;
    journal_bounces++;
}

/* One stanza too big for s2s_resend_buffer is sent without a copy; the copies of
 * the smaller stanzas before it stay (it does not empty the journal to make room it will
 * not use), so they still go out again when their frontend dies unconfirmed. */
START_TEST(test_remote_journal_big_stanza_keeps_others)
{
    char err[256];
    ck_assert_int_eq(config_set("s2s_resend_buffer", "4096", "test", err, sizeof err), 0);
    remote_open();
    s2s_join(&s2s_a, "s2s-a");
    s2s_join(&s2s_b, "s2s-b");
    fake_link_clear();
    const char *small = "<message from='" ALICE "/a' to='" ROMEO "' id='small'><body>hi</body></message>";
    xml_node_t *st = stanza_parse(small, strlen(small));
    ck_assert_int_eq(remote_send_node(st), 0);
    xml_node_free(&st);
    char big[6000];
    char body[5001];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    snprintf(big, sizeof big, "<message from='" ALICE "/a' to='" ROMEO "' id='big'><body>%s</body></message>", body);
    st = stanza_parse(big, strlen(big));
    ck_assert_int_eq(remote_send_node(st), 0);
    xml_node_free(&st);
    rt_frontend_t *f1 = NULL, *f2 = NULL;
    xml_node_free(&(xml_node_t *){sent_out(0, &f1)});
    xml_node_free(&(xml_node_t *){sent_out(1, &f2)});
    ck_assert_ptr_nonnull(f1);
    ck_assert_ptr_eq(f1, f2);
    rt_frontend_t *other = f1 == &s2s_a ? &s2s_b : &s2s_a;
    fake_link_clear();
    journal_bounces = 0;
    remote_frontend_gone(f1, count_bounce); /* neither confirmed */
    /* The small one goes out again through the other frontend; the big one had no copy. */
    int resent_small = 0;
    for (size_t i = 0; i < fake_link_count(); i++) {
        rt_frontend_t *to = NULL;
        xml_node_t *o = sent_out(i, &to);
        resent_small += o && to == other && attr_is(o, "id", "small");
        xml_node_free(&o);
    }
    remote_journal_free(other);
    ck_assert_int_eq(journal_bounces, 0);
    ck_assert_msg(resent_small == 1, "the small stanza's copy was dropped for the big one");
    s2s_leave(&s2s_a);
    s2s_leave(&s2s_b);
}
END_TEST

/* The probe sent after a lost connection follows the rules of the probes on
 * initial presence (mod_presence: none to a contact the user blocks, XEP-0191): a
 * contact blocked after its presence was kept is not probed when its connection is lost. */
START_TEST(test_remote_presence_lost_blocked_not_probed)
{
    s2s_join(&s2s_a, "s2s-a");
    preload_item(ALICE, ROMEO, "110000"); /* both */
    session_t *a = bind_jid(ALICE "/a");
    avail(a, 0);
    remote_in_via(&s2s_a, 7, "<presence from='" ROMEO "/balcony' to='" ALICE "'/>");
    ck_assert_int_eq(rp_entries(), 1);
    send_xml(a, "<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='" ROMEO
                "'/></block></iq>");
    fake_redis_flush();
    fake_link_clear();
    /* Initial presence again: no probe to the blocked contact (the rule). */
    avail(a, 0);
    fake_redis_flush();
    ck_assert_int_eq(out_count("presence", "probe", ALICE, ROMEO), 0);
    fake_link_clear();
    rpresence_conn_closed(&s2s_a, 7, REMOTE_DOM, 1);
    fake_redis_flush();
    run_loop_briefly();
    ck_assert_int_eq(out_count("presence", "probe", ALICE, ROMEO), 0);
    session_end(a);
    fake_redis_flush();
    s2s_leave(&s2s_a);
}
END_TEST

Suite *make_router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("delivery");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_bare_delivery, 0, sizeof res_sets / sizeof res_sets[0]);
    tcase_add_test(tc, test_bare_no_account);
    tcase_add_test(tc, test_bare_offline_full);
    tcase_add_test(tc, test_bare_storage_down);
    tcase_add_test(tc, test_offline_then_delivered);
    tcase_add_test(tc, test_returned_stanzas);
    tcase_add_test(tc, test_lost_delivery_bounced);
    tcase_add_test(tc, test_bare_many_resources);
    tcase_add_test(tc, test_full_online);
    tcase_add_loop_test(tc, test_full_not_online, 0, 2);
    tcase_add_test(tc, test_iq_bare_and_remote);
    tcase_add_test(tc, test_sm_wrap_around);
    suite_add_tcase(s, tc);

    tc = tcase_create("register");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_register_requests);
    tcase_add_test(tc, test_register_query_logged_in);
    suite_add_tcase(s, tc);

    tc = tcase_create("subscriptions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_subscribe_approve);
    tcase_add_test(tc, test_unsubscribed);
    tcase_add_test(tc, test_subscribe_offline_contact);
    tcase_add_test(tc, test_preapproval);
    suite_add_tcase(s, tc);

    tc = tcase_create("carbons");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_carbons);
    tcase_add_test(tc, test_carbons_enable_and_self);
    suite_add_tcase(s, tc);

    tc = tcase_create("csi");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_csi_hold_and_release);
    tcase_add_test(tc, test_csi_urgent);
    tcase_add_test(tc, test_csi_bounded_and_dropped);
    tcase_add_test(tc, test_csi_resync);
    suite_add_tcase(s, tc);

    tc = tcase_create("blocking");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_block_outbound);
    tcase_add_test(tc, test_block_inbound);
    tcase_add_test(tc, test_block_inbound_offline);
    tcase_add_loop_test(tc, test_block_matching, 0, sizeof match_cases / sizeof match_cases[0]);
    tcase_add_test(tc, test_block_iq_then_route);
    tcase_add_test(tc, test_block_inbound_offline_iq);
    tcase_add_test(tc, test_block_inbound_offline_subscribe);
    suite_add_tcase(s, tc);

    tc = tcase_create("admin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_admin_sessions);
    tcase_add_test(tc, test_admin_kick);
    tcase_add_test(tc, test_admin_stats);
    tcase_add_test(tc, test_admin_user);
    tcase_add_test(tc, test_admin_announce);
    suite_add_tcase(s, tc);

    tc = tcase_create("admin-registry");
    tcase_add_test(tc, test_admin_module_commands);
    suite_add_tcase(s, tc);

    tc = tcase_create("federation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_remote_frontend_choice);
    tcase_add_test(tc, test_remote_no_s2s);
    tcase_add_test(tc, test_remote_messages);
    tcase_add_test(tc, test_remote_undeliverable);
    tcase_add_test(tc, test_remote_subscription);
    tcase_add_test(tc, test_remote_subscribe_offline_and_preapproved);
    tcase_add_test(tc, test_remote_subscribe_bounded);
    tcase_add_test(tc, test_remote_probe);
    tcase_add_test(tc, test_remote_iq);
    tcase_add_test(tc, test_remote_blocking);
    tcase_add_test(tc, test_remote_presence_lost);
    tcase_add_test(tc, test_remote_journal_big_stanza_keeps_others);
    tcase_add_test(tc, test_remote_presence_lost_blocked_not_probed);
    suite_add_tcase(s, tc);
    return s;
}
