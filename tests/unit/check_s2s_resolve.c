/* The frontend's server-to-server resolver (c2s-frontend/s2s_resolve.c): s2s_static_hosts
 * and s2s_dns_servers parsing, the XEP-0185 dialback key, RFC 2782 ordering, and whole
 * resolutions through c-ares against a small DNS server on 127.0.0.1 that runs in the same
 * event loop (fake_dns below: SRV, A and AAAA records from a table, NXDOMAIN and silence by
 * name). */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../c2s-frontend/s2s_resolve.h"
#include "config.h"
#include "evloop.h"
#include "suites.h"

/* ---- parsing ---- */

START_TEST(test_static_hosts_good)
{
    s2s_static_host_t h[8];
    char err[256] = "";
    int n = s2s_static_hosts_parse(
        " a.test=host.a.test:5269, B.Test = [::1]:5270,c.test=tls:10.0.0.1:5223 ,d.test=x:1", h, 8,
        err, sizeof err);
    ck_assert_msg(n == 4, "%d %s", n, err);
    ck_assert_str_eq(h[0].domain, "a.test");
    ck_assert_str_eq(h[0].host, "host.a.test");
    ck_assert_int_eq(h[0].port, 5269);
    ck_assert_int_eq(h[0].direct_tls, 0);
    ck_assert_str_eq(h[1].domain, "b.test");
    ck_assert_str_eq(h[1].host, "::1");
    ck_assert_int_eq(h[1].port, 5270);
    ck_assert_str_eq(h[2].domain, "c.test");
    ck_assert_str_eq(h[2].host, "10.0.0.1");
    ck_assert_int_eq(h[2].port, 5223);
    ck_assert_int_eq(h[2].direct_tls, 1);
    ck_assert_str_eq(h[3].host, "x");
    ck_assert_int_eq(h[3].port, 1);
    ck_assert_int_eq(s2s_static_hosts_parse("", h, 8, err, sizeof err), 0);
    ck_assert_int_eq(s2s_static_hosts_parse("  ", h, 8, err, sizeof err), 0);
}
END_TEST

static const char *const bad_static[] = {
    "a.test",                         /* no '=' */
    "a.test=host.test",               /* no port */
    "a.test=::1:5269",                /* IPv6 without brackets */
    "a.test=[::1:5269",               /* unclosed bracket */
    "a.test=[::1]5269",               /* no ':' after ']' */
    "a.test=[nothex]:5269",           /* not an IPv6 address */
    "a.test=h.test:0",                /* port 0 */
    "a.test=h.test:65536",            /* port too large */
    "a.test=h.test:52a",              /* port not a number */
    "a.test=h.test:",                 /* empty port */
    "a.test=:5269",                   /* empty host */
    "=h.test:5269",                   /* empty domain */
    "a..test=h.test:5269",            /* empty label */
    "a test=h.test:5269",             /* space in the domain */
    "a.test=bad host:5269",           /* space in the host */
    "a.test=h.test:1,a.test=h.test:2", /* twice */
    "a.test=h.test:1,",               /* empty entry */
    "a.test=h.test:1,,b.test=h:2",    /* empty entry */
    "a.test=tls:",                    /* nothing after tls: */
};

START_TEST(test_static_hosts_bad)
{
    s2s_static_host_t h[8];
    char err[256] = "";
    const char *v = bad_static[_i];
    ck_assert_msg(s2s_static_hosts_parse(v, h, 8, err, sizeof err) == -1, "accepted '%s'", v);
    ck_assert_msg(strstr(err, "s2s_static_hosts") != NULL, "'%s': %s", v, err);
}
END_TEST

