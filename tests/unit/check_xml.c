/* Tests for common/xml: the tree API, the serializer, and the streaming parser fed in one
 * piece, split at every byte boundary and one byte at a time; hostile inputs and limits. */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "suites.h"
#include "util.h"
#include "xml.h"

#define NS_STREAM_DECL "xmlns:stream='http://etherx.jabber.org/streams'"
/* A client stream header that declares no prefix other than stream:. */
#define HDR "<stream:stream " NS_STREAM_DECL " xmlns='jabber:client'>"

/* ---- Helpers ------------------------------------------------------------------------- */

/* Records every callback as one line of `log`, so runs can be compared as strings. */
typedef struct {
    buf_t log;
    xml_node_t *bag;  /* every stanza received, in order (the recorder owns them) */
    xml_node_t *root; /* copy of the last stream root */
    int opens, stanzas, closes;
} rec_t;

static void rec_open(void *ud, const xml_node_t *root)
{
    rec_t *r = ud;
    const char *ns = xml_node_attr(root, "xmlns");
    buf_printf(&r->log, "open [%s] ", ns ? ns : "-");
    xml_serialize(root, NULL, &r->log);
    buf_append_str(&r->log, "\n");
    xml_node_free(&r->root);
    r->root = xml_node_copy(root);
    r->opens++;
}

static void rec_stanza(void *ud, xml_node_t *stanza)
{
    rec_t *r = ud;
    buf_append_str(&r->log, "stanza ");
    xml_serialize(stanza, NULL, &r->log);
    buf_append_str(&r->log, "\n");
    xml_node_add_child(r->bag, stanza);
    r->stanzas++;
}

static void rec_close(void *ud)
{
    rec_t *r = ud;
    buf_append_str(&r->log, "close\n");
    r->closes++;
}

static const xml_callbacks_t rec_cb = {rec_open, rec_stanza, rec_close};

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof *r);
    r->bag = xml_node_new("bag", NULL);
}

static void rec_free(rec_t *r)
{
    buf_free(&r->log);
    xml_node_free(&r->bag);
    xml_node_free(&r->root);
}

static const char *rec_log(const rec_t *r)
{
    return r->log.data ? r->log.data : "";
}

/* When set, parse_pieces releases the parser (xml_parser_release) after every piece, as
 * the frontend does with an idle stream, and counts the releases that took place. */
static bool release_between;
static int releases;

/* Parses `len` bytes of `in` with a fresh parser: first `first` bytes (when non-zero), then
 * the rest in pieces of `chunk` bytes (0: all at once). Stops at the first error. */
static xml_error_t parse_pieces(const char *in, size_t len, size_t first, size_t chunk,
                                const xml_limits_t *lim, rec_t *r)
{
    xml_parser_t *p = xml_parser_new(&rec_cb, r, lim);
    xml_error_t err = XML_OK;
    size_t off = 0;
    if (first) {
        err = xml_parser_feed(p, in, first);
        off = first;
    }
    while (err == XML_OK && off < len) {
        if (release_between && xml_parser_release(p)) {
            ck_assert(xml_parser_released(p));
            ck_assert_int_eq(xml_parser_depth(p), 1);
            releases++;
        }
        size_t n = chunk && chunk < len - off ? chunk : len - off;
        err = xml_parser_feed(p, in + off, n);
        off += n;
    }
    xml_parser_destroy(&p);
    ck_assert_ptr_null(p);
    return err;
}

