/* The server-to-server stream (s2s.h): header, features, STARTTLS, SASL EXTERNAL with the
 * peer's certificate (XEP-0178), and the stanzas of an authenticated inbound stream, which
 * go to the router as IPC_S2S_IN. The outbound side of the same stream (we are the
 * initiating server) is here too; which connection a stanza takes is s2s_out.c's. */
#include "s2s.h"

#include <idna.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "log.h"
#include "s2s_out.h"
#include "s2s_resolve.h"
#include "scram.h"
#include "stanza.h"
#include "tls.h"
#include "util.h"

/* SASL attempts an inbound stream may fail before it is ended. */
#define S2S_SASL_TRIES 2

const config_key_t s2s_config_keys[] = {
    CONFIG_STR("s2s_listen", "", "address and port for other servers, e.g. 0.0.0.0:5269 (empty: no server-to-server)"),
    CONFIG_STR("s2s_tls_listen", "", "address and port for other servers with XEP-0368 direct TLS, e.g. 0.0.0.0:5270 (empty: off)"),
    CONFIG_BOOL("s2s_require_encryption", "true", "server connections must use TLS (STARTTLS required)"),
    CONFIG_STR("s2s_ca_file", "", "PEM CA certificates that vouch for other servers (empty: the system store)"),
    CONFIG_BOOL("s2s_secure_auth", "true", "only servers whose certificate verifies (SASL EXTERNAL); false: Server Dialback (XEP-0220) where it does not"),
    CONFIG_STR("s2s_dialback_secret", "", "the secret dialback keys are made from, the same on every s2s frontend (empty: random per process)"),
    CONFIG_INT("s2s_idle_timeout", "600", 1, 86400, "seconds a server connection may stay idle before it is closed"),
    CONFIG_INT("s2s_connect_timeout", "10", 1, 3600, "seconds for an outbound server connection to come up before its stanzas are bounced"),
    CONFIG_INT("s2s_queue_max", "1000", 1, 1000000, "stanzas waiting per remote domain while its connection comes up (and at most max_output_buffer bytes of them)"),
    CONFIG_INT("s2s_max_connections", "1000", 1, 10000000, "server connections at once, inbound and outbound each; more inbound are refused at accept, more outbound bounce their stanzas"),
    CONFIG_END,
};

static struct {
    int enabled;
    int require_encryption;
    int secure_auth;
    char secret[256]; /* s2s_dialback_secret, or random */
    long max_inbound;  /* s2s_max_connections: inbound, and outbound apart */
    long ninbound;
    long noutbound;
    X509_STORE *store;  /* who vouches for other servers */
    SSL_CTX *client_tls; /* our side of outbound TLS, with our certificate */
} S;

s2s_out_settings_t s2s_out_cfg;

int s2s_open(char *err, size_t errlen)
{
    S.require_encryption = config_bool("s2s_require_encryption");
    S.max_inbound = config_int("s2s_max_connections");
    S.secure_auth = config_bool("s2s_secure_auth");
    const char *secret = config_str("s2s_dialback_secret");
    if (strlen(secret) >= sizeof S.secret) {
        snprintf(err, errlen, "key 's2s_dialback_secret': longer than %zu bytes", sizeof S.secret - 1);
        return -1;
    }
    if (*secret) {
        snprintf(S.secret, sizeof S.secret, "%s", secret);
    } else {
        /* Keys made here verify only here: fine for one s2s frontend. */
        unsigned char rnd[32];
        random_bytes(rnd, sizeof rnd);
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(S.secret + 2 * i, 3, "%02x", rnd[i]);
    }
    s2s_out_cfg.idle_ms = (uint64_t)config_int("s2s_idle_timeout") * 1000;
    s2s_out_cfg.connect_ms = (uint64_t)config_int("s2s_connect_timeout") * 1000;
    s2s_out_cfg.queue_max = (size_t)config_int("s2s_queue_max");
    const char *cert = config_str("tls_cert"), *key = config_str("tls_key");
    if (!*cert) {
        /* Without a certificate no peer can authenticate us (XEP-0178), and we offer no
         * TLS to peers that require it. */
        snprintf(err, errlen, "key 's2s_listen': server-to-server needs tls_cert");
        return -1;
    }
    if (!(S.client_tls = tls_client_ctx_new(cert, key, err, errlen)))
        return -1;
    S.store = X509_STORE_new();
    const char *ca = config_str("s2s_ca_file");
    if (!S.store || (*ca ? X509_STORE_load_file(S.store, ca) : X509_STORE_set_default_paths(S.store)) != 1) {
        unsigned long e = ERR_peek_last_error();
        snprintf(err, errlen, "key 's2s_ca_file': cannot load '%s': %s", *ca ? ca : "(the system store)",
                 e ? ERR_reason_error_string(e) : "no details from OpenSSL");
        ERR_clear_error();
        X509_STORE_free(S.store);
        S.store = NULL;
        tls_ctx_free(&S.client_tls);
        return -1;
    }
    S.enabled = 1;
    return 0;
}

