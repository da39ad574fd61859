#include "zap.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "config.h"
#include "curve.h"
#include "hmap.h"
#include "log.h"
#include "util.h"

const config_key_t zap_config_keys[] = {
    CONFIG_STR("router_curve_secret", "", "the router's CURVE secret key (xmppctl keygen router); required with link_curve"),
    CONFIG_STR("router_curve_secret_file", "", "a file holding that key instead"),
    CONFIG_STR("router_curve_allow", "", "frontend public keys allowed to connect, comma-separated"),
    CONFIG_STR("router_curve_allow_file", "", "a file of allowed frontend keys, one per line, optionally followed by a name"),
    CONFIG_STR("admin_curve_allow", "", "xmppctl public keys (xmppctl keygen admin) allowed on admin_bind with link_curve, comma-separated"),
    CONFIG_STR("admin_curve_allow_file", "", "a file of allowed xmppctl keys, one per line, optionally followed by a name"),
    CONFIG_END,
};
#include "zlink.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "xmpp-link"
#define ZAP_ADMIN_DOMAIN "xmpp-admin"
#define ZAP_MONITOR_ENDPOINT "inproc://session-router-link-monitor"
/* A refused frontend retries every 100 ms (libzmq's reconnect interval): log the first
 * refusal from an address, then one line a minute with the count. */
#define REFUSAL_LOG_MS 60000
#define REFUSAL_TABLE_MAX 256

typedef struct {
    uint64_t last_ms;         /* when it was last logged */
    unsigned long suppressed; /* refusals since, not logged */
} refusal_t;

static struct {
    int on;
    void *rep, *monitor, *sock;
    zlink_t *rep_link, *monitor_link;
    hmap_t *allowed; /* 32-byte public key -> label (malloc'd, "" when none) */
    hmap_t *admin_allowed; /* the same for xmppctl on the admin endpoint, or NULL */
    hmap_t *refused; /* "zap ADDRESS" or "monitor ..." -> refusal_t */
} zap;

/* 1 when a refusal named by `what` should be logged now; *suppressed gets the count of
 * those not logged since the last line. */
static int refusal_due(const char *what, unsigned long *suppressed)
{
    uint64_t now = now_ms();
    refusal_t *r = hmap_sget(zap.refused, what);
    if (!r) {
        if (hmap_count(zap.refused) >= REFUSAL_TABLE_MAX) {
            size_t pos = 0, kl;
            const void *k;
            void *v;
            while (hmap_next(zap.refused, &pos, &k, &kl, &v))
                free(v);
            hmap_destroy(&zap.refused);
            zap.refused = hmap_new();
        }
        r = xcalloc(1, sizeof *r);
        hmap_sput(zap.refused, what, r);
    } else if (now - r->last_ms < REFUSAL_LOG_MS) {
        r->suppressed++;
        return 0;
    }
    *suppressed = r->suppressed;
    r->suppressed = 0;
    r->last_ms = now;
    return 1;
}

/* " (N more since the last line)", or "" (a static buffer: one use per log line). */
static const char *suppressed_text(unsigned long n)
{
    static char text[64];
    if (!n)
        return "";
    snprintf(text, sizeof text, " (%lu more since the last such line)", n);
    return text;
}

/* Copies a frame as printable text for the log. */
static void frame_text(char *out, size_t n, const zpart_t *p)
{
    size_t len = p->len < n - 1 ? p->len : n - 1;
    const unsigned char *s = p->data;
    for (size_t i = 0; i < len; i++)
        out[i] = isprint(s[i]) ? (char)s[i] : '?';
    out[len] = '\0';
}

static int frame_is(const zpart_t *p, const char *s)
{
    return p->len == strlen(s) && memcmp(p->data, s, p->len) == 0;
}

static void zap_reply(const zpart_t *request_id, const char *status, const char *text,
                      const char *user)
{
    zpart_t parts[6] = {{"1.0", 3},
                        {request_id ? request_id->data : "", request_id ? request_id->len : 0},
                        {status, strlen(status)},
                        {text, strlen(text)},
                        {user, strlen(user)},
                        {"", 0}};
    if (zlink_send(zap.rep_link, parts, 6) < 0)
        log_error("link: cannot answer a ZAP request: %s", zmq_strerror(errno));
}

/* One ZAP request: version, request id, domain, address, routing id, mechanism, then the
 * client's 32-byte public key for CURVE. */