static bool str_eq_null(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static int attr_count(const xml_node_t *n)
{
    int c = 0;
    for (const xml_attr_t *a = n->attrs; a; a = a->next)
        c++;
    return c;
}

/* Structural equality: names, namespaces, attributes (in any order), text, children. */
static bool tree_equal(const xml_node_t *a, const xml_node_t *b)
{
    if (!a || !b) return a == b;
    if (!a->name || !b->name)
        return !a->name && !b->name && a->text_len == b->text_len &&
               memcmp(a->text, b->text, a->text_len) == 0;
    if (strcmp(a->name, b->name) != 0 || !str_eq_null(a->ns, b->ns)) return false;
    if (attr_count(a) != attr_count(b)) return false;
    for (const xml_attr_t *x = a->attrs; x; x = x->next) {
        const char *v = x->ns ? xml_node_attr_ns(b, x->ns, x->name) : xml_node_attr(b, x->name);
        if (!v || strcmp(v, x->value) != 0) return false;
    }
    const xml_node_t *ca = a->children, *cb = b->children;
    for (; ca && cb; ca = ca->next, cb = cb->next)
        if (!tree_equal(ca, cb)) return false;
    return !ca && !cb;
}

/* Parses one complete stream and returns its first stanza (caller frees), or NULL. */
static xml_node_t *parse_one_stanza(const char *in)
{
    rec_t r;
    rec_init(&r);
    xml_error_t err = parse_pieces(in, strlen(in), 0, 0, NULL, &r);
    ck_assert_int_eq(err, XML_OK);
    xml_node_t *st = xml_node_first_element(r.bag);
    if (st) xml_node_remove_child(r.bag, st);
    rec_free(&r);
    return st;
}

/* Serialises `stanza` for a jabber:client stream, re-parses it inside a header that declares
 * no prefix, and checks the tree survives unchanged. */
static void assert_round_trip(const xml_node_t *stanza)
{
    buf_t doc = BUF_INIT;
    buf_append_str(&doc, HDR);
    xml_serialize(stanza, XML_NS_CLIENT, &doc);
    xml_node_t *back = parse_one_stanza(doc.data);
    ck_assert_msg(tree_equal(stanza, back), "round trip changed the tree: %s", doc.data);
    xml_node_free(&back);
    buf_free(&doc);
}

/* ---- Representative streams, fed in every way ---------------------------------------- */

typedef struct {
    const char *name;
    const char *in;
    const char *expect; /* the recorder's log */
} stream_case_t;

static const stream_case_t good_streams[] = {
    {"a CDATA section between stanzas (text of the root, ignored)",
     HDR "<![CDATA[<a>]]]]><message/> <![CDATA[]]><iq/></stream:stream>",
     "open [jabber:client] <stream xmlns=\"http://etherx.jabber.org/streams\"/>\n"
     "stanza <message xmlns=\"jabber:client\"/>\n"
     "stanza <iq xmlns=\"jabber:client\"/>\n"
     "close\n"},
    {"header and features",
     "<?xml version='1.0' encoding='UTF-8'?>\n"
     "<stream:stream " NS_STREAM_DECL " xmlns='jabber:client' from='example.com' id='s1' "
     "version='1.0' xml:lang='en'>\n"
     "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
     "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>"
     "<mechanism>PLAIN</mechanism></mechanisms></stream:features>\n"
     "</stream:stream>",
     "open [jabber:client] <stream xmlns=\"http://etherx.jabber.org/streams\" "
     "from=\"example.com\" id=\"s1\" version=\"1.0\" xml:lang=\"en\"/>\n"
     "stanza <features xmlns=\"http://etherx.jabber.org/streams\"><starttls "
     "xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/></starttls><mechanisms "
     "xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>SCRAM-SHA-1</mechanism>"
     "<mechanism>PLAIN</mechanism></mechanisms></features>\n"
     "close\n"},
    {"stanzas with children, prefixes, CDATA, references, UTF-8",
     "<stream:stream " NS_STREAM_DECL " xmlns='jabber:client' xmlns:foo='urn:x'>"
     "<message to='juliet@example.com' type='chat' xml:lang='fr' foo:mood='happy'>"
     "<body>caf\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80 &#x41;&#66;&#x20AC; "
     "&lt;&gt;&amp;&quot;&apos;</body>"
     "<foo:bar foo:baz='1'><![CDATA[<raw> & ]]>tail</foo:bar><thread>t1</thread></message>"
     " \n\t \r\n"
     "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver=''/></iq>"
     "<presence><show>away</show><status xml:lang='de'>weg</status>"
     "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>"
     "</stream:stream>",
     "open [jabber:client] <stream xmlns=\"http://etherx.jabber.org/streams\"/>\n"
     "stanza <message xmlns=\"jabber:client\" to=\"juliet@example.com\" type=\"chat\" "
     "xml:lang=\"fr\" xmlns:ns1=\"urn:x\" ns1:mood=\"happy\">"
     "<body>caf\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80 AB\xe2\x82\xac "
     "&lt;&gt;&amp;&quot;&apos;</body>"
     "<bar xmlns=\"urn:x\" xmlns:ns1=\"urn:x\" ns1:baz=\"1\">&lt;raw&gt; &amp; tail</bar>"
     "<thread>t1</thread></message>\n"
     "stanza <iq xmlns=\"jabber:client\" type=\"get\" id=\"r1\"><query "
     "xmlns=\"jabber:iq:roster\" ver=\"\"/></iq>\n"
     "stanza <presence xmlns=\"jabber:client\"><show>away</show><status "
     "xml:lang=\"de\">weg</status><c xmlns=\"http://jabber.org/protocol/caps\" hash=\"sha-1\" "
     "node=\"n\" ver=\"v\"/></presence>\n"
     "close\n"},
    {"server stream, prefixed stanzas, escapes in attributes, left open",
     "<?xml version=\"1.0\"?><stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" "
     "xmlns=\"jabber:server\" xmlns:db=\"jabber:server:dialback\" xmlns:foo='urn:x' "
     "to='b.example' from='a.example' version='1.0'>"
     "<db:result from='a.example' to='b.example'>K3y&amp;&#x9;</db:result>"
     "<message from='a@a.example' to='b@b.example'><foo:bar/>"
     "<body a='&lt;&quot;&apos;&#10;x\"'>1 &gt; 0&#13;</body></message>"
     "<foo:ping xmlns:foo='urn:y'/>  ",
     "open [jabber:server] <stream xmlns=\"http://etherx.jabber.org/streams\" to=\"b.example\" "
     "from=\"a.example\" version=\"1.0\"/>\n"
     "stanza <result xmlns=\"jabber:server:dialback\" from=\"a.example\" "
     "to=\"b.example\">K3y&amp;\t</result>\n"
     "stanza <message xmlns=\"jabber:server\" from=\"a@a.example\" to=\"b@b.example\"><bar "
     "xmlns=\"urn:x\"/><body a=\"&lt;&quot;&apos;&#10;x&quot;\">1 &gt; 0&#13;</body></message>\n"
     "stanza <ping xmlns=\"urn:y\"/>\n"},
    {"BOM, unprefixed root, undeclared default namespace",
     "\xef\xbb\xbf<stream xmlns='http://etherx.jabber.org/streams'><message/>"
     "<a xmlns='urn:a'><b xmlns=''>x</b></a></stream>",
     "open [http://etherx.jabber.org/streams] <stream "
     "xmlns=\"http://etherx.jabber.org/streams\"/>\n"
     "stanza <message xmlns=\"http://etherx.jabber.org/streams\"/>\n"
     "stanza <a xmlns=\"urn:a\"><b xmlns=\"\">x</b></a>\n"
     "close\n"},
};
#define N_GOOD_STREAMS ((int)(sizeof good_streams / sizeof good_streams[0]))

START_TEST(test_stream_one_shot)
{
    const stream_case_t *c = &good_streams[_i];
    rec_t r;
    rec_init(&r);
    xml_error_t err = parse_pieces(c->in, strlen(c->in), 0, 0, NULL, &r);
    ck_assert_msg(err == XML_OK, "%s: error %d", c->name, err);
    ck_assert_str_eq(rec_log(&r), c->expect);
    rec_free(&r);
}
END_TEST

START_TEST(test_stream_every_split)
{
    const stream_case_t *c = &good_streams[_i];
    size_t len = strlen(c->in);
    for (size_t cut = 1; cut < len; cut++) {
        rec_t r;
        rec_init(&r);
        xml_error_t err = parse_pieces(c->in, len, cut, 0, NULL, &r);
        ck_assert_msg(err == XML_OK, "%s: split at %zu: error %d", c->name, cut, err);
        ck_assert_msg(strcmp(rec_log(&r), c->expect) == 0, "%s: split at %zu gave:\n%s", c->name,
                      cut, rec_log(&r));
        rec_free(&r);
    }
}
END_TEST

START_TEST(test_stream_byte_by_byte)
{
    const stream_case_t *c = &good_streams[_i];
    rec_t r;
    rec_init(&r);
    xml_error_t err = parse_pieces(c->in, strlen(c->in), 0, 1, NULL, &r);
    ck_assert_int_eq(err, XML_OK);
    ck_assert_str_eq(rec_log(&r), c->expect);
    rec_free(&r);
}
END_TEST

/* The same events when the parser is released wherever it can be between two bytes (an
 * idle stream, xml_parser_release) and made again from the stream header: the root's
 * prefixes and namespaces still apply, the stream's end tag still matches. */
START_TEST(test_stream_byte_by_byte_released)
{
    const stream_case_t *c = &good_streams[_i];
    rec_t r;
    rec_init(&r);
    release_between = true;
    releases = 0;
    xml_error_t err = parse_pieces(c->in, strlen(c->in), 0, 1, NULL, &r);
    release_between = false;
    ck_assert_int_eq(err, XML_OK);
    ck_assert_str_eq(rec_log(&r), c->expect);
    /* Released after the header and after each stanza at least. */
    ck_assert_int_ge(releases, r.stanzas + (r.opens ? 1 : 0));
    rec_free(&r);
}
END_TEST

/* Every stanza of every stream survives serialise + re-parse in a prefix-free stream. */
START_TEST(test_stream_round_trip)
{
    const stream_case_t *c = &good_streams[_i];
    rec_t r;
    rec_init(&r);
    ck_assert_int_eq(parse_pieces(c->in, strlen(c->in), 0, 0, NULL, &r), XML_OK);
    ck_assert_int_gt(r.stanzas, 0);
    for (const xml_node_t *st = r.bag->children; st; st = st->next)
        assert_round_trip(st);
    rec_free(&r);
}
END_TEST

/* The header and each stanza are reported as soon as their last byte is in. */
START_TEST(test_callbacks_not_deferred)
{
    static const char in[] = HDR "<message><body>hi</body></message>";
    rec_t r;
    rec_init(&r);
    xml_parser_t *p = xml_parser_new(&rec_cb, &r, NULL);
    size_t hdr_len = strlen(HDR);
    for (size_t i = 0; i < sizeof in - 1; i++) {
        ck_assert_int_eq(xml_parser_feed(p, in + i, 1), XML_OK);
        ck_assert_int_eq(r.opens, i + 1 >= hdr_len ? 1 : 0);
        ck_assert_int_eq(r.stanzas, i + 1 == sizeof in - 1 ? 1 : 0);
    }
    ck_assert_int_eq(r.closes, 0);
    ck_assert_int_eq(xml_parser_feed(p, "</stream:stream>", 16), XML_OK);
    ck_assert_int_eq(r.closes, 1);
    ck_assert_int_eq(xml_parser_feed(p, "", 0), XML_OK);
    xml_parser_destroy(&p);
    xml_parser_destroy(&p); /* harmless on NULL */
    rec_free(&r);
}
END_TEST

START_TEST(test_stream_root_attributes)
{
    static const char in[] = "<stream:stream " NS_STREAM_DECL " xmlns='jabber:client' "
                             "to='example.com' version='1.0' xml:lang='en' id='x&amp;y'>";
    rec_t r;
    rec_init(&r);
    ck_assert_int_eq(parse_pieces(in, strlen(in), 0, 0, NULL, &r), XML_OK);
    ck_assert_int_eq(r.opens, 1);
    ck_assert_str_eq(r.root->name, "stream");
    ck_assert_str_eq(r.root->ns, XML_NS_STREAM);
    ck_assert_str_eq(xml_node_attr(r.root, "to"), "example.com");
    ck_assert_str_eq(xml_node_attr(r.root, "version"), "1.0");
    ck_assert_str_eq(xml_node_attr(r.root, "id"), "x&y");
    ck_assert_str_eq(xml_node_attr(r.root, "xmlns"), "jabber:client");
    ck_assert_str_eq(xml_node_attr_ns(r.root, XML_NS_XML, "lang"), "en");
    ck_assert_ptr_null(xml_node_attr(r.root, "lang"));
    ck_assert_ptr_null(r.root->children);
    rec_free(&r);
}
END_TEST

START_TEST(test_parsed_tree_shape)
{
    xml_node_t *m = parse_one_stanza(
        "<stream:stream " NS_STREAM_DECL " xmlns='jabber:client' xmlns:foo='urn:x'>"
        "<message xml:lang='fr' foo:mood='happy' to='a'>one<body>b&amp;c</body>two"
        "<foo:bar/></message>");
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->name, "message");
    ck_assert_str_eq(m->ns, XML_NS_CLIENT);
    ck_assert_ptr_null(m->parent);
    ck_assert_str_eq(xml_node_attr_ns(m, XML_NS_XML, "lang"), "fr");
    ck_assert_str_eq(xml_node_attr_ns(m, "urn:x", "mood"), "happy");
    ck_assert_ptr_null(xml_node_attr(m, "mood"));
    ck_assert_str_eq(xml_node_attr(m, "to"), "a");
    char *t = xml_node_text(m);
    ck_assert_str_eq(t, "onetwo");
    free(t);
    xml_node_t *body = xml_node_child(m, "body", XML_NS_CLIENT);
    ck_assert_ptr_nonnull(body);
    ck_assert_ptr_eq(body->parent, m);
    ck_assert_ptr_eq(xml_node_first_element(m), body);
    ck_assert_str_eq(body->children->text, "b&c");
    ck_assert_uint_eq(body->children->text_len, 3);
    ck_assert_ptr_null(body->children->next); /* one merged text node */
    xml_node_t *bar = xml_node_child(m, "bar", "urn:x");
    ck_assert_ptr_nonnull(bar);
    ck_assert_ptr_eq(m->last_child, bar);
    ck_assert_ptr_null(xml_node_child(m, "bar", XML_NS_CLIENT));
    xml_node_free(&m);
}
END_TEST

