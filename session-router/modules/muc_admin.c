/* XEP-0045 administration of mod_muc's rooms: the muc#admin lists and changes (roles:
 * kick, voice, moderator; affiliations: ban, member, admin, owner), the muc#owner
 * configuration form and destruction, nickname registration (section 7.10), the storage
 * of persistent rooms in Redis (keys.h KEYS_MUC_*) and account deletion. Who may do what
 * comes from core/muccfg.h. */
#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"
#include "keys.h"
#include "log.h"
#include "module.h"
#include "muc.h"
#include "route.h"
#include "stanza.h"
#include "storage.h"
#include "util.h"

#define NS_XDATA "jabber:x:data"
#define NS_REGISTER "jabber:iq:register"
#define MUC_ADMIN_ITEMS_MAX 64 /* items in one muc#admin set */

static int bare_of(const char *s, char *out, size_t n)
{
    jid_t j;
    if (!s || jid_parse(&j, s) < 0)
        return -1;
    j.resource[0] = '\0';
    return jid_bare(&j, out, n) < 0 ? -1 : 0;
}

static char *child_text(const xml_node_t *n, const char *name, const char *ns)
{
    xml_node_t *c = n ? xml_node_child(n, name, ns) : NULL;
    return c ? xml_node_text(c) : NULL;
}

static int count_aff(const muc_room_t *r, muc_aff_t a)
{
    int n = 0;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(r->aff, &pos, &k, &kl, &v))
        if ((muc_aff_t)((intptr_t)v - 2) == a)
            n++;
    return n;
}

/* ---- muc#admin (sections 8, 9, 10.3 ff.) ---- */

static void admin_get(const muc_from_t *from, xml_node_t *st, muc_room_t *r, const xml_node_t *q,
                      muc_role_t ar, muc_aff_t aa)
{
    xml_node_t *item = xml_node_child(q, "item", NS_MUC_ADMIN);
    const char *as = item ? xml_node_attr(item, "affiliation") : NULL;
    const char *rs = item ? xml_node_attr(item, "role") : NULL;
    int af = as ? muccfg_aff_parse(as) : -2, ro = rs ? muccfg_role_parse(rs) : -2;
    if (!item || (as && af == -2) || (rs && ro == -2) || (!as && !rs) || (as && rs)) {
        session_reply_error(from->s, st, "modify", "bad-request");
        return;
    }
    if (!muccfg_may_list(ar, aa, as ? (muc_aff_t)af : AFF_NONE, rs ? (muc_role_t)ro : ROLE_NONE)) {
        session_reply_error(from->s, st, "auth", "forbidden");
        return;
    }
    xml_node_t *res = xml_node_new("query", NS_MUC_ADMIN);
    if (as) {
        size_t pos = 0, kl;
        const void *k;
        void *v;
        while (hmap_next(r->aff, &pos, &k, &kl, &v)) {
            if ((muc_aff_t)((intptr_t)v - 2) != (muc_aff_t)af)
                continue;
            xml_node_t *it = xml_node_new_child(res, "item", NULL);
            xml_node_set_attr(it, "affiliation", as);
            xml_node_set_attr(it, "jid", k);
            const char *nick = hmap_sget(r->regs, (const char *)k);
            if (nick)
                xml_node_set_attr(it, "nick", nick);
        }
    } else {
        for (muc_occ_t *o = r->occs; o; o = o->next) {
            if (o->role != (muc_role_t)ro)
                continue;
            xml_node_t *it = xml_node_new_child(res, "item", NULL);
            xml_node_set_attr(it, "role", rs);
            xml_node_set_attr(it, "nick", o->nick);
            xml_node_set_attr(it, "affiliation", muccfg_aff_name(muc_room_aff(r, o->bare)));
            xml_node_set_attr(it, "jid", o->full[0]);
        }
    }
    session_reply_result(from->s, st, res);
}

typedef struct {
    int is_role;
    muc_occ_t *occ;       /* role changes */
    char bare[JID_MAX + 1]; /* affiliation changes */
    int to;
    char *reason;
} change_t;

