/* muc: the private interface between the files of the multi-user chat module (mod_muc.c:
 * the service, rooms, occupants, presence, messages, administration; muc_archive.c: the
 * room's history on join and its XEP-0313 archive). Nothing outside these files includes
 * it. */
#ifndef ROUTER_MUC_H
#define ROUTER_MUC_H

#include "jid.h"
#include "muccfg.h"
#include "types.h"
#include "xml.h"

/* Who sent a stanza to the service: a local client's session, or (s NULL) a user at
 * another domain, whose answers go back by address (session_reply_error with no session:
 * out through an s2s frontend). */
typedef struct {
    session_t *s;
    const char *full;       /* the sender's JID as the stanza's 'from' */
    char bare[JID_MAX + 1]; /* its bare JID: the key of affiliations and registrations */
} muc_from_t;

/* The history an occupant asks for on joining (XEP-0045 section 7.2.15): -1 = not given. */
typedef struct {
    long maxchars, maxstanzas, seconds;
    int64_t since_ms; /* -1: not given */
} muc_history_req_t;

/* Reads <history/> of a join's <x xmlns='muc'/> (NULL: none given): 0, or -1 when a value
 * is malformed. */
int muc_history_parse(const xml_node_t *history, muc_history_req_t *out);

/* Opens and closes the archive side (config keys muc_archive_expires_after,
 * muc_archive_max_messages, muc_archive_max_page: in mod_muc's table). */
void muc_archive_open(void);
void muc_archive_close(void);

/* A groupchat message the room `room` (bare JID) is about to reflect (from = room/nick):
 * stamps it with a fresh XEP-0359 <stanza-id by='ROOM' id='...'/> (forged ones, by the
 * room or by nobody, removed) and, with `archive` set, queues it for storage when it is
 * worth keeping (a body, a subject, an encrypted payload, a correction...). History on join
 * reads the same store, so pass archive = (cfg.archive || cfg.history_max > 0) for a room
 * that gives history without advertising an archive. Synchronous; the write completes
 * later. The subject change is stored too (history leaves it out: muc_history_send's caller
 * sends the subject). */
void muc_archive_add(const char *room, xml_node_t *msg, int archive);

/* Sends the history `req` asks for (bounded by history_max and 1000) to the occupant's
 * full JID `to`, each message wrapped as XEP-0045 7.2.15 says (<delay/> from the room),
 * then calls done(ud) (also when there is nothing or Redis failed), so the caller sends the
 * subject after it. done may be called before this returns (nothing to send); the
 * messages go only while `to` still has a session. */
void muc_history_send(const char *room, const char *to, const muc_history_req_t *req,
                      long history_max, void (*done)(void *ud), void *ud);

/* Answers an XEP-0313 query (iq set <query xmlns='urn:xmpp:mam:2'/>, or the form get) to
 * the room's archive; the caller has checked the sender may read it (an occupant, or a
 * member of a members-only room). `st` is not taken. */
void muc_archive_query(const muc_from_t *from, const xml_node_t *st, const char *room);

/* Forgets a room's history and archive (room destroyed). */
void muc_archive_delete(const char *room);

/* ---- mod_muc's own files (mod_muc.c: service, rooms, occupants, presence, messages;
 * muc_iq.c: disco, self-ping, iqs between occupants; muc_admin.c: muc#admin, muc#owner,
 * registration, persistence, account deletion). ---- */

/* An occupant: one nickname in one room, held by one real bare JID, joined from one or
 * more of its full JIDs (XEP-0045 section 7.2.9: several resources share a nickname). */
typedef struct muc_occ {
    char *nick, *bare;
    char **full;
    int nfull;
    muc_role_t role;
    xml_node_t *pres; /* the last presence it sent, cleaned (no MUC extensions) */
    struct muc_occ *next; /* join order */
} muc_occ_t;

typedef struct muc_room {
    char *jid; /* room@service */
    muccfg_t cfg;
    int locked;      /* created, not yet configured (section 10.1.1) */
    hmap_t *aff;     /* bare JID -> (intptr_t)(affiliation + 2) */
    hmap_t *regs;    /* bare JID -> registered nickname (section 7.10), malloc'd */
    char *subject;   /* "" when none */
    char *subject_by; /* the nickname that set it, "" when the room did */
    muc_occ_t *occs;
    int nocc;
} muc_room_t;