static void on_zap_request(void *ud, const zpart_t *parts, int nparts)
{
    (void)ud;
    if (nparts < 6 || nparts > ZLINK_MAX_PARTS || !frame_is(&parts[0], "1.0")) {
        log_warn("link: malformed ZAP request (%d frames) refused", nparts);
        zap_reply(nparts >= 2 ? &parts[1] : NULL, "400", "malformed request", "");
        return;
    }
    char address[64], mech[16], key[CURVE_Z85_LEN + 1] = "(none)";
    frame_text(address, sizeof address, &parts[3]);
    frame_text(mech, sizeof mech, &parts[5]);
    int curve = frame_is(&parts[5], "CURVE") && nparts == 7 && parts[6].len == CURVE_KEY_LEN;
    if (curve)
        zmq_z85_encode(key, parts[6].data, CURVE_KEY_LEN);
    /* Each socket has its domain, and each domain its own keys: a frontend's key does
     * not open the admin endpoint, nor an admin key the link. */
    int admin = frame_is(&parts[2], ZAP_ADMIN_DOMAIN);
    hmap_t *keys = admin ? zap.admin_allowed : frame_is(&parts[2], ZAP_DOMAIN) ? zap.allowed : NULL;
    const char *who = admin ? "an admin client (xmppctl)" : "a frontend";
    const char *label = curve && keys ? hmap_get(keys, parts[6].data, CURVE_KEY_LEN) : NULL;
    if (label) {
        log_info("%s: admitted %s at %s with key %s%s%s", admin ? "admin" : "link", who,
                 address, key, *label ? " " : "", label);
        zap_reply(&parts[1], "200", "OK", *label ? label : key);
        return;
    }
    /* Counted per address, not per key: a stranger who tries a fresh key each time would
     * otherwise get a log line for every try. */
    char what[80];
    snprintf(what, sizeof what, "zap %s", address);
    unsigned long suppressed;
    if (refusal_due(what, &suppressed)) {
        if (!curve)
            log_warn("%s: refused %s at %s: mechanism %s, not CURVE%s", admin ? "admin" : "link",
                     who, address, mech, suppressed_text(suppressed));
        else
            log_warn("%s: refused %s at %s: CURVE key %s is not in %s_curve_allow or "
                     "%s_curve_allow_file%s",
                     admin ? "admin" : "link", who, address, key, admin ? "admin" : "router",
                     admin ? "admin" : "router", suppressed_text(suppressed));
    }
    zap_reply(&parts[1], "400", curve ? "key not allowed" : "CURVE required", "");
}

/* Handshakes that fail before ZAP is asked (no CURVE at all, or a frontend that has the
 * wrong router_curve_public) show only as socket monitor events. libzmq names the listening
 * endpoint there, not the peer. */
static void on_monitor(void *ud, const zpart_t *parts, int nparts)
{
    (void)ud;
    if (nparts != 2 || parts[0].len != 6)
        return;
    uint16_t event;
    uint32_t value;
    memcpy(&event, parts[0].data, sizeof event);
    memcpy(&value, (const char *)parts[0].data + 2, sizeof value);
    const char *why;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        why = "the peer does not use CURVE (a frontend without link_curve?)";
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
             value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        why = "the peer's handshake cannot be decrypted (a frontend with the wrong "
              "router_curve_public?)";
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        why = "protocol error in the handshake";
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        why = "the peer left during the CURVE handshake (a frontend without link_curve, or "
              "one that has the wrong router_curve_public?)";
    else
        return;
    char endpoint[128], what[200];
    frame_text(endpoint, sizeof endpoint, &parts[1]);
    snprintf(what, sizeof what, "monitor %s %" PRIu32, endpoint, value);
    unsigned long suppressed;
    if (refusal_due(what, &suppressed))
        log_warn("link: refused a connection on %s: %s%s", endpoint, why,
                 suppressed_text(suppressed));
}

static void allow_key(hmap_t *map, const char *token, const char *label, const char *source)
{
    unsigned char key[CURVE_KEY_LEN];
    if (curve_key_parse(token, key) < 0)
        log_fatal("config: %s: '%s' is not a CURVE public key (40 Z85 characters, made by "
                  "xmppctl keygen)",
                  source, token);
    free(hmap_put(map, key, sizeof key, xstrdup(label)));
}

/* router_curve_allow, admin_curve_allow (config key `name`): public keys separated by
 * commas (spaces around them are ignored). */
static void allow_list(hmap_t *map, const char *name)
{
    char *copy = xstrdup(config_str(name)), *save = NULL, source[80];
    snprintf(source, sizeof source, "key '%s'", name);
    for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save))
        allow_key(map, t, "", source);
    free(copy);
}

/* Makes `sock` a CURVE server with the router's secret key (Z85, wiped here), its
 * clients checked by the ZAP handler under `domain`. Fatal when libzmq refuses. */
static void curve_server(void *sock, char *secret, const char *domain, const char *what)
{
    unsigned char sk[CURVE_KEY_LEN];
    curve_key_parse(secret, sk);
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sk, sizeof sk) < 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) < 0)
        log_fatal("%s: cannot enable CURVE: %s", what, zmq_strerror(errno));
    OPENSSL_cleanse(sk, sizeof sk);
    OPENSSL_cleanse(secret, CURVE_Z85_LEN + 1);
}

/* router_curve_allow_file, admin_curve_allow_file (config key `name`): one public key per
 * line, optionally followed by a name for the logs; empty lines and '#' comments are
 * skipped. */