static void admin_set(const muc_from_t *from, xml_node_t *st, muc_room_t *r, const xml_node_t *q,
                      muc_occ_t *actor, muc_role_t ar, muc_aff_t aa)
{
    change_t *ch = xcalloc(MUC_ADMIN_ITEMS_MAX, sizeof *ch);
    int n = 0;
    long added = 0; /* affiliations this request creates */
    long owners = -1; /* owners once the request's items are applied (-1: not counted yet) */
    const char *etype = NULL, *cond = NULL;
    /* Every item is checked before any is applied: a request changes all or nothing. */
    for (xml_node_t *it = q->children; it && !cond; it = it->next) {
        if (!it->name || strcmp(it->name, "item") != 0 || !it->ns ||
            strcmp(it->ns, NS_MUC_ADMIN) != 0)
            continue;
        if (n == MUC_ADMIN_ITEMS_MAX) {
            etype = "modify", cond = "not-acceptable";
            break;
        }
        change_t *c = &ch[n];
        memset(c, 0, sizeof *c);
        const char *rs = xml_node_attr(it, "role"), *as = xml_node_attr(it, "affiliation");
        const char *nick = xml_node_attr(it, "nick"), *jid = xml_node_attr(it, "jid");
        if ((rs && as) || (!rs && !as)) {
            etype = "modify", cond = "bad-request";
            break;
        }
        if (rs) {
            int to = muccfg_role_parse(rs);
            muc_occ_t *t = nick ? muc_occ_by_nick(r, nick) : NULL;
            if (to == -2 || !nick) {
                etype = "modify", cond = "bad-request";
                break;
            }
            if (!t) {
                etype = "cancel", cond = "item-not-found";
                break;
            }
            if (!muccfg_may_set_role(ar, aa, t->role, muc_room_aff(r, t->bare),
                                     (muc_role_t)to)) {
                /* Section 8.2: a moderator acting on someone above: not-allowed; anybody
                 * else: forbidden. */
                etype = ar == ROLE_MODERATOR ? "cancel" : "auth";
                cond = ar == ROLE_MODERATOR ? "not-allowed" : "forbidden";
                break;
            }
            c->is_role = 1;
            c->occ = t;
            c->to = to;
        } else {
            int to = muccfg_aff_parse(as);
            if (to == -2) {
                etype = "modify", cond = "bad-request";
                break;
            }
            if (jid) {
                if (bare_of(jid, c->bare, sizeof c->bare) < 0) {
                    etype = "modify", cond = "jid-malformed";
                    break;
                }
            } else {
                muc_occ_t *t = nick ? muc_occ_by_nick(r, nick) : NULL;
                if (!t) {
                    etype = nick ? "cancel" : "modify";
                    cond = nick ? "item-not-found" : "bad-request";
                    break;
                }
                snprintf(c->bare, sizeof c->bare, "%s", t->bare);
            }
            muc_aff_t ta = muc_room_aff(r, c->bare);
            /* muc_max_affiliations bounds a room's lists (memory and its Redis hash): every
             * new entry counts, also one for a user whose domain is banned (it reads as
             * outcast without an entry of its own). */
            if (!hmap_sget(r->aff, c->bare) && to != AFF_NONE &&
                (long)hmap_count(r->aff) + ++added > muc.max_affs) {
                etype = "modify", cond = "policy-violation";
                break;
            }
            if (!muccfg_may_set_aff(aa, ta, (muc_aff_t)to)) {
                etype = aa >= AFF_ADMIN ? "cancel" : "auth";
                cond = aa >= AFF_ADMIN ? "not-allowed" : "forbidden";
                break;
            }
            /* Section 10.7: the room keeps an owner; counted over the whole request, so
             * several items cannot remove every owner together. */
            if (owners < 0)
                owners = count_aff(r, AFF_OWNER);
            owners += (to == AFF_OWNER) - (ta == AFF_OWNER);
            if (owners < 1) {
                etype = "cancel", cond = "conflict";
                break;
            }
            c->to = to;
        }
        c->reason = child_text(it, "reason", NS_MUC_ADMIN);
        n++;
    }
    if (!cond && n == 0)
        etype = "modify", cond = "bad-request";
    if (cond) {
        for (int i = 0; i < n; i++)
            free(ch[i].reason);
        free(ch);
        session_reply_error(from->s, st, etype, cond);
        return;
    }
    session_reply_result(from->s, st, NULL);
    char *rjid = xstrdup(r->jid);
    const char *actor_nick = actor ? actor->nick : NULL;
    char *anick = actor_nick ? xstrdup(actor_nick) : NULL;
    int dirty = 0;
    for (int i = 0; i < n; i++) {
        change_t *c = &ch[i];
        if (!(r = muc_room_find(rjid)))
            break;
        if (c->is_role) {
            muc_occ_t *t = c->occ;
            /* The target may be gone by an earlier item of this request. */
            int there = 0;
            for (muc_occ_t *o = r->occs; o; o = o->next)
                there |= o == t;
            if (!there)
                continue;
            if (c->to == ROLE_NONE) {
                /* Section 8.2: kicked, status 307. */
                muc_pres_opt_t opt = {.type = "unavailable", .codes = {307}, .ncodes = 1,
                                      .reason = c->reason, .actor = anick};
                muc_occ_remove(r, t, &opt);
            } else {
                t->role = (muc_role_t)c->to;
                muc_pres_opt_t opt = {.reason = c->reason, .actor = anick};
                muc_broadcast_presence(r, t, &opt);
            }
        } else {
            muc_room_set_aff(r, c->bare, (muc_aff_t)c->to);
            dirty = 1;
            muc_occ_apply_aff(r, c->bare, (muc_aff_t)c->to, c->reason, anick);
        }
    }
    for (int i = 0; i < n; i++)
        free(ch[i].reason);
    free(ch);
    if (dirty && (r = muc_room_find(rjid)) && r->cfg.persistent)
        muc_store_save(r);
    free(rjid);
    free(anick);
}

