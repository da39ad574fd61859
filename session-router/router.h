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
    hmap_t *directed; /* JIDs sent directed available presence (RFC 6121 4.6), or NULL */
    int carbons;      /* XEP-0280 enabled */
    int got_it;       /* scratch: received the message being routed (no carbon copy) */
    int blocklist_interested; /* asked for the blocklist: gets block/unblock pushes */
    int want_offline;         /* offline messages are due once the roster is loaded */
    session_t *next; /* in user->sessions */
};

/* A contact in a user's roster, with the subscription state of RFC 6121 appendix A.
 * `hidden` items exist only to remember a pending inbound request ("None + Pending In"
 * with no roster item): they are not shown in the roster. */
typedef struct roster_item {
    char *jid; /* contact bare JID */
    char *name;
    char **groups;
    int ngroups;
    unsigned sub_to : 1;     /* the user receives the contact's presence */
    unsigned sub_from : 1;   /* the contact receives the user's presence */
    unsigned ask_out : 1;    /* Pending Out: the user asked, no answer yet */
    unsigned pending_in : 1; /* Pending In: the contact asked, the user did not answer */
    unsigned approved : 1;   /* pre-approved (RFC 6121 3.4) */
    unsigned hidden : 1;
} roster_item_t;

typedef void (*user_op_fn)(user_t *u, int ok, void *arg);
typedef struct user_op user_op_t;

/* An account the router is holding: it has connected resources, or an operation on its
 * roster is under way. The roster is cached while the user is held. */
struct user {
    char *bare;
    session_t *sessions;
    int roster_state; /* 0 not loaded, 1 loading, 2 loaded */
    int exists;       /* the account exists (known once loaded) */
    hmap_t *roster;   /* contact bare JID -> roster_item_t */
    uint64_t roster_ver;
    user_op_t *ops, *ops_tail; /* waiting for the roster to load */
    hmap_t *blocked;           /* XEP-0191 blocklist (JID -> itself), loaded with the roster */
    int offline_busy;          /* an offline-message fetch is under way */
    int holds;                 /* operations in flight that keep the user */
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
    long max_resources; /* sessions one account may have at once */
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

/* roster.c: the roster cache and jabber:iq:roster (RFC 6121 section 2). */
/* The held user of a bare JID, created (and held by the caller) when absent. */
user_t *user_get(const char *bare);
/* Lets go of a user held by user_get or an operation: freed when nothing holds it. */
void user_release(user_t *u);
/* Frees a user that nothing holds any more (no sessions, operations or loading). */
void user_check(user_t *u);
/* Runs fn once the user's roster is loaded (ok = 0 when storage failed). */
void user_with_roster(const char *bare, user_op_fn fn, void *arg);
roster_item_t *roster_find(user_t *u, const char *contact);
/* Creates a hidden item for the contact (caller fills it and calls roster_save). */
roster_item_t *roster_add(user_t *u, const char *contact);
/* Stores the item (or deletes it when `removed`), bumps the version and, unless the item is
 * hidden, pushes it to the user's interested resources. */
void roster_save(user_t *u, roster_item_t *item, int removed);
/* Handles an iq in jabber:iq:roster from one of the user's resources. */
void roster_handle_iq(session_t *from, xml_node_t *st);
void roster_item_free(roster_item_t *it);

/* presence.c: subscriptions and presence (RFC 6121 sections 3 and 4). */
void presence_outbound(session_t *from, const ipc_hdr_t *h, xml_node_t *st);
/* Broadcast presence (no 'to'). */
void presence_broadcast(session_t *from, const ipc_hdr_t *h, xml_node_t *st);
/* A session ends: unavailable to contacts, own resources and directed-presence targets. */
void presence_session_end(session_t *s);
/* Sends the user's current presence to a contact subscribed to it (after an unblock). */
void presence_send_current(user_t *u, const char *jid);
/* The user removes a contact: unsubscribe/unsubscribed as the subscription requires. */
void presence_roster_removed(user_t *u, roster_item_t *it);

/* blocking.c: XEP-0191. */
void blocklist_loaded(user_t *u, const redisReply *members);
void blocklist_clear(user_t *u);
/* 1 when `u` blocks `jid` (a full or bare JID; matched as XEP-0191 section 3.2 says). */
int blocklist_blocks(const user_t *u, const char *jid);
/* Handles <blocklist/>, <block/> and <unblock/>; returns 1 when it answered. */
int blocking_handle_iq(session_t *from, const ipc_hdr_t *h, xml_node_t *st);

/* offline.c: offline messages (XEP-0160) with delay stamps (XEP-0203). */
void offline_store(session_t *from, const ipc_hdr_t *h, const char *payload, size_t len,
                   const char *to_bare);
void offline_deliver(session_t *s);

/* resync.c: a frontend resends a bound session after the router restarted (IPC_RESYNC);
 * the session is recreated, or updated when the router still has it. */
void resync_session(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload);

/* route.c: stanza routing (RFC 6120 section 10, RFC 6121 section 8.5). */
void route_stanza(session_t *from, const ipc_hdr_t *h, const char *payload, size_t len);

/* server.c: what the server itself answers (iq to the domain, presence broadcast). */
void server_handle(session_t *from, const ipc_hdr_t *h, xml_node_t *st);
/* Answers an iq addressed to a user's bare JID on the user's behalf. */
void server_handle_account_iq(session_t *from, const ipc_hdr_t *h, xml_node_t *st);

/* services.c: vCard, private storage, version, carbons. Returns 1 when it answered. */
int services_handle_iq(session_t *from, const ipc_hdr_t *h, xml_node_t *st, int account);
/* Adds the services' disco#info features. */
void services_features(xml_node_t *query, int account);

/* authlimit.c: failed authentications per account (auth_failures_per_account). */
void authlimit_open(void);
void authlimit_close(void);
/* A credential request: answered IPC_LOCKED while the account is locked, else looked up. */
void authlimit_on_auth(rt_frontend_t *f, const ipc_hdr_t *h);
/* A frontend reports how an attempt ended (IPC_AUTH_RESULT). */
void authlimit_on_result(rt_frontend_t *f, const ipc_hdr_t *h);

/* storage.c: accounts in Redis. */
void storage_open(const char *host, int port);
void storage_close(void);
/* Looks up credentials and answers the frontend with IPC_AUTH_REPLY. */
void storage_auth_lookup(rt_frontend_t *f, const ipc_hdr_t *h);

#endif
