/* contactaddr: the server's contact addresses (XEP-0157) from the contact_addresses key,
 * and the XEP-0128 extended form that publishes them in the server's disco#info.
 *
 * Text: groups separated by ';', each KIND=URI[,URI...], KIND one of the XEP-0157 field
 * prefixes (abuse, admin, feedback, sales, security, status, support), e.g.
 *   abuse=mailto:abuse@example.org,xmpp:abuse@example.org; admin=xmpp:admin@example.org
 * A URI is a scheme, ':' and printable ASCII without spaces (percent-encode the rest, and a
 * ',' or ';' inside a URI). Spaces around the pieces are ignored. Pure: the unit tests
 * drive it. */
#ifndef ROUTER_CONTACTADDR_H
#define ROUTER_CONTACTADDR_H

#include <stddef.h>

#include "xml.h"

#define CONTACTADDR_KINDS 7
#define CONTACTADDR_MAX_URIS 16    /* per kind */
#define CONTACTADDR_MAX_URI 1024   /* bytes of one URI */

#define NS_SERVERINFO "http://jabber.org/network/serverinfo"

typedef struct {
    char **uris[CONTACTADDR_KINDS]; /* malloc'd, in the order given */
    size_t n[CONTACTADDR_KINDS];
} contactaddr_t;

/* The kind names, in the order of the fields of the form ("abuse", ...). */
extern const char *const contactaddr_kinds[CONTACTADDR_KINDS];

/* Parses `text` into *out (zeroed first). 0 on success (an empty text gives no address);
 * -1 with a message in err and nothing kept otherwise. */
int contactaddr_parse(const char *text, contactaddr_t *out, char *err, size_t errlen);
/* Number of addresses of all kinds. */
size_t contactaddr_count(const contactaddr_t *c);
/* The <x xmlns='jabber:x:data' type='result'/> form (XEP-0128, FORM_TYPE first, hidden;
 * one list-multi field KIND-addresses per kind that has addresses), or NULL when there is
 * none. The caller owns it. */
xml_node_t *contactaddr_form(const contactaddr_t *c);
/* Frees the addresses and zeroes *c. */
void contactaddr_free(contactaddr_t *c);

#endif
