/* libFuzzer harness for the XML stream parser (common/xml.c) as the frontend drives it.
 *
 * Input: byte 0 picks the slice size (0: the whole stream in one feed, else that many bytes
 * per feed, to exercise incremental parsing); byte 1 bit 0 picks the limits (0: the
 * frontend's defaults, 1: the smallest the config allows); the rest is split at NUL bytes
 * (never valid XML) into streams, fed to one parser that is reset between them, as the
 * frontend does after STARTTLS and SASL success. As in the frontend, the first stream has
 * the pre-authentication limits and the parser gets the larger ones before the second
 * stream starts (xml_parser_set_limits, as after SASL success).
 *
 * Checked: every stanza serialises to XML that parses back to one stanza that serialises
 * to the same bytes, and a tree copy serialises the same as the original. */
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

static void on_open(void *ud, const xml_node_t *root)
{
    (void)ud;
    /* What stream.c reads from the header. */
    (void)xml_node_attr(root, "to");
    (void)xml_node_attr(root, "version");
    (void)xml_node_attr(root, "xmlns");
    (void)xml_node_attr_ns(root, XML_NS_XML, "lang");
}

static void on_stanza(void *ud, xml_node_t *st)
{
    (void)ud;
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

    char *text = xml_node_text(st);
    free(text);
    xml_node_free(&again);
    xml_node_free(&st);
    buf_free(&first);
    buf_free(&second);
    buf_free(&copied);
}

static void on_close(void *ud)
{
    (void)ud;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t slice = data[0] ? data[0] : (size_t)-1;
    /* The frontend's config defaults: max_stanza_size(_preauth), max_depth(_preauth). */
    xml_limits_t preauth = {16384, 16}, limits = {262144, 64};
    if (data[1] & 1) {
        /* The smallest values the config allows. */
        preauth.max_stanza = limits.max_stanza = 1024;
        preauth.max_depth = limits.max_depth = 4;
    }
    const char *p = (const char *)data + 2;
    size_t left = size - 2;

    xml_callbacks_t cb = {on_open, on_stanza, on_close};
    xml_parser_t *parser = xml_parser_new(&cb, NULL, &preauth);
    for (int first = 1; first || left > 0; first = 0) {
        const char *nul = memchr(p, '\0', left);
        size_t len = nul ? (size_t)(nul - p) : left;
        if (!first) {
            xml_parser_set_limits(parser, &limits);
            xml_parser_reset(parser);
        }
        xml_error_t err = XML_OK;
        for (size_t off = 0; off < len && err == XML_OK;) {
            size_t n = len - off < slice ? len - off : slice;
            err = xml_parser_feed(parser, p + off, n);
            off += n;
        }
        /* An error is sticky until the next reset. */
        if (err != XML_OK && xml_parser_feed(parser, "<a/>", 4) != err)
            abort();
        (void)xml_error_condition(err);
        p += len;
        left -= len;
        if (nul) {
            p++;
            left--;
        } else {
            break;
        }
    }
    xml_parser_destroy(&parser);
    return 0;
}
