/* router: the state shared by the modules of the session-router process. It owns session
 * semantics (docs/ARCHITECTURE.md): which resources are connected, available (sent initial
 * presence, with a priority and a last presence) and interested (requested the roster), and
 * routes stanzas between them. One process, one event loop, one thread. */
#ifndef SESSION_ROUTER_H
#define SESSION_ROUTER_H

#include <hiredis/async.h>
#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "hmap.h"
#include "ipc.h"
#include "xml.h"
#include "zlink.h"

typedef struct user user_t;
typedef struct session session_t;

/* A frontend process, known by its ZeroMQ routing id "name:epoch". */
typedef struct rt_frontend {
    char ident[128];
    size_t ident_len;
    char name[64];
    uint64_t epoch;
    uint64_t last_seen; /* now_ms() of the last message from it */
    size_t nsessions;
} rt_frontend_t;

struct session {
    rt_frontend_t *fe;
    uint64_t conn;
    char *full;     /* full JID */
    const char *resource; /* points into full */
    user_t *user;
    int available;  /* sent initial presence and no unavailable since */
    int priority;   /* from the last available presence, -128..127 */
    int interested; /* requested the roster */
    char *last_presence; /* serialised last available presence, or NULL */
    session_t *next; /* in user->sessions */
};

/* One account with at least one connected resource. */
struct user {
    char *bare;
    session_t *sessions;
};

typedef struct {
    evloop_t *loop;
    void *zctx, *zsock;
    zlink_t *link;
    uint64_t epoch;
    const char *domain;
    hmap_t *frontends; /* ident -> rt_frontend_t */
    hmap_t *by_conn;   /* ident + conn id -> session_t */
    hmap_t *by_jid;    /* full JID -> session_t */
    hmap_t *users;     /* bare JID -> user_t */
    redisAsyncContext *redis;
    int redis_ready;
    const char *redis_prefix;
    uint64_t frontend_timeout_ms;
} router_t;

extern router_t rt;

/* link.c: the ROUTER socket. */
void link_open(const char *endpoint);
void link_close(void);
/* Sends header (+ payload) to a frontend; 0, or -1 when it is unreachable. */
int link_send(rt_frontend_t *f, const ipc_hdr_t *h, const char *payload, size_t len);

/* sessions.c: the session table. */
session_t *session_find_conn(rt_frontend_t *f, uint64_t conn);
session_t *session_find_jid(const char *full);
user_t *user_find(const char *bare);
/* Binds a full JID for (f, conn) and answers the frontend. */
void session_bind(rt_frontend_t *f, const ipc_hdr_t *h);
/* Creates the session of (f, conn) for `full`, ending an older session of the same JID with
 * a conflict close. Returns NULL when the JID is not one of ours or (f, conn) is taken. */
session_t *session_attach(rt_frontend_t *f, uint64_t conn, const char *full);
/* Ends a session: unavailable presence to whoever should get it, then removal. */
void session_end(session_t *s);
/* Ends every session of a frontend (it stopped or restarted). */
void session_end_frontend(rt_frontend_t *f);
/* Frees every session without sending anything (shutdown). */
void sessions_free_all(void);
/* Writes stanza bytes to a session's client. */
void session_deliver(session_t *s, const char *data, size_t len);
/* Serialises a tree and delivers it. */
void session_deliver_node(session_t *s, const xml_node_t *node);

/* route.c: stanza routing (RFC 6120 section 10, RFC 6121 section 8.5). */
void route_stanza(session_t *from, const ipc_hdr_t *h, const char *payload, size_t len);

/* server.c: what the server itself answers (iq to the domain, presence broadcast). */
void server_handle(session_t *from, const ipc_hdr_t *h, xml_node_t *st);
/* Answers an iq addressed to a user's bare JID on the user's behalf. */
void server_handle_account_iq(session_t *from, const ipc_hdr_t *h, xml_node_t *st);

/* storage.c: accounts in Redis. */
void storage_open(const char *host, int port);
void storage_close(void);
/* Looks up credentials and answers the frontend with IPC_AUTH_REPLY. */
void storage_auth_lookup(rt_frontend_t *f, const ipc_hdr_t *h);

#endif
