/* XEP-0313 message archive management (urn:xmpp:mam:2 and #extended), with XEP-0359 stanza
 * ids and XEP-0059 result set management.
 *
 * Archiving: at HOOK_STANZA_OUT (after blocking, before carbons) every message a client sends
 * to a local account that a person would want back (chat or normal with a body, an
 * encrypted payload, a correction, a retraction or a reaction) gets one entry in the
 * sender's archive and one in the recipient's, whatever the number of resources, and is
 * stamped with <stanza-id/> for each (forged ones removed) before the rest of routing sees
 * it: carbons, delivery and offline storage all carry the stamped message, so carbons and
 * the archive agree and offline messages are archived too.
 *
 * Storage (keys.h KEYS_MAM*): one Redis stream per user whose entry ids the router chooses
 * (milliseconds-sequence, strictly increasing for the router's life) so the stanza-id is
 * known before Redis answers; one small stream per conversation with the same ids for
 * 'with' queries; expiry (archive_expires_after) trims by id on every write (XADD MINID)
 * and keeps an EXPIRE on the keys (refreshed once per archive_expires_after/64), never
 * scanning. The common write is two XADDs; a Lua script (script_archive) only when the
 * router does not hold the other party and Redis must check the account, the blocklist and
 * the preferences. */
#include <ctype.h>
#include <errno.h>
#include <hiredis/async.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "config.h"
#include "hmap.h"
#include "jid.h"
#include "keys.h"
#include "log.h"
#include "mamq.h"
#include "mamrun.h"
#include "module.h"
#include "modules.h"
#include "remote.h"
#include "stanza.h"
#include "storage.h"
#include "user.h"
#include "util.h"

#define WITH_KEY_MAX (STORAGE_KEY_MAX + JID_MAX + 2)
#define ID_MAX MAMQ_ID_MAX

static int enabled;        /* mam_enabled */
static long expires_after; /* seconds; 0 keeps forever */
static long max_page;
static long max_prefs;
static char default_mode; /* 'a' always, 'n' never, 'r' roster */

/* ---- stream ids (mamq.h) ---- */

typedef mamq_id_t sid_t;
#define sid_fmt mamq_id_fmt
#define next_id mamq_next_id
#define wall_ms mamq_now_ms

/* The oldest id still kept (archive_expires_after), as "ms-0"; 0-0 when kept forever. */
static sid_t min_kept(void)
{
    return mamq_min_kept(expires_after, wall_ms());
}

/* ---- preferences (XEP-0313 "Archiving preferences"), cached for users with sessions ---- */

typedef struct {
    int loaded;
    char mode;      /* 'a', 'n', 'r' */
    hmap_t *always; /* JID -> itself */
    hmap_t *never;
    /* What the router last told Redis for this user's archive (the fast write path):
     * when the stream's EXPIRE is due again, and per contact when the conversation's
     * stream and index entry are (contact bare JID -> uint64_t ms). */
    uint64_t expire_due;
    hmap_t *conv_due;
} prefs_t;

static hmap_t *prefs_cache; /* bare JID -> prefs_t */

static void prefs_free(void *v)
{
    prefs_t *p = v;
    if (!p)
        return;
    hmap_destroy_all(&p->always, free);
    hmap_destroy_all(&p->never, free);
    hmap_destroy_all(&p->conv_due, free);
    free(p);
}

static char mode_of(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "always") == 0)
        return 'a';
    if (strcmp(s, "never") == 0)
        return 'n';
    if (strcmp(s, "roster") == 0)
        return 'r';
    return 0;
}

static const char *mode_name(char m)
{
    return m == 'n' ? "never" : m == 'r' ? "roster" : "always";
}

static void set_add(hmap_t *h, const char *jid)
{
    char *v = xstrdup(jid);
    free(hmap_put(h, v, strlen(v), v));
}

/* Fills a prefs_t from the hash's fields (HGETALL: field, value, ...). */
static void prefs_from_reply(prefs_t *p, const redisReply *r)
{
    p->mode = default_mode;
    if (!p->always)
        p->always = hmap_new();
    if (!p->never)
        p->never = hmap_new();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i];
        if (f->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(f->str, "default") == 0 && r->element[i + 1]->type == REDIS_REPLY_STRING) {
            char m = mode_of(r->element[i + 1]->str);
            if (m)
                p->mode = m;
        } else if (strncmp(f->str, "a:", 2) == 0) {
            set_add(p->always, f->str + 2);
        } else if (strncmp(f->str, "n:", 2) == 0) {
            set_add(p->never, f->str + 2);
        }
    }
    p->loaded = 1;
}

static void on_prefs_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    char *bare = privdata;
    prefs_t *p = hmap_sget(prefs_cache, bare);
    redisReply *r = reply;
    if (p && !p->loaded && r && r->type == REDIS_REPLY_ARRAY)
        prefs_from_reply(p, r);
    free(bare);
}

static mod_result_t on_bound(hook_ev_t *ev)
{
    const char *bare = ev->session->user->bare;
    if (hmap_sget(prefs_cache, bare) || !rt.redis_ready)
        return MOD_PASS;
    prefs_t *p = xcalloc(1, sizeof *p);
    hmap_sput(prefs_cache, bare, p);
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_MAM_PREFS, bare);
    rt_redis_command(on_prefs_loaded, xstrdup(bare), "HGETALL %s", key);
    return MOD_PASS;
}

static mod_result_t on_freed(hook_ev_t *ev)
{
    user_t *u = ev->user ? ev->user : ev->session->user;
    if (u && !u->sessions)
        prefs_free(hmap_sdel(prefs_cache, u->bare));
    return MOD_PASS;
}

