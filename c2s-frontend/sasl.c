#include "sasl.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "log.h"
#include "scram.h"
#include "stanza.h"
#include "tls.h"
#include "util.h"

/* RFC 6120 6.4.5: a reasonable number of retries (here 5), then a stream error. */
#define SASL_MAX_FAILURES 5

/* XEP-0440: the stream feature that lists the channel binding types of this connection. */
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"

typedef enum {
    MECH_PLAIN,
    MECH_SCRAM_SHA1,
    MECH_SCRAM_SHA256,
    MECH_SCRAM_SHA1_PLUS,
    MECH_SCRAM_SHA256_PLUS,
    MECH_COUNT
} mech_t;

/* Mechanism names by mech_t (also the metric labels). */
static const char *const mech_names[MECH_COUNT] = {
    "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"};

static int mech_is_plus(mech_t m)
{
    return m == MECH_SCRAM_SHA1_PLUS || m == MECH_SCRAM_SHA256_PLUS;
}

static scram_hash_t mech_hash(mech_t m)
{
    return m == MECH_SCRAM_SHA1 || m == MECH_SCRAM_SHA1_PLUS ? SCRAM_SHA1 : SCRAM_SHA256;
}

struct sasl {
    mech_t mech;
    scram_server_t *scram;
    int step;       /* SCRAM: 0 waiting for credentials, 1 waiting for client-final */
    char *password; /* PLAIN: held only until the credentials arrive */
    int asked;      /* the router was asked for the credentials of c->user */
};

/* The channel bindings this connection offers: only under TLS (and sasl_channel_binding),
 * and only the types its TLS session supports (tls.c). The -PLUS mechanisms are offered
 * exactly when one is available, so this one function decides both what is advertised and,
 * at <auth/>, whether a client's gs2 flag y means a downgrade (RFC 5802 section 6). */
static void connection_cb(const client_t *c, scram_cb_t *cb)
{
    if (c->tls && fe.channel_binding)
        tls_channel_bindings(c->ssl, cb);
    else
        memset(cb, 0, sizeof *cb);
}

void sasl_features(client_t *c, buf_t *out)
{
    scram_cb_t cb;
    connection_cb(c, &cb);
    int plus = scram_cb_any(&cb);
    buf_append_str(out, "<mechanisms xmlns='" NS_SASL "'>");
    /* RFC 6120 13.8: SCRAM-SHA-1-PLUS is mandatory to implement; the stronger first. */
    if (plus)
        buf_append_str(out, "<mechanism>SCRAM-SHA-256-PLUS</mechanism>"
                            "<mechanism>SCRAM-SHA-1-PLUS</mechanism>");
    buf_append_str(out, "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>");
    if (c->tls || ws_protected(c))
        buf_append_str(out, "<mechanism>PLAIN</mechanism>");
    buf_append_str(out, "</mechanisms>");
    if (plus) {
        /* XEP-0440 section 2: a top-level stream feature beside <mechanisms/>. */
        buf_append_str(out, "<sasl-channel-binding xmlns='" NS_SASL_CB "'>");
        for (int t = 0; t < SCRAM_CB_TYPES; t++)
            if (cb.len[t])
                buf_printf(out, "<channel-binding type='%s'/>",
                           scram_cb_name((scram_cb_type_t)t));
        buf_append_str(out, "</sasl-channel-binding>");
    }
    OPENSSL_cleanse(&cb, sizeof cb);
}

void sasl_free(client_t *c)
{
    sasl_t *s = c->sasl;
    if (!s)
        return;
    scram_server_destroy(&s->scram);
    if (s->password) {
        OPENSSL_cleanse(s->password, strlen(s->password));
        free(s->password);
    }
    free(s);
    c->sasl = NULL;
}

/* Tells the router that c->user got in, for auth_failures_per_account: the router counted
 * the credential request as a failure and now forgets the account's failures (only when
 * its credentials were asked for; lost while the router is away: a bound, not a ledger). */
static void report_success(client_t *c)
{
    if (!c->sasl || !c->sasl->asked)
        return;
    ipc_hdr_t h;
    if (ipc_auth_result_build(&h, &(ipc_auth_result_t){c->id, IPC_OK, c->user}) == 0)
        router_send(&h, NULL, 0);
}

