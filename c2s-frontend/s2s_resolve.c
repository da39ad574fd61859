/* s2s_resolve: where to connect for a remote domain (s2s_resolve.h), and the dialback key
 * of XEP-0185. */
#include "s2s_resolve.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <ares.h>
#include <arpa/nameser.h>
#include <idna.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"
#include "util.h"

#define S2S_STATIC_MAX 256
#define S2S_DNS_SERVERS_MAX 8

const config_key_t s2s_resolve_config_keys[] = {
    CONFIG_STR("s2s_static_hosts", "",
               "where to connect for some remote domains instead of DNS: comma-separated domain=host:port ([v6]:port; domain=tls:host:port for direct TLS)"),
    CONFIG_STR("s2s_dns_servers", "",
               "DNS servers for server-to-server lookups, comma-separated ip:port ([v6]:port) (empty: the system's resolv.conf)"),
    CONFIG_END,
};

/* ---- parsing of the keys ---- */

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Trims spaces on both sides of s[0..*n). */
static const char *trim(const char *s, size_t *n)
{
    while (*n && isspace((unsigned char)*s)) {
        s++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)s[*n - 1]))
        (*n)--;
    return s;
}

/* Labels of letters, digits, '-' and '_' (with utf8, also any byte >= 0x80: an
 * internationalised domain as the stanzas carry it), 1..63 bytes each (a UTF-8 label is
 * bounded by its A-label later), dots between, at most 253 characters; a final dot is not
 * accepted. */