/* What archiving decides for one party. */
enum { ARCH_NO, ARCH_YES, ARCH_ASK /* not known here: the script decides in Redis */ };

/* XEP-0313 preferences: the never list, then the always list (a JID in both is never archived),
 * then the default; `other` is the other party's full (or bare) JID. */
static int decide(const user_t *u, const char *other, const char *other_bare)
{
    prefs_t *p = u ? hmap_sget(prefs_cache, u->bare) : NULL;
    if (!p || !p->loaded)
        return ARCH_ASK;
    if (hmap_sget(p->never, other) || hmap_sget(p->never, other_bare))
        return ARCH_NO;
    if (hmap_sget(p->always, other) || hmap_sget(p->always, other_bare))
        return ARCH_YES;
    if (p->mode == 'n')
        return ARCH_NO;
    if (p->mode == 'r') {
        if (u->roster_state != 2)
            return ARCH_ASK;
        const roster_item_t *it = roster_find((user_t *)u, other_bare);
        return it && !it->hidden ? ARCH_YES : ARCH_NO;
    }
    return ARCH_YES;
}

/* ---- Redis scripts ---- */

/* Archives one message for one user. KEYS: stream, conversation stream, contact index,
 * prefs, roster, account, blocklist. ARGV: id, with (full), with bare, dir, xml, minid,
 * ttl, check, default mode, with domain, now ms.
 * With check = 1 the script decides what the router could not (the user is not loaded):
 * the account exists, the other party is not blocked, the preferences allow it (XEP-0313
 * preferences; in 'roster' mode a roster item for the contact that is not hidden: the sixth flag
 * of user.c's encoding). Returns the id written, or
 * 0 when nothing was. The router's id is used unless the stream already holds a later one
 * (another router wrote there): then Redis picks one and the stamp already sent names an
 * id that is not in the archive (logged). */
static const char script_archive[] =
    "if ARGV[8] == '1' then "
    " if redis.call('EXISTS', KEYS[6]) == 0 then return 0 end "
    " if redis.call('SISMEMBER', KEYS[7], ARGV[2]) == 1 or "
    "    redis.call('SISMEMBER', KEYS[7], ARGV[3]) == 1 or "
    "    redis.call('SISMEMBER', KEYS[7], ARGV[10]) == 1 then return 0 end "
    " local p = redis.call('HMGET', KEYS[4], 'default', 'a:'..ARGV[2], 'a:'..ARGV[3], "
    "                      'n:'..ARGV[2], 'n:'..ARGV[3]) "
    " if p[4] or p[5] then return 0 end "
    " if not (p[2] or p[3]) then "
    "  local mode = p[1] or ARGV[9] "
    "  if mode == 'never' then return 0 end "
    "  if mode == 'roster' then "
    "   local it = redis.call('HGET', KEYS[5], ARGV[3]) "
    "   if not it or string.sub(it, 6, 6) == '1' then return 0 end "
    "  end "
    " end "
    "end "
    "local id = ARGV[1] "
    "local r = redis.pcall('XADD', KEYS[1], 'MINID', ARGV[6], id, 'with', ARGV[2], "
    "                      'dir', ARGV[4], 'xml', ARGV[5]) "
    "if type(r) == 'table' and r.err then "
    " id = redis.call('XADD', KEYS[1], 'MINID', ARGV[6], '*', 'with', ARGV[2], "
    "                 'dir', ARGV[4], 'xml', ARGV[5]) "
    "end "
    "redis.call('XADD', KEYS[2], 'MINID', ARGV[6], id, 'with', ARGV[2]) "
    "redis.call('ZADD', KEYS[3], ARGV[11], ARGV[3]) "
    "local ttl = tonumber(ARGV[7]) "
    "if ttl > 0 then "
    " redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (tonumber(ARGV[11]) - ttl * 1000)) "
    " redis.call('EXPIRE', KEYS[1], ttl) redis.call('EXPIRE', KEYS[2], ttl) "
    " redis.call('EXPIRE', KEYS[3], ttl) "
    "end "
    "return id";

/* Account deletion: KEYS: the contact index. ARGV: the conversation keys' common start.
 * Deletes every conversation stream the index names (they share the user's hash tag, so
 * one slot), then the index. */
static const char script_delete[] =
    "for _, c in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
    " redis.call('DEL', ARGV[1] .. c) end "
    "redis.call('DEL', KEYS[1]) return 1";

static char archive_sha[2 * SHA_DIGEST_LENGTH + 1];

/* ---- archiving ---- */

static int with_key(char *out, const char *bare, const char *contact)
{
    char base[STORAGE_KEY_MAX];
    if (storage_key(base, KEYS_MAM_WITH, bare) < 0)
        return -1;
    int n = snprintf(out, WITH_KEY_MAX, "%s:%s", base, contact);
    return n < 0 || n >= WITH_KEY_MAX ? -1 : n;
}

#define ARCH_ARGC 21

typedef struct {
    char *argv[ARCH_ARGC];
    size_t len[ARCH_ARGC];
} arch_req_t;

static void arch_req_free(arch_req_t *r)
{
    for (int i = 0; i < ARCH_ARGC; i++)
        free(r->argv[i]);
    free(r);
}

/* Writes whose reply never came (the connection went: Redis away, the router stopping):
 * logged once per run of them, not once each. */
static unsigned long lost;

static void note_reply(const redisReply *rep)
{
    if (rep) {
        lost = 0;
    } else if (lost++ == 0) {
        log_warn("mam: archive writes lost with the Redis connection (Redis went away or "
                 "the router is stopping)");
    }
}

/* Archive writes sent and not answered yet. Past MAM_INFLIGHT_MAX (Redis lags behind a
 * flood of messages) a message is routed without being archived or stamped, so what the
 * router holds for Redis stays bounded; counted in `skipped` and logged once per run. */
