/* muc_archive: a room's messages (muc.h): the XEP-0359 stanza-id the room stamps on each
 * message it reflects, the history an occupant gets on joining (XEP-0045 section 7.2.15),
 * and the room's XEP-0313 archive (section "Querying a MUC archive"), with expiry.
 *
 * Storage (keys.h KEYS_MUC_ARCHIVE): one Redis stream per room, PREFIX "mucmam:{ROOM}",
 * whose entry ids the router chooses (mamq_next_id, shared with the users' archives: ids
 * strictly increase for the router's life) so the stanza-id is known before Redis answers;
 * fields with = the sender's room JID (room/nick), k = m (a message) or s (a subject change),
 * xml = the message as reflected, without 'to'. A write is an XADD that trims the stream to
 * muc_archive_max_messages, then, with muc_archive_expires_after, an XTRIM by MINID and an
 * EXPIRE; no scan ever. Queries and metadata run with core/mamrun.c like the users'. */
#include <errno.h>
#include <hiredis/async.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "deliver.h"
#include "jid.h"
#include "keys.h"
#include "log.h"
#include "mamq.h"
#include "mamrun.h"
#include "remote.h"
#include "modules.h"
#include "muc.h"
#include "route.h"
#include "router.h"
#include "stanza.h"
#include "storage.h"
#include "types.h"
#include "util.h"

/* History sent on one join at most, whatever the room and the service say. */
#define MUC_HISTORY_HARD_MAX 1000
/* Archive writes sent and not answered yet; past this (Redis lags behind a flood) a
 * message is reflected and stamped but not stored, so the router's memory stays bounded. */
#define MUC_INFLIGHT_MAX 1024

static long expires_after; /* muc_archive_expires_after: seconds, 0 keeps forever */
static long max_messages;  /* muc_archive_max_messages: per room */
static long max_page;      /* muc_archive_max_page */
static unsigned long inflight, skipped, lost;

static mamq_id_t min_kept(void)
{
    return mamq_min_kept(expires_after, mamq_now_ms());
}

static int room_key(char *out, const char *room)
{
    return storage_key(out, KEYS_MUC_ARCHIVE, room);
}

/* ---- history request (XEP-0045 section 7.2.15) ---- */

/* A non-negative decimal attribute: 0 (absent: *out = -1), or -1 when malformed. A value
 * too large to matter is clamped. */
static int attr_count(const xml_node_t *h, const char *name, long *out)
{
    const char *v = xml_node_attr(h, name);
    *out = -1;
    if (!v)
        return 0;
    if (!*v || strspn(v, "0123456789") != strlen(v))
        return -1;
    errno = 0;
    long n = strtol(v, NULL, 10);
    *out = errno == ERANGE ? 1000000000L : n > 1000000000L ? 1000000000L : n;
    return 0;
}

int muc_history_parse(const xml_node_t *history, muc_history_req_t *out)
{
    out->maxchars = out->maxstanzas = out->seconds = -1;
    out->since_ms = -1;
    if (!history)
        return 0;
    muc_history_req_t r = {-1, -1, -1, -1};
    if (attr_count(history, "maxchars", &r.maxchars) < 0 ||
        attr_count(history, "maxstanzas", &r.maxstanzas) < 0 ||
        attr_count(history, "seconds", &r.seconds) < 0)
        return -1;
    const char *since = xml_node_attr(history, "since");
    if (since) {
        int64_t ms;
        if (mamq_parse_datetime(since, &ms) < 0)
            return -1;
        r.since_ms = ms;
    }
    *out = r;
    return 0;
}

/* ---- stamping and storing ---- */

static int is_sid(const xml_node_t *ch)
{
    return ch->name && ch->ns && strcmp(ch->name, "stanza-id") == 0 && strcmp(ch->ns, NS_SID) == 0;
}

/* XEP-0359 section 4 ("Business rules"): a <stanza-id/> claiming to be by the room (or by
 * nobody) in what an occupant sent is a forgery and goes; `by` is compared prepared, so
 * another spelling of the room's JID goes too. */
static void remove_forged(xml_node_t *msg, const char *room)
{
    xml_node_t *ch = msg->children;
    while (ch) {
        xml_node_t *next = ch->next;
        if (is_sid(ch)) {
            const char *by = xml_node_attr(ch, "by");
            jid_t j;
            char bare[JID_MAX + 1];
            if (!by || jid_parse(&j, by) < 0 || jid_bare(&j, bare, sizeof bare) < 0 ||
                (!*j.resource && strcmp(bare, room) == 0)) {
                xml_node_remove_child(msg, ch);
                xml_node_free(&ch);
            }
        }
        ch = next;
    }
}

