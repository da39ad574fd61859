/* Outbound server-to-server connections, one per (local domain, remote domain), and the
 * queue of stanzas waiting while one comes up (s2s_out.h). */
#include "s2s_out.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "s2s.h"
#include "s2s_resolve.h"
#include "stanza.h"
#include "util.h"

typedef struct qitem {
    struct qitem *next;
    ipc_kind_t kind;
    ipc_stype_t stype;
    uint32_t seq; /* the router's number for it (0: none) */
    size_t len;
    char data[];
} qitem_t;

/* A <db:verify/> for one of our inbound streams (XEP-0220 2.3), waiting or sent. */
typedef struct vitem {
    struct vitem *next;
    uint64_t conn;
    int sent;
    char stream_id[sizeof ((client_t *)0)->stream_id];
    char key[65];
} vitem_t;

/* Verifications one pair may have in flight. */
#define S2S_VERIFIES_MAX 64

struct s2s_link {
    char local[JID_PART_MAX + 1], remote[JID_PART_MAX + 1];
    char key[2 * (JID_PART_MAX + 1)];
    size_t keylen;
    client_t *c;   /* the connection serving the pair (up or coming up), or NULL */
    int ready;     /* c is authenticated: stanzas go straight out */
    s2s_query_t *query;
    s2s_target_t targets[S2S_TARGETS_MAX];
    int ntargets, next; /* the resolved targets, the next one to try */
    ev_timer_t *deadline; /* s2s_connect_timeout, while coming up */
    ev_timer_t *retry;    /* the next target, from the loop */
    qitem_t *head, *tail;
    size_t n, bytes; /* queued stanzas and their bytes */
    vitem_t *verifies; /* dialback verifications for inbound streams from `remote` */
    int nverifies;
    char why[200]; /* why the last attempt failed */
};

static hmap_t *links;

/* The numbers of the router's s2s-out this frontend is done with (written to a server
 * connection, or bounced), told to the router in one s2s-ack before the loop sleeps, so
 * that the router forgets its copies (it sends again the ones a killed frontend never
 * confirmed). */
static struct {
    uint32_t seq[IPC_S2S_ACK_MAX];
    size_t n;
    int hooked;
} acks;

static void acks_flush(void)
{
    if (!acks.n)
        return;
    unsigned char payload[IPC_S2S_ACK_MAX * 4];
    for (size_t i = 0; i < acks.n; i++) {
        payload[4 * i] = (unsigned char)(acks.seq[i] >> 24);
        payload[4 * i + 1] = (unsigned char)(acks.seq[i] >> 16);
        payload[4 * i + 2] = (unsigned char)(acks.seq[i] >> 8);
        payload[4 * i + 3] = (unsigned char)acks.seq[i];
    }
    ipc_hdr_t h;
    ipc_s2s_ack_build(&h, &(ipc_s2s_ack_t){.n = (uint32_t)acks.n});
    /* Always taken: a lost ack would only make the router send the stanza again if this
     * frontend died, but it is a few bytes and nothing else says it. */
    router_submit(&h, (const char *)payload, acks.n * 4, 1);
    acks.n = 0;
}

static void on_before_sleep(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    acks_flush();
}

void s2s_out_open(void)
{
    if (!acks.hooked) {
        evloop_before_sleep(fe.loop, on_before_sleep, NULL);
        acks.hooked = 1;
    }
}

/* The router's stanza `seq` is done with: written to a connection or bounced. */
static void done(uint32_t seq)
{
    if (!seq)
        return;
    s2s_out_open(); /* a frontend without s2s bouncing what a router sent it anyway */
    if (acks.n == IPC_S2S_ACK_MAX)
        acks_flush();
    acks.seq[acks.n++] = seq;
}

static size_t make_key(char *key, const char *local, const char *remote)
{
    size_t a = strlen(local), b = strlen(remote);
    memcpy(key, local, a);
    key[a] = '\0';
    memcpy(key + a + 1, remote, b);
    return a + 1 + b;
}