/* ---- Hostile and invalid input ------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *in;
    xml_error_t expect;
    int stanzas; /* delivered before the error */
} bad_case_t;

#define LOLS(e) "&" e ";&" e ";&" e ";&" e ";&" e ";&" e ";&" e ";&" e ";&" e ";&" e ";"
/* Each entity expands to ten of the previous one: &lol9; would be 3 * 10^9 bytes. */
#define ENT(n, prev) "<!ENTITY lol" #n " '" LOLS(prev) "'>"
#define BILLION_LAUGHS                                                                             \
    "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol0 'lol'>" ENT(1, "lol0") ENT(2, "lol1")      \
        ENT(3, "lol2") ENT(4, "lol3") ENT(5, "lol4") ENT(6, "lol5") ENT(7, "lol6") ENT(8, "lol7")  \
            ENT(9, "lol8") "]>"

static const bad_case_t bad_cases[] = {
    {"billion laughs", BILLION_LAUGHS HDR "<message><body>&lol9;</body></message>",
     XML_ERR_RESTRICTED, 0},
    {"external entity",
     "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>" HDR
     "<message><body>&e;</body></message>",
     XML_ERR_RESTRICTED, 0},
    {"doctype without subset", "<!DOCTYPE stream:stream SYSTEM 'stream.dtd'>" HDR,
     XML_ERR_RESTRICTED, 0},
    {"PI in prolog", "<?xml-stylesheet href='a.xsl'?>" HDR, XML_ERR_RESTRICTED, 0},
    {"PI in stanza", HDR "<message><?php echo 1; ?></message>", XML_ERR_RESTRICTED, 0},
    {"comment in prolog", "<?xml version='1.0'?><!-- hi -->" HDR, XML_ERR_RESTRICTED, 0},
    {"comment between stanzas", HDR "<message/><!-- x --><message/>", XML_ERR_RESTRICTED, 1},
    {"comment in stanza", HDR "<message><body>a<!--x-->b</body></message>", XML_ERR_RESTRICTED, 0},
    {"undefined entity", HDR "<message>&foo;</message>", XML_ERR_NOT_WELL_FORMED, 0},
    {"bad UTF-8 C3 28", HDR "<message><body>\xc3\x28</body></message>", XML_ERR_NOT_WELL_FORMED, 0},
    {"bad UTF-8 FF", HDR "<message><body>\xff</body></message>", XML_ERR_NOT_WELL_FORMED, 0},
    {"overlong C0 AF", HDR "<message><body>\xc0\xaf</body></message>", XML_ERR_NOT_WELL_FORMED, 0},
    {"overlong E0 80 AF", HDR "<message><body>\xe0\x80\xaf</body></message>",
     XML_ERR_NOT_WELL_FORMED, 0},
    {"UTF-8 surrogate", HDR "<message><body>\xed\xa0\x80</body></message>", XML_ERR_NOT_WELL_FORMED,
     0},
    {"UTF-8 above U+10FFFF", HDR "<message><body>\xf4\x90\x80\x80</body></message>",
     XML_ERR_NOT_WELL_FORMED, 0},
    {"bad UTF-8 in attribute", HDR "<message to='\xc3\x28'/>", XML_ERR_NOT_WELL_FORMED, 0},
    {"bad UTF-8 in name", HDR "<m\xff/>", XML_ERR_NOT_WELL_FORMED, 0},
    {"bad UTF-8 before root", "\xff" HDR, XML_ERR_NOT_WELL_FORMED, 0},
    {"NUL character reference", HDR "<message>&#0;</message>", XML_ERR_NOT_WELL_FORMED, 0},
    {"root is a stanza", "<message xmlns='jabber:client'/>", XML_ERR_INVALID_NAMESPACE, 0},
    {"root in wrong namespace", "<stream:stream xmlns:stream='urn:wrong'>",
     XML_ERR_INVALID_NAMESPACE, 0},
    {"root has no namespace", "<stream>", XML_ERR_INVALID_NAMESPACE, 0},
    {"root has wrong name", "<stream:features " NS_STREAM_DECL ">", XML_ERR_INVALID_NAMESPACE, 0},
    {"ISO-8859-1 declared", "<?xml version='1.0' encoding='ISO-8859-1'?>" HDR,
     XML_ERR_UNSUPPORTED_ENCODING, 0},
    {"UTF-16 declared", "<?xml version='1.0' encoding='UTF-16'?>" HDR, XML_ERR_UNSUPPORTED_ENCODING,
     0},
    {"unbound element prefix", HDR "<message><foo:bar/></message>", XML_ERR_NOT_WELL_FORMED, 0},
    {"unbound attribute prefix", HDR "<message foo:a='1'/>", XML_ERR_NOT_WELL_FORMED, 0},
    {"same attribute via two prefixes",
     "<stream:stream " NS_STREAM_DECL " xmlns:a='urn:x' xmlns:b='urn:x'><m a:t='1' b:t='2'/>",
     XML_ERR_NOT_WELL_FORMED, 0},
    {"mismatched end tag", HDR "<message></presence>", XML_ERR_NOT_WELL_FORMED, 0},
    {"junk after stream end", HDR "<message/></stream:stream><message/>", XML_ERR_NOT_WELL_FORMED,
     1},
    {"xml declaration inside the stream", HDR "<?xml version='1.0'?>", XML_ERR_NOT_WELL_FORMED, 0},
    /* After the root only whitespace may follow; expat alone waited on "l:" in one piece
     * (a partial prefixed name) but rejected "l" fed byte by byte (fuzz_xml). */
    {"prefixed name after stream end", HDR "</stream:stream>l:", XML_ERR_NOT_WELL_FORMED, 0},
    {"prefixed name after self-closed stream", "<stream:stream " NS_STREAM_DECL "/>\nl:",
     XML_ERR_NOT_WELL_FORMED, 0},
    {"partial character after stream end", HDR "</stream:stream> \xc3", XML_ERR_NOT_WELL_FORMED,
     0},
    {"comment after stream end", HDR "</stream:stream>\n<!-- x -->", XML_ERR_RESTRICTED, 0},
    {"PI after stream end", HDR "</stream:stream> <?x y?>", XML_ERR_RESTRICTED, 0},
};
#define N_BAD_CASES ((int)(sizeof bad_cases / sizeof bad_cases[0]))