static int valid_labels(const char *s, size_t n, int utf8)
{
    if (n == 0 || n > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((utf8 && ch >= 0x80) || isalnum(ch) || ch == '-' || ch == '_') {
            if (++label > 63 && !utf8)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* A DNS name (SRV targets, static hosts, names to look up). */
static int valid_hostname(const char *s, size_t n)
{
    return valid_labels(s, n, 0);
}

/* A domain as written in s2s_static_hosts: a DNS name, or UTF-8 without spaces or the
 * list's separators. */
static int valid_domain(const char *s, size_t n)
{
    return valid_labels(s, n, 1);
}

/* "host:port" or "[v6]:port" -> host (brackets removed), port. `need_port`: a missing
 * ":port" is an error, else *port is left alone. *is_v6 tells a bracketed host. */
static int parse_hostport(const char *s, size_t n, char *host, size_t hostlen,
                          unsigned short *port, int need_port, int *is_v6, const char **why)
{
    const char *h, *p = NULL;
    size_t hl;
    *is_v6 = 0;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            *why = "unclosed '['";
            return -1;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest) {
            if (close[1] != ':') {
                *why = "expected ':port' after ']'";
                return -1;
            }
            p = close + 2;
        }
        *is_v6 = 1;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) {
            *why = "an IPv6 address goes in brackets: [v6]:port";
            return -1;
        }
        h = s;
        hl = colon ? (size_t)(colon - s) : n;
        p = colon ? colon + 1 : NULL;
    }
    if (hl == 0 || hl >= hostlen) {
        *why = hl == 0 ? "empty host" : "host too long";
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (!p) {
        if (need_port) {
            *why = "missing ':port'";
            return -1;
        }
        return 0;
    }
    size_t pl = n - (size_t)(p - s);
    unsigned long v = 0;
    if (pl == 0 || pl > 5) {
        *why = "bad port";
        return -1;
    }
    for (size_t i = 0; i < pl; i++) {
        if (!isdigit((unsigned char)p[i])) {
            *why = "bad port";
            return -1;
        }
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v == 0 || v > 65535) {
        *why = "port out of range (1..65535)";
        return -1;
    }
    *port = (unsigned short)v;
    return 0;
}

int s2s_static_hosts_parse(const char *value, s2s_static_host_t *out, int max, char *err,
                           size_t errlen)
{
    int count = 0;
    const char *cur = value ? value : "", *e;
    size_t n;
    if (is_blank(cur, strlen(cur)))
        return 0;
    while ((e = config_list_next(&cur, &n))) {
        const char *why = NULL;
        const char *eq = memchr(e, '=', n);
        if (n == 0) {
            why = "empty entry";
            goto bad;
        }
        if (!eq) {
            why = "expected domain=host:port";
            goto bad;
        }
        size_t dl = (size_t)(eq - e), rl = n - dl - 1;
        const char *d = trim(e, &dl), *r = trim(eq + 1, &rl);
        if (!valid_domain(d, dl)) {
            why = "bad domain";
            goto bad;
        }
        if (count >= max) {
            why = "too many entries";
            goto bad;
        }
        s2s_static_host_t *t = &out[count];
        memset(t, 0, sizeof *t);
        for (size_t i = 0; i < dl; i++)
            t->domain[i] = (char)tolower((unsigned char)d[i]);
        t->domain[dl] = '\0';
        for (int i = 0; i < count; i++)
            if (strcmp(out[i].domain, t->domain) == 0) {
                why = "domain listed twice";
                goto bad;
            }
        if (rl >= 4 && strncmp(r, "tls:", 4) == 0) {
            t->direct_tls = 1;
            r += 4;
            rl -= 4;
        }
        int v6;
        if (parse_hostport(r, rl, t->host, sizeof t->host, &t->port, 1, &v6, &why) < 0)
            goto bad;
        unsigned char a[16];
        if (v6 ? inet_pton(AF_INET6, t->host, a) != 1
               : !(inet_pton(AF_INET, t->host, a) == 1 || valid_hostname(t->host, strlen(t->host)))) {
            why = v6 ? "bad IPv6 address" : "bad host name";
            goto bad;
        }
        count++;
        continue;
    bad:
        snprintf(err, errlen, "s2s_static_hosts: bad entry '%.*s': %s", (int)(n > 200 ? 200 : n), e,
                 why);
        return -1;
    }
    return count;
}

int s2s_dns_servers_parse(const char *value, char *out, size_t outlen, char *err,
                          size_t errlen)
{
    const char *cur = value ? value : "", *e;
    size_t used = 0, n;
    int count = 0;
    out[0] = '\0';
    if (is_blank(cur, strlen(cur)))
        return 0;
    while ((e = config_list_next(&cur, &n))) {
        const char *why = NULL;
        char host[64];
        unsigned short port = 53;
        unsigned char a[16];
        int v6, w;
        if (n == 0) {
            why = "empty entry";
            goto bad;
        }
        if (parse_hostport(e, n, host, sizeof host, &port, 0, &v6, &why) < 0)
            goto bad;
        if (inet_pton(v6 ? AF_INET6 : AF_INET, host, a) != 1) {
            why = v6 ? "bad IPv6 address" : "not an IP address (ip:port, [v6]:port)";
            goto bad;
        }
        if (++count > S2S_DNS_SERVERS_MAX) {
            why = "too many servers";
            goto bad;
        }
        w = snprintf(out + used, outlen - used, v6 ? "%s[%s]:%u" : "%s%s:%u", used ? "," : "",
                     host, (unsigned)port);
        if (w < 0 || (size_t)w >= outlen - used) {
            why = "list too long";
            goto bad;
        }
        used += (size_t)w;
        continue;
    bad:
        snprintf(err, errlen, "s2s_dns_servers: bad entry '%.*s': %s", (int)(n > 200 ? 200 : n), e,
                 why);
        return -1;
    }
    return 0;
}

/* ---- XEP-0185 ---- */

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void s2s_dialback_key(const char *secret, const char *receiving, const char *originating,
                      const char *stream_id, char out[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char key[65];
    /* Section 2: the secret hashed with SHA-256, in hexadecimal, is the HMAC key; the
     * message is "Receiving Originating StreamID" with single spaces. */
    if (EVP_Digest(secret, strlen(secret), digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32)
        log_fatal("s2s_dialback_key: SHA-256 failed");
    hex(digest, 32, key);
    size_t rl = strlen(receiving), ol = strlen(originating), il = strlen(stream_id);
    size_t ml = rl + ol + il + 2;
    char *msg = xmalloc(ml);
    memcpy(msg, receiving, rl);
    msg[rl] = ' ';
    memcpy(msg + rl + 1, originating, ol);
    msg[rl + 1 + ol] = ' ';
    memcpy(msg + rl + ol + 2, stream_id, il);
    if (!HMAC(EVP_sha256(), key, 64, (const unsigned char *)msg, ml, digest, &dlen) || dlen != 32)
        log_fatal("s2s_dialback_key: HMAC-SHA256 failed");
    free(msg);
    hex(digest, 32, out);
}

/* ---- SRV ordering (RFC 2782) ---- */

static unsigned random_u32(void *ud)
{
    (void)ud;
    unsigned v;
    random_bytes(&v, sizeof v);
    return v;
}

static int srv_by_priority(const void *a, const void *b)
{
    const s2s_srv_t *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    /* zero weights first within a priority (RFC 2782's arrangement before the draw) */
    if ((x->weight == 0) != (y->weight == 0))
        return x->weight == 0 ? -1 : 1;
    return 0;
}

void s2s_srv_order(s2s_srv_t *recs, int n, unsigned (*rnd)(void *), void *ud)
{
    if (!rnd)
        rnd = random_u32;
    /* qsort is not stable: keep the answer's order among equals by a stable insertion
     * sort (n is small and bounded by the caller). */
    for (int i = 1; i < n; i++) {
        s2s_srv_t t = recs[i];
        int j = i;
        while (j > 0 && srv_by_priority(&recs[j - 1], &t) > 0) {
            recs[j] = recs[j - 1];
            j--;
        }
        recs[j] = t;
    }
    for (int start = 0; start < n;) {
        int end = start;
        while (end < n && recs[end].priority == recs[start].priority)
            end++;
        /* recs[start..end) is one priority, zero weights first: draw the next one from
         * the rest, move it to the front of the rest. */
        for (int k = start; k < end - 1; k++) {
            unsigned long sum = 0, run = 0;
            for (int i = k; i < end; i++)
                sum += recs[i].weight;
            unsigned long r = sum ? (unsigned long)rnd(ud) % (sum + 1) : 0;
            int pick = k;
            for (int i = k; i < end; i++) {
                run += recs[i].weight;
                if (run >= r) {
                    pick = i;
                    break;
                }
            }
            s2s_srv_t t = recs[pick];
            memmove(&recs[k + 1], &recs[k], (size_t)(pick - k) * sizeof *recs);
            recs[k] = t;
        }
        start = end;
    }
}

/* ---- the resolver ---- */

/* SRV records read from the two answers at most, and kept after ordering (each gives at
 * least one target when it resolves). */
#define SRV_RAW_MAX 64
#define SRV_KEEP_MAX S2S_TARGETS_MAX

enum { PH_SRV, PH_ADDR, PH_DONE };

struct s2s_query;
typedef struct {
    struct s2s_query *q;
    int idx;
} s2s_op_t;

struct s2s_query {
    struct s2s_query *prev, *next;
    char domain[256]; /* as asked (for the texts) */
    char name[256];   /* its DNS form (A-labels) */
    s2s_resolve_cb cb;
    void *ud;
    int cancelled;
    int pending; /* c-ares operations whose callback has not run */
    int phase;
    int fallback; /* the domain's own A/AAAA on 5269 */
    int is_static;
    /* SRV phase: per service (0 = _xmpps-server, 1 = _xmpp-server) */
    int srv_status[2];
    int srv_dot[2];
    s2s_srv_t *srv; /* SRV_RAW_MAX, then the ordered ones */
    int nsrv;
    s2s_op_t ops[SRV_KEEP_MAX];
    /* address phase: one lookup per kept SRV record (or the static host, or the domain) */
    struct ares_addrinfo *ai[SRV_KEEP_MAX];
    int ai_status[SRV_KEEP_MAX];
    s2s_target_t targets[S2S_TARGETS_MAX];
    int n;
    char why[300];
    ev_timer_t *deliver;
};

static struct {
    evloop_t *loop;
    ares_channel ch;
    int open;
    int closing;
    ev_timer_t *tmo;
    s2s_query_t *live;
    int nlive;
    s2s_static_host_t *statics;
    int nstatics;
    int timeout_ms, tries;
} R = {.timeout_ms = 2000, .tries = 2};

void s2s_resolve_set_timing(int timeout_ms, int tries)
{
    R.timeout_ms = timeout_ms;
    R.tries = tries;
}

static void rearm(void);

static void tmo_cb(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    R.tmo = NULL;
    ares_process_fd(R.ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm();
}

/* The loop's timer follows c-ares's next deadline. */
static void rearm(void)
{
    if (!R.ch || R.closing)
        return;
    evloop_cancel(R.loop, &R.tmo);
    struct timeval tv, *t = ares_timeout(R.ch, NULL, &tv);
    if (t) {
        uint64_t ms = (uint64_t)t->tv_sec * 1000 + ((uint64_t)t->tv_usec + 999) / 1000;
        R.tmo = evloop_timer(R.loop, ms, tmo_cb, NULL);
    }
}

static void fd_cb(evloop_t *loop, int fd, unsigned events, void *ud)
{
    (void)loop;
    (void)ud;
    ares_process_fd(R.ch, (events & (EV_READ | EV_ERROR)) ? fd : ARES_SOCKET_BAD,
                    (events & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    rearm();
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    (void)data;
    if (!readable && !writable)
        evloop_unwatch(R.loop, fd);
    else if (evloop_watch(R.loop, fd, (readable ? EV_READ : 0u) | (writable ? EV_WRITE : 0u),
                          fd_cb, NULL) < 0)
        log_error("s2s_resolve: cannot watch the DNS socket %d", fd);
}

static void q_free(s2s_query_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        R.live = q->next;
    if (q->next)
        q->next->prev = q->prev;
    R.nlive--;
    for (int i = 0; i < SRV_KEEP_MAX; i++)
        if (q->ai[i])
            ares_freeaddrinfo(q->ai[i]);
    free(q->srv);
    evloop_cancel(R.loop, &q->deliver);
    free(q);
}

static void deliver_cb(evloop_t *loop, void *ud)
{
    (void)loop;
    s2s_query_t *q = ud;
    q->deliver = NULL;
    s2s_resolve_cb cb = q->cb;
    void *cud = q->ud;
    /* The callback may start or cancel other queries, or close the module: q leaves the
     * list first, and the targets are copied out of it. */
    s2s_target_t targets[S2S_TARGETS_MAX];
    char why[sizeof q->why];
    int n = q->n;
    memcpy(targets, q->targets, (size_t)n * sizeof *targets);
    memcpy(why, q->why, sizeof why);
    q_free(q);
    cb(cud, targets, n, n ? NULL : why);
}

/* The answer is ready: the callback runs from the loop (never inside s2s_resolve). */
static void finish(s2s_query_t *q)
{
    q->phase = PH_DONE;
    if (q->n == 0 && !q->why[0])
        snprintf(q->why, sizeof q->why, "%s: no address found", q->domain);
    else if (q->n)
        q->why[0] = '\0';
    q->deliver = evloop_timer(R.loop, 0, deliver_cb, q);
}

static void fail(s2s_query_t *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(s2s_query_t *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->why, sizeof q->why, fmt, ap);
    va_end(ap);
    q->n = 0;
    finish(q);
}

/* A c-ares callback for a query that is cancelled (or the module closing): frees it
 * when it was the last. 1 when the caller must stop. */
static int settle(s2s_query_t *q)
{
    if (!q->cancelled)
        return 0;
    if (q->pending == 0)
        q_free(q);
    return 1;
}

static void add_target(s2s_query_t *q, const struct sockaddr *sa, socklen_t len,
                       unsigned short port, int tls, const char *host)
{
    if (q->n >= S2S_TARGETS_MAX || len > (socklen_t)sizeof(struct sockaddr_storage))
        return;
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return;
    s2s_target_t *t = &q->targets[q->n];
    memset(t, 0, sizeof *t);
    memcpy(&t->addr, sa, len);
    t->addrlen = len;
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)&t->addr)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&t->addr)->sin6_port = htons(port);
    t->direct_tls = tls;
    snprintf(t->host, sizeof t->host, "%s", host);
    /* the same address, port and kind twice (two SRV names of one machine) is tried once */
    for (int i = 0; i < q->n; i++)
        if (q->targets[i].addrlen == t->addrlen && q->targets[i].direct_tls == tls &&
            memcmp(&q->targets[i].addr, &t->addr, t->addrlen) == 0)
            return;
    q->n++;
}

static const char *status_text(int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
        return "no such domain (NXDOMAIN)";
    case ARES_ENODATA:
        return "no address records";
    case ARES_ETIMEOUT:
        return "DNS timeout";
    default:
        return ares_strerror(status);
    }
}

/* Every address lookup came back: the targets in SRV order. */
static void addr_done(s2s_query_t *q)
{
    for (int i = 0; i < q->nsrv; i++) {
        if (!q->ai[i])
            continue;
        for (struct ares_addrinfo_node *nd = q->ai[i]->nodes; nd; nd = nd->ai_next)
            add_target(q, nd->ai_addr, (socklen_t)nd->ai_addrlen, q->srv[i].port,
                       q->srv[i].direct_tls, q->srv[i].host);
        ares_freeaddrinfo(q->ai[i]);
        q->ai[i] = NULL;
    }
    if (q->n) {
        finish(q);
    } else if (q->is_static) {
        fail(q, "%s: static host %s: %s", q->domain, q->srv[0].host, status_text(q->ai_status[0]));
    } else if (q->fallback) {
        int st = q->ai_status[0];
        if (st == ARES_ENODATA || st == ARES_SUCCESS)
            fail(q, "%s: no SRV, A or AAAA records", q->domain);
        else
            fail(q, "%s: %s", q->domain, status_text(st));
    } else {
        fail(q, "%s: none of its SRV targets has an address (%s: %s)", q->domain, q->srv[0].host,
             status_text(q->ai_status[0]));
    }
}

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    s2s_op_t *op = arg;
    s2s_query_t *q = op->q;
    q->pending--;
    if (status == ARES_SUCCESS && res) {
        q->ai[op->idx] = res;
    } else if (res) {
        ares_freeaddrinfo(res);
    }
    q->ai_status[op->idx] = status;
    if (settle(q))
        return;
    if (q->pending == 0)
        addr_done(q);
}

/* Looks up the addresses of q->srv[0..nsrv). */
static void start_addr(s2s_query_t *q)
{
    struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                        .ai_protocol = IPPROTO_TCP};
    q->phase = PH_ADDR;
    q->pending = q->nsrv;
    /* a callback may run inside ares_getaddrinfo (/etc/hosts, an error): pending counts
     * them all from the start, so the last one, whichever, completes the query */
    for (int i = 0; i < q->nsrv; i++) {
        q->ops[i].q = q;
        q->ops[i].idx = i;
        ares_getaddrinfo(R.ch, q->srv[i].host, NULL, &hints, addr_cb, &q->ops[i]);
    }
}

