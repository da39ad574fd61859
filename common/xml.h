/* xml: a small element tree for one stanza, a streaming XMPP parser on libexpat, and a
 * serializer. The parser does no I/O: feed it bytes, it calls back with the stream header,
 * each complete top-level stanza (as a tree the callee owns), and the stream end.
 *
 * Hardened per RFC 6120 section 11: any DOCTYPE, entity declaration, processing
 * instruction or comment is refused (restricted-xml); depth and stanza size are bounded
 * (policy-violation); input must be UTF-8 (a non-UTF-8 encoding declaration gives
 * unsupported-encoding, bad bytes give not-well-formed); after the stream's end tag only
 * whitespace may follow (anything else is not-well-formed, or restricted-xml for a comment
 * or PI), whatever the slicing of the input. */
#ifndef COMMON_XML_H
#define COMMON_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define XML_NS_STREAM "http://etherx.jabber.org/streams"
#define XML_NS_CLIENT "jabber:client"
#define XML_NS_XML "http://www.w3.org/XML/1998/namespace"

typedef struct xml_attr {
    char *ns;   /* namespace URI of a prefixed attribute, NULL for plain attributes */
    char *name; /* local name */
    char *value;
    struct xml_attr *next;
} xml_attr_t;

/* An element (name != NULL) or a text node (name == NULL, text holds the characters). */
typedef struct xml_node {
    char *name; /* local name */
    char *ns;   /* namespace URI, NULL when none */
    xml_attr_t *attrs;
    struct xml_node *parent;
    struct xml_node *children, *last_child, *next;
    char *text; /* text nodes only; NUL-terminated, text_len bytes */
    size_t text_len;
} xml_node_t;

/* Tree building and reading. */
xml_node_t *xml_node_new(const char *name, const char *ns);
/* Frees the node, its attributes and all its children, and sets *node_p to NULL. */
void xml_node_free(xml_node_t **node_p);
/* Deep copy. */
xml_node_t *xml_node_copy(const xml_node_t *node);
/* Sets (replaces or adds) a plain attribute; value NULL removes it. */
void xml_node_set_attr(xml_node_t *node, const char *name, const char *value);
/* Value of a plain (unnamespaced) attribute, or NULL. */
const char *xml_node_attr(const xml_node_t *node, const char *name);
/* Value of a namespaced attribute (e.g. XML_NS_XML, "lang"), or NULL. */
const char *xml_node_attr_ns(const xml_node_t *node, const char *ns, const char *name);
/* Appends `child` (takes ownership) and returns it. */
xml_node_t *xml_node_add_child(xml_node_t *node, xml_node_t *child);
/* Creates and appends an element child in namespace ns (NULL: the parent's namespace). */
xml_node_t *xml_node_new_child(xml_node_t *node, const char *name, const char *ns);
/* Appends text (merged into a trailing text node when there is one). */
void xml_node_add_text(xml_node_t *node, const char *text, size_t len);
/* First element child with this name and namespace (ns NULL matches any), or NULL. */
xml_node_t *xml_node_child(const xml_node_t *node, const char *name, const char *ns);
/* First element child of any name, or NULL. */
xml_node_t *xml_node_first_element(const xml_node_t *node);
/* Concatenated direct text content (malloc'd, caller frees; "" when there is none). */
char *xml_node_text(const xml_node_t *node);
/* Unlinks `child` from `node` (does not free it). */
void xml_node_remove_child(xml_node_t *node, xml_node_t *child);

/* Appends `node` serialised to `out`. `context_ns` is the default namespace in force where
 * the output will be placed (e.g. XML_NS_CLIENT for a stanza written into a client stream);
 * an xmlns attribute is emitted wherever an element's namespace differs from that in force.
 * Namespaced attributes get prefixes declared on the element itself (xml: needs none), so
 * the output is a valid standalone fragment whatever prefixes the original used. */
