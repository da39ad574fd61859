/* muc: the private interface between the files of the multi-user chat module (mod_muc.c:
 * the service, rooms, occupants, presence, messages, administration; muc_archive.c: the
 * room's history on join and its XEP-0313 archive). Nothing outside these files includes
 * it. */
#ifndef ROUTER_MUC_H
#define ROUTER_MUC_H

#include "muccfg.h"
#include "types.h"
#include "xml.h"

/* The history an occupant asks for on joining (XEP-0045 section 7.2.15): -1 = not given. */
typedef struct {
    long maxchars, maxstanzas, seconds;
    int64_t since_ms; /* -1: not given */
} muc_history_req_t;

/* Reads <history/> of a join's <x xmlns='muc'/> (NULL: none given): 0, or -1 when a value
 * is malformed. */
int muc_history_parse(const xml_node_t *history, muc_history_req_t *out);

/* Opens and closes the archive side (config keys muc_archive_expires_after,
 * muc_archive_max_messages, muc_archive_max_page: declared in muc_archive_config_keys,
 * which main.c registers). */
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
void muc_archive_query(session_t *from, const xml_node_t *st, const char *room);

/* Forgets a room's history and archive (room destroyed). */
void muc_archive_delete(const char *room);

#endif