typedef struct {
    char *key, *with, *kind, *xml;
    size_t xlen;
} add_req_t;

static void add_req_free(add_req_t *r)
{
    free(r->key);
    free(r->with);
    free(r->kind);
    free(r->xml);
    free(r);
}

static void note_reply(const redisReply *rep)
{
    if (rep) {
        lost = 0;
    } else if (lost++ == 0) {
        log_warn("muc: room archive writes lost with the Redis connection (Redis went away "
                 "or the router is stopping)");
    }
}

static void inflight_done(void)
{
    if (inflight)
        inflight--;
    if (!inflight && skipped) {
        log_warn("muc: %lu room messages were not archived: Redis fell %d writes behind",
                 skipped, MUC_INFLIGHT_MAX);
        skipped = 0;
    }
}

static void on_retried(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    add_req_t *r = privdata;
    redisReply *rep = reply;
    note_reply(rep);
    if (rep && rep->type == REDIS_REPLY_STRING)
        log_warn("muc: %s held a later id than the router's: stored as %s (the stanza-id sent "
                 "names another)", r->key, rep->str);
    else if (rep)
        log_warn("muc: archiving in %s failed: %s", r->key,
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    add_req_free(r);
}

static void on_added(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    add_req_t *r = privdata;
    redisReply *rep = reply;
    note_reply(rep);
    inflight_done();
    if (rep && rep->type == REDIS_REPLY_ERROR && rt.redis_ready &&
        strstr(rep->str, "equal or smaller")) {
        /* Another writer (a second router, a clock stepped back over a restart) put a later
         * id there: Redis picks one above it. */
        char cap[24];
        snprintf(cap, sizeof cap, "%ld", max_messages);
        if (rt_redis_command(on_retried, r, "XADD %s MAXLEN %s * with %s k %s xml %b", r->key,
                             cap, r->with, r->kind, r->xml, r->xlen) == REDIS_OK)
            return;
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        log_warn("muc: archiving in %s failed: %s", r->key, rep->str);
    }
    add_req_free(r);
}

/* Only a subject, no body: replayed by the room itself after history, not in it. */
static int subject_only(const xml_node_t *msg)
{
    return xml_node_child(msg, "subject", XML_NS_CLIENT) &&
           !xml_node_child(msg, "body", XML_NS_CLIENT);
}

void muc_archive_add(const char *room, xml_node_t *msg, int archive)
{
    remove_forged(msg, room);
    char id[MAMQ_ID_MAX];
    mamq_id_fmt(mamq_next_id(), id);
    xml_node_t *s = xml_node_new_child(msg, "stanza-id", NS_SID);
    xml_node_set_attr(s, "by", room);
    xml_node_set_attr(s, "id", id);
    const char *from = xml_node_attr(msg, "from");
    if (!archive || !from || !rt.redis_ready || !mamq_worth(msg, 1))
        return;
    if (inflight >= MUC_INFLIGHT_MAX) {
        skipped++;
        return;
    }
    char key[STORAGE_KEY_MAX];
    if (room_key(key, room) < 0)
        return;
    /* Stored as reflected but addressed to nobody: history and results set 'to'. */
    xml_node_t *copy = xml_node_copy(msg);
    xml_node_set_attr(copy, "to", NULL);
    buf_t b = BUF_INIT;
    xml_serialize(copy, XML_NS_CLIENT, &b);
    xml_node_free(&copy);
    add_req_t *r = xcalloc(1, sizeof *r);
    r->key = xstrdup(key);
    r->with = xstrdup(from);
    r->kind = xstrdup(subject_only(msg) ? "s" : "m");
    r->xlen = b.len;
    r->xml = buf_steal(&b);
    char cap[24];
    snprintf(cap, sizeof cap, "%ld", max_messages);
    const char *argv[12] = {"XADD", key, "MAXLEN", cap, id, "with", r->with, "k", r->kind,
                            "xml", r->xml};
    size_t lens[12];
    for (int i = 0; i < 10; i++)
        lens[i] = strlen(argv[i]);
    lens[10] = r->xlen;
    if (rt_redis_command_argv(on_added, r, 11, argv, lens) != REDIS_OK) {
        add_req_free(r);
        return;
    }
    inflight++;
    if (expires_after > 0) {
        char minid[MAMQ_ID_MAX];
        mamq_id_fmt(min_kept(), minid);
        rt_redis_command(rt_redis_ignore, NULL, "XTRIM %s MINID %s", key, minid);
        /* A little longer than the newest entry lives, so nothing goes early. */
        rt_redis_command(rt_redis_ignore, NULL, "EXPIRE %s %ld", key,
                         expires_after + expires_after / 64 + 60);
    }
}

/* ---- history on join ---- */

/* The newest messages (not subject changes) from ARGV[1] (the oldest id wanted) on, at most
 * ARGV[2] of them, newest first. KEYS: the room's stream. Reads in batches, so subject
 * changes among them cost a little more reading, never a scan of the whole stream. */
static const char script_history[] =
    "local key, lo, n = KEYS[1], ARGV[1], tonumber(ARGV[2]) "
    "local out, hi, batch = {}, '+', n + 8 "
    "while #out < n do "
    " local r = redis.call('XREVRANGE', key, hi, lo, 'COUNT', batch) "
    " for _, e in ipairs(r) do "
    "  local kind = nil "
    "  for i = 1, #e[2], 2 do if e[2][i] == 'k' then kind = e[2][i + 1] end end "
    "  if kind ~= 's' then out[#out + 1] = e if #out >= n then break end end "
    " end "
    " if #r < batch then break end "
    " hi = '(' .. r[#r][1] "
    "end "
    "return out";

typedef struct {
    char *room, *to;
    long maxchars;
    void (*done)(void *);
    void *ud;
} hist_req_t;

static const char *entry_xml(const redisReply *fields, size_t *len)
{
    for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements;
         i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, "xml") == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING) {
            *len = fields->element[i + 1]->len;
            return fields->element[i + 1]->str;
        }
    return NULL;
}

