/* XEP-0045 multi-user chat on muc_domain (conference.DOMAIN by default): the service, its
 * rooms and their occupants, presence, groupchat and private messages, subjects, nickname
 * changes, invitations, voice requests and XEP-0421 occupant ids. Disco, self-ping and iqs
 * between occupants are in muc_iq.c; administration, configuration, registration and
 * storage in muc_admin.c; history and the room archive in muc_archive.c (muc.h). Rooms
 * and occupants live in the router's memory (persistent rooms written through to Redis
 * and read at start); after a router restart clients find out with a self-ping (XEP-0410)
 * that they must join again. */
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"
#include "keys.h"
#include "log.h"
#include "module.h"
#include "modules.h"
#include "muc.h"
#include "remote.h"
#include "route.h"
#include "service.h"
#include "stanza.h"
#include "storage.h"
#include "util.h"

#define NS_OCCUPANT_ID "urn:xmpp:occupant-id:0"
#define NS_XDATA "jabber:x:data"
#define FORM_MUC_REQUEST NS_MUC "#request"
#define MUC_SUBJECT_MAX 4096
#define MUC_INVITES_MAX 8 /* invitations in one message */

muc_service_t muc;

/* The server secret occupant ids are made with (XEP-0421 section 4): random, replaced by
 * the one kept in Redis once it is read so ids stay the same across restarts. */
static unsigned char oid_secret[32];

/* Full JIDs a stanza of the room's could not reach (XEP-0045 section 18.1): taken out
 * once the current broadcast is over, so no list changes under a loop. */
typedef struct ghost {
    char *room, *full;
    struct ghost *next;
} ghost_t;
static ghost_t *ghosts, **ghosts_tail = &ghosts;
static hmap_t *ghost_keys; /* room \0 full -> 1 while queued */
static int flushing;

/* A full JID between its own presence and the subject (section 7.2.2: presences, history,
 * subject, then the live room): what the room sends it meanwhile waits here, so live
 * messages never come between history items or before the subject. */
#define MUC_JOIN_HELD_MAX 256 /* stanzas held for one joining full JID; past it, sent at once */
typedef struct joinheld {
    xml_node_t *st;
    struct joinheld *next;
} joinheld_t;
typedef struct {
    joinheld_t *head, **tail;
    int n;
} joining_t;
static hmap_t *joining; /* room \0 full -> joining_t */

static void room_full_key(buf_t *key, const char *room, const char *full)
{
    buf_append_str(key, room);
    buf_append(key, "", 1);
    buf_append_str(key, full);
}

static void joining_start(const char *room, const char *full)
{
    if (!joining)
        return;
    buf_t key = BUF_INIT;
    room_full_key(&key, room, full);
    if (!hmap_get(joining, key.data, key.len)) {
        joining_t *j = xcalloc(1, sizeof *j);
        j->tail = &j->head;
        hmap_put(joining, key.data, key.len, j);
    }
    buf_free(&key);
}

/* Ends the wait of a full JID: returns what was held (the caller sends or frees it). */
static joinheld_t *joining_end(const char *room, const char *full)
{
    if (!joining)
        return NULL;
    buf_t key = BUF_INIT;
    room_full_key(&key, room, full);
    joining_t *j = hmap_get(joining, key.data, key.len);
    joinheld_t *h = NULL;
    if (j) {
        hmap_del(joining, key.data, key.len);
        h = j->head;
        free(j);
    }
    buf_free(&key);
    return h;
}

static void joinheld_free(joinheld_t *h)
{
    while (h) {
        joinheld_t *n = h->next;
        xml_node_free(&h->st);
        free(h);
        h = n;
    }
}

/* Holds a copy of `st` when its 'to' is joining `room`. Returns 1 when it did. */
static int joining_hold(const char *room, const xml_node_t *st)
{
    const char *to = xml_node_attr(st, "to");
    if (!to || !joining || !hmap_count(joining))
        return 0;
    buf_t key = BUF_INIT;
    room_full_key(&key, room, to);
    joining_t *j = hmap_get(joining, key.data, key.len);
    buf_free(&key);
    if (!j || j->n >= MUC_JOIN_HELD_MAX)
        return 0;
    joinheld_t *h = xcalloc(1, sizeof *h);
    h->st = xml_node_copy(st);
    *j->tail = h;
    j->tail = &h->next;
    j->n++;
    return 1;
}

/* How many rooms each full JID is in, so a session end that concerns no room costs one
 * lookup. full JID -> (intptr_t) count. */
static hmap_t *joined;

static void joined_add(const char *full, int d)
{
    intptr_t n = (intptr_t)hmap_sget(joined, full) + d;
    if (n <= 0)
        hmap_sdel(joined, full);
    else
        hmap_sput(joined, full, (void *)n);
}

/* ---- lookups ---- */

muc_room_t *muc_room_find(const char *jid)
{
    return hmap_sget(muc.rooms, jid);
}

muc_aff_t muc_room_aff(const muc_room_t *r, const char *bare)
{
    intptr_t v = (intptr_t)hmap_sget(r->aff, bare);
    if (v)
        return (muc_aff_t)(v - 2);
    /* A whole domain banned (an outcast item naming a domain, XEP-0045 9.1): keeps out
     * every user of a server that spams, not one made-up JID at a time. */
    const char *at = strchr(bare, '@');
    v = at ? (intptr_t)hmap_sget(r->aff, at + 1) : 0;
    return v && (muc_aff_t)(v - 2) == AFF_OUTCAST ? AFF_OUTCAST : AFF_NONE;
}

void muc_room_set_aff(muc_room_t *r, const char *bare, muc_aff_t a)
{
    if (a == AFF_NONE)
        hmap_sdel(r->aff, bare);
    else
        hmap_sput(r->aff, bare, (void *)(intptr_t)(a + 2));
}

muc_occ_t *muc_occ_by_nick(const muc_room_t *r, const char *nick)
{
    for (muc_occ_t *o = r->occs; o; o = o->next)
        if (strcmp(o->nick, nick) == 0)
            return o;
    return NULL;
}

muc_occ_t *muc_occ_by_full(const muc_room_t *r, const char *full)
{
    for (muc_occ_t *o = r->occs; o; o = o->next)
        for (int i = 0; i < o->nfull; i++)
            if (strcmp(o->full[i], full) == 0)
                return o;
    return NULL;
}

const char *muc_reg_owner(const muc_room_t *r, const char *nick)
{
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(r->regs, &pos, &k, &kl, &v))
        if (strcmp(v, nick) == 0)
            return k; /* hmap keeps keys NUL-terminated */
    return NULL;
}

/* ---- building stanzas ---- */

char *muc_occ_jid(const muc_room_t *r, const char *nick)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "%s/%s", r->jid, nick);
    return b.data;
}

/* XEP-0421: a stable id per real bare JID per room, not revealing it: HMAC-SHA-256 of
 * room and bare JID under the server secret, base64url of the first 18 bytes. */
