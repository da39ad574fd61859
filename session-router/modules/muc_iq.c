/* XEP-0045 iqs of mod_muc's service and rooms: disco#info and disco#items of the service
 * (identity conference/text, public rooms) and of each room (muccfg_disco), XEP-0410
 * self-ping, iqs between occupants passed through the room (section 6.7), and the
 * dispatch of muc#admin, muc#owner, registration and XEP-0313 queries. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "muc.h"
#include "route.h"
#include "stanza.h"
#include "util.h"

#define NS_SELF_PING "http://jabber.org/protocol/muc#self-ping-optimization"
#define NS_REGISTER "jabber:iq:register"
#define NS_MAM "urn:xmpp:mam:2"
#define NS_OCCUPANT_ID "urn:xmpp:occupant-id:0"

static void disco_service(const muc_from_t *from, xml_node_t *st, int info)
{
    xml_node_t *q = xml_node_new("query", info ? NS_DISCO_INFO : NS_DISCO_ITEMS);
    if (xml_node_child(st, "query", NULL) && xml_node_attr(xml_node_child(st, "query", NULL),
                                                           "node")) {
        xml_node_free(&q);
        muc_reply_error(from, st, "cancel", "item-not-found");
        return;
    }
    if (info) {
        xml_node_t *id = xml_node_new_child(q, "identity", NULL);
        xml_node_set_attr(id, "category", "conference");
        xml_node_set_attr(id, "type", "text");
        xml_node_set_attr(id, "name", "Chatrooms");
        static const char *feats[] = {NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_PING,
                                      NS_OCCUPANT_ID, NULL};
        for (int i = 0; feats[i]; i++)
            xml_node_set_attr(xml_node_new_child(q, "feature", NULL), "var", feats[i]);
        if (muc.reg)
            xml_node_set_attr(xml_node_new_child(q, "feature", NULL), "var", NS_REGISTER);
    } else {
        /* Section 6.3: public rooms only (locked ones are not there yet). */
        size_t pos = 0, kl;
        const void *k;
        void *v;
        while (hmap_next(muc.rooms, &pos, &k, &kl, &v)) {
            muc_room_t *r = v;
            if (!r->cfg.public_ || r->locked)
                continue;
            xml_node_t *it = xml_node_new_child(q, "item", NULL);
            xml_node_set_attr(it, "jid", r->jid);
            if (*r->cfg.name)
                xml_node_set_attr(it, "name", r->cfg.name);
        }
    }
    session_reply_result(from->s, st, q);
}

static void disco_room(const muc_from_t *from, xml_node_t *st, muc_room_t *r, int info)
{
    xml_node_t *q = xml_node_new("query", info ? NS_DISCO_INFO : NS_DISCO_ITEMS);
    const char *node = xml_node_attr(xml_node_first_element(st), "node");
    if (node) {
        /* Section 7.12: the nickname the asker registered, as an identity; nothing else
         * has a node. */
        const char *nick = hmap_sget(r->regs, from->bare);
        if (!info || strcmp(node, "x-roomuser-item") != 0) {
            xml_node_free(&q);
            muc_reply_error(from, st, "cancel", "item-not-found");
            return;
        }
        xml_node_set_attr(q, "node", node);
        if (nick) {
            xml_node_t *id = xml_node_new_child(q, "identity", NULL);
            xml_node_set_attr(id, "category", "conference");
            xml_node_set_attr(id, "type", "text");
            xml_node_set_attr(id, "name", nick);
        }
        session_reply_result(from->s, st, q);
        return;
    }
    if (info) {
        xml_node_t *id = xml_node_new_child(q, "identity", NULL);
        xml_node_set_attr(id, "category", "conference");
        xml_node_set_attr(id, "type", "text");
        xml_node_set_attr(id, "name", *r->cfg.name ? r->cfg.name : r->jid);
        /* muccfg_disco adds NS_MUC, the muc_* features, stanza-id and the archive;
         * muc#stable_id: the room reflects a message with the id its sender gave. */
        static const char *feats[] = {NS_DISCO_INFO, NS_SELF_PING, NS_OCCUPANT_ID,
                                      NS_MUC "#stable_id", NULL};
        for (int i = 0; feats[i]; i++)
            xml_node_set_attr(xml_node_new_child(q, "feature", NULL), "var", feats[i]);
        if (muc.reg)
            xml_node_set_attr(xml_node_new_child(q, "feature", NULL), "var", NS_REGISTER);
        muccfg_disco(&r->cfg, q, r->nocc, r->subject);
    }
    /* disco#items: section 6.5 lets a room keep its occupants to itself. */
    session_reply_result(from->s, st, q);
}

