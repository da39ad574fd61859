/* libFuzzer harness for the multi-user chat service (session-router/modules/mod_muc.c,
 * muc_iq.c, muc_admin.c, muc_archive.c with core/muccfg.c): the router's real routing code
 * runs over the unit tests' fake link and fake Redis (tests/unit/fake_link.c,
 * fake_redis.c), as in tests/unit/check_router.c.
 *
 * Input: stanzas separated by NUL bytes. The first byte of each picks the sender among four
 * sessions of three users (alice/a, alice/b, bob/c, carol/d; a byte of 0xff ends that
 * session instead: HOOK_SESSION_ENDED) or, with its high bit set, a user at another
 * domain (romeo@remote.example/r, through route_remote_stanza as an s2s frontend hands
 * it over); the rest is the stanza as a client sends it: 'to' prepared as the frontend
 * would (one it refuses is skipped), 'from' stamped, then routed. Checked: nothing crashes
 * or leaks (every room, occupant and pending iq is freed at close), and every stanza the
 * router delivers or sends to the other domain parses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fake_router.h"
#include "ipc.h"
#include "jid.h"
#include "keys.h"
#include "module.h"
#include "remote.h"
#include "modules.h"
#include "muc.h"
#include "route.h"
#include "service.h"
#include "session.h"
#include "sm.h"
#include "stanza.h"
#include "storage.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_muc: check failed: %s (line %d)\n", #cond, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define FUZZ_MAX_STANZAS 64

static const char remote_full[] = "romeo@remote.example/r";
static const char *const fulls[] = {"alice@example.com/a", "alice@example.com/b",
                                    "bob@example.com/c", "carol@example.com/d"};
static module_t *const modules[] = {&mod_muc};
static rt_frontend_t fe;
static redisAsyncContext fake_ctx; /* never dereferenced: fake_redis.c answers */

static void account(const char *bare)
{
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_ACCOUNT, bare);
    redisReply *r = fake_redis_cmd("HSET %s scram-sha-256 x", key);
    fake_redis_reply_free(r);
}

static void setup(void)
{
    char err[256];
    config_reset();
    config_register(config_base_keys);
    config_register(sm_config_keys);
    module_declare_config(modules, 1);
    config_set("domain", "example.com", "fuzz", err, sizeof err);
    FUZZ_CHECK(config_load(NULL, err, sizeof err) == 0);
    memset(&rt, 0, sizeof rt);
    rt.loop = evloop_new();
    sm_open();
    rt.domain = "example.com";
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
    fe.s2s = 1; /* it also carries the other domain's traffic (remote.h) */
    hmap_put(rt.frontends, fe.ident, fe.ident_len, &fe);
    fake_redis_init();
    module_register(modules, 1);
    muc.loaded = 1; /* the persistent rooms (none) count as read: the event loop never runs */
    account("alice@example.com");
    account("bob@example.com");
    account("carol@example.com");
}

static void teardown(void)
{
    fake_redis_flush();
    remote_journal_free(&fe);
    rt.redis_ready = 0;
    fake_redis_disconnect();
    sessions_free_all();
    sm_close();
    module_close_all();
    evloop_destroy(&rt.loop);
    hmap_destroy(&rt.frontends);
    hmap_destroy(&rt.by_conn);
    hmap_destroy(&rt.by_jid);
    hmap_destroy(&rt.users);
    service_clear();
    fake_link_clear();
    fake_redis_free();
    config_reset();
}

/* A client's stanza, stamped and routed as the frontend and the link would; with s NULL,
 * the remote user's, as the s2s frontend hands it over. */
static void send_one(session_t *s, const char *xml, size_t len)
{
    xml_node_t *st = stanza_parse(xml, len);
    if (!st)
        return;
    ipc_kind_t kind = ipc_kind_from_name(st->name);
    ipc_stype_t stype = ipc_stype_from_attr(kind, xml_node_attr(st, "type"));
    const char *to_attr = xml_node_attr(st, "to");
    char to[JID_MAX + 1] = "";
    jid_t j;
    if (kind == IPC_KIND_NONE || stype == IPC_ST_INVALID ||
        (to_attr && (jid_parse(&j, to_attr) < 0 || jid_full(&j, to, sizeof to) < 0))) {
        xml_node_free(&st);
        return;
    }
    if (to_attr)
        xml_node_set_attr(st, "to", to);
    const char *from = s ? s->full : remote_full;
    xml_node_set_attr(st, "from", from);
    buf_t b = BUF_INIT;
    xml_serialize(st, XML_NS_CLIENT, &b);
    ipc_stanza_t msg = {.conn = s ? s->conn : 0, .kind = kind, .stype = stype, .to = to,
                        .from = from, .id = xml_node_attr(st, "id")};
    if (s)
        route_stanza(s, &msg, b.data, b.len);
    else if (*to) /* the s2s frontend refuses a stanza without 'to' */
        route_remote_stanza(NULL, &msg, b.data, b.len);
    buf_free(&b);
    xml_node_free(&st);
    fake_redis_flush();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    session_t *ss[4] = {NULL};
    uint64_t conn = 0;
    for (int i = 0; i < 4; i++) {
        ss[i] = session_attach(&fe, ++conn, fulls[i]);
        FUZZ_CHECK(ss[i] != NULL);
        fake_redis_flush();
    }
    size_t pos = 0;
    for (int n = 0; pos < size && n < FUZZ_MAX_STANZAS; n++) {
        const uint8_t *end = memchr(data + pos, '\0', size - pos);
        size_t len = end ? (size_t)(end - (data + pos)) : size - pos;
        if (len > 0) {
            uint8_t who = data[pos];
            session_t *s = ss[who & 3];
            if (who == 0xff) {
                for (int i = 0; i < 4; i++)
                    if (ss[i]) {
                        session_end(ss[i]);
                        ss[i] = NULL;
                        fake_redis_flush();
                        break;
                    }
            } else if (who & 0x80) {
                send_one(NULL, (const char *)data + pos + 1, len - 1);
            } else if (s) {
                send_one(s, (const char *)data + pos + 1, len - 1);
            }
        }
        pos += len + 1;
    }
    /* Everything delivered is one well-formed stanza. */
    for (size_t i = 0; i < fake_link_count(); i++) {
        const fake_sent_t *m = fake_link_get(i);
        if ((m->type != IPC_DELIVER && m->type != IPC_S2S_OUT) || !m->data)
            continue;
        xml_node_t *st = stanza_parse(m->data, m->len);
        FUZZ_CHECK(st != NULL);
        xml_node_free(&st);
    }
    teardown();
    return 0;
}
