/* session: the session table. A *connected* resource has a bound full JID; an *available*
 * one has sent initial presence (priority, last presence kept); an *interested* one has
 * requested the roster. Sessions are found by (frontend, connection) and by full JID;
 * users (bare JID) hold their sessions. */
#ifndef ROUTER_SESSION_H
#define ROUTER_SESSION_H

#include "types.h"

/* Creates the session of (f, conn) for `full`, ending an older session of the same JID with
 * a conflict close, and runs the "session bound" hook. Returns NULL when the JID is not one
 * of ours or (f, conn) is taken. */
session_t *session_attach(rt_frontend_t *f, uint64_t conn, const char *full);
/* Records what the frontend told of the connection (IPC_BIND, IPC_RESYNC): the client's
 * address and TLS version (NULL or "" when not known) and, when not 0, the Unix time the
 * resource was bound (a resync keeps the original time). */
void session_set_facts(session_t *s, const char *addr, const char *tls, uint64_t since);
/* 1 when binding `full` would give its account more than max_resources sessions (a bind
 * that replaces a session of the same full JID adds none). */
int session_over_limit(const char *full);
/* Takes a session out of the connection table (its connection is gone; it waits to be
 * resumed: sm.h), and puts it back under a new connection: -1 when (f, conn) is taken or
 * the session is attached. */
void session_detach(session_t *s);
int session_reattach(session_t *s, rt_frontend_t *f, uint64_t conn);
/* Ends a session: the "session ended" hook (unavailable presence...), then removal. */
void session_end(session_t *s);
/* Frees every session without sending anything (shutdown). */
void sessions_free_all(void);
#endif