/* An iq between occupants (XEP-0045 section 6.7 lets the room pass a query to an
 * occupant on): it goes to the target's first full JID from room/NICK under an id of the
 * room's, and the answer comes back to the asker under its own id. Bounded: at most
 * MUC_IQ_PENDING_MAX wait, each at most MUC_IQ_TIMEOUT_MS. */
#define MUC_IQ_PENDING_MAX 1024
#define MUC_IQ_TIMEOUT_MS 60000

typedef struct {
    char *room, *asker, *target, *target_nick, *id;
    uint64_t at_ms;
} iq_wait_t;

static hmap_t *iq_pending; /* room's id -> iq_wait_t */
static uint64_t iq_seq;

static void iq_wait_free(void *p)
{
    iq_wait_t *w = p;
    free(w->room);
    free(w->asker);
    free(w->target);
    free(w->target_nick);
    free(w->id);
    free(w);
}

static int iq_expired(void *value, void *ud)
{
    iq_wait_t *w = value;
    if (now_ms() - w->at_ms < *(uint64_t *)ud)
        return 0;
    iq_wait_free(w);
    return 1;
}

static void iq_forward(const muc_from_t *from, xml_node_t *st, muc_room_t *r, muc_occ_t *o,
                       muc_occ_t *t)
{
    uint64_t age = MUC_IQ_TIMEOUT_MS;
    if (hmap_count(iq_pending) >= MUC_IQ_PENDING_MAX)
        hmap_filter(iq_pending, iq_expired, &age);
    if (hmap_count(iq_pending) >= MUC_IQ_PENDING_MAX) {
        muc_reply_error(from, st, "wait", "resource-constraint");
        return;
    }
    iq_wait_t *w = xcalloc(1, sizeof *w);
    w->room = xstrdup(r->jid);
    w->asker = xstrdup(from->full);
    w->target = xstrdup(t->full[0]);
    w->target_nick = xstrdup(t->nick);
    const char *id = xml_node_attr(st, "id");
    w->id = id ? xstrdup(id) : NULL;
    w->at_ms = now_ms();
    char rid[40];
    snprintf(rid, sizeof rid, "muc%llx", (unsigned long long)++iq_seq);
    hmap_sput(iq_pending, rid, w);
    xml_node_t *fw = xml_node_copy(st);
    char *nfrom = muc_occ_jid(r, o->nick);
    xml_node_set_attr(fw, "from", nfrom);
    free(nfrom);
    xml_node_set_attr(fw, "to", w->target);
    xml_node_set_attr(fw, "id", rid);
    if (route_service_stanza(fw) < 0) {
        iq_wait_free(hmap_sdel(iq_pending, rid));
        muc_reply_error(from, st, "cancel", "recipient-unavailable");
    }
    xml_node_free(&fw);
}

/* A result or error from an occupant's client for an iq the room passed on. */
void muc_iq_answer(const muc_from_t *from, xml_node_t *st)
{
    const char *id = xml_node_attr(st, "id");
    iq_wait_t *w = id ? hmap_sget(iq_pending, id) : NULL;
    if (!w || strcmp(w->target, from->full) != 0)
        return;
    hmap_sdel(iq_pending, id);
    xml_node_t *back = xml_node_copy(st);
    buf_t nfrom = BUF_INIT;
    buf_printf(&nfrom, "%s/%s", w->room, w->target_nick);
    xml_node_set_attr(back, "from", nfrom.data);
    buf_free(&nfrom);
    xml_node_set_attr(back, "to", w->asker);
    xml_node_set_attr(back, "id", w->id);
    route_service_stanza(back);
    xml_node_free(&back);
    iq_wait_free(w);
}