/* One shot (cut 0), split in two at every byte, and byte by byte: always the same error. */
START_TEST(test_bad_input)
{
    const bad_case_t *c = &bad_cases[_i];
    size_t len = strlen(c->in);
    for (size_t cut = 0; cut <= len; cut++) {
        /* cut == len stands for byte by byte */
        rec_t r;
        rec_init(&r);
        xml_error_t err = cut < len ? parse_pieces(c->in, len, cut, 0, NULL, &r)
                                    : parse_pieces(c->in, len, 0, 1, NULL, &r);
        ck_assert_msg(err == c->expect, "%s: cut %zu: got %d, want %d", c->name, cut, err,
                      c->expect);
        ck_assert_msg(r.stanzas == c->stanzas, "%s: cut %zu: %d stanzas", c->name, cut, r.stanzas);
        rec_free(&r);
    }
}
END_TEST

/* Once stopped, the parser keeps returning its error and calls nothing more. */
START_TEST(test_error_is_sticky)
{
    const bad_case_t *c = &bad_cases[_i];
    rec_t r;
    rec_init(&r);
    xml_parser_t *p = xml_parser_new(&rec_cb, &r, NULL);
    ck_assert_int_eq(xml_parser_feed(p, c->in, strlen(c->in)), c->expect);
    int opens = r.opens, stanzas = r.stanzas;
    ck_assert_int_eq(xml_parser_feed(p, HDR "<message/>", strlen(HDR "<message/>")), c->expect);
    ck_assert_int_eq(xml_parser_feed(p, "<message/>", 10), c->expect);
    ck_assert_int_eq(r.opens, opens);
    ck_assert_int_eq(r.stanzas, stanzas);
    xml_parser_destroy(&p);
    rec_free(&r);
}
END_TEST

/* Whitespace after the stream's end tag is no error, however it is split, and the bytes
 * fed before the end tag (in the same feed) are not mistaken for what follows it. */
START_TEST(test_whitespace_after_stream_end)
{
    static const char in[] = HDR "<message>x y</message> </stream:stream> \r\n\t ";
    size_t len = strlen(in);
    for (size_t cut = 0; cut <= len; cut++) {
        rec_t r;
        rec_init(&r);
        xml_error_t err = cut < len ? parse_pieces(in, len, cut, 0, NULL, &r)
                                    : parse_pieces(in, len, 0, 1, NULL, &r);
        ck_assert_msg(err == XML_OK, "cut %zu: got %d", cut, err);
        ck_assert_int_eq(r.stanzas, 1);
        ck_assert_int_eq(r.closes, 1);
        rec_free(&r);
    }
}
END_TEST

START_TEST(test_error_conditions)
{
    ck_assert_str_eq(xml_error_condition(XML_ERR_NOT_WELL_FORMED), "not-well-formed");
    ck_assert_str_eq(xml_error_condition(XML_ERR_RESTRICTED), "restricted-xml");
    ck_assert_str_eq(xml_error_condition(XML_ERR_POLICY), "policy-violation");
    ck_assert_str_eq(xml_error_condition(XML_ERR_UNSUPPORTED_ENCODING), "unsupported-encoding");
    ck_assert_str_eq(xml_error_condition(XML_ERR_INVALID_NAMESPACE), "invalid-namespace");
    ck_assert_str_eq(xml_error_condition(XML_OK), "undefined-condition");
}
END_TEST

/* ---- Limits ---------------------------------------------------------------------------- */

/* Returns HDR + prefix + `n` copies of `rep` + suffix (caller frees), its length in *len. */
static char *make_input(const char *hdr, const char *prefix, const char *rep, size_t n,
                        const char *suffix, size_t *len)
{
    buf_t b = BUF_INIT;
    buf_append_str(&b, hdr);
    buf_append_str(&b, prefix);
    size_t rl = strlen(rep);
    buf_reserve(&b, rl * n);
    for (size_t i = 0; i < n; i++)
        buf_append(&b, rep, rl);
    buf_append_str(&b, suffix);
    *len = b.len;
    return buf_steal(&b);
}

typedef struct {
    const char *name;
    const char *hdr, *prefix, *rep;
    size_t n;
    const char *suffix;
    size_t max_stanza;
    int max_depth;
    size_t chunk; /* 0: one feed */
    xml_error_t expect;
    int stanzas;
} limit_case_t;

