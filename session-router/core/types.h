/* types: the records the router's core and modules share (a session, a user, a roster
 * item) and the lookups in the router's tables. Only types and inline lookups here, so that
 * every core file can include it without depending on another. */
#ifndef ROUTER_TYPES_H
#define ROUTER_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hmap.h"
#include "router.h"
#include "xml.h"

/* Per-session state slots for modules (module.h assigns one per module that asks). */
#define SESSION_SLOTS 16

typedef struct user user_t;
typedef struct session session_t;

struct session {
    rt_frontend_t *fe; /* NULL while waiting to be resumed (sm.h) */
    uint64_t conn;
    char *full;           /* full JID */
    const char *resource; /* points into full */
    user_t *user;
    int available;        /* sent initial presence and no unavailable since */
    int priority;         /* from the last available presence, -128..127 */
    int interested;       /* requested the roster */
    char *last_presence;  /* serialised last available presence, or NULL */
    uint64_t bound_ms;    /* now_ms() at bind */
    int64_t bound_at;     /* Unix seconds at bind (from the frontend after a resync) */
    char addr[64];        /* the client's address as its frontend saw it, or "" */
    char tls[32];         /* its TLS version ("TLSv1.3", "none"), or "" when not known */
    struct sm_state *sm;  /* stream management (XEP-0198: core/sm.h), or NULL; a session
                             with it may be *waiting* for its client: fe NULL, conn 0 */
    struct caps_entry *caps; /* what its entity capabilities name (core/caps.h), or NULL */
    char *caps_wait;      /* the capabilities being learnt ("HASH VER"), or NULL */
    unsigned caps_stored; /* hashes this session taught the router that went to Redis */
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
    int tombstoned;   /* the address was deleted (keys.h KEYS_TOMBSTONE; known once loaded) */
    hmap_t *roster;   /* contact bare JID -> roster_item_t */
    uint64_t roster_ver;
    user_op_t *ops, *ops_tail; /* waiting for the roster to load */
    hmap_t *blocked;           /* XEP-0191 blocklist (JID -> itself), loaded with the roster */
    int offline_busy;          /* an offline-message fetch is under way */
    int holds;                 /* operations in flight that keep the user */
};

/* The by_conn key: frontend ident, a NUL, the 8 connection id bytes. */
static inline size_t session_conn_key(unsigned char *key, const rt_frontend_t *f, uint64_t conn)
{
    memcpy(key, f->ident, f->ident_len);
    key[f->ident_len] = '\0';
    memcpy(key + f->ident_len + 1, &conn, sizeof conn);
    return f->ident_len + 1 + sizeof conn;
}

/* The session of a frontend's connection, of a full JID; the held user of a bare JID. */
static inline session_t *session_find_conn(const rt_frontend_t *f, uint64_t conn)
{
    unsigned char key[sizeof f->ident + 1 + sizeof conn];
    return hmap_get(rt.by_conn, key, session_conn_key(key, f, conn));
}

static inline session_t *session_find_jid(const char *full)
{
    return hmap_sget(rt.by_jid, full);
}

static inline user_t *user_find(const char *bare)
{
    return hmap_sget(rt.users, bare);
}

#endif