void s2s_reload_tls(void)
{
    if (!S.enabled)
        return;
    /* Outbound connections present the same certificate as the listeners (SIGHUP). */
    tls_reload_client(&S.client_tls, config_str("tls_cert"), config_str("tls_key"));
}

int s2s_enabled(void)
{
    return S.enabled;
}

void s2s_shutdown(void)
{
    if (!S.enabled)
        return;
    s2s_out_shutdown();
    X509_STORE_free(S.store);
    S.store = NULL;
    tls_ctx_free(&S.client_tls);
    S.enabled = 0;
}

int s2s_accept_ok(void)
{
    return S.ninbound < S.max_inbound;
}

int s2s_connect_ok(void)
{
    return S.noutbound < S.max_inbound;
}

int s2s_hosted(const char *domain)
{
    size_t n = strlen(domain), d = strlen(fe.domain);
    if (n == d)
        return strcmp(domain, fe.domain) == 0;
    return n > d + 1 && domain[n - d - 1] == '.' && strcmp(domain + n - d, fe.domain) == 0;
}

/* ------------------------------------------------------------------ certificates */

/* During the handshake every certificate is taken: the checks above decide afterwards,
 * against the domain the stream names (inbound) or the one we connect to (outbound). */
static int accept_any_cert(int ok, X509_STORE_CTX *xs)
{
    (void)ok;
    (void)xs;
    return 1;
}

SSL *s2s_ssl_new(client_t *c)
{
    s2s_t *s = c->s2s;
    SSL *ssl;
    if (s->outbound) {
        if (!(ssl = SSL_new(S.client_tls)))
            return NULL;
        SSL_set_connect_state(ssl);
        /* SNI: the remote domain (XEP-0368 too), an internationalised one in A-labels
         * (RFC 6066 3: ASCII only); OpenSSL keeps a copy. */
        char *alabel = NULL;
        const char *sni = s->remote;
        for (const char *p = s->remote; *p; p++) {
            if ((unsigned char)*p >= 0x80) {
                sni = idna_to_ascii_8z(s->remote, &alabel, 0) == IDNA_SUCCESS ? alabel : NULL;
                break;
            }
        }
        if (sni)
            SSL_set_tlsext_host_name(ssl, sni);
        free(alabel);
        if (c->direct_tls) {
            /* XEP-0368 3: ALPN "xmpp-server" on a direct TLS connection. */
            static const unsigned char alpn[] = "\x0bxmpp-server";
            SSL_set_alpn_protos(ssl, alpn, sizeof alpn - 1);
        }
        SSL_set_verify(ssl, SSL_VERIFY_PEER, accept_any_cert);
    } else {
        if (!fe.tls || !(ssl = SSL_new(fe.tls)))
            return NULL;
        /* Asks for the peer's certificate (SASL EXTERNAL); a peer without one goes on. */
        SSL_set_verify(ssl, SSL_VERIFY_PEER, accept_any_cert);
    }
    return ssl;
}

/* ------------------------------------------------------------------ common */

static void on_idle(evloop_t *loop, void *ud)
{
    client_t *c = ud;
    s2s_t *s = c->s2s;
    s->idle_timer = NULL;
    uint64_t since = now_ms() - s->last_active;
    /* Only an established stream idles: setting one up is bounded by stream_open_timeout
     * and auth_timeout (s2s_connect_timeout outbound). */
    int established = s->outbound ? s->ready : s->state == S2S_AUTHED;
    if (!established)
        since = 0;
    if (since < s2s_out_cfg.idle_ms) {
        s->idle_timer = evloop_timer(loop, s2s_out_cfg.idle_ms - since, on_idle, c);
        return;
    }
    log_info("conn %llu: s2s %s %s idle for s2s_idle_timeout: closed", (unsigned long long)c->id,
             s->outbound ? "to" : "from", s->remote[0] ? s->remote : c->addr);
    s->orderly = 1; /* our close: the peer opens a new connection for what it sends next */
    s2s_end_stream(c);
}

static s2s_t *s2s_new(client_t *c)
{
    s2s_t *s = xcalloc(1, sizeof *s);
    c->s2s = s;
    s->last_active = now_ms();
    s->idle_timer = evloop_timer(fe.loop, s2s_out_cfg.idle_ms, on_idle, c);
    return s;
}

void s2s_attach_inbound(client_t *c)
{
    s2s_new(c);
    S.ninbound++;
}

void s2s_attach_outbound(client_t *c, s2s_link_t *link, const char *local, const char *remote)
{
    s2s_t *s = s2s_new(c);
    S.noutbound++;
    s->outbound = 1;
    s->link = link;
    snprintf(s->local, sizeof s->local, "%s", local);
    snprintf(s->remote, sizeof s->remote, "%s", remote);
}

void s2s_on_activity(client_t *c)
{
    if (c->s2s)
        c->s2s->last_active = now_ms();
}

/* An outbound connection stops serving its pair (it failed or is ending): the pair moves
 * on at once, not when the socket is finally closed. */