START_TEST(test_dns_servers)
{
    char out[256], err[256] = "";
    ck_assert_int_eq(s2s_dns_servers_parse("", out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(
        s2s_dns_servers_parse("127.0.0.1:5353, [::1]:53,10.0.0.1", out, sizeof out, err, sizeof err),
        0);
    ck_assert_str_eq(out, "127.0.0.1:5353,[::1]:53,10.0.0.1:53");
    const char *bad[] = {"localhost:53", "1.2.3.4:0", "[::1", "::1", "1.2.3.4:53,", "1.2.3:53"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(s2s_dns_servers_parse(bad[i], out, sizeof out, err, sizeof err) == -1,
                      "accepted '%s'", bad[i]);
        ck_assert_msg(strstr(err, "s2s_dns_servers") != NULL, "%s", err);
    }
}
END_TEST

/* ---- XEP-0185 ---- */

START_TEST(test_dialback_key)
{
    char key[65];
    /* the example of XEP-0185 section 3 */
    s2s_dialback_key("s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org", "D60000229F", key);
    ck_assert_str_eq(key, "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643");
    /* every input matters */
    char other[65];
    s2s_dialback_key("s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org", "D60000229G", other);
    ck_assert_str_ne(key, other);
    s2s_dialback_key("s3cr3tf0rd14lb4cK", "xmpp.example.com", "example.org", "D60000229F", other);
    ck_assert_str_ne(key, other);
    s2s_dialback_key("s3cr3tf0rd14lb4ck", "example.org", "xmpp.example.com", "D60000229F", other);
    ck_assert_str_ne(key, other);
}
END_TEST

/* ---- RFC 2782 ordering ---- */

static unsigned fixed_rnd(void *ud)
{
    unsigned **p = ud;
    return *(*p)++;
}

START_TEST(test_srv_order)
{
    s2s_srv_t r[5] = {
        {"p10", 10, 0, 1, 0}, {"p1-w10", 1, 10, 2, 0}, {"p1-w0", 1, 0, 3, 0},
        {"p1-w30", 1, 30, 4, 1}, {"p5", 5, 0, 5, 0},
    };
    /* priority 1 holds, after the zero weight first: w0 (run 0), w10 (run 10), w30 (run
     * 40). A draw of 25 (of 0..40) picks w30; then of 0..10 a draw of 0 picks w0, then w10. */
    unsigned draws[] = {25, 0, 7}, *p = draws;
    s2s_srv_order(r, 5, fixed_rnd, &p);
    ck_assert_str_eq(r[0].host, "p1-w30");
    ck_assert_str_eq(r[1].host, "p1-w0");
    ck_assert_str_eq(r[2].host, "p1-w10");
    ck_assert_str_eq(r[3].host, "p5");
    ck_assert_str_eq(r[4].host, "p10");
    ck_assert_int_eq(r[0].direct_tls, 1);
    /* a draw of 0 picks the zero weight; 1..10 the weight 10 */
    s2s_srv_t s[3] = {{"w10", 1, 10, 1, 0}, {"w30", 1, 30, 1, 0}, {"w0", 1, 0, 1, 0}};
    unsigned d2[] = {5, 0}, *p2 = d2;
    s2s_srv_order(s, 3, fixed_rnd, &p2);
    ck_assert_str_eq(s[0].host, "w10");
    ck_assert_str_eq(s[1].host, "w0");
    ck_assert_str_eq(s[2].host, "w30");
    /* with the real random source, the heavy one comes first most of the time, the priority
     * order always */
    int heavy_first = 0;
    for (int i = 0; i < 200; i++) {
        s2s_srv_t t[3] = {{"light", 1, 1, 1, 0}, {"heavy", 1, 1000, 1, 0}, {"later", 2, 0, 1, 0}};
        s2s_srv_order(t, 3, NULL, NULL);
        ck_assert_str_eq(t[2].host, "later");
        heavy_first += strcmp(t[0].host, "heavy") == 0;
    }
    ck_assert_int_gt(heavy_first, 150);
}
END_TEST

/* ---- a DNS server in the loop ---- */

enum { T_A = 1, T_AAAA = 28, T_SRVREC = 33 };

typedef struct {
    const char *name;
    int type;
    const char *data; /* A/AAAA: the address; SRV: "prio weight port target" */
} rr_t;

static const rr_t zone[] = {
    /* ordered.test: STARTTLS at priorities 1 and 10, direct TLS at 5 */
    {"_xmpp-server._tcp.ordered.test", T_SRVREC, "10 0 5269 b.ordered.test"},
    {"_xmpp-server._tcp.ordered.test", T_SRVREC, "1 0 5269 a.ordered.test."},
    {"_xmpps-server._tcp.ordered.test", T_SRVREC, "5 0 5270 tls.ordered.test"},
    {"a.ordered.test", T_A, "192.0.2.1"},
    {"tls.ordered.test", T_A, "192.0.2.2"},
    {"b.ordered.test", T_A, "192.0.2.3"},
    {"b.ordered.test", T_AAAA, "2001:db8::3"},
    {"ordered.test", T_A, "192.0.2.99"}, /* not used: there are SRV records */
    /* dot.test: the service is decidedly not there, though the domain has an address */
    {"_xmpp-server._tcp.dot.test", T_SRVREC, "0 0 0 ."},
    {"dot.test", T_A, "192.0.2.98"},
    /* dots.test: neither service */
    {"_xmpp-server._tcp.dots.test", T_SRVREC, "0 0 0 ."},
    {"_xmpps-server._tcp.dots.test", T_SRVREC, "0 0 0 ."},
    {"dots.test", T_A, "192.0.2.98"},
    /* tlsdot.test: no direct TLS, STARTTLS on 5299 */
    {"_xmpps-server._tcp.tlsdot.test", T_SRVREC, "0 0 0 ."},
    {"_xmpp-server._tcp.tlsdot.test", T_SRVREC, "0 0 5299 x.tlsdot.test"},
    {"x.tlsdot.test", T_A, "192.0.2.7"},
    /* plain.test: no SRV, an A and an AAAA */
    {"plain.test", T_A, "192.0.2.10"},
    {"plain.test", T_AAAA, "2001:db8::10"},
    /* noaddr.test: SRV to a target without addresses, and one that resolves */
    {"_xmpp-server._tcp.partial.test", T_SRVREC, "1 0 5269 gone.partial.test"},
    {"_xmpp-server._tcp.partial.test", T_SRVREC, "2 0 5269 here.partial.test"},
    {"here.partial.test", T_A, "192.0.2.20"},
    /* empty.test exists (an A for www only): no SRV, no A/AAAA of its own */
    {"www.empty.test", T_A, "192.0.2.30"},
    /* the static host's name */
    {"relay.static.test", T_A, "192.0.2.40"},
    {"_xmpp-server._tcp.static.test", T_SRVREC, "0 0 5269 srv.static.test"},
    {"srv.static.test", T_A, "192.0.2.41"},
    /* many.test: more SRV records than S2S_TARGETS_MAX, each with an address */
    {"_xmpp-server._tcp.many.test", T_SRVREC, "1 0 5269 m.many.test"},
    {"_xmpps-server._tcp.many.test", T_SRVREC, "2 0 5270 m.many.test"},
    /* an internationalised domain, asked for in its A-label form */
    {"xn--bcher-kva.test", T_A, "192.0.2.60"},
    /* servfail.test: its SRV names fail (SERVFAIL), its address answers */
    {"servfail.test", T_A, "192.0.2.70"},
};

static const char *const many_addrs[] = {
    "192.0.2.101", "192.0.2.102", "192.0.2.103", "192.0.2.104", "192.0.2.105", "192.0.2.106",
    "192.0.2.107", "192.0.2.108", "192.0.2.109", "192.0.2.110", "192.0.2.111",
};

static int dns_fd = -1;
static int dns_queries; /* questions the server saw */

static int put_name(unsigned char *p, const char *name)
{
    int n = 0;
    while (*name && strcmp(name, ".") != 0) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[n++] = (unsigned char)l;
        memcpy(p + n, name, l);
        n += (int)l;
        name += l;
        if (*name == '.')
            name++;
    }
    p[n++] = 0;
    return n;
}

static int put_rr(unsigned char *p, int type, const char *data)
{
    int n = 0;
    p[n++] = 0xc0; /* the question's name */
    p[n++] = 12;
    p[n++] = 0;
    p[n++] = (unsigned char)type;
    p[n++] = 0;
    p[n++] = 1; /* IN */
    p[n++] = 0, p[n++] = 0, p[n++] = 0, p[n++] = 60;
    unsigned char *rdlen = p + n;
    n += 2;
    int start = n;
    if (type == T_A) {
        inet_pton(AF_INET, data, p + n);
        n += 4;
    } else if (type == T_AAAA) {
        inet_pton(AF_INET6, data, p + n);
        n += 16;
    } else {
        unsigned prio, weight, port;
        char target[256];
        sscanf(data, "%u %u %u %255s", &prio, &weight, &port, target);
        p[n++] = (unsigned char)(prio >> 8), p[n++] = (unsigned char)prio;
        p[n++] = (unsigned char)(weight >> 8), p[n++] = (unsigned char)weight;
        p[n++] = (unsigned char)(port >> 8), p[n++] = (unsigned char)port;
        n += put_name(p + n, target);
    }
    rdlen[0] = (unsigned char)((n - start) >> 8);
    rdlen[1] = (unsigned char)(n - start);
    return n;
}

static int name_ends(const char *name, const char *suffix)
{
    size_t a = strlen(name), b = strlen(suffix);
    return a >= b && strcmp(name + a - b, suffix) == 0 && (a == b || name[a - b - 1] == '.');
}

static void dns_cb(evloop_t *loop, int fd, unsigned events, void *ud)
{
    (void)loop;
    (void)events;
    (void)ud;
    unsigned char q[512], a[1500];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t len = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (len < 12)
        return;
    dns_queries++;
    /* the question: labels, type, class */
    char name[256];
    size_t nl = 0;
    int off = 12;
    while (off < len && q[off]) {
        int l = q[off++];
        if (off + l > len || nl + (size_t)l + 1 >= sizeof name)
            return;
        if (nl)
            name[nl++] = '.';
        for (int i = 0; i < l; i++)
            name[nl++] = (char)tolower(q[off + i]);
        off += l;
    }
    name[nl] = '\0';
    off++;
    if (off + 4 > len)
        return;
    int type = q[off] << 8 | q[off + 1];
    int qend = off + 4;
    if (name_ends(name, "slow.test"))
        return; /* never answers */
    memcpy(a, q, (size_t)qend);
    a[2] = 0x84 | (q[2] & 1); /* QR, AA, RD copied */
    a[3] = 0x80;              /* RA, NOERROR */
    a[6] = a[7] = a[8] = a[9] = a[10] = a[11] = 0; /* no answers, authority or additional */
    int n = qend, count = 0;
    if (name_ends(name, "nx.test")) {
        a[3] |= 3; /* NXDOMAIN */
    } else if (name[0] == '_' && name_ends(name, "servfail.test")) {
        a[3] |= 2; /* SERVFAIL */
    } else if (strcmp(name, "m.many.test") == 0 && type == T_A) {
        for (size_t i = 0; i < sizeof many_addrs / sizeof many_addrs[0]; i++, count++)
            n += put_rr(a + n, T_A, many_addrs[i]);
    } else {
        int known = 0;
        for (size_t i = 0; i < sizeof zone / sizeof zone[0]; i++) {
            if (name_ends(zone[i].name, name))
                known = 1; /* the name exists (maybe with records of other types) */
            if (strcmp(zone[i].name, name) == 0 && zone[i].type == type) {
                n += put_rr(a + n, type, zone[i].data);
                count++;
            }
        }
        if (!known && !name_ends(name, "many.test"))
            a[3] |= 3;
    }
    a[7] = (unsigned char)count;
    sendto(fd, a, (size_t)n, 0, (struct sockaddr *)&from, fl);
}

/* ---- resolutions ---- */

typedef struct {
    int calls;
    int n;
    s2s_target_t t[S2S_TARGETS_MAX];
    char why[300];
} result_t;

static evloop_t *loop;
static int stop_after; /* callbacks to wait for */
static int calls_seen;

static void on_result(void *ud, const s2s_target_t *targets, int n, const char *why)
{
    result_t *r = ud;
    r->calls++;
    r->n = n;
    memcpy(r->t, targets, (size_t)n * sizeof *targets);
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
    if (n == 0)
        ck_assert_ptr_nonnull(why);
    if (++calls_seen >= stop_after)
        evloop_stop(loop);
}

static int guard_fired;
static void guard_cb(evloop_t *l, void *ud)
{
    (void)ud;
    guard_fired = 1;
    evloop_stop(l);
}

/* Runs the loop until `n` more callbacks ran (or a guard of 10 s, which fails the test). */
static void wait_calls(int n)
{
    stop_after = calls_seen + n;
    guard_fired = 0;
    ev_timer_t *g = evloop_timer(loop, 10000, guard_cb, NULL);
    evloop_run(loop);
    ck_assert_msg(!guard_fired, "no answer");
    evloop_cancel(loop, &g);
}

static void open_with(const char *statics)
{
    char err[256], servers[64];
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(dns_fd, (struct sockaddr *)&sa, &sl);
    snprintf(servers, sizeof servers, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    ck_assert_int_eq(config_set("s2s_dns_servers", servers, "test", err, sizeof err), 0);
    ck_assert_int_eq(config_set("s2s_static_hosts", statics, "test", err, sizeof err), 0);
    ck_assert_msg(s2s_resolve_open(loop, err, sizeof err) == 0, "%s", err);
}

static void setup(void)
{
    char err[256];
    config_reset();
    config_register(config_base_keys);
    config_register(s2s_resolve_config_keys);
    ck_assert_int_eq(config_load(NULL, err, sizeof err), 0);
    loop = evloop_new();
    calls_seen = 0;
    dns_queries = 0;
    dns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(dns_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    evloop_watch(loop, dns_fd, EV_READ, dns_cb, NULL);
    /* a lost answer is a timeout after 300 ms, one try */
    s2s_resolve_set_timing(300, 1);
    open_with("static.test=relay.static.test:5999,lit.test=[::1]:5998,tlsstatic.test=tls:192.0.2.50:5223,"
              "gonestatic.test=host.nx.test:5269,slowstatic.test=host.slow.test:5269");
}

static void teardown(void)
{
    s2s_resolve_close();
    evloop_unwatch(loop, dns_fd);
    close(dns_fd);
    evloop_destroy(&loop);
    config_free();
    config_reset();
}

static void addr_text(const s2s_target_t *t, char *out, size_t n)
{
    char a[64];
    if (t->addr.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)&t->addr;
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
        snprintf(out, n, "%s:%u%s", a, (unsigned)ntohs(s->sin_port), t->direct_tls ? "/tls" : "");
    } else {
        const struct sockaddr_in6 *s = (const void *)&t->addr;
        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof a);
        snprintf(out, n, "[%s]:%u%s", a, (unsigned)ntohs(s->sin6_port), t->direct_tls ? "/tls" : "");
    }
}

static result_t resolve(const char *domain)
{
    result_t r;
    memset(&r, 0, sizeof r);
    s2s_query_t *q = s2s_resolve(domain, on_result, &r);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(r.calls, 0); /* never before s2s_resolve returns */
    wait_calls(1);
    ck_assert_int_eq(r.calls, 1);
    return r;
}

#define ASSERT_TARGET(r, i, text, hostname)                                                        \
    do {                                                                                           \
        char got_[128];                                                                            \
        addr_text(&(r).t[i], got_, sizeof got_);                                                   \
        ck_assert_str_eq(got_, text);                                                              \
        ck_assert_str_eq((r).t[i].host, hostname);                                                 \
    } while (0)

START_TEST(test_srv_order_and_kinds)
{
    result_t r = resolve("ordered.test");
    ck_assert_msg(r.n == 4, "n=%d %s", r.n, r.why);
    ASSERT_TARGET(r, 0, "192.0.2.1:5269", "a.ordered.test");
    ASSERT_TARGET(r, 1, "192.0.2.2:5270/tls", "tls.ordered.test");
    ck_assert_int_eq(r.t[1].direct_tls, 1);
    ck_assert_int_eq(r.t[0].direct_tls, 0);
    /* b's two addresses, in the order address selection gives them */
    char x[128], y[128];
    addr_text(&r.t[2], x, sizeof x);
    addr_text(&r.t[3], y, sizeof y);
    ck_assert_msg((strcmp(x, "192.0.2.3:5269") == 0 && strcmp(y, "[2001:db8::3]:5269") == 0) ||
                      (strcmp(y, "192.0.2.3:5269") == 0 && strcmp(x, "[2001:db8::3]:5269") == 0),
                  "%s %s", x, y);
    ck_assert_str_eq(r.t[2].host, "b.ordered.test");
    ck_assert_int_eq(r.t[2].addrlen, r.t[2].addr.ss_family == AF_INET
                                         ? (socklen_t)sizeof(struct sockaddr_in)
                                         : (socklen_t)sizeof(struct sockaddr_in6));
}
END_TEST

START_TEST(test_srv_dot_means_not_available)
{
    result_t r = resolve("dot.test");
    ck_assert_int_eq(r.n, 0);
    ck_assert_msg(strstr(r.why, "dot.test") && strstr(r.why, "\".\""), "%s", r.why);
    r = resolve("dots.test");
    ck_assert_int_eq(r.n, 0);
    /* "." for direct TLS only: the STARTTLS records are used */
    r = resolve("tlsdot.test");
    ck_assert_int_eq(r.n, 1);
    ASSERT_TARGET(r, 0, "192.0.2.7:5299", "x.tlsdot.test");
}
END_TEST

START_TEST(test_fallback_to_a_aaaa)
{
    result_t r = resolve("plain.test");
    ck_assert_msg(r.n == 2, "n=%d %s", r.n, r.why);
    char x[128], y[128];
    addr_text(&r.t[0], x, sizeof x);
    addr_text(&r.t[1], y, sizeof y);
    ck_assert_msg((strcmp(x, "192.0.2.10:5269") == 0 && strcmp(y, "[2001:db8::10]:5269") == 0) ||
                      (strcmp(y, "192.0.2.10:5269") == 0 && strcmp(x, "[2001:db8::10]:5269") == 0),
                  "%s %s", x, y);
    ck_assert_str_eq(r.t[0].host, "plain.test");
    ck_assert_int_eq(r.t[0].direct_tls, 0);
    /* SRV lookups that fail (not a timeout): the A/AAAA fallback too (RFC 6120 3.2.2) */
    r = resolve("servfail.test");
    ck_assert_msg(r.n == 1, "%s", r.why);
    ASSERT_TARGET(r, 0, "192.0.2.70:5269", "servfail.test");
    /* a domain with neither SRV nor addresses */
    r = resolve("empty.test");
    ck_assert_int_eq(r.n, 0);
    ck_assert_msg(strstr(r.why, "empty.test") != NULL, "%s", r.why);
}
END_TEST

START_TEST(test_srv_target_without_address)
{
    result_t r = resolve("partial.test");
    ck_assert_int_eq(r.n, 1);
    ASSERT_TARGET(r, 0, "192.0.2.20:5269", "here.partial.test");
}
END_TEST

START_TEST(test_cap)
{
    /* 11 addresses for each of two SRV records: 16 targets, the STARTTLS ones first */
    result_t r = resolve("many.test");
    ck_assert_int_eq(r.n, S2S_TARGETS_MAX);
    for (int i = 0; i < 11; i++)
        ck_assert_int_eq(r.t[i].direct_tls, 0);
    for (int i = 11; i < S2S_TARGETS_MAX; i++)
        ck_assert_int_eq(r.t[i].direct_tls, 1);
}
END_TEST

START_TEST(test_nxdomain)
{
    result_t r = resolve("nope.nx.test");
    ck_assert_int_eq(r.n, 0);
    ck_assert_msg(strstr(r.why, "nope.nx.test") && strstr(r.why, "NXDOMAIN"), "%s", r.why);
}
END_TEST

START_TEST(test_timeout)
{
    result_t r = resolve("quiet.slow.test");
    ck_assert_int_eq(r.n, 0);
    ck_assert_msg(strstr(r.why, "timeout") != NULL, "%s", r.why);
}
END_TEST

START_TEST(test_static_hosts)
{
    /* a name: resolved with A/AAAA, never the domain's own SRV */
    int before = dns_queries;
    result_t r = resolve("static.test");
    ck_assert_int_eq(r.n, 1);
    ASSERT_TARGET(r, 0, "192.0.2.40:5999", "relay.static.test");
    ck_assert_int_le(dns_queries - before, 2); /* A and AAAA of the relay, nothing else */
    /* literal addresses: no DNS at all */
    before = dns_queries;
    r = resolve("lit.test");
    ck_assert_int_eq(r.n, 1);
    ASSERT_TARGET(r, 0, "[::1]:5998", "::1");
    r = resolve("tlsstatic.test");
    ck_assert_int_eq(r.n, 1);
    ASSERT_TARGET(r, 0, "192.0.2.50:5223/tls", "192.0.2.50");
    ck_assert_int_eq(dns_queries, before);
    /* a static host that does not resolve: no other way is tried */
    r = resolve("gonestatic.test");
    ck_assert_int_eq(r.n, 0);
    ck_assert_msg(strstr(r.why, "host.nx.test") != NULL, "%s", r.why);
}
END_TEST

START_TEST(test_ip_literal_domain)
{
    result_t r = resolve("192.0.2.77");
    ck_assert_int_eq(r.n, 1);
    ASSERT_TARGET(r, 0, "192.0.2.77:5269", "192.0.2.77");
    r = resolve("[2001:db8::77]");
    ck_assert_int_eq(r.n, 1);
    ASSERT_TARGET(r, 0, "[2001:db8::77]:5269", "[2001:db8::77]");
    r = resolve("bad name.test");
    ck_assert_int_eq(r.n, 0);
}
END_TEST

START_TEST(test_idn_domain)
{
    result_t r = resolve("b\xc3\xbc" "cher.test"); /* bücher.test */
    ck_assert_msg(r.n == 1, "%s", r.why);
    ASSERT_TARGET(r, 0, "192.0.2.60:5269", "xn--bcher-kva.test");
}
END_TEST

START_TEST(test_cancel)
{
    result_t gone, kept, ready;
    memset(&gone, 0, sizeof gone);
    memset(&kept, 0, sizeof kept);
    memset(&ready, 0, sizeof ready);
    /* one waiting on DNS, one whose answer is ready but not delivered yet: both cancelled */
    s2s_query_t *q1 = s2s_resolve("cancel.slow.test", on_result, &gone);
    s2s_query_t *q2 = s2s_resolve("lit.test", on_result, &ready);
    s2s_query_t *q3 = s2s_resolve("plain.test", on_result, &kept);
    ck_assert_ptr_nonnull(q1);
    ck_assert_ptr_nonnull(q2);
    ck_assert_ptr_nonnull(q3);
    s2s_resolve_cancel(q1);
    s2s_resolve_cancel(q2);
    wait_calls(1);
    ck_assert_int_eq(kept.calls, 1);
    /* q1's DNS times out meanwhile (300 ms): still no callback */
    result_t late = resolve("later.slow.test");
    ck_assert_int_eq(late.n, 0);
    ck_assert_int_eq(gone.calls, 0);
    ck_assert_int_eq(ready.calls, 0);
}
END_TEST

START_TEST(test_bound_and_close)
{
    static result_t rs[S2S_QUERIES_MAX + 1];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < S2S_QUERIES_MAX; i++) {
        char d[64];
        snprintf(d, sizeof d, "d%d.slow.test", i);
        ck_assert_ptr_nonnull(s2s_resolve(d, on_result, &rs[i]));
    }
    ck_assert_ptr_null(s2s_resolve("one-more.slow.test", on_result, &rs[S2S_QUERIES_MAX]));
    /* and one in the address phase (a static host's A/AAAA), from a fresh start */
    s2s_resolve_close();
    open_with("slowstatic.test=host.slow.test:5269");
    for (int i = 0; i < S2S_QUERIES_MAX; i++) {
        char d[64];
        snprintf(d, sizeof d, "d%d.slow.test", i);
        ck_assert_ptr_nonnull(s2s_resolve(i ? d : "slowstatic.test", on_result, &rs[i]));
    }
    /* let the questions go out, then close with all of them in flight: no callback */
    ev_timer_t *t = evloop_timer(loop, 50, guard_cb, NULL);
    evloop_run(loop);
    (void)t;
    s2s_resolve_close();
    ck_assert_ptr_null(s2s_resolve("plain.test", on_result, &rs[0]));
    for (int i = 0; i <= S2S_QUERIES_MAX; i++)
        ck_assert_int_eq(rs[i].calls, 0);
    ck_assert_int_eq(calls_seen, 0);
    /* open again: it works */
    open_with("");
    result_t r = resolve("plain.test");
    ck_assert_int_eq(r.n, 2);
}
END_TEST

