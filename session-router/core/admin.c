/* The admin endpoint (admin.h): a ROUTER socket on admin_bind in the link's ZeroMQ
 * context, so that the link's ZAP handler (zap.c) admits its CURVE clients too, under its
 * own domain and keys. Requests are read with common/adminproto, looked up in the command
 * registry and handed to their handler; each pending request remembers its client's
 * routing id until it is answered. */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "adminproto.h"
#include "buf.h"
#include "hmap.h"
#include "log.h"
#include "router.h"
#include "util.h"
#include "zap.h"
#include "zlink.h"

const config_key_t admin_config_keys[] = {
    CONFIG_STR("admin_bind", "tcp://127.0.0.1:5556", "ZeroMQ endpoint of the router's admin endpoint for xmppctl (\"\": none); loopback or ipc:// unless link_curve is on"),
    CONFIG_END,
};

#define ADMIN_IDENT_MAX 255

struct admin_req {
    admin_done_fn done; /* admin_run: who gets the answer (NULL: the socket's client) */
    void *done_ud;
    unsigned char ident[ADMIN_IDENT_MAX]; /* the client's routing id */
    size_t ident_len;
    int envelope;      /* the client is a REQ socket: replies start with an empty frame */
    int timed_out;     /* answered "timed out" already: the handler's answer is dropped */
    char cmd[32];      /* for the logs */
    ev_timer_t *timer; /* ADMIN_REQUEST_TIMEOUT_MS */
    admin_req_t *prev, *next;
};

static struct {
    void *sock;
    zlink_t *link;
    hmap_t *commands; /* name -> const admin_command_t * */
    admin_req_t *pending;
    size_t npending;
    admin_counter_t *counters, **counters_tail;
    /* stanzas per second: one bucket per second of the last ADMIN_RATE_WINDOW + 1 */
    unsigned long long bucket[ADMIN_RATE_WINDOW + 1];
    uint64_t bucket_sec[ADMIN_RATE_WINDOW + 1];
    unsigned long long stanzas;
} adm = {.counters_tail = &adm.counters};

static const admin_command_t help_command[2];

void admin_register(const admin_command_t *cmds)
{
    if (!adm.commands) {
        adm.commands = hmap_new();
        hmap_sput(adm.commands, "help", (void *)&help_command[0]); /* always there */
    }
    for (const admin_command_t *c = cmds; c && c->name; c++) {
        const admin_command_t *known = hmap_sget(adm.commands, c->name);
        if (known == c)
            continue; /* the same table again (the registry opened twice: unit tests) */
        if (known)
            log_fatal("admin: the command '%s' is registered twice", c->name);
        hmap_sput(adm.commands, c->name, (void *)c);
    }
}

static int compare_names(const void *a, const void *b)
{
    const admin_command_t *x = *(const admin_command_t *const *)a;
    const admin_command_t *y = *(const admin_command_t *const *)b;
    return strcmp(x->name, y->name);
}

/* help: every command and its usage line, sorted by name. */
static void cmd_help(admin_req_t *req, int argc, const char *const *argv)
{
    (void)argc;
    (void)argv;
    size_t n = hmap_count(adm.commands), i = 0, pos = 0, kl;
    const admin_command_t **list = xcalloc(n ? n : 1, sizeof *list);
    const void *k;
    void *v;
    while (hmap_next(adm.commands, &pos, &k, &kl, &v))
        list[i++] = v;
    qsort(list, n, sizeof *list, compare_names);
    buf_t b = BUF_INIT;
    for (i = 0; i < n; i++)
        buf_printf(&b, "%s\n", list[i]->usage ? list[i]->usage : list[i]->name);
    admin_reply(req, 1, b.data ? b.data : "");
    buf_free(&b);
    free(list);
}

static const admin_command_t help_command[2] = {
    {"help", 0, 0, cmd_help, "help  the commands the router serves"},
    {0},
};

void admin_counter_register(admin_counter_t *c)
{
    for (const admin_counter_t *k = adm.counters; k; k = k->next)
        if (k == c)
            return;
    c->next = NULL;
    *adm.counters_tail = c;
    adm.counters_tail = &c->next;
}

const admin_counter_t *admin_counters(void)
{
    return adm.counters;
}

void admin_count_stanza(void)
{
    uint64_t sec = now_ms() / 1000;
    size_t i = sec % (ADMIN_RATE_WINDOW + 1);
    if (adm.bucket_sec[i] != sec) {
        adm.bucket_sec[i] = sec;
        adm.bucket[i] = 0;
    }
    adm.bucket[i]++;
    adm.stanzas++;
}

