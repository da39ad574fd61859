/* xml: element tree, hardened streaming XMPP parser on libexpat, and serializer.
 * See xml.h for the interface and RFC 6120 section 11 for the restrictions enforced here. */
#include "xml.h"

#include <expat.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

/* Separates namespace URI and local name in the names expat reports. 0xFF can never occur
 * in UTF-8, so it cannot be part of a URI or a name. */
#define XML_NS_SEP '\xff'
#define XML_NS_XMLNS "http://www.w3.org/2000/xmlns/"

#define XML_DEFAULT_MAX_STANZA 262144
#define XML_DEFAULT_MAX_DEPTH 64
/* Input is handed to expat at most this much at a time, so the bytes of an unfinished token
 * (which expat buffers) never exceed max_stanza by more than one slice. */
#define XML_FEED_SLICE 8192
/* The tree of one stanza may take this many times max_stanza besides its text: enough for
 * any stanza of small elements (about 25 bytes of tree per input byte at worst is for
 * `<a/>` repeated), while a long namespace URI repeated on every element (each stores it
 * in full) stays bounded. */
#define XML_TREE_FACTOR 32

/* ---- Tree ---------------------------------------------------------------------------- */

/* NULL and "" both mean "no namespace". */
static bool ns_equal(const char *a, const char *b)
{
    if (!a || !*a) return !b || !*b;
    return b && strcmp(a, b) == 0;
}

static xml_attr_t *attr_new(const char *ns, const char *name, const char *value)
{
    xml_attr_t *a = xcalloc(1, sizeof *a);
    a->ns = ns && *ns ? xstrdup(ns) : NULL;
    a->name = xstrdup(name);
    a->value = xstrdup(value);
    return a;
}

static void attr_free(xml_attr_t **attr_p)
{
    xml_attr_t *a = *attr_p;
    if (!a) return;
    xfree(&a->ns);
    xfree(&a->name);
    xfree(&a->value);
    xfree(attr_p);
}

/* Appends at the tail so attributes keep document order. */
static void attr_append(xml_node_t *node, xml_attr_t *attr)
{
    xml_attr_t **tail = &node->attrs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = attr;
}

static xml_attr_t *attr_find(const xml_node_t *node, const char *ns, const char *name)
{
    for (xml_attr_t *a = node->attrs; a; a = a->next)
        if (strcmp(a->name, name) == 0 && ns_equal(a->ns, ns)) return a;
    return NULL;
}

xml_node_t *xml_node_new(const char *name, const char *ns)
{
    xml_node_t *node = xcalloc(1, sizeof *node);
    node->name = xstrdup(name);
    node->ns = ns && *ns ? xstrdup(ns) : NULL;
    return node;
}

/* Frees one node's own fields, not its children. */
static void node_free_one(xml_node_t *node)
{
    while (node->attrs) {
        xml_attr_t *next = node->attrs->next;
        attr_free(&node->attrs);
        node->attrs = next;
    }
    free(node->name);
    free(node->ns);
    free(node->text);
    free(node);
}

/* Iterative, so freeing a deep tree needs no deep stack. */
void xml_node_free(xml_node_t **node_p)
{
    if (!node_p || !*node_p) return;
    xml_node_t *root = *node_p;
    *node_p = NULL;
    if (root->parent) xml_node_remove_child(root->parent, root);

    xml_node_t *n = root;
    while (n) {
        if (n->children) {
            /* Detach the first child and descend into it. */
            xml_node_t *c = n->children;
            n->children = c->next;
            n = c;
            continue;
        }
        xml_node_t *up = n == root ? NULL : n->parent;
        node_free_one(n);
        n = up;
    }
}

xml_node_t *xml_node_copy(const xml_node_t *node)
{
    if (!node) return NULL;
    xml_node_t *copy = xcalloc(1, sizeof *copy);
    if (node->name) {
        copy->name = xstrdup(node->name);
        copy->ns = node->ns ? xstrdup(node->ns) : NULL;
        for (const xml_attr_t *a = node->attrs; a; a = a->next)
            attr_append(copy, attr_new(a->ns, a->name, a->value));
    } else {
        copy->text = xstrndup(node->text ? node->text : "", node->text_len);
        copy->text_len = node->text_len;
    }
    for (const xml_node_t *c = node->children; c; c = c->next)
        xml_node_add_child(copy, xml_node_copy(c));
    return copy;
}