void s2s_bounce(ipc_kind_t kind, ipc_stype_t stype, const char *payload, size_t len,
                const char *etype, const char *cond, const char *text)
{
    /* RFC 6120 8.3.1: never an error in answer to an error; 8.2.3: nor to an iq result. */
    if (stype == IPC_ST_ERROR || stype == IPC_ST_RESULT)
        return;
    xml_node_t *st = stanza_parse(payload, len);
    const char *to = st ? xml_node_attr(st, "to") : NULL, *from = st ? xml_node_attr(st, "from") : NULL;
    if (!to || !from) {
        xml_node_free(&st);
        return;
    }
    xml_node_t *err = stanza_error_reply(st, to, etype, cond);
    xml_node_t *e = xml_node_child(err, "error", NULL);
    if (e && text) {
        xml_node_t *t = xml_node_new_child(e, "text", NS_STANZAS);
        xml_node_add_text(t, text, strlen(text));
    }
    buf_t b = BUF_INIT;
    xml_serialize(err, XML_NS_CLIENT, &b);
    ipc_hdr_t h;
    if (ipc_s2s_in_build(&h, &(ipc_s2s_t){.kind = kind, .stype = IPC_ST_ERROR, .to = from,
                                          .from = to, .id = xml_node_attr(st, "id")}) < 0 ||
        router_submit(&h, b.data, b.len, 0) < 0)
        log_warn("s2s: could not return an error (%s) to %s: the router buffer is full", cond, from);
    buf_free(&b);
    xml_node_free(&err);
    xml_node_free(&st);
}

static void link_free(s2s_link_t *l)
{
    evloop_cancel(fe.loop, &l->deadline);
    evloop_cancel(fe.loop, &l->retry);
    if (l->query) {
        s2s_resolve_cancel(l->query);
        l->query = NULL;
    }
    while (l->head) {
        qitem_t *q = l->head;
        l->head = q->next;
        free(q);
    }
    hmap_del(links, l->key, l->keylen);
    /* Verifications nobody will answer now: the keys count as not verified. */
    vitem_t *v = l->verifies;
    l->verifies = NULL;
    free(l);
    while (v) {
        vitem_t *next = v->next;
        s2s_dialback_answer(v->conn, v->stream_id, 0);
        free(v);
        v = next;
    }
}

/* The pair cannot be served now: every queued stanza is bounced, the connection coming up
 * (if any) is ended, and the pair forgotten. */
static void link_fail(s2s_link_t *l, const char *etype, const char *cond, const char *why)
{
    log_info("s2s: %s -> %s failed (%s): %zu stanza(s) bounced with %s", l->local, l->remote, why,
             l->n, cond);
    client_t *c = l->c;
    l->c = NULL;
    if (c && c->s2s) {
        c->s2s->link = NULL;
        s2s_end_stream(c);
    }
    for (qitem_t *q = l->head; q; q = q->next) {
        s2s_bounce(q->kind, q->stype, q->data, q->len, etype, cond, why);
        done(q->seq);
    }
    link_free(l);
}

static void try_next(s2s_link_t *l)
{
    while (l->next < l->ntargets) {
        if (!s2s_connect_ok()) {
            link_fail(l, "wait", "remote-server-timeout",
                      "too many server connections (s2s_max_connections)");
            return;
        }
        const s2s_target_t *t = &l->targets[l->next++];
        char host[64] = "?", port[8] = "?", addr[80];
        getnameinfo((const struct sockaddr *)&t->addr, t->addrlen, host, sizeof host, port,
                    sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(addr, sizeof addr, t->addr.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
        int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0 &&
                       errno != EINPROGRESS)) {
            snprintf(l->why, sizeof l->why, "connect to %s (%s): %s", t->host, addr, strerror(errno));
            log_info("s2s: %s -> %s: %s", l->local, l->remote, l->why);
            if (fd >= 0)
                close(fd);
            continue;
        }
        client_t *c = client_connect(fd, addr, t->direct_tls);
        s2s_attach_outbound(c, l, l->local, l->remote);
        stream_init(c);
        l->c = c;
        log_info("s2s: %s -> %s: connecting to %s (%s)%s", l->local, l->remote, t->host, addr,
                  t->direct_tls ? ", direct TLS" : "");
        return;
    }
    link_fail(l, "cancel", "remote-server-not-found", l->why[0] ? l->why : "no address to connect to");
}

static void on_retry(evloop_t *loop, void *ud)
{
    (void)loop;
    s2s_link_t *l = ud;
    l->retry = NULL;
    try_next(l);
}

static void on_resolved(void *ud, const s2s_target_t *targets, int n, const char *why)
{
    s2s_link_t *l = ud;
    l->query = NULL;
    if (n <= 0) {
        link_fail(l, "cancel", "remote-server-not-found", why ? why : "the domain does not resolve");
        return;
    }
    if (n > S2S_TARGETS_MAX)
        n = S2S_TARGETS_MAX;
    memcpy(l->targets, targets, (size_t)n * sizeof *targets);
    l->ntargets = n;
    l->next = 0;
    try_next(l);
}

static void on_deadline(evloop_t *loop, void *ud)
{
    (void)loop;
    s2s_link_t *l = ud;
    l->deadline = NULL;
    link_fail(l, "wait", "remote-server-timeout", "no connection within s2s_connect_timeout");
}