unsigned long long admin_stanzas_recent(int seconds)
{
    if (seconds > ADMIN_RATE_WINDOW)
        seconds = ADMIN_RATE_WINDOW;
    /* The full seconds before the current one: the current bucket is still filling. */
    uint64_t now = now_ms() / 1000;
    unsigned long long n = 0;
    for (int back = 1; back <= seconds; back++) {
        uint64_t sec = now - (uint64_t)back;
        size_t i = sec % (ADMIN_RATE_WINDOW + 1);
        if (adm.bucket_sec[i] == sec)
            n += adm.bucket[i];
    }
    return n;
}

unsigned long long admin_stanzas_total(void)
{
    return adm.stanzas;
}

/* Sends [delimiter,] status, text to a client; a client that left is not an error. */
static void send_reply(const admin_req_t *req, int ok, const char *text)
{
    if (!adm.link)
        return;
    const char *status = ok ? ADMIN_STATUS_OK : ADMIN_STATUS_ERROR;
    zpart_t parts[4];
    int n = 0;
    parts[n++] = (zpart_t){req->ident, req->ident_len};
    if (req->envelope)
        parts[n++] = (zpart_t){"", 0};
    parts[n++] = (zpart_t){status, strlen(status)};
    parts[n++] = (zpart_t){text, strlen(text)};
    if (zlink_send(adm.link, parts, n) < 0)
        log_info("admin: the answer to '%s' was not delivered (%s): its client left",
                 req->cmd, zmq_strerror(errno));
}

static void req_free(admin_req_t *req)
{
    evloop_cancel(rt.loop, &req->timer);
    if (req->prev)
        req->prev->next = req->next;
    else
        adm.pending = req->next;
    if (req->next)
        req->next->prev = req->prev;
    adm.npending--;
    free(req);
}

void admin_reply(admin_req_t *req, int ok, const char *text)
{
    if (req->done)
        req->done(req->done_ud, ok, text ? text : "");
    else if (!req->timed_out)
        send_reply(req, ok, text ? text : "");
    req_free(req);
}

void admin_replyf(admin_req_t *req, int ok, const char *fmt, ...)
{
    buf_t b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    admin_reply(req, ok, b.data ? b.data : "");
    buf_free(&b);
}

static void on_timeout(evloop_t *loop, void *ud)
{
    (void)loop;
    admin_req_t *req = ud;
    req->timer = NULL;
    log_warn("admin: '%s' took longer than %d ms", req->cmd, ADMIN_REQUEST_TIMEOUT_MS);
    send_reply(req, 0, "the router did not finish the command in time (is Redis reachable?)");
    req->timed_out = 1;
}

/* An answer before any request exists (malformed, unknown, busy). */
static void reply_now(const zpart_t *id, int envelope, const char *text)
{
    admin_req_t tmp = {.envelope = envelope};
    memcpy(tmp.ident, id->data, id->len);
    tmp.ident_len = id->len;
    snprintf(tmp.cmd, sizeof tmp.cmd, "?");
    send_reply(&tmp, 0, text);
}

/* A new pending request (the caller checked ADMIN_PENDING_MAX). */
static admin_req_t *req_new(admin_done_fn done, void *ud)
{
    admin_req_t *req = xcalloc(1, sizeof *req);
    req->done = done;
    req->done_ud = ud;
    snprintf(req->cmd, sizeof req->cmd, "?");
    req->next = adm.pending;
    if (adm.pending)
        adm.pending->prev = req;
    adm.pending = req;
    adm.npending++;
    return req;
}

/* Finds the command of argv[0], checks its argument count and hands the request to it;
 * what is wrong is answered here. */
static void run(admin_req_t *req, int argc, const char *const *argv)
{
    const admin_command_t *c = adm.commands ? hmap_sget(adm.commands, argv[0]) : NULL;
    int nargs = argc - 1;
    if (!c) {
        admin_replyf(req, 0, "unknown command '%.40s' (try: help)", argv[0]);
        return;
    }
    if (nargs < c->min_args || nargs > c->max_args) {
        admin_replyf(req, 0, "usage: %s", c->usage ? c->usage : c->name);
        return;
    }
    snprintf(req->cmd, sizeof req->cmd, "%s", c->name);
    log_info("admin: %s%s%s", c->name, nargs ? " " : "", nargs ? argv[1] : "");
    c->fn(req, argc, argv);
}

void admin_run(int argc, const char *const *argv, admin_done_fn done, void *ud)
{
    if (argc < 1 || !argv[0][0]) {
        done(ud, 0, "no command");
        return;
    }
    if (adm.npending >= ADMIN_PENDING_MAX) {
        done(ud, 0, "busy: too many admin requests in flight, try again");
        return;
    }
    run(req_new(done, ud), argc, argv);
}