static void occupant_id(const muc_room_t *r, const char *bare, char out[32])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    buf_t in = BUF_INIT;
    buf_append_str(&in, r->jid);
    buf_append(&in, "", 1);
    buf_append_str(&in, bare);
    unsigned char mac[32];
    unsigned int ml = sizeof mac;
    HMAC(EVP_sha256(), oid_secret, sizeof oid_secret, (const unsigned char *)in.data, in.len,
         mac, &ml);
    buf_free(&in);
    int o = 0;
    for (int i = 0; i < 18; i += 3) {
        uint32_t v = (uint32_t)mac[i] << 16 | (uint32_t)mac[i + 1] << 8 | mac[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

/* Removes every child `name` in `ns` (forged occupant ids, a client's muc#user, ...). */
static void strip_children(xml_node_t *st, const char *name, const char *ns)
{
    xml_node_t *c;
    while ((c = xml_node_child(st, name, ns))) {
        xml_node_remove_child(st, c);
        xml_node_free(&c);
    }
}

static void add_occupant_id(const muc_room_t *r, xml_node_t *st, const char *bare)
{
    char id[32];
    occupant_id(r, bare, id);
    strip_children(st, "occupant-id", NS_OCCUPANT_ID);
    xml_node_set_attr(xml_node_new_child(st, "occupant-id", NS_OCCUPANT_ID), "id", id);
}

static void add_status(xml_node_t *x, int code)
{
    char c[8];
    snprintf(c, sizeof c, "%d", code);
    xml_node_set_attr(xml_node_new_child(x, "status", NS_MUC_USER), "code", c);
}

static void add_text_child(xml_node_t *parent, const char *name, const char *ns,
                           const char *text)
{
    xml_node_t *c = xml_node_new_child(parent, name, ns);
    if (text && *text)
        xml_node_add_text(c, text, strlen(text));
}

/* Real JIDs go to moderators, or to everyone in a non-anonymous room (section 7.2.3,
 * 7.2.4). */
static int sees_jids(const muc_room_t *r, const muc_occ_t *viewer)
{
    return r->cfg.whois == WHO_ANYONE || (viewer && viewer->role == ROLE_MODERATOR);
}

/* The presence of `o` for the occupant `viewer` at its full JID `to`. */
static xml_node_t *presence_for(const muc_room_t *r, const muc_occ_t *o,
                                const muc_occ_t *viewer, const char *to, const char *ofull,
                                const muc_pres_opt_t *opt)
{
    xml_node_t *p;
    const char *ptype = o->pres ? xml_node_attr(o->pres, "type") : NULL;
    /* The occupant's own presence, or its unavailable one (status text, 7.14) when it
     * left; a presence the room makes up otherwise. */
    if (o->pres && (opt && opt->type ? ptype && strcmp(ptype, opt->type) == 0 : !ptype))
        p = xml_node_copy(o->pres);
    else
        p = xml_node_new("presence", XML_NS_CLIENT);
    char *from = muc_occ_jid(r, o->nick);
    xml_node_set_attr(p, "from", from);
    free(from);
    xml_node_set_attr(p, "to", to);
    xml_node_set_attr(p, "id", NULL);
    if (opt && opt->type)
        xml_node_set_attr(p, "type", opt->type);
    xml_node_t *x = xml_node_new_child(p, "x", NS_MUC_USER);
    xml_node_t *item = xml_node_new_child(x, "item", NS_MUC_USER);
    muc_aff_t a = opt && opt->has_aff ? opt->aff_override : muc_room_aff(r, o->bare);
    xml_node_set_attr(item, "affiliation", muccfg_aff_name(a));
    xml_node_set_attr(item, "role", muccfg_role_name(opt && opt->type && !opt->newnick
                                                         ? ROLE_NONE : o->role));
    if (sees_jids(r, viewer))
        xml_node_set_attr(item, "jid", ofull ? ofull : o->full[0]);
    if (opt && opt->newnick)
        xml_node_set_attr(item, "nick", opt->newnick);
    if (opt && opt->actor)
        xml_node_set_attr(xml_node_new_child(item, "actor", NS_MUC_USER), "nick", opt->actor);
    if (opt && opt->reason)
        add_text_child(item, "reason", NS_MUC_USER, opt->reason);
    if (opt && opt->destroy)
        xml_node_add_child(x, xml_node_copy(opt->destroy));
    /* Section 7.2.3 ff.: 110 marks the occupant's own presence; in a non-anonymous room
     * 100 tells it everyone sees its JID. */
    if (viewer == o) {
        add_status(x, 110);
        if (!(opt && opt->type) && r->cfg.whois == WHO_ANYONE)
            add_status(x, 100);
    }
    for (int i = 0; opt && i < opt->ncodes; i++)
        add_status(x, opt->codes[i]);
    add_occupant_id(r, p, o->bare);
    return p;
}

int muc_send(muc_room_t *r, xml_node_t *st)
{
    if (r && joining_hold(r->jid, st))
        return 0;
    int rc = route_service_stanza(st);
    const char *to = xml_node_attr(st, "to");
    /* Only a full JID with no session is gone (-1); a full pipe (-2) is not. */
    if (rc == -1 && r && to && strchr(to, '/')) {
        /* Queued once per room and full JID: once out, nothing is sent to it again, so
         * the queue never holds more than the full JIDs there are. */
        buf_t key = BUF_INIT;
        room_full_key(&key, r->jid, to);
        if (!hmap_get(ghost_keys, key.data, key.len)) {
            hmap_put(ghost_keys, key.data, key.len, (void *)1);
            ghost_t *g = xcalloc(1, sizeof *g);
            g->room = xstrdup(r->jid);
            g->full = xstrdup(to);
            *ghosts_tail = g;
            ghosts_tail = &g->next;
        }
        buf_free(&key);
    }
    return rc;
}

void muc_broadcast_presence(muc_room_t *r, muc_occ_t *o, const muc_pres_opt_t *opt)
{
    for (muc_occ_t *v = r->occs; v; v = v->next) {
        /* Visitors' presence goes to moderators only unless presencebroadcast says so
         * (muc#roomconfig_presencebroadcast). */
        if (v != o && o->role == ROLE_VISITOR && !r->cfg.presence_visitors &&
            v->role != ROLE_MODERATOR && !(opt && opt->type))
            continue;
        for (int i = 0; i < v->nfull; i++) {
            xml_node_t *p = presence_for(r, o, v, v->full[i], NULL, opt);
            muc_send(r, p);
            xml_node_free(&p);
        }
    }
}

/* Sends `o`'s unavailable presence to the full JIDs of `o` and of everyone else. */
static void occ_free(muc_occ_t **op)
{
    muc_occ_t *o = *op;
    if (!o)
        return;
    for (int i = 0; i < o->nfull; i++) {
        joined_add(o->full[i], -1);
        free(o->full[i]);
    }
    free(o->full);
    free(o->nick);
    free(o->bare);
    xml_node_free(&o->pres);
    free(o);
    *op = NULL;
}

static void occ_unlink(muc_room_t *r, muc_occ_t *o)
{
    for (muc_occ_t **pp = &r->occs; *pp; pp = &(*pp)->next)
        if (*pp == o) {
            *pp = o->next;
            r->nocc--;
            return;
        }
}

void muc_occ_remove(muc_room_t *r, muc_occ_t *o, const muc_pres_opt_t *opt)
{
    muc_pres_opt_t def = {.type = "unavailable"};
    if (!opt)
        opt = &def;
    /* Everyone, the occupant included (110 with its own), hears it is gone. */
    muc_broadcast_presence(r, o, opt);
    occ_unlink(r, o);
    occ_free(&o);
    muc_room_gc(r);
}

static void room_free(muc_room_t **rp)
{
    muc_room_t *r = *rp;
    if (!r)
        return;
    while (r->occs) {
        muc_occ_t *o = r->occs;
        r->occs = o->next;
        occ_free(&o);
    }
    hmap_destroy(&r->aff);
    hmap_destroy_all(&r->regs, free);
    free(r->subject);
    free(r->subject_by);
    free(r->jid);
    free(r);
    *rp = NULL;
}

void muc_room_destroy(muc_room_t *r, const xml_node_t *destroy)
{
    /* Section 10.9: every occupant gets unavailable presence with the <destroy/>. */
    muc_pres_opt_t opt = {.type = "unavailable", .destroy = destroy, .has_aff = 1,
                          .aff_override = AFF_NONE};
    for (muc_occ_t *o = r->occs; o; o = o->next)
        for (int i = 0; i < o->nfull; i++) {
            xml_node_t *p = presence_for(r, o, o, o->full[i], NULL, &opt);
            muc_send(r, p);
            xml_node_free(&p);
        }
    if (r->cfg.persistent)
        muc_store_delete(r->jid);
    muc_archive_delete(r->jid);
    hmap_sdel(muc.rooms, r->jid);
    room_free(&r);
}

int muc_room_gc(muc_room_t *r)
{
    if (r->occs || r->cfg.persistent)
        return 0;
    /* A temporary room goes when its last occupant leaves (section 10.1.1 / 15.5.3). */
    hmap_sdel(muc.rooms, r->jid);
    muc_archive_delete(r->jid);
    room_free(&r);
    return 1;
}

static void leave_full(muc_room_t *r, muc_occ_t *o, const char *full, const xml_node_t *st,
                       int tell_self, int code);

/* Takes the collected unreachable full JIDs out of their rooms. */
static void ghosts_flush(void)
{
    if (flushing)
        return;
    flushing = 1;
    while (ghosts) {
        ghost_t *g = ghosts;
        ghosts = g->next;
        if (!ghosts)
            ghosts_tail = &ghosts;
        buf_t key = BUF_INIT;
        room_full_key(&key, g->room, g->full);
        hmap_del(ghost_keys, key.data, key.len);
        buf_free(&key);
        muc_room_t *r = muc_room_find(g->room);
        muc_occ_t *o = r ? muc_occ_by_full(r, g->full) : NULL;
        if (o) {
            /* Status 333: removed for a technical reason (XEP-0045 section 18.1). */
            log_debug("muc: %s unreachable, out of %s", g->full, g->room);
            leave_full(r, o, g->full, NULL, 0, 333);
        }
        free(g->room);
        free(g->full);
        free(g);
    }
    flushing = 0;
}

/* ---- errors ---- */

void muc_reply_error(const muc_from_t *from, const xml_node_t *st, const char *etype,
                     const char *cond)
{
    const char *type = xml_node_attr(st, "type");
    if (type && strcmp(type, "error") == 0)
        return;
    session_reply_error(from->s, st, etype, cond);
}

/* ---- presence: join, update, nickname change, leave ---- */

/* A nickname as the occupant's resource: resourceprep'd already by the frontend (the 'to'
 * arrives prepared); bounded by muc_max_nick. */
static int nick_ok(const char *nick)
{
    char prepped[JID_PART_MAX + 1];
    size_t n = strlen(nick);
    return n > 0 && (long)n <= muc.max_nick && jid_prep_resource(prepped, nick) == 0 &&
           strcmp(prepped, nick) == 0;
}

/* The presence a client sent, cleaned of what only the room may say. */
static xml_node_t *clean_presence(const xml_node_t *st)
{
    xml_node_t *p = xml_node_copy(st);
    strip_children(p, "x", NS_MUC);
    strip_children(p, "x", NS_MUC_USER);
    strip_children(p, "occupant-id", NS_OCCUPANT_ID);
    xml_node_set_attr(p, "to", NULL);
    xml_node_set_attr(p, "from", NULL);
    xml_node_set_attr(p, "id", NULL);
    return p;
}

static long count_owned(const char *bare)
{
    long n = 0;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(muc.rooms, &pos, &k, &kl, &v))
        if (muc_room_aff(v, bare) == AFF_OWNER)
            n++;
    return n;
}

muc_room_t *muc_room_new(const char *jid)
{
    muc_room_t *r = xcalloc(1, sizeof *r);
    r->jid = xstrdup(jid);
    muccfg_default(&r->cfg, muc.max_history);
    r->aff = hmap_new();
    r->regs = hmap_new();
    r->subject = xstrdup("");
    r->subject_by = xstrdup("");
    hmap_sput(muc.rooms, jid, r);
    return r;
}

typedef struct {
    char *room, *full;
} subject_wait_t;

static void send_subject(muc_room_t *r, const char *to)
{
    /* Section 7.2.15: the subject comes last, after the history, even when empty. */
    xml_node_t *m = xml_node_new("message", XML_NS_CLIENT);
    char *from = *r->subject_by ? muc_occ_jid(r, r->subject_by) : xstrdup(r->jid);
    xml_node_set_attr(m, "from", from);
    free(from);
    xml_node_set_attr(m, "to", to);
    xml_node_set_attr(m, "type", "groupchat");
    char id[32];
    snprintf(id, sizeof id, "subj-%llx", (unsigned long long)now_ms());
    xml_node_set_attr(m, "id", id);
    add_text_child(m, "subject", XML_NS_CLIENT, r->subject);
    muc_send(r, m);
    xml_node_free(&m);
}

static void history_done(void *ud)
{
    subject_wait_t *w = ud;
    joinheld_t *meanwhile = joining_end(w->room, w->full);
    muc_room_t *r = muc_room_find(w->room);
    if (r && muc_occ_by_full(r, w->full)) {
        send_subject(r, w->full);
        /* Then what the room said meanwhile, in order. */
        for (joinheld_t *h = meanwhile; h; h = h->next)
            muc_send(r, h->st);
        ghosts_flush();
    }
    joinheld_free(meanwhile);
    free(w->room);
    free(w->full);
    free(w);
}

/* What a new full JID sees on entering: everyone's presence, its own (110 ...), history,
 * subject (section 7.2.3, 7.2.15, 7.2.16). */
static void welcome(muc_room_t *r, muc_occ_t *o, const char *full, const xml_node_t *mucx,
                    int created)
{
    for (muc_occ_t *v = r->occs; v; v = v->next) {
        if (v == o)
            continue;
        if (v->role == ROLE_VISITOR && !r->cfg.presence_visitors && o->role != ROLE_MODERATOR)
            continue;
        xml_node_t *p = presence_for(r, v, o, full, NULL, NULL);
        muc_send(r, p);
        xml_node_free(&p);
    }
    muc_pres_opt_t opt = {0};
    if (r->cfg.archive)
        opt.codes[opt.ncodes++] = 170;
    if (created)
        opt.codes[opt.ncodes++] = 201;
    xml_node_t *p = presence_for(r, o, o, full, full, &opt);
    muc_send(r, p);
    xml_node_free(&p);
    joining_start(r->jid, full);
    muc_history_req_t req;
    if (muc_history_parse(mucx ? xml_node_child(mucx, "history", NS_MUC) : NULL, &req) < 0)
        muc_history_parse(NULL, &req);
    subject_wait_t *w = xcalloc(1, sizeof *w);
    w->room = xstrdup(r->jid);
    w->full = xstrdup(full);
    long hmax = r->cfg.history_max;
    if (hmax > muc.max_history)
        hmax = muc.max_history;
    muc_history_send(r->jid, full, &req, hmax, history_done, w);
}

static void occ_add_full(muc_occ_t *o, const char *full)
{
    o->full = xrealloc(o->full, (size_t)(o->nfull + 1) * sizeof *o->full);
    o->full[o->nfull++] = xstrdup(full);
    joined_add(full, 1);
}

static void join(const muc_from_t *from, xml_node_t *st, const char *room, const char *nick,
                 muc_room_t *r)
{
    const char *bare = from->bare;
    xml_node_t *mucx = xml_node_child(st, "x", NS_MUC);
    int created = 0;
    if (!nick_ok(nick)) {
        muc_reply_error(from, st, "modify", "jid-malformed");
        return;
    }
    if (!r) {
        if (!muc.loaded) {
            muc_reply_error(from, st, "wait", "resource-constraint");
            return;
        }
        /* Rooms are made by this server's users: a user at another domain joins the rooms
         * that exist (section 10.1.1: not-allowed for one who may not create a room), so
         * other servers cannot fill muc_max_rooms. */
        if (!from->s) {
            muc_reply_error(from, st, "cancel", "not-allowed");
            return;
        }
        /* Limits on rooms in all and per creator (muc_max_rooms, muc_max_rooms_per_user). */
        if ((long)hmap_count(muc.rooms) >= muc.max_rooms ||
            count_owned(bare) >= muc.max_rooms_per_user) {
            muc_reply_error(from, st, "wait", "resource-constraint");
            return;
        }
        r = muc_room_new(room);
        /* A temporary room of the same name lost by a router restart may have left its
         * messages behind: a new room starts with none (the DEL goes before the history
         * read on the same connection). */
        muc_archive_delete(room);
        muc_room_set_aff(r, bare, AFF_OWNER);
        /* Section 10.1.1: a new room is locked until its owner configures it or accepts
         * the defaults (instant room, 10.1.2). */
        r->locked = 1;
        created = 1;
    }
    muc_aff_t a = muc_room_aff(r, bare);
    /* Section 7.2.9 / 7.2.8 / 7.2.7 / 7.2.6 / 7.2.10, in the XEP's order of checks. */
    if (r->locked && a != AFF_OWNER) {
        muc_reply_error(from, st, "cancel", "item-not-found");
        return;
    }
    if (a == AFF_OUTCAST) {
        muc_reply_error(from, st, "auth", "forbidden");
        return;
    }
    if (r->cfg.members_only && a < AFF_MEMBER) {
        muc_reply_error(from, st, "auth", "registration-required");
        return;
    }
    muc_occ_t *o = muc_occ_by_nick(r, nick);
    const char *holder = muc_reg_owner(r, nick);
    if ((o && strcmp(o->bare, bare) != 0) || (holder && strcmp(holder, bare) != 0)) {
        muc_reply_error(from, st, "cancel", "conflict");
        return;
    }
    if (r->cfg.password_protected) {
        xml_node_t *pw = mucx ? xml_node_child(mucx, "password", NS_MUC) : NULL;
        char *given = pw ? xml_node_text(pw) : xstrdup("");
        int ok = strcmp(given, r->cfg.password) == 0;
        free(given);
        if (!ok) {
            muc_reply_error(from, st, "auth", "not-authorized");
            return;
        }
    }
    long max = muc.max_occupants;
    if (r->cfg.max_users > 0 && r->cfg.max_users < max)
        max = r->cfg.max_users;
    if (!o && r->nocc >= max && a < AFF_ADMIN) {
        muc_reply_error(from, st, "wait", "service-unavailable");
        return;
    }
    if (o) {
        /* One more resource of the occupant (7.2.9 allows one nickname per bare JID): it
         * gets the room's state; the others see nothing new. At most max_resources of
         * them: a local account has no more sessions, and a server at another domain
         * must not make the room hold (and copy every message to) any number. */
        if (!muc_occ_by_full(r, from->full) && o->nfull >= rt.max_resources) {
            muc_reply_error(from, st, "wait", "resource-constraint");
            return;
        }
        occ_add_full(o, from->full);
        welcome(r, o, from->full, mucx, 0);
        return;
    }
    o = xcalloc(1, sizeof *o);
    o->nick = xstrdup(nick);
    o->bare = xstrdup(bare);
    o->role = muccfg_default_role(&r->cfg, a);
    if (o->role == ROLE_NONE)
        o->role = ROLE_PARTICIPANT;
    o->pres = clean_presence(st);
    occ_add_full(o, from->full);
    /* Join order: the new occupant goes last, so everyone's presence reaches it in the
     * order they came. */
    muc_occ_t **tail = &r->occs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = o;
    r->nocc++;
    /* Everyone else hears of the newcomer before it gets the list (7.2.3). */
    for (muc_occ_t *v = r->occs; v; v = v->next) {
        if (v == o)
            continue;
        if (o->role == ROLE_VISITOR && !r->cfg.presence_visitors && v->role != ROLE_MODERATOR)
            continue;
        for (int i = 0; i < v->nfull; i++) {
            xml_node_t *p = presence_for(r, o, v, v->full[i], NULL, NULL);
            muc_send(r, p);
            xml_node_free(&p);
        }
    }
    welcome(r, o, from->full, mucx, created);
}

/* Section 7.6: the occupant takes another nickname: unavailable with 303 and the new
 * nick, then available under it. */
static void change_nick(const muc_from_t *from, xml_node_t *st, muc_room_t *r, muc_occ_t *o,
                        const char *nick)
{
    if (!nick_ok(nick)) {
        muc_reply_error(from, st, "modify", "jid-malformed");
        return;
    }
    muc_occ_t *other = muc_occ_by_nick(r, nick);
    const char *holder = muc_reg_owner(r, nick);
    if (other || (holder && strcmp(holder, o->bare) != 0)) {
        muc_reply_error(from, st, "cancel", "conflict");
        return;
    }
    muc_pres_opt_t gone = {.type = "unavailable", .newnick = nick, .codes = {303}, .ncodes = 1};
    muc_broadcast_presence(r, o, &gone);
    free(o->nick);
    o->nick = xstrdup(nick);
    xml_node_free(&o->pres);
    o->pres = clean_presence(st);
    muc_broadcast_presence(r, o, NULL);
}

/* The full JID leaves (unavailable presence to the room, or its session ended). */
static void leave_full(muc_room_t *r, muc_occ_t *o, const char *full, const xml_node_t *st,
                       int tell_self, int code)
{
    if (o->nfull > 1) {
        for (int i = 0; i < o->nfull; i++)
            if (strcmp(o->full[i], full) == 0) {
                if (tell_self) {
                    muc_pres_opt_t opt = {.type = "unavailable"};
                    xml_node_t *p = presence_for(r, o, o, full, full, &opt);
                    muc_send(r, p);
                    xml_node_free(&p);
                }
                joined_add(o->full[i], -1);
                free(o->full[i]);
                o->full[i] = o->full[--o->nfull];
                return;
            }
        return;
    }
    if (st) {
        xml_node_free(&o->pres);
        o->pres = clean_presence(st);
    }
    muc_pres_opt_t opt = {.type = "unavailable"};
    if (code)
        opt.codes[opt.ncodes++] = code;
    if (!tell_self) {
        /* The session is gone: only the others hear of it. */
        for (muc_occ_t *v = r->occs; v; v = v->next)
            for (int i = 0; v != o && i < v->nfull; i++) {
                xml_node_t *p = presence_for(r, o, v, v->full[i], NULL, &opt);
                muc_send(r, p);
                xml_node_free(&p);
            }
        occ_unlink(r, o);
        occ_free(&o);
        muc_room_gc(r);
        return;
    }
    /* The status text of an unavailable presence goes with it (section 7.14). */
    muc_occ_remove(r, o, &opt);
}

/* XEP-0045 section 18.1: an error that says the client is gone takes it out of the room;
 * other errors (a client refusing one message) do not. */
static int error_means_gone(const xml_node_t *st)
{
    static const char *gone[] = {"gone", "item-not-found", "recipient-unavailable", "redirect",
                                 "remote-server-not-found", "remote-server-timeout",
                                 "service-unavailable", "jid-malformed", NULL};
    const xml_node_t *e = xml_node_child(st, "error", NULL);
    for (const xml_node_t *c = e ? e->children : NULL; c; c = c->next)
        for (int i = 0; c->name && c->ns && strcmp(c->ns, NS_STANZAS) == 0 && gone[i]; i++)
            if (strcmp(c->name, gone[i]) == 0)
                return 1;
    return 0;
}

/* A presence or message of type error from an occupant's client: one that says the
 * client is gone takes that full JID out (section 18.1); the rest mean nothing to the
 * room. Returns 1 when `st` was an error. */
static int occupant_error(const muc_from_t *from, const xml_node_t *st, const char *type,
                          muc_room_t *r, muc_occ_t *o)
{
    if (!type || strcmp(type, "error") != 0)
        return 0;
    if (o && error_means_gone(st))
        leave_full(r, o, from->full, NULL, 0, 333);
    return 1;
}

static void on_room_presence(const muc_from_t *from, xml_node_t *st, const char *room,
                             const char *nick)
{
    const char *type = xml_node_attr(st, "type");
    muc_room_t *r = muc_room_find(room);
    muc_occ_t *o = r ? muc_occ_by_full(r, from->full) : NULL;
    if (occupant_error(from, st, type, r, o))
        return;
    if (type && strcmp(type, "unavailable") == 0) {
        if (o)
            leave_full(r, o, from->full, st, 1, 0);
        return;
    }
    if (type) { /* subscriptions and probes mean nothing to a room */
        if (strcmp(type, "probe") != 0 && strcmp(type, "subscribe") != 0 &&
            strcmp(type, "unsubscribe") != 0 && strcmp(type, "subscribed") != 0 &&
            strcmp(type, "unsubscribed") != 0)
            muc_reply_error(from, st, "modify", "bad-request");
        return;
    }
    if (!*nick) {
        /* Section 7.2.1: joining needs a nickname. */
        muc_reply_error(from, st, "modify", "jid-malformed");
        return;
    }
    if (!o) {
        join(from, st, room, nick, r);
        return;
    }
    if (strcmp(o->nick, nick) != 0) {
        change_nick(from, st, r, o, nick);
        return;
    }
    xml_node_free(&o->pres);
    o->pres = clean_presence(st);
    xml_node_t *mucx = xml_node_child(st, "x", NS_MUC);
    if (mucx) {
        /* A join presence from a full JID already in the room: its client lost track
         * (a reconnect it did not notice) and waits for the whole join again, ending
         * with the subject; it gets it, as a new full JID would (section 7.2). */
        welcome(r, o, from->full, mucx, 0);
        return;
    }
    /* Section 7.7: a presence update goes to everyone. */
    muc_broadcast_presence(r, o, NULL);
}

/* ---- messages ---- */

static void groupchat(const muc_from_t *from, xml_node_t *st, muc_room_t *r, muc_occ_t *o)
{
    xml_node_t *subj = xml_node_child(st, "subject", NULL);
    xml_node_t *body = xml_node_child(st, "body", NULL);
    /* Section 7.4: a visitor of a moderated room has no voice. */
    if (o->role < ROLE_PARTICIPANT) {
        muc_reply_error(from, st, "auth", "forbidden");
        return;
    }
    if (subj && !body) {
        /* Section 8.1: subject changes by moderators, or by participants where the room
         * lets them (muc#roomconfig_changesubject). */
        if (o->role != ROLE_MODERATOR && !r->cfg.change_subject) {
            muc_reply_error(from, st, "auth", "forbidden");
            return;
        }
        char *text = xml_node_text(subj);
        if (strlen(text) > MUC_SUBJECT_MAX) {
            free(text);
            muc_reply_error(from, st, "modify", "not-acceptable");
            return;
        }
        free(r->subject);
        r->subject = text;
        free(r->subject_by);
        r->subject_by = xstrdup(o->nick);
        if (r->cfg.persistent)
            muc_store_save(r);
    }
    xml_node_t *m = xml_node_copy(st);
    char *nfrom = muc_occ_jid(r, o->nick);
    xml_node_set_attr(m, "from", nfrom);
    free(nfrom);
    add_occupant_id(r, m, o->bare);
    /* XEP-0359: the room stamps its stanza-id (forged ones go) and stores the message. */
    /* The one store serves the archive and history on join: a room that gives history
     * keeps its messages even with archiving off (queries are then refused). */
    muc_archive_add(r->jid, m, r->cfg.archive || r->cfg.history_max > 0);
    for (muc_occ_t *v = r->occs; v; v = v->next)
        for (int i = 0; i < v->nfull; i++) {
            xml_node_set_attr(m, "to", v->full[i]);
            muc_send(r, m);
        }
    xml_node_free(&m);
}

/* Section 7.5: a private message to one occupant, to every full JID of it. */
static void private_message(const muc_from_t *from, xml_node_t *st, muc_room_t *r, muc_occ_t *o,
                            const char *nick)
{
    muc_occ_t *t = muc_occ_by_nick(r, nick);
    if (!t) {
        muc_reply_error(from, st, "cancel", "item-not-found");
        return;
    }
    int ok = r->cfg.allow_pm == WHO_ANYONE ||
             (r->cfg.allow_pm == WHO_PARTICIPANTS && o->role >= ROLE_PARTICIPANT) ||
             (r->cfg.allow_pm == WHO_MODERATORS && o->role == ROLE_MODERATOR);
    if (!ok) {
        muc_reply_error(from, st, "cancel", "not-acceptable");
        return;
    }
    xml_node_t *m = xml_node_copy(st);
    char *nfrom = muc_occ_jid(r, o->nick);
    xml_node_set_attr(m, "from", nfrom);
    free(nfrom);
    strip_children(m, "x", NS_MUC_USER);
    xml_node_new_child(m, "x", NS_MUC_USER);
    add_occupant_id(r, m, o->bare);
    for (int i = 0; i < t->nfull; i++) {
        xml_node_set_attr(m, "to", t->full[i]);
        muc_send(r, m);
    }
    xml_node_free(&m);
}

static int jid_bare_of(const char *s, char *out, size_t n)
{
    jid_t j;
    if (!s || jid_parse(&j, s) < 0)
        return -1;
    return jid_bare(&j, out, n) < 0 ? -1 : 0;
}

/* Whom a decline may go to: an occupant or someone with an affiliation (an inviter). */
static int decline_target_ok(const muc_room_t *r, const char *to)
{
    char tb[JID_MAX + 1];
    if (jid_bare_of(to, tb, sizeof tb) < 0)
        return 0;
    if (muc_room_aff(r, tb) >= AFF_MEMBER)
        return 1;
    for (const muc_occ_t *o = r->occs; o; o = o->next)
        if (strcmp(o->bare, tb) == 0)
            return 1;
    return 0;
}

/* Section 7.8.2: mediated invitations, and 7.8.3 declines, passed on by the room. */
static void invitations(const muc_from_t *from, xml_node_t *st, muc_room_t *r, muc_occ_t *o,
                        xml_node_t *x)
{
    int n = 0;
    for (xml_node_t *c = x->children; c; c = c->next) {
        if (!c->name || !c->ns || strcmp(c->ns, NS_MUC_USER) != 0)
            continue;
        int invite = strcmp(c->name, "invite") == 0;
        if (!invite && strcmp(c->name, "decline") != 0)
            continue;
        if (++n > MUC_INVITES_MAX)
            break;
        char to[JID_MAX + 1];
        jid_t tj;
        if (!xml_node_attr(c, "to") || jid_parse(&tj, xml_node_attr(c, "to")) < 0 ||
            jid_full(&tj, to, sizeof to) < 0) {
            muc_reply_error(from, st, "modify", "jid-malformed");
            return;
        }
        xml_node_t *reason = xml_node_child(c, "reason", NS_MUC_USER);
        xml_node_t *m = xml_node_new("message", XML_NS_CLIENT);
        xml_node_set_attr(m, "from", r->jid);
        xml_node_set_attr(m, "to", to);
        const char *id = xml_node_attr(st, "id");
        if (id)
            xml_node_set_attr(m, "id", id);
        xml_node_t *ox = xml_node_new_child(m, "x", NS_MUC_USER);
        xml_node_t *el = xml_node_new_child(ox, invite ? "invite" : "decline", NS_MUC_USER);
        xml_node_set_attr(el, "from", from->bare);
        if (reason)
            xml_node_add_child(el, xml_node_copy(reason));
        if (invite) {
            if (!o) {
                xml_node_free(&m);
                muc_reply_error(from, st, "cancel", "not-acceptable");
                return;
            }
            muc_aff_t a = muc_room_aff(r, o->bare);
            if (r->cfg.members_only && !r->cfg.allow_invites && a < AFF_ADMIN) {
                xml_node_free(&m);
                muc_reply_error(from, st, "auth", "forbidden");
                return;
            }
            char tb[JID_MAX + 1];
            /* A members-only room lets the invitee in (7.8.2: the service MAY add it to
             * the member list). */
            if (r->cfg.members_only && jid_bare_of(to, tb, sizeof tb) == 0 &&
                muc_room_aff(r, tb) == AFF_NONE && (long)hmap_count(r->aff) < muc.max_affs) {
                muc_room_set_aff(r, tb, AFF_MEMBER);
                if (r->cfg.persistent)
                    muc_store_save(r);
            }
            if (r->cfg.password_protected)
                add_text_child(ox, "password", NS_MUC_USER, r->cfg.password);
            buf_t body = BUF_INIT;
            buf_printf(&body, "%s invites you to the room %s", from->bare, r->jid);
            xml_node_add_text(xml_node_new_child(m, "body", XML_NS_CLIENT), body.data,
                              body.len);
            buf_free(&body);
        } else if (!decline_target_ok(r, to)) {
            /* Section 7.8.3: a decline goes back to whoever invited, someone of the room;
             * the room relays nothing to anybody else (it would be a relay for spam). */
            xml_node_free(&m);
            muc_reply_error(from, st, "modify", "not-acceptable");
            return;
        }
        route_service_stanza(m);
        xml_node_free(&m);
    }
}

/* The value of a data form's field, or NULL (malloc'd). */
static char *form_value(const xml_node_t *x, const char *var)
{
    for (const xml_node_t *f = x->children; f; f = f->next) {
        if (!f->name || strcmp(f->name, "field") != 0)
            continue;
        const char *v = xml_node_attr(f, "var");
        if (v && strcmp(v, var) == 0) {
            xml_node_t *val = xml_node_child(f, "value", NULL);
            return val ? xml_node_text(val) : xstrdup("");
        }
    }
    return NULL;
}

/* Section 7.13 and 8.6: a visitor asks for voice; the moderators get the approval form,
 * and one that submits it with muc#request_allow true gives the voice. */
static void voice_request(const muc_from_t *from, xml_node_t *st, muc_room_t *r, muc_occ_t *o,
                          const xml_node_t *x)
{
    char *allow = form_value(x, "muc#request_allow");
    if (!allow) {
        char *role = form_value(x, "muc#role");
        int ok = role && strcmp(role, "participant") == 0;
        free(role);
        if (!ok) {
            muc_reply_error(from, st, "modify", "bad-request");
            return;
        }
        if (o->role != ROLE_VISITOR)
            return; /* has voice already */
        for (muc_occ_t *m = r->occs; m; m = m->next) {
            if (m->role != ROLE_MODERATOR)
                continue;
            for (int i = 0; i < m->nfull; i++) {
                xml_node_t *msg = xml_node_new("message", XML_NS_CLIENT);
                xml_node_set_attr(msg, "from", r->jid);
                xml_node_set_attr(msg, "to", m->full[i]);
                xml_node_t *f = xml_node_new_child(msg, "x", NS_XDATA);
                xml_node_set_attr(f, "type", "form");
                add_text_child(f, "title", NS_XDATA, "Voice request");
                muccfg_form_field(f, "FORM_TYPE", "hidden", NULL, FORM_MUC_REQUEST);
                muccfg_form_field(f, "muc#role", "list-single", "Requested role", "participant");
                muccfg_form_field(f, "muc#jid", "jid-single", "User ID", o->full[0]);
                muccfg_form_field(f, "muc#roomnick", "text-single", "Room nickname", o->nick);
                muccfg_form_field(f, "muc#request_allow", "boolean", "Grant voice?", "false");
                muc_send(r, msg);
                xml_node_free(&msg);
            }
        }
        return;
    }
    char *nick = form_value(x, "muc#roomnick");
    int yes = strcmp(allow, "true") == 0 || strcmp(allow, "1") == 0;
    free(allow);
    muc_occ_t *t = nick ? muc_occ_by_nick(r, nick) : NULL;
    free(nick);
    if (!t) {
        muc_reply_error(from, st, "cancel", "item-not-found");
        return;
    }
    if (!yes || t->role != ROLE_VISITOR)
        return;
    if (!muccfg_may_set_role(o->role, muc_room_aff(r, o->bare), t->role,
                             muc_room_aff(r, t->bare), ROLE_PARTICIPANT)) {
        muc_reply_error(from, st, "auth", "forbidden");
        return;
    }
    t->role = ROLE_PARTICIPANT;
    muc_pres_opt_t opt = {.actor = o->nick};
    muc_broadcast_presence(r, t, &opt);
}

static void on_room_message(const muc_from_t *from, xml_node_t *st, const char *room,
                            const char *nick)
{
    const char *type = xml_node_attr(st, "type");
    muc_room_t *r = muc_room_find(room);
    muc_occ_t *o = r ? muc_occ_by_full(r, from->full) : NULL;
    if (occupant_error(from, st, type, r, o))
        return;
    if (!r || (r->locked && !o)) {
        muc_reply_error(from, st, "cancel", "item-not-found");
        return;
    }
    xml_node_t *x = xml_node_child(st, "x", NS_MUC_USER);
    if (!*nick && x && (xml_node_child(x, "invite", NS_MUC_USER) ||
                        xml_node_child(x, "decline", NS_MUC_USER))) {
        invitations(from, st, r, o, x);
        return;
    }
    if (!o) {
        /* Section 7.4 / 7.5: only occupants talk in the room. */
        muc_reply_error(from, st, "modify", "not-acceptable");
        return;
    }
    xml_node_t *form = xml_node_child(st, "x", NS_XDATA);
    char *ft = form && !*nick ? form_value(form, "FORM_TYPE") : NULL;
    int request = ft && strcmp(ft, FORM_MUC_REQUEST) == 0;
    free(ft);
    if (request && (!type || strcmp(type, "normal") == 0)) {
        voice_request(from, st, r, o, form);
        return;
    }
    if (!*nick) {
        if (type && strcmp(type, "groupchat") == 0)
            groupchat(from, st, r, o);
        else
            muc_reply_error(from, st, "modify", "bad-request");
        return;
    }
    if (type && strcmp(type, "groupchat") == 0) {
        /* Section 7.5: a groupchat message to one occupant is refused. */
        muc_reply_error(from, st, "modify", "bad-request");
        return;
    }
    private_message(from, st, r, o, nick);
}

/* ---- the service's entry point ---- */

/* Stanzas to rooms that arrive while the persistent rooms are being read at start, kept
 * in order and handled once they are (muc_load_done), at most MUC_HELD_MAX of them. */
#define MUC_HELD_MAX 1024
typedef struct held {
    char *full, *to, *payload;
    int remote; /* from another domain: no session to find again */
    size_t len;
    ipc_kind_t kind;
    struct held *next;
} held_t;
static held_t *held, **held_tail = &held;
static int nheld;

static int held_add(const muc_from_t *from, const ipc_stanza_t *msg, const char *payload, size_t len)
{
    if (nheld >= MUC_HELD_MAX)
        return 0;
    held_t *h = xcalloc(1, sizeof *h);
    h->full = xstrdup(from->full);
    h->remote = !from->s;
    h->to = xstrdup(msg->to);
    h->payload = xmalloc(len + 1);
    memcpy(h->payload, payload, len);
    h->payload[len] = '\0';
    h->len = len;
    h->kind = msg->kind;
    *held_tail = h;
    held_tail = &h->next;
    nheld++;
    return 1;
}

static void on_stanza(session_t *s, const ipc_stanza_t *msg, const char *payload, size_t len);

void muc_load_done(void)
{
    held_t *h = held;
    held = NULL;
    held_tail = &held;
    nheld = 0;
    while (h) {
        held_t *next = h->next;
        session_t *s = muc.rooms && !h->remote ? session_find_jid(h->full) : NULL;
        if (s || (muc.rooms && h->remote)) { /* a client gone meanwhile has nothing to hear */
            ipc_stanza_t m = {.kind = h->kind, .to = h->to, .from = h->full};
            on_stanza(s, &m, h->payload, h->len);
        }
        free(h->full);
        free(h->to);
        free(h->payload);
        free(h);
        h = next;
    }
}


static void room_stanza(const muc_from_t *from, const ipc_stanza_t *msg, const char *payload,
                        size_t len);
static void check_answer(const muc_from_t *from, const xml_node_t *st, const char *room);

/* The service's handler (service.h): a local client's stanza (s its session), or one from
 * a user at another domain (s NULL, msg->from its JID, answers by address). */
static void on_stanza(session_t *s, const ipc_stanza_t *msg, const char *payload, size_t len)
{
    muc_from_t from = {.s = s, .full = s ? s->full : msg->from};
    size_t bl = strcspn(from.full, "/");
    if (bl >= sizeof from.bare)
        return; /* the frontends bound JIDs to JID_MAX */
    memcpy(from.bare, from.full, bl);
    from.bare[bl] = '\0';
    room_stanza(&from, msg, payload, len);
}

static void room_stanza(const muc_from_t *from, const ipc_stanza_t *msg, const char *payload,
                        size_t len)
{
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    xml_node_set_attr(st, "from", from->full);
    /* 'to' arrives prepared (the frontend refuses what nodeprep/resourceprep refuse with
     * jid-malformed); split it: node@domain/nick. */
    const char *to = msg->to;
    const char *at = strchr(to, '@'), *slash = strchr(to, '/');
    if (slash && at && at > slash)
        at = NULL;
    const char *type = xml_node_attr(st, "type");
    int iq = msg->kind == IPC_KIND_IQ;
    int set = type && strcmp(type, "set") == 0;
    if (iq && type && strcmp(type, "get") != 0 && !set) {
        /* Results and errors: answers to iqs the room passed on between occupants, or to
         * the room's own check on a remote occupant (remote_check). */
        if (at && slash)
            muc_iq_answer(from, st);
        else if (at)
            check_answer(from, st, to);
        xml_node_free(&st);
        ghosts_flush();
        return;
    }
    if (!at) {
        if (iq)
            muc_service_iq(from, st, set);
        else if (msg->kind == IPC_KIND_MESSAGE || !type || strcmp(type, "error") != 0)
            muc_reply_error(from, st, "cancel", msg->kind == IPC_KIND_PRESENCE
                                                ? "service-unavailable" : "bad-request");
        xml_node_free(&st);
        return;
    }
    char room[JID_MAX + 1], node[JID_PART_MAX + 1], prepped[JID_PART_MAX + 1];
    size_t nl = (size_t)(at - to);
    size_t rl = slash ? (size_t)(slash - to) : strlen(to);
    if (nl == 0 || nl > JID_PART_MAX || rl >= sizeof room) {
        muc_reply_error(from, st, "modify", "jid-malformed");
        xml_node_free(&st);
        return;
    }
    memcpy(node, to, nl);
    node[nl] = '\0';
    memcpy(room, to, rl);
    room[rl] = '\0';
    /* A room name is a prepared localpart (XEP-0045 section 15.1); the frontend prepares
     * 'to', this guards the router against any other path. */
    if (jid_prep_local(prepped, node) < 0 || strcmp(prepped, node) != 0) {
        muc_reply_error(from, st, "modify", "jid-malformed");
        xml_node_free(&st);
        return;
    }
    const char *nick = slash ? slash + 1 : "";
    if (!muc.loaded && !muc_room_find(room)) {
        /* The persistent rooms are being read (router start): the stanza waits for them
         * (bounded), or is refused when too many wait. */
        if (!held_add(from, msg, payload, len))
            muc_reply_error(from, st, "wait", "resource-constraint");
        xml_node_free(&st);
        return;
    }
    if (msg->kind == IPC_KIND_PRESENCE)
        on_room_presence(from, st, room, nick);
    else if (msg->kind == IPC_KIND_MESSAGE)
        on_room_message(from, st, room, nick);
    else
        muc_room_iq(from, st, room, nick, set);
    xml_node_free(&st);
    ghosts_flush();
}

/* ---- hooks ---- */

/* The ids of the room's checks on remote occupants: this prefix, then a counter. */
#define CHECK_ID "muc-check-"

/* HOOK_REMOTE_LOST: the server connection that carried a remote user's stanzas is gone
 * (its server crashed, or the connection or our s2s frontend died), and a server that
 * crashed never says its users left (XEP-0045 section 18.1: ghosts). The rooms ask each
 * remote occupant of that domain (of every domain when an s2s frontend went away) with an
 * XEP-0199 ping from the room's JID: a server that is down bounces it
 * (remote-server-not-found or -timeout) and that takes the occupant out (check_answer); a
 * client that is there answers. The checks wait for a second, so that a server whose
 * connections break again and again costs one pass a second, and while no s2s frontend is
 * alive (the pings could not leave) they wait for one. */
static struct {
    hmap_t *domains; /* domain -> 1: to check */
    int all;         /* every remote occupant */
    ev_timer_t *timer;
    unsigned long next_id;
} checks;

#define CHECK_DELAY_MS 1000

static int check_wanted(const char *bare)
{
    if (!remote_jid(bare))
        return 0;
    const char *at = strchr(bare, '@');
    return checks.all || hmap_sget(checks.domains, at ? at + 1 : bare);
}

static void on_check_timer(evloop_t *loop, void *ud)
{
    (void)ud;
    checks.timer = NULL;
    if (!muc.rooms)
        return;
    if (!remote_frontend("x.invalid", strlen("x.invalid"))) {
        checks.timer = evloop_timer(loop, CHECK_DELAY_MS, on_check_timer, NULL);
        return;
    }
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(muc.rooms, &pos, &k, &kl, &v)) {
        muc_room_t *r = v;
        for (muc_occ_t *o = r->occs; o; o = o->next) {
            if (!check_wanted(o->bare))
                continue;
            for (int i = 0; i < o->nfull; i++) {
                char id[40];
                snprintf(id, sizeof id, CHECK_ID "%lu", ++checks.next_id);
                xml_node_t *iq = xml_node_new("iq", XML_NS_CLIENT);
                xml_node_set_attr(iq, "type", "get");
                xml_node_set_attr(iq, "id", id);
                xml_node_set_attr(iq, "from", r->jid);
                xml_node_set_attr(iq, "to", o->full[i]);
                xml_node_new_child(iq, "ping", "urn:xmpp:ping");
                route_service_stanza(iq);
                xml_node_free(&iq);
            }
        }
    }
    hmap_destroy(&checks.domains);
    checks.all = 0;
}