#define MAM_INFLIGHT_MAX 1024
static unsigned long inflight, skipped;

static void inflight_done(void)
{
    if (inflight)
        inflight--;
    if (!inflight && skipped) {
        log_warn("mam: %lu messages were not archived: Redis fell %d writes behind",
                 skipped, MAM_INFLIGHT_MAX);
        skipped = 0;
    }
}

/* argv: EVALSHA sha 7 KEYS[1..7] (3..9) ARGV[1..11] (10..20). */
static void on_archived(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    arch_req_t *r = privdata;
    redisReply *rep = reply;
    note_reply(rep);
    if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 &&
        rt.redis_ready) {
        /* The script is not cached yet (a new or restarted Redis): send it once. */
        free(r->argv[0]);
        free(r->argv[1]);
        r->argv[0] = xstrdup("EVAL");
        r->argv[1] = xstrdup(script_archive);
        r->len[0] = 4;
        r->len[1] = strlen(script_archive);
        if (rt_redis_command_argv(on_archived, r, ARCH_ARGC, (const char **)r->argv, r->len) ==
            REDIS_OK)
            return; /* still in flight */
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        log_warn("mam: archiving in %s failed: %s", r->argv[3], rep->str);
    } else if (rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, r->argv[10]) != 0) {
        log_warn("mam: %s held a later id than %s: stored as %s", r->argv[3], r->argv[10],
                 rep->str);
    }
    inflight_done();
    arch_req_free(r);
}

/* ---- the fast write path: the router decided (a user it holds, preferences known) ---- */

/* The keys' expiry is refreshed at most once per `slack` seconds per user and conversation
 * (to archive_expires_after + slack, so nothing goes early): the common write is two XADDs,
 * not a script (a Lua call costs Redis several times an XADD). */
static long expire_slack(void)
{
    return expires_after / 64;
}

/* What a retry needs (one allocation: the strings follow the record). */
typedef struct {
    const char *key, *wkey, *with, *dir, *xml;
    size_t xlen;
    char minid[ID_MAX];
} xadd_req_t;

static xadd_req_t *xadd_req_new(const char *key, const char *wkey, const char *with,
                                const char *dir, const char *xml, size_t xlen)
{
    size_t kl = strlen(key) + 1, wl = strlen(wkey) + 1, hl = strlen(with) + 1,
           dl = strlen(dir) + 1;
    xadd_req_t *r = xmalloc(sizeof *r + kl + wl + hl + dl + xlen);
    char *p = (char *)(r + 1);
    r->key = memcpy(p, key, kl);
    r->wkey = memcpy(p += kl, wkey, wl);
    r->with = memcpy(p += wl, with, hl);
    r->dir = memcpy(p += hl, dir, dl);
    r->xml = memcpy(p + dl, xml, xlen);
    r->xlen = xlen;
    return r;
}

static void xadd_req_free(xadd_req_t *r)
{
    free(r);
}