static void srv_done(s2s_query_t *q)
{
    if (q->nsrv > 0) {
        s2s_srv_order(q->srv, q->nsrv, NULL, NULL);
        if (q->nsrv > SRV_KEEP_MAX)
            q->nsrv = SRV_KEEP_MAX;
        start_addr(q);
        return;
    }
    /* XEP-0368 and RFC 2782: a "." target says the service is decidedly not there, and
     * no A/AAAA fallback is made */
    if (q->srv_dot[0] || q->srv_dot[1]) {
        fail(q, "%s: no XMPP server-to-server service (SRV target \".\")", q->domain);
        return;
    }
    /* A server that does not answer would not answer the A/AAAA questions either. */
    if (q->srv_status[0] == ARES_ETIMEOUT || q->srv_status[1] == ARES_ETIMEOUT) {
        fail(q, "%s: DNS timeout (SRV)", q->domain);
        return;
    }
    /* No SRV record (or a failed SRV lookup, RFC 6120 3.2.2): the domain itself, 5269. */
    q->fallback = 1;
    q->nsrv = 1;
    memset(&q->srv[0], 0, sizeof q->srv[0]);
    snprintf(q->srv[0].host, sizeof q->srv[0].host, "%s", q->name);
    q->srv[0].port = 5269;
    start_addr(q);
}

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    s2s_op_t *op = arg;
    s2s_query_t *q = op->q;
    int svc = op->idx;
    q->pending--;
    if (settle(q))
        return;
    struct ares_srv_reply *reply = NULL;
    if (status == ARES_SUCCESS) {
        status = ares_parse_srv_reply(abuf, alen, &reply);
        if (status == ARES_SUCCESS && !reply)
            status = ARES_ENODATA;
    }
    q->srv_status[svc] = status;
    if (reply) {
        if (!reply->next && (reply->host[0] == '\0' || strcmp(reply->host, ".") == 0)) {
            q->srv_dot[svc] = 1;
        } else {
            for (struct ares_srv_reply *r = reply; r && q->nsrv < SRV_RAW_MAX; r = r->next) {
                size_t hl = strlen(r->host);
                if (hl && r->host[hl - 1] == '.')
                    hl--;
                if (hl == 0 || hl >= sizeof q->srv[0].host || r->port == 0)
                    continue;
                s2s_srv_t *s = &q->srv[q->nsrv++];
                memcpy(s->host, r->host, hl);
                s->host[hl] = '\0';
                s->priority = r->priority;
                s->weight = r->weight;
                s->port = r->port;
                s->direct_tls = svc == 0;
            }
        }
        ares_free_data(reply);
    }
    if (q->pending == 0)
        srv_done(q);
}