/* A wrong password or unknown user counts against the client's address (addrlimit); the
 * router counted it against the account when the credentials were asked for. Connections
 * without an address of their own (PROXY LOCAL: the load balancer's checks) are not
 * counted by address. */
static void count_failure(client_t *c)
{
    uint64_t lock = c->addr_key[0] ? addrlimit_auth_failed(c->addr_key, now_ms()) : 0;
    if (lock)
        log_warn("conn %llu: too many failed authentications from %s: locked for %llu s",
                 (unsigned long long)c->id, c->addr_key, (unsigned long long)(lock / 1000));
}

/* xmpp_auth_total{mechanism,result}: by mech_t, then "none" (no valid mechanism named). */
static metric_t *m_auth[MECH_COUNT + 1][2]; /* [mechanism][0: failure, 1: success] */

void sasl_register_metrics(void)
{
    for (int i = 0; i <= MECH_COUNT; i++)
        for (int ok = 0; ok < 2; ok++) {
            char label[80];
            snprintf(label, sizeof label, "mechanism=\"%s\",result=\"%s\"",
                     i < MECH_COUNT ? mech_names[i] : "none", ok ? "success" : "failure");
            m_auth[i][ok] = metrics_counter("xmpp_auth_total", label,
                                            "SASL authentications ended, by mechanism and result");
        }
}

static void count_auth(const client_t *c, int ok)
{
    metric_inc(m_auth[c->sasl ? (int)c->sasl->mech : MECH_COUNT][ok]);
}

/* RFC 6120 6.4.5: <failure/> with a condition and optional text; `guess`: a password was
 * checked and failed (counted against the address). */
static void sasl_refuse(client_t *c, const char *cond, const char *text, int guess)
{
    if (guess)
        count_failure(c);
    count_auth(c, 0);
    sasl_free(c);
    c->pending_seq = 0;
    buf_t b = BUF_INIT;
    buf_printf(&b, "<failure xmlns='" NS_SASL "'><%s/>", cond);
    if (text) {
        buf_append_str(&b, "<text xml:lang='en'>");
        xml_escape(&b, text, strlen(text));
        buf_append_str(&b, "</text>");
    }
    buf_append_str(&b, "</failure>");
    client_write(c, b.data, b.len);
    buf_free(&b);
    if (++c->sasl_failures > SASL_MAX_FAILURES) {
        client_stream_error(c, "policy-violation", "Too many authentication failures");
        return;
    }
    client_resume(c);
}

static void sasl_failure_text(client_t *c, const char *cond, const char *text)
{
    sasl_refuse(c, cond, text, strcmp(cond, "not-authorized") == 0);
}

static void sasl_failure(client_t *c, const char *cond)
{
    sasl_failure_text(c, cond, NULL);
}

/* Too many wrong passwords from this address lately (auth_failures_per_ip): nothing is
 * tried until the back-off (auth_backoff) is over; answers temporary-auth-failure and
 * returns 1. Checked when an exchange starts and again just before a password is checked,
 * so that proofs sent at once over many connections are not all tried before the first
 * failures count. */
static int refuse_if_address_locked(client_t *c)
{
    uint64_t wait = c->addr_key[0] ? addrlimit_auth_wait(c->addr_key, now_ms()) : 0;
    if (!wait)
        return 0;
    char text[120];
    snprintf(text, sizeof text,
             "Too many failed authentication attempts from your address; try again in %llu s",
             (unsigned long long)(wait + 999) / 1000);
    sasl_failure_text(c, "temporary-auth-failure", text);
    return 1;
}

static void sasl_success(client_t *c, const char *additional)
{
    report_success(c);
    count_auth(c, 1);
    sasl_free(c);
    c->pending_seq = 0;
    c->authed = 1;
    xml_parser_set_limits(c->parser, &fe.limits); /* the larger limits from now on */
    if (c->ws)
        ws_set_max_message(c, fe.limits.max_stanza);
    buf_t b = BUF_INIT;
    if (additional) {
        char *b64 = base64_encode((const unsigned char *)additional, strlen(additional));
        buf_printf(&b, "<success xmlns='" NS_SASL "'>%s</success>", b64);
        free(b64);
    } else {
        buf_append_str(&b, "<success xmlns='" NS_SASL "'/>");
    }
    client_write(c, b.data, b.len);
    buf_free(&b);
    log_info("conn %llu: authenticated %s@%s from %s", (unsigned long long)c->id, c->user,
             fe.domain, c->addr);
    stream_restart(c);
    client_resume(c);
}

