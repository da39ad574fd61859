/* session: the session table. A *connected* resource has a bound full JID; an *available*
 * one has sent initial presence (priority, last presence kept); an *interested* one has
 * requested the roster. Sessions are found by (frontend, connection) and by full JID;
 * users (bare JID) hold their sessions. */
#ifndef ROUTER_SESSION_H
#define ROUTER_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "router.h"
#include "xml.h"

/* Per-session state slots for modules (module.h assigns one per module that asks). */
#define SESSION_SLOTS 16

typedef struct user user_t;
typedef struct session session_t;

struct session {
    rt_frontend_t *fe;
    uint64_t conn;
    char *full;           /* full JID */
    const char *resource; /* points into full */
    user_t *user;
    int available;        /* sent initial presence and no unavailable since */
    int priority;         /* from the last available presence, -128..127 */
    int interested;       /* requested the roster */
    char *last_presence;  /* serialised last available presence, or NULL */
    uint64_t bound_ms;    /* now_ms() at bind */
    int selected;         /* scratch: chosen to receive the message being routed */
    void *slot[SESSION_SLOTS]; /* module state (module_slot), freed by its module */
    session_t *next;      /* in user->sessions */
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

typedef struct user_op user_op_t;

/* An account the router is holding: it has connected resources, or an operation on its
 * data is under way. The roster and the blocklist are cached while the user is held. */
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

session_t *session_find_conn(rt_frontend_t *f, uint64_t conn);
session_t *session_find_jid(const char *full);
user_t *user_find(const char *bare);
/* Creates the session of (f, conn) for `full`, ending an older session of the same JID with
 * a conflict close, and runs the "session bound" hook. Returns NULL when the JID is not one
 * of ours or (f, conn) is taken. */
session_t *session_attach(rt_frontend_t *f, uint64_t conn, const char *full);
/* 1 when binding `full` would give its account more than max_resources sessions (a bind
 * that replaces a session of the same full JID adds none). */
int session_over_limit(const char *full);
/* Ends a session: the "session ended" hook (unavailable presence...), then removal. */
void session_end(session_t *s);
/* Ends every session of a frontend (it stopped or restarted). */
void session_end_frontend(rt_frontend_t *f);
/* Frees every session without sending anything (shutdown). */
void sessions_free_all(void);
/* Writes stanza bytes to a session's client. Returns 0, or -1 with errno when the link
 * refused it (EAGAIN: its frontend's pipe is full; EHOSTUNREACH: the frontend is gone);
 * the caller decides what becomes of the stanza (route.c bounces a client's stanza). */
int session_deliver(session_t *s, const char *data, size_t len);
/* The same for a stanza the server generated (a presence broadcast, a push, a reply, a
 * carbon copy): nobody can be told, so a failure is logged and counted (`what` names the
 * stanza in the log). Returns as session_deliver. */
int session_deliver_server(session_t *s, const char *data, size_t len, const char *what);
/* Counts and logs (at most one line a second) a stanza for `s` that the link refused with
 * `err`: `bounced` when its sender got an error, else lost. */
void session_undelivered(const session_t *s, int err, const char *what, int bounced);
/* Serialises a tree the server generated and delivers it (session_deliver_server). */
void session_deliver_node(session_t *s, const xml_node_t *node);
/* Delivers `st` to every available resource of a user (NULL: nobody), 'to' set to each. */
void session_deliver_available(user_t *target, xml_node_t *st);
/* Delivers `st` to a JID: the session of a full JID, or the available resources of a bare
 * one. */
void session_deliver_jid(const char *jid, xml_node_t *st);
/* Sends the current presence of every available resource of `u` to `target`'s available
 * resources, or their unavailable presence. */
void session_send_presence(user_t *u, user_t *target, int unavailable);
/* Answers a request with an error (RFC 6120 8.3) from the server. */
void session_reply_error(session_t *s, const xml_node_t *st, const char *etype,
                         const char *cond);
/* Answers an iq with a result carrying `payload` (taken; may be NULL). */
void session_reply_result(session_t *s, const xml_node_t *st, xml_node_t *payload);

#endif