static void detach(client_t *c)
{
    s2s_t *s = c->s2s;
    if (s && s->outbound && s->link) {
        s2s_link_t *link = s->link;
        s->link = NULL;
        s2s_out_closed(link, c);
    }
}

/* An inbound connection that had authenticated is gone: the router hears of it
 * (IPC_S2S_CLOSED), since the presence that came on it is only as good as the connection.
 * "Lost" unless the stream ended in order: the peer's </stream:stream> says its server
 * meant to close (it opens a new connection for anything later), as does our own idle
 * close or shutdown; a reset, a read or TLS error, or a stream error either way may mean
 * that the remote server is gone, and with it its users' presence (the router marks it
 * unavailable and probes: docs/ARCHITECTURE.md, "Federation in the router"). */
static void report_closed(client_t *c)
{
    s2s_t *s = c->s2s;
    /* s2s_shutdown ran first: this is our shutdown (system-shutdown to every peer). */
    int lost = !s->orderly && S.enabled;
    ipc_hdr_t h;
    if (ipc_s2s_closed_build(&h, &(ipc_s2s_closed_t){.conn = c->id, .lost = lost,
                                                    .domain = s->remote}) < 0)
        return;
    router_submit(&h, NULL, 0, 1);
    if (lost) {
        log_info("conn %llu: s2s from %s (%s): connection lost (no </stream:stream>)",
                 (unsigned long long)c->id, s->remote, c->addr);
        s2s_out_peer_lost(s->remote);
    }
}

void s2s_on_closed(client_t *c)
{
    s2s_t *s = c->s2s;
    if (!s)
        return;
    evloop_cancel(fe.loop, &s->idle_timer);
    if (s->outbound) {
        if (!s->why[0])
            snprintf(s->why, sizeof s->why, "connection closed");
        S.noutbound--;
        detach(c);
    } else {
        S.ninbound--;
        if (s->state == S2S_AUTHED && s->remote[0])
            report_closed(c);
    }
    free(s);
    c->s2s = NULL;
}

void s2s_end_stream(client_t *c)
{
    detach(c);
    if (c->stream_done || c->closed)
        return;
    c->stream_done = 1;
    if (c->header_sent)
        stream_write_end(c);
    client_close(c, 1);
}

/* An outbound connection that cannot serve: logged, ended; the pair tries the next target. */
static void out_fail(client_t *c, const char *fmt, const char *arg)
{
    s2s_t *s = c->s2s;
    snprintf(s->why, sizeof s->why, fmt, arg);
    log_info("conn %llu: s2s to %s (%s): %s", (unsigned long long)c->id, s->remote, c->addr,
             s->why);
    s2s_end_stream(c);
}

void s2s_write_header(client_t *c)
{
    s2s_t *s = c->s2s;
    buf_t b = BUF_INIT;
    buf_append_str(&b, "<?xml version='1.0'?><stream:stream xmlns='" NS_SERVER
                       "' xmlns:stream='" XML_NS_STREAM "'");
    /* Declaring the dialback namespace says we speak it (XEP-0220 2.1). */
    if (!S.secure_auth)
        buf_append_str(&b, " xmlns:db='" NS_DIALBACK "'");
    if (!s->outbound) {
        unsigned char rnd[12];
        random_bytes(rnd, sizeof rnd);
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(c->stream_id + 2 * i, 3, "%02x", rnd[i]);
        buf_printf(&b, " id='%s'", c->stream_id);
    }
    const char *from = s->local[0] ? s->local : fe.domain;
    buf_append_str(&b, " from='");
    xml_escape(&b, from, strlen(from));
    buf_append_str(&b, "'");
    if (s->remote[0]) {
        buf_append_str(&b, " to='");
        xml_escape(&b, s->remote, strlen(s->remote));
        buf_append_str(&b, "'");
    }
    buf_append_str(&b, " version='1.0'>");
    client_write(c, b.data, b.len);
    buf_free(&b);
    c->header_sent = 1;
}

static int is(const xml_node_t *st, const char *ns, const char *name)
{
    return st->ns && strcmp(st->ns, ns) == 0 && strcmp(st->name, name) == 0;
}

/* The condition of a stream error the peer sent, for the log. */
static const char *stream_error_condition(const xml_node_t *err)
{
    for (const xml_node_t *ch = err->children; ch; ch = ch->next)
        if (ch->name && ch->ns && strcmp(ch->ns, NS_STREAMS_ERR) == 0 && strcmp(ch->name, "text"))
            return ch->name;
    return "(none)";
}

/* ------------------------------------------------------------------ inbound */

/* Whether the inbound peer may authenticate as s->remote by its certificate (checked
 * once per stream: the restart after STARTTLS makes a new one). */