void muc_admin_iq(const muc_from_t *from, xml_node_t *st, muc_room_t *r, const xml_node_t *q)
{
    muc_occ_t *o = muc_occ_by_full(r, from->full);
    muc_role_t ar = o ? o->role : ROLE_NONE;
    muc_aff_t aa = muc_room_aff(r, from->bare);
    const char *type = xml_node_attr(st, "type");
    if (type && strcmp(type, "set") == 0)
        admin_set(from, st, r, q, o, ar, aa);
    else
        admin_get(from, st, r, q, ar, aa);
}

/* ---- muc#owner (section 10) ---- */

static void notify_config_change(muc_room_t *r, const muccfg_t *before)
{
    /* Section 10.2.1: occupants learn that the configuration changed (status 104), and
     * whether the room now keeps an archive (170/171) or shows real JIDs (172/173). */
    int extra[2], n = 0;
    if (r->cfg.archive != before->archive)
        extra[n++] = r->cfg.archive ? 170 : 171;
    if ((r->cfg.whois == WHO_ANYONE) != (before->whois == WHO_ANYONE))
        extra[n++] = r->cfg.whois == WHO_ANYONE ? 172 : 173;
    for (muc_occ_t *o = r->occs; o; o = o->next)
        for (int i = 0; i < o->nfull; i++) {
            xml_node_t *m = xml_node_new("message", XML_NS_CLIENT);
            xml_node_set_attr(m, "from", r->jid);
            xml_node_set_attr(m, "to", o->full[i]);
            xml_node_set_attr(m, "type", "groupchat");
            xml_node_t *x = xml_node_new_child(m, "x", NS_MUC_USER);
            xml_node_set_attr(xml_node_new_child(x, "status", NULL), "code", "104");
            for (int k = 0; k < n; k++) {
                char c[8];
                snprintf(c, sizeof c, "%d", extra[k]);
                xml_node_set_attr(xml_node_new_child(x, "status", NULL), "code", c);
            }
            muc_send(r, m);
            xml_node_free(&m);
        }
}

