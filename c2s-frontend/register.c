#include "register.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrlimit.h"
#include "client.h"
#include "log.h"
#include "registration.h"
#include "scram.h"
#include "stanza.h"
#include "util.h"

#define NS_FEATURE_REGISTER "http://jabber.org/features/iq-register"
#define NS_PARS "urn:xmpp:pars:0"
#define NS_IBR_TOKEN "urn:xmpp:ibr-token:0"
#define NS_INVITE "urn:xmpp:invite"

/* Registration requests (forms, submissions, tokens) one connection may send; past it the
 * stream ends with policy-violation. Bounds the PBKDF2 work and the router requests one
 * unauthenticated peer can cause per connection (the router limits per address). */
#define REGISTER_MAX_ATTEMPTS 5

static int allow;
static long min_password;
static unsigned iterations;

void register_configure(int allow_registration, long min_chars, unsigned iter)
{
    allow = allow_registration;
    min_password = min_chars;
    iterations = iter;
}

void register_init(void)
{
    register_configure(config_bool("allow_registration"), config_int("register_min_password"),
                       (unsigned)config_int("scram_iterations"));
}

/* Registration is offered where PLAIN would be: under TLS, or where no TLS is configured. */
static int channel_ok(const client_t *c)
{
    return c->tls || !fe.tls;
}

void register_features(client_t *c, buf_t *out)
{
    if (!channel_ok(c))
        return;
    if (allow)
        buf_append_str(out, "<register xmlns='" NS_FEATURE_REGISTER "'/>");
    /* Invitations work whether or not registration is open (XEP-0445 section 4, XEP-0401). */
    buf_append_str(out, "<register xmlns='" NS_IBR_TOKEN "'/><register xmlns='" NS_INVITE "'/>");
}

int register_wants(const client_t *c, const xml_node_t *st)
{
    if (!channel_ok(c) || !st->ns || strcmp(st->ns, XML_NS_CLIENT) != 0 ||
        strcmp(st->name, "iq") != 0)
        return 0;
    const char *to = xml_node_attr(st, "to");
    if (to) {
        char dom[JID_PART_MAX + 1];
        if (jid_prep_domain(dom, to) < 0 || strcmp(dom, fe.domain) != 0)
            return 0;
    }
    const xml_node_t *p = xml_node_first_element(st);
    return p && p->ns &&
           ((strcmp(p->name, "query") == 0 && strcmp(p->ns, NS_REGISTER) == 0) ||
            (strcmp(p->name, "preauth") == 0 && strcmp(p->ns, NS_PARS) == 0));
}

static void send_node(client_t *c, xml_node_t **node_p)
{
    xml_node_set_attr(*node_p, "from", fe.domain);
    xml_node_set_attr(*node_p, "to", NULL); /* the client has no address yet */
    buf_t b = BUF_INIT;
    xml_serialize(*node_p, XML_NS_CLIENT, &b);
    client_write(c, b.data, b.len);
    buf_free(&b);
    xml_node_free(node_p);
}

/* An error reply with a condition and, when given, a text saying what was wrong. */
static void reply_error(client_t *c, const xml_node_t *iq, const char *etype, const char *cond,
                        const char *text)
{
    xml_node_t *err = stanza_error_reply(iq, fe.domain, etype, cond);
    xml_node_t *e = xml_node_child(err, "error", NULL);
    if (text && e) {
        xml_node_t *t = xml_node_new_child(e, "text", NS_STANZAS);
        xml_node_set_attr(t, "xml:lang", "en");
        xml_node_add_text(t, text, strlen(text));
    }
    send_node(c, &err);
}

static void add_text_child(xml_node_t *parent, const char *name, const char *ns, const char *text)
{
    xml_node_t *n = xml_node_new_child(parent, name, ns);
    if (text)
        xml_node_add_text(n, text, strlen(text));
}

static void add_field(xml_node_t *x, const char *type, const char *var, const char *label,
                      const char *value, int required)
{
    xml_node_t *f = xml_node_new_child(x, "field", NS_XDATA);
    xml_node_set_attr(f, "type", type);
    xml_node_set_attr(f, "var", var);
    if (label)
        xml_node_set_attr(f, "label", label);
    if (required)
        xml_node_new_child(f, "required", NS_XDATA);
    if (value)
        add_text_child(f, "value", NS_XDATA, value);
}