static int in_cert_ok(client_t *c)
{
    s2s_t *s = c->s2s;
    if (!c->tls || c->tls_handshaking || !s->remote[0])
        return 0;
    if (!s->cert_checked) {
        char why[200];
        s->cert_ok = (unsigned)tls_peer_verify(c->ssl, S.store, s->remote, why, sizeof why);
        s->cert_checked = 1;
        if (s->cert_ok)
            log_debug("conn %llu: s2s from %s: certificate verified", (unsigned long long)c->id,
                      s->remote);
        else
            log_info("conn %llu: s2s from %s (%s): no SASL EXTERNAL: %s",
                     (unsigned long long)c->id, s->remote, c->addr, why);
    }
    return s->cert_ok;
}

/* Whether Server Dialback may authenticate this stream now: s2s_secure_auth off, and TLS
 * unless s2s_require_encryption is off too. */
static int dialback_ok(const client_t *c)
{
    return !S.secure_auth && ((c->tls && !c->tls_handshaking) || !S.require_encryption);
}

/* <db:verify/> (XEP-0220 2.3.1), as the authoritative server: is `key` the one we made for
 * our stream to the sender (its id) from our domain `to`? Stateless: the key derives from
 * the secret, the domains and the stream id only (XEP-0185). Any stream may ask. */
static void db_verify_answer(client_t *c, const xml_node_t *st)
{
    const char *from = xml_node_attr(st, "from"), *to = xml_node_attr(st, "to");
    const char *id = xml_node_attr(st, "id");
    char rdom[JID_PART_MAX + 1], ldom[JID_PART_MAX + 1];
    if (!from || !to || !id || jid_prep_domain(rdom, from) < 0 || jid_prep_domain(ldom, to) < 0) {
        client_stream_error(c, "improper-addressing", NULL);
        return;
    }
    if (!s2s_hosted(ldom)) {
        client_stream_error(c, "host-unknown", NULL);
        return;
    }
    char want[65];
    s2s_dialback_key(S.secret, rdom, ldom, id, want);
    char *key = xml_node_text(st);
    int valid = strlen(key) == 64 && ct_equal(key, want, 64);
    free(key);
    buf_t b = BUF_INIT;
    buf_append_str(&b, "<db:verify xmlns:db='" NS_DIALBACK "' from='");
    xml_escape(&b, ldom, strlen(ldom));
    buf_append_str(&b, "' to='");
    xml_escape(&b, rdom, strlen(rdom));
    buf_append_str(&b, "' id='");
    xml_escape(&b, id, strlen(id));
    buf_printf(&b, "' type='%s'/>", valid ? "valid" : "invalid");
    client_write(c, b.data, b.len);
    buf_free(&b);
    log_info("conn %llu: s2s: dialback key for %s -> %s (stream %s) is %s",
             (unsigned long long)c->id, ldom, rdom, id, valid ? "valid" : "invalid");
}

/* <db:result/> from the originating server (XEP-0220 2.1.1): its key goes to the
 * authoritative server of its domain (s2s_out_dialback_verify); the answer comes back in
 * s2s_dialback_answer. */
static void db_result_request(client_t *c, const xml_node_t *st)
{
    s2s_t *s = c->s2s;
    const char *from = xml_node_attr(st, "from"), *to = xml_node_attr(st, "to");
    char rdom[JID_PART_MAX + 1], ldom[JID_PART_MAX + 1];
    if (!from || !to || jid_prep_domain(rdom, from) < 0 || jid_prep_domain(ldom, to) < 0) {
        client_stream_error(c, "improper-addressing", NULL);
        return;
    }
    /* One domain pair per stream: the header's (no piggybacking). */
    if (!s2s_hosted(ldom) || strcmp(ldom, s->local) != 0) {
        client_stream_error(c, "host-unknown", NULL);
        return;
    }
    if ((s->remote[0] && strcmp(rdom, s->remote) != 0) || s2s_hosted(rdom)) {
        client_stream_error(c, "invalid-from", NULL);
        return;
    }
    if (s->db_pending) {
        client_stream_error(c, "policy-violation", "A dialback request is already pending");
        return;
    }
    char *key = xml_node_text(st);
    snprintf(s->remote, sizeof s->remote, "%s", rdom);
    s->db_pending = 1;
    log_debug("conn %llu: s2s from %s: dialback, asking its authoritative server",
              (unsigned long long)c->id, rdom);
    s2s_out_dialback_verify(s->local, rdom, c->id, c->stream_id, key);
    free(key);
}

void s2s_dialback_answer(uint64_t conn, const char *stream_id, int valid)
{
    client_t *c = client_find(conn);
    s2s_t *s = c && !c->closed && !c->stream_done ? c->s2s : NULL;
    if (!s || s->outbound || !s->db_pending || strcmp(c->stream_id, stream_id) != 0)
        return;
    s->db_pending = 0;
    buf_t b = BUF_INIT;
    buf_append_str(&b, "<db:result xmlns:db='" NS_DIALBACK "' from='");
    xml_escape(&b, s->local, strlen(s->local));
    buf_append_str(&b, "' to='");
    xml_escape(&b, s->remote, strlen(s->remote));
    buf_printf(&b, "' type='%s'/>", valid ? "valid" : "invalid");
    client_write(c, b.data, b.len);
    buf_free(&b);
    if (!valid) {
        log_info("conn %llu: s2s from %s (%s): dialback key not verified", (unsigned long long)c->id,
                 s->remote, c->addr);
        s2s_end_stream(c);
        return;
    }
    s->state = S2S_AUTHED;
    evloop_cancel(fe.loop, &c->auth_timer);
    xml_parser_set_limits(c->parser, &fe.limits);
    s->last_active = now_ms();
    log_info("conn %llu: s2s from %s (%s) to %s: authenticated by dialback",
             (unsigned long long)c->id, s->remote, c->addr, s->local);
}