static const limit_case_t limit_cases[] = {
    {"10000-deep nesting", HDR, "<message>", "<a>", 10000, "", 0, 0, 0, XML_ERR_POLICY, 0},
    {"10000-deep nesting, 4 KiB feeds", HDR, "<message>", "<a>", 10000, "", 0, 0, 4096,
     XML_ERR_POLICY, 0},
    {"1 MiB attribute, 4 KiB feeds", HDR, "<message to='", "x", 1 << 20, "'/>", 256 << 10, 0, 4096,
     XML_ERR_POLICY, 0},
    {"1 MiB attribute, one feed", HDR, "<message to='", "x", 1 << 20, "'/>", 256 << 10, 0, 0,
     XML_ERR_POLICY, 0},
    {"1 MiB attribute on the stream root", "", "<stream:stream " NS_STREAM_DECL " a='", "y",
     1 << 20, "'>", 256 << 10, 0, 4096, XML_ERR_POLICY, 0},
    {"endless start tag", HDR "<message/>", "<message", " a='1'", 1 << 18, "", 64 << 10, 0, 1000,
     XML_ERR_POLICY, 1},
    {"endless end tag", HDR "<message>", "</message", " ", 1 << 18, ">", 64 << 10, 0, 1000,
     XML_ERR_POLICY, 0},
    {"stanza over the limit in 100-byte feeds", HDR, "<message><body>", "y", 2000,
     "</body></message>", 1024, 0, 100, XML_ERR_POLICY, 0},
    {"stanza over the limit in one feed", HDR "<a/>", "<message><body>", "y", 2000,
     "</body></message><b/>", 1024, 0, 0, XML_ERR_POLICY, 1},
    {"many small children over the limit", HDR, "<message>", "<a/>", 500, "</message>", 1024, 0, 7,
     XML_ERR_POLICY, 0},
    {"a stanza of 63,000 empty children within the default limit", HDR, "<message>", "<a/>",
     63000, "</message>", 0, 0, 4096, XML_OK, 1},
    {"many small stanzas, one feed", HDR, "", "<message><body>hi</body></message>", 1000, "", 256,
     0, 0, XML_OK, 1000},
    {"many small stanzas, 100-byte feeds", HDR, "", "<message><body>hi</body></message>", 1000, "",
     256, 0, 100, XML_OK, 1000},
    {"1 MiB of keepalive whitespace", HDR "<message/>", "", " \n", 1 << 19, "<message/>", 256, 0,
     4096, XML_OK, 2},
    {"64 levels allowed by default", HDR, "", "<a>", 64, "", 0, 0, 0, XML_OK, 0},
    {"65 levels refused by default", HDR, "", "<a>", 65, "", 0, 0, 0, XML_ERR_POLICY, 0},
    {"text of many pieces", HDR "<message><body>", "", "a&amp;b", 20000, "</body></message>", 0, 0,
     3, XML_OK, 1},
};
#define N_LIMIT_CASES ((int)(sizeof limit_cases / sizeof limit_cases[0]))

START_TEST(test_limits)
{
    const limit_case_t *c = &limit_cases[_i];
    size_t len;
    char *in = make_input(c->hdr, c->prefix, c->rep, c->n, c->suffix, &len);
    xml_limits_t lim = {c->max_stanza, c->max_depth};
    rec_t r;
    rec_init(&r);
    xml_error_t err = parse_pieces(in, len, 0, c->chunk, &lim, &r);
    ck_assert_msg(err == c->expect, "%s: got %d, want %d", c->name, err, c->expect);
    ck_assert_int_eq(r.stanzas, c->stanzas);
    rec_free(&r);
    free(in);
}
END_TEST

/* The oversize attribute is refused as soon as max_stanza bytes of it are in: the parser never
 * holds much more than the limit, however much the peer sends. */
START_TEST(test_oversize_attribute_stops_early)
{
    const size_t max = 256 << 10, chunk = 4096;
    size_t len;
    char *in = make_input(HDR, "<message to='", "x", 1 << 20, "'/>", &len);
    xml_limits_t lim = {max, 0};
    rec_t r;
    rec_init(&r);
    xml_parser_t *p = xml_parser_new(&rec_cb, &r, &lim);
    size_t off = 0;
    xml_error_t err = XML_OK;
    while (err == XML_OK && off < len) {
        size_t n = chunk < len - off ? chunk : len - off;
        err = xml_parser_feed(p, in + off, n);
        off += n;
    }
    ck_assert_int_eq(err, XML_ERR_POLICY);
    /* The stanza starts right after the header; the feed that crosses the limit fails. */
    size_t hdr = strlen(HDR);
    ck_assert_uint_gt(off, hdr + max);
    ck_assert_uint_le(off, hdr + max + chunk);
    ck_assert_int_eq(r.opens, 1);
    xml_parser_destroy(&p);
    rec_free(&r);
    free(in);
}
END_TEST

/* Every element stores its namespace URI in full: a long default namespace (or a prefix
 * bound to one) over thousands of small elements would build gigabytes of tree from a
 * stanza within max_stanza. The tree's size is bounded too. */
START_TEST(test_repeated_long_namespace_is_bounded)
{
    const char *shapes[][3] = {
        {"<message><x xmlns='urn:", "'>", "<a/>"},
        {"<message><x xmlns:p='urn:", "'>", "<p:a/>"},
        {"<message><x xmlns:p='urn:", "'>", "<a p:b=''/>"},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        buf_t b = BUF_INIT;
        buf_append_str(&b, HDR);
        buf_append_str(&b, shapes[k][0]);
        for (int i = 0; i < 100000; i++)
            buf_append_str(&b, "u");
        buf_append_str(&b, shapes[k][1]);
        for (int i = 0; i < 20000; i++)
            buf_append_str(&b, shapes[k][2]);
        buf_append_str(&b, "</x></message>");
        rec_t r;
        rec_init(&r);
        xml_error_t err = parse_pieces(b.data, b.len, 0, 4096, NULL, &r);
        ck_assert_msg(err == XML_ERR_POLICY, "shape %zu: got %d", k, err);
        ck_assert_int_eq(r.stanzas, 0);
        rec_free(&r);
        buf_free(&b);
    }
}
END_TEST

/* A stanza of exactly max_stanza bytes passes, one byte more fails, however it is fed. */
START_TEST(test_stanza_size_boundary)
{
    const size_t max = 200;
    const char *open = "<message><body>", *close = "</body></message>";
    size_t fill = max - strlen(open) - strlen(close);
    xml_limits_t lim = {max, 0};
    for (int extra = 0; extra <= 1; extra++) {
        size_t len;
        char *in = make_input(HDR " ", open, "z", fill + (size_t)extra, "", &len);
        buf_t b = BUF_INIT;
        buf_append(&b, in, len);
        buf_append_str(&b, close);
        buf_append_str(&b, " <message/>");
        size_t chunks[] = {0, 1, 7, 64};
        for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
            rec_t r;
            rec_init(&r);
            xml_error_t err = parse_pieces(b.data, b.len, 0, chunks[k], &lim, &r);
            ck_assert_int_eq(err, extra ? XML_ERR_POLICY : XML_OK);
            ck_assert_int_eq(r.stanzas, extra ? 0 : 2);
            rec_free(&r);
        }
        buf_free(&b);
        free(in);
    }
}
END_TEST

/* The parser must answer every read at once: with the libexpat it runs on, deferral is off
 * (or never happens). When this fails the build lacks HAVE_XML_REPARSE_DEFERRAL for a
 * libexpat that defers; the message says so. */
START_TEST(test_no_reparse_deferral)
{
    const char *problem = xml_deferral_problem();
    ck_assert_msg(problem == NULL, "%s", problem ? problem : "");
    ck_assert(!xml_probe_defers(true));
#ifdef HAVE_XML_REPARSE_DEFERRAL
    /* A libexpat with the switch defers by default: the probe must see it. */
    ck_assert(xml_probe_defers(false));
#endif
}
END_TEST