void muc_owner_iq(const muc_from_t *from, xml_node_t *st, muc_room_t *r, const xml_node_t *q)
{
    const char *type = xml_node_attr(st, "type");
    int set = type && strcmp(type, "set") == 0;
    if (muc_room_aff(r, from->bare) != AFF_OWNER) {
        session_reply_error(from->s, st, "auth", "forbidden");
        return;
    }
    if (!set) {
        xml_node_t *res = xml_node_new("query", NS_MUC_OWNER);
        xml_node_add_child(res, muccfg_form(&r->cfg, (int)muc.max_occupants));
        session_reply_result(from->s, st, res);
        return;
    }
    xml_node_t *destroy = xml_node_child(q, "destroy", NS_MUC_OWNER);
    if (destroy) {
        /* Section 10.9: occupants get the alternate venue and the reason. */
        xml_node_t *d = xml_node_new("destroy", NS_MUC_USER);
        const char *alt = xml_node_attr(destroy, "jid");
        char altb[JID_MAX + 1];
        if (alt) {
            if (bare_of(alt, altb, sizeof altb) < 0) {
                xml_node_free(&d);
                session_reply_error(from->s, st, "modify", "jid-malformed");
                return;
            }
            xml_node_set_attr(d, "jid", altb);
        }
        char *reason = child_text(destroy, "reason", NS_MUC_OWNER);
        if (reason) {
            xml_node_add_text(xml_node_new_child(d, "reason", NULL), reason, strlen(reason));
            free(reason);
        }
        session_reply_result(from->s, st, NULL);
        muc_room_destroy(r, d);
        xml_node_free(&d);
        return;
    }
    xml_node_t *x = xml_node_child(q, "x", NS_XDATA);
    if (!x) {
        session_reply_error(from->s, st, "modify", "bad-request");
        return;
    }
    const char *xt = xml_node_attr(x, "type");
    if (xt && strcmp(xt, "cancel") == 0) {
        session_reply_result(from->s, st, NULL);
        /* Section 10.1.3: cancelling the first configuration destroys the new room. */
        if (r->locked)
            muc_room_destroy(r, NULL);
        return;
    }
    muccfg_t before = r->cfg;
    muccfg_err_t err = {0};
    if (muccfg_apply(&r->cfg, x, (int)muc.max_occupants, &err) < 0) {
        session_reply_error(from->s, st, err.etype ? err.etype : "modify",
                            err.cond ? err.cond : "bad-request");
        return;
    }
    session_reply_result(from->s, st, NULL);
    int was_locked = r->locked;
    r->locked = 0; /* section 10.1.2 / 10.1.3: configured (or accepted as is): open */
    if (r->cfg.persistent)
        muc_store_save(r);
    else if (before.persistent)
        muc_store_delete(r->jid);
    if (!was_locked)
        notify_config_change(r, &before);
    if (r->cfg.members_only && !before.members_only) {
        /* Section 9.3 / 10.2: a room becoming members-only takes out who is not a member
         * (status 322). */
        char *rjid = xstrdup(r->jid);
        muc_occ_t *o = r->occs;
        while (o && muc_room_find(rjid) == r) {
            muc_occ_t *next = o->next;
            if (muc_room_aff(r, o->bare) < AFF_MEMBER) {
                muc_pres_opt_t opt = {.type = "unavailable", .codes = {322}, .ncodes = 1};
                muc_occ_remove(r, o, &opt);
                if (muc_room_find(rjid) != r)
                    break;
            }
            o = next;
        }
        free(rjid);
    } else {
        muc_room_gc(r);
    }
}

/* ---- registration (section 7.10) ---- */

