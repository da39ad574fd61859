/* linkgen: feeds the session-router directly over its link (docs/PROTOCOL.md), without
 * frontends, TLS or XMPP clients, so that what is measured is the router's cost alone.
 *
 * One process acts as K stand-in frontends: one ZeroMQ DEALER socket each, with a
 * routing id NAME:EPOCH, a hello and a heartbeat every second, as c2s-frontend does. Each
 * binds its share of 2 x P sessions (bind needs no auth before it: the router takes the
 * frontend's word that SASL succeeded), sends each session's initial presence as a stanza,
 * then the pairs send `chat` messages to each other's bare JID as IPC_STANZA with the header
 * facts the frontend fills (kind, type, to, from, id) and the payload serialised as the
 * frontend serialises it (to prepared, from added, double quotes). Closed loop: W messages
 * in flight per sender, each deliver read back lets its sender send the next one; or
 * --rate R messages per second in all. The two ends of a pair sit on different stand-ins
 * when K > 1.
 *
 * Several processes can feed one router: each takes its own accounts (--first) and name,
 * and --start-at makes their measured windows coincide. With --watch PID,... the process
 * reads the CPU of those processes and of each of their threads (/proc/PID/task) at the
 * start and end of its window, and their CPU and RSS before the binds and once the sessions
 * are bound (--duration 0: only that).
 *
 * With --offline the second of each pair does not bind: the first sends it W messages,
 * which the router stores in Redis (mod_offline), for the memory per offline message.
 *
 * Prints one "RESULT scenario=link-msg ..." (or link-offline) line. See bench/README.md. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ipc.h"
#include "lg.h"
#include "zlink.h"

#define MAX_FE 64
#define MAX_WATCH 4
#define MAX_THREADS 64

static struct {
    const char *endpoint, *domain, *prefix, *name, *resource;
    uint32_t frontends, pairs, window, first;
    double duration, rate, drain, settle;
    uint64_t start_at_ms; /* 0: as soon as ready */
    int offline;          /* only the first of each pair binds and sends W messages to the other */
    int no_batch;         /* --no-batch: one ZeroMQ message per link message, as before batches */
    pid_t watch[MAX_WATCH];
    int nwatch;
} opt = {
    .endpoint = NULL,
    .domain = "localhost",
    .prefix = "lg",
    .name = "linkgen",
    .resource = "link",
    .frontends = 2,
    .pairs = 200,
    .window = 10,
    .first = 0,
    .duration = 10,
    .rate = 0,
    .drain = 5,
    .settle = 1,
};

typedef struct {
    void *sock;
    uint64_t epoch;
    char name[64];
    int hello; /* the router answered our hello */
    int batch; /* its hello said it takes batches (docs/PROTOCOL.md, "Batches") */
    buf_t out; /* the batch of this pass */
    uint32_t nout;
} fe_t;

typedef struct {
    uint32_t fe;
    char full[256];
    char bare[128];
    int bound;
    int32_t inflight;
} sess_t;

static fe_t fes[MAX_FE];
static uint32_t bind_replies; /* bind-reply ok received */
static sess_t *sess;
static uint32_t nsess;
static void *zctx;

static struct {
    int running;
    uint64_t sent, received, errors, bad, seq, send_fail;
    uint64_t presences, other;
    uint64_t win_received; /* deliveries inside the measured window */
    double allowance;
    uint64_t t_tick;
    uint32_t rr;
    lg_hist_t lat;
} ms;

static uint64_t now_us_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void die(const char *what)
{
    fprintf(stderr, "linkgen: %s\n", what);
    exit(1);
}

/* ---- the link ---- */

static int send_now(fe_t *f, const zpart_t *parts, int n)
{
    for (int i = 0; i < n; i++)
        if (zmq_send(f->sock, parts[i].data, parts[i].len,
                     ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0)) < 0)
            return -1;
    return 0;
}

static void send_alone(void *ud, const zpart_t *parts, int n)
{
    if (send_now(ud, parts, n) < 0) ms.send_fail++;
}

/* Sends what this pass batched, as the frontend does (zlink.c): one message alone, more as
 * one batch frame. What a full pipe refuses is counted and dropped. */
static void flush_fe(fe_t *f)
{
    if (f->nout == 1)
        zbatch_open(f->out.data, f->out.len, NULL, send_alone, f);
    else if (f->nout > 1 && send_now(f, &(zpart_t){f->out.data, f->out.len}, 1) < 0)
        ms.send_fail += f->nout;
    buf_clear(&f->out);
    f->nout = 0;
}

