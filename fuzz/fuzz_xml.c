/* libFuzzer harness for the XML stream parser (common/xml.c) as the frontend drives it.
 *
 * Input: byte 0 picks the slice size (1..255 bytes per feed, 0 as 1), to exercise
 * incremental parsing; byte 1 bit 0 picks the limits (0: the
 * frontend's defaults, 1: the smallest the config allows); the rest is split at NUL bytes
 * (never valid XML) into streams, fed to one parser that is reset between them, as the
 * frontend does after STARTTLS and SASL success; the sliced run also releases the parser
 * (xml_parser_release) after every slice where it may, as the frontend does with an idle
 * stream. As in the frontend, the first stream has
 * the pre-authentication limits and the parser gets the larger ones before the second
 * stream starts (xml_parser_set_limits, as after SASL success).
 *
 * Checked: every stanza serialises to XML that parses back to one stanza that serialises
 * to the same bytes, a tree copy serialises the same as the original, and no stanza is
 * deeper than the limit. The input is parsed twice, in slices and in one feed: both must
 * report the same events and the same error (a policy error aside, whose exact point may
 * depend on the slicing by design: see XML_FEED_SLICE in xml.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "stanza.h"
#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message: libFuzzer records the input as a crash. */
static void fuzz_fail(const char *what, const buf_t *a, const buf_t *b)
{
    fprintf(stderr, "fuzz_xml: %s\n  first:  %.*s\n  second: %.*s\n", what,
            a ? (int)a->len : 0, a && a->data ? a->data : "", b ? (int)b->len : 0,
            b && b->data ? b->data : "");
    abort();
}

/* What one run saw: every event, in order, as text. */
typedef struct {
    buf_t events;
    int max_depth;
} run_t;

static void on_open(void *ud, const xml_node_t *root)
{
    run_t *run = ud;
    buf_append_str(&run->events, "open:");
    /* What stream.c reads from the header. */
    const char *attrs[] = {xml_node_attr(root, "to"), xml_node_attr(root, "version"),
                           xml_node_attr(root, "xmlns"),
                           xml_node_attr_ns(root, XML_NS_XML, "lang")};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        buf_printf(&run->events, "%s|", attrs[i] ? attrs[i] : "(none)");
    buf_append_str(&run->events, "\n");
}

/* Elements below the stream root: the stanza is level 1. */
static int tree_depth(const xml_node_t *node)
{
    int deepest = 0;
    for (const xml_node_t *c = node->children; c; c = c->next)
        if (c->name) {
            int d = tree_depth(c);
            if (d > deepest)
                deepest = d;
        }
    return deepest + 1;
}

/* stanza_scan_children reads a jabber:client stanza's serialisation as the parser does:
 * the same element children, in order, with their namespaces, and the closing tag where it
 * is. It may decline only a childless self-closed stanza, one with too many children, or
 * one with a child whose namespace is written with an escaped character. */
static void check_scan(const xml_node_t *st, const buf_t *ser)
{
    if (!st->ns || strcmp(st->ns, XML_NS_CLIENT) != 0)
        return; /* the router reads only jabber:client stanzas this way */
    stanza_kid_t kids[STANZA_KIDS_MAX];
    size_t close = 0;
    int n = stanza_scan_children(ser->data, ser->len, kids, STANZA_KIDS_MAX, &close);
    size_t want = 0;
    for (const xml_node_t *c = st->children; c; c = c->next)
        want += c->name != NULL;
    int self_closed = ser->len >= 2 && ser->data[ser->len - 2] == '/', escaped = 0;
    for (const xml_node_t *c = st->children; c; c = c->next)
        escaped |= c->name && c->ns && strpbrk(c->ns, "&<>\"'") != NULL;
    if (n < 0) {
        if (!self_closed && !escaped && want <= STANZA_KIDS_MAX)
            fuzz_fail("stanza_scan_children declined a serialised stanza", ser, NULL);
        return;
    }
    if ((size_t)n != want)
        fuzz_fail("stanza_scan_children counted other children", ser, NULL);
    int i = 0;
    for (const xml_node_t *c = st->children; c; c = c->next) {
        if (!c->name)
            continue;
        const char *ns = c->ns ? c->ns : "";
        if (kids[i].nlen != strlen(c->name) || memcmp(kids[i].name, c->name, kids[i].nlen) ||
            kids[i].nslen != strlen(ns) || memcmp(kids[i].ns, ns, kids[i].nslen))
            fuzz_fail("stanza_scan_children read another child", ser, NULL);
        i++;
    }
    size_t tail = strlen(st->name) + 3; /* "</" NAME ">" */
    if (close + tail != ser->len || memcmp(ser->data + close, "</", 2) != 0)
        fuzz_fail("stanza_scan_children put the closing tag elsewhere", ser, NULL);
}