void xml_node_set_attr(xml_node_t *node, const char *name, const char *value)
{
    xml_attr_t **pp = &node->attrs;
    while (*pp && !((*pp)->ns == NULL && strcmp((*pp)->name, name) == 0))
        pp = &(*pp)->next;
    if (*pp) {
        if (value) {
            char *v = xstrdup(value); /* value may point into the old one */
            free((*pp)->value);
            (*pp)->value = v;
        } else {
            xml_attr_t *next = (*pp)->next;
            attr_free(pp);
            *pp = next;
        }
    } else if (value) {
        *pp = attr_new(NULL, name, value);
    }
}

const char *xml_node_attr(const xml_node_t *node, const char *name)
{
    xml_attr_t *a = attr_find(node, NULL, name);
    return a ? a->value : NULL;
}

const char *xml_node_attr_ns(const xml_node_t *node, const char *ns, const char *name)
{
    xml_attr_t *a = attr_find(node, ns, name);
    return a ? a->value : NULL;
}

xml_node_t *xml_node_add_child(xml_node_t *node, xml_node_t *child)
{
    if (child->parent) xml_node_remove_child(child->parent, child);
    child->parent = node;
    child->next = NULL;
    if (node->last_child)
        node->last_child->next = child;
    else
        node->children = child;
    node->last_child = child;
    return child;
}

xml_node_t *xml_node_new_child(xml_node_t *node, const char *name, const char *ns)
{
    return xml_node_add_child(node, xml_node_new(name, ns ? ns : node->ns));
}

void xml_node_add_text(xml_node_t *node, const char *text, size_t len)
{
    if (len == 0) return;
    xml_node_t *last = node->last_child;
    if (last && !last->name) {
        last->text = xrealloc(last->text, last->text_len + len + 1);
        memcpy(last->text + last->text_len, text, len);
        last->text_len += len;
        last->text[last->text_len] = '\0';
        return;
    }
    xml_node_t *t = xcalloc(1, sizeof *t);
    t->text = xstrndup(text, len);
    t->text_len = len;
    xml_node_add_child(node, t);
}

xml_node_t *xml_node_child(const xml_node_t *node, const char *name, const char *ns)
{
    for (xml_node_t *c = node->children; c; c = c->next)
        if (c->name && strcmp(c->name, name) == 0 && (!ns || ns_equal(c->ns, ns))) return c;
    return NULL;
}

xml_node_t *xml_node_first_element(const xml_node_t *node)
{
    for (xml_node_t *c = node->children; c; c = c->next)
        if (c->name) return c;
    return NULL;
}

char *xml_node_text(const xml_node_t *node)
{
    size_t len = 0;
    for (const xml_node_t *c = node->children; c; c = c->next)
        if (!c->name) len += c->text_len;
    char *s = xmalloc(len + 1);
    size_t off = 0;
    for (const xml_node_t *c = node->children; c; c = c->next) {
        if (!c->name) {
            memcpy(s + off, c->text, c->text_len);
            off += c->text_len;
        }
    }
    s[off] = '\0';
    return s;
}

void xml_node_remove_child(xml_node_t *node, xml_node_t *child)
{
    xml_node_t *prev = NULL;
    xml_node_t *c = node->children;
    while (c && c != child) {
        prev = c;
        c = c->next;
    }
    if (!c) return;
    if (prev)
        prev->next = child->next;
    else
        node->children = child->next;
    if (node->last_child == child) node->last_child = prev;
    child->parent = NULL;
    child->next = NULL;
}

/* ---- Serializer ---------------------------------------------------------------------- */

/* What to escape besides & < > " ': in text, CR (a parser turns a literal CR into LF); in
 * attribute values also tab and LF (a parser normalises them to spaces). */
typedef enum { ESC_BASIC, ESC_TEXT, ESC_ATTR } esc_mode_t;

