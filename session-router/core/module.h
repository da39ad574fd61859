/* module: the router's feature registry. Every feature (roster, presence, blocking, carbons,
 * offline storage, vCard, ...) is a module: one file with one static module_t that lists
 * its IQ handlers, its disco#info features and identities, and its hooks. The entry file
 * (main.c) registers the modules from one explicit list; the core walks these tables and
 * never names a feature. docs/ARCHITECTURE.md shows a worked example. */
#ifndef ROUTER_MODULE_H
#define ROUTER_MODULE_H

#include <stddef.h>

#include "admin.h"
#include "config.h"
#include "deliver.h"
#include "hook.h"
#include "ipc.h"
#include "types.h"
#include "xml.h"

/* The kinds of address an iq can be sent to (a handler's `at` is a mask of these). An iq
 * with no 'to' is processed on the sender's behalf (RFC 6120 10.3.3): handlers for the
 * server are asked first, then those for the sender's own account. */
enum {
    MOD_AT_SERVER = 1,  /* the domain (or no 'to') */
    MOD_AT_SELF = 2,    /* the sender's own bare JID (or no 'to') */
    MOD_AT_ACCOUNT = 4, /* another local account's bare JID (the account exists) */
    /* Not an address: a handler whose mask has it also serves requests from other
     * domains (through an s2s frontend), for MOD_AT_SERVER and MOD_AT_ACCOUNT. Such a
     * request has no session: `from` is NULL, `sender` the remote JID, and answers go by
     * address (session_reply_result/error with NULL). Handlers without it are never
     * offered a remote request (it gets service-unavailable). */
    MOD_REMOTE = 8,
};

/* iq types a handler serves (mask). */
enum { MOD_GET = 1, MOD_SET = 2 };

/* An iq request being dispatched. */
typedef struct {
    session_t *from;           /* NULL for a request from another domain (MOD_REMOTE) */
    const char *sender;        /* the requester's JID: from->full, or the remote JID */
    xml_node_t *st;            /* the whole iq */
    const xml_node_t *payload; /* its first child element */
    int set;                   /* type='set' (else 'get') */
    unsigned at;               /* one MOD_AT_* */
    const char *account;       /* the account addressed: the sender's for SERVER and SELF
                                  (NULL for a remote request to the server) */
    user_t *target;            /* MOD_AT_ACCOUNT: the addressed user, roster loaded */
} mod_iq_t;

typedef mod_result_t (*mod_iq_fn)(mod_iq_t *iq);

typedef struct {
    const char *ns, *name; /* the payload element */
    unsigned types;        /* MOD_GET | MOD_SET */
    unsigned at;           /* MOD_AT_* mask */
    mod_iq_fn fn;
} mod_iq_handler_t;

/* A disco#info feature or identity, shown for the addresses in `at` (MOD_AT_SERVER: the
 * domain; MOD_AT_SELF / MOD_AT_ACCOUNT: an account's bare JID), unless `enabled` (may be
 * NULL) says no. */
typedef struct {
    const char *var;
    unsigned at;
    int (*enabled)(void);
} mod_feature_t;

typedef struct {
    const char *category, *type, *name;
    unsigned at;
} mod_identity_t;

/* A module. Every list ends with an entry whose first field is zero/NULL. */
typedef struct module {
    const char *name;
    const mod_iq_handler_t *iq;
    const mod_feature_t *features;
    const mod_identity_t *identities;
    const mod_hook_t *hooks;
    const config_key_t *config; /* the keys it reads (in open), or NULL */
    int wants_slot;          /* 1: give it a per-session state slot (module_slot) */
    void (*open)(void);      /* after the configuration is loaded (may be NULL) */
    void (*close)(void);     /* at shutdown (may be NULL) */
    int slot;                /* set by module_register */
    const admin_command_t *admin; /* admin commands for xmppctl (admin.h), or NULL */
    /* Adds to a disco#info answer for `at` what tables cannot say (an XEP-0128 extended
     * form, such as XEP-0157 contact addresses), or NULL. Called after the identities and
     * features are in. */
    void (*disco_extend)(xml_node_t *query, unsigned at);
} module_t;

/* Registers the configuration keys of the modules (before config_load). */
void module_declare_config(module_t *const *mods, size_t n);
/* Registers the modules in order (their order breaks ties between equal priorities) and
 * opens them. Fatal on a module that asks for more slots than there are. */
void module_register(module_t *const *mods, size_t n);
/* Closes the modules in reverse order and frees the registry. */
void module_close_all(void);
/* The per-session state slot of a module (valid after registration). */
#define module_slot(s, mod) ((s)->slot[(mod).slot])

/* Dispatches an iq get/set from `from` addressed as `at` (MOD_AT_*; for an iq with no 'to'
 * pass MOD_AT_SERVER | MOD_AT_SELF). Answers service-unavailable when no handler takes it.
 * `from` NULL: a request from another domain (its 'from'), offered only to MOD_REMOTE
 * handlers, answered by address. */
void module_dispatch_iq(session_t *from, xml_node_t *st, unsigned at, user_t *target);

/* Runs fn once the roster and blocklist of `bare` are loaded (ok = 0 when storage failed),
 * with a copy of the request and its sender found again; not at all when the sender's
 * session ended meanwhile. A request from another domain (iq->from NULL) gets fn with
 * `from` NULL: its sender is the copy's 'from', and answers go by address. The copy is
 * freed after fn returns. */
typedef void (*mod_iq_later_fn)(session_t *from, user_t *u, int ok, xml_node_t *st);
void module_iq_with_user(const mod_iq_t *iq, const char *bare, mod_iq_later_fn fn);

/* Adds the identities and features registered for `at` to a disco#info <query/>. */
void module_disco_info(xml_node_t *query, unsigned at);

#endif