/* XEP-0077 3.1: the fields to fill in, as the classic elements and as a data form
 * (XEP-0004, FORM_TYPE jabber:iq:register, XEP-0077 section 4 and 12.4). */
static void send_form(client_t *c, const xml_node_t *iq)
{
    xml_node_t *res = stanza_iq_result(iq, fe.domain);
    xml_node_t *q = xml_node_new_child(res, "query", NS_REGISTER);
    char text[200];
    snprintf(text, sizeof text,
             "Choose a username and a password (at least %ld characters) for your account on %s.",
             min_password, fe.domain);
    add_text_child(q, "instructions", NS_REGISTER, text);
    xml_node_new_child(q, "username", NS_REGISTER);
    xml_node_new_child(q, "password", NS_REGISTER);
    xml_node_t *x = xml_node_new_child(q, "x", NS_XDATA);
    xml_node_set_attr(x, "type", "form");
    add_text_child(x, "title", NS_XDATA, "Account registration");
    add_text_child(x, "instructions", NS_XDATA, text);
    add_field(x, "hidden", "FORM_TYPE", NULL, NS_REGISTER, 0);
    add_field(x, "text-single", "username", "Username", NULL, 1);
    add_field(x, "text-private", "password", "Password", NULL, 1);
    send_node(c, &res);
}

static void secret_free(char **p)
{
    if (*p) {
        OPENSSL_cleanse(*p, strlen(*p));
        xfree(p);
    }
}

/* Sends the request and pauses the client until the router answers. */
static int ask_router(client_t *c, const xml_node_t *iq, const ipc_register_t *m)
{
    ipc_hdr_t h;
    if (ipc_register_build(&h, m) < 0 || router_request(c, &h, m->seq) < 0)
        return -1;
    c->pending_iq = xml_node_copy(iq);
    c->reg_pending = 1;
    client_pause(c);
    return 0;
}

static uint32_t next_seq(void)
{
    return ++fe.next_seq ? fe.next_seq : ++fe.next_seq;
}

/* XEP-0445 / XEP-0401: <preauth token='...'/> before the registration; the router says
 * whether the token is valid (it is consumed by the registration itself). */
static void handle_preauth(client_t *c, const xml_node_t *iq, const xml_node_t *p)
{
    const char *type = xml_node_attr(iq, "type");
    const char *token = xml_node_attr(p, "token");
    if (!type || strcmp(type, "set") != 0) {
        reply_error(c, iq, "cancel", "bad-request", "preauth is sent with type 'set'");
        return;
    }
    if (!token || !register_token_valid(token)) {
        reply_error(c, iq, "cancel", "item-not-found", "Invalid or expired invitation token");
        return;
    }
    snprintf(c->reg_token, sizeof c->reg_token, "%s", token);
    c->reg_token_ok = 0;
    ipc_register_t m = {.conn = c->id, .seq = next_seq(), .flags = IPC_REGISTER_CHECK,
                        .addr = c->addr_key, .token = c->reg_token};
    if (ask_router(c, iq, &m) < 0)
        reply_error(c, iq, "wait", "resource-constraint", "The server cannot check the token now");
}