static void on_xadd_retried(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    xadd_req_t *r = privdata;
    redisReply *rep = reply;
    note_reply(rep);
    if (rep && rep->type == REDIS_REPLY_STRING) {
        rt_redis_command(rt_redis_ignore, NULL, "XADD %s MINID %s %s with %s", r->wkey, r->minid,
                         rep->str, r->with);
        log_warn("mam: %s held a later id than the router's: stored as %s (the stanza-id sent "
                 "names another)", r->key, rep->str);
    } else if (rep) {
        log_warn("mam: archiving in %s failed: %s", r->key,
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    }
    xadd_req_free(r);
}

static void on_xadded(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    xadd_req_t *r = privdata;
    redisReply *rep = reply;
    note_reply(rep);
    inflight_done();
    if (rep && rep->type == REDIS_REPLY_ERROR && rt.redis_ready &&
        strstr(rep->str, "equal or smaller")) {
        /* Another writer (a second router, a clock stepped back over a restart) put a later
         * id there: Redis picks one above it. */
        if (rt_redis_command(on_xadd_retried, r, "XADD %s MINID %s * with %s dir %s xml %b",
                             r->key, r->minid, r->with, r->dir, r->xml, r->xlen) == REDIS_OK)
            return;
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        log_warn("mam: archiving in %s failed: %s", r->key, rep->str);
    }
    xadd_req_free(r);
}

/* Bytes of archive writes queued on the Redis connection since it was last written to. */
static size_t unflushed;

/* hiredis queues commands in one output buffer that the event loop writes when the socket
 * is writable: in a burst (the router drains many stanzas per loop turn) it grows by
 * megabytes, and every growth copies it whole. Past 64 KiB the archive writes it out
 * itself, so the buffer stays small. */
static void maybe_flush(size_t added)
{
    unflushed += added;
    if (unflushed >= 65536 && rt.redis && rt.redis_ready) {
        unflushed = 0;
        redisAsyncHandleWrite(rt.redis);
    }
}

static void archive_fast(prefs_t *p, const char *owner, const char *id, const char *with,
                         const char *with_bare, const char *dir, const char *xml, size_t xlen)
{
    char key[STORAGE_KEY_MAX], wkey[WITH_KEY_MAX];
    if (storage_key(key, KEYS_MAM, owner) < 0 || with_key(wkey, owner, with_bare) < 0)
        return;
    xadd_req_t *r = xadd_req_new(key, wkey, with, dir, xml, xlen);
    sid_fmt(min_kept(), r->minid);
    /* argv, not a format string: hiredis sizes the command once instead of printf-ing it. */
    const char *argv[11] = {"XADD", key, "MINID", r->minid, id, "with", with, "dir", dir, "xml",
                            xml};
    size_t lens[11];
    for (int i = 0; i < 10; i++)
        lens[i] = strlen(argv[i]);
    lens[10] = xlen;
    if (rt_redis_command_argv(on_xadded, r, 11, argv, lens) != REDIS_OK) {
        xadd_req_free(r);
        return;
    }
    inflight++;
    argv[1] = wkey;
    lens[1] = strlen(wkey);
    rt_redis_command_argv(rt_redis_ignore, NULL, 7, argv, lens);
    maybe_flush(xlen + 2 * (strlen(key) + strlen(with)) + 128);
    uint64_t now = wall_ms();
    long ttl = expires_after ? expires_after + expire_slack() : 0;
    if (ttl && now >= p->expire_due) {
        rt_redis_command(rt_redis_ignore, NULL, "EXPIRE %s %ld", key, ttl);
        p->expire_due = now + (uint64_t)expire_slack() * 1000u;
    }
    if (!p->conv_due)
        p->conv_due = hmap_new();
    uint64_t *due = hmap_sget(p->conv_due, with_bare);
    if (!due || now >= *due) {
        char idx[STORAGE_KEY_MAX];
        storage_key(idx, KEYS_MAM_INDEX, owner);
        rt_redis_command(rt_redis_ignore, NULL, "ZADD %s %llu %s", idx, (unsigned long long)now,
                         with_bare);
        if (ttl) {
            rt_redis_command(rt_redis_ignore, NULL, "ZREMRANGEBYSCORE %s -inf (%llu", idx,
                             (unsigned long long)(now - (uint64_t)expires_after * 1000u));
            rt_redis_command(rt_redis_ignore, NULL, "EXPIRE %s %ld", idx, ttl);
            rt_redis_command(rt_redis_ignore, NULL, "EXPIRE %s %ld", wkey, ttl);
        }
        if (!due) {
            /* Bounded by the contacts written to while the user is held (the cache entry
             * goes with the last session). */
            due = xmalloc(sizeof *due);
            hmap_sput(p->conv_due, with_bare, due);
        }
        *due = now + (uint64_t)expire_slack() * 1000u;
    }
}

/* Archives `xml` in `owner`'s archive under `id` with script_archive: the other party
 * `with` (full JID) and its bare JID, the direction ("in" or "out"), and whether the script
 * must decide first (`check`: the router does not hold that user). */
static void archive_write(const char *owner, const char *id, const char *with,
                          const char *with_bare, const char *dir, const char *xml, size_t xlen,
                          int check)
{
    char k[7][WITH_KEY_MAX];
    static const char *const kinds[7] = {KEYS_MAM, NULL, KEYS_MAM_INDEX, KEYS_MAM_PREFS,
                                         KEYS_ROSTER, KEYS_ACCOUNT, KEYS_BLOCKLIST};
    for (int i = 0; i < 7; i++)
        if ((i == 1 ? with_key(k[1], owner, with_bare) : storage_key(k[i], kinds[i], owner)) < 0)
            return;
    const char *dom = strchr(with_bare, '@');
    dom = dom ? dom + 1 : with_bare;
    char minid[ID_MAX], ttl[24], now[24];
    sid_fmt(min_kept(), minid);
    snprintf(ttl, sizeof ttl, "%ld", expires_after);
    snprintf(now, sizeof now, "%" PRIu64, wall_ms());
    const char *args[ARCH_ARGC] = {"EVALSHA", archive_sha, "7", k[0], k[1], k[2], k[3], k[4],
                                   k[5], k[6], id, with, with_bare, dir, NULL, minid, ttl,
                                   check ? "1" : "0", mode_name(default_mode), dom, now};
    arch_req_t *r = xcalloc(1, sizeof *r);
    for (int i = 0; i < ARCH_ARGC; i++) {
        if (i == 14) {
            r->argv[i] = xstrndup(xml, xlen);
            r->len[i] = xlen;
        } else {
            r->argv[i] = xstrdup(args[i]);
            r->len[i] = strlen(args[i]);
        }
    }
    if (rt_redis_command_argv(on_archived, r, ARCH_ARGC, (const char **)r->argv, r->len) !=
        REDIS_OK)
        arch_req_free(r);
    else
        inflight++;
}

/* What the cheap test finds first: a message holding none of these names is not parsed. */
static int may_qualify(const char *p, size_t n)
{
    return memmem(p, n, "<body", 5) || memmem(p, n, "encrypted", 9) ||
           memmem(p, n, "openpgp", 7) || memmem(p, n, "replace", 7) ||
           memmem(p, n, "retract", 7) || memmem(p, n, "reactions", 9);
}

static int is(const xml_node_t *ch, const char *name, const char *ns)
{
    return strcmp(ch->name, name) == 0 && strcmp(ch->ns, ns) == 0;
}


static int kid_is(const stanza_kid_t *k, const char *name, const char *ns)
{
    size_t nl = strlen(name), sl = strlen(ns);
    return k->nlen == nl && memcmp(k->name, name, nl) == 0 && k->nslen == sl &&
           memcmp(k->ns, ns, sl) == 0;
}

/* worth_archiving on scanned children: 1 yes, 0 no, -1 when the tree is needed (a
 * <stanza-id/> to check for forgery, an <apply-to/> to look into). */
static int worth_kids(const stanza_kid_t *kids, int n)
{
    int want = 0;
    for (int i = 0; i < n; i++) {
        const stanza_kid_t *k = &kids[i];
        if (kid_is(k, "stanza-id", NS_SID) || kid_is(k, "apply-to", "urn:xmpp:fasten:0"))
            return -1;
        if (kid_is(k, "sent", NS_CARBONS) || kid_is(k, "received", NS_CARBONS) ||
            kid_is(k, "no-store", "urn:xmpp:hints") ||
            kid_is(k, "no-permanent-store", "urn:xmpp:hints"))
            return 0;
        if (kid_is(k, "body", XML_NS_CLIENT) ||
            kid_is(k, "encrypted", "eu.siacs.conversations.axolotl") ||
            kid_is(k, "encrypted", "urn:xmpp:omemo:2") ||
            kid_is(k, "openpgp", "urn:xmpp:openpgp:0") || kid_is(k, "x", "jabber:x:encrypted") ||
            kid_is(k, "replace", "urn:xmpp:message-correct:0") ||
            kid_is(k, "retract", "urn:xmpp:message-retract:1") ||
            kid_is(k, "retract", "urn:xmpp:message-retract:0") ||
            kid_is(k, "reactions", "urn:xmpp:reactions:0"))
            want = 1;
    }
    return want;
}

static void stamp_text(buf_t *b, const char *by, const char *id)
{
    buf_append_str(b, "<stanza-id xmlns=\"" NS_SID "\" by=\"");
    xml_escape(b, by, strlen(by));
    buf_append_str(b, "\" id=\"");
    buf_append_str(b, id);
    buf_append_str(b, "\"/>");
}

/* XEP-0359 ("Business rules"): a <stanza-id/> claiming to be by an address this server stamps for
 * is a forgery and goes. */
static int remove_forged(xml_node_t *st, const char *a, const char *b)
{
    int removed = 0;
    xml_node_t *ch = st->children;
    while (ch) {
        xml_node_t *next = ch->next;
        if (ch->name && ch->ns && is(ch, "stanza-id", NS_SID)) {
            const char *by = xml_node_attr(ch, "by");
            if (!by || (a && strcmp(by, a) == 0) || (b && strcmp(by, b) == 0)) {
                xml_node_remove_child(st, ch);
                xml_node_free(&ch);
                removed++;
            }
        }
        ch = next;
    }
    return removed;
}

static void add_stanza_id(xml_node_t *st, const char *by, const char *id)
{
    xml_node_t *s = xml_node_new_child(st, "stanza-id", NS_SID);
    xml_node_set_attr(s, "by", by);
    xml_node_set_attr(s, "id", id);
}

/* Stamps when the party archives it, or may (the script decides) and the server default
 * archives: an unloaded user's own preferences are read only in Redis, after routing. */
static int stamps(int d)
{
    return d == ARCH_YES || (d == ARCH_ASK && default_mode != 'n');
}

static buf_t out_buf;   /* the rewritten stanza, valid until routing ends (hook.h) */
static buf_t store_buf; /* what is archived, when the stanza had to be parsed */

/* XEP-0359 ("Security Considerations"): a message that is not archived (so not stamped)
 * still loses the stanza-ids the client forged in the name of either party, which the
 * recipient would otherwise take for the archive's. */
static mod_result_t strip_forged(hook_ev_t *ev, const char *a, const char *b)
{
    if (!memmem(ev->payload, ev->len, "stanza-id", 9))
        return MOD_PASS;
    xml_node_t *st = stanza_parse(ev->payload, ev->len);
    if (st && remove_forged(st, a, b)) {
        buf_clear(&out_buf);
        xml_serialize(st, XML_NS_CLIENT, &out_buf);
        ev->payload = out_buf.data;
        ev->len = out_buf.len;
    }
    xml_node_free(&st);
    return MOD_PASS;
}

/* A message between a local user and any address (hook.h, HOOK_STANZA_OUT): from a client
 * to a local account (archived for both, stamped), to another domain (the sender's
 * archive, direction 'out'), or from another domain to a local account (no session; the
 * recipient's archive, 'in'). A party at another domain keeps its own archive: its
 * stanza-ids are not ours to judge or add. */
static mod_result_t on_stanza_out(hook_ev_t *ev)
{
    const ipc_stanza_t *h = ev->msg;
    if (h->kind != IPC_KIND_MESSAGE || !enabled)
        return MOD_PASS;
    session_t *s = ev->session;
    char to_bare[JID_MAX + 1], sender_bare[JID_MAX + 1];
    const char *slash = strchr(ev->to, '/');
    size_t bl = slash ? (size_t)(slash - ev->to) : strlen(ev->to);
    if (bl >= sizeof to_bare)
        return MOD_PASS;
    memcpy(to_bare, ev->to, bl);
    to_bare[bl] = '\0';
    const char *sender = s ? s->full : ev->from;
    if (!sender)
        return MOD_PASS;
    size_t sl = strcspn(sender, "/");
    if (sl >= sizeof sender_bare)
        return MOD_PASS;
    memcpy(sender_bare, sender, sl);
    sender_bare[sl] = '\0';
    /* The parties whose archives live here (NULL: another domain's). */
    const char *mine_from = s ? sender_bare : NULL;
    const char *mine_to = remote_jid(to_bare) ? NULL : to_bare;
    if ((h->stype != IPC_ST_NONE && h->stype != IPC_ST_NORMAL && h->stype != IPC_ST_CHAT) ||
        !may_qualify(ev->payload, ev->len) || !rt.redis_ready || !memchr(ev->to, '@', bl))
        return strip_forged(ev, mine_from, mine_to);
    /* Most messages are read off their bytes; the tree is built only when a child needs
     * looking into (a stanza-id that may be forged) or the bytes are not canonical. */
    stanza_kid_t kids[STANZA_KIDS_MAX];
    size_t close = 0;
    int nk = stanza_scan_children(ev->payload, ev->len, kids, STANZA_KIDS_MAX, &close);
    int w = nk < 0 ? -1 : worth_kids(kids, nk);
    if (w == 0)
        return strip_forged(ev, mine_from, mine_to);
    xml_node_t *st = NULL;
    if (w < 0) {
        st = stanza_parse(ev->payload, ev->len);
        if (!st)
            return MOD_PASS;
        if (!mamq_worth(st, 0)) {
            xml_node_free(&st);
            return strip_forged(ev, mine_from, mine_to);
        }
    }
    if (inflight >= MAM_INFLIGHT_MAX) {
        skipped++;
        if (st)
            xml_node_free(&st);
        return strip_forged(ev, mine_from, mine_to);
    }
    const char *from_bare = sender_bare;
    int self = strcmp(from_bare, to_bare) == 0;
    int ds = s ? decide(s->user, ev->to, to_bare) : ARCH_NO;
    int dr = ARCH_NO;
    if (!self && mine_to) {
        user_t *ru = user_find(to_bare);
        if (ru && ru->roster_state == 2) {
            if (!ru->exists || user_blocks(ru, sender)) {
                /* Bounced (no such account, XEP-0191 3.2): in neither archive. When the
                 * router does not hold the recipient this is only known in Redis, by the
                 * script, after the sender's copy is written: then the sender's archive
                 * keeps what it sent, as the sender saw it go. */
                if (st)
                    xml_node_free(&st);
                return MOD_PASS;
            }
            dr = decide(ru, sender, from_bare);
        } else {
            dr = ARCH_ASK; /* the script checks the account, the blocklist, the prefs */
        }
    }
    char id[ID_MAX];
    sid_fmt(next_id(), id);
    buf_clear(&out_buf);
    /* What the archives keep: the message as sent, forged stanza-ids removed and without
     * the stamps (each result names its archive id itself in result@id). */
    const char *sxml = ev->payload;
    size_t slen = ev->len;
    if (st) {
        remove_forged(st, mine_from, mine_to);
        buf_clear(&store_buf);
        xml_serialize(st, XML_NS_CLIENT, &store_buf);
        sxml = store_buf.data;
        slen = store_buf.len;
        if (stamps(dr))
            add_stanza_id(st, to_bare, id);
        if (stamps(ds))
            add_stanza_id(st, from_bare, id);
        xml_serialize(st, XML_NS_CLIENT, &out_buf);
        xml_node_free(&st);
    } else {
        buf_append(&out_buf, ev->payload, close);
        if (stamps(dr))
            stamp_text(&out_buf, to_bare, id);
        if (stamps(ds))
            stamp_text(&out_buf, from_bare, id);
        buf_append(&out_buf, ev->payload + close, ev->len - close);
    }
    ev->payload = out_buf.data;
    ev->len = out_buf.len;
    if (ds == ARCH_YES)
        archive_fast(hmap_sget(prefs_cache, from_bare), from_bare, id, ev->to, to_bare, "out",
                     sxml, slen);
    else if (ds == ARCH_ASK)
        archive_write(from_bare, id, ev->to, to_bare, "out", sxml, slen, 1);
    if (dr == ARCH_YES)
        archive_fast(hmap_sget(prefs_cache, to_bare), to_bare, id, sender, from_bare, "in",
                     sxml, slen);
    else if (dr == ARCH_ASK)
        archive_write(to_bare, id, sender, from_bare, "in", sxml, slen, 1);
    return MOD_PASS;
}

/* ---- iq requests answered after Redis replies ---- */

typedef struct {
    char *full;
    xml_node_t *st;
} req_t;

static req_t *req_new(const mod_iq_t *iq)
{
    req_t *r = xcalloc(1, sizeof *r);
    r->full = xstrdup(iq->from->full);
    r->st = xml_node_copy(iq->st);
    return r;
}

static void req_free(req_t *r)
{
    free(r->full);
    xml_node_free(&r->st);
    free(r);
}

/* The requester, or NULL (then the request is freed) when the session is gone. */
static session_t *req_session(req_t *r, const redisReply *rep)
{
    session_t *s = session_find_jid(r->full);
    if (s && (!rep || rep->type == REDIS_REPLY_ERROR)) {
        if (rep)
            log_warn("mam: %s", rep->str);
        session_reply_error(s, r->st, "wait", "internal-server-error");
        s = NULL;
    }
    if (!s)
        req_free(r);
    return s;
}

static void redis_away(const mod_iq_t *iq)
{
    session_reply_error(iq->from, iq->st, "wait", "internal-server-error");
}

/* ---- queries (XEP-0313 "Querying an archive": mamq.h parses, mamrun.h runs) ---- */


/* What every archive request checks first: the archive is on (else the next handler,
 * which is none: service-unavailable), it is the asker's own (XEP-0313: a user's archive is
 * the user's own), and, when `redis` is set, Redis is there. Returns 1 to go on; 0 when
 * `*res` is the answer. */
static int mam_iq_admitted(mod_iq_t *iq, int redis, mod_result_t *res)
{
    *res = MOD_HANDLED;
    if (!enabled) {
        *res = MOD_PASS;
        return 0;
    }
    if (iq->at == MOD_AT_ACCOUNT) {
        session_reply_error(iq->from, iq->st, "cancel", "forbidden");
        return 0;
    }
    if (redis && !rt.redis_ready) {
        redis_away(iq);
        return 0;
    }
    return 1;
}

static mod_result_t mam_query(mod_iq_t *iq)
{
    mod_result_t res;
    if (!mam_iq_admitted(iq, 0, &res))
        return res;
    if (!iq->set) {
        session_reply_result(iq->from, iq->st, mamq_form());
        return MOD_HANDLED;
    }
    mamq_query_t q;
    const char *etype = NULL, *cond = NULL;
    if (mamq_query_parse(iq->payload, max_page, min_kept(), &q, &etype, &cond) < 0) {
        session_reply_error(iq->from, iq->st, etype, cond);
        goto out;
    }
    if (!rt.redis_ready) {
        redis_away(iq);
        goto out;
    }
    const char *owner = iq->from->user->bare;
    char key[STORAGE_KEY_MAX], src[WITH_KEY_MAX];
    storage_key(key, KEYS_MAM, owner);
    if (!q.have_ids && *q.with_bare) {
        /* A 'with' query reads the conversation's own stream. */
        if (with_key(src, owner, q.with_bare) < 0) {
            session_reply_error(iq->from, iq->st, "modify", "bad-request");
            goto out;
        }
    } else {
        memcpy(src, key, strlen(key) + 1);
    }
    if (mamrun_query(iq->from->full, iq->st, owner, &q, key, src, q.with_full, min_kept()) < 0)
        redis_away(iq);
out:
    mamq_query_free(&q);
    return MOD_HANDLED;
}

/* ---- archive metadata (XEP-0313 <metadata/>: the first and the last message) ---- */

static mod_result_t mam_metadata(mod_iq_t *iq)
{
    mod_result_t res;
    if (!mam_iq_admitted(iq, 1, &res))
        return res;
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_MAM, iq->from->user->bare);
    if (mamrun_metadata(iq->from->full, iq->st, key, min_kept()) < 0)
        redis_away(iq);
    return MOD_HANDLED;
}