START_TEST(test_depth_boundary)
{
    xml_limits_t lim = {0, 3};
    static const char ok[] = HDR "<a><b><c/></b></a>";
    static const char deep[] = HDR "<a><b><c><d/></c></b></a>";
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        rec_t r;
        rec_init(&r);
        ck_assert_int_eq(parse_pieces(ok, strlen(ok), 0, chunk, &lim, &r), XML_OK);
        ck_assert_int_eq(r.stanzas, 1);
        rec_free(&r);
        rec_init(&r);
        ck_assert_int_eq(parse_pieces(deep, strlen(deep), 0, chunk, &lim, &r), XML_ERR_POLICY);
        ck_assert_int_eq(r.stanzas, 0);
        rec_free(&r);
    }
}
END_TEST

/* ---- Stream restart ------------------------------------------------------------------ */

START_TEST(test_reset_restarts_stream)
{
    rec_t r;
    rec_init(&r);
    xml_parser_t *p = xml_parser_new(&rec_cb, &r, NULL);
    static const char first[] = HDR "<message/><iq><query xmlns='x'>partial";
    ck_assert_int_eq(xml_parser_feed(p, first, strlen(first)), XML_OK);
    xml_parser_reset(p); /* drops the half-built iq */
    static const char second[] = "<?xml version='1.0'?>"
                                 "<stream:stream " NS_STREAM_DECL
                                 " xmlns='jabber:client' id='2'><presence/></stream:stream>";
    ck_assert_int_eq(xml_parser_feed(p, second, strlen(second)), XML_OK);
    ck_assert_str_eq(rec_log(&r),
                     "open [jabber:client] <stream xmlns=\"http://etherx.jabber.org/streams\"/>\n"
                     "stanza <message xmlns=\"jabber:client\"/>\n"
                     "open [jabber:client] <stream xmlns=\"http://etherx.jabber.org/streams\" "
                     "id=\"2\"/>\n"
                     "stanza <presence xmlns=\"jabber:client\"/>\n"
                     "close\n");

    /* A reset also clears an error. */
    ck_assert_int_eq(xml_parser_feed(p, "<message/>", 10), XML_ERR_NOT_WELL_FORMED);
    xml_parser_reset(p);
    ck_assert_int_eq(xml_parser_feed(p, "<!-- x -->", 10), XML_ERR_RESTRICTED);
    xml_parser_reset(p);
    ck_assert_int_eq(xml_parser_feed(p, HDR "<message/>", strlen(HDR "<message/>")), XML_OK);
    ck_assert_int_eq(r.opens, 3);
    ck_assert_int_eq(r.stanzas, 3);
    xml_parser_destroy(&p);
    rec_free(&r);
}
END_TEST

/* An idle stream's parser is released only between stanzas with nothing held, and comes
 * back with the root's bindings, the limits and the checks after it. */
START_TEST(test_release_resume)
{
    rec_t r;
    rec_init(&r);
    xml_limits_t lim = {200, 3};
    xml_parser_t *p = xml_parser_new(&rec_cb, &r, &lim);
    ck_assert(!xml_parser_release(p)); /* no stream root yet */
    static const char hdr[] = "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
                              "xmlns='jabber:client' xmlns:x='urn:x' to='a&amp;b'>";
    ck_assert_int_eq(xml_parser_feed(p, hdr, strlen(hdr)), XML_OK);
    ck_assert(xml_parser_release(p));
    ck_assert(xml_parser_release(p)); /* already */
    /* A stanza split: not while the first half is held. */
    ck_assert_int_eq(xml_parser_feed(p, "<x:a><b>h", 9), XML_OK);
    ck_assert(!xml_parser_release(p));
    ck_assert_int_eq(xml_parser_feed(p, "i</b></x:a><mess", 16), XML_OK);
    ck_assert(!xml_parser_release(p)); /* "<mess" is held by expat */
    ck_assert_int_eq(xml_parser_feed(p, "age/> ", 6), XML_OK);
    ck_assert(xml_parser_release(p));
    ck_assert_int_eq(xml_parser_feed(p, "<x:c x:d='1'/>", 14), XML_OK);
    ck_assert(xml_parser_release(p));
    ck_assert_int_eq(xml_parser_feed(p, "</s:stream>", 11), XML_OK);
    ck_assert(!xml_parser_release(p)); /* the stream is over */
    ck_assert_str_eq(rec_log(&r),
                     "open [jabber:client] <stream xmlns=\"http://etherx.jabber.org/streams\" "
                     "to=\"a&amp;b\"/>\n"
                     "stanza <a xmlns=\"urn:x\"><b xmlns=\"jabber:client\">hi</b></a>\n"
                     "stanza <message xmlns=\"jabber:client\"/>\n"
                     "stanza <c xmlns=\"urn:x\" xmlns:ns1=\"urn:x\" ns1:d=\"1\"/>\n"
                     "close\n");

    /* A stream restart after a release: a new header, reported. */
    xml_parser_reset(p);
    ck_assert_int_eq(xml_parser_feed(p, HDR, strlen(HDR)), XML_OK);
    ck_assert(xml_parser_release(p));
    xml_parser_reset(p);
    ck_assert_int_eq(xml_parser_feed(p, HDR "<iq/>", strlen(HDR "<iq/>")), XML_OK);
    ck_assert_int_eq(r.opens, 3);
    ck_assert_int_eq(r.stanzas, 4);

    /* Limits after a release: depth, size, an undeclared prefix, a mismatched end tag. */
    static const struct {
        const char *in;
        xml_error_t err;
    } after[] = {
        {"<a><b><c/></b></a>", XML_OK},
        {"<a><b><c><d/></c></b></a>", XML_ERR_POLICY},
        {"<a>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx</a>",
         XML_ERR_POLICY},
        {"<y:a/>", XML_ERR_NOT_WELL_FORMED},
        {"</stream>", XML_ERR_NOT_WELL_FORMED},
        {"<?pi x?>", XML_ERR_RESTRICTED},
    };
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
        xml_parser_reset(p);
        ck_assert_int_eq(xml_parser_feed(p, HDR, strlen(HDR)), XML_OK);
        ck_assert(xml_parser_release(p));
        ck_assert_msg(xml_parser_feed(p, after[i].in, strlen(after[i].in)) == after[i].err,
                      "case %zu", i);
        if (after[i].err != XML_OK) ck_assert(!xml_parser_release(p)); /* stopped */
    }
    xml_parser_destroy(&p); /* a released parser is freed too (LeakSanitizer) */
    xml_parser_t *q = xml_parser_new(&rec_cb, &r, &lim);
    ck_assert_int_eq(xml_parser_feed(q, HDR, strlen(HDR)), XML_OK);
    ck_assert(xml_parser_release(q));
    xml_parser_destroy(&q);
    rec_free(&r);
}
END_TEST