void muc_register_iq(const muc_from_t *from, xml_node_t *st, muc_room_t *r, const xml_node_t *q)
{
    const char *type = xml_node_attr(st, "type");
    const char *bare = from->bare;
    muc_aff_t a = muc_room_aff(r, bare);
    const char *mine = hmap_sget(r->regs, bare);
    if (!type || strcmp(type, "set") != 0) {
        xml_node_t *res = xml_node_new("query", NS_REGISTER);
        if (mine) {
            xml_node_new_child(res, "registered", NULL);
            xml_node_add_text(xml_node_new_child(res, "username", NULL), mine, strlen(mine));
        } else {
            xml_node_add_text(xml_node_new_child(res, "instructions", NULL),
                              "Choose the nickname to reserve in this room",
                              strlen("Choose the nickname to reserve in this room"));
            xml_node_t *x = xml_node_new_child(res, "x", NS_XDATA);
            xml_node_set_attr(x, "type", "form");
            xml_node_t *f = xml_node_new_child(x, "field", NULL);
            xml_node_set_attr(f, "var", "FORM_TYPE");
            xml_node_set_attr(f, "type", "hidden");
            xml_node_add_text(xml_node_new_child(f, "value", NULL), FORM_MUC_REGISTER,
                              strlen(FORM_MUC_REGISTER));
            f = xml_node_new_child(x, "field", NULL);
            xml_node_set_attr(f, "var", "muc#register_roomnick");
            xml_node_set_attr(f, "type", "text-single");
            xml_node_set_attr(f, "label", "Nickname");
            xml_node_new_child(f, "required", NULL);
        }
        session_reply_result(from->s, st, res);
        return;
    }
    if (a == AFF_OUTCAST) {
        session_reply_error(from->s, st, "auth", "forbidden");
        return;
    }
    /* Nicknames are reserved by this server's users: a server at another domain can make
     * up users without end and would fill every room's registrations (muc_max_affiliations)
     * and squat its nicknames. An admin can still make a remote user a member. */
    if (!from->s) {
        session_reply_error(from->s, st, "cancel", "not-allowed");
        return;
    }
    if (xml_node_child(q, "remove", NS_REGISTER)) {
        char *old = hmap_sdel(r->regs, bare);
        if (!old) {
            session_reply_error(from->s, st, "cancel", "item-not-found");
            return;
        }
        free(old);
        session_reply_result(from->s, st, NULL);
        if (r->cfg.persistent)
            muc_store_save(r);
        return;
    }
    /* A members-only room registers its members only. */
    if (r->cfg.members_only && a < AFF_MEMBER) {
        session_reply_error(from->s, st, "auth", "registration-required");
        return;
    }
    xml_node_t *x = xml_node_child(q, "x", NS_XDATA);
    char *nick = NULL, *ftype = NULL;
    for (xml_node_t *f = x ? x->children : NULL; f; f = f->next) {
        if (!f->name || strcmp(f->name, "field") != 0)
            continue;
        const char *var = xml_node_attr(f, "var");
        if (var && strcmp(var, "muc#register_roomnick") == 0 && !nick)
            nick = child_text(f, "value", NULL);
        else if (var && strcmp(var, "FORM_TYPE") == 0 && !ftype)
            ftype = child_text(f, "value", NULL);
    }
    char prepped[JID_PART_MAX + 1];
    const char *xtype = x ? xml_node_attr(x, "type") : NULL;
    int bad = !x || !xtype || strcmp(xtype, "submit") != 0 || !nick || !*nick ||
              (ftype && strcmp(ftype, FORM_MUC_REGISTER) != 0) ||
              (long)strlen(nick) > muc.max_nick || jid_prep_resource(prepped, nick) < 0;
    free(ftype);
    if (bad) {
        free(nick);
        session_reply_error(from->s, st, "modify", "bad-request");
        return;
    }
    free(nick);
    /* Taken by someone else (registered, or an occupant of another user): conflict. */
    const char *holder = muc_reg_owner(r, prepped);
    muc_occ_t *o = muc_occ_by_nick(r, prepped);
    if ((holder && strcmp(holder, bare) != 0) || (o && strcmp(o->bare, bare) != 0)) {
        session_reply_error(from->s, st, "cancel", "conflict");
        return;
    }
    if (!hmap_sget(r->regs, bare) && (long)hmap_count(r->regs) >= muc.max_affs) {
        session_reply_error(from->s, st, "modify", "policy-violation");
        return;
    }
    free(hmap_sput(r->regs, bare, xstrdup(prepped)));
    session_reply_result(from->s, st, NULL);
    if (r->cfg.persistent)
        muc_store_save(r);
}

/* ---- storage ---- */

static int room_key(char *out, size_t n, const char *room)
{
    return keys_user(out, n, rt.redis_prefix, KEYS_MUC_ROOM, room);
}

