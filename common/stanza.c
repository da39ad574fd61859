#include "stanza.h"

#include "ipc.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A reply is addressed back to the sender, from whom the original was addressed to. */
static xml_node_t *reply_shell(const xml_node_t *orig, const char *server, const char *type)
{
    xml_node_t *r = xml_node_new(orig->name, orig->ns);
    const char *to = xml_node_attr(orig, "to"), *from = xml_node_attr(orig, "from");
    const char *id = xml_node_attr(orig, "id");
    xml_node_set_attr(r, "from", to ? to : server);
    if (from)
        xml_node_set_attr(r, "to", from);
    if (id)
        xml_node_set_attr(r, "id", id);
    xml_node_set_attr(r, "type", type);
    return r;
}

xml_node_t *stanza_error_reply(const xml_node_t *orig, const char *server, const char *etype,
                               const char *cond)
{
    xml_node_t *r = reply_shell(orig, server, "error");
    if (strcmp(orig->name, "iq") != 0) {
        for (const xml_node_t *ch = orig->children; ch; ch = ch->next)
            if (ch->name && strcmp(ch->name, "error") != 0)
                xml_node_add_child(r, xml_node_copy(ch));
    }
    xml_node_t *e = xml_node_new_child(r, "error", NULL);
    xml_node_set_attr(e, "type", etype);
    xml_node_new_child(e, cond, NS_STANZAS);
    return r;
}

xml_node_t *stanza_iq_result(const xml_node_t *orig, const char *server)
{
    return reply_shell(orig, server, "result");
}

typedef struct {
    xml_node_t *got;
    int count;
} parse_one_t;

static void on_open(void *ud, const xml_node_t *root)
{
    (void)ud;
    (void)root;
}

static void on_stanza(void *ud, xml_node_t *st)
{
    parse_one_t *p = ud;
    if (p->count++ == 0)
        p->got = st;
    else
        xml_node_free(&st);
}

static void on_close(void *ud)
{
    (void)ud;
}

xml_node_t *stanza_parse(const char *data, size_t len)
{
    static const char head[] = "<stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    static const char tail[] = "</stream:stream>";
    xml_callbacks_t cb = {on_open, on_stanza, on_close};
    parse_one_t p = {NULL, 0};
    xml_limits_t lim = {len + 1024 > 16777216 ? len + 1024 : 16777216, 256};
    xml_parser_t *xp = xml_parser_new(&cb, &p, &lim);
    int ok = xml_parser_feed(xp, head, sizeof head - 1) == XML_OK &&
             xml_parser_feed(xp, data, len) == XML_OK &&
             xml_parser_feed(xp, tail, sizeof tail - 1) == XML_OK;
    xml_parser_destroy(&xp);
    if (!ok || p.count != 1) {
        xml_node_free(&p.got);
        return NULL;
    }
    return p.got;
}

int stanza_presence_priority(const xml_node_t *presence)
{
    const xml_node_t *p = xml_node_child(presence, "priority", XML_NS_CLIENT);
    if (!p)
        return 0;
    char *text = xml_node_text(p), *end;
    long v = strtol(text, &end, 10);
    int ok = end != text && *end == '\0' && v >= -128 && v <= 127;
    free(text);
    return ok ? (int)v : 0;
}

void stanza_add_delay(xml_node_t *st, const char *from, time_t when)
{
    char stamp[32];
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    xml_node_t *d = xml_node_new_child(st, "delay", "urn:xmpp:delay");
    xml_node_set_attr(d, "from", from);
    xml_node_set_attr(d, "stamp", stamp);
}

/* stanza_scan_children (stanza.h). */
int stanza_scan_children(const char *p, size_t n, stanza_kid_t *kids, size_t max, size_t *close)
{
    const char *end = p + n;
    const char *gt = memchr(p, '>', n);
    if (!gt || gt == p || gt[-1] == '/')
        return -1;
    int depth = 1, nk = 0;
    for (const char *q = gt + 1; q < end;) {
        const char *lt = memchr(q, '<', (size_t)(end - q));
        if (!lt || end - lt < 3)
            return -1;
        const char *tend = memchr(lt, '>', (size_t)(end - lt));
        if (!tend)
            return -1;
        if (lt[1] == '/') {
            if (--depth == 0) {
                *close = (size_t)(lt - p);
                return tend + 1 == end ? nk : -1;
            }
        } else if (lt[1] == '!' || lt[1] == '?') {
            return -1;
        } else {
            if (depth == 1) {
                if ((size_t)nk == max)
                    return -1;
                const char *nm = lt + 1, *ne = nm;
                while (ne < tend && *ne != ' ' && *ne != '/')
                    ne++;
                if (ne == nm || memchr(nm, ':', (size_t)(ne - nm)))
                    return -1;
                stanza_kid_t *k = &kids[nk++];
                k->name = nm;
                k->nlen = (size_t)(ne - nm);
                k->ns = XML_NS_CLIENT;
                k->nslen = sizeof XML_NS_CLIENT - 1;
                if (tend - ne > 8 && memcmp(ne, " xmlns=\"", 8) == 0) {
                    const char *v = ne + 8, *ve = memchr(v, '"', (size_t)(tend - v));
                    /* An escaped namespace would need unescaping: the parser's job. */
                    if (!ve || memchr(v, '&', (size_t)(ve - v)))
                        return -1;
                    k->ns = v;
                    k->nslen = (size_t)(ve - v);
                }
            }
            if (tend[-1] != '/')
                depth++;
        }
        q = tend + 1;
    }
    return -1;
}

int stanza_check_type(const xml_node_t *st, int kind, int stype)
{
    if (stype == IPC_ST_INVALID)
        return -1;
    if (kind != IPC_KIND_IQ)
        return 0;
    int nchild = 0;
    for (const xml_node_t *ch = st->children; ch; ch = ch->next)
        nchild += ch->name != NULL;
    if (!xml_node_attr(st, "id") || stype == IPC_ST_NONE ||
        ((stype == IPC_ST_GET || stype == IPC_ST_SET) && nchild != 1))
        return -1;
    return 0;
}