static void in_features(client_t *c)
{
    s2s_t *s = c->s2s;
    buf_t b = BUF_INIT;
    buf_append_str(&b, "<stream:features>");
    if (s->state != S2S_AUTHED) {
        if (!c->tls && fe.tls) {
            buf_append_str(&b, "<starttls xmlns='" NS_TLS "'>");
            if (S.require_encryption)
                buf_append_str(&b, "<required/>");
            buf_append_str(&b, "</starttls>");
        }
        if (in_cert_ok(c))
            buf_append_str(&b, "<mechanisms xmlns='" NS_SASL "'><mechanism>EXTERNAL</mechanism>"
                               "</mechanisms>");
        if (dialback_ok(c))
            buf_append_str(&b, "<dialback xmlns='" NS_DIALBACK_FEATURE "'><errors/></dialback>");
    }
    buf_append_str(&b, "</stream:features>");
    client_write(c, b.data, b.len);
    buf_free(&b);
}

static void in_open(client_t *c, const xml_node_t *root)
{
    s2s_t *s = c->s2s;
    const char *to = xml_node_attr(root, "to"), *from = xml_node_attr(root, "from");
    const char *version = xml_node_attr(root, "version"), *ns = xml_node_attr(root, "xmlns");
    char dom[JID_PART_MAX + 1];
    /* RFC 6120 4.7.2: 'to' names the receiving domain; it must be one of ours (4.9.3.6). */
    if (!to || jid_prep_domain(dom, to) < 0 || !s2s_hosted(dom) ||
        (s->state == S2S_AUTHED && strcmp(dom, s->local) != 0)) {
        client_stream_error(c, "host-unknown", NULL);
        return;
    }
    snprintf(s->local, sizeof s->local, "%s", dom);
    /* 4.7.1: 'from' names the initiating domain; after authentication it cannot change. */
    if (from) {
        /* A peer never speaks for one of our own domains: we do not connect to
         * ourselves, and a certificate (a wildcard one) or dialback for it would let its
         * holder send stanzas from our users and services. */
        if (jid_prep_domain(dom, from) < 0 || s2s_hosted(dom) ||
            (s->state == S2S_AUTHED && strcmp(dom, s->remote) != 0)) {
            client_stream_error(c, "invalid-from", NULL);
            return;
        }
        if (strcmp(dom, s->remote) != 0) {
            snprintf(s->remote, sizeof s->remote, "%s", dom);
            s->cert_checked = 0;
        }
    } else if (s->state == S2S_AUTHED) {
        client_stream_error(c, "invalid-from", NULL);
        return;
    }
    /* 4.8.2: the content namespace of a server stream is jabber:server. */
    if (!ns || strcmp(ns, NS_SERVER) != 0) {
        client_stream_error(c, "invalid-namespace", NULL);
        return;
    }
    /* 4.7.5: we speak 1.0 (a stream without version is a pre-1.0 one: dialback only). */
    if (!version || atoi(version) != 1) {
        client_stream_error(c, "unsupported-version", NULL);
        return;
    }
    s2s_write_header(c);
    in_features(c);
}

static void sasl_failure(client_t *c, const char *cond)
{
    s2s_t *s = c->s2s;
    buf_t b = BUF_INIT;
    buf_printf(&b, "<failure xmlns='" NS_SASL "'><%s/></failure>", cond);
    client_write(c, b.data, b.len);
    buf_free(&b);
    log_info("conn %llu: s2s from %s (%s): SASL EXTERNAL failed: %s", (unsigned long long)c->id,
             s->remote[0] ? s->remote : "?", c->addr, cond);
    /* RFC 6120 6.4.5: a bounded number of retries, then the stream ends. */
    if (++s->sasl_failures >= S2S_SASL_TRIES)
        client_stream_error(c, "policy-violation", "Too many failed authentication attempts");
}

/* XEP-0178 (RFC 6120 6.4): EXTERNAL, the identity being the domain of the stream
 * header's 'from' that the certificate names; an authorization identity, when given, must
 * be that domain. */