static mod_result_t on_remote_lost(hook_ev_t *ev)
{
    if (!*muc.domain || !muc.rooms)
        return MOD_PASS;
    if (!ev->from) {
        checks.all = 1;
    } else if (!checks.all) {
        if (!checks.domains)
            checks.domains = hmap_new();
        /* Bounded by the domains with a connection to us (s2s_max_connections). */
        hmap_sput(checks.domains, ev->from, (void *)1);
    }
    if (!checks.timer)
        checks.timer = evloop_timer(rt.loop, CHECK_DELAY_MS, on_check_timer, NULL);
    return MOD_PASS;
}

/* An iq result or error to a room's bare JID: an error to one of its checks that means
 * the occupant's client is gone takes that full JID out (status 333); the rest is
 * nothing to the room. */
static void check_answer(const muc_from_t *from, const xml_node_t *st, const char *room)
{
    const char *id = xml_node_attr(st, "id"), *type = xml_node_attr(st, "type");
    /* Not service-unavailable: a client without XEP-0199 answers so (RFC 6120 8.4), and
     * so does a server for a client that is gone; the room cannot tell the two apart, and
     * the next groupchat message that server refuses takes the ghost out (occupant_error). */
    const xml_node_t *e = xml_node_child(st, "error", NULL);
    if (!id || strncmp(id, CHECK_ID, strlen(CHECK_ID)) != 0 || !type ||
        strcmp(type, "error") != 0 || !error_means_gone(st) ||
        (e && xml_node_child(e, "service-unavailable", NS_STANZAS)))
        return;
    muc_room_t *r = muc_room_find(room);
    muc_occ_t *o = r ? muc_occ_by_full(r, from->full) : NULL;
    if (o)
        leave_full(r, o, from->full, NULL, 0, 333);
}