/* Limits restart with the stream: bytes pending before a reset do not count after it. */
START_TEST(test_reset_restarts_limits)
{
    xml_limits_t lim = {100, 0};
    xml_parser_t *p = xml_parser_new(NULL, NULL, &lim);
    size_t len;
    char *tag = make_input("", "<message a='", "x", 80, "", &len); /* 92 bytes, unfinished */
    ck_assert_int_eq(xml_parser_feed(p, HDR, strlen(HDR)), XML_OK);
    ck_assert_int_eq(xml_parser_feed(p, tag, len), XML_OK);
    xml_parser_reset(p);
    ck_assert_int_eq(xml_parser_feed(p, HDR, strlen(HDR)), XML_OK);
    ck_assert_int_eq(xml_parser_feed(p, tag, len), XML_OK);
    ck_assert_int_eq(xml_parser_feed(p, "'/>", 3), XML_OK); /* 95 bytes: fits */
    ck_assert_int_eq(xml_parser_feed(p, tag, len), XML_OK);
    ck_assert_int_eq(xml_parser_feed(p, "' b='123'/>", 11), XML_ERR_POLICY); /* 103 bytes */
    xml_parser_destroy(&p);
    free(tag);
}
END_TEST

/* Without callbacks the parser still works and frees each stanza itself. */
START_TEST(test_no_callbacks)
{
    xml_parser_t *p = xml_parser_new(NULL, NULL, NULL);
    static const char in[] = HDR "<message><body>x</body></message></stream:stream>";
    ck_assert_int_eq(xml_parser_feed(p, in, strlen(in)), XML_OK);
    xml_parser_destroy(&p);
    ck_assert_ptr_null(p);
}
END_TEST

/* ---- Serializer ---------------------------------------------------------------------- */

START_TEST(test_escape)
{
    buf_t b = BUF_INIT;
    xml_escape(&b, "a<b>&\"'c\n", 9);
    ck_assert_str_eq(b.data, "a&lt;b&gt;&amp;&quot;&apos;c\n");
    buf_clear(&b);
    xml_escape(&b, "plain", 5);
    ck_assert_str_eq(b.data, "plain");
    buf_free(&b);
}
END_TEST

START_TEST(test_serialize_escapes_text_and_attrs)
{
    xml_node_t *m = xml_node_new("message", XML_NS_CLIENT);
    xml_node_set_attr(m, "to", "<&>\"'");
    xml_node_add_text(m, "<&>\"'", 5);
    buf_t b = BUF_INIT;
    xml_serialize(m, XML_NS_CLIENT, &b);
    ck_assert_str_eq(b.data, "<message to=\"&lt;&amp;&gt;&quot;&apos;\">"
                             "&lt;&amp;&gt;&quot;&apos;</message>");
    assert_round_trip(m);

    /* Whitespace a parser would normalise is kept by character references. */
    buf_clear(&b);
    xml_node_t *e = xml_node_new("e", XML_NS_CLIENT);
    xml_node_set_attr(e, "a", "1\t2\n3\r4");
    xml_node_add_text(e, "x\ty\nz\r", 6);
    xml_serialize(e, XML_NS_CLIENT, &b);
    ck_assert_str_eq(b.data, "<e a=\"1&#9;2&#10;3&#13;4\">x\ty\nz&#13;</e>");
    assert_round_trip(e);
    xml_node_free(&e);
    xml_node_free(&m);
    buf_free(&b);
}
END_TEST