/* The stored message made a history message for `to` (section 7.2.15: <delay/> from the
 * room, stamped with when the room got it), or NULL. */
static xml_node_t *history_message(const hist_req_t *h, const char *id, const char *xml,
                                   size_t xlen)
{
    xml_node_t *m = stanza_parse(xml, xlen);
    if (!m)
        return NULL;
    mamq_id_t sid = {0, 0};
    mamq_id_parse(id, &sid);
    char stamp[80];
    mamq_fmt_datetime(sid.ms, stamp, sizeof stamp);
    xml_node_set_attr(m, "to", h->to);
    xml_node_t *d = xml_node_new_child(m, "delay", NS_DELAY);
    xml_node_set_attr(d, "from", h->room);
    xml_node_set_attr(d, "stamp", stamp);
    return m;
}

static void on_history(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    hist_req_t *h = privdata;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        log_warn("muc: history of %s: %s", h->room, rep->str);
    /* Only if the occupant is still here (the room's answer would go nowhere else). */
    if (rep && rep->type == REDIS_REPLY_ARRAY && (remote_jid(h->to) || session_find_jid(h->to))) {
        /* Newest first from Redis: walk back while maxchars allows (section 7.2.15 counts
         * the complete XML of each stanza as sent), then send oldest first. */
        size_t n = rep->elements, keep = 0;
        xml_node_t **msgs = xcalloc(n ? n : 1, sizeof *msgs);
        long chars = 0;
        buf_t b = BUF_INIT;
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            size_t xlen = 0;
            const char *xml = entry_xml(e->element[1], &xlen);
            xml_node_t *m = xml ? history_message(h, e->element[0]->str, xml, xlen) : NULL;
            if (!m)
                continue;
            if (h->maxchars >= 0) {
                buf_clear(&b);
                xml_serialize(m, XML_NS_CLIENT, &b);
                if (chars + (long)b.len > h->maxchars) {
                    xml_node_free(&m);
                    break;
                }
                chars += (long)b.len;
            }
            msgs[keep++] = m;
        }
        buf_free(&b);
        while (keep > 0) {
            xml_node_t *m = msgs[--keep];
            route_service_stanza(m);
            xml_node_free(&m);
        }
        free(msgs);
    }
    h->done(h->ud);
    free(h->room);
    free(h->to);
    free(h);
}

