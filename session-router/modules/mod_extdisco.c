/* XEP-0215 external service discovery on the server's domain: the STUN and TURN services
 * clients use for calls (Jingle ICE), with time-limited TURN credentials in the REST API
 * scheme coturn checks with use-auth-secret (core/turnrest.h). Off (no feature, and
 * service-unavailable) unless stun_host or turn_host is set. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "module.h"
#include "modules.h"
#include "secret.h"
#include "turnrest.h"

#define NS_EXTDISCO "urn:xmpp:extdisco:2"
#define MAX_SERVICES 4

/* One <service/> this server lists. */
typedef struct {
    const char *type;      /* "stun", "turn", "turns" (the XMPP Registrar's names) */
    const char *transport; /* "udp", "tcp" */
    const char *host;      /* points into the configuration */
    long port;
    int restricted; /* needs credentials: TURN */
} ext_service_t;

static ext_service_t services[MAX_SERVICES];
static size_t nservices;
static char *secret; /* the shared secret (turn_secret or turn_secret_file); never logged */
static long ttl;
static char separator;

static int extdisco_enabled(void)
{
    return nservices > 0;
}

/* XEP-0215 section 2: an FQDN or an IP address (IPv6 without brackets). */
static int host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-' && h[i] != ':')
            return 0;
    return 1;
}

static void add(const char *type, const char *transport, const char *host, long port,
                int restricted)
{
    services[nservices++] = (ext_service_t){type, transport, host, port, restricted};
}

static void extdisco_open(void)
{
    const char *stun = config_str("stun_host"), *turn = config_str("turn_host");
    long turns_port = config_int("turns_port");
    nservices = 0;
    ttl = config_int("turn_credential_ttl");
    const char *sep = config_str("turn_rest_separator");
    /* coturn reads the expiry up to its --rest-api-separator: one character that no
     * number and no bare JID's start contains. */
    if (strlen(sep) != 1 || isalnum((unsigned char)sep[0]) || sep[0] == '@' ||
        !isgraph((unsigned char)sep[0]))
        log_fatal("config: key 'turn_rest_separator': '%s' is not one punctuation character "
                  "(coturn's rest-api-separator, ':' by default)", sep);
    separator = sep[0];
    if (*stun && !host_ok(stun))
        log_fatal("config: key 'stun_host': '%s' is not a host name or IP address", stun);
    if (*turn && !host_ok(turn))
        log_fatal("config: key 'turn_host': '%s' is not a host name or IP address", turn);
    if (turns_port && !*turn)
        log_fatal("config: key 'turns_port' is set but turn_host is not");
    secret = secret_from_config("turn_secret");
    if (*turn && !secret)
        log_fatal("config: key 'turn_host' is set but neither turn_secret nor "
                  "turn_secret_file is: TURN needs the secret shared with the TURN server "
                  "(coturn's static-auth-secret)");
    if (!*turn && secret) {
        log_warn("config: key 'turn_secret' (or turn_secret_file) is set but turn_host is "
                 "not: no TURN service is offered");
        secret_free(&secret);
    }
    if (*stun)
        add("stun", "udp", stun, config_int("stun_port"), 0);
    if (*turn) {
        add("turn", "udp", turn, config_int("turn_port"), 1);
        add("turn", "tcp", turn, config_int("turn_port"), 1);
        if (turns_port)
            add("turns", "tcp", turn, turns_port, 1);
    }
    if (nservices)
        log_info("extdisco: %zu external services offered (XEP-0215)%s%s%s%s", nservices,
                 *stun ? ", STUN at " : "", stun, *turn ? ", TURN at " : "", turn);
}

static void extdisco_close(void)
{
    secret_free(&secret);
    nservices = 0;
}

/* Appends `svc` to `parent`; a TURN service carries credentials for `user` that expire
 * after turn_credential_ttl (XEP-0215 section 3.3; 'expires' as XEP-0082 says). */
static void add_service(xml_node_t *parent, const ext_service_t *svc, const char *user)
{
    xml_node_t *s = xml_node_new_child(parent, "service", NULL);
    char port[16];
    snprintf(port, sizeof port, "%ld", svc->port);
    xml_node_set_attr(s, "type", svc->type);
    xml_node_set_attr(s, "host", svc->host);
    xml_node_set_attr(s, "port", port);
    xml_node_set_attr(s, "transport", svc->transport);
    if (!svc->restricted)
        return;
    int64_t expiry = (int64_t)time(NULL) + ttl;
    char username[TURNREST_USERNAME_MAX], expires[32];
    char *password = turnrest_credentials(secret, user, separator, expiry, username,
                                          sizeof username);
    if (!password)
        return; /* cannot happen for a bare JID; the client sees no credentials */
    turnrest_datetime(expiry, expires, sizeof expires);
    xml_node_set_attr(s, "restricted", "1");
    xml_node_set_attr(s, "username", username);
    xml_node_set_attr(s, "password", password);
    xml_node_set_attr(s, "expires", expires);
    free(password);
}

