/* XEP-0077 in-band registration, the router's side: creating accounts that a frontend
 * asks for (HOOK_REGISTER, IPC_REGISTER: the frontend checked the form and derived the
 * credentials), with invitation tokens (XEP-0401, XEP-0445) and a per-address limit; and,
 * for a logged-in user, the registration query (XEP-0077 3.2, <registered/>) and the
 * password change (3.3). Cancellation (<remove/>) is passed on to the module that deletes
 * accounts.
 *
 * Storage. An account is made by one script over acct:{bare} and tombstone:{bare}: both
 * carry the user's hash tag, so they share a Redis Cluster slot. It refuses a name that
 * exists or has a tombstone and otherwise writes both credentials in one HSET. An
 * invitation (PREFIX "invite:" TOKEN, a key of its own slot) is taken first by a script on
 * that key alone (read, remaining time, delete: two registrations cannot both take it);
 * when the account cannot be made after all (conflict, storage failure), the token is put
 * back with the time it had left (SET NX, so nothing newer is overwritten). A token's expiry
 * counts when it is presented (preauth): one presented with less than ten minutes left gets
 * ten minutes, so the registration that follows does not fail on it. The accounts
 * set (keys_global KEYS_ACCOUNTS) is written last, on its own: it only lists. */
#include <hiredis/async.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "deliver.h"
#include "jid.h"
#include "keys.h"
#include "link.h"
#include "log.h"
#include "module.h"
#include "modules.h"
#include "registration.h"
#include "router.h"
#include "scram.h"
#include "storage.h"
#include "util.h"

/* Addresses whose registrations are counted at once (register_limit_per_address); when it
 * is full of addresses within their window, further registrations from new addresses are
 * refused until some window ends: memory stays bounded under a flood. */
#define REGISTER_ADDR_TABLE_MAX 10000

static const char *const SCRIPT_CREATE =
    "if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[1]) == 1 then "
    "return 0 end "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) return 1";
static const char *const SCRIPT_TAKE_TOKEN =
    "local v = redis.call('GET', KEYS[1]) if not v then return false end "
    "local t = redis.call('PTTL', KEYS[1]) redis.call('DEL', KEYS[1]) return {v, t}";
/* XEP-0445 section 5: a token's expiry is checked when it is presented (preauth) only; the
 * registration that follows must not fail because it expired meanwhile. So a valid token
 * presented with less than REGISTER_TOKEN_GRACE_MS left is given that much, once: the
 * value is marked, so that presenting it again and again cannot keep it alive. */
#define REGISTER_TOKEN_GRACE_MS 600000
static const char *const SCRIPT_CHECK_TOKEN =
    "local v = redis.call('GET', KEYS[1]) if not v then return 0 end "
    "local t = redis.call('PTTL', KEYS[1]) "
    "if t >= 0 and t < tonumber(ARGV[1]) and not string.find(v, ' extended', 1, true) then "
    "redis.call('SET', KEYS[1], v .. ' extended', 'PX', ARGV[1]) end "
    "return 1";
static const char *const SCRIPT_SETPASS =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) return 1";

static int allow;
static long min_password;
static unsigned iterations;
static long limit_per_address;
static uint64_t limit_window_ms;
static hmap_t *by_addr; /* client address -> addr_count_t */

typedef struct {
    uint64_t since; /* start of the address's current window */
    long count;     /* registrations asked for in it */
} addr_count_t;

static int drop_expired(void *value, void *ud)
{
    addr_count_t *a = value;
    if (*(uint64_t *)ud - a->since < limit_window_ms)
        return 0;
    free(a);
    return 1;
}

/* 1 when `addr` may ask for one more account now (and counts it), 0 past the limit.
 * Every request is counted, whatever its outcome, so that names cannot be probed faster
 * than accounts can be made. */
static int addr_admit(const char *addr)
{
    if (!limit_per_address || !addr[0])
        return 1;
    uint64_t now = now_ms();
    addr_count_t *a = hmap_sget(by_addr, addr);
    if (a && now - a->since >= limit_window_ms) {
        a->since = now;
        a->count = 0;
    }
    if (!a) {
        if (hmap_count(by_addr) >= REGISTER_ADDR_TABLE_MAX &&
            hmap_filter(by_addr, drop_expired, &now) >= REGISTER_ADDR_TABLE_MAX) {
            log_warn("register: %d addresses registered within register_limit_window: "
                     "refusing new ones for now", REGISTER_ADDR_TABLE_MAX);
            return 0;
        }
        a = xcalloc(1, sizeof *a);
        a->since = now;
        hmap_sput(by_addr, addr, a);
    }
    if (a->count >= limit_per_address)
        return 0;
    a->count++;
    return 1;
}