static int send_msg_parts(fe_t *f, const ipc_hdr_t *h, const char *payload, size_t plen)
{
    unsigned char buf[IPC_HDR_MAX];
    zpart_t parts[2] = {{buf, ipc_encode(h, buf)}, {payload, plen}};
    int n = payload ? 2 : 1;
    if (!f->batch || opt.no_batch)
        return send_now(f, parts, n);
    zbatch_append(&f->out, parts, n);
    f->nout++;
    if (f->out.len >= 8192)
        flush_fe(f);
    return 0;
}

static void send_hello(fe_t *f, int heartbeat)
{
    ipc_hdr_t h;
    ipc_hello_t m = {.epoch = f->epoch, .name = f->name, .s2s = 0, .batch = !opt.no_batch};
    if (heartbeat)
        ipc_heartbeat_build(&h, &m);
    else
        ipc_hello_build(&h, &m);
    send_msg_parts(f, &h, NULL, 0);
}

static uint32_t partner(uint32_t i)
{
    return i < opt.pairs ? i + opt.pairs : i - opt.pairs;
}

/* The stanza as c2s-frontend's forward() hands it to the router: `to` prepared, `from` the
 * bound full JID added last, serialised with double quotes and no xmlns on the top
 * element. The id carries the sender and the send time. */
static void send_chat(uint32_t i)
{
    sess_t *s = &sess[i];
    sess_t *p = &sess[partner(i)];
    char id[64], b[512];
    snprintf(id, sizeof id, "m%u.%" PRIu64, i, now_us_());
    int len = snprintf(b, sizeof b,
                       "<message to=\"%s\" type=\"chat\" id=\"%s\" from=\"%s\"><body>bench "
                       "message %" PRIu64 "</body></message>",
                       p->bare, id, s->full, ms.seq++);
    ipc_hdr_t h;
    ipc_stanza_build(&h, &(ipc_stanza_t){.conn = i + 1,
                                         .kind = IPC_KIND_MESSAGE,
                                         .stype = IPC_ST_CHAT,
                                         .to = p->bare,
                                         .from = s->full,
                                         .id = id});
    if (send_msg_parts(&fes[s->fe], &h, b, (size_t)len) < 0) {
        ms.send_fail++;
        return;
    }
    s->inflight++;
    ms.sent++;
}

static void send_presence(uint32_t i)
{
    sess_t *s = &sess[i];
    char b[256];
    int len = snprintf(b, sizeof b, "<presence from=\"%s\"/>", s->full);
    ipc_hdr_t h;
    ipc_stanza_build(&h, &(ipc_stanza_t){.conn = i + 1,
                                         .kind = IPC_KIND_PRESENCE,
                                         .stype = IPC_ST_NONE,
                                         .to = "",
                                         .from = s->full,
                                         .id = ""});
    if (send_msg_parts(&fes[s->fe], &h, b, (size_t)len) < 0)
        die("cannot send a presence (link full?)");
}

/* A deliver of a chat message: find its sender and send time in the id. */
static void on_deliver(const char *p, size_t len)
{
    if (len < 9 || memcmp(p, "<message", 8) != 0) {
        if (len >= 9 && memcmp(p, "<presence", 9) == 0)
            ms.presences++;
        else
            ms.other++;
        return;
    }
    const char *id = memmem(p, len, " id=\"m", 6);
    if (!id) {
        ms.bad++;
        return;
    }
    char *dot;
    unsigned long from = strtoul(id + 6, &dot, 10);
    if (*dot != '.' || from >= nsess) {
        ms.bad++;
        return;
    }
    uint64_t ts = strtoull(dot + 1, NULL, 10);
    sess_t *s = &sess[from];
    s->inflight--;
    if (memmem(p, len, "type=\"error\"", 12)) {
        ms.errors++;
        return;
    }
    ms.received++;
    if (ms.running) ms.win_received++;
    hist_add(&ms.lat, now_us_() - ts);
    if (ms.running && opt.rate <= 0) send_chat((uint32_t)from);
}