static void challenge(client_t *c, const char *data)
{
    buf_t b = BUF_INIT;
    if (data && *data) {
        char *b64 = base64_encode((const unsigned char *)data, strlen(data));
        buf_printf(&b, "<challenge xmlns='" NS_SASL "'>%s</challenge>", b64);
        free(b64);
    } else {
        buf_append_str(&b, "<challenge xmlns='" NS_SASL "'/>");
    }
    client_write(c, b.data, b.len);
    buf_free(&b);
}

/* Checks an authorization identity: only the user's own bare JID is allowed. */
static int authzid_ok(const client_t *c, const char *authzid)
{
    if (!authzid || !*authzid)
        return 1;
    jid_t j;
    return jid_parse(&j, authzid) == 0 && !j.resource[0] && strcmp(j.local, c->user) == 0 &&
           strcmp(j.domain, fe.domain) == 0;
}

/* Asks the router for the user's credentials; the exchange resumes in sasl_on_credentials. */
static void request_credentials(client_t *c, scram_hash_t hash)
{
    ipc_hdr_t h;
    uint32_t seq = ++fe.next_seq ? fe.next_seq : ++fe.next_seq;
    ipc_auth_build(&h, &(ipc_auth_t){.conn = c->id, .seq = seq, .hash = hash, .username = c->user});
    c->sasl->asked = 1;
    /* RFC 6120 6.5.12: a router that is away is a temporary failure. */
    if (router_request(c, &h, seq) < 0) {
        sasl_failure(c, "temporary-auth-failure");
        return;
    }
    client_pause(c);
}

static void plain_start(client_t *c, const char *msg, size_t len)
{
    /* RFC 4616: [authzid] NUL authcid NUL passwd */
    const char *p1 = memchr(msg, '\0', len);
    const char *p2 = p1 ? memchr(p1 + 1, '\0', len - (size_t)(p1 + 1 - msg)) : NULL;
    if (!p1 || !p2 || p2 == p1 + 1 || p2 + 1 == msg + len ||
        memchr(p2 + 1, '\0', len - (size_t)(p2 + 1 - msg))) {
        sasl_failure(c, "malformed-request");
        return;
    }
    char *authzid = xstrndup(msg, (size_t)(p1 - msg));
    char *authcid = xstrndup(p1 + 1, (size_t)(p2 - p1 - 1));
    char user[JID_PART_MAX + 1];
    int ok = jid_prep_local(user, authcid) == 0;
    stream_set_user(c, ok ? user : "");
    int az = ok && authzid_ok(c, authzid);
    free(authzid);
    free(authcid);
    if (!ok) {
        sasl_failure(c, "not-authorized");
        return;
    }
    if (!az) {
        sasl_failure(c, "invalid-authzid");
        return;
    }
    c->sasl->password = xstrndup(p2 + 1, len - (size_t)(p2 + 1 - msg));
    request_credentials(c, SCRAM_SHA256);
}

/* A failed SCRAM step as a SASL <failure/> (RFC 6120 6.5). RFC 5802's server-error
 * values have no place of their own in XMPP's <failure/>: the channel binding ones go into
 * <text/>. A refused binding (the gs2 flag y while -PLUS was offered: a stripped mechanism
 * list; or c= that does not match this TLS connection: another TLS connection in between)
 * is a refused authentication, <not-authorized/>; a gs2 flag that does not fit the
 * mechanism, or a binding type this connection does not offer, is a request we cannot
 * follow, <malformed-request/>. */