/* The full JID leaves every room it is in, the others told. */
static void leave_everywhere(const char *full)
{
    if (!hmap_sget(joined, full))
        return;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    /* Collect first: leaving may destroy rooms (changing the map). */
    char **names = NULL;
    size_t n = 0;
    while (hmap_next(muc.rooms, &pos, &k, &kl, &v))
        if (muc_occ_by_full(v, full)) {
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = xstrdup(((muc_room_t *)v)->jid);
        }
    for (size_t i = 0; i < n; i++) {
        muc_room_t *r = muc_room_find(names[i]);
        muc_occ_t *o = r ? muc_occ_by_full(r, full) : NULL;
        if (o)
            leave_full(r, o, full, NULL, 0, 0);
        free(names[i]);
    }
    free(names);
    ghosts_flush();
}

static mod_result_t on_session_ended(hook_ev_t *ev)
{
    if (*muc.domain)
        leave_everywhere(ev->session->full);
    return MOD_PASS;
}

/* Broadcast unavailable presence (no 'to') takes the client out of its rooms too. */
static mod_result_t on_presence(hook_ev_t *ev)
{
    const char *type = ev->st ? xml_node_attr(ev->st, "type") : NULL;
    if (*muc.domain && ev->st && !xml_node_attr(ev->st, "to") && type &&
        strcmp(type, "unavailable") == 0)
        leave_everywhere(ev->session->full);
    return MOD_PASS;
}

