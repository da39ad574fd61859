/* s2s_resolve: where to connect for a remote domain (RFC 6120 3.2, XEP-0368), and the
 * Server Dialback key (XEP-0185).
 *
 * Order of the targets:
 * - a domain listed in s2s_static_hosts gets only its static target (no DNS for the domain;
 *   a host name there is resolved with A/AAAA). Syntax: comma-separated entries
 *   `domain=host:port`, host a name, an IPv4 literal or `[v6]`; an entry may start with
 *   `tls:` (`domain=tls:host:port`) to use XEP-0368 direct TLS to that target.
 * - otherwise the SRV records of _xmpps-server._tcp.DOMAIN (direct TLS) and
 *   _xmpp-server._tcp.DOMAIN (STARTTLS), merged, ordered by priority then by the weighted
 *   random choice of RFC 2782, each target resolved to its A/AAAA addresses;
 *   a single SRV record with target "." means the service is decidedly not available
 *   (n == 0 when no record of the other service is left, and no A/AAAA fallback)
 *   (XEP-0368: a "." for _xmpps-server alone leaves the _xmpp-server records in use);
 * - no SRV record at all (NXDOMAIN or no data for both names, or an SRV lookup that failed
 *   otherwise, e.g. SERVFAIL: RFC 6120 3.2.2): the domain's own A/AAAA addresses, port 5269,
 *   STARTTLS. An SRV lookup that timed out (and no records from the other) ends with n == 0
 *   instead: the same server would not answer the A/AAAA questions either;
 * - a domain that is an IP literal (a.b.c.d or [v6]) is its own target, port 5269.
 * Targets are in SRV order, each SRV target's addresses in the order c-ares sorts them
 * (RFC 6724); an address, port and kind seen before is not repeated; at most
 * S2S_TARGETS_MAX. An internationalised domain is asked for in its A-label form.
 * Everything runs on c-ares inside the event loop: no call blocks. c-ares waits 2 s for an
 * answer, then 4 s for a second try (per server), so a resolution that runs into a mute
 * server ends within about 6 s per step (SRV, then the targets' addresses). */
#ifndef C2S_S2S_RESOLVE_H
#define C2S_S2S_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>

#include "config.h"
#include "evloop.h"

#define S2S_TARGETS_MAX 16
/* Resolutions in flight at once; s2s_resolve returns NULL beyond it. */
#define S2S_QUERIES_MAX 256

typedef struct {
    struct sockaddr_storage addr; /* address and port to connect to */
    socklen_t addrlen;
    int direct_tls;               /* XEP-0368 (_xmpps-server): TLS from the first byte */
    char host[256];               /* the name it came from (SRV target, static host or the domain), for logs */
} s2s_target_t;

/* n == 0: no way to reach the domain (NXDOMAIN, no records, resolver failure); `why` then
 * says which, for logs and the error text (NULL when n > 0). targets is valid during the
 * call only. */
typedef void (*s2s_resolve_cb)(void *ud, const s2s_target_t *targets, int n, const char *why);
typedef struct s2s_query s2s_query_t;

/* Reads s2s_static_hosts and s2s_dns_servers; 0, or -1 with a message naming the bad key
 * in err. */
int s2s_resolve_open(evloop_t *loop, char *err, size_t errlen);
/* Cancels every query; no callback runs after. */
void s2s_resolve_close(void);
/* Starts resolving `domain` (prepared, lower case); cb runs later from the loop, never
 * before this returns, exactly once unless cancelled. NULL when too many queries are in
 * flight (S2S_QUERIES_MAX, cancelled ones included until c-ares lets go of them) or the
 * module is not open. A domain that is not a DNS name gets n == 0 through cb. An IP
 * literal (a.b.c.d, [v6]) is its own target on port 5269. */
s2s_query_t *s2s_resolve(const char *domain, s2s_resolve_cb cb, void *ud);
/* Cancels q (its callback never runs). Not to be called for a query whose callback ran. */
void s2s_resolve_cancel(s2s_query_t *q);
extern const config_key_t s2s_resolve_config_keys[];

/* ---- parts exposed for the unit tests ---- */

/* One entry of s2s_static_hosts. */
typedef struct {
    char domain[256];
    char host[256]; /* a name, an IPv4 literal, or an IPv6 literal without brackets */
    unsigned short port;
    int direct_tls;
} s2s_static_host_t;

/* Parses an s2s_static_hosts value into at most `max` entries; returns the number, or -1
 * with a message (naming the entry) in err. */
int s2s_static_hosts_parse(const char *value, s2s_static_host_t *out, int max, char *err,
                           size_t errlen);
/* Parses an s2s_dns_servers value (comma-separated ip:port, [v6]:port) into the c-ares
 * "host:port" CSV form written to out; 0, or -1 with a message in err. */
int s2s_dns_servers_parse(const char *value, char *out, size_t outlen, char *err,
                          size_t errlen);

/* One SRV record as the resolver orders them. */
typedef struct {
    char host[256];
    unsigned short priority, weight, port;
    int direct_tls;
} s2s_srv_t;
/* Orders recs in place by RFC 2782: ascending priority; within one priority the weighted
 * random choice (zero weights first, then a draw in [0, sum of weights]). rnd(ud) returns
 * a uniform 32-bit number (NULL: a cryptographic random source). */
void s2s_srv_order(s2s_srv_t *recs, int n, unsigned (*rnd)(void *), void *ud);
/* DNS timing for the tests: per-try timeout in ms and tries per server, used by the next
 * s2s_resolve_open (defaults 2000 and 2). */
void s2s_resolve_set_timing(int timeout_ms, int tries);

/* ---- XEP-0185 ---- */

/* The dialback key: hex(HMAC-SHA256(hex(SHA256(secret)), "receiving originating stream_id"))
 * (lower-case hex, 64 digits and a NUL). */
void s2s_dialback_key(const char *secret, const char *receiving, const char *originating,
                      const char *stream_id, char out[65]);

#endif