static void handle_submit(client_t *c, const xml_node_t *iq, const xml_node_t *q)
{
    if (xml_node_child(q, "remove", NS_REGISTER)) {
        reply_error(c, iq, "auth", "not-authorized", "Log in before cancelling a registration");
        return;
    }
    int twice = 0;
    char *user = register_form_value(q, "username", &twice);
    char *password = register_form_value(q, "password", &twice);
    char local[JID_PART_MAX + 1];
    char *sha1 = NULL, *sha256 = NULL;
    register_pw_t pw;
    if (twice) {
        reply_error(c, iq, "modify", "bad-request", "A field is given more than once");
    } else if (!user || !*user || !password || !*password) {
        reply_error(c, iq, "modify", "not-acceptable", "Username and password are required");
    } else if (strlen(user) > JID_PART_MAX || jid_prep_local(local, user) < 0 || !local[0]) {
        reply_error(c, iq, "modify", "not-acceptable",
                    "The username is not valid (RFC 7622 localpart, at most 1023 bytes)");
    } else if ((pw = register_password_check(password, min_password)) != REGISTER_PW_OK) {
        reply_error(c, iq, "modify", "not-acceptable", register_password_text(pw));
    } else if (c->addr_key[0] && addrlimit_auth_wait(c->addr_key, now_ms()) > 0) {
        /* An address the router keeps refusing (register_limit_per_address, counted as
         * failed authentications here) costs no key derivation until its lock-out ends. */
        reply_error(c, iq, "wait", "resource-constraint",
                    "Too many attempts from your address; try again later");
    } else if (scram_creds_make(password, iterations, &sha1, &sha256) < 0) {
        reply_error(c, iq, "wait", "internal-server-error", NULL);
    } else {
        char creds[IPC_FIELD_MAX + 1];
        ipc_register_t m = {.conn = c->id, .seq = next_seq(), .username = local,
                            .credentials = creds, .addr = c->addr_key,
                            .token = c->reg_token_ok ? c->reg_token : ""};
        if (register_creds_join(creds, sizeof creds, sha1, sha256) < 0 ||
            ask_router(c, iq, &m) < 0)
            reply_error(c, iq, "wait", "resource-constraint",
                        "The server cannot register accounts now");
        OPENSSL_cleanse(creds, sizeof creds);
    }
    free(user);
    secret_free(&password);
    secret_free(&sha1);
    secret_free(&sha256);
}

void register_on_iq(client_t *c, const xml_node_t *st)
{
    const char *type = xml_node_attr(st, "type");
    const xml_node_t *p = xml_node_first_element(st);
    if (++c->reg_attempts > REGISTER_MAX_ATTEMPTS) {
        client_stream_error(c, "policy-violation", "Too many registration attempts");
        return;
    }
    if (!xml_node_attr(st, "id") || !type ||
        (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
        client_stream_error(c, "not-authorized", NULL);
        return;
    }
    if (strcmp(p->name, "preauth") == 0) {
        handle_preauth(c, st, p);
        return;
    }
    /* Closed registration without an accepted invitation: XEP-0077 section 3.1. */
    if (!allow && !c->reg_token_ok) {
        reply_error(c, st, "cancel", "service-unavailable",
                    "Registration is by invitation only");
        return;
    }
    if (strcmp(type, "get") == 0)
        send_form(c, st);
    else
        handle_submit(c, st, p);
}

void register_on_reply(client_t *c, const ipc_register_reply_t *m)
{
    if (!c->reg_pending || !c->pending_iq || m->seq != c->pending_seq)
        return;
    c->pending_seq = 0;
    c->reg_pending = 0;
    xml_node_t *iq = c->pending_iq;
    c->pending_iq = NULL;
    const xml_node_t *p = xml_node_first_element(iq);
    int check = p && strcmp(p->name, "preauth") == 0;
    switch (m->status) {
    case IPC_OK:
        if (check) {
            c->reg_token_ok = 1;
        } else {
            c->reg_token_ok = 0; /* used up */
            c->reg_token[0] = '\0';
            log_info("conn %llu: registered an account from %s", (unsigned long long)c->id,
                     c->addr);
        }
        xml_node_t *res = stanza_iq_result(iq, fe.domain);
        send_node(c, &res);
        break;
    case IPC_CONFLICT:
        reply_error(c, iq, "cancel", "conflict", "The username is not available");
        break;
    case IPC_NOT_FOUND:
        c->reg_token_ok = 0;
        c->reg_token[0] = '\0';
        reply_error(c, iq, "cancel", "item-not-found", "Invalid or expired invitation token");
        break;
    case IPC_REFUSED:
        reply_error(c, iq, "cancel", "service-unavailable", "Registration is by invitation only");
        break;
    case IPC_LIMIT:
        if (c->addr_key[0])
            addrlimit_auth_failed(c->addr_key, now_ms());
        reply_error(c, iq, "wait", "resource-constraint",
                    "Too many registrations from your address; try again later");
        break;
    default:
        reply_error(c, iq, "wait", "resource-constraint",
                    "The server cannot register accounts now");
        break;
    }
    xml_node_free(&iq);
    client_resume(c);
}

void register_free(client_t *c)
{
    c->reg_pending = 0;
    OPENSSL_cleanse(c->reg_token, sizeof c->reg_token);
}