/* An IP literal as the domain (RFC 6120 3.2.1: no DNS): 1 when it was one. */
static int literal_domain(s2s_query_t *q)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    char v6[64];
    size_t dl = strlen(q->domain);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, q->domain, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        add_target(q, (struct sockaddr *)s4, sizeof *s4, 5269, 0, q->domain);
    } else if (dl >= 2 && dl - 2 < sizeof v6 && q->domain[0] == '[' && q->domain[dl - 1] == ']') {
        memcpy(v6, q->domain + 1, dl - 2);
        v6[dl - 2] = '\0';
        if (inet_pton(AF_INET6, v6, &s6->sin6_addr) != 1)
            return 0;
        s6->sin6_family = AF_INET6;
        add_target(q, (struct sockaddr *)s6, sizeof *s6, 5269, 0, q->domain);
    } else {
        return 0;
    }
    finish(q);
    return 1;
}

/* A static host given as an address: its target at once. 1 when it was one. */
static int literal_static(s2s_query_t *q, const s2s_static_host_t *h)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, h->host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        add_target(q, (struct sockaddr *)s4, sizeof *s4, h->port, h->direct_tls, h->host);
    } else if (inet_pton(AF_INET6, h->host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        add_target(q, (struct sockaddr *)s6, sizeof *s6, h->port, h->direct_tls, h->host);
    } else {
        return 0;
    }
    finish(q);
    return 1;
}

