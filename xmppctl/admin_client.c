#include "admin_client.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "adminproto.h"
#include "cli.h"
#include "curve.h"
#include "log.h"
#include "util.h"

const config_key_t admin_client_config_keys[] = {
    CONFIG_STR("admin_connect", "tcp://127.0.0.1:5556", "the router's admin endpoint xmppctl connects to (the router's admin_bind)"),
    CONFIG_INT("admin_timeout", "5000", 100, 600000, "ms xmppctl waits for the router's answer before it gives up"),
    CONFIG_STR("admin_curve_public", "", "xmppctl's CURVE public key (xmppctl keygen admin); checked against the secret"),
    CONFIG_STR("admin_curve_secret", "", "xmppctl's CURVE secret key, needed with link_curve; its public key goes in the router's admin_curve_allow"),
    CONFIG_STR("admin_curve_secret_file", "", "a file holding that key instead"),
    CONFIG_END,
};

/* CURVE client options from link_curve, router_curve_public and admin_curve_secret. */
static int set_curve(void *sock)
{
    if (!config_bool("link_curve"))
        return 0;
    char server[CURVE_Z85_LEN + 1], secret[CURVE_Z85_LEN + 1], public[CURVE_Z85_LEN + 1],
        given[CURVE_Z85_LEN + 1];
    if (!curve_key_config("router_curve_public", 0, server))
        die("config: link_curve is on but key 'router_curve_public' is not set: xmppctl "
             "needs the router's public key");
    if (!curve_key_config("admin_curve_secret", 1, secret))
        die("config: link_curve is on but key 'admin_curve_secret' (or "
             "admin_curve_secret_file) is not set: make a key pair with xmppctl keygen admin "
             "and list its public key in the router's admin_curve_allow");
    curve_public_of(secret, public);
    if (curve_key_config("admin_curve_public", 0, given) && strcmp(given, public) != 0)
        die("config: key 'admin_curve_public' is not the public key of admin_curve_secret "
             "(that is %s)",
             public);
    unsigned char sk[CURVE_KEY_LEN], pk[CURVE_KEY_LEN], srv[CURVE_KEY_LEN];
    curve_key_parse(secret, sk);
    curve_key_parse(public, pk);
    curve_key_parse(server, srv);
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, srv, sizeof srv) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pk, sizeof pk) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sk, sizeof sk) < 0)
        die("cannot enable CURVE: %s", zmq_strerror(errno));
    OPENSSL_cleanse(sk, sizeof sk);
    OPENSSL_cleanse(secret, sizeof secret);
    return 1;
}

static void unreachable(const char *ep, long ms, int curve)
{
    die("cannot reach the session router at %s within %ld ms (is it running? admin_bind/"
         "admin_connect%s)",
         ep, ms,
         curve ? "; with link_curve: is this xmppctl's public key in the router's "
                 "admin_curve_allow, and router_curve_public the router's key?"
               : "");
}

int admin_client_run(int argc, const char *const *argv)
{
    const char *ep = config_str("admin_connect");
    long timeout = config_int("admin_timeout");
    if (!*ep)
        die("config: key 'admin_connect' is empty: xmppctl needs the router's admin endpoint");
    size_t total = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        total += n;
        if (n > ADMIN_ARG_MAX || total > ADMIN_REQUEST_MAX)
            die("the command is too long (at most %d bytes an argument, %d in all)",
                 ADMIN_ARG_MAX, ADMIN_REQUEST_MAX);
        if (!adminproto_text_ok(argv[i], n))
            die("argument %d is not UTF-8 text (or holds control characters)", i + 1);
    }
    if (argc > ADMIN_MAX_ARGS)
        die("too many arguments");
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
    if (!sock)
        die("cannot make a ZeroMQ socket: %s", zmq_strerror(errno));
    int zero = 0, one = 1, t = (int)timeout;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    /* Nothing is queued before the connection (and its CURVE handshake) is up: a send
     * that cannot go out within the timeout means the router is not there. */
    zmq_setsockopt(sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &t, sizeof t);
    int curve = set_curve(sock);
    if (zmq_connect(sock, ep) < 0)
        die("config: key 'admin_connect': cannot connect to '%s': %s", ep, zmq_strerror(errno));
    uint64_t start = now_ms();
    for (int i = 0; i < argc; i++) {
        if (zmq_send(sock, argv[i], strlen(argv[i]), i + 1 < argc ? ZMQ_SNDMORE : 0) < 0) {
            if (errno == EAGAIN)
                unreachable(ep, timeout, curve);
            die("cannot send to the session router at %s: %s", ep, zmq_strerror(errno));
        }
    }
    uint64_t spent = now_ms() - start;
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    long left = timeout > (long)spent ? timeout - (long)spent : 1;
    int rc;
    do
        rc = zmq_poll(&item, 1, left);
    while (rc < 0 && errno == EINTR);
    if (rc <= 0)
        die("the session router at %s did not answer within %ld ms (admin_timeout)", ep,
             timeout);
    /* The answer: status, text. */
    zmq_msg_t parts[2];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0)
            die("cannot read the session router's answer: %s", zmq_strerror(errno));
        more = zmq_msg_more(&m);
        if (n < 2)
            parts[n++] = m;
        else
            zmq_msg_close(&m);
    }
    if (n != 2)
        die("the session router's answer is malformed (%d frames)", n);
    const char *status = zmq_msg_data(&parts[0]), *text = zmq_msg_data(&parts[1]);
    size_t slen = zmq_msg_size(&parts[0]), tlen = zmq_msg_size(&parts[1]);
    int ok = slen == 2 && memcmp(status, ADMIN_STATUS_OK, 2) == 0;
    if (!ok && !(slen == 5 && memcmp(status, ADMIN_STATUS_ERROR, 5) == 0))
        die("the session router's answer is malformed (status '%.*s')", (int)(slen > 20 ? 20 : slen),
             status);
    FILE *out = ok ? stdout : stderr;
    if (!ok)
        fputs("xmppctl: ", out);
    fwrite(text, 1, tlen, out);
    if (tlen && text[tlen - 1] != '\n')
        fputc('\n', out);
    else if (!tlen && !ok)
        fputs("the command failed\n", out);
    zmq_msg_close(&parts[0]);
    zmq_msg_close(&parts[1]);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return ok ? 0 : 1;
}

void admin_client_keygen(const char *public, const char *secret)
{
    printf("# xmppctl key pair (xmppctl keygen admin), for the router's admin endpoint with\n"
           "# link_curve: the secret stays with xmppctl; the router gets the public key in\n"
           "# admin_curve_allow\n"
           "admin_curve_public = %s\n"
           "admin_curve_secret = %s\n",
           public, secret);
}
