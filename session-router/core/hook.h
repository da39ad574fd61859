/* hook: the points where modules take part in what the core does (a session bound or
 * ended, presence, a stanza routed, delivered or stored, ...). Each point runs its hooks in
 * priority order (higher first) until one returns MOD_HANDLED. Modules declare their hooks
 * in their module_t (module.h); the registry adds them here. */
#ifndef ROUTER_HOOK_H
#define ROUTER_HOOK_H

#include "buf.h"
#include "ipc.h"
#include "types.h"
#include "xml.h"

/* What a handler did: consumed the stanza or event, or let the next one see it. */
typedef enum { MOD_PASS = 0, MOD_HANDLED = 1 } mod_result_t;

/* Hook points, each run in priority order (higher first) until a hook returns HANDLED. */
typedef enum {
    HOOK_SESSION_BOUND,     /* session: a resource was bound (or resynced) */
    HOOK_SESSION_ENDED,     /* session: it ends (still in the tables) */
    HOOK_SESSION_FREED,     /* session: about to be freed; free module state, send nothing */
    HOOK_SESSION_RESYNC,    /* session, resync (flags), raw: a frontend resent it after a router
                               restart; modules restore their state, send nothing */
    HOOK_PRESENCE,          /* session, stanza: presence from a client (broadcast or to='') */
    HOOK_PRESENCE_INITIAL,  /* session, stanza, prev_priority: first available presence */
    HOOK_PRESENCE_UPDATE,   /* session, stanza, prev_priority: later available presence */
    HOOK_STANZA_OUT,        /* session, to, raw: a message, presence or iq between a local
                               user and any address is about to be routed: from a client
                               (session set) to a local address or to another domain (then
                               it leaves through an s2s frontend, remote.h), or from another
                               domain (session NULL, `from` the remote sender) to a local
                               address; a hook may replace payload/len with a rewritten
                               stanza (same kind, type and addresses) that stays valid until
                               the stanza is routed, and the rest of routing uses it */
    HOOK_PRESENCE_IN,       /* from (a JID at another domain), to (local), msg, st, frontend:
                               presence another server sent to a local address (no session;
                               msg->conn the server connection of `frontend` it came on,
                               frontend NULL when the router made it, rpresence.h): the
                               presence module answers probes, processes subscriptions and
                               delivers the rest */
    HOOK_STANZA_IN,         /* user (loaded), from, msg, st; session when a client sent it:
                               a stanza for an account that had to be loaded first (iq to
                               its bare JID, an inbound subscription stanza) */
    HOOK_DELIVER_FULL,      /* session, target, raw: a message to an online full JID */
    HOOK_DELIVER_BARE,      /* session, user, raw: a message to a bare JID, targets selected */
    HOOK_STORE_OFFLINE,     /* session, to, raw: a message for a user with no resource */
    HOOK_ROSTER_REMOVED,    /* user, item: the user removes a contact (RFC 6121 2.5) */
    HOOK_USER_DELETED,      /* user (roster loaded, sessions ended), deletion: the account is
                               being deleted; modules tell whom they must and name the keys
                               of the user's data they keep (account.h account_data_key) */
    HOOK_SESSION_DESCRIBE,  /* session, desc: a frontend takes the session over (XEP-0198
                               resumption): modules add their IPC_RESYNC_* flags and the
                               directed-presence targets, as a resync would carry them */
    HOOK_REGISTER,          /* frontend, reg: a frontend asks for a new account (IPC_REGISTER);
                               the hook that returns HANDLED answers it, now or later, with
                               link_send_register_reply; unhandled: refused */
    HOOK_SESSION_OUTPUT,    /* session (the receiver), payload/len, msg (may be NULL): a
                               stanza about to be written to a session's client, at the top
                               of session_deliver; a hook that returns HANDLED has taken it
                               (held: it releases it later with session_deliver_now, or drops
                               it), and session_deliver returns 0 */
    HOOK_CLIENT_STATE,      /* session, inactive: the client said <inactive/> or <active/>
                               (XEP-0352, IPC_CLIENT_STATE), in order with its stanzas */
    HOOK_CAPS_CHANGED,      /* session: the features its entity capabilities (XEP-0115,
                               core/caps.h) name became known or changed, or the session
                               became available again with them (interested again) */
    HOOK_PEP_PUBLISH,       /* to (owner bare JID), node, st (an <item/>, or a whole
                               <pubsub xmlns='...pubsub'/> request: publish with
                               publish-options, or retract): a module asks the PEP service
                               to act on the owner's behalf (as the owner would, nodes
                               created with defaults or the publish-options); the PEP module
                               returns HANDLED once it has taken it */
    HOOK_PEP_PUBLISHED,     /* to (owner bare JID), node, st (the <item/> stored, or
                               <retract id='X'/> after a retraction), session (the
                               publisher's, or NULL when a module asked): an item was
                               published or retracted; modules that mirror it follow */
    HOOK_REMOTE_LOST,       /* from: a domain whose server connection (IPC_S2S_CLOSED with
                               "lost") is gone, or NULL when an s2s frontend went away with
                               every connection it held: what users of other domains are
                               thought to be doing may be stale (rpresence.h, mod_muc) */
    HOOK_MAX
} hook_id_t;