s2s_query_t *s2s_resolve(const char *domain, s2s_resolve_cb cb, void *ud)
{
    if (!R.open || R.closing || R.nlive >= S2S_QUERIES_MAX)
        return NULL;
    s2s_query_t *q = xcalloc(1, sizeof *q);
    q->srv = xcalloc(SRV_RAW_MAX, sizeof *q->srv);
    q->cb = cb;
    q->ud = ud;
    q->next = R.live;
    if (R.live)
        R.live->prev = q;
    R.live = q;
    R.nlive++;
    size_t dl = strlen(domain);
    snprintf(q->domain, sizeof q->domain, "%s", domain);
    if (dl == 0 || dl >= sizeof q->domain) {
        fail(q, "%s: not a domain name", dl ? "(too long)" : "(empty)");
        return q;
    }
    for (int i = 0; i < R.nstatics; i++) {
        const s2s_static_host_t *h = &R.statics[i];
        if (strcmp(h->domain, domain) != 0)
            continue;
        q->is_static = 1;
        if (literal_static(q, h))
            return q;
        q->nsrv = 1;
        snprintf(q->srv[0].host, sizeof q->srv[0].host, "%s", h->host);
        q->srv[0].port = h->port;
        q->srv[0].direct_tls = h->direct_tls;
        start_addr(q);
        rearm();
        return q;
    }
    if (literal_domain(q))
        return q;
    /* An internationalised domain goes to DNS in its A-label form (RFC 5890). */
    int ascii = 1;
    for (size_t i = 0; i < dl; i++)
        if ((unsigned char)domain[i] >= 0x80)
            ascii = 0;
    if (ascii) {
        memcpy(q->name, domain, dl + 1);
    } else {
        char *a = NULL;
        if (idna_to_ascii_8z(domain, &a, 0) != IDNA_SUCCESS || strlen(a) >= sizeof q->name) {
            free(a);
            fail(q, "%s: not a valid internationalised domain name", domain);
            return q;
        }
        memcpy(q->name, a, strlen(a) + 1);
        free(a);
    }
    if (!valid_hostname(q->name, strlen(q->name))) {
        fail(q, "%s: not a DNS name", domain);
        return q;
    }
    char srvname[2][300];
    snprintf(srvname[0], sizeof srvname[0], "_xmpps-server._tcp.%s", q->name);
    snprintf(srvname[1], sizeof srvname[1], "_xmpp-server._tcp.%s", q->name);
    q->phase = PH_SRV;
    q->pending = 2;
    for (int i = 0; i < 2; i++) {
        q->ops[i].q = q;
        q->ops[i].idx = i;
        ares_query(R.ch, srvname[i], C_IN, T_SRV, srv_cb, &q->ops[i]);
    }
    rearm();
    return q;
}

