/* Addresses at other domains: which s2s frontend carries a domain, and the send
 * (remote.h). */
#include "remote.h"

#include <errno.h>
#include <string.h>

#include "config.h"
#include "link.h"
#include "log.h"
#include "util.h"

const config_key_t remote_config_keys[] = {
    CONFIG_INT("s2s_resend_buffer", "8388608", 0, 1073741824, "bytes of stanzas for other domains kept per s2s frontend until it confirms them, to send again through another if it dies (0: none kept)"),
    CONFIG_END,
};

/* A stanza sent to an s2s frontend and not yet confirmed (IPC_S2S_ACK), in the order sent. */
typedef struct jentry {
    struct jentry *prev, *next;
    uint32_t seq;
    int tries;
    ipc_kind_t kind;
    ipc_stype_t stype;
    size_t len, to_len, from_len, id_len; /* data: payload, then to, from, id (each + NUL) */
    char data[];
} jentry_t;

struct remote_journal {
    hmap_t *by_seq; /* 4-byte seq -> jentry_t */
    jentry_t *head, *tail;
    size_t bytes;
    uint32_t next_seq;
};

static size_t resend_max = 8388608; /* s2s_resend_buffer */
static struct {
    metric_t *resent, *bounced, *forgotten;
} rm;
/* Copies forgotten for room, logged at most once a minute. */
static struct {
    uint64_t last_ms;
    unsigned long n;
} forget_log;

void remote_open(void)
{
    resend_max = (size_t)config_int("s2s_resend_buffer");
    rm.resent = metrics_counter("xmpp_s2s_resent_total", "",
                                "stanzas for other domains sent again through another s2s "
                                "frontend after theirs went away unconfirmed");
    rm.bounced = metrics_counter("xmpp_s2s_resend_bounced_total", "",
                                 "stanzas for other domains bounced to their sender after their "
                                 "s2s frontend went away unconfirmed and none could take them");
    rm.forgotten = metrics_counter("xmpp_s2s_resend_forgotten_total", "",
                                   "unconfirmed stanzas for other domains whose copy was dropped "
                                   "to stay within s2s_resend_buffer");
}

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

/* A frontend a send found not connected is passed over until it is heard from again
 * (link.c updates last_seen on every message): a killed frontend stops taking its domains
 * at once, not after frontend_timeout. */