void xml_serialize(const xml_node_t *node, const char *context_ns, buf_t *out);
/* Appends text with &, <, >, " and ' escaped. */
void xml_escape(buf_t *out, const char *s, size_t len);

/* Streaming parser. */
typedef enum {
    XML_OK = 0,
    XML_ERR_NOT_WELL_FORMED,      /* syntax, bad UTF-8, undefined prefix, ... */
    XML_ERR_RESTRICTED,           /* DOCTYPE, entity declaration, PI, comment */
    XML_ERR_POLICY,               /* stanza too large or nested too deep */
    XML_ERR_UNSUPPORTED_ENCODING, /* an encoding other than UTF-8 was declared */
    XML_ERR_INVALID_NAMESPACE,    /* stream root is not <stream:stream> in the streams ns */
} xml_error_t;

/* The RFC 6120 stream error condition name for an error ("not-well-formed", ...). */
const char *xml_error_condition(xml_error_t err);

typedef struct {
    size_t max_stanza; /* bytes of input one top-level stanza may take; 0 = 262144 */
    int max_depth;     /* element depth below the stream root; 0 = 64 */
} xml_limits_t;

typedef struct {
    /* The stream root was opened; `root` lists its attributes (no children). Borrowed. */
    void (*stream_open)(void *ud, const xml_node_t *root);
    /* A complete top-level stanza; the callee takes ownership of the tree. */
    void (*stanza)(void *ud, xml_node_t *stanza);
    /* The stream root was closed (</stream:stream>). */
    void (*stream_close)(void *ud);
} xml_callbacks_t;

typedef struct xml_parser xml_parser_t;

xml_parser_t *xml_parser_new(const xml_callbacks_t *cb, void *ud, const xml_limits_t *limits);
/* Changes the limits of a parser (e.g. once the client has authenticated); they apply from
 * the next stanza on. */
void xml_parser_set_limits(xml_parser_t *p, const xml_limits_t *limits);
void xml_parser_destroy(xml_parser_t **parser_p);
/* Feeds bytes. Returns XML_OK, or the error that stopped the parser (it then stays stopped
 * and every later feed returns the same error). Callbacks run inside this call; they must
 * not destroy or reset the parser (set a flag and act after feed returns). */
xml_error_t xml_parser_feed(xml_parser_t *parser, const char *data, size_t len);
/* Starts a fresh stream (after STARTTLS or SASL success), keeping callbacks and limits. */
void xml_parser_reset(xml_parser_t *parser);
/* Frees the expat parser of an idle stream, the bulk of the parser's memory (about 10 KiB:
 * its buffers, hash tables and namespace bindings). Possible only between stanzas (depth
 * 1) with no unparsed byte held, and once the stream root has been seen; returns whether
 * the parser is released now. The next feed makes a fresh expat and gives it the root's
 * start tag as the peer sent it, so prefixes and namespaces declared there still apply and
 * the stream's end tag still matches; limits, callbacks and depth carry on. Not from inside
 * a callback. */
bool xml_parser_release(xml_parser_t *parser);
bool xml_parser_released(const xml_parser_t *parser);
/* Elements open now, the stream root included (1: between stanzas). */
int xml_parser_depth(const xml_parser_t *parser);

/* Reparse deferral: expat 2.6 (and Debian's security updates of 2.5) may hold back a token
 * split over small reads until about twice its bytes are in, so a client's stream header
 * could go unanswered. The parser turns that off when built with HAVE_XML_REPARSE_DEFERRAL
 * (the Makefile's probe of expat.h). */
/* Whether a parser made like the stream parser (switch_off: with deferral turned off, when
 * this build can) still holds back a start tag whose last byte came in a read of its own. */
bool xml_probe_defers(bool switch_off);
/* NULL when the stream parser answers every read at once with the libexpat it runs on;
 * otherwise a message saying why not (the frontend logs it as an error at start). */
const char *xml_deferral_problem(void);

#endif
