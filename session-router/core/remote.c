/* Addresses at other domains: which s2s frontend carries a domain, and the send
 * (remote.h). */
#include "remote.h"

#include <errno.h>
#include <string.h>

#include "link.h"
#include "log.h"
#include "util.h"

int remote_domain(const char *dom, size_t len)
{
    size_t dl = strlen(rt.domain);
    if (len == dl && memcmp(dom, rt.domain, dl) == 0)
        return 0;
    if (len > dl + 1 && dom[len - dl - 1] == '.' && memcmp(dom + len - dl, rt.domain, dl) == 0)
        return 0;
    return len > 0;
}

int remote_jid(const char *jid)
{
    if (!jid)
        return 0;
    const char *slash = strchr(jid, '/');
    size_t n = slash ? (size_t)(slash - jid) : strlen(jid);
    const char *at = memchr(jid, '@', n);
    const char *dom = at ? at + 1 : jid;
    return remote_domain(dom, n - (size_t)(dom - jid));
}

/* The weight of (frontend name, domain): FNV-1a over both, then the splitmix64 finaliser,
 * so that every pair gets an independent, well-spread number. The name, not the routing
 * id: a frontend that restarts (new epoch) wins the same domains again. */
static uint64_t weight(const char *name, const char *dom, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull; /* a byte no name or domain holds: the separator */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)dom[i]) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

rt_frontend_t *remote_frontend(const char *dom, size_t len)
{
    rt_frontend_t *best = NULL;
    uint64_t best_w = 0;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(rt.frontends, &pos, &k, &kl, &v)) {
        rt_frontend_t *f = v;
        if (!f->s2s)
            continue;
        uint64_t w = weight(f->name, dom, len);
        /* Ties (two frontends of one name cannot both be live: a new epoch replaces the
         * old) are broken by the routing id, so the choice never depends on table order. */
        if (!best || w > best_w || (w == best_w && strcmp(f->ident, best->ident) > 0)) {
            best = f;
            best_w = w;
        }
    }
    return best;
}

int remote_send(const ipc_s2s_t *m, const char *payload, size_t len)
{
    const char *to = m->to;
    const char *slash = strchr(to, '/');
    size_t n = slash ? (size_t)(slash - to) : strlen(to);
    const char *at = memchr(to, '@', n);
    const char *dom = at ? at + 1 : to;
    rt_frontend_t *f = remote_frontend(dom, n - (size_t)(dom - to));
    if (!f) {
        errno = ENETUNREACH;
        return -1;
    }
    ipc_hdr_t h;
    ipc_s2s_t out = *m;
    out.conn = 0; /* no connection of the frontend's: it picks the one for the domain pair */
    if (ipc_s2s_out_build(&h, &out) < 0) {
        errno = EINVAL;
        return -1;
    }
    if (link_send(f, &h, payload, len) < 0)
        return -1;
    metric_inc(rt.m.stanzas_out[m->kind < IPC_KINDS ? m->kind : 0]);
    return 0;
}

/* Sends that failed for stanzas the server made, logged at most once a second. */
static struct {
    uint64_t last_ms;
    unsigned long lost, skipped;
} lost_log;

int remote_send_node(const xml_node_t *st)
{
    const char *to = xml_node_attr(st, "to"), *from = xml_node_attr(st, "from");
    ipc_kind_t kind = ipc_kind_from_name(st->name);
    if (!to || !from || kind == IPC_KIND_NONE)
        return -1;
    ipc_s2s_t m = {.kind = kind, .stype = ipc_stype_from_attr(kind, xml_node_attr(st, "type")),
                   .to = to, .from = from, .id = xml_node_attr(st, "id")};
    buf_t b = BUF_INIT;
    xml_serialize(st, XML_NS_CLIENT, &b);
    int rc = remote_send(&m, b.data, b.len);
    int err = errno;
    buf_free(&b);
    if (rc < 0) {
        lost_log.lost++;
        uint64_t now = now_ms();
        if (err == ENETUNREACH) {
            /* Federation off (or every s2s frontend gone): a broadcast to remote contacts
             * would log a line each time. */
            log_debug("remote: a %s for %s not sent: no s2s frontend is alive", st->name, to);
        } else if (now - lost_log.last_ms >= 1000) {
            log_warn("remote: a %s for %s lost: %s (%lu lost since start, %lu not logged)",
                     st->name, to, err == ENETUNREACH ? "no s2s frontend is alive"
                                                      : "the link refused it",
                     lost_log.lost, lost_log.skipped);
            lost_log.last_ms = now;
            lost_log.skipped = 0;
        } else {
            lost_log.skipped++;
        }
        errno = err;
    }
    return rc;
}