static void escape_into(buf_t *out, const char *s, size_t len, esc_mode_t mode)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        case '\r':
            rep = mode != ESC_BASIC ? "&#13;" : NULL;
            break;
        case '\n':
            rep = mode == ESC_ATTR ? "&#10;" : NULL;
            break;
        case '\t':
            rep = mode == ESC_ATTR ? "&#9;" : NULL;
            break;
        default:
            break;
        }
        if (rep) {
            buf_append(out, s + start, i - start);
            buf_append_str(out, rep);
            start = i + 1;
        }
    }
    buf_append(out, s + start, len - start);
}

void xml_escape(buf_t *out, const char *s, size_t len)
{
    escape_into(out, s, len, ESC_BASIC);
}

static void put_attr(buf_t *out, const char *prefix, int prefix_num, const char *name,
                     const char *value)
{
    buf_append_str(out, " ");
    if (prefix)
        buf_printf(out, "%s:", prefix);
    else if (prefix_num > 0)
        buf_printf(out, "ns%d:", prefix_num);
    buf_append_str(out, name);
    buf_append_str(out, "=\"");
    escape_into(out, value, strlen(value), ESC_ATTR);
    buf_append_str(out, "\"");
}

/* Writes the attributes of one element. Every namespaced attribute other than xml: gets a
 * prefix nsN declared right here, so the element never depends on declarations elsewhere. */
static void serialize_attrs(const xml_node_t *node, buf_t *out)
{
    const char **declared = NULL; /* namespaces given a prefix so far; prefix = index + 1 */
    size_t ndeclared = 0;

    for (const xml_attr_t *a = node->attrs; a; a = a->next) {
        if (!a->ns || !*a->ns) {
            /* Namespace declarations are generated from node->ns, never copied. */
            if (strcmp(a->name, "xmlns") != 0) put_attr(out, NULL, 0, a->name, a->value);
            continue;
        }
        if (strcmp(a->ns, XML_NS_XML) == 0) {
            put_attr(out, "xml", 0, a->name, a->value);
            continue;
        }
        if (strcmp(a->ns, XML_NS_XMLNS) == 0) continue;
        size_t i = 0;
        while (i < ndeclared && strcmp(declared[i], a->ns) != 0)
            i++;
        if (i == ndeclared) {
            declared = xrealloc(declared, (ndeclared + 1) * sizeof *declared);
            declared[ndeclared++] = a->ns;
            buf_printf(out, " xmlns:ns%zu=\"", i + 1);
            escape_into(out, a->ns, strlen(a->ns), ESC_ATTR);
            buf_append_str(out, "\"");
        }
        put_attr(out, NULL, (int)(i + 1), a->name, a->value);
    }
    free(declared);
}

static void serialize_node(const xml_node_t *node, const char *ns_in_force, buf_t *out)
{
    if (!node->name) {
        escape_into(out, node->text ? node->text : "", node->text_len, ESC_TEXT);
        return;
    }
    buf_append_str(out, "<");
    buf_append_str(out, node->name);
    if (!ns_equal(node->ns, ns_in_force)) {
        buf_append_str(out, " xmlns=\"");
        if (node->ns) escape_into(out, node->ns, strlen(node->ns), ESC_ATTR);
        buf_append_str(out, "\"");
    }
    serialize_attrs(node, out);
    if (!node->children) {
        buf_append_str(out, "/>");
        return;
    }
    buf_append_str(out, ">");
    for (const xml_node_t *c = node->children; c; c = c->next)
        serialize_node(c, node->ns, out);
    buf_append_str(out, "</");
    buf_append_str(out, node->name);
    buf_append_str(out, ">");
}

void xml_serialize(const xml_node_t *node, const char *context_ns, buf_t *out)
{
    serialize_node(node, context_ns, out);
}

/* ---- Streaming parser ------------------------------------------------------------------ */