/* ---- preferences (XEP-0313 "Archiving preferences") ---- */

static void add_jids(xml_node_t *prefs, const char *name, hmap_t *set)
{
    xml_node_t *l = xml_node_new_child(prefs, name, NS_MAM);
    size_t pos = 0;
    const void *k;
    size_t kl;
    void *v;
    while (set && hmap_next(set, &pos, &k, &kl, &v)) {
        xml_node_t *j = xml_node_new_child(l, "jid", NS_MAM);
        xml_node_add_text(j, v, strlen(v));
    }
}

static xml_node_t *prefs_xml(const prefs_t *p)
{
    xml_node_t *x = xml_node_new("prefs", NS_MAM);
    xml_node_set_attr(x, "default", mode_name(p->mode));
    add_jids(x, "always", p->always);
    add_jids(x, "never", p->never);
    return x;
}

static void on_prefs_read(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    req_t *r = privdata;
    redisReply *rep = reply;
    session_t *s = req_session(r, rep);
    if (!s)
        return;
    prefs_t p = {0};
    prefs_from_reply(&p, rep);
    session_reply_result(s, r->st, prefs_xml(&p));
    hmap_destroy_all(&p.always, free);
    hmap_destroy_all(&p.never, free);
    req_free(r);
}

/* EXEC of the prefs write: answer with the prefs as stored (XEP-0313). */
typedef struct {
    req_t *r;
    prefs_t *p;
} prefs_set_t;