START_TEST(test_serialize_context_ns)
{
    xml_node_t *m = xml_node_new("message", XML_NS_CLIENT);
    xml_node_set_attr(m, "to", "a@b");
    xml_node_add_text(xml_node_new_child(m, "body", NULL), "hi", 2);
    xml_node_t *x = xml_node_new_child(m, "x", "jabber:x:oob");
    xml_node_add_text(xml_node_new_child(x, "url", NULL), "u", 1);
    xml_node_new_child(m, "plain", "");

    struct {
        const char *ctx, *out;
    } cases[] = {
        {XML_NS_CLIENT, "<message to=\"a@b\"><body>hi</body><x xmlns=\"jabber:x:oob\"><url>u"
                        "</url></x><plain xmlns=\"\"/></message>"},
        {NULL, "<message xmlns=\"jabber:client\" to=\"a@b\"><body>hi</body><x "
               "xmlns=\"jabber:x:oob\"><url>u</url></x><plain xmlns=\"\"/></message>"},
        {"jabber:server", "<message xmlns=\"jabber:client\" to=\"a@b\"><body>hi</body><x "
                          "xmlns=\"jabber:x:oob\"><url>u</url></x><plain xmlns=\"\"/></message>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_t b = BUF_INIT;
        xml_serialize(m, cases[i].ctx, &b);
        ck_assert_str_eq(b.data, cases[i].out);
        buf_free(&b);
    }
    assert_round_trip(m);

    /* A child element in no namespace inside a no-namespace parent needs no declaration. */
    xml_node_t *n = xml_node_new("a", NULL);
    xml_node_new_child(n, "b", NULL);
    buf_t b = BUF_INIT;
    xml_serialize(n, NULL, &b);
    ck_assert_str_eq(b.data, "<a><b/></a>");
    buf_clear(&b);
    xml_serialize(n, XML_NS_CLIENT, &b);
    ck_assert_str_eq(b.data, "<a xmlns=\"\"><b/></a>");
    buf_free(&b);
    xml_node_free(&n);
    xml_node_free(&m);
}
END_TEST

/* A stanza using prefixes declared on the stream root comes out self-contained. */
START_TEST(test_serialize_root_prefixes)
{
    xml_node_t *m = parse_one_stanza("<stream:stream " NS_STREAM_DECL
                                     " xmlns='jabber:client' xmlns:foo='urn:x' xmlns:bar='urn:y'>"
                                     "<message foo:a='1' bar:b='2' foo:c='3' xml:lang='en'>"
                                     "<foo:item foo:d='4'><foo:sub/><body>x</body></foo:item>"
                                     "</message>");
    ck_assert_ptr_nonnull(m);
    buf_t b = BUF_INIT;
    xml_serialize(m, XML_NS_CLIENT, &b);
    ck_assert_str_eq(b.data, "<message xmlns:ns1=\"urn:x\" ns1:a=\"1\" xmlns:ns2=\"urn:y\" "
                             "ns2:b=\"2\" ns1:c=\"3\" xml:lang=\"en\"><item xmlns=\"urn:x\" "
                             "xmlns:ns1=\"urn:x\" ns1:d=\"4\"><sub/><body "
                             "xmlns=\"jabber:client\">x</body></item></message>");
    assert_round_trip(m);
    buf_free(&b);
    xml_node_free(&m);
}
END_TEST

START_TEST(test_serialize_xml_lang)
{
    xml_node_t *m = parse_one_stanza(HDR "<message xml:lang='de'><body xml:lang='en'>x</body>"
                                         "</message>");
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(xml_node_attr_ns(m, XML_NS_XML, "lang"), "de");
    ck_assert_str_eq(xml_node_attr_ns(xml_node_child(m, "body", NULL), XML_NS_XML, "lang"), "en");
    buf_t b = BUF_INIT;
    xml_serialize(m, XML_NS_CLIENT, &b);
    ck_assert_str_eq(b.data, "<message xml:lang=\"de\"><body xml:lang=\"en\">x</body></message>");
    ck_assert_ptr_null(strstr(b.data, "xmlns:xml"));
    assert_round_trip(m);
    buf_free(&b);
    xml_node_free(&m);
}
END_TEST

/* ---- Tree API -------------------------------------------------------------------------- */

START_TEST(test_node_attrs)
{
    xml_node_t *n = xml_node_new("iq", XML_NS_CLIENT);
    ck_assert_str_eq(n->name, "iq");
    ck_assert_str_eq(n->ns, XML_NS_CLIENT);
    ck_assert_ptr_null(xml_node_attr(n, "id"));
    xml_node_set_attr(n, "id", "1");
    xml_node_set_attr(n, "type", "get");
    xml_node_set_attr(n, "id", "2"); /* replaces, keeps the order */
    ck_assert_str_eq(xml_node_attr(n, "id"), "2");
    ck_assert_str_eq(n->attrs->name, "id");
    ck_assert_str_eq(n->attrs->next->name, "type");
    ck_assert_ptr_null(n->attrs->next->next);
    xml_node_set_attr(n, "type", xml_node_attr(n, "type")); /* aliasing value is safe */
    ck_assert_str_eq(xml_node_attr(n, "type"), "get");
    ck_assert_ptr_null(xml_node_attr_ns(n, XML_NS_XML, "id"));
    ck_assert_str_eq(xml_node_attr_ns(n, NULL, "id"), "2");
    xml_node_set_attr(n, "id", NULL);
    ck_assert_ptr_null(xml_node_attr(n, "id"));
    ck_assert_str_eq(n->attrs->name, "type");
    xml_node_set_attr(n, "missing", NULL);
    ck_assert_ptr_null(n->attrs->next);
    xml_node_free(&n);
    ck_assert_ptr_null(n);
    xml_node_free(&n); /* harmless on NULL */
}
END_TEST

START_TEST(test_node_children_and_text)
{
    xml_node_t *m = xml_node_new("message", XML_NS_CLIENT);
    char *t = xml_node_text(m);
    ck_assert_str_eq(t, "");
    free(t);
    ck_assert_ptr_null(xml_node_first_element(m));

    xml_node_add_text(m, "ab", 2);
    xml_node_add_text(m, "cd", 2); /* merged into the same text node */
    ck_assert_ptr_eq(m->children, m->last_child);
    ck_assert_uint_eq(m->children->text_len, 4);
    ck_assert_ptr_null(m->children->name);
    xml_node_add_text(m, "", 0);
    ck_assert_ptr_eq(m->children, m->last_child);

    xml_node_t *body = xml_node_new_child(m, "body", NULL);
    ck_assert_str_eq(body->ns, XML_NS_CLIENT); /* inherited */
    ck_assert_ptr_eq(body->parent, m);
    xml_node_add_text(m, "ef", 2);
    xml_node_t *x = xml_node_new_child(m, "x", "urn:x");
    xml_node_t *body2 = xml_node_add_child(m, xml_node_new("body", "urn:other"));

    t = xml_node_text(m);
    ck_assert_str_eq(t, "abcdef");
    free(t);
    ck_assert_ptr_eq(xml_node_first_element(m), body);
    ck_assert_ptr_eq(xml_node_child(m, "body", NULL), body);
    ck_assert_ptr_eq(xml_node_child(m, "body", "urn:other"), body2);
    ck_assert_ptr_eq(xml_node_child(m, "x", "urn:x"), x);
    ck_assert_ptr_null(xml_node_child(m, "x", XML_NS_CLIENT));
    ck_assert_ptr_null(xml_node_child(m, "nope", NULL));

    /* Copy is deep, detached and equal. */
    xml_node_t *copy = xml_node_copy(m);
    ck_assert_ptr_null(copy->parent);
    ck_assert(tree_equal(m, copy));
    ck_assert_ptr_ne(copy->children, m->children);
    ck_assert_ptr_eq(copy->children->next->parent, copy);

    /* Remove the last, the first and a middle child. */
    xml_node_remove_child(m, body2);
    ck_assert_ptr_null(body2->parent);
    ck_assert_ptr_eq(m->last_child, x);
    xml_node_t *text_abcd = m->children;
    xml_node_remove_child(m, text_abcd);
    ck_assert_ptr_eq(m->children, body);
    ck_assert_ptr_null(text_abcd->parent);
    xml_node_remove_child(m, copy); /* not a child: no-op */
    xml_node_t *text_ef = body->next;
    xml_node_remove_child(m, text_ef);
    ck_assert_ptr_eq(body->next, x);
    t = xml_node_text(m);
    ck_assert_str_eq(t, "");
    free(t);
    ck_assert(!tree_equal(m, copy));
    xml_node_free(&text_abcd);
    xml_node_free(&text_ef);
    xml_node_free(&body2);

    /* Moving a child to another parent unlinks it first. */
    xml_node_add_child(copy, x);
    ck_assert_ptr_eq(m->last_child, body);
    ck_assert_ptr_eq(copy->last_child, x);

    /* Freeing a child unlinks it from its parent. */
    xml_node_free(&body);
    ck_assert_ptr_null(m->children);
    ck_assert_ptr_null(m->last_child);

    buf_t b = BUF_INIT;
    xml_serialize(m, XML_NS_CLIENT, &b);
    ck_assert_str_eq(b.data, "<message/>");
    buf_free(&b);
    xml_node_free(&m);
    xml_node_free(&copy);
}
END_TEST

Suite *make_xml_suite(void)
{
    Suite *s = suite_create("xml");

    TCase *tc = tcase_create("tree");
    tcase_add_test(tc, test_node_attrs);
    tcase_add_test(tc, test_node_children_and_text);
    suite_add_tcase(s, tc);

    tc = tcase_create("serialize");
    tcase_add_test(tc, test_escape);
    tcase_add_test(tc, test_serialize_escapes_text_and_attrs);
    tcase_add_test(tc, test_serialize_context_ns);
    tcase_add_test(tc, test_serialize_root_prefixes);
    tcase_add_test(tc, test_serialize_xml_lang);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_stream_one_shot, 0, N_GOOD_STREAMS);
    tcase_add_loop_test(tc, test_stream_every_split, 0, N_GOOD_STREAMS);
    tcase_add_loop_test(tc, test_stream_byte_by_byte, 0, N_GOOD_STREAMS);
    tcase_add_loop_test(tc, test_stream_byte_by_byte_released, 0, N_GOOD_STREAMS);
    tcase_add_loop_test(tc, test_stream_round_trip, 0, N_GOOD_STREAMS);
    tcase_add_test(tc, test_callbacks_not_deferred);
    tcase_add_test(tc, test_stream_root_attributes);
    tcase_add_test(tc, test_parsed_tree_shape);
    tcase_add_test(tc, test_reset_restarts_stream);
    tcase_add_test(tc, test_reset_restarts_limits);
    tcase_add_test(tc, test_release_resume);
    tcase_add_test(tc, test_no_callbacks);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_bad_input, 0, N_BAD_CASES);
    tcase_add_loop_test(tc, test_error_is_sticky, 0, N_BAD_CASES);
    tcase_add_test(tc, test_whitespace_after_stream_end);
    tcase_add_test(tc, test_error_conditions);
    tcase_add_loop_test(tc, test_limits, 0, N_LIMIT_CASES);
    tcase_add_test(tc, test_oversize_attribute_stops_early);
    tcase_add_test(tc, test_repeated_long_namespace_is_bounded);
    tcase_add_test(tc, test_stanza_size_boundary);
    tcase_add_test(tc, test_depth_boundary);
    tcase_add_test(tc, test_no_reparse_deferral);
    suite_add_tcase(s, tc);

    return s;
}