struct xml_parser {
    XML_Parser expat; /* NULL while released (xml_parser_release) */
    xml_callbacks_t cb;
    void *ud;
    size_t max_stanza;
    int max_depth;
    xml_error_t error;  /* sticky: once set, feed returns it without parsing */
    int depth;          /* open elements, the stream root included */
    xml_node_t *stanza; /* the top-level stanza being built, or NULL */
    xml_node_t *cur;    /* innermost open element of `stanza` */
    /* Character data not yet added to `cur`: expat reports text in small pieces (one per
     * feed, entity, line), and batching them keeps appending linear. */
    buf_t text;
    /* Default namespace declared on the stream root, seen before its start event. */
    char *root_ns;
    bool root_ns_seen;
    /* Bytes the open stanza's tree takes besides its text (nodes, names, namespace URIs,
     * attributes): every element stores its namespace URI in full, so a long default
     * namespace over many small elements would cost far more than the input's size. */
    size_t tree;
    size_t fed;  /* bytes given to expat since the stream (re)started */
    size_t mark; /* input offset from which bytes count against max_stanza: the start of the
                    open stanza, or else the end of the last token expat consumed */
    /* After the stream root's end tag (see epilog_check): its input offset, and whether a
     * '<' has come since, from which on expat alone judges the input. */
    bool root_closed;
    size_t epilog;
    bool epilog_lt;
    /* The stream root's start tag as the peer sent it (its prefixes and namespace
     * declarations), kept so that a released parser can be made again in the same state:
     * fed to a fresh expat, it puts that parser at depth 1 with the same bindings in force.
     * NULL when expat could not show it (then the parser is never released). */
    char *header;
    size_t header_len;
    bool resuming; /* feeding `header` to a fresh expat: no stream_open callback */
    /* Inside a CDATA section (possible between stanzas too, as text of the root): expat
     * is in a state of its own that a fresh parser would not be in. */
    bool in_cdata;
};

static void parser_fail(xml_parser_t *p, xml_error_t err)
{
    if (p->error == XML_OK) p->error = err;
    XML_StopParser(p->expat, XML_FALSE);
}

/* Input offset just past the token that caused the current event. */
static size_t event_end(xml_parser_t *p)
{
    XML_Index idx = XML_GetCurrentByteIndex(p->expat);
    int count = XML_GetCurrentByteCount(p->expat);
    if (idx < 0) return p->fed;
    return (size_t)idx + (size_t)(count > 0 ? count : 0);
}

/* Catches a stanza that grows past the limit within one slice of input. */
static bool stanza_size_ok(xml_parser_t *p)
{
    if (p->stanza && event_end(p) - p->mark > p->max_stanza) {
        parser_fail(p, XML_ERR_POLICY);
        return false;
    }
    return true;
}

/* Builds an element from an expat name "uri<SEP>local" or "local"; adds the bytes it
 * allocated to *cost. */
static xml_node_t *node_from_expat(const char *qname, const char **atts, size_t *cost)
{
    xml_node_t *node = xcalloc(1, sizeof *node);
    *cost += sizeof *node + strlen(qname) + 2;
    const char *sep = strchr(qname, XML_NS_SEP);
    if (sep) {
        node->ns = xstrndup(qname, (size_t)(sep - qname));
        node->name = xstrdup(sep + 1);
    } else {
        node->name = xstrdup(qname);
    }
    for (size_t i = 0; atts && atts[i]; i += 2) {
        xml_attr_t *a = xcalloc(1, sizeof *a);
        *cost += sizeof *a + strlen(atts[i]) + strlen(atts[i + 1]) + 3;
        sep = strchr(atts[i], XML_NS_SEP);
        if (sep) {
            a->ns = xstrndup(atts[i], (size_t)(sep - atts[i]));
            a->name = xstrdup(sep + 1);
        } else {
            a->name = xstrdup(atts[i]);
        }
        a->value = xstrdup(atts[i + 1]);
        attr_append(node, a);
    }
    return node;
}

static void text_flush(xml_parser_t *p)
{
    if (p->text.len == 0) return;
    if (p->cur) xml_node_add_text(p->cur, p->text.data, p->text.len);
    buf_clear(&p->text);
}

/* Keeps the bytes of the current start tag (the stream root's) for xml_parser_release. */
static void header_keep(xml_parser_t *p)
{
    xfree(&p->header);
    p->header_len = 0;
    int offset = 0, size = 0;
    const char *ctx = XML_GetInputContext(p->expat, &offset, &size);
    int count = XML_GetCurrentByteCount(p->expat);
    if (!ctx || offset < 0 || count <= 0 || offset + count > size) return;
    p->header = xstrndup(ctx + offset, (size_t)count);
    p->header_len = (size_t)count;
}

