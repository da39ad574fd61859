/* caps: what each available session can do, from XEP-0115 entity capabilities. The core
 * reads the <c xmlns='http://jabber.org/protocol/caps' hash ver node/> of a session's
 * available presence; a verification string it has seen (memory, then Redis) gives the
 * feature list at once, an unknown one is learnt by a disco#info query to that session
 * (core/iqreq.h) and checked as XEP-0115 section 5 says before it is cached. When a
 * session's features become known or change, HOOK_CAPS_CHANGED runs for it (PEP sends the
 * last items of the nodes it is interested in, XEP-0163 section 4.3). */
#ifndef ROUTER_CAPS_H
#define ROUTER_CAPS_H

#include <stddef.h>

#include "config.h"
#include "types.h"

extern const config_key_t caps_config_keys[];

/* Registers the presence and session hooks and reads the cache settings (at start). */
void caps_open(void);
/* After the sessions were freed (shutdown). */
void caps_close(void);

/* 1 when `s` is available and its known features include `var` (for example
 * "urn:xmpp:avatar:metadata+notify"), else 0. */
int caps_has_feature(const session_t *s, const char *var);

/* The known features of `s`, sorted (strcmp), and their number in *n; NULL with *n = 0
 * while they are not known. Valid until the session's next presence or its end. */
const char *const *caps_features(const session_t *s, size_t *n);

#endif
