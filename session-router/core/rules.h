/* rules: the router's protocol decisions as pure functions (data in, decision out, no I/O),
 * so that unit tests cover them without Redis or sockets: the subscription state tables of
 * RFC 6121 appendix A, the delivery rules of RFC 6121 section 8.5, XEP-0280 carbons
 * eligibility, XEP-0191 blocklist matching. */
#ifndef ROUTER_RULES_H
#define ROUTER_RULES_H

#include <stddef.h>

#include "hmap.h"
#include "ipc.h"
#include "xml.h"

/* The subscription state of one roster item (RFC 6121 appendix A); `exists` 0 means the
 * user has no item for the contact at all. */
typedef struct {
    unsigned exists : 1;
    unsigned to : 1;         /* the user receives the contact's presence */
    unsigned from : 1;       /* the contact receives the user's presence */
    unsigned ask_out : 1;    /* Pending Out */
    unsigned pending_in : 1; /* Pending In */
    unsigned approved : 1;   /* pre-approved (3.4) */
    unsigned hidden : 1;     /* kept only for its state, not shown in the roster */
} sub_state_t;

/* What processing a subscription stanza asks for (bits of the returned mask). */
enum {
    SUB_SAVE = 1 << 0,           /* the item changed: store and push it */
    SUB_REMOVE = 1 << 1,         /* the item is left with no state: delete it */
    SUB_ROUTE = 1 << 2,          /* outbound: pass the stanza on to the contact */
    SUB_DELIVER = 1 << 3,        /* inbound: deliver it to the user's available resources */
    SUB_AUTO_SUBSCRIBED = 1 << 4, /* inbound: the server answers 'subscribed' for the user */
    SUB_PRESENCE_TO_USER = 1 << 5, /* inbound: the sender's current presence to the user */
    SUB_UNAVAILABLE_TO_USER = 1 << 6,   /* inbound: the sender's unavailable to the user */
    SUB_UNAVAILABLE_TO_SENDER = 1 << 7, /* inbound: the user's unavailable to the sender */
};

/* Appendix A.2: the user sends a subscription stanza of type `t` to a contact whose item
 * is `s` (changed in place). Returns SUB_* bits. */
unsigned rules_sub_outbound(sub_state_t *s, ipc_stype_t t);
/* Appendix A.3: a subscription stanza of type `t` arrives for the user from a contact
 * whose item is `s` (changed in place). Returns SUB_* bits. */
unsigned rules_sub_inbound(sub_state_t *s, ipc_stype_t t);

/* One resource of the recipient, as section 8.5 sees it. */
typedef struct {
    int available;
    int priority;
} rules_res_t;

/* RFC 6121 8.5.2.1: which resources a message of type `t` to the bare JID goes to: the
 * available ones with the highest non-negative priority, or every non-negative one for a
 * headline. Sets chosen[i] and returns how many. */
int rules_bare_targets(const rules_res_t *res, size_t n, ipc_stype_t t, int *chosen);

/* What happens to a stanza that no resource takes. */
typedef enum {
    RULE_DROP,      /* silently ignored */
    RULE_BOUNCE,    /* error service-unavailable to the sender */
    RULE_OFFLINE,   /* stored for later delivery (XEP-0160), or bounced when it cannot be */
    RULE_TO_BARE,   /* handled as if sent to the bare JID */
} rules_fallback_t;

/* RFC 6121 8.5.2.2: a message to a bare JID with no resource that takes it. */
rules_fallback_t rules_bare_fallback(ipc_stype_t t);
/* RFC 6121 8.5.3.2: a stanza to a full JID whose resource is not online (presence is
 * RULE_TO_BARE: subscriptions and directed presence are handled by the presence rules). */
rules_fallback_t rules_full_fallback(ipc_kind_t kind, ipc_stype_t t);

/* XEP-0280 section 6: 1 when a message (raw bytes as forwarded, and its routing facts) is
 * copied to carbon-enabled resources: chat, or normal with a body, and not marked
 * <private/>, <no-copy/>, or already a carbon. */
int rules_carbon_eligible(ipc_kind_t kind, ipc_stype_t t, const char *payload, size_t len);

/* XEP-0352 client state indication: what becomes of a stanza for a session whose client
 * said it is inactive. */
typedef enum {
    RULES_CSI_URGENT,   /* a person should see it now: flush what is held, then deliver */
    RULES_CSI_PRESENCE, /* a presence update: held, only the newest per sender ('from') */
    RULES_CSI_HOLD,     /* held in order until something urgent comes (chat states, ...) */
} rules_csi_t;

/* The class of a parsed stanza (XEP-0352 3.2 leaves the choice to the server): iq, a
 * message with a body or subject, an encrypted message (OMEMO, OpenPGP), a call (XEP-0353),
 * an invitation, an error, a subscription request or answer are urgent; an available,
 * unavailable or error presence is a presence update; any other message (XEP-0085 chat
 * states, receipts, PEP notifications) is held. A carbon copy (XEP-0280) is judged by the
 * message it carries. */
rules_csi_t rules_csi_class(const xml_node_t *st);

/* XEP-0191 section 3.2 (matching as privacy lists do): 1 when `jid` (full or bare) is
 * blocked by a list holding full JIDs, bare JIDs, domain/resource and domains. */
int rules_blocklist_match(const hmap_t *list, const char *jid);

#endif