START_TEST(test_open_rejects_bad_keys)
{
    char err[256] = "";
    s2s_resolve_close();
    ck_assert_int_eq(config_set("s2s_static_hosts", "a.test=h.test", "test", err, sizeof err), 0);
    ck_assert_int_eq(s2s_resolve_open(loop, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "s2s_static_hosts") != NULL, "%s", err);
    ck_assert_int_eq(config_set("s2s_static_hosts", "", "test", err, sizeof err), 0);
    ck_assert_int_eq(config_set("s2s_dns_servers", "dns.example:53", "test", err, sizeof err), 0);
    ck_assert_int_eq(s2s_resolve_open(loop, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "s2s_dns_servers") != NULL, "%s", err);
    /* IPv6 servers and several of them are taken */
    ck_assert_int_eq(config_set("s2s_dns_servers", "[::1]:5353, 127.0.0.1", "test", err, sizeof err), 0);
    ck_assert_msg(s2s_resolve_open(loop, err, sizeof err) == 0, "%s", err);
}
END_TEST

Suite *make_s2s_resolve_suite(void)
{
    Suite *s = suite_create("s2s_resolve");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_static_hosts_good);
    tcase_add_loop_test(tc, test_static_hosts_bad, 0, (int)(sizeof bad_static / sizeof bad_static[0]));
    tcase_add_test(tc, test_dns_servers);
    tcase_add_test(tc, test_dialback_key);
    tcase_add_test(tc, test_srv_order);
    suite_add_tcase(s, tc);
    tc = tcase_create("resolve");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_srv_order_and_kinds);
    tcase_add_test(tc, test_srv_dot_means_not_available);
    tcase_add_test(tc, test_fallback_to_a_aaaa);
    tcase_add_test(tc, test_srv_target_without_address);
    tcase_add_test(tc, test_cap);
    tcase_add_test(tc, test_nxdomain);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_static_hosts);
    tcase_add_test(tc, test_ip_literal_domain);
    tcase_add_test(tc, test_idn_domain);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_bound_and_close);
    tcase_add_test(tc, test_open_rejects_bad_keys);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