static int reachable(const rt_frontend_t *f)
{
    return !f->unreachable_ms || f->last_seen > f->unreachable_ms;
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
        if (!f->s2s || !reachable(f))
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

/* ---- The copies kept until the frontend confirms (s2s_resend_buffer) ---- */

static size_t entry_size(const jentry_t *e)
{
    return sizeof *e + e->len + e->to_len + e->from_len + e->id_len + 3;
}

static void entry_unlink(struct remote_journal *j, jentry_t *e)
{
    hmap_del(j->by_seq, &e->seq, sizeof e->seq);
    if (e->prev)
        e->prev->next = e->next;
    else
        j->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        j->tail = e->prev;
    j->bytes -= entry_size(e);
}

static jentry_t *entry_new(const ipc_s2s_t *m, const char *payload, size_t len, int tries)
{
    const char *id = m->id ? m->id : "";
    size_t tl = strlen(m->to), fl = strlen(m->from), il = strlen(id);
    jentry_t *e = xmalloc(sizeof *e + len + tl + fl + il + 3);
    *e = (jentry_t){.tries = tries, .kind = m->kind, .stype = m->stype, .len = len,
                    .to_len = tl, .from_len = fl, .id_len = il};
    char *p = e->data;
    memcpy(p, payload, len);
    p += len;
    memcpy(p, m->to, tl + 1);
    p += tl + 1;
    memcpy(p, m->from, fl + 1);
    p += fl + 1;
    memcpy(p, id, il + 1);
    return e;
}

static ipc_s2s_t entry_facts(const jentry_t *e)
{
    const char *to = e->data + e->len, *from = to + e->to_len + 1, *id = from + e->from_len + 1;
    return (ipc_s2s_t){.kind = e->kind, .stype = e->stype, .to = to, .from = from,
                       .id = *id ? id : NULL};
}

/* The number for the next stanza to f, never 0 (0 says "not kept"). */
static uint32_t next_seq(rt_frontend_t *f)
{
    if (!f->journal) {
        f->journal = xcalloc(1, sizeof *f->journal);
        f->journal->by_seq = hmap_new();
        /* A random start: the frontend may still hold numbers from an earlier
         * registration (it stalled past frontend_timeout and came back, or the router
         * restarted), and a late s2s-ack of one must not confirm a new stanza that got the
         * same number. */
        random_bytes(&f->journal->next_seq, sizeof f->journal->next_seq);
    }
    struct remote_journal *j = f->journal;
    do
        j->next_seq++;
    while (!j->next_seq || hmap_get(j->by_seq, &j->next_seq, sizeof j->next_seq));
    return j->next_seq;
}

/* Keeps e (numbered seq) until f confirms it; the oldest copies go when the buffer is
 * full: those stanzas are still sent, only not sent again should f die. */
static void keep(rt_frontend_t *f, jentry_t *e, uint32_t seq)
{
    struct remote_journal *j = f->journal;
    e->seq = seq;
    size_t need = entry_size(e);
    unsigned long forgotten = 0;
    /* A stanza that could never fit is not kept, and costs the others nothing. */
    while (need <= resend_max && j->head && j->bytes + need > resend_max) {
        jentry_t *old = j->head;
        entry_unlink(j, old);
        free(old);
        forgotten++;
    }
    if (need > resend_max) {
        free(e);
        forgotten++;
    } else {
        e->prev = j->tail;
        e->next = NULL;
        if (j->tail)
            j->tail->next = e;
        else
            j->head = e;
        j->tail = e;
        j->bytes += need;
        hmap_put(j->by_seq, &e->seq, sizeof e->seq, e);
    }
    if (forgotten) {
        metric_add(rm.forgotten, (double)forgotten);
        forget_log.n += forgotten;
        uint64_t now = now_ms();
        if (now - forget_log.last_ms >= 60000) {
            log_warn("remote: %s has %zu bytes of stanzas unconfirmed; %lu copies dropped to "
                     "stay within s2s_resend_buffer (they are not sent again if it dies)",
                     f->ident, j->bytes, forget_log.n);
            forget_log.last_ms = now;
            forget_log.n = 0;
        }
    }
}

/* Sends e to the s2s frontend that carries its domain now, passing over frontends found
 * not connected; kept there (or freed when it cannot be kept). 0, or -1 with errno as
 * remote_send, e still the caller's. */
static int send_entry(jentry_t *e)
{
    ipc_s2s_t m = entry_facts(e);
    const char *slash = strchr(m.to, '/');
    size_t n = slash ? (size_t)(slash - m.to) : strlen(m.to);
    const char *at = memchr(m.to, '@', n);
    const char *dom = at ? at + 1 : m.to;
    for (;;) {
        rt_frontend_t *f = remote_frontend(dom, n - (size_t)(dom - m.to));
        if (!f) {
            errno = ENETUNREACH;
            return -1;
        }
        ipc_hdr_t h;
        m.conn = 0; /* no connection of the frontend's: it picks the one for the domain pair */
        m.h = resend_max ? next_seq(f) : 0;
        if (ipc_s2s_out_build(&h, &m) < 0) {
            errno = EINVAL;
            return -1;
        }
        if (link_send(f, &h, e->data, e->len) == 0) {
            if (m.h)
                keep(f, e, m.h);
            else
                free(e);
            return 0;
        }
        if (errno != EHOSTUNREACH)
            return -1;
        /* Not connected (killed, most likely): the next frontend by weight takes the
         * domain; what f was not done with is sent again when it is declared gone. */
        log_info("remote: %s is not connected: its domains go to the other s2s frontends",
                 f->ident);
        f->unreachable_ms = now_ms();
        if (f->unreachable_ms <= f->last_seen)
            f->unreachable_ms = f->last_seen + 1;
    }
}

int remote_send(const ipc_s2s_t *m, const char *payload, size_t len)
{
    jentry_t *e = entry_new(m, payload, len, 0);
    int rc = send_entry(e);
    if (rc < 0) {
        int err = errno;
        free(e);
        errno = err;
        return -1;
    }
    metric_inc(rt.m.stanzas_out[m->kind < IPC_KINDS ? m->kind : 0]);
    return 0;
}

void remote_acked(rt_frontend_t *f, const unsigned char *seqs, uint32_t n)
{
    struct remote_journal *j = f->journal;
    if (!j)
        return;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *p = seqs + 4 * (size_t)i;
        uint32_t seq = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        jentry_t *e = hmap_get(j->by_seq, &seq, sizeof seq);
        if (e) {
            entry_unlink(j, e);
            free(e);
        }
    }
}

/* How often one stanza is sent again before it is bounced: a stanza that takes its
 * frontend down each time must not take every frontend down in turn. */
#define RESEND_TRIES 3

void remote_frontend_gone(rt_frontend_t *f, remote_bounce_fn bounce)
{
    f->s2s = 0; /* no longer a candidate for its domains */
    struct remote_journal *j = f->journal;
    f->journal = NULL;
    if (!j)
        return;
    size_t resent = 0, bounced = 0;
    jentry_t *e = j->head;
    while (e) {
        jentry_t *next = e->next;
        e->prev = e->next = NULL;
        int err = 0;
        if (++e->tries > RESEND_TRIES)
            err = ETIMEDOUT;
        else if (send_entry(e) < 0)
            err = errno;
        if (err) {
            ipc_s2s_t m = entry_facts(e);
            /* RFC 6120 8.3.3.16: the server could not be reached in time; a sender may try
             * again later (type wait). */
            bounce(&m, e->data, e->len, "wait", "remote-server-timeout");
            free(e);
            bounced++;
        } else {
            resent++;
        }
        e = next;
    }
    hmap_destroy(&j->by_seq);
    free(j);
    metric_add(rm.resent, (double)resent);
    metric_add(rm.bounced, (double)bounced);
    if (resent || bounced)
        log_info("remote: %s went away with %zu stanza(s) for other domains unconfirmed: %zu "
                 "sent again through another s2s frontend, %zu bounced",
                 f->ident, resent + bounced, resent, bounced);
}

void remote_close(void)
{
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(rt.frontends, &pos, &k, &kl, &v))
        remote_journal_free(v);
}

void remote_journal_free(rt_frontend_t *f)
{
    struct remote_journal *j = f->journal;
    f->journal = NULL;
    if (!j)
        return;
    while (j->head) {
        jentry_t *e = j->head;
        j->head = e->next;
        free(e);
    }
    hmap_destroy(&j->by_seq);
    free(j);
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