static void in_auth(client_t *c, const xml_node_t *auth)
{
    s2s_t *s = c->s2s;
    const char *mech = xml_node_attr(auth, "mechanism");
    if (!mech || strcmp(mech, "EXTERNAL") != 0 || !in_cert_ok(c)) {
        sasl_failure(c, "invalid-mechanism");
        return;
    }
    char *text = xml_node_text(auth);
    int ok = 1;
    if (text[0] && strcmp(text, "=") != 0) {
        size_t n = 0;
        unsigned char *raw = base64_decode(text, strlen(text), &n);
        char zid[JID_PART_MAX + 1], dom[JID_PART_MAX + 1];
        ok = raw && n > 0 && n <= JID_PART_MAX && !memchr(raw, '\0', n);
        if (ok) {
            memcpy(zid, raw, n);
            zid[n] = '\0';
            ok = jid_prep_domain(dom, zid) == 0 && strcmp(dom, s->remote) == 0;
        }
        free(raw);
    }
    free(text);
    if (!ok) {
        sasl_failure(c, "invalid-authzid");
        return;
    }
    client_write_str(c, "<success xmlns='" NS_SASL "'/>");
    s->state = S2S_AUTHED;
    evloop_cancel(fe.loop, &c->auth_timer);
    xml_parser_set_limits(c->parser, &fe.limits);
    stream_restart(c);
    log_info("conn %llu: s2s from %s (%s) to %s: authenticated by certificate",
             (unsigned long long)c->id, s->remote, c->addr, s->local);
}

/* An error reply to a stanza from the peer, sent back to it over our outbound connection
 * (never on this inbound stream). */
static void in_reply_error(client_t *c, const xml_node_t *st, const char *etype, const char *cond)
{
    const char *type = xml_node_attr(st, "type");
    if (type && strcmp(type, "error") == 0)
        return;
    xml_node_t *err = stanza_error_reply(st, c->s2s->local, etype, cond);
    buf_t b = BUF_INIT;
    xml_serialize(err, NS_SERVER, &b);
    ipc_kind_t kind = ipc_kind_from_name(err->name);
    const char *to = xml_node_attr(err, "to"), *from = xml_node_attr(err, "from");
    if (to && from)
        s2s_out_route(&(ipc_s2s_t){.kind = kind, .stype = IPC_ST_ERROR, .to = to, .from = from,
                                   .id = xml_node_attr(err, "id")},
                      b.data, b.len);
    buf_free(&b);
    xml_node_free(&err);
}

/* A stanza of an authenticated peer: addresses checked (RFC 6120 8.1.1.2, 8.1.2.2), then
 * to the router. */
static void in_forward(client_t *c, xml_node_t *st)
{
    s2s_t *s = c->s2s;
    ipc_kind_t kind = st->ns && strcmp(st->ns, NS_SERVER) == 0 ? ipc_kind_from_name(st->name)
                                                               : IPC_KIND_NONE;
    if (kind == IPC_KIND_NONE) {
        int known = ipc_kind_from_name(st->name) != IPC_KIND_NONE;
        client_stream_error(c, known ? "invalid-namespace" : "unsupported-stanza-type", NULL);
        return;
    }
    const char *from_a = xml_node_attr(st, "from"), *to_a = xml_node_attr(st, "to");
    if (!from_a || !to_a) {
        client_stream_error(c, "improper-addressing", NULL); /* 4.9.3.10 */
        return;
    }
    jid_t jf, jt;
    char from[JID_MAX + 1], to[JID_MAX + 1];
    if (jid_parse(&jf, from_a) < 0 || strcmp(jf.domain, s->remote) != 0 ||
        jid_full(&jf, from, sizeof from) < 0) {
        client_stream_error(c, "invalid-from", NULL); /* 4.9.3.9 */
        return;
    }
    if (jid_parse(&jt, to_a) < 0 || jid_full(&jt, to, sizeof to) < 0) {
        client_stream_error(c, "improper-addressing", NULL);
        return;
    }
    if (!s2s_hosted(jt.domain)) {
        client_stream_error(c, "host-unknown", NULL); /* 4.9.3.6 */
        return;
    }
    xml_node_set_attr(st, "from", from);
    xml_node_set_attr(st, "to", to);
    ipc_stype_t stype = ipc_stype_from_attr(kind, xml_node_attr(st, "type"));
    const char *id = xml_node_attr(st, "id");
    if (stanza_check_type(st, kind, stype) < 0) {
        in_reply_error(c, st, "modify", "bad-request");
        return;
    }
    buf_t b = BUF_INIT;
    xml_serialize(st, NS_SERVER, &b);
    if (b.len > IPC_STANZA_FACTOR * fe.limits.max_stanza) {
        buf_free(&b);
        client_stream_error(c, "policy-violation", "Stanza too large");
        return;
    }
    ipc_hdr_t h;
    if (ipc_s2s_in_build(&h, &(ipc_s2s_t){.conn = c->id, .kind = kind, .stype = stype, .to = to,
                                          .from = from, .id = id}) < 0) {
        buf_free(&b);
        in_reply_error(c, st, "modify", "bad-request");
        return;
    }
    metric_inc(fe.m.stanzas_in[kind]);
    /* Past router_buffer: the stanza is answered with an error, never dropped in silence. */
    if (router_submit(&h, b.data, b.len, 0) < 0)
        in_reply_error(c, st, "wait", "resource-constraint");
    buf_free(&b);
}