void muc_room_iq(const muc_from_t *from, xml_node_t *st, const char *room, const char *nick,
                 int set)
{
    muc_room_t *r = muc_room_find(room);
    xml_node_t *q = xml_node_first_element(st);
    if (!q || !q->ns) {
        muc_reply_error(from, st, "modify", "bad-request");
        return;
    }
    if (!r || (r->locked && muc_room_aff(r, from->bare) != AFF_OWNER)) {
        muc_reply_error(from, st, "cancel", "item-not-found");
        return;
    }
    muc_occ_t *o = muc_occ_by_full(r, from->full);
    if (*nick) {
        /* XEP-0410: a client asks whether it is still joined (not-acceptable: no);
         * XEP-0045 section 6.7: other queries from non-occupants are bad-request. */
        if (!o) {
            muc_reply_error(from, st, "modify",
                        strcmp(q->ns, NS_PING) == 0 ? "not-acceptable" : "bad-request");
            return;
        }
        if (!set && strcmp(q->ns, NS_PING) == 0 && strcmp(o->nick, nick) == 0) {
            session_reply_result(from->s, st, NULL);
            return;
        }
        muc_occ_t *t = muc_occ_by_nick(r, nick);
        if (!t) {
            muc_reply_error(from, st, "cancel", "item-not-found");
            return;
        }
        iq_forward(from, st, r, o, t);
        return;
    }
    if (!set && strcmp(q->ns, NS_DISCO_INFO) == 0 && strcmp(q->name, "query") == 0) {
        disco_room(from, st, r, 1);
    } else if (!set && strcmp(q->ns, NS_DISCO_ITEMS) == 0 && strcmp(q->name, "query") == 0) {
        disco_room(from, st, r, 0);
    } else if (!set && strcmp(q->ns, NS_PING) == 0) {
        session_reply_result(from->s, st, NULL);
    } else if (strcmp(q->ns, NS_MUC_ADMIN) == 0 && strcmp(q->name, "query") == 0) {
        muc_admin_iq(from, st, r, q);
    } else if (strcmp(q->ns, NS_MUC_OWNER) == 0 && strcmp(q->name, "query") == 0) {
        muc_owner_iq(from, st, r, q);
    } else if (strcmp(q->ns, NS_REGISTER) == 0 && strcmp(q->name, "query") == 0 && muc.reg) {
        muc_register_iq(from, st, r, q);
    } else if (strcmp(q->ns, NS_MAM) == 0) {
        /* The archive is for occupants, and for members of a members-only room; a room
         * with archiving off offers none (its disco#info has no mam:2). */
        muc_aff_t a = muc_room_aff(r, from->bare);
        if (!r->cfg.archive)
            muc_reply_error(from, st, "cancel", "service-unavailable");
        else if (a == AFF_OUTCAST || (!o && (r->cfg.members_only ? a < AFF_MEMBER : 1)))
            muc_reply_error(from, st, "auth", "forbidden");
        else
            muc_archive_query(from, st, r->jid);
    } else {
        muc_reply_error(from, st, "cancel", "service-unavailable");
    }
}

void muc_service_iq(const muc_from_t *from, xml_node_t *st, int set)
{
    xml_node_t *q = xml_node_first_element(st);
    if (!set && q && q->ns && strcmp(q->name, "query") == 0 &&
        strcmp(q->ns, NS_DISCO_INFO) == 0)
        disco_service(from, st, 1);
    else if (!set && q && q->ns && strcmp(q->name, "query") == 0 &&
             strcmp(q->ns, NS_DISCO_ITEMS) == 0)
        disco_service(from, st, 0);
    else if (!set && q && q->ns && strcmp(q->ns, NS_PING) == 0)
        session_reply_result(from->s, st, NULL);
    else
        muc_reply_error(from, st, "cancel", "service-unavailable");
}

void muc_iq_open(void)
{
    iq_pending = hmap_new();
}

void muc_iq_close(void)
{
    hmap_destroy_all(&iq_pending, iq_wait_free);
}