/* A registration waiting for Redis. The frontend may be gone by the time it answers: it is
 * found again by its routing id. */
typedef struct {
    char ident[128];
    size_t ident_len;
    uint64_t conn;
    uint32_t seq;
    char bare[JID_MAX + 1];
    char *sha1, *sha256;
    char invite_key[STORAGE_KEY_MAX];
    char *token_value;  /* the token taken, to put back if the account is not made */
    long long token_ms; /* its remaining time (-1: no expiry) */
} reg_req_t;

static void req_free(reg_req_t *r)
{
    if (r->sha1)
        OPENSSL_cleanse(r->sha1, strlen(r->sha1));
    if (r->sha256)
        OPENSSL_cleanse(r->sha256, strlen(r->sha256));
    free(r->sha1);
    free(r->sha256);
    free(r->token_value);
    free(r);
}

static void answer(const reg_req_t *r, ipc_status_t status)
{
    rt_frontend_t *f = hmap_get(rt.frontends, r->ident, r->ident_len);
    if (f)
        link_send_register_reply(f, &(ipc_register_reply_t){r->conn, r->seq, status});
}

/* Puts a taken token back, with the time it had left. */
static void token_restore(reg_req_t *r)
{
    if (!r->token_value || !rt.redis_ready)
        return;
    if (r->token_ms > 0)
        rt_redis_command(rt_redis_ignore, NULL, "SET %s %s PX %lld NX", r->invite_key,
                          r->token_value, r->token_ms);
    else if (r->token_ms == -1)
        rt_redis_command(rt_redis_ignore, NULL, "SET %s %s NX", r->invite_key,
                          r->token_value);
}

static void on_created(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    reg_req_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        log_warn("register: creating %s failed: %s", r->bare,
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
        token_restore(r);
        answer(r, IPC_TEMPORARY);
    } else if (rep->integer != 1) {
        log_info("register: %s is taken", r->bare);
        token_restore(r);
        answer(r, IPC_CONFLICT);
    } else {
        char set[256];
        if (keys_global(set, sizeof set, rt.redis_prefix, KEYS_ACCOUNTS) >= 0)
            rt_redis_command(rt_redis_ignore, NULL, "SADD %s %s", set, r->bare);
        log_info("register: created %s%s", r->bare, r->token_value ? " with an invitation" : "");
        metric_inc(rt.m.registrations);
        answer(r, IPC_OK);
    }
    req_free(r);
}

static void create(reg_req_t *r)
{
    char acct[STORAGE_KEY_MAX], tomb[STORAGE_KEY_MAX];
    if (!rt.redis_ready || storage_key(acct, KEYS_ACCOUNT, r->bare) < 0 ||
        storage_key(tomb, KEYS_TOMBSTONE, r->bare) < 0 ||
        rt_redis_command(on_created, r, "EVAL %s 2 %s %s %s %s %s %s", SCRIPT_CREATE,
                          acct, tomb, keys_cred_field(SCRAM_SHA1), r->sha1,
                          keys_cred_field(SCRAM_SHA256), r->sha256) != REDIS_OK) {
        token_restore(r);
        answer(r, IPC_TEMPORARY);
        req_free(r);
    }
}

static void on_token_taken(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    reg_req_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        log_warn("register: taking an invitation failed: %s", rep ? rep->str : "no reply");
        answer(r, IPC_TEMPORARY);
        req_free(r);
    } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
               rep->element[0]->type != REDIS_REPLY_STRING ||
               rep->element[1]->type != REDIS_REPLY_INTEGER) {
        log_info("register: %s refused: unknown, used or expired invitation", r->bare);
        answer(r, IPC_NOT_FOUND);
        req_free(r);
    } else {
        r->token_value = xstrdup(rep->element[0]->str);
        r->token_ms = rep->element[1]->integer;
        create(r);
    }
}

static void on_token_checked(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    reg_req_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_INTEGER)
        answer(r, IPC_TEMPORARY);
    else
        answer(r, rep->integer == 1 ? IPC_OK : IPC_NOT_FOUND);
    req_free(r);
}