static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    if (*muc.domain)
        muc_user_deleted(ev->user->bare);
    ghosts_flush();
    return MOD_PASS;
}

static const mod_hook_t hooks[] = {
    {HOOK_SESSION_ENDED, 10, on_session_ended},
    {HOOK_PRESENCE, 10, on_presence},
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {HOOK_REMOTE_LOST, 0, on_remote_lost},
    {0},
};

void muc_occ_apply_aff(muc_room_t *r, const char *bare, muc_aff_t a, const char *reason,
                       const char *actor)
{
    /* Every occupant of that bare JID follows its new affiliation: out when banned
     * (301, section 9.1) or no longer allowed in a members-only room (321, 9.4). A domain
     * (no '@') banned takes out its users that have no affiliation of their own. */
    int domain = !strchr(bare, '@');
    muc_occ_t *o = r->occs;
    while (o) {
        muc_occ_t *next = o->next;
        const char *at = strchr(o->bare, '@');
        int of_domain = domain && a == AFF_OUTCAST && at && strcmp(at + 1, bare) == 0 &&
                        !hmap_sget(r->aff, o->bare);
        if (strcmp(o->bare, bare) == 0 || of_domain) {
            if (a == AFF_OUTCAST || (r->cfg.members_only && a < AFF_MEMBER)) {
                muc_pres_opt_t opt = {.type = "unavailable", .reason = reason,
                                      .actor = actor, .ncodes = 1,
                                      .codes = {a == AFF_OUTCAST ? 301 : 321}};
                char *jid = xstrdup(r->jid);
                muc_occ_remove(r, o, &opt);
                int gone = muc_room_find(jid) == NULL; /* a temporary room left empty */
                free(jid);
                if (gone)
                    return;
            } else {
                muc_role_t nr = muccfg_default_role(&r->cfg, a);
                if (nr != ROLE_NONE)
                    o->role = nr;
                muc_pres_opt_t opt = {.reason = reason, .actor = actor};
                muc_broadcast_presence(r, o, &opt);
            }
        }
        o = next;
    }
}