static void on_prefs_written(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    prefs_set_t *ps = privdata;
    redisReply *rep = reply;
    session_t *s = req_session(ps->r, rep && rep->type == REDIS_REPLY_ARRAY ? rep : NULL);
    if (s) {
        session_reply_result(s, ps->r->st, prefs_xml(ps->p));
        req_free(ps->r);
    }
    prefs_free(ps->p);
    free(ps);
}

/* Reads the <jid/>s of <always/> or <never/> into `set`; -1 on a bad JID or too many. */
static int read_jids(const xml_node_t *l, hmap_t *set, long *count)
{
    for (const xml_node_t *j = l ? l->children : NULL; j; j = j->next) {
        if (!j->name || strcmp(j->name, "jid") != 0)
            continue;
        char *t = mamq_text(j);
        jid_t jid;
        char norm[JID_MAX + 1];
        int ok = jid_parse(&jid, t) == 0 && jid_full(&jid, norm, sizeof norm) >= 0;
        free(t);
        if (!ok || ++*count > max_prefs)
            return -1;
        set_add(set, norm);
    }
    return 0;
}

static mod_result_t mam_prefs(mod_iq_t *iq)
{
    mod_result_t res;
    if (!mam_iq_admitted(iq, 1, &res))
        return res;
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_MAM_PREFS, iq->from->user->bare);
    if (!iq->set) {
        req_t *r = req_new(iq);
        if (rt_redis_command(on_prefs_read, r, "HGETALL %s", key) != REDIS_OK) {
            redis_away(iq);
            req_free(r);
        }
        return MOD_HANDLED;
    }
    char mode = mode_of(xml_node_attr(iq->payload, "default"));
    prefs_t *p = xcalloc(1, sizeof *p);
    p->always = hmap_new();
    p->never = hmap_new();
    p->mode = mode;
    p->loaded = 1;
    long count = 0;
    if (!mode || read_jids(xml_node_child(iq->payload, "always", NS_MAM), p->always, &count) < 0 ||
        read_jids(xml_node_child(iq->payload, "never", NS_MAM), p->never, &count) < 0) {
        session_reply_error(iq->from, iq->st, "modify", count > max_prefs ? "policy-violation"
                                                                         : "bad-request");
        prefs_free(p);
        return MOD_HANDLED;
    }
    /* DEL, then HSET of every field, in one transaction. */
    size_t n = 5 + 2 * (size_t)count, argc = 0;
    const char **argv = xcalloc(n, sizeof *argv);
    char **owned = xcalloc(n, sizeof *owned);
    argv[argc++] = "HSET";
    argv[argc++] = key;
    argv[argc++] = "default";
    argv[argc++] = mode_name(mode);
    hmap_t *sets[2] = {p->always, p->never};
    for (int k = 0; k < 2; k++) {
        size_t pos = 0;
        const void *kk;
        size_t kl;
        void *v;
        while (hmap_next(sets[k], &pos, &kk, &kl, &v)) {
            buf_t b = BUF_INIT;
            buf_printf(&b, "%s:%s", k == 0 ? "a" : "n", (const char *)v);
            owned[argc] = buf_steal(&b);
            argv[argc] = owned[argc];
            argc++;
            argv[argc++] = "1";
        }
    }
    prefs_set_t *ps = xcalloc(1, sizeof *ps);
    ps->r = req_new(iq);
    ps->p = p;
    rt_redis_command(rt_redis_ignore, NULL, "MULTI");
    rt_redis_command(rt_redis_ignore, NULL, "DEL %s", key);
    rt_redis_command_argv(rt_redis_ignore, NULL, (int)argc, argv, NULL);
    if (rt_redis_command(on_prefs_written, ps, "EXEC") != REDIS_OK) {
        redis_away(iq);
        req_free(ps->r);
        prefs_free(p);
        free(ps);
    } else {
        /* Routing decides from now on with the new preferences (the writes are queued
         * in order on the one connection). */
        prefs_t *c = hmap_sget(prefs_cache, iq->from->user->bare);
        if (c) {
            hmap_destroy_all(&c->always, free);
            hmap_destroy_all(&c->never, free);
            c->always = hmap_new();
            c->never = hmap_new();
            for (int k = 0; k < 2; k++) {
                size_t pos = 0;
                const void *kk;
                size_t kl;
                void *v;
                while (hmap_next(sets[k], &pos, &kk, &kl, &v))
                    set_add(k == 0 ? c->always : c->never, v);
            }
            c->mode = mode;
            c->loaded = 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(argv);
    return MOD_HANDLED;
}

/* ---- account deletion ---- */

static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    if (!ev->user)
        return MOD_PASS;
    const char *bare = ev->user->bare;
    char idx[STORAGE_KEY_MAX], base[WITH_KEY_MAX];
    storage_key(idx, KEYS_MAM_INDEX, bare);
    with_key(base, bare, "");
    /* Queued before the account's own DEL: the conversation streams the index names go
     * first (the index is removed by the same script). */
    rt_redis_command(rt_redis_ignore, NULL, "EVAL %s 1 %s %s", script_delete, idx, base);
    account_data_key(ev, KEYS_MAM);
    account_data_key(ev, KEYS_MAM_PREFS);
    account_data_key(ev, KEYS_MAM_INDEX);
    prefs_free(hmap_sdel(prefs_cache, bare));
    return MOD_PASS;
}