static void root_open(xml_parser_t *p, const char *qname, const char **atts)
{
    if (p->resuming) { /* the header again (xml_parser_feed): already checked and reported */
        xfree(&p->root_ns);
        p->root_ns_seen = false;
        p->depth = 1;
        return;
    }
    size_t cost = 0;
    xml_node_t *root = node_from_expat(qname, atts, &cost);
    if (strcmp(root->name, "stream") != 0 || !ns_equal(root->ns, XML_NS_STREAM)) {
        xml_node_free(&root);
        parser_fail(p, XML_ERR_INVALID_NAMESPACE);
        return;
    }
    /* Namespace declarations are not attributes, but the caller needs the content
     * namespace (jabber:client or jabber:server): expose it as a plain "xmlns". */
    if (p->root_ns_seen) attr_append(root, attr_new(NULL, "xmlns", p->root_ns ? p->root_ns : ""));
    xfree(&p->root_ns);
    p->root_ns_seen = false;
    p->depth = 1;
    header_keep(p);
    if (p->cb.stream_open) p->cb.stream_open(p->ud, root);
    xml_node_free(&root);
}

static void XMLCALL on_ns_start(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
    xml_parser_t *p = ud;
    if (p->depth == 0 && !prefix) {
        xfree(&p->root_ns);
        p->root_ns = uri ? xstrdup(uri) : NULL;
        p->root_ns_seen = true;
    }
}

static void XMLCALL on_start(void *ud, const XML_Char *qname, const XML_Char **atts)
{
    xml_parser_t *p = ud;
    if (p->error) return;
    text_flush(p);
    if (p->depth == 0) {
        root_open(p, qname, atts);
        return;
    }
    /* The new element sits `depth` levels below the root (a stanza is level 1). */
    if (p->depth > p->max_depth) {
        parser_fail(p, XML_ERR_POLICY);
        return;
    }
    if (p->depth == 1)
        p->tree = 0;
    xml_node_t *node = node_from_expat(qname, atts, &p->tree);
    if (p->depth == 1) {
        XML_Index idx = XML_GetCurrentByteIndex(p->expat);
        p->stanza = node;
        p->mark = idx >= 0 ? (size_t)idx : p->fed;
    } else {
        xml_node_add_child(p->cur, node);
    }
    p->cur = node;
    p->depth++;
    if (p->tree > XML_TREE_FACTOR * p->max_stanza) {
        parser_fail(p, XML_ERR_POLICY);
        return;
    }
    stanza_size_ok(p);
}

static void XMLCALL on_end(void *ud, const XML_Char *qname)
{
    xml_parser_t *p = ud;
    (void)qname; /* expat has already checked that it matches the start tag */
    if (p->error) return;
    text_flush(p);
    p->depth--;
    if (p->depth == 0) {
        p->root_closed = true;
        p->epilog = event_end(p);
        if (p->cb.stream_close) p->cb.stream_close(p->ud);
        return;
    }
    if (!stanza_size_ok(p)) return;
    if (p->depth > 1) {
        p->cur = p->cur->parent;
        return;
    }
    /* A complete stanza: hand it over before the callback, which may feed nothing back. */
    xml_node_t *stanza = p->stanza;
    p->stanza = p->cur = NULL;
    p->mark = event_end(p);
    buf_free(&p->text); /* keep an idle parser small */
    if (p->cb.stanza)
        p->cb.stanza(p->ud, stanza);
    else
        xml_node_free(&stanza);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    xml_parser_t *p = ud;
    if (p->error || len <= 0) return;
    /* Text directly inside the stream root (whitespace keepalives) carries nothing. */
    if (p->depth < 2) return;
    if (!stanza_size_ok(p)) return;
    buf_append(&p->text, s, (size_t)len);
}

static void XMLCALL on_cdata_start(void *ud)
{
    ((xml_parser_t *)ud)->in_cdata = true;
}

static void XMLCALL on_cdata_end(void *ud)
{
    ((xml_parser_t *)ud)->in_cdata = false;
}