static void in_stanza(client_t *c, xml_node_t *st)
{
    s2s_t *s = c->s2s;
    if (is(st, XML_NS_STREAM, "error")) {
        log_info("conn %llu: s2s from %s (%s): stream error from the peer: %s",
                 (unsigned long long)c->id, s->remote[0] ? s->remote : "?", c->addr,
                 stream_error_condition(st));
        s2s_end_stream(c);
    } else if (is(st, NS_TLS, "starttls")) {
        if (c->tls || !fe.tls || s->state == S2S_AUTHED) {
            client_write_str(c, "<failure xmlns='" NS_TLS "'/>");
            s2s_end_stream(c);
        } else {
            client_write_str(c, "<proceed xmlns='" NS_TLS "'/>");
            c->tls_start = 1;
            stream_restart(c);
        }
    } else if (s->state != S2S_AUTHED && is(st, NS_SASL, "auth")) {
        in_auth(c, st);
    } else if (!S.secure_auth && is(st, NS_DIALBACK, "verify")) {
        db_verify_answer(c, st);
    } else if (s->state != S2S_AUTHED && is(st, NS_DIALBACK, "result") && dialback_ok(c)) {
        db_result_request(c, st);
    } else if (s->state != S2S_AUTHED) {
        client_stream_error(c, "not-authorized", NULL); /* 4.9.3.12 */
    } else {
        in_forward(c, st);
    }
}

/* ------------------------------------------------------------------ outbound */

void s2s_connected(client_t *c)
{
    log_debug("conn %llu: s2s to %s: connected to %s%s", (unsigned long long)c->id,
              c->s2s->remote, c->addr, c->direct_tls ? " (direct TLS)" : "");
    if (c->direct_tls)
        client_start_tls(c);
    else
        s2s_write_header(c);
}

void s2s_tls_ready(client_t *c)
{
    s2s_t *s = c->s2s;
    if (!s || !s->outbound)
        return; /* inbound: the certificate is checked against the header's 'from' */
    char why[200];
    /* RFC 7590 3.2 / RFC 6125: the certificate must name the domain we connect to; without
     * s2s_secure_auth, one that does not leaves dialback (out_features). */
    s->cert_ok = (unsigned)tls_peer_verify(c->ssl, S.store, s->remote, why, sizeof why);
    if (!s->cert_ok) {
        if (S.secure_auth) {
            out_fail(c, "TLS: %s", why);
            return;
        }
        log_info("conn %llu: s2s to %s: %s: dialback only", (unsigned long long)c->id, s->remote,
                 why);
    }
    s2s_write_header(c);
}

static void out_open(client_t *c, const xml_node_t *root)
{
    const char *version = xml_node_attr(root, "version"), *ns = xml_node_attr(root, "xmlns");
    const char *id = xml_node_attr(root, "id");
    snprintf(c->s2s->peer_id, sizeof c->s2s->peer_id, "%s", id ? id : "");
    if (!ns || strcmp(ns, NS_SERVER) != 0) {
        client_stream_error(c, "invalid-namespace", NULL);
        return;
    }
    if (!version || atoi(version) != 1)
        client_stream_error(c, "unsupported-version", NULL);
}

static int offers_external(const xml_node_t *features)
{
    const xml_node_t *mechs = xml_node_child(features, "mechanisms", NS_SASL);
    for (const xml_node_t *m = mechs ? mechs->children : NULL; m; m = m->next) {
        if (!m->name || strcmp(m->name, "mechanism") != 0)
            continue;
        char *t = xml_node_text(m);
        int ext = strcmp(t, "EXTERNAL") == 0;
        free(t);
        if (ext)
            return 1;
    }
    return 0;
}

static void out_features(client_t *c, const xml_node_t *f)
{
    s2s_t *s = c->s2s;
    if (s->ready)
        return;
    if (s->state == S2S_AUTHED) {
        s->ready = 1;
        evloop_cancel(fe.loop, &c->auth_timer);
        log_info("conn %llu: s2s to %s (%s) from %s: authenticated", (unsigned long long)c->id,
                 s->remote, c->addr, s->local);
        if (s->link)
            s2s_out_ready(s->link, c);
        return;
    }
    if (s->state != S2S_OPENING)
        return;
    if (!c->tls && xml_node_child(f, "starttls", NS_TLS)) {
        client_write_str(c, "<starttls xmlns='" NS_TLS "'/>");
        s->state = S2S_STARTTLS;
        return;
    }
    if (!c->tls && (S.require_encryption || S.secure_auth)) {
        out_fail(c, "%s", "the peer offers no STARTTLS");
        return;
    }
    /* The stream is up far enough for the dialback verifications of our inbound streams
     * from this domain (XEP-0220 2.3: no need to authenticate it first). */
    s->usable = 1;
    if (s->link)
        s2s_out_usable(s->link, c);
    if (c->closed || c->stream_done)
        return;
    if (!s->cert_ok || !offers_external(f)) {
        if (S.secure_auth) {
            out_fail(c, "%s", "the peer offers no SASL EXTERNAL (it did not accept our certificate)");
            return;
        }
        /* XEP-0220 2.1.1: our key for this stream, made from the secret, the domains and
         * the id the receiving server gave the stream. */
        char key[65];
        s2s_dialback_key(S.secret, s->remote, s->local, s->peer_id, key);
        buf_t b = BUF_INIT;
        buf_append_str(&b, "<db:result xmlns:db='" NS_DIALBACK "' from='");
        xml_escape(&b, s->local, strlen(s->local));
        buf_append_str(&b, "' to='");
        xml_escape(&b, s->remote, strlen(s->remote));
        buf_printf(&b, "'>%s</db:result>", key);
        client_write(c, b.data, b.len);
        buf_free(&b);
        s->state = S2S_DIALBACK;
        return;
    }
    /* XEP-0178 3: the authorization identity is our domain. */
    char *zid = base64_encode((const unsigned char *)s->local, strlen(s->local));
    buf_t b = BUF_INIT;
    buf_printf(&b, "<auth xmlns='" NS_SASL "' mechanism='EXTERNAL'>%s</auth>", zid);
    client_write(c, b.data, b.len);
    buf_free(&b);
    free(zid);
    s->state = S2S_AUTHING;
}