/* ---- registration ---- */

static int is_enabled(void)
{
    return enabled;
}

static void mam_open(void)
{
    enabled = config_bool("mam_enabled");
    expires_after = config_int("archive_expires_after");
    max_page = config_int("mam_max_page");
    max_prefs = config_int("mam_max_prefs_jids");
    default_mode = mode_of(config_str("mam_default"));
    if (!default_mode) {
        log_warn("mam: mam_default '%s' is not always, never or roster: always",
                 config_str("mam_default"));
        default_mode = 'a';
    }
    prefs_cache = hmap_new();
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)script_archive, strlen(script_archive), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(archive_sha + 2 * i, 3, "%02x", md[i]);
}

static void mam_close(void)
{
    hmap_destroy_all(&prefs_cache, prefs_free);
    buf_free(&out_buf);
    buf_free(&store_buf);
}

#define SELF (MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT)

static const mod_iq_handler_t iq_handlers[] = {
    {NS_MAM, "query", MOD_GET | MOD_SET, SELF, mam_query},
    {NS_MAM, "metadata", MOD_GET, SELF, mam_metadata},
    {NS_MAM, "prefs", MOD_GET | MOD_SET, SELF, mam_prefs},
    {0},
};

/* Clients look on the account's bare JID (Conversations, Dino) and some on the server:
 * Profanity 0.13 asks only the domain before it queries the archive of an opened chat. */