/* ---- configuration, open, close ---- */

static const config_key_t config_keys[] = {
    CONFIG_STR("muc_domain", "",
               "domain of the multi-user chat service (XEP-0045); empty: conference.DOMAIN; "
               "off: no service"),
    CONFIG_BOOL("muc_register", "true",
                "users may register a nickname with a room (XEP-0045 section 7.10)"),
    CONFIG_INT("muc_max_rooms", "10000", 1, 10000000,
               "rooms the service holds in all (persistent and temporary)"),
    CONFIG_INT("muc_max_rooms_per_user", "50", 1, 1000000,
               "rooms one user may own (create)"),
    CONFIG_INT("muc_max_occupants", "500", 1, 100000,
               "occupants one room may have (a room's max_users may be lower)"),
    CONFIG_INT("muc_max_history", "50", 0, 1000,
               "messages of history a room may give on join at most (its history_max cap)"),
    CONFIG_INT("muc_max_nick", "64", 1, 1023, "bytes a room nickname may have"),
    /* Read by muc_archive.c (muc_archive_open). */
    CONFIG_INT("muc_archive_expires_after", "604800", 0, 3153600000L, "seconds a room's message stays in its archive and history (XEP-0313, XEP-0045 history); 0 keeps it forever"),
    CONFIG_INT("muc_archive_max_messages", "10000", 1, 10000000, "most messages one room's archive keeps (the oldest go first)"),
    CONFIG_INT("muc_archive_max_page", "100", 1, 10000, "most messages one XEP-0313 query to a room returns (a larger RSM max is lowered to it)"),
    CONFIG_INT("muc_max_affiliations", "1000", 10, 1000000,
               "affiliations (and registered nicknames) one room may keep"),
    CONFIG_END,
};