static void on_link_msg(void *ud, const zpart_t *parts, int n)
{
    fe_t *f = ud;
    ipc_hdr_t h;
    if (ipc_decode(&h, parts[0].data, parts[0].len) < 0) {
        ms.bad++;
        return;
    }
    switch (h.type) {
    case IPC_HELLO:
        f->hello = 1;
        f->batch = !!(h.flags & IPC_HELLO_BATCH);
        break;
    case IPC_HEARTBEAT:
        break;
    case IPC_BIND_REPLY:
        if (h.status != IPC_OK) {
            fprintf(stderr, "linkgen: bind %u refused (status %u)\n", h.seq, h.status);
            exit(1);
        }
        if (h.seq >= 1 && h.seq <= nsess && !sess[h.seq - 1].bound) {
            sess[h.seq - 1].bound = 1;
            bind_replies++;
        }
        break;
    case IPC_DELIVER:
        if (n > 1) on_deliver(parts[1].data, parts[1].len);
        break;
    case IPC_CLOSE:
        fprintf(stderr, "linkgen: the router closed connection %" PRIu64 " (%s)\n", h.conn,
                h.field[0]);
        exit(1);
    default:
        ms.other++;
        break;
    }
}

static void drain_fe(fe_t *f)
{
    for (;;) {
        zmq_msg_t parts[3];
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, f->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                if (n == 0) return;
                break;
            }
            more = zmq_msg_more(&m);
            if (n < 3)
                parts[n++] = m;
            else
                zmq_msg_close(&m);
        }
        zpart_t zp[3];
        for (int i = 0; i < n; i++)
            zp[i] = (zpart_t){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
        if (n == 1 && zp[0].len && *(const unsigned char *)zp[0].data == ZBATCH_MAGIC) {
            if (zbatch_open(zp[0].data, zp[0].len, NULL, on_link_msg, f) < 0) ms.bad++;
        } else {
            on_link_msg(f, zp, n);
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* Runs the loop until `until` (monotonic µs) or done() says so; heartbeats every second,
 * and the rate mode's ticks. Returns 1 when done() ended it. */
static uint64_t last_beat;
static void rate_tick(void);
static int run(uint64_t until, int (*done)(void))
{
    zmq_pollitem_t items[MAX_FE];
    for (uint32_t k = 0; k < opt.frontends; k++)
        items[k] = (zmq_pollitem_t){.socket = fes[k].sock, .events = ZMQ_POLLIN};
    for (;;) {
        uint64_t now = now_us_();
        if (done && done()) return 1;
        if (now >= until) return 0;
        if (now - last_beat >= 1000000) {
            for (uint32_t k = 0; k < opt.frontends; k++)
                send_hello(&fes[k], fes[k].hello);
            last_beat = now;
        }
        rate_tick();
        for (uint32_t k = 0; k < opt.frontends; k++)
            flush_fe(&fes[k]);
        long tmo = opt.rate > 0 && ms.running ? 1 : 50;
        if (zmq_poll(items, (int)opt.frontends, tmo) < 0 && errno != EINTR) die("zmq_poll failed");
        for (uint32_t k = 0; k < opt.frontends; k++)
            drain_fe(&fes[k]);
    }
}

static void rate_tick(void)
{
    if (!ms.running || opt.rate <= 0) return;
    uint64_t now = now_us_();
    ms.allowance += opt.rate * (double)(now - ms.t_tick) / 1e6;
    ms.t_tick = now;
    if (ms.allowance > opt.rate / 10) ms.allowance = opt.rate / 10;
    /* --offline: only the first of each pair sends, W messages in all (its inflight counts
     * what it sent, less what bounced). */
    uint32_t senders = opt.offline ? opt.pairs : nsess;
    for (uint32_t tried = 0; ms.allowance >= 1 && tried < senders; tried++) {
        uint32_t i = ms.rr;
        ms.rr = (ms.rr + 1) % senders;
        if (sess[i].inflight < (int32_t)opt.window) {
            send_chat(i);
            ms.allowance -= 1;
            tried = 0;
        }
    }
}

static int all_hello(void)
{
    for (uint32_t k = 0; k < opt.frontends; k++)
        if (!fes[k].hello) return 0;
    return 1;
}

static uint32_t nbound, nbind;
static int all_bound(void)
{
    while (nbound < nbind && sess[nbound].bound)
        nbound++;
    return nbound == nbind;
}

#define BIND_WINDOW 50
static uint32_t bind_sent;
static int bind_room(void)
{
    return bind_sent - bind_replies < BIND_WINDOW;
}

/* The same for initial presence: each comes back to its own session (RFC 6121 4.2.2). */
static uint32_t presence_sent;
static int presence_room(void)
{
    return presence_sent - ms.presences < BIND_WINDOW;
}

static int drained(void)
{
    return ms.sent == ms.received + ms.errors;
}

/* ---- CPU of the watched processes, whole and by thread ---- */

typedef struct {
    int tid;
    char comm[32];
    long long ticks;
} thr_t;

typedef struct {
    long long total;
    thr_t thr[MAX_THREADS];
    int n;
} cpu_snap_t;

static long long stat_ticks(const char *path, char *comm, size_t ncomm)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close) return -1;
    if (comm) {
        size_t l = (size_t)(close - open - 1);
        if (l >= ncomm) l = ncomm - 1;
        memcpy(comm, open + 1, l);
        comm[l] = '\0';
    }
    unsigned long long ut = 0, st = 0;
    if (sscanf(close + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

static void snap(pid_t pid, cpu_snap_t *s)
{
    char path[96];
    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    s->total = stat_ticks(path, NULL, 0);
    /* Threads by name: the main thread carries the process name, libzmq's are ZMQbg/... */
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while (s->n < MAX_THREADS && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, atoi(e->d_name));
        thr_t *t = &s->thr[s->n];
        t->tid = atoi(e->d_name);
        t->ticks = stat_ticks(path, t->comm, sizeof t->comm);
        if (t->ticks >= 0) s->n++;
    }
    closedir(d);
}

/* ms of CPU between two snapshots of the threads whose name starts with prefix: the main
 * thread (the process's own name) or libzmq's I/O threads ("ZMQbg/IO/..."). */
static double thr_ms(const cpu_snap_t *a, const cpu_snap_t *b, const char *prefix)
{
    static long hz;
    if (!hz) hz = sysconf(_SC_CLK_TCK);
    long long t = 0;
    for (int i = 0; i < b->n; i++) {
        if (strncmp(b->thr[i].comm, prefix, strlen(prefix)) != 0) continue;
        long long before = 0;
        for (int j = 0; j < a->n; j++)
            if (a->thr[j].tid == b->thr[i].tid) before = a->thr[j].ticks;
        t += b->thr[i].ticks;
        t -= before;
    }
    return (double)t * 1000.0 / (double)hz;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: linkgen --endpoint tcp://HOST:PORT [--domain D] [--prefix lg] [--first N]\n"
            "               [--frontends K] [--pairs P] [--window W] [--rate R] [--duration S]\n"
            "               [--settle S] [--drain S] [--start-at UNIX_MS] [--name NAME]\n"
            "               [--watch PID,...] [--offline] [--no-batch]\n"
            "Stand-in frontends bind 2*P sessions (accounts PREFIX<first> .. PREFIX<first+2P-1>)\n"
            "and send chat messages pairwise through the router; with --offline only the\n"
            "first of each pair binds and sends W messages to the other, who has no session\n"
            "(the router stores them); see bench/README.md.\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"endpoint", 1, 0, 'e'},
        {"domain", 1, 0, 'd'},
        {"prefix", 1, 0, 'p'},
        {"first", 1, 0, 'f'},
        {"frontends", 1, 0, 'k'},
        {"pairs", 1, 0, 'P'},
        {"window", 1, 0, 'w'},
        {"rate", 1, 0, 'r'},
        {"duration", 1, 0, 't'},
        {"settle", 1, 0, 's'},
        {"drain", 1, 0, 'D'},
        {"start-at", 1, 0, 'a'},
        {"name", 1, 0, 'n'},
        {"watch", 1, 0, 'W'},
        {"offline", 0, 0, 'o'},
        {"no-batch", 0, 0, 'B'},
        {"help", 0, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'e':
            opt.endpoint = optarg;
            break;
        case 'd':
            opt.domain = optarg;
            break;
        case 'p':
            opt.prefix = optarg;
            break;
        case 'f':
            opt.first = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            opt.frontends = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'P':
            opt.pairs = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'w':
            opt.window = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            opt.rate = strtod(optarg, NULL);
            break;
        case 't':
            opt.duration = strtod(optarg, NULL);
            break;
        case 's':
            opt.settle = strtod(optarg, NULL);
            break;
        case 'D':
            opt.drain = strtod(optarg, NULL);
            break;
        case 'a':
            opt.start_at_ms = strtoull(optarg, NULL, 10);
            break;
        case 'n':
            opt.name = optarg;
            break;
        case 'o':
            opt.offline = 1;
            break;
        case 'B':
            opt.no_batch = 1;
            break;
        case 'W': {
            char *p = optarg;
            while (*p && opt.nwatch < MAX_WATCH) {
                opt.watch[opt.nwatch++] = (pid_t)strtol(p, &p, 10);
                if (*p == ',') p++;
            }
            break;
        }
        default:
            usage();
        }
    }
    if (!opt.endpoint || opt.frontends < 1 || opt.frontends > MAX_FE || opt.pairs < 1) usage();
    nsess = 2 * opt.pairs;
    nbind = opt.offline ? opt.pairs : nsess;
    sess = calloc(nsess, sizeof *sess);
    if (!sess) die("out of memory");
    for (uint32_t i = 0; i < nsess; i++) {
        sess_t *s = &sess[i];
        uint32_t pair = i % opt.pairs;
        /* The two ends of a pair on different stand-ins (when there are two or more). */
        s->fe = (pair + (i >= opt.pairs ? 1 : 0)) % opt.frontends;
        snprintf(s->bare, sizeof s->bare, "%s%u@%s", opt.prefix, opt.first + i, opt.domain);
        snprintf(s->full, sizeof s->full, "%s/%s", s->bare, opt.resource);
    }
    hist_init(&ms.lat);

    zctx = zmq_ctx_new();
    FILE *ur = fopen("/dev/urandom", "r");
    for (uint32_t k = 0; k < opt.frontends; k++) {
        fe_t *f = &fes[k];
        if (!ur || fread(&f->epoch, sizeof f->epoch, 1, ur) != 1) die("cannot read /dev/urandom");
        snprintf(f->name, sizeof f->name, "%s-%u", opt.name, k);
        char ident[96];
        snprintf(ident, sizeof ident, "%s:%016" PRIx64, f->name, f->epoch);
        f->sock = zmq_socket(zctx, ZMQ_DEALER);
        zmq_setsockopt(f->sock, ZMQ_ROUTING_ID, ident, strlen(ident));
        zlink_link_options(f->sock, 100000);
        if (zmq_connect(f->sock, opt.endpoint) < 0) die("zmq_connect failed");
        send_hello(f, 0);
    }
    if (ur) fclose(ur);
    last_beat = now_us_();
    if (!run(now_us_() + 10000000, all_hello)) die("no hello from the router within 10 s");
    /* bind, as c2s-frontend does after SASL and the client's <bind/>: no auth needed. */
    /* What binding the sessions (and their initial presence) cost the watched processes:
     * CPU, and memory (VmRSS) held once they are bound. */
    double bind_cpu0[MAX_WATCH], bind_cpu[MAX_WATCH];
    long rss0[MAX_WATCH], rss1[MAX_WATCH];
    for (int i = 0; i < opt.nwatch; i++) {
        bind_cpu0[i] = proc_cpu_ms(opt.watch[i]);
        rss0[i] = proc_rss_kib(opt.watch[i]);
    }
    uint64_t t_bind = now_us_();
    for (uint32_t i = 0; i < nbind; i++) {
        ipc_hdr_t h;
        ipc_bind_build(&h, &(ipc_bind_t){.conn = i + 1,
                                         .seq = i + 1,
                                         .jid = sess[i].full,
                                         .addr = "127.0.0.1:1",
                                         .tls = "none"});
        if (send_msg_parts(&fes[sess[i].fe], &h, NULL, 0) < 0) die("cannot send a bind");
        bind_sent = i + 1;
        /* At most BIND_WINDOW binds unanswered, as logins arrive over time rather than all at
         * once (a burst would leave its transient buffers in the router's RSS). */
        if (!bind_room() && !run(now_us_() + 60000000, bind_room))
            die("binds not answered within 60 s");
    }
    if (!run(now_us_() + 60000000, all_bound)) die("not every bind was answered within 60 s");
    double bind_s = (double)(now_us_() - t_bind) / 1e6;
    for (uint32_t i = 0; i < nbind; i++) {
        send_presence(i);
        presence_sent = i + 1;
        if (!presence_room() && !run(now_us_() + 60000000, presence_room))
            die("initial presence not answered within 60 s");
    }
    run(now_us_() + (uint64_t)(opt.settle * 1e6), NULL);
    for (int i = 0; i < opt.nwatch; i++) {
        bind_cpu[i] = proc_cpu_ms(opt.watch[i]) - bind_cpu0[i];
        rss1[i] = proc_rss_kib(opt.watch[i]);
    }
    if (opt.start_at_ms) {
        uint64_t w = wall_ms();
        if (w > opt.start_at_ms)
            fprintf(stderr, "linkgen: %s ready %.1f s after --start-at\n", opt.name,
                    (double)(w - opt.start_at_ms) / 1000.0);
        else
            run(now_us_() + (opt.start_at_ms - w) * 1000, NULL);
    }

    cpu_snap_t before[MAX_WATCH], after[MAX_WATCH];
    for (int i = 0; i < opt.nwatch; i++)
        snap(opt.watch[i], &before[i]);
    double self0 = self_cpu_ms();
    uint64_t t0 = now_us_();
    ms.running = 1;
    ms.t_tick = t0;
    if (opt.offline &&
        opt.rate <= 0) /* To the other end of each pair, who has no session: offline storage. */
        for (uint32_t i = 0; i < opt.pairs; i++)
            for (uint32_t w = 0; w < opt.window; w++)
                send_chat(i);
    else if (opt.rate <= 0)
        for (uint32_t i = 0; i < nsess; i++)
            for (uint32_t w = 0; w < opt.window; w++)
                send_chat(i);
    run(t0 + (uint64_t)(opt.duration * 1e6), NULL);
    ms.running = 0;
    uint64_t t1 = now_us_();
    for (int i = 0; i < opt.nwatch; i++)
        snap(opt.watch[i], &after[i]);
    double self = self_cpu_ms() - self0;
    int ok = opt.offline ? 1 : run(now_us_() + (uint64_t)(opt.drain * 1e6), drained);
    if (opt.offline) /* nothing comes back but bounces: stored = sent - bounced */
        ms.received = ms.sent - ms.errors;
    double secs = (double)(t1 - t0) / 1e6;
    long long lost = (long long)ms.sent - (long long)(ms.received + ms.errors);

    printf("RESULT scenario=%s name=%s frontends=%u pairs=%u window=%u rate_cap=%.0f "
           "duration_s=%.2f bind_s=%.2f sent=%" PRIu64 " received=%" PRIu64 " win_received=%" PRIu64
           " lost=%lld errors=%" PRIu64 " send_fail=%" PRIu64 " msgs_per_s=%.0f p50_ms=%.2f "
           "p99_ms=%.2f gen_cpu_ms=%.0f",
           opt.offline ? "link-offline" : "link-msg", opt.name, opt.frontends, opt.pairs,
           opt.window, opt.rate, secs, bind_s, ms.sent, ms.received, ms.win_received, lost,
           ms.errors, ms.send_fail, secs > 0 ? (double)ms.win_received / secs : 0,
           hist_ms(&ms.lat, 0.5), hist_ms(&ms.lat, 0.99), self);
    static long hz;
    hz = sysconf(_SC_CLK_TCK);
    for (int i = 0; i < opt.nwatch; i++) {
        char comm[32] = "?", path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)opt.watch[i]);
        stat_ticks(path, comm, sizeof comm);
        double total = (double)(after[i].total - before[i].total) * 1000.0 / (double)hz;
        /* The main thread has the process's name (16 bytes at most, as comm). */
        double main_ms = thr_ms(&before[i], &after[i], comm);
        double io_ms = thr_ms(&before[i], &after[i], "ZMQbg/IO");
        printf(" pid%d=%d comm%d=%s cpu_ms%d=%.0f main_ms%d=%.0f zmq_io_ms%d=%.0f", i,
               (int)opt.watch[i], i, comm, i, total, i, main_ms, i, io_ms);
        printf(" bind_cpu_ms%d=%.0f rss_before_kib%d=%ld rss_bound_kib%d=%ld", i, bind_cpu[i], i,
               rss0[i], i, rss1[i]);
    }
    printf(" drained=%d presences=%" PRIu64 " other=%" PRIu64 " bad=%" PRIu64 "\n", ok,
           ms.presences, ms.other, ms.bad);
    for (uint32_t k = 0; k < opt.frontends; k++)
        zmq_close(fes[k].sock);
    zmq_ctx_term(zctx);
    hist_free(&ms.lat);
    free(sess);
    return lost == 0 && ms.errors == 0 ? 0 : 1;
}