/* The service's limits and state shared by its files. */
typedef struct {
    char domain[1024];
    hmap_t *rooms; /* room JID -> muc_room_t */
    long max_rooms, max_rooms_per_user, max_occupants, max_history, max_nick;
    long max_affs; /* muc_max_affiliations */
    int reg;       /* muc_register */
    int loaded;    /* persistent rooms read from Redis */
} muc_service_t;
extern muc_service_t muc;

muc_room_t *muc_room_find(const char *jid);
/* A new room with the defaults, in muc.rooms (the caller checked the limits). */
muc_room_t *muc_room_new(const char *jid);
muc_aff_t muc_room_aff(const muc_room_t *r, const char *bare);
/* Sets an affiliation (AFF_NONE removes it). */
void muc_room_set_aff(muc_room_t *r, const char *bare, muc_aff_t a);
muc_occ_t *muc_occ_by_nick(const muc_room_t *r, const char *nick);
muc_occ_t *muc_occ_by_full(const muc_room_t *r, const char *full);
/* The bare JID a registered nickname belongs to in the room, or NULL. */
const char *muc_reg_owner(const muc_room_t *r, const char *nick);

/* Presence of `o` as `to` sees it (XEP-0045 section 7.2.3 ff.): type, status codes,
 * <item/> with nick (303), reason, actor, a <destroy/> (copied). */
typedef struct {
    const char *type;
    int codes[8], ncodes;
    const char *newnick, *reason, *actor;
    const xml_node_t *destroy;
    muc_aff_t aff_override; /* with has_aff: the affiliation shown */
    int has_aff;
} muc_pres_opt_t;
/* Sends `o`'s presence to every full JID of every occupant (110 added for o's own). */
void muc_broadcast_presence(muc_room_t *r, muc_occ_t *o, const muc_pres_opt_t *opt);
/* Takes an occupant out (unavailable presence with opt's codes to everyone, itself
 * included), frees it; a temporary room left empty is destroyed. */
void muc_occ_remove(muc_room_t *r, muc_occ_t *o, const muc_pres_opt_t *opt);
/* Sends a stanza the room makes; a full JID that takes nothing is taken out later. */
int muc_send(muc_room_t *r, xml_node_t *st);
/* Destroys a room (occupants get `destroy` if given) and forgets its stored state. */
void muc_room_destroy(muc_room_t *r, const xml_node_t *destroy);
/* Destroys a temporary room with nobody in it. Returns 1 when it did. */
int muc_room_gc(muc_room_t *r);
/* The role an occupant has after its affiliation changed. */
void muc_occ_apply_aff(muc_room_t *r, const char *bare, muc_aff_t a, const char *reason,
                       const char *actor);

/* mod_muc.c helpers the other files use: room/NICK (malloc'd); an error answer (never to
 * an error). */
char *muc_occ_jid(const muc_room_t *r, const char *nick);
void muc_reply_error(const muc_from_t *from, const xml_node_t *st, const char *etype,
                     const char *cond);

/* muc_iq.c: iqs to the service (no node) and to a room or room/NICK; answers from
 * occupants' clients to iqs the room passed on; its state. */
void muc_service_iq(const muc_from_t *from, xml_node_t *st, int set);
void muc_room_iq(const muc_from_t *from, xml_node_t *st, const char *room, const char *nick, int set);
void muc_iq_answer(const muc_from_t *from, xml_node_t *st);
void muc_iq_open(void);
void muc_iq_close(void);

/* mod_muc.c: the persistent rooms are read: the stanzas held meanwhile are handled. */
void muc_load_done(void);

/* muc_admin.c */
void muc_admin_iq(const muc_from_t *from, xml_node_t *st, muc_room_t *r, const xml_node_t *q);
void muc_owner_iq(const muc_from_t *from, xml_node_t *st, muc_room_t *r, const xml_node_t *q);
void muc_register_iq(const muc_from_t *from, xml_node_t *st, muc_room_t *r, const xml_node_t *q);
/* Writes a persistent room's state to Redis (or removes a temporary one's). */
void muc_store_save(const muc_room_t *r);
void muc_store_delete(const char *room);
/* Reads the persistent rooms (at start, once Redis is up). */
void muc_store_load(void);
/* Account deletion (issue #14 point 5). */
void muc_user_deleted(const char *bare);
/* mod_muc.c: the occupant-id secret read from Redis (n >= 32 bytes). */
void muc_set_secret(const unsigned char *s, size_t n);

#endif