static void XMLCALL on_xml_decl(void *ud, const XML_Char *version, const XML_Char *encoding,
                                int standalone)
{
    xml_parser_t *p = ud;
    (void)version;
    (void)standalone;
    if (encoding && strcasecmp(encoding, "UTF-8") != 0)
        parser_fail(p, XML_ERR_UNSUPPORTED_ENCODING);
}

/* RFC 6120 11.1: no DTD, comments, processing instructions or entity declarations. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    parser_fail(ud, XML_ERR_RESTRICTED);
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)value_len;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    parser_fail(ud, XML_ERR_RESTRICTED);
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
    (void)target;
    (void)data;
    parser_fail(ud, XML_ERR_RESTRICTED);
}

static void XMLCALL on_comment(void *ud, const XML_Char *data)
{
    (void)data;
    parser_fail(ud, XML_ERR_RESTRICTED);
}

static void XMLCALL on_skipped_entity(void *ud, const XML_Char *name, int is_param)
{
    (void)name;
    (void)is_param;
    parser_fail(ud, XML_ERR_RESTRICTED);
}

static int XMLCALL on_external_entity(XML_Parser expat, const XML_Char *context,
                                      const XML_Char *base, const XML_Char *sysid,
                                      const XML_Char *pubid)
{
    (void)context;
    (void)base;
    (void)sysid;
    (void)pubid;
    /* The handler gets the parser, not the user data; fetch it to record the reason. */
    parser_fail(XML_GetUserData(expat), XML_ERR_RESTRICTED);
    return XML_STATUS_ERROR;
}

/* Registers everything on a fresh or reset expat parser (XML_ParserReset drops handlers,
 * the salt and the deferral setting). */
static void parser_setup(xml_parser_t *p)
{
    XML_Parser x = p->expat;
    unsigned long salt;
    random_bytes(&salt, sizeof salt);
    XML_SetHashSalt(x, salt);
#ifdef HAVE_XML_REPARSE_DEFERRAL
    /* Answer the stream header as soon as its bytes are in, however small the reads. */
    XML_SetReparseDeferralEnabled(x, XML_FALSE);
#endif
    XML_SetParamEntityParsing(x, XML_PARAM_ENTITY_PARSING_NEVER);
    XML_SetUserData(x, p);
    XML_SetElementHandler(x, on_start, on_end);
    XML_SetCharacterDataHandler(x, on_text);
    XML_SetCdataSectionHandler(x, on_cdata_start, on_cdata_end);
    XML_SetStartNamespaceDeclHandler(x, on_ns_start);
    XML_SetXmlDeclHandler(x, on_xml_decl);
    XML_SetStartDoctypeDeclHandler(x, on_doctype);
    XML_SetEntityDeclHandler(x, on_entity_decl);
    XML_SetProcessingInstructionHandler(x, on_pi);
    XML_SetCommentHandler(x, on_comment);
    XML_SetSkippedEntityHandler(x, on_skipped_entity);
    XML_SetExternalEntityRefHandler(x, on_external_entity);
}

static void XMLCALL probe_on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)name;
    (void)attrs;
    *(bool *)ud = true;
}

bool xml_probe_defers(bool switch_off)
{
    XML_Parser x = XML_ParserCreateNS("UTF-8", XML_NS_SEP);
    if (!x) log_fatal("out of memory (expat parser)");
#ifdef HAVE_XML_REPARSE_DEFERRAL
    if (switch_off) XML_SetReparseDeferralEnabled(x, XML_FALSE);
#else
    (void)switch_off;
#endif
    bool started = false;
    XML_SetUserData(x, &started);
    XML_SetStartElementHandler(x, probe_on_start);
    /* A client's stream header, its closing '>' in a second read: a deferring parser waits
     * for about as many bytes again before it looks at the tag a second time. */
    static const char head[] = "<stream:stream xmlns:stream='" XML_NS_STREAM "' "
                               "xmlns='" XML_NS_CLIENT "' to='localhost' version='1.0'";
    XML_Parse(x, head, (int)strlen(head), XML_FALSE);
    XML_Parse(x, ">", 1, XML_FALSE);
    XML_ParserFree(x);
    return !started;
}