static void scram_failure(client_t *c, scram_status_t st)
{
    switch (st) {
    case SCRAM_NOT_AUTHORIZED:
        sasl_failure(c, "not-authorized");
        return;
    case SCRAM_INVALID_AUTHZID:
        sasl_failure(c, "invalid-authzid");
        return;
    case SCRAM_CB_DOWNGRADE:
    case SCRAM_CB_MISMATCH:
        log_warn("conn %llu: SCRAM channel binding refused (client %s): %s",
                 (unsigned long long)c->id, c->addr, scram_status_text(st));
        /* Not a wrong password: a client that binds only with types we do not offer
         * (slixmpp 1.8: tls-unique) says y and falls back to another mechanism; its
         * address must not be locked out for that (auth_failures_per_ip). */
        sasl_refuse(c, "not-authorized", scram_status_text(st), 0);
        return;
    case SCRAM_UNSUPPORTED_CB:
    case SCRAM_CB_NEEDS_PLUS:
    case SCRAM_CB_REQUIRED:
        sasl_failure_text(c, "malformed-request", scram_status_text(st));
        return;
    default:
        sasl_failure(c, "malformed-request");
        return;
    }
}

static void scram_start(client_t *c, const char *msg, size_t len)
{
    const char *user, *authzid;
    scram_status_t st = scram_server_client_first(c->sasl->scram, msg, len, &user, &authzid);
    if (st != SCRAM_OK) {
        scram_failure(c, st);
        return;
    }
    char prepped[JID_PART_MAX + 1];
    if (jid_prep_local(prepped, user) < 0) {
        stream_set_user(c, "");
        sasl_failure(c, "not-authorized");
        return;
    }
    stream_set_user(c, prepped);
    if (!authzid_ok(c, authzid)) {
        sasl_failure(c, "invalid-authzid");
        return;
    }
    request_credentials(c, mech_hash(c->sasl->mech));
}

/* Feeds one client message (initial response or response) to the mechanism. */
static void sasl_step(client_t *c, const char *msg, size_t len)
{
    sasl_t *s = c->sasl;
    if (memchr(msg, '\0', len) && s->mech != MECH_PLAIN) {
        sasl_failure(c, "malformed-request");
        return;
    }
    if (s->mech == MECH_PLAIN) {
        plain_start(c, msg, len);
        return;
    }
    if (s->step == 0) {
        scram_start(c, msg, len);
        return;
    }
    if (refuse_if_address_locked(c))
        return;
    char *out = NULL;
    scram_status_t st = scram_server_client_final(s->scram, msg, len, &out);
    if (st != SCRAM_OK) {
        scram_failure(c, st);
        return;
    }
    sasl_success(c, out);
    free(out);
}

/* Decodes the base64 text of an <auth/> or <response/>; "=" is an empty message. */
static unsigned char *decode_payload(const xml_node_t *el, size_t *len, int *absent)
{
    char *text = xml_node_text(el);
    unsigned char *data;
    *absent = 0;
    if (text[0] == '\0') {
        *absent = 1;
        *len = 0;
        data = (unsigned char *)text;
    } else if (strcmp(text, "=") == 0) {
        *len = 0;
        text[0] = '\0';
        data = (unsigned char *)text;
    } else {
        data = base64_decode(text, strlen(text), len);
        free(text);
    }
    return data;
}