static void out_stanza(client_t *c, xml_node_t *st)
{
    s2s_t *s = c->s2s;
    if (is(st, XML_NS_STREAM, "error")) {
        out_fail(c, "stream error from the peer: %s", stream_error_condition(st));
    } else if (is(st, XML_NS_STREAM, "features")) {
        out_features(c, st);
    } else if (s->state == S2S_STARTTLS && is(st, NS_TLS, "proceed")) {
        s->state = S2S_OPENING;
        stream_restart(c);
        c->tls_start = 1;            /* client.c starts TLS once the output is written */
        client_write_raw(c, "", 0); /* ...which it looks at before the loop waits */
    } else if (s->state == S2S_STARTTLS && is(st, NS_TLS, "failure")) {
        out_fail(c, "%s", "the peer refused STARTTLS");
    } else if (s->state == S2S_AUTHING && is(st, NS_SASL, "success")) {
        s->state = S2S_AUTHED;
        stream_restart(c);
        s2s_write_header(c);
    } else if (s->state == S2S_DIALBACK && is(st, NS_DIALBACK, "result")) {
        const char *type = xml_node_attr(st, "type");
        if (type && strcmp(type, "valid") == 0) {
            s->state = S2S_AUTHED;
            s->ready = 1;
            evloop_cancel(fe.loop, &c->auth_timer);
            log_info("conn %llu: s2s to %s (%s) from %s: authenticated by dialback",
                     (unsigned long long)c->id, s->remote, c->addr, s->local);
            if (s->link)
                s2s_out_ready(s->link, c);
        } else {
            out_fail(c, "dialback refused (%s)", type ? type : "no type");
        }
    } else if (is(st, NS_DIALBACK, "verify")) {
        const char *type = xml_node_attr(st, "type"), *id = xml_node_attr(st, "id");
        if (s->link && id)
            s2s_out_verify_result(s->link, id, type && strcmp(type, "valid") == 0);
    } else if (s->state == S2S_AUTHING && is(st, NS_SASL, "failure")) {
        const xml_node_t *cond = xml_node_first_element(st);
        out_fail(c, "SASL EXTERNAL refused: %s", cond ? cond->name : "(no condition)");
    } else {
        /* A receiving server sends no stanzas on our stream (RFC 6120 4.5.x: streams are
         * one-way between servers). */
        log_debug("conn %llu: s2s to %s: ignored <%s/> from the peer", (unsigned long long)c->id,
                  s->remote, st->name);
    }
}

/* ------------------------------------------------------------------ parser callbacks */

static void on_open(void *ud, const xml_node_t *root)
{
    client_t *c = ud;
    evloop_cancel(fe.loop, &c->open_timer);
    if (c->s2s->outbound)
        out_open(c, root);
    else
        in_open(c, root);
}

static void on_stanza(void *ud, xml_node_t *st)
{
    client_t *c = ud;
    /* Anything parsed behind a restart point belongs to the stream that ended there. */
    if (!c->s2s || c->stream_done || c->closed || c->restart || c->tls_start) {
        xml_node_free(&st);
        return;
    }
    if (c->s2s->outbound)
        out_stanza(c, st);
    else
        in_stanza(c, st);
    xml_node_free(&st);
}

static void on_close(void *ud)
{
    client_t *c = ud;
    if (c->stream_done)
        return;
    if (c->s2s && c->s2s->outbound && !c->s2s->ready)
        snprintf(c->s2s->why, sizeof c->s2s->why, "the peer closed the stream");
    if (c->s2s)
        c->s2s->orderly = 1; /* the peer's </stream:stream> */
    detach(c);
    c->stream_done = 1;
    if (c->header_sent)
        stream_write_end(c);
    client_close(c, 1);
}

static const xml_callbacks_t callbacks = {on_open, on_stanza, on_close};

const xml_callbacks_t *s2s_callbacks(void)
{
    return &callbacks;
}