void muc_history_send(const char *room, const char *to, const muc_history_req_t *req,
                      long history_max, void (*done)(void *ud), void *ud)
{
    long n = history_max;
    if (n > MUC_HISTORY_HARD_MAX)
        n = MUC_HISTORY_HARD_MAX;
    if (req->maxstanzas >= 0 && req->maxstanzas < n)
        n = req->maxstanzas;
    char key[STORAGE_KEY_MAX];
    if (n <= 0 || req->maxchars == 0 || !rt.redis_ready || room_key(key, room) < 0) {
        done(ud);
        return;
    }
    /* The oldest time wanted: what is kept, 'seconds' ago, 'since' (7.2.15: all apply). */
    mamq_id_t lo = min_kept();
    uint64_t now = mamq_now_ms();
    if (req->seconds >= 0) {
        uint64_t ago = (uint64_t)req->seconds * 1000u;
        uint64_t t = now > ago ? now - ago : 0;
        if (t > lo.ms)
            lo = (mamq_id_t){t, 0};
    }
    if (req->since_ms >= 0 && (uint64_t)req->since_ms > lo.ms)
        lo = (mamq_id_t){(uint64_t)req->since_ms, 0};
    char slo[MAMQ_ID_MAX], sn[24];
    mamq_id_fmt(lo, slo);
    snprintf(sn, sizeof sn, "%ld", n);
    hist_req_t *h = xcalloc(1, sizeof *h);
    h->room = xstrdup(room);
    h->to = xstrdup(to);
    h->maxchars = req->maxchars;
    h->done = done;
    h->ud = ud;
    const char *argv[] = {"EVAL", script_history, "1", key, slo, sn};
    if (rt_redis_command_argv(on_history, h, 6, argv, NULL) != REDIS_OK) {
        free(h->room);
        free(h->to);
        free(h);
        done(ud);
    }
}

/* ---- the room's archive (XEP-0313 on the room's JID) ---- */

void muc_archive_query(const muc_from_t *from, const xml_node_t *st, const char *room)
{
    const xml_node_t *q = xml_node_first_element(st);
    const char *type = xml_node_attr(st, "type");
    int set = type && strcmp(type, "set") == 0;
    char key[STORAGE_KEY_MAX];
    if (!q || !q->ns || strcmp(q->ns, NS_MAM) != 0 || room_key(key, room) < 0) {
        session_reply_error(from->s, st, "cancel", "service-unavailable");
        return;
    }
    if (strcmp(q->name, "query") == 0 && !set) {
        session_reply_result(from->s, st, mamq_form());
        return;
    }
    if (strcmp(q->name, "metadata") == 0 && !set) {
        if (!rt.redis_ready || mamrun_metadata(from->full, st, key, min_kept()) < 0)
            session_reply_error(from->s, st, "wait", "internal-server-error");
        return;
    }
    if (strcmp(q->name, "query") != 0) {
        session_reply_error(from->s, st, "cancel", "feature-not-implemented");
        return;
    }
    mamq_query_t mq;
    const char *etype = NULL, *cond = NULL;
    if (mamq_query_parse(q, max_page, min_kept(), &mq, &etype, &cond) < 0) {
        session_reply_error(from->s, st, etype, cond);
    } else if (!rt.redis_ready) {
        session_reply_error(from->s, st, "wait", "internal-server-error");
    } else {
        /* 'with' in a room's archive is an occupant's room JID (room/nick); the room's own
         * JID matches every message, any other JID none (real JIDs are not kept). */
        const char *filter = mq.with_full;
        if (!*filter && *mq.with_bare && strcmp(mq.with_bare, room) != 0)
            filter = mq.with_bare;
        if (mamrun_query(from->full, st, room, &mq, key, key, filter, min_kept()) < 0)
            session_reply_error(from->s, st, "wait", "internal-server-error");
    }
    mamq_query_free(&mq);
}

void muc_archive_delete(const char *room)
{
    char key[STORAGE_KEY_MAX];
    if (rt.redis_ready && room_key(key, room) >= 0)
        rt_redis_command(rt_redis_ignore, NULL, "DEL %s", key);
}

/* ---- opening ---- */

void muc_archive_open(void)
{
    expires_after = config_int("muc_archive_expires_after");
    max_messages = config_int("muc_archive_max_messages");
    max_page = config_int("muc_archive_max_page");
}

void muc_archive_close(void)
{
    inflight = skipped = lost = 0;
}