/* HOOK_REGISTER: a frontend asks for an account (or whether a token is valid). */
static mod_result_t on_register(hook_ev_t *ev)
{
    const ipc_register_t *m = ev->reg;
    rt_frontend_t *f = ev->frontend;
    ipc_register_reply_t rep = {m->conn, m->seq, IPC_OK};
    int check = (m->flags & IPC_REGISTER_CHECK) != 0;
    int has_token = m->token[0] != '\0';
    if (has_token && !register_token_valid(m->token)) {
        rep.status = IPC_NOT_FOUND;
        link_send_register_reply(f, &rep);
        return MOD_HANDLED;
    }
    if (!check && !allow && !has_token) {
        rep.status = IPC_REFUSED;
        link_send_register_reply(f, &rep);
        return MOD_HANDLED;
    }
    reg_req_t *r = xcalloc(1, sizeof *r);
    memcpy(r->ident, f->ident, f->ident_len);
    r->ident_len = f->ident_len;
    r->conn = m->conn;
    r->seq = m->seq;
    if (has_token)
        keys_global(r->invite_key, sizeof r->invite_key, rt.redis_prefix, KEYS_INVITE);
    if (has_token && strlen(r->invite_key) + strlen(m->token) < sizeof r->invite_key)
        strcat(r->invite_key, m->token);
    if (check) {
        if (!rt.redis_ready ||
            rt_redis_command(on_token_checked, r, "EVAL %s 1 %s %d", SCRIPT_CHECK_TOKEN,
                              r->invite_key, REGISTER_TOKEN_GRACE_MS) != REDIS_OK) {
            answer(r, IPC_TEMPORARY);
            req_free(r);
        }
        return MOD_HANDLED;
    }
    /* The frontend prepared the name and made the credentials: check both all the same. */
    char local[JID_PART_MAX + 1], buf[IPC_FIELD_MAX + 1], *sha1, *sha256;
    scram_cred_t c1, c256;
    snprintf(buf, sizeof buf, "%s", m->credentials);
    if (jid_prep_local(local, m->username) < 0 || strcmp(local, m->username) != 0 ||
        (size_t)snprintf(r->bare, sizeof r->bare, "%s@%s", local, rt.domain) >= sizeof r->bare ||
        register_creds_split(buf, &sha1, &sha256) < 0 ||
        scram_cred_decode(&c1, SCRAM_SHA1, sha1) < 0 ||
        scram_cred_decode(&c256, SCRAM_SHA256, sha256) < 0) {
        log_warn("register: malformed request from %s (conn %" PRIu64 ")", f->ident, m->conn);
        answer(r, IPC_REFUSED);
        req_free(r);
        OPENSSL_cleanse(buf, sizeof buf);
        return MOD_HANDLED;
    }
    OPENSSL_cleanse(&c1, sizeof c1);
    OPENSSL_cleanse(&c256, sizeof c256);
    r->sha1 = xstrdup(sha1);
    r->sha256 = xstrdup(sha256);
    OPENSSL_cleanse(buf, sizeof buf);
    if (!addr_admit(m->addr)) {
        log_info("register: %s refused: register_limit_per_address reached by %s", r->bare,
                 m->addr);
        answer(r, IPC_LIMIT);
        req_free(r);
        return MOD_HANDLED;
    }
    if (!has_token) {
        create(r);
    } else if (!rt.redis_ready ||
               rt_redis_command(on_token_taken, r, "EVAL %s 1 %s", SCRIPT_TAKE_TOKEN,
                                 r->invite_key) != REDIS_OK) {
        answer(r, IPC_TEMPORARY);
        req_free(r);
    }
    return MOD_HANDLED;
}

/* The logged-in user's own localpart (from the bare JID). */
static void own_local(const session_t *s, char *out, size_t n)
{
    const char *bare = s->user->bare;
    size_t l = strcspn(bare, "@");
    snprintf(out, n, "%.*s", (int)l, bare);
}

/* A password change waiting for Redis: the sender is found again by full JID. */
typedef struct {
    char *full;
    xml_node_t *iq;
} pw_req_t;

static void on_password_set(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pw_req_t *r = privdata;
    redisReply *rep = reply;
    session_t *s = session_find_jid(r->full);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        log_warn("register: password change of %s failed: %s", r->full,
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
        if (s)
            session_reply_error(s, r->iq, "wait", "internal-server-error");
    } else if (rep->integer != 1) {
        if (s) /* the account was deleted meanwhile */
            session_reply_error(s, r->iq, "cancel", "item-not-found");
    } else {
        log_info("register: password changed for %s", r->full);
        if (s)
            session_reply_result(s, r->iq, NULL);
    }
    xml_node_free(&r->iq);
    free(r->full);
    free(r);
}