/* XEP-0215 sections 3.1 and 3.2: every service, or those of the 'type' asked for (none
 * of an unknown type: an empty list). */
static mod_result_t services_iq(mod_iq_t *iq)
{
    if (!nservices)
        return MOD_PASS; /* not offered: service-unavailable (section 2) */
    const char *type = xml_node_attr(iq->payload, "type");
    xml_node_t *out = xml_node_new("services", NS_EXTDISCO);
    if (type)
        xml_node_set_attr(out, "type", type);
    for (size_t i = 0; i < nservices; i++)
        if (!type || strcmp(type, services[i].type) == 0)
            add_service(out, &services[i], iq->account);
    session_reply_result(iq->from, iq->st, out);
    return MOD_HANDLED;
}

/* The 'port' of a requested service: 0 when absent, -1 when not a port. */
static long requested_port(const xml_node_t *req)
{
    const char *p = xml_node_attr(req, "port");
    if (!p)
        return 0;
    char *end;
    long v = strtol(p, &end, 10);
    if (!*p || *end || !isdigit((unsigned char)*p) || v < 1 || v > 65535)
        return -1;
    return v;
}

static int matches(const ext_service_t *svc, const xml_node_t *req)
{
    long port = requested_port(req);
    return strcmp(xml_node_attr(req, "type"), svc->type) == 0 &&
           strcasecmp(xml_node_attr(req, "host"), svc->host) == 0 &&
           (port == 0 || port == svc->port);
}

/* XEP-0215 section 3.3: credentials for services named by host and type (and port when
 * several share them). A <service/> without host or type, or with a bad port, is a
 * bad-request; none of ours named: item-not-found. */
static mod_result_t credentials_iq(mod_iq_t *iq)
{
    if (!nservices)
        return MOD_PASS;
    int asked = 0;
    for (const xml_node_t *c = iq->payload->children; c; c = c->next) {
        if (!c->name || strcmp(c->name, "service") != 0 || !c->ns ||
            strcmp(c->ns, NS_EXTDISCO) != 0)
            continue;
        if (!xml_node_attr(c, "host") || !xml_node_attr(c, "type") || requested_port(c) < 0) {
            session_reply_error(iq->from, iq->st, "modify", "bad-request");
            return MOD_HANDLED;
        }
        asked++;
    }
    if (!asked) {
        session_reply_error(iq->from, iq->st, "modify", "bad-request");
        return MOD_HANDLED;
    }
    xml_node_t *out = xml_node_new("credentials", NS_EXTDISCO);
    int found = 0;
    for (size_t i = 0; i < nservices; i++) {
        for (const xml_node_t *c = iq->payload->children; c; c = c->next) {
            if (c->name && strcmp(c->name, "service") == 0 && c->ns &&
                strcmp(c->ns, NS_EXTDISCO) == 0 && matches(&services[i], c)) {
                add_service(out, &services[i], iq->account);
                found++;
                break;
            }
        }
    }
    if (!found) {
        xml_node_free(&out);
        session_reply_error(iq->from, iq->st, "cancel", "item-not-found");
        return MOD_HANDLED;
    }
    session_reply_result(iq->from, iq->st, out);
    return MOD_HANDLED;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_EXTDISCO, "services", MOD_GET, MOD_AT_SERVER, services_iq},
    {NS_EXTDISCO, "credentials", MOD_GET, MOD_AT_SERVER, credentials_iq},
    {0},
};

/* XEP-0215 section 5: announced only when there is something to discover. */
static const mod_feature_t features[] = {
    {NS_EXTDISCO, MOD_AT_SERVER, extdisco_enabled},
    {0},
};

static const config_key_t config[] = {
    CONFIG_STR("stun_host", "", "STUN server offered to clients for calls (XEP-0215): host name or IP address; empty: none"),
    CONFIG_INT("stun_port", "3478", 1, 65535, "its UDP port"),
    CONFIG_STR("turn_host", "", "TURN server (coturn with use-auth-secret) offered with time-limited credentials (XEP-0215), over UDP and TCP; empty: none"),
    CONFIG_INT("turn_port", "3478", 1, 65535, "its UDP and TCP port"),
    CONFIG_INT("turns_port", "0", 0, 65535, "its TURN-over-TLS port, listed as type turns; 0: none"),
    CONFIG_STR("turn_secret", "", "the secret shared with the TURN server (coturn's static-auth-secret); required with turn_host"),
    CONFIG_STR("turn_secret_file", "", "a file holding that secret instead"),
    CONFIG_INT("turn_credential_ttl", "86400", 60, 2592000, "seconds the TURN credentials handed out stay valid"),
    CONFIG_STR("turn_rest_separator", ":", "character between expiry and user in TURN usernames (coturn's rest-api-separator)"),
    CONFIG_END,
};

module_t mod_extdisco = {
    .name = "extdisco",
    .iq = iq_handlers,
    .features = features,
    .config = config,
    .open = extdisco_open,
    .close = extdisco_close,
};
