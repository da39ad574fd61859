/* stanza: helpers shared by the frontend and the router for building and reading
 * stanzas: error replies (RFC 6120 section 8.3), parsing one serialised stanza. */
#ifndef COMMON_STANZA_H
#define COMMON_STANZA_H

#include <stddef.h>
#include <time.h>

#include "xml.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_STREAMS_ERR "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_PING "urn:xmpp:ping"
#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

/* Builds the error reply to `orig` (RFC 6120 8.3.1): same element name and id,
 * type='error', from = orig's 'to' (or `server` when it had none), to = orig's 'from',
 * the original children kept for message and presence, then
 * <error type='etype'><cond xmlns='...stanzas'/></error>. Returns a new tree. */
xml_node_t *stanza_error_reply(const xml_node_t *orig, const char *server, const char *etype,
                               const char *cond);
/* An iq result for `orig`: from/to swapped as above, same id, no payload. */
xml_node_t *stanza_iq_result(const xml_node_t *orig, const char *server);
/* The priority of a presence (RFC 6121 4.7.2.3): an integer -128..127; absent or
 * anything else counts as 0. */
int stanza_presence_priority(const xml_node_t *presence);
/* Adds a XEP-0203 <delay/> stamped `when` (UTC), from `from`, to a stanza. */
void stanza_add_delay(xml_node_t *st, const char *from, time_t when);
/* RFC 6120 8.2.3 and 8.3.3.1: whether a stanza of `kind` with its `type` attribute read
 * as `stype` (ipc_stype_from_attr) may be routed: a type the kind allows, and for an iq an
 * id, a type, and exactly one payload child in a get or set. 0, or -1 for bad-request. */
int stanza_check_type(const xml_node_t *st, int kind, int stype);
/* Parses one serialised stanza (as the frontend forwards them, in jabber:client context).
 * Returns the tree or NULL when the bytes are not exactly one well-formed element. */
xml_node_t *stanza_parse(const char *data, size_t len);

/* A direct child of a stanza, read off its serialised form by stanza_scan_children. */
typedef struct {
    const char *name, *ns; /* not NUL-terminated: nlen, nslen bytes */
    size_t nlen, nslen;
} stanza_kid_t;
#define STANZA_KIDS_MAX 32
/* Reads the direct children of a stanza from its canonical serialisation (as the frontend
 * forwards it and as xml_serialize writes it: element names without prefixes, a namespace
 * other than the parent's as an xmlns attribute right after the name, '<' and '>' escaped
 * in text and attribute values, so every '<' opens a tag and every '>' closes one), up to
 * `max` of them. Sets *close to the offset of the stanza's closing tag. Returns the number
 * of children, or -1 when the bytes are not in that form, have more than `max` children or
 * a child's namespace holds an escaped character (then parse them). Lets the router look at a message's children without parsing it;
 * fuzz_xml checks it against the parser on every stanza. */
int stanza_scan_children(const char *p, size_t n, stanza_kid_t *kids, size_t max,
                         size_t *close);

#endif