/* Derives the new credentials and writes both at once; answers once Redis did. */
static void set_password(mod_iq_t *iq, const char *key, const char *password)
{
    char *sha1 = NULL, *sha256 = NULL;
    if (scram_creds_make(password, iterations, &sha1, &sha256) < 0) {
        session_reply_error(iq->from, iq->st, "wait", "internal-server-error");
        return;
    }
    pw_req_t *r = xcalloc(1, sizeof *r);
    r->full = xstrdup(iq->from->full);
    r->iq = xml_node_copy(iq->st);
    if (rt_redis_command(on_password_set, r, "EVAL %s 1 %s %s %s %s %s", SCRIPT_SETPASS, key,
                         keys_cred_field(SCRAM_SHA1), sha1, keys_cred_field(SCRAM_SHA256),
                         sha256) != REDIS_OK) {
        session_reply_error(iq->from, iq->st, "wait", "internal-server-error");
        xml_node_free(&r->iq);
        free(r->full);
        free(r);
    }
    OPENSSL_cleanse(sha1, strlen(sha1));
    OPENSSL_cleanse(sha256, strlen(sha256));
    free(sha1);
    free(sha256);
}

/* A session may change its password once in this many ms: the key derivation runs on
 * the router's one thread. */
#define PASSWORD_CHANGE_INTERVAL_MS 5000

/* XEP-0077 3.3: <username/> (the user's own) and the new <password/>; new credentials of
 * every hash in one write, used from the next login on. */
static void change_password(mod_iq_t *iq)
{
    uint64_t now = now_ms(), last = (uintptr_t)module_slot(iq->from, mod_register);
    if (last && now - last < PASSWORD_CHANGE_INTERVAL_MS) {
        session_reply_error(iq->from, iq->st, "wait", "resource-constraint");
        return;
    }
    int twice = 0;
    char *user = register_form_value(iq->payload, "username", &twice);
    char *password = register_form_value(iq->payload, "password", &twice);
    char local[JID_PART_MAX + 1], own[JID_PART_MAX + 1], key[STORAGE_KEY_MAX];
    own_local(iq->from, own, sizeof own);
    if (twice || !user || !password || !*password) {
        session_reply_error(iq->from, iq->st, "modify", "bad-request");
    } else if (strlen(user) > JID_PART_MAX || jid_prep_local(local, user) < 0 ||
               strcmp(local, own) != 0) {
        session_reply_error(iq->from, iq->st, "modify", "not-authorized");
    } else if (register_password_check(password, min_password) != REGISTER_PW_OK) {
        session_reply_error(iq->from, iq->st, "modify", "not-acceptable");
    } else if (!rt.redis_ready || storage_key(key, KEYS_ACCOUNT, iq->from->user->bare) < 0) {
        session_reply_error(iq->from, iq->st, "wait", "internal-server-error");
    } else {
        module_slot(iq->from, mod_register) = (void *)(uintptr_t)now;
        set_password(iq, key, password);
    }
    free(user);
    if (password) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
}

static mod_result_t register_iq(mod_iq_t *iq)
{
    if (!iq->set) {
        /* XEP-0077 3.2: a registered entity is told so, with its username. */
        char own[JID_PART_MAX + 1];
        own_local(iq->from, own, sizeof own);
        xml_node_t *q = xml_node_new("query", NS_REGISTER);
        xml_node_new_child(q, "registered", NS_REGISTER);
        xml_node_add_text(xml_node_new_child(q, "username", NS_REGISTER), own, strlen(own));
        session_reply_result(iq->from, iq->st, q);
        return MOD_HANDLED;
    }
    if (xml_node_child(iq->payload, "remove", NS_REGISTER))
        return MOD_PASS; /* cancellation: the account deletion module's */
    change_password(iq);
    return MOD_HANDLED;
}

static void register_open(void)
{
    allow = config_bool("allow_registration");
    min_password = config_int("register_min_password");
    iterations = (unsigned)config_int("scram_iterations");
    limit_per_address = config_int("register_limit_per_address");
    limit_window_ms = (uint64_t)config_int("register_limit_window") * 1000;
    by_addr = hmap_new();
}

static void register_close(void)
{
    hmap_destroy_all(&by_addr, free);
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_REGISTER, "query", MOD_GET | MOD_SET, MOD_AT_SERVER, register_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_REGISTER, MOD_AT_SERVER, NULL},
    {0},
};

static const mod_hook_t hooks[] = {
    {HOOK_REGISTER, 0, on_register},
    {0},
};

/* allow_registration, register_min_password (registration.h) and scram_iterations
 * (scram.h) are shared with the frontend and xmppctl: main.c registers those tables. */
static const config_key_t config[] = {
    CONFIG_INT("register_limit_per_address", "5", 0, 1000000, "in-band registrations one client address may ask for within register_limit_window (0: no limit); past it resource-constraint"),
    CONFIG_INT("register_limit_window", "3600", 1, 31536000, "seconds over which register_limit_per_address counts"),
    CONFIG_END,
};

module_t mod_register = {
    .name = "register",
    .iq = iq_handlers,
    .features = features,
    .hooks = hooks,
    .config = config,
    .wants_slot = 1, /* the time of the session's last password change */
    .open = register_open,
    .close = register_close,
};