static void on_stanza(void *ud, xml_node_t *st)
{
    run_t *run = ud;
    if (tree_depth(st) > run->max_depth)
        abort();
    buf_t first = BUF_INIT, second = BUF_INIT, copied = BUF_INIT;
    xml_serialize(st, XML_NS_CLIENT, &first);

    xml_node_t *copy = xml_node_copy(st);
    xml_serialize(copy, XML_NS_CLIENT, &copied);
    if (copied.len != first.len || memcmp(copied.data, first.data, first.len) != 0)
        fuzz_fail("a copy serialises differently", &first, &copied);
    xml_node_free(&copy);

    xml_node_t *again = stanza_parse(first.data, first.len);
    if (!again)
        fuzz_fail("serialised stanza does not parse back", &first, NULL);
    xml_serialize(again, XML_NS_CLIENT, &second);
    if (second.len != first.len || memcmp(second.data, first.data, first.len) != 0)
        fuzz_fail("serialisation is not stable across a parse", &first, &second);

    check_scan(st, &first);

    char *text = xml_node_text(st);
    free(text);
    buf_append_str(&run->events, "stanza:");
    buf_append(&run->events, first.data, first.len);
    buf_append_str(&run->events, "\n");
    xml_node_free(&again);
    xml_node_free(&st);
    buf_free(&first);
    buf_free(&second);
    buf_free(&copied);
}

static void on_close(void *ud)
{
    run_t *run = ud;
    buf_append_str(&run->events, "close\n");
}

/* Parses the streams (split at NUL) as the frontend would, `slice` bytes per feed. Returns
 * 1 when some stream ended in a policy error. */
static int run_streams(run_t *run, const char *p, size_t left, size_t slice,
                       const xml_limits_t *preauth, const xml_limits_t *limits)
{
    size_t size_whole = left + 1;
    int policy = 0;
    xml_callbacks_t cb = {on_open, on_stanza, on_close};
    run->max_depth = preauth->max_depth;
    xml_parser_t *parser = xml_parser_new(&cb, run, preauth);
    for (int first = 1; first || left > 0; first = 0) {
        const char *nul = memchr(p, '\0', left);
        size_t len = nul ? (size_t)(nul - p) : left;
        if (!first) {
            /* After SASL success: the larger limits, then a new stream. */
            xml_parser_set_limits(parser, limits);
            run->max_depth = limits->max_depth;
            xml_parser_reset(parser);
        }
        xml_error_t err = XML_OK;
        for (size_t off = 0; off < len && err == XML_OK;) {
            size_t n = len - off < slice ? len - off : slice;
            err = xml_parser_feed(parser, p + off, n);
            off += n;
            /* Sliced, the parser is also released wherever it may be, as the frontend
             * does with an idle stream: made again from the header, it must report what
             * the whole run reports. */
            if (slice < size_whole && xml_parser_release(parser) && xml_parser_depth(parser) != 1)
                abort();
        }
        /* An error is sticky until the next reset. */
        if (err != XML_OK && xml_parser_feed(parser, "<a/>", 4) != err)
            abort();
        policy |= err == XML_ERR_POLICY;
        buf_printf(&run->events, "end:%s\n", xml_error_condition(err));
        p += len;
        left -= len;
        if (!nul)
            break;
        p++;
        left--;
    }
    xml_parser_destroy(&parser);
    return policy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* The frontend's config defaults: max_stanza_size(_preauth), max_depth(_preauth). */
    xml_limits_t preauth = {16384, 16}, limits = {262144, 64};
    if (data[1] & 1) {
        /* The smallest values the config allows. */
        preauth.max_stanza = limits.max_stanza = 1024;
        preauth.max_depth = limits.max_depth = 4;
    }
    const char *p = (const char *)data + 2;
    run_t sliced = {BUF_INIT, 0}, whole = {BUF_INIT, 0};
    int policy = run_streams(&sliced, p, size - 2, data[0] ? data[0] : 1, &preauth, &limits);
    policy |= run_streams(&whole, p, size - 2, size, &preauth, &limits);
    if (!policy && (sliced.events.len != whole.events.len ||
                    memcmp(sliced.events.data, whole.events.data, whole.events.len) != 0))
        fuzz_fail("slicing changes what the parser reports", &sliced.events, &whole.events);
    buf_free(&sliced.events);
    buf_free(&whole.events);
    return 0;
}