const char *xml_deferral_problem(void)
{
    static char msg[512];
    XML_Expat_Version v = XML_ExpatVersionInfo();
#ifdef HAVE_XML_REPARSE_DEFERRAL
    bool built_with_switch = true;
#else
    bool built_with_switch = false;
#endif
    bool new_expat = v.major > 2 || (v.major == 2 && v.minor >= 6);
    bool defers = xml_probe_defers(true);
    if (!defers && (built_with_switch || !new_expat))
        return NULL;
    snprintf(msg, sizeof msg,
             "libexpat %d.%d.%d defers parsing of small reads and this build cannot turn that "
             "off (%s): clients' stream headers and stanzas may go unanswered until more bytes "
             "come; rebuild with the libexpat1-dev that has XML_SetReparseDeferralEnabled "
             "(tools/install-deps.sh, then make)",
             v.major, v.minor, v.micro,
             built_with_switch ? "the switch had no effect"
                               : "built without HAVE_XML_REPARSE_DEFERRAL");
    return msg;
}

/* Drops everything about the current stream except callbacks and limits. */
static void parser_clear(xml_parser_t *p)
{
    xml_node_free(&p->stanza);
    p->cur = NULL;
    buf_free(&p->text);
    xfree(&p->root_ns);
    p->root_ns_seen = false;
    p->error = XML_OK;
    p->depth = 0;
    p->fed = 0;
    p->mark = 0;
    p->root_closed = false;
    p->epilog = 0;
    p->epilog_lt = false;
    xfree(&p->header);
    p->header_len = 0;
    p->in_cdata = false;
}

void xml_parser_set_limits(xml_parser_t *p, const xml_limits_t *limits)
{
    p->max_stanza = limits && limits->max_stanza ? limits->max_stanza : XML_DEFAULT_MAX_STANZA;
    p->max_depth = limits && limits->max_depth > 0 ? limits->max_depth : XML_DEFAULT_MAX_DEPTH;
}

static void expat_create(xml_parser_t *p)
{
    p->expat = XML_ParserCreateNS("UTF-8", XML_NS_SEP);
    if (!p->expat) log_fatal("out of memory (expat parser)");
    parser_setup(p);
}

xml_parser_t *xml_parser_new(const xml_callbacks_t *cb, void *ud, const xml_limits_t *limits)
{
    xml_parser_t *p = xcalloc(1, sizeof *p);
    if (cb) p->cb = *cb;
    p->ud = ud;
    xml_parser_set_limits(p, limits);
    expat_create(p);
    return p;
}

void xml_parser_destroy(xml_parser_t **parser_p)
{
    if (!parser_p || !*parser_p) return;
    xml_parser_t *p = *parser_p;
    parser_clear(p);
    if (p->expat) XML_ParserFree(p->expat);
    xfree(parser_p);
}

static xml_error_t error_from_expat(enum XML_Error code)
{
    switch (code) {
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
        return XML_ERR_UNSUPPORTED_ENCODING;
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
    case XML_ERROR_NOT_STANDALONE:
    case XML_ERROR_ENTITY_DECLARED_IN_PE:
    case XML_ERROR_AMPLIFICATION_LIMIT_BREACH:
        return XML_ERR_RESTRICTED;
    case XML_ERROR_NO_MEMORY:
        /* Only reachable with absurd input sizes; treat it as the peer's excess. */
        return XML_ERR_POLICY;
    default:
        /* Includes bad UTF-8, unbound prefixes and undefined entities (no DTD is allowed,
         * so any entity other than the five predefined ones is undeclared: a
         * well-formedness error). */
        return XML_ERR_NOT_WELL_FORMED;
    }
}

/* After the stream root has closed, only whitespace may follow (XML 1.0 section 2.1:
 * document ::= prolog element Misc*; Misc's comments and PIs start with '<' and are
 * restricted-xml here, RFC 6120 11.1), so any other byte where a token starts is junk:
 * not-well-formed (RFC 6120 4.9.3.13). Expat says so too, but not for every slicing: in the
 * epilog a name that ends the buffer ("l") is junk at once, a name ending in a colon ("l:",
 * XML_NS builds) is a partial token it waits on, so "l:" fed in one piece got no error and
 * fed byte by byte got not-well-formed. This checks the bytes of the slice [data, data+n)
 * that expat has just parsed (the slice ends at input offset p->fed) up to the first '<'.
 * Returns false when it found junk. */