static void sasl_on_auth(client_t *c, const xml_node_t *el)
{
    const char *name = xml_node_attr(el, "mechanism");
    mech_t mech;
    if (!name) {
        sasl_failure(c, "invalid-mechanism");
        return;
    }
    mech = MECH_COUNT;
    for (int i = 0; i < MECH_COUNT; i++)
        if (strcmp(name, mech_names[i]) == 0)
            mech = (mech_t)i;
    if (mech == MECH_COUNT) {
        sasl_failure(c, "invalid-mechanism");
        return;
    }
    /* RFC 6120 6.5.4: mechanisms that need a protected stream (PLAIN, and the -PLUS ones
     * that bind to TLS), or any mechanism while TLS is mandatory and not yet negotiated (a
     * WebSocket cannot negotiate it: ws_protected says whether it counts as protected). */
    int protected = c->tls || ws_protected(c);
    if ((!c->tls && mech_is_plus(mech)) ||
        (!protected && (mech == MECH_PLAIN || fe.require_tls))) {
        sasl_failure(c, "encryption-required");
        return;
    }
    scram_cb_t cb;
    connection_cb(c, &cb);
    /* -PLUS only where it was offered: under TLS with a binding type available. */
    if (mech_is_plus(mech) && !scram_cb_any(&cb)) {
        OPENSSL_cleanse(&cb, sizeof cb);
        sasl_failure(c, "invalid-mechanism");
        return;
    }
    if (refuse_if_address_locked(c)) {
        OPENSSL_cleanse(&cb, sizeof cb);
        return;
    }
    sasl_free(c);
    c->sasl = xcalloc(1, sizeof *c->sasl);
    c->sasl->mech = mech;
    if (mech != MECH_PLAIN) {
        c->sasl->scram = scram_server_new(mech_hash(mech), NULL);
        /* Cannot fail: plus only with a type available, before the first message. */
        scram_server_set_channel_binding(c->sasl->scram, mech_is_plus(mech), &cb);
    }
    OPENSSL_cleanse(&cb, sizeof cb);
    size_t len;
    int absent;
    unsigned char *data = decode_payload(el, &len, &absent);
    if (!data) {
        sasl_failure(c, "incorrect-encoding");
        return;
    }
    if (absent) {
        /* No initial response: ask for it with an empty challenge (RFC 6120 6.4.2). */
        free(data);
        c->sasl->step = -1;
        challenge(c, NULL);
        return;
    }
    sasl_step(c, (const char *)data, len);
    OPENSSL_cleanse(data, len);
    free(data);
}

void sasl_on_element(client_t *c, const xml_node_t *el)
{
    if (strcmp(el->name, "auth") == 0) {
        if (c->authed) {
            client_stream_error(c, "policy-violation", "Already authenticated");
            return;
        }
        sasl_on_auth(c, el);
        return;
    }
    if (strcmp(el->name, "abort") == 0) {
        sasl_failure(c, "aborted");
        return;
    }
    if (strcmp(el->name, "response") == 0) {
        if (!c->sasl || c->pending_seq) {
            sasl_failure(c, "malformed-request");
            return;
        }
        size_t len;
        int absent;
        unsigned char *data = decode_payload(el, &len, &absent);
        if (!data) {
            sasl_failure(c, "incorrect-encoding");
            return;
        }
        if (c->sasl->step == -1)
            c->sasl->step = 0;
        sasl_step(c, (const char *)data, len);
        OPENSSL_cleanse(data, len);
        free(data);
        return;
    }
    client_stream_error(c, "unsupported-stanza-type", NULL);
}

void sasl_on_credentials(client_t *c, const ipc_auth_reply_t *m)
{
    sasl_t *s = c->sasl;
    if (!s || m->seq != c->pending_seq)
        return; /* a late answer to an exchange that is over */
    c->pending_seq = 0;
    if (m->status == IPC_TEMPORARY) {
        sasl_failure(c, "temporary-auth-failure");
        return;
    }
    if (m->status == IPC_LOCKED) {
        sasl_failure_text(c, "temporary-auth-failure",
                          "Too many failed authentication attempts for this account; try "
                          "again later");
        return;
    }
    if (s->mech == MECH_PLAIN && refuse_if_address_locked(c))
        return; /* the password would be checked now */
    scram_hash_t hash = mech_hash(s->mech);
    scram_cred_t cred;
    int have = m->status == IPC_OK && scram_cred_decode(&cred, hash, m->credentials) == 0;
    if (m->status == IPC_OK && !have)
        log_warn("conn %llu: stored credentials of %s are malformed", (unsigned long long)c->id,
                 c->user);
    if (s->mech == MECH_PLAIN) {
        int ok = have && scram_cred_check_password(&cred, s->password);
        OPENSSL_cleanse(&cred, sizeof cred);
        if (ok)
            sasl_success(c, NULL);
        else
            sasl_failure(c, "not-authorized");
        return;
    }
    char *out = NULL;
    scram_status_t st = scram_server_server_first(s->scram, have ? &cred : NULL, &out);
    OPENSSL_cleanse(&cred, sizeof cred);
    if (st != SCRAM_OK) {
        scram_failure(c, st);
        return;
    }
    s->step = 1;
    challenge(c, out);
    free(out);
    client_resume(c);
}