/* HOOK_SESSION_DESCRIBE: what modules add. */
typedef struct {
    uint8_t flags;  /* IPC_RESYNC_* */
    buf_t *targets; /* directed-presence targets, separated by '\n' */
} session_desc_t;

/* What a hook sees; which fields are set depends on the hook (above). */
typedef struct {
    session_t *session;     /* the session the stanza comes from, or the one concerned */
    session_t *target;      /* HOOK_DELIVER_FULL: the receiving session */
    user_t *user;           /* the user concerned (receiver, or whose roster changes) */
    roster_item_t *item;    /* HOOK_ROSTER_REMOVED */
    const ipc_stanza_t *msg; /* routing facts of a raw stanza (kind, type, to, from) */
    const ipc_resync_t *resync; /* HOOK_SESSION_RESYNC: the session state resent */
    const char *to;         /* its 'to' */
    const char *from;       /* HOOK_STANZA_IN, HOOK_PRESENCE_IN, HOOK_STANZA_OUT without a
                               session: its sender (full or bare JID) */
    const char *payload;    /* raw stanza bytes (serialised for jabber:client) */
    size_t len;
    xml_node_t *st;         /* the parsed stanza, where the hook has one */
    int prev_priority;      /* presence hooks: the priority before this presence */
    struct account_deletion *deletion; /* HOOK_USER_DELETED (account.h) */
    rt_frontend_t *frontend; /* HOOK_REGISTER: the frontend that asks; HOOK_PRESENCE_IN:
                                the s2s frontend it came through */
    const ipc_register_t *reg; /* HOOK_REGISTER: the request (valid during the hook) */
    session_desc_t *desc;      /* HOOK_SESSION_DESCRIBE */
    int inactive;           /* HOOK_CLIENT_STATE: 1 <inactive/>, 0 <active/> */
    const char *node;       /* HOOK_PEP_*: the PEP node */
} hook_ev_t;

typedef mod_result_t (*hook_fn)(hook_ev_t *ev);

typedef struct {
    hook_id_t id;
    int priority;
    hook_fn fn;
} mod_hook_t;

/* Adds a hook (the registry does, for each module in order: `order` breaks ties between
 * equal priorities); hook_sort puts every point in order once all are added. */
void hook_add(const mod_hook_t *h, size_t order);
void hook_sort(void);
/* Forgets every hook (shutdown). */
void hook_clear(void);
/* Runs a hook; returns MOD_HANDLED when a module consumed the event. */
mod_result_t hook_run(hook_id_t id, hook_ev_t *ev);

#endif