void s2s_resolve_cancel(s2s_query_t *q)
{
    if (!q)
        return;
    q->cancelled = 1;
    q->cb = NULL;
    if (q->pending == 0)
        q_free(q); /* done (its delivery was waiting) or never started a lookup */
}

int s2s_resolve_open(evloop_t *loop, char *err, size_t errlen)
{
    s2s_static_host_t *parsed = xcalloc(S2S_STATIC_MAX, sizeof *parsed);
    char servers[1024];
    int n = s2s_static_hosts_parse(config_str("s2s_static_hosts"), parsed, S2S_STATIC_MAX, err,
                                   errlen);
    if (n < 0 || s2s_dns_servers_parse(config_str("s2s_dns_servers"), servers, sizeof servers,
                                       err, errlen) < 0) {
        free(parsed);
        return -1;
    }
    s2s_resolve_close();
    static int lib_init;
    int rc;
    if (!lib_init) {
        if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
            snprintf(err, errlen, "s2s_resolve: c-ares: %s", ares_strerror(rc));
            free(parsed);
            return -1;
        }
        lib_init = 1;
    }
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.timeout = R.timeout_ms;
    o.tries = R.tries;
    o.ndomains = 0; /* no search list: the names asked are complete */
    o.domains = NULL;
    o.sock_state_cb = sock_state_cb;
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS | ARES_OPT_SOCK_STATE_CB;
    if ((rc = ares_init_options(&R.ch, &o, mask)) != ARES_SUCCESS) {
        snprintf(err, errlen, "s2s_resolve: c-ares: %s", ares_strerror(rc));
        R.ch = NULL;
        free(parsed);
        return -1;
    }
    if (servers[0] && (rc = ares_set_servers_ports_csv(R.ch, servers)) != ARES_SUCCESS) {
        snprintf(err, errlen, "s2s_dns_servers: %s", ares_strerror(rc));
        ares_destroy(R.ch);
        R.ch = NULL;
        free(parsed);
        return -1;
    }
    R.loop = loop;
    R.statics = parsed;
    R.nstatics = n;
    R.open = 1;
    R.closing = 0;
    log_debug("s2s_resolve: %d static hosts, DNS servers: %s", n,
              servers[0] ? servers : "from resolv.conf");
    return 0;
}

void s2s_resolve_close(void)
{
    if (!R.open)
        return;
    R.closing = 1;
    /* Every query is cancelled; those c-ares still holds are freed by their callbacks,
     * which ares_destroy runs (ARES_EDESTRUCTION). */
    for (s2s_query_t *q = R.live, *next; q; q = next) {
        next = q->next;
        s2s_resolve_cancel(q);
    }
    ares_destroy(R.ch);
    R.ch = NULL;
    evloop_cancel(R.loop, &R.tmo);
    if (R.live)
        log_error("s2s_resolve: %d queries left after close", R.nlive);
    R.open = 0;
    R.closing = 0;
    R.nstatics = 0;
    xfree(&R.statics);
}
