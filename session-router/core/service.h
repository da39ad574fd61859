/* service: the addresses the router serves besides accounts: subdomains of the domain such
 * as conference.DOMAIN (multi-user chat, XEP-0045) and upload.DOMAIN (HTTP File Upload,
 * XEP-0363). A module claims a domain in its open function; every stanza a client sends to
 * that domain, or to any JID at it, goes to the module's handler instead of the account
 * routing (route.c), and the server's disco#items lists the domain (XEP-0030 section 4). */
#ifndef ROUTER_SERVICE_H
#define ROUTER_SERVICE_H

#include <stddef.h>

#include "ipc.h"
#include "types.h"
#include "xml.h"

/* A stanza from `from` to the service: `msg` has its routing facts (kind, type, to, from,
 * id; 'to' prepared by the frontend), payload/len its bytes serialised for jabber:client
 * (stanza_parse() gives the tree). Results and errors come here too: the service decides. */
typedef void (*service_fn)(session_t *from, const ipc_stanza_t *msg, const char *payload,
                           size_t len);

/* Claims `domain` (prepared, lower case) for `fn`; `name` is the disco#items name (may be
 * NULL). With `remote` set, fn also takes stanzas from users at other domains (`from`
 * NULL, msg->from the sender's JID; answers by address: session_reply_error with no
 * session) and other domains see the service in the server's disco#items; else such a
 * stanza gets service-unavailable. Fatal when the domain is the server's own or already
 * claimed. The string is copied. */
void service_add(const char *domain, const char *name, service_fn fn, int remote);
/* The handler of a domain given as bytes (not NUL-terminated), or NULL; with `remote`, only
 * a handler that takes stanzas from other domains. */
service_fn service_find(const char *domain, size_t len, int remote);
/* Calls fn for every claimed domain (with `remote`, those open to other domains), in the
 * order they were claimed. */
void service_each(int remote, void (*fn)(const char *domain, const char *name, void *ud),
                  void *ud);
/* Forgets every service (shutdown; modules close first). */
void service_clear(void);

/* Stanzas from a service to local addresses: route_service_stanza (route.h). */

#endif