static void muc_open(void)
{
    const char *d = config_str("muc_domain");
    muc.domain[0] = '\0';
    if (strcmp(d, "off") == 0)
        return;
    if (*d) {
        if (jid_prep_domain(muc.domain, d) < 0)
            log_fatal("muc_domain: '%s' is not a domain name", d);
    } else {
        snprintf(muc.domain, sizeof muc.domain, "conference.%s", rt.domain);
    }
    muc.reg = config_bool("muc_register");
    muc.max_rooms = config_int("muc_max_rooms");
    muc.max_rooms_per_user = config_int("muc_max_rooms_per_user");
    muc.max_occupants = config_int("muc_max_occupants");
    muc.max_history = config_int("muc_max_history");
    muc.max_nick = config_int("muc_max_nick");
    muc.max_affs = config_int("muc_max_affiliations");
    muc.rooms = hmap_new();
    joined = hmap_new();
    ghost_keys = hmap_new();
    joining = hmap_new();
    muc_iq_open();
    if (RAND_bytes(oid_secret, sizeof oid_secret) != 1)
        log_fatal("muc: no random bytes for the occupant-id secret");
    service_add(muc.domain, "Chatrooms", on_stanza, 1); /* users of other domains too */
    muc_archive_open();
    muc_store_load();
}