static void on_request(void *ud, const zpart_t *parts, int nparts)
{
    (void)ud;
    if (nparts < 1 || parts[0].len == 0 || parts[0].len > ADMIN_IDENT_MAX)
        return;
    /* A REQ client puts an empty delimiter frame before its request; a DEALER may not. */
    int envelope = nparts >= 2 && parts[1].len == 0;
    int first = envelope ? 2 : 1;
    admin_request_t *r = xmalloc(sizeof *r);
    const char *why;
    if (nparts > ZLINK_MAX_PARTS) {
        reply_now(&parts[0], envelope, "too many arguments");
        free(r);
        return;
    }
    if (adminproto_parse(r, parts + first, nparts - first, &why) < 0) {
        log_warn("admin: refused a request: %s", why);
        reply_now(&parts[0], envelope, why);
        free(r);
        return;
    }
    if (adm.npending >= ADMIN_PENDING_MAX) {
        reply_now(&parts[0], envelope, "busy: too many admin requests in flight, try again");
    } else {
        admin_req_t *req = req_new(NULL, NULL);
        memcpy(req->ident, parts[0].data, parts[0].len);
        req->ident_len = parts[0].len;
        req->envelope = envelope;
        req->timer = evloop_timer(rt.loop, ADMIN_REQUEST_TIMEOUT_MS, on_timeout, req);
        run(req, r->argc, r->argv);
    }
    free(r);
}

/* Loopback: tcp://127.x.y.z:PORT or tcp://[::1]:PORT (numeric: a name could resolve to any
 * address), or a local ipc:// socket. */
static int endpoint_is_local(const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0)
        return 1;
    if (strncmp(ep, "tcp://", 6) != 0)
        return 0;
    const char *host = ep + 6;
    if (strncmp(host, "[::1]:", 6) == 0)
        return 1;
    const char *colon = strrchr(host, ':');
    char ip[INET_ADDRSTRLEN];
    struct in_addr a;
    if (!colon || (size_t)(colon - host) >= sizeof ip)
        return 0;
    memcpy(ip, host, (size_t)(colon - host));
    ip[colon - host] = '\0';
    return inet_pton(AF_INET, ip, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

void admin_open(void)
{
    admin_register(help_command);
    const char *ep = config_str("admin_bind");
    if (!*ep) {
        log_info("admin: admin_bind is empty: no admin endpoint");
        return;
    }
    adm.sock = zmq_socket(rt.zctx, ZMQ_ROUTER);
    if (!adm.sock)
        log_fatal("admin: cannot make a socket: %s", zmq_strerror(errno));
    int one = 1, linger = 0;
    /* A reply to a client that gave up fails instead of waiting in a queue. */
    zmq_setsockopt(adm.sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(adm.sock, ZMQ_LINGER, &linger, sizeof linger);
    int64_t maxmsg = ADMIN_REQUEST_MAX;
    zmq_setsockopt(adm.sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    int hwm = 2 * ADMIN_PENDING_MAX;
    zmq_setsockopt(adm.sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(adm.sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    int curve = zap_admin_server(adm.sock);
    if (curve < 0) {
        log_warn("admin: link_curve is on but no xmppctl key is listed in admin_curve_allow or "
                 "admin_curve_allow_file: the admin endpoint %s stays closed (make a key pair "
                 "with xmppctl keygen admin)",
                 ep);
        zmq_close(adm.sock);
        adm.sock = NULL;
        return;
    }
    if (!curve && !endpoint_is_local(ep))
        log_fatal("config: key 'admin_bind': '%s' is not a loopback or ipc:// endpoint, and "
                  "without link_curve anyone who reaches it could run admin commands; bind it "
                  "to 127.0.0.1, or turn on link_curve and list xmppctl keys in "
                  "admin_curve_allow",
                  ep);
    if (zmq_bind(adm.sock, ep) < 0)
        log_fatal("config: key 'admin_bind': cannot bind '%s': %s", ep, zmq_strerror(errno));
    adm.link = zlink_new(rt.loop, adm.sock, on_request, NULL);
    log_info("admin: listening for xmppctl on %s%s", ep, curve ? " (CURVE)" : "");
}

void admin_close(void)
{
    /* Handlers still waiting would answer into freed memory: nothing is pending any more
     * once Redis is closed (storage_close answers every callback), but be sure. */
    while (adm.pending) {
        adm.pending->timed_out = 1;
        req_free(adm.pending);
    }
    zlink_destroy(&adm.link);
    if (adm.sock)
        zmq_close(adm.sock);
    adm.sock = NULL;
    hmap_destroy(&adm.commands);
}