static void link_start(s2s_link_t *l)
{
    l->why[0] = '\0';
    l->ntargets = l->next = 0;
    l->deadline = evloop_timer(fe.loop, s2s_out_cfg.connect_ms, on_deadline, l);
    l->query = s2s_resolve(l->remote, on_resolved, l);
    if (!l->query)
        link_fail(l, "wait", "remote-server-timeout", "too many domains being resolved");
}

static int usable(const client_t *c)
{
    return c && !c->closed && !c->closing && !c->stream_done && !c->overflow && c->s2s;
}

static s2s_link_t *link_get(const char *local, const char *remote)
{
    if (!links)
        links = hmap_new();
    char key[sizeof ((s2s_link_t *)0)->key];
    size_t kl = make_key(key, local, remote);
    s2s_link_t *l = hmap_get(links, key, kl);
    if (!l) {
        l = xcalloc(1, sizeof *l);
        snprintf(l->local, sizeof l->local, "%s", local);
        snprintf(l->remote, sizeof l->remote, "%s", remote);
        memcpy(l->key, key, kl);
        l->keylen = kl;
        hmap_put(links, l->key, l->keylen, l);
    }
    return l;
}

static void send_verifies(s2s_link_t *l)
{
    if (!usable(l->c) || !(l->ready || l->c->s2s->usable))
        return;
    for (vitem_t *v = l->verifies; v; v = v->next) {
        if (v->sent)
            continue;
        buf_t b = BUF_INIT;
        buf_append_str(&b, "<db:verify xmlns:db='" NS_DIALBACK "' from='");
        xml_escape(&b, l->local, strlen(l->local));
        buf_append_str(&b, "' to='");
        xml_escape(&b, l->remote, strlen(l->remote));
        buf_append_str(&b, "' id='");
        xml_escape(&b, v->stream_id, strlen(v->stream_id));
        buf_append_str(&b, "'>");
        /* The key is the peer's text, whatever it holds: text here too. */
        xml_escape(&b, v->key, strlen(v->key));
        buf_append_str(&b, "</db:verify>");
        client_write(l->c, b.data, b.len);
        buf_free(&b);
        v->sent = 1;
    }
}

void s2s_out_dialback_verify(const char *local, const char *remote, uint64_t conn,
                             const char *stream_id, const char *key)
{
    /* A key we would never ask about is answered before a pair is made for it: a pair
     * without a connection, a query or a queue would stay, one per domain a peer named. */
    if (strlen(key) >= sizeof ((vitem_t *)0)->key) {
        s2s_dialback_answer(conn, stream_id, 0);
        return;
    }
    s2s_link_t *l = link_get(local, remote);
    if (l->nverifies >= S2S_VERIFIES_MAX) {
        s2s_dialback_answer(conn, stream_id, 0);
        return;
    }
    vitem_t *v = xcalloc(1, sizeof *v);
    v->conn = conn;
    snprintf(v->stream_id, sizeof v->stream_id, "%s", stream_id);
    snprintf(v->key, sizeof v->key, "%s", key);
    v->next = l->verifies;
    l->verifies = v;
    l->nverifies++;
    if (l->c)
        send_verifies(l);
    else if (!l->query && !l->retry && !l->deadline)
        link_start(l);
}

void s2s_out_usable(s2s_link_t *l, client_t *c)
{
    if (l->c == c)
        send_verifies(l);
}

void s2s_out_verify_result(s2s_link_t *l, const char *stream_id, int valid)
{
    for (vitem_t **p = &l->verifies; *p; p = &(*p)->next) {
        vitem_t *v = *p;
        if (!v->sent || strcmp(v->stream_id, stream_id) != 0)
            continue;
        *p = v->next;
        l->nverifies--;
        uint64_t conn = v->conn;
        char id[sizeof v->stream_id];
        snprintf(id, sizeof id, "%s", v->stream_id);
        free(v);
        s2s_dialback_answer(conn, id, valid);
        return;
    }
}

