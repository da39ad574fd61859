/* libFuzzer harness for a room's configuration form (session-router/core/muccfg.c), which
 * reads the muc#roomconfig form a room owner submits.
 *
 * Input: a data form as XML (parsed as the router parses a stanza). Checked: applying it
 * never crashes or leaks; a refused form leaves the configuration as it was, with an error
 * condition; an accepted one survives the stored text form and the form the room then
 * offers (submitted back, it changes nothing). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muccfg.h"
#include "stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_muccfg: check failed: %s (line %d)\n", #cond, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define LIMIT 100

/* The stored text forms are equal exactly when the configurations are. */
static int same(const muccfg_t *a, const muccfg_t *b)
{
    buf_t x = BUF_INIT, y = BUF_INIT;
    muccfg_encode(a, &x);
    muccfg_encode(b, &y);
    int eq = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    buf_free(&x);
    buf_free(&y);
    return eq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xml_node_t *x = stanza_parse((const char *)data, size);
    if (!x)
        return 0;
    muccfg_t c, before, d;
    muccfg_default(&c, 20);
    before = c;
    muccfg_err_t err = {0};
    if (muccfg_apply(&c, x, LIMIT, &err) < 0) {
        FUZZ_CHECK(err.cond && err.etype);
        FUZZ_CHECK(same(&c, &before));
    } else {
        buf_t b = BUF_INIT;
        muccfg_encode(&c, &b);
        muccfg_decode(b.data, &d);
        buf_free(&b);
        FUZZ_CHECK(same(&c, &d));
        xml_node_t *f = muccfg_form(&c, LIMIT);
        xml_node_set_attr(f, "type", "submit");
        d = c;
        FUZZ_CHECK(muccfg_apply(&d, f, LIMIT, &err) == 0);
        FUZZ_CHECK(same(&c, &d));
        xml_node_free(&f);
        xml_node_t *q = xml_node_new("query", "http://jabber.org/protocol/disco#info");
        muccfg_disco(&c, q, 1, "");
        xml_node_free(&q);
    }
    xml_node_free(&x);
    return 0;
}