static void allow_file(hmap_t *map, const char *name)
{
    const char *path = config_str(name);
    if (!*path)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        log_fatal("config: key '%s': cannot open '%s': %s", name, path, strerror(errno));
    char line[1024], source[1200];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        char *end = s + strcspn(s, " \t\r\n");
        char *label = end;
        if (*end) {
            *end = '\0';
            label = end + 1;
            while (isspace((unsigned char)*label))
                label++;
            label[strcspn(label, "\r\n")] = '\0';
        }
        snprintf(source, sizeof source, "key '%s': %s:%d", name, path, lineno);
        allow_key(map, s, label, source);
    }
    fclose(f);
}

int zap_open(evloop_t *loop, void *zctx, void *sock)
{
    static const char *const keys[] = {"router_curve_secret", "router_curve_secret_file",
                                       "router_curve_allow", "router_curve_allow_file"};
    if (!config_bool("link_curve")) {
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (*config_str(keys[i])) {
                log_warn("link: link_curve is false, so '%s' is ignored: the link to the "
                         "frontends is neither encrypted nor authenticated",
                         keys[i]);
                break;
            }
        return 0;
    }
    char secret[CURVE_Z85_LEN + 1], public[CURVE_Z85_LEN + 1], given[CURVE_Z85_LEN + 1];
    if (!curve_key_config("router_curve_secret", 1, secret))
        log_fatal("config: link_curve is on but key 'router_curve_secret' (or "
                  "router_curve_secret_file) is not set; make a key pair with xmppctl keygen "
                  "router");
    curve_public_of(secret, public);
    if (curve_key_config("router_curve_public", 0, given) && strcmp(given, public) != 0)
        log_fatal("config: key 'router_curve_public' is not the public key of "
                  "router_curve_secret (that is %s)",
                  public);
    zap.allowed = hmap_new();
    zap.refused = hmap_new();
    allow_list(zap.allowed, "router_curve_allow");
    allow_file(zap.allowed, "router_curve_allow_file");
    if (hmap_count(zap.allowed) == 0)
        log_fatal("config: link_curve is on but no frontend may connect: list their public "
                  "keys in key 'router_curve_allow' or 'router_curve_allow_file'");

    curve_server(sock, secret, ZAP_DOMAIN, "link");

    /* The handler must be bound before the link socket accepts anyone: libzmq lets every
     * client in when no handler is there. */
    int linger = 0;
    zap.rep = zmq_socket(zctx, ZMQ_REP);
    if (!zap.rep || zmq_setsockopt(zap.rep, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
        zmq_bind(zap.rep, ZAP_ENDPOINT) < 0)
        log_fatal("link: cannot start the ZAP handler: %s", zmq_strerror(errno));
    zap.rep_link = zlink_new(loop, zap.rep, on_zap_request, NULL);
    if (zmq_socket_monitor(sock, ZAP_MONITOR_ENDPOINT,
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) < 0)
        log_fatal("link: cannot monitor the link socket: %s", zmq_strerror(errno));
    zap.monitor = zmq_socket(zctx, ZMQ_PAIR);
    if (!zap.monitor || zmq_connect(zap.monitor, ZAP_MONITOR_ENDPOINT) < 0)
        log_fatal("link: cannot open the link monitor: %s", zmq_strerror(errno));
    zap.monitor_link = zlink_new(loop, zap.monitor, on_monitor, NULL);
    zap.sock = sock;
    zap.on = 1;
    log_info("link: CURVE on, router public key %s, %zu frontend keys allowed", public,
             hmap_count(zap.allowed));
    return 1;
}

int zap_admin_server(void *sock)
{
    if (!zap.on) {
        if (*config_str("admin_curve_allow") || *config_str("admin_curve_allow_file"))
            log_warn("admin: link_curve is false, so the admin_curve_allow keys are ignored");
        return 0;
    }
    zap.admin_allowed = hmap_new();
    allow_list(zap.admin_allowed, "admin_curve_allow");
    allow_file(zap.admin_allowed, "admin_curve_allow_file");
    if (hmap_count(zap.admin_allowed) == 0)
        return -1;
    /* The router's own key pair, read again (zap_open wiped its copy). */
    char secret[CURVE_Z85_LEN + 1];
    curve_key_config("router_curve_secret", 1, secret);
    curve_server(sock, secret, ZAP_ADMIN_DOMAIN, "admin");
    log_info("admin: CURVE on, %zu admin keys allowed", hmap_count(zap.admin_allowed));
    return 1;
}

static void free_values(hmap_t **map)
{
    if (!*map)
        return;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(*map, &pos, &k, &kl, &v))
        free(v);
    hmap_destroy(map);
}

void zap_close(void)
{
    if (!zap.on)
        return;
    zlink_destroy(&zap.rep_link);
    zlink_destroy(&zap.monitor_link);
    zmq_socket_monitor(zap.sock, NULL, 0);
    zmq_close(zap.monitor);
    zmq_close(zap.rep);
    zap.rep = zap.monitor = zap.sock = NULL;
    free_values(&zap.allowed);
    free_values(&zap.admin_allowed);
    free_values(&zap.refused);
    zap.on = 0;
}