void muc_set_secret(const unsigned char *s, size_t n)
{
    if (n >= sizeof oid_secret)
        memcpy(oid_secret, s, sizeof oid_secret);
}

static void muc_close(void)
{
    if (!muc.rooms)
        return;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(muc.rooms, &pos, &k, &kl, &v)) {
        muc_room_t *r = v;
        room_free(&r);
    }
    hmap_destroy(&muc.rooms);
    hmap_destroy(&joined);
    muc_iq_close();
    muc.loaded = 1;
    muc.rooms = NULL;
    muc_load_done(); /* frees what still waits */
    while (ghosts) {
        ghost_t *g = ghosts;
        ghosts = g->next;
        free(g->room);
        free(g->full);
        free(g);
    }
    ghosts_tail = &ghosts;
    hmap_destroy(&ghost_keys);
    evloop_cancel(rt.loop, &checks.timer);
    hmap_destroy(&checks.domains);
    checks.all = 0;
    pos = 0;
    while (hmap_next(joining, &pos, &k, &kl, &v)) {
        joining_t *j = v;
        joinheld_free(j->head);
        free(j);
    }
    hmap_destroy(&joining);
    muc_archive_close();
}

module_t mod_muc = {
    .name = "muc",
    .hooks = hooks,
    .config = config_keys,
    .open = muc_open,
    .close = muc_close,
};