void muc_store_save(const muc_room_t *r)
{
    if (!rt.redis_ready) {
        log_warn("muc: Redis is not connected: room %s not saved", r->jid);
        return;
    }
    char key[STORAGE_KEY_MAX], set[STORAGE_KEY_MAX];
    if (room_key(key, sizeof key, r->jid) < 0 ||
        keys_global(set, sizeof set, rt.redis_prefix, KEYS_MUC_ROOMS) < 0)
        return;
    /* One transaction rewrites the whole room (rooms are small and change rarely). */
    size_t cap = 8 + 2 * (hmap_count(r->aff) + hmap_count(r->regs)), argc = 0;
    const char **argv = xcalloc(cap, sizeof *argv);
    size_t *lens = xcalloc(cap, sizeof *lens);
    char **own = xcalloc(cap, sizeof *own);
    buf_t cfg = BUF_INIT;
    muccfg_encode(&r->cfg, &cfg);
    argv[argc++] = "HSET";
    argv[argc++] = key;
    argv[argc++] = "cfg";
    argv[argc++] = cfg.data ? cfg.data : "";
    argv[argc++] = "subject";
    argv[argc++] = r->subject;
    argv[argc++] = "subjectby";
    argv[argc++] = r->subject_by;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(r->aff, &pos, &k, &kl, &v)) {
        buf_t f = BUF_INIT;
        buf_printf(&f, "a:%s", (const char *)k);
        own[argc] = f.data;
        argv[argc++] = f.data;
        argv[argc++] = muccfg_aff_name((muc_aff_t)((intptr_t)v - 2));
    }
    pos = 0;
    while (hmap_next(r->regs, &pos, &k, &kl, &v)) {
        buf_t f = BUF_INIT;
        buf_printf(&f, "n:%s", (const char *)k);
        own[argc] = f.data;
        argv[argc++] = f.data;
        argv[argc++] = v;
    }
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    rt_redis_command(rt_redis_ignore, NULL, "MULTI");
    rt_redis_command(rt_redis_ignore, NULL, "DEL %s", key);
    rt_redis_command_argv(rt_redis_ignore, NULL, (int)argc, argv, lens);
    rt_redis_command(rt_redis_ignore, NULL, "SADD %s %s", set, r->jid);
    rt_redis_command(rt_redis_ignore, NULL, "EXEC");
    for (size_t i = 0; i < argc; i++)
        free(own[i]);
    free(own);
    free(argv);
    free(lens);
    buf_free(&cfg);
}

void muc_store_delete(const char *room)
{
    char key[STORAGE_KEY_MAX], set[STORAGE_KEY_MAX];
    if (!rt.redis_ready || room_key(key, sizeof key, room) < 0 ||
        keys_global(set, sizeof set, rt.redis_prefix, KEYS_MUC_ROOMS) < 0)
        return;
    rt_redis_command(rt_redis_ignore, NULL, "DEL %s", key);
    rt_redis_command(rt_redis_ignore, NULL, "SREM %s %s", set, room);
}

static int load_pending;
static ev_timer_t *load_timer;

static void load_done_one(void)
{
    if (--load_pending == 0) {
        muc.loaded = 1;
        log_info("muc: %zu persistent rooms loaded", hmap_count(muc.rooms));
        muc_load_done();
    }
}

static void on_room_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    redisReply *rep = reply;
    char *jid = privdata;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 && muc.rooms &&
        !muc_room_find(jid) && (long)hmap_count(muc.rooms) < muc.max_rooms) {
        muc_room_t *r = muc_room_new(jid);
        for (size_t i = 0; i + 1 < rep->elements; i += 2) {
            const redisReply *f = rep->element[i], *v = rep->element[i + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(f->str, "cfg") == 0) {
                muccfg_decode(v->str, &r->cfg);
            } else if (strcmp(f->str, "subject") == 0) {
                free(r->subject);
                r->subject = xstrdup(v->str);
            } else if (strcmp(f->str, "subjectby") == 0) {
                free(r->subject_by);
                r->subject_by = xstrdup(v->str);
            } else if (strncmp(f->str, "a:", 2) == 0) {
                int a = muccfg_aff_parse(v->str);
                if (a != -2 && a != AFF_NONE)
                    muc_room_set_aff(r, f->str + 2, (muc_aff_t)a);
            } else if (strncmp(f->str, "n:", 2) == 0) {
                free(hmap_sput(r->regs, f->str + 2, xstrdup(v->str)));
            }
        }
        r->cfg.persistent = 1;
    }
    free(jid);
    load_done_one();
}