static bool epilog_check(xml_parser_t *p, const char *data, size_t n)
{
    if (!p->root_closed || p->epilog_lt) return true;
    size_t start = p->fed - n;
    for (size_t i = p->epilog > start ? p->epilog - start : 0; i < n; i++) {
        switch (data[i]) {
        case ' ':
        case '\t':
        case '\r':
        case '\n':
            break;
        case '<':
            p->epilog_lt = true;
            return true;
        default:
            p->error = XML_ERR_NOT_WELL_FORMED;
            return false;
        }
    }
    return true;
}

bool xml_parser_release(xml_parser_t *p)
{
    if (!p->expat) return true;
    /* Between stanzas, inside the stream root, outside a CDATA section, with no byte held
     * by expat (an unfinished token, or one deferred): nothing but the root's bindings is
     * lost, and `header` brings them back. */
    if (p->error != XML_OK || p->depth != 1 || p->stanza || p->root_closed || !p->header ||
        p->text.len || p->in_cdata)
        return false;
    XML_Index idx = XML_GetCurrentByteIndex(p->expat);
    if (idx < 0 || (size_t)idx != p->fed) return false;
    XML_ParserFree(p->expat);
    p->expat = NULL;
    buf_free(&p->text);
    return true;
}

bool xml_parser_released(const xml_parser_t *p)
{
    return !p->expat;
}

/* Makes a released parser again: a fresh expat fed the stream root's start tag stands at
 * depth 1 with the root's namespace declarations in force, as the released one did. The
 * byte offsets restart with it (only their differences matter). */
static void parser_resume(xml_parser_t *p)
{
    expat_create(p);
    p->depth = 0;
    p->resuming = true;
    enum XML_Status st = XML_Parse(p->expat, p->header, (int)p->header_len, XML_FALSE);
    p->resuming = false;
    if (st != XML_STATUS_OK || p->depth != 1) {
        /* It parsed the first time: only an allocation failure gets here. */
        if (p->error == XML_OK) p->error = XML_ERR_POLICY;
        return;
    }
    p->fed = p->mark = p->header_len;
}

xml_error_t xml_parser_feed(xml_parser_t *p, const char *data, size_t len)
{
    if (!p->expat && p->error == XML_OK && len > 0) parser_resume(p);
    while (p->error == XML_OK && len > 0) {
        size_t n = len < XML_FEED_SLICE ? len : XML_FEED_SLICE;
        p->fed += n;
        if (XML_Parse(p->expat, data, (int)n, XML_FALSE) != XML_STATUS_OK) {
            if (p->error == XML_OK) p->error = error_from_expat(XML_GetErrorCode(p->expat));
            break;
        }
        if (p->error != XML_OK || !epilog_check(p, data, n)) break;
        /* Outside a stanza, what counts is the unfinished token expat holds: outside
         * callbacks the byte index is just past the last token consumed. */
        if (!p->stanza) {
            XML_Index idx = XML_GetCurrentByteIndex(p->expat);
            if (idx >= 0 && (size_t)idx > p->mark) p->mark = (size_t)idx;
        }
        if (p->fed - p->mark > p->max_stanza) {
            p->error = XML_ERR_POLICY;
            break;
        }
        data += n;
        len -= n;
    }
    return p->error;
}

int xml_parser_depth(const xml_parser_t *p)
{
    return p->depth;
}

void xml_parser_reset(xml_parser_t *p)
{
    parser_clear(p);
    if (!p->expat) {
        expat_create(p);
        return;
    }
    XML_ParserReset(p->expat, "UTF-8");
    parser_setup(p);
}

const char *xml_error_condition(xml_error_t err)
{
    switch (err) {
    case XML_ERR_NOT_WELL_FORMED:
        return "not-well-formed";
    case XML_ERR_RESTRICTED:
        return "restricted-xml";
    case XML_ERR_POLICY:
        return "policy-violation";
    case XML_ERR_UNSUPPORTED_ENCODING:
        return "unsupported-encoding";
    case XML_ERR_INVALID_NAMESPACE:
        return "invalid-namespace";
    case XML_OK:
        break;
    }
    return "undefined-condition";
}