void s2s_out_route(const ipc_s2s_t *m, const char *payload, size_t len)
{
    if (!s2s_enabled()) {
        s2s_bounce(m->kind, m->stype, payload, len, "cancel", "remote-server-not-found",
                   "this frontend does not serve server-to-server connections");
        done(m->h);
        return;
    }
    jid_t jf, jt;
    if (jid_parse(&jf, m->from) < 0 || jid_parse(&jt, m->to) < 0 || !s2s_hosted(jf.domain) ||
        s2s_hosted(jt.domain)) {
        log_warn("s2s: dropped a stanza from %s to %s: not from one of our domains to another",
                 m->from, m->to);
        done(m->h);
        return;
    }
    s2s_link_t *l = link_get(jf.domain, jt.domain);
    if (l->ready && usable(l->c)) {
        client_write(l->c, payload, len);
        s2s_on_activity(l->c);
        done(m->h);
        return;
    }
    /* Bounded by count and by bytes: the queue is written in one pass once the connection
     * is up, and more than 4 x max_output_buffer in one pass would end the connection. */
    if (l->n >= s2s_out_cfg.queue_max || l->bytes + len > fe.max_output) {
        s2s_bounce(m->kind, m->stype, payload, len, "wait", "remote-server-timeout",
                   "too many stanzas waiting for the connection to the remote server");
        done(m->h);
        return;
    }
    qitem_t *q = xmalloc(sizeof *q + len);
    q->next = NULL;
    q->kind = m->kind;
    q->stype = m->stype;
    q->seq = m->h;
    q->len = len;
    memcpy(q->data, payload, len);
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->n++;
    l->bytes += len;
    if (!l->c && !l->query && !l->retry && !l->deadline)
        link_start(l);
}

void s2s_out_ready(s2s_link_t *l, client_t *c)
{
    if (l->c != c)
        return;
    evloop_cancel(fe.loop, &l->deadline);
    evloop_cancel(fe.loop, &l->retry);
    l->ready = 1;
    size_t n = l->n;
    while (l->head) {
        qitem_t *q = l->head;
        l->head = q->next;
        client_write(c, q->data, q->len);
        done(q->seq);
        free(q);
    }
    l->tail = NULL;
    l->n = l->bytes = 0;
    send_verifies(l);
    s2s_on_activity(c);
    log_info("s2s: %s -> %s up (%s); %zu queued stanza(s) sent", l->local, l->remote, c->addr, n);
}

static void on_restart(evloop_t *loop, void *ud)
{
    (void)loop;
    s2s_link_t *l = ud;
    l->retry = NULL;
    link_start(l);
}

void s2s_out_closed(s2s_link_t *l, client_t *c)
{
    if (l->c != c)
        return;
    l->c = NULL;
    if (!l->head && !l->verifies) {
        /* Nothing to send: the next stanza opens a connection. */
        link_free(l);
        return;
    }
    if (l->ready) {
        /* It was up, and stanzas came while it was closing: a new connection for them,
         * from the loop (we may be deep in the connection's teardown here); they are
         * bounced if it does not come up. */
        l->ready = 0;
        evloop_cancel(fe.loop, &l->retry);
        l->retry = evloop_timer(fe.loop, 0, on_restart, l);
        return;
    }
    if (c->s2s && c->s2s->why[0]) {
        int n = snprintf(l->why, sizeof l->why, "%.130s", c->s2s->why);
        snprintf(l->why + n, sizeof l->why - (size_t)n, " (%.60s)", c->addr);
    }
    /* Coming up: the next target, from the loop (we may be deep in the connection's
     * teardown here). */
    if (l->deadline && !l->retry)
        l->retry = evloop_timer(fe.loop, 0, on_retry, l);
}

void s2s_out_peer_lost(const char *remote)
{
    if (!links)
        return;
    /* Collected first: ending a stream may end its pair. */
    size_t n = hmap_count(links), i = 0, pos = 0, kl;
    const void *k;
    void *v;
    client_t **ends = xcalloc(n ? n : 1, sizeof *ends);
    while (i < n && hmap_next(links, &pos, &k, &kl, &v)) {
        s2s_link_t *l = v;
        if (l->ready && usable(l->c) && strcmp(l->remote, remote) == 0)
            ends[i++] = l->c;
    }
    for (size_t j = 0; j < i; j++) {
        log_info("s2s: %s -> %s: the connection from %s was lost; ours is ended too (the next "
                 "stanza opens a new one)", ends[j]->s2s ? ends[j]->s2s->local : "?", remote,
                 remote);
        s2s_end_stream(ends[j]);
    }
    free(ends);
}

void s2s_out_shutdown(void)
{
    if (!links) {
        acks_flush();
        return;
    }
    size_t n = hmap_count(links), i = 0, pos = 0, kl;
    const void *k;
    void *v;
    s2s_link_t **all = xcalloc(n ? n : 1, sizeof *all);
    while (i < n && hmap_next(links, &pos, &k, &kl, &v))
        all[i++] = v;
    for (size_t j = 0; j < i; j++) {
        if (all[j]->head || all[j]->verifies)
            link_fail(all[j], "wait", "remote-server-timeout", "the server is shutting down");
        else {
            if (all[j]->c && all[j]->c->s2s)
                all[j]->c->s2s->link = NULL;
            link_free(all[j]);
        }
    }
    free(all);
    hmap_destroy(&links);
    acks_flush();
}