static void on_rooms_listed(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    (void)privdata;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            char key[STORAGE_KEY_MAX];
            if (e->type != REDIS_REPLY_STRING || room_key(key, sizeof key, e->str) < 0)
                continue;
            char *jid = xstrdup(e->str);
            load_pending++;
            if (rt_redis_command(on_room_loaded, jid, "HGETALL %s", key) != REDIS_OK) {
                free(jid);
                load_pending--;
            }
        }
    } else {
        log_warn("muc: could not list the persistent rooms");
    }
    load_done_one();
}

static void on_secret(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    (void)privdata;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_STRING && rep->len >= 64) {
        unsigned char s[32];
        for (int i = 0; i < 32; i++) {
            unsigned x = 0;
            sscanf(rep->str + 2 * i, "%2x", &x);
            s[i] = (unsigned char)x;
        }
        muc_set_secret(s, sizeof s);
    }
}

static void load_now(evloop_t *loop, void *ud)
{
    (void)ud;
    load_timer = NULL;
    if (!rt.redis_ready) {
        load_timer = evloop_timer(loop, 20, load_now, NULL);
        return;
    }
    char set[STORAGE_KEY_MAX], skey[STORAGE_KEY_MAX];
    keys_global(set, sizeof set, rt.redis_prefix, KEYS_MUC_ROOMS);
    keys_global(skey, sizeof skey, rt.redis_prefix, KEYS_MUC_SECRET);
    unsigned char rnd[32];
    char hex[65];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return; /* keep the in-memory secret */
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    rt_redis_command(rt_redis_ignore, NULL, "SET %s %s NX", skey, hex);
    rt_redis_command(on_secret, NULL, "GET %s", skey);
    load_pending = 1;
    if (rt_redis_command(on_rooms_listed, NULL, "SMEMBERS %s", set) != REDIS_OK) {
        load_pending = 0;
        load_timer = evloop_timer(loop, 20, load_now, NULL);
    }
}

void muc_store_load(void)
{
    if (!rt.loop) { /* unit tests: nothing to load */
        muc.loaded = 1;
        return;
    }
    load_timer = evloop_timer(rt.loop, 0, load_now, NULL);
}

/* ---- account deletion (issue #14 point 5) ---- */

void muc_user_deleted(const char *bare)
{
    /* Rooms are all in memory (bounded by muc_max_rooms), so every affiliation and
     * registration of the user is found here. */
    char **names = NULL;
    size_t n = 0, pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(muc.rooms, &pos, &k, &kl, &v)) {
        muc_room_t *r = v;
        if (muc_room_aff(r, bare) != AFF_NONE || hmap_sget(r->regs, bare)) {
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = xstrdup(r->jid);
        }
    }
    for (size_t i = 0; i < n; i++) {
        muc_room_t *r = muc_room_find(names[i]);
        free(names[i]);
        if (!r)
            continue;
        muc_aff_t a = muc_room_aff(r, bare);
        muc_room_set_aff(r, bare, AFF_NONE);
        free(hmap_sdel(r->regs, bare));
        if (a == AFF_OWNER && count_aff(r, AFF_OWNER) == 0) {
            /* The only owner is gone: the room goes to an admin (the first by JID, so the
             * choice does not depend on the map's order), or is destroyed. */
            const char *heir = NULL;
            pos = 0;
            while (hmap_next(r->aff, &pos, &k, &kl, &v))
                if ((muc_aff_t)((intptr_t)v - 2) == AFF_ADMIN && (!heir || strcmp(k, heir) < 0))
                    heir = k;
            if (!heir) {
                xml_node_t *d = xml_node_new("destroy", NS_MUC_USER);
                const char *why = "The room's owner deleted the account";
                xml_node_add_text(xml_node_new_child(d, "reason", NULL), why, strlen(why));
                muc_room_destroy(r, d);
                xml_node_free(&d);
                continue;
            }
            char *h = xstrdup(heir);
            muc_room_set_aff(r, h, AFF_OWNER);
            muc_occ_apply_aff(r, h, AFF_OWNER, NULL, NULL); /* never takes anyone out */
            free(h);
        }
        if (r->cfg.persistent)
            muc_store_save(r);
    }
    free(names);
}