static const mod_feature_t features[] = {
    {NS_MAM, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, is_enabled},
    {NS_MAM_EXT, MOD_AT_SELF | MOD_AT_ACCOUNT, is_enabled},
    {NS_SID, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, is_enabled},
    {0},
};

/* After blocking (100: a blocked message is neither routed nor archived), before carbons
 * (50: the carbon copies carry the stamped message). */
static const mod_hook_t hooks[] = {
    {HOOK_STANZA_OUT, 75, on_stanza_out},
    {HOOK_SESSION_BOUND, 0, on_bound},
    {HOOK_SESSION_FREED, 0, on_freed},
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {0},
};

static const config_key_t config[] = {
    CONFIG_BOOL("mam_enabled", "true", "keep a XEP-0313 message archive per account; off: nothing is archived or stamped and the archive is not offered"),
    CONFIG_STR("mam_default", "always", "XEP-0313 default archiving preference of an account that set none: always, never or roster"),
    CONFIG_INT("archive_expires_after", "604800", 0, 3153600000L, "seconds a message stays in the archive (XEP-0313); 0 keeps it forever"),
    CONFIG_INT("mam_max_page", "100", 1, 10000, "most archived messages one XEP-0313 query returns (a larger RSM max is lowered to it); also the most ids one query may name"),
    CONFIG_INT("mam_max_prefs_jids", "200", 0, 100000, "most JIDs in one account's XEP-0313 always and never lists together"),
    CONFIG_END,
};

module_t mod_mam = {
    .name = "mam",
    .iq = iq_handlers,
    .features = features,
    .hooks = hooks,
    .config = config,
    .open = mam_open,
    .close = mam_close,
};
