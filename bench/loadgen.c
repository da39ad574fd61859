/* loadgen: drives N XMPP clients against a server and measures it. Each scenario prints one
 * machine-readable "RESULT ..." line and a short human table. Server CPU and memory come from
 * /proc for the processes named by --pids or --pid-names. See bench/README.md. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lg.h"

#include <openssl/sha.h>

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
/* The pep scenario's node and entity capabilities node. */
#define PEP_NODE "urn:xmpp:bench:pep"
#define CAPS_NODE "https://loadgen.example"

/* ---- options ---- */

static struct {
    const char *scenario;
    const char *label;      /* name of the server measured, copied into RESULT lines */
    uint32_t clients;       /* login, idle */
    uint32_t concurrency;   /* logins in flight at once */
    uint32_t pairs, window; /* msg */
    double duration, rate, drain;
    uint32_t contacts, presence_users, changes, presence_inflight;
    uint32_t scale_target;
    uint32_t muc_rooms, muc_occupants;
    const char *muc_domain; /* NULL: conference.DOMAIN */
    double rest, settle, timeout;
    double progress; /* hold: seconds between PROGRESS lines */
    lg_procs_t procs;
} opt = {
    .scenario = "login",
    .label = "ours",
    .clients = 1000,
    .concurrency = 200,
    .pairs = 200,
    .window = 10,
    .duration = 10,
    .drain = 10,
    .contacts = 50,
    .presence_users = 200,
    .changes = 1000,
    .presence_inflight = 4,
    .scale_target = 10000,
    .muc_rooms = 20,
    .muc_occupants = 50,
    .rest = 10,
    .settle = 3,
    .timeout = 900,
    .progress = 1,
};

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fprintf(
        stderr,
        "usage: loadgen --scenario login|idle|msg|presence|pep|muc|scale|sm-resume|hold [options]\n"
        "  --host ADDR          server address (127.0.0.1)\n"
        "  --port P[,P...]      client port(s); several spread clients over frontends (5222)\n"
        "  --domain D           XMPP domain (localhost)\n"
        "  --user-prefix S      accounts are S0, S1, ... (lg)\n"
        "  --first K            login, idle, scale, hold: the clients use accounts SK, SK+1, ...\n"
        "                       (0; several generators, one account range each)\n"
        "  --password S         the password of every bench account (benchpass)\n"
        "  --sasl M             scram-sha-256 | scram-sha-1 | plain | auto (scram-sha-256)\n"
        "  --no-tls             no STARTTLS (the server must allow it)\n"
        "  --ws-port P[,P...]   XMPP over WebSocket (RFC 7395) on these ports: HTTP upgrade,\n"
        "                       one element per masked text frame, <open/> framing, no STARTTLS\n"
        "  --wss                the WebSocket clients use TLS from the first byte (wss://)\n"
        "  --ws-path PATH       the WebSocket endpoint (/xmpp-websocket)\n"
        "  --ws-share F         the first F of the clients use the WebSocket, the others --port\n"
        "                       (1; msg: 0.5 puts one end of every pair on each transport)\n"
        "  --sm                 XEP-0198 on every client: <enable resume='true'/>, <a/> to\n"
        "                       each <r/>, an <r/> after every 5 messages sent (msg)\n"
        "  --write-each         after login, every stanza in its own write (SSL_write: one TLS\n"
        "                       record), as interactive clients send; default: what a client\n"
        "                       queued in one loop pass goes out in one write\n"
        "  -n, --clients N      login / idle / sm-resume / hold: clients (1000)\n"
        "  --concurrency C      logins in flight at once (200)\n"
        "  --pairs P --window W --duration T --rate R --drain S\n"
        "                       msg: P pairs, W in flight per sender, T seconds, at most R\n"
        "                       msgs/s in all (0: as fast as the server answers), S s drain\n"
        "  --contacts K --presence-users U --changes X --presence-inflight I\n"
        "                       presence: U users with K mutual contacts, X changes, I at once\n"
        "                       pep: the same users and contacts; X PEP publishes (XEP-0163), I\n"
        "                       at once, each notifying K contacts that want the node (XEP-0115)\n"
        "  --rooms R --occupants O --muc-domain D\n"
        "                       muc: R rooms of O occupants (20, 50) on D (conference.DOMAIN),\n"
        "                       occupants alternating over the ports; X groupchat messages\n"
        "                       (--changes), I at once (--presence-inflight), each reflected\n"
        "                       to every occupant of its room (XEP-0045)\n"
        "  --scale-target N     scale: sessions to open (10000)\n"
        "  --rest S             scale: seconds at rest to measure CPU (10)\n"
        "  --settle S           idle, sm-resume: seconds to wait before measuring RSS (3)\n"
        "  --src-addrs N        spread clients over 127.0.0.1..127.0.0.N (auto for scale)\n"
        "  --src-first A        the first source address is 127.0.0.A (1): with --src-addrs N,\n"
        "                       127.0.0.A..127.0.0.(A+N-1)\n"
        "  --progress S         hold: a PROGRESS line at every multiple of S s of wall-clock\n"
        "                       time (1)\n"
        "  --pids P,P,...       server processes to measure (or --pid-names a,b,c)\n"
        "  --label NAME         server name in RESULT lines (ours)\n"
        "  --login-timeout S    a login slower than this fails (60)\n"
        "  --timeout S          bound on every phase (900)\n"
        "scenario hold: logs in -n clients (--concurrency in flight), printing PROGRESS lines\n"
        "  (logins so far, by wall-clock second), then HELD, then keeps the sessions idle until\n"
        "  SIGTERM or SIGINT (or --timeout) and prints RESULT (sessions still live, lost); the\n"
        "  caller measures the server (bench/run.sh --cases scale100k)\n"
        "environment: LG_DEBUG=1 prints each failure and what account 0 receives\n");
    exit(2);
}

static void parse_ports(const char *s, int *ports, int *nports)
{
    *nports = 0;
    while (*s && *nports < 8) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || v > 65535) usage();
        ports[(*nports)++] = (int)v;
        s = *end == ',' ? end + 1 : end;
    }
}

static void parse_args(int argc, char **argv)
{
    static const struct option lo[] = {{"scenario", 1, 0, 's'},
                                       {"host", 1, 0, 'H'},
                                       {"port", 1, 0, 'p'},
                                       {"domain", 1, 0, 'd'},
                                       {"user-prefix", 1, 0, 'u'},
                                       {"password", 1, 0, 'w'},
                                       {"sasl", 1, 0, 'm'},
                                       {"no-tls", 0, 0, 'T'},
                                       {"ws-port", 1, 0, 'Q'},
                                       {"wss", 0, 0, 'Z'},
                                       {"ws-path", 1, 0, 'y'},
                                       {"ws-share", 1, 0, 'F'},
                                       {"sm", 0, 0, 'M'},
                                       {"write-each", 0, 0, 'E'},
                                       {"clients", 1, 0, 'n'},
                                       {"concurrency", 1, 0, 'c'},
                                       {"pairs", 1, 0, 'P'},
                                       {"window", 1, 0, 'W'},
                                       {"duration", 1, 0, 'D'},
                                       {"rate", 1, 0, 'R'},
                                       {"drain", 1, 0, 'X'},
                                       {"contacts", 1, 0, 'K'},
                                       {"presence-users", 1, 0, 'U'},
                                       {"changes", 1, 0, 'C'},
                                       {"presence-inflight", 1, 0, 'I'},
                                       {"scale-target", 1, 0, 'S'},
                                       {"rooms", 1, 0, 'O'},
                                       {"occupants", 1, 0, 'o'},
                                       {"muc-domain", 1, 0, 'g'},
                                       {"rest", 1, 0, 'r'},
                                       {"settle", 1, 0, 'e'},
                                       {"src-addrs", 1, 0, 'a'},
                                       {"src-first", 1, 0, 'A'},
                                       {"first", 1, 0, 'f'},
                                       {"progress", 1, 0, 'G'},
                                       {"pids", 1, 0, 'i'},
                                       {"pid-names", 1, 0, 'N'},
                                       {"label", 1, 0, 'l'},
                                       {"login-timeout", 1, 0, 'L'},
                                       {"timeout", 1, 0, 't'},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    snprintf(lg_cfg.host, sizeof lg_cfg.host, "127.0.0.1");
    snprintf(lg_cfg.domain, sizeof lg_cfg.domain, "localhost");
    snprintf(lg_cfg.user_prefix, sizeof lg_cfg.user_prefix, "lg");
    snprintf(lg_cfg.password, sizeof lg_cfg.password, "benchpass");
    lg_cfg.ports[0] = 5222;
    lg_cfg.nports = 1;
    lg_cfg.src_first = 1;
    lg_cfg.starttls = 1;
    lg_cfg.sasl = SASL_SCRAM_SHA256;
    lg_cfg.login_timeout_s = 60;
    lg_cfg.ws_share = 1;
    snprintf(lg_cfg.ws_path, sizeof lg_cfg.ws_path, "/xmpp-websocket");
    int o;
    while ((o = getopt_long(argc, argv, "s:n:h", lo, NULL)) != -1) {
        switch (o) {
        case 's':
            opt.scenario = optarg;
            break;
        case 'H':
            snprintf(lg_cfg.host, sizeof lg_cfg.host, "%s", optarg);
            break;
        case 'p':
            parse_ports(optarg, lg_cfg.ports, &lg_cfg.nports);
            break;
        case 'd':
            snprintf(lg_cfg.domain, sizeof lg_cfg.domain, "%s", optarg);
            break;
        case 'u':
            snprintf(lg_cfg.user_prefix, sizeof lg_cfg.user_prefix, "%s", optarg);
            break;
        case 'w':
            snprintf(lg_cfg.password, sizeof lg_cfg.password, "%s", optarg);
            break;
        case 'm':
            lg_cfg.sasl = strcmp(optarg, "scram-sha-256") == 0 ? SASL_SCRAM_SHA256
                          : strcmp(optarg, "scram-sha-1") == 0 ? SASL_SCRAM_SHA1
                          : strcmp(optarg, "plain") == 0       ? SASL_PLAIN
                          : strcmp(optarg, "auto") == 0        ? SASL_AUTO
                                                               : (usage(), SASL_AUTO);
            break;
        case 'M':
            lg_cfg.sm = 1;
            break;
        case 'E':
            lg_cfg.write_each = 1;
            break;
        case 'T':
            lg_cfg.starttls = 0;
            break;
        case 'Q':
            parse_ports(optarg, lg_cfg.ws_ports, &lg_cfg.nws_ports);
            break;
        case 'Z':
            lg_cfg.wss = 1;
            break;
        case 'y':
            snprintf(lg_cfg.ws_path, sizeof lg_cfg.ws_path, "%s", optarg);
            break;
        case 'F':
            lg_cfg.ws_share = atof(optarg);
            if (lg_cfg.ws_share < 0 || lg_cfg.ws_share > 1) usage();
            break;
        case 'n':
            opt.clients = (uint32_t)atol(optarg);
            break;
        case 'c':
            opt.concurrency = (uint32_t)atol(optarg);
            break;
        case 'P':
            opt.pairs = (uint32_t)atol(optarg);
            break;
        case 'W':
            opt.window = (uint32_t)atol(optarg);
            break;
        case 'D':
            opt.duration = atof(optarg);
            break;
        case 'R':
            opt.rate = atof(optarg);
            break;
        case 'X':
            opt.drain = atof(optarg);
            break;
        case 'K':
            opt.contacts = (uint32_t)atol(optarg);
            break;
        case 'U':
            opt.presence_users = (uint32_t)atol(optarg);
            break;
        case 'C':
            opt.changes = (uint32_t)atol(optarg);
            break;
        case 'I':
            opt.presence_inflight = (uint32_t)atol(optarg);
            break;
        case 'S':
            opt.scale_target = (uint32_t)atol(optarg);
            break;
        case 'O':
            opt.muc_rooms = (uint32_t)atol(optarg);
            break;
        case 'o':
            opt.muc_occupants = (uint32_t)atol(optarg);
            break;
        case 'g':
            opt.muc_domain = optarg;
            break;
        case 'r':
            opt.rest = atof(optarg);
            break;
        case 'e':
            opt.settle = atof(optarg);
            break;
        case 'a':
            lg_cfg.nsrc = atoi(optarg);
            break;
        case 'A':
            lg_cfg.src_first = atoi(optarg);
            if (lg_cfg.src_first < 1 || lg_cfg.src_first > 254) usage();
            break;
        case 'f':
            lg_cfg.user_first = (uint32_t)atol(optarg);
            break;
        case 'G':
            opt.progress = atof(optarg);
            if (opt.progress <= 0) usage();
            break;
        case 'i':
            if (procs_from_list(&opt.procs, optarg) < 0) usage();
            break;
        case 'N':
            procs_from_names(&opt.procs, optarg);
            break;
        case 'l':
            opt.label = optarg;
            break;
        case 'L':
            lg_cfg.login_timeout_s = atoi(optarg);
            break;
        case 't':
            opt.timeout = atof(optarg);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || opt.concurrency == 0 || lg_cfg.nports == 0) usage();
    if (lg_cfg.nsrc > 1 && lg_cfg.src_first + lg_cfg.nsrc - 1 > 254) usage();
    /* The other scenarios address each other's accounts by slot number. */
    if (lg_cfg.user_first && strcmp(opt.scenario, "login") != 0 &&
        strcmp(opt.scenario, "idle") != 0 && strcmp(opt.scenario, "scale") != 0 &&
        strcmp(opt.scenario, "hold") != 0) {
        fprintf(stderr, "loadgen: --first is for the login, idle, scale and hold scenarios\n");
        exit(2);
    }
}

/* The clients' transport, as RESULT lines name it: starttls, none (plaintext TCP), ws, wss,
 * or a mix such as wss+starttls (the first on the WebSocket). */
static const char *transport_name(void)
{
    static char b[32];
    const char *tcp = lg_cfg.starttls ? "starttls" : "none", *ws = lg_cfg.wss ? "wss" : "ws";
    if (!lg_cfg.nws_ports || lg_cfg.ws_share <= 0) return tcp;
    if (lg_cfg.ws_share >= 1) return ws;
    snprintf(b, sizeof b, "%s+%s", ws, tcp);
    return b;
}

static const char *sasl_name(void)
{
    switch (lg_cfg.sasl) {
    case SASL_SCRAM_SHA256:
        return "SCRAM-SHA-256";
    case SASL_SCRAM_SHA1:
        return "SCRAM-SHA-1";
    case SASL_PLAIN:
        return "PLAIN";
    default:
        return "auto";
    }
}

static uint64_t secs_us(double s)
{
    return (uint64_t)(s * 1e6);
}

/* ---- output ---- */

static void row(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void row(const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  %-40s ", what);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void print_procs_rss(const char *when, const long *rss)
{
    for (int i = 0; i < opt.procs.n; i++) {
        char what[96];
        snprintf(what, sizeof what, "RSS %s %s (pid %d)", when, opt.procs.names[i],
                 (int)opt.procs.pids[i]);
        row(what, "%ld KiB", rss[i]);
    }
}

static void snap_cpu(double *ms)
{
    for (int i = 0; i < opt.procs.n; i++)
        ms[i] = proc_cpu_ms(opt.procs.pids[i]);
}

/* Ends a RESULT line with " cpu_split=NAME:MS,...": each server process's CPU between two
 * snapshots divided by `div` (the caller's unit: per login, per 1000 messages), processes
 * of the same name summed (two frontends), so that the cost can be put on each tier. */
static void print_cpu_split(const double *before, const double *after, double div)
{
    printf(" cpu_split=");
    int done[32] = {0}, first = 1;
    for (int i = 0; i < opt.procs.n; i++) {
        if (done[i]) continue;
        double t = 0;
        for (int j = i; j < opt.procs.n; j++)
            if (strcmp(opt.procs.names[j], opt.procs.names[i]) == 0) {
                t += after[j] - before[j];
                done[j] = 1;
            }
        printf("%s%s:%.3f", first ? "" : ",", opt.procs.names[i], div > 0 ? t / div : 0);
        first = 0;
    }
    printf("\n");
}

static void snap_rss(long *rss)
{
    for (int i = 0; i < opt.procs.n; i++)
        rss[i] = proc_rss_kib(opt.procs.pids[i]);
}

/* ---- failures: counted by reason, the first few reasons shown ---- */

#define MAX_REASONS 8
static struct {
    char why[96];
    uint32_t n;
} reasons[MAX_REASONS];

static void note_failure(const char *why)
{
    for (int i = 0; i < MAX_REASONS; i++) {
        if (!reasons[i].n) {
            snprintf(reasons[i].why, sizeof reasons[i].why, "%s", why);
            reasons[i].n = 1;
            return;
        }
        if (strcmp(reasons[i].why, why) == 0) {
            reasons[i].n++;
            return;
        }
    }
}

static void print_failures(void)
{
    for (int i = 0; i < MAX_REASONS && reasons[i].n; i++) {
        char what[128];
        snprintf(what, sizeof what, "failed: %.95s", reasons[i].why);
        row(what, "%u", reasons[i].n);
    }
}

/* LG_DEBUG set: each failure, and every stanza account 0 receives, go to stderr. */
static int debug;

/* ---- the login driver: keeps `concurrency` logins in flight over a range of accounts ---- */

static struct {
    uint32_t first, end, next; /* accounts [first, end); next to start */
    uint32_t inflight, ok, fail, lost;
    int kicking;
    uint64_t t_last;
    lg_hist_t lat;
    int resume; /* start with lg_resume (XEP-0198) instead of a login */
} lr;

/* Scenario hooks on top of the login driver. */
static void (*scen_ready)(lg_conn_t *c);
static void (*scen_stanza)(lg_conn_t *c, const char *name, const char *st, size_t len);

static void login_kick(void)
{
    if (lr.kicking) return; /* a start that failed at once calls back in here */
    lr.kicking = 1;
    while (lr.inflight < opt.concurrency && lr.next < lr.end) {
        lr.inflight++;
        if (lr.resume)
            lg_resume(lr.next++);
        else
            lg_start(lr.next++);
    }
    lr.kicking = 0;
}

static void on_ready(lg_conn_t *c)
{
    lr.inflight--;
    lr.ok++;
    lr.t_last = now_us();
    hist_add(&lr.lat, lr.t_last - c->t_start);
    if (scen_ready) scen_ready(c);
    login_kick();
}

static void on_failed(lg_conn_t *c, const char *why)
{
    if (debug) fprintf(stderr, "loadgen: %s%u failed: %s\n", lg_cfg.user_prefix, c->idx, why);
    note_failure(why);
    if (c->fail_state == CS_READY) {
        lr.lost++; /* a session that had logged in was lost */
        return;
    }
    lr.inflight--;
    lr.fail++;
    login_kick();
}

static void on_stanza(lg_conn_t *c, const char *name, const char *st, size_t len)
{
    if (debug && c->idx == 0)
        fprintf(stderr, "loadgen: %s0 got: %.*s\n", lg_cfg.user_prefix, (int)len, st);
    if (scen_stanza) scen_stanza(c, name, st, len);
}

static int logins_done(void)
{
    return lr.next == lr.end && lr.inflight == 0;
}

static int never(void)
{
    return 0;
}

/* Logs in accounts [first, first + n). Returns the seconds it took. */
static double login_range(uint32_t first, uint32_t n)
{
    lr.first = lr.next = first;
    lr.end = first + n;
    lr.inflight = lr.ok = lr.fail = 0;
    uint64_t t0 = now_us();
    lr.t_last = t0;
    login_kick();
    if (lg_run(logins_done, login_kick, 10000, secs_us(opt.timeout)) < 0)
        fprintf(stderr, "loadgen: logins did not finish within %.0f s\n", opt.timeout);
    return (double)(lr.t_last - t0) / 1e6;
}

static void start_engine(uint32_t n)
{
    static const lg_handlers_t h = {on_ready, on_failed, on_stanza};
    hist_init(&lr.lat);
    if (lg_init(n, &h) < 0) {
        fprintf(stderr, "loadgen: cannot set up epoll/TLS\n");
        exit(1);
    }
}

static void print_header(const char *title)
{
    printf("%s against %s (%s %s, %d server process%s)\n", title, opt.label, transport_name(),
           sasl_name(), opt.procs.n, opt.procs.n == 1 ? "" : "es");
}

static double pct(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : 0;
}

/* ---- login ---- */

static int scenario_login(void)
{
    uint32_t n = opt.clients;
    start_engine(n);
    double each0[32], each1[32];
    snap_cpu(each0);
    double cpu0 = procs_cpu_ms(&opt.procs), self0 = self_cpu_ms();
    double secs = login_range(0, n);
    double cpu = procs_cpu_ms(&opt.procs) - cpu0, self = self_cpu_ms() - self0;
    snap_cpu(each1);
    double per = lr.ok ? cpu / lr.ok : 0, rate = secs > 0 ? lr.ok / secs : 0;
    printf("RESULT scenario=login server=%s tls=%s sasl=%s n=%u ok=%u fail=%u secs=%.2f "
           "logins_per_s=%.1f cpu_ms_per_login=%.3f p50_ms=%.2f p99_ms=%.2f gen_cpu_pct=%.0f",
           opt.label, transport_name(), sasl_name(), n, lr.ok, lr.fail, secs, rate, per,
           hist_ms(&lr.lat, 0.5), hist_ms(&lr.lat, 0.99), pct(self, secs * 1000));
    print_cpu_split(each0, each1, lr.ok);
    print_header("login");
    row("logins ok / failed", "%u / %u", lr.ok, lr.fail);
    row("logins per second", "%.1f", rate);
    row("server CPU per login", "%.3f ms", per);
    row("login time p50 / p99", "%.2f / %.2f ms", hist_ms(&lr.lat, 0.5), hist_ms(&lr.lat, 0.99));
    row("generator CPU", "%.0f %% of one core", pct(self, secs * 1000));
    print_failures();
    return lr.fail ? 1 : 0;
}

/* ---- idle ---- */

static int scenario_idle(void)
{
    uint32_t n = opt.clients;
    long before[32], after[32];
    start_engine(n);
    snap_rss(before);
    login_range(0, n);
    lg_run(never, NULL, 0, secs_us(opt.settle)); /* let buffers be released */
    snap_rss(after);
    long b = 0, a = 0;
    for (int i = 0; i < opt.procs.n; i++) {
        b += before[i];
        a += after[i];
    }
    uint32_t live = lg_count_state(CS_READY);
    double per = live ? (double)(a - b) / live : 0;
    printf("RESULT scenario=idle server=%s tls=%s n=%u ok=%u fail=%u sessions=%u "
           "rss_before_kib=%ld rss_after_kib=%ld kib_per_session=%.2f\n",
           opt.label, transport_name(), n, lr.ok, lr.fail, live, b, a, per);
    print_header("idle");
    row("idle sessions", "%u (failed %u)", live, lr.fail);
    print_procs_rss("before", before);
    print_procs_rss("after", after);
    row("RSS of all server processes", "%ld -> %ld KiB", b, a);
    row("per idle session", "%.2f KiB", per);
    print_failures();
    return lr.fail ? 1 : 0;
}

/* ---- msg: pairs send to each other's bare JID, W in flight per sender ---- */

static struct {
    int running;
    uint64_t sent, received, errors, seq;
    uint32_t n;       /* 2 * pairs */
    double allowance; /* rate mode: messages we may send now */
    uint64_t t_tick;
    uint32_t rr; /* rate mode: next sender to consider */
    lg_hist_t lat;
} ms;

static uint32_t partner(uint32_t i)
{
    uint32_t p = ms.n / 2;
    return i < p ? i + p : i - p;
}

static void send_msg(lg_conn_t *c)
{
    char b[320];
    /* The id carries the sender and the send time: the receiver needs nothing else. */
    int len = snprintf(b, sizeof b,
                       "<message to='%s%u@%s' type='chat' id='m%u.%llu'><body>bench message "
                       "%llu</body></message>",
                       lg_cfg.user_prefix, partner(c->idx), lg_cfg.domain, c->idx,
                       (unsigned long long)now_us(), (unsigned long long)ms.seq++);
    lg_send(c, b, (size_t)len);
    lg_sm_sent(c);
    c->inflight++;
    ms.sent++;
}

static void msg_stanza(lg_conn_t *c, const char *name, const char *st, size_t len)
{
    char id[64], type[16] = "";
    if (strcmp(name, "message") != 0 || xml_attr(st, len, "id", id, sizeof id) < 0 || id[0] != 'm')
        return;
    char *dot;
    unsigned long from = strtoul(id + 1, &dot, 10);
    if (*dot != '.' || from >= ms.n) return;
    unsigned long long ts = strtoull(dot + 1, NULL, 10);
    xml_attr(st, len, "type", type, sizeof type);
    lg_conn_t *s = lg_conn((uint32_t)from);
    s->inflight--;
    if (strcmp(type, "error") == 0) {
        ms.errors++; /* bounced back to its sender */
        return;
    }
    ms.received++;
    hist_add(&ms.lat, now_us() - ts);
    (void)c;
    /* Closed loop: each delivery lets its sender send the next one. */
    if (ms.running && opt.rate <= 0 && s->state == CS_READY) send_msg(s);
}

/* Rate mode: spend the allowance round-robin over senders that have room in their window. */
static void msg_tick(void)
{
    if (!ms.running || opt.rate <= 0) return;
    uint64_t now = now_us();
    ms.allowance += opt.rate * (double)(now - ms.t_tick) / 1e6;
    ms.t_tick = now;
    if (ms.allowance > opt.rate / 10) ms.allowance = opt.rate / 10; /* no bursts after a stall */
    for (uint32_t tried = 0; ms.allowance >= 1 && tried < ms.n; tried++) {
        lg_conn_t *c = lg_conn(ms.rr);
        ms.rr = (ms.rr + 1) % ms.n;
        if (c->state == CS_READY && c->inflight < (int32_t)opt.window &&
            lg_conn(partner(c->idx))->state == CS_READY) {
            send_msg(c);
            ms.allowance -= 1;
            tried = 0;
        }
    }
}

static int msg_drained(void)
{
    return ms.sent == ms.received + ms.errors;
}

static int scenario_msg(void)
{
    ms.n = 2 * opt.pairs;
    start_engine(ms.n);
    hist_init(&ms.lat);
    scen_stanza = msg_stanza;
    login_range(0, ms.n);
    if (lr.fail)
        fprintf(stderr, "loadgen: %u of %u logins failed; pairs with a missing side sit out\n",
                lr.fail, ms.n);
    lg_run(never, NULL, 0, 500000); /* let initial presence settle */

    double each0[32], each1[32];
    snap_cpu(each0);
    double cpu0 = procs_cpu_ms(&opt.procs), self0 = self_cpu_ms();
    uint64_t t0 = now_us();
    ms.running = 1;
    ms.t_tick = t0;
    if (opt.rate <= 0)
        for (uint32_t i = 0; i < ms.n; i++) {
            lg_conn_t *c = lg_conn(i);
            if (c->state == CS_READY && lg_conn(partner(i))->state == CS_READY)
                for (uint32_t w = 0; w < opt.window; w++)
                    send_msg(c);
        }
    lg_run(never, msg_tick, 1000, secs_us(opt.duration));
    ms.running = 0;
    uint64_t sent_in_window = ms.sent;
    int drained = lg_run(msg_drained, NULL, 0, secs_us(opt.drain)) == 0;
    uint64_t t1 = now_us();
    double cpu = procs_cpu_ms(&opt.procs) - cpu0, self = self_cpu_ms() - self0;
    snap_cpu(each1);
    double secs = (double)(t1 - t0) / 1e6;
    double rate = secs > 0 ? ms.received / secs : 0;
    double per1000 = ms.received ? cpu * 1000.0 / ms.received : 0;
    long long lost = (long long)ms.sent - (long long)ms.received;
    printf("RESULT scenario=msg server=%s tls=%s sm=%d writes=%s pairs=%u window=%u "
           "duration_s=%.0f rate_cap=%.0f "
           "sent=%llu received=%llu lost=%lld errors=%llu msgs_per_s=%.0f p50_ms=%.2f "
           "p99_ms=%.2f max_ms=%.1f cpu_ms_per_1000_msgs=%.2f gen_cpu_pct=%.0f",
           opt.label, transport_name(), lg_cfg.sm, lg_cfg.write_each ? "each" : "batched",
           opt.pairs, opt.window, opt.duration, opt.rate, (unsigned long long)ms.sent,
           (unsigned long long)ms.received, lost, (unsigned long long)ms.errors, rate,
           hist_ms(&ms.lat, 0.5), hist_ms(&ms.lat, 0.99), (double)ms.lat.max_us / 1000.0, per1000,
           pct(self, secs * 1000));
    print_cpu_split(each0, each1, ms.received / 1000.0);
    print_header(lg_cfg.sm ? "msg with stream management (XEP-0198)" : "msg");
    row("client writes", "%s",
        lg_cfg.write_each ? "one stanza per write" : "batched per loop pass");
    row("pairs / window / seconds", "%u / %u / %.0f%s", opt.pairs, opt.window, opt.duration,
        opt.rate > 0 ? " (rate capped)" : "");
    row("sent / received / lost", "%llu / %llu / %lld%s", (unsigned long long)sent_in_window,
        (unsigned long long)ms.received, lost, drained ? "" : " (drain timed out)");
    row("bounced with an error", "%llu", (unsigned long long)ms.errors);
    row("messages per second", "%.0f", rate);
    row("latency p50 / p99 / max", "%.2f / %.2f / %.1f ms", hist_ms(&ms.lat, 0.5),
        hist_ms(&ms.lat, 0.99), (double)ms.lat.max_us / 1000.0);
    row("server CPU per 1000 messages", "%.2f ms", per1000);
    row("generator CPU", "%.0f %% of one core", pct(self, secs * 1000));
    print_failures();
    return lost != 0 || lr.fail ? 1 : 0;
}

/* ---- presence: users with K mutual contacts; one change must reach every contact ---- */

typedef struct {
    uint64_t t_send;
    uint32_t got;
} change_t;

static struct {
    uint32_t users, k, half;
    int phase;         /* 1 subscribing, 2 measuring */
    uint32_t sub_next; /* next user to send its subscription requests */
    uint64_t sub_sent, sub_approved;
    uint32_t next_change, done_changes, inflight, timed_out;
    uint32_t oldest; /* first change whose fan-out may be unfinished */
    change_t *changes;
    lg_hist_t fanout, delivery;
    int pep; /* the pep scenario: publishes instead of presence changes */
} ps;

/* One contact got change `ch`. */
static void change_got(change_t *ch)
{
    if (ch->got >= ps.k) return;
    uint64_t now = now_us();
    hist_add(&ps.delivery, now - ch->t_send);
    if (++ch->got == ps.k) {
        hist_add(&ps.fanout, now - ch->t_send);
        ps.done_changes++;
        ps.inflight--;
    }
}

/* The account number in a JID "PREFIXn@...", or -1. */
static long jid_index(const char *jid)
{
    size_t pl = strlen(lg_cfg.user_prefix);
    if (strncmp(jid, lg_cfg.user_prefix, pl) != 0) return -1;
    char *end;
    long v = strtol(jid + pl, &end, 10);
    return end == jid + pl || *end != '@' ? -1 : v;
}

static void presence_stanza(lg_conn_t *c, const char *name, const char *st, size_t len)
{
    char type[24] = "", from[300], b[400];
    if (ps.pep && strcmp(name, "message") == 0 && ps.phase == 2 &&
        xml_attr(st, len, "from", from, sizeof from) >= 0) {
        /* A PEP notification from the publisher's bare JID; its own sessions want the node
         * too and are not counted. */
        long owner = jid_index(from);
        const char *m = mem_find(st, len, ">pc:");
        if (owner < 0 || owner == (long)c->idx || !m) return;
        unsigned long seq = strtoul(m + 4, NULL, 10);
        if (seq < opt.changes) change_got(&ps.changes[seq]);
        return;
    }
    if (strcmp(name, "presence") != 0 || xml_attr(st, len, "from", from, sizeof from) < 0) return;
    xml_attr(st, len, "type", type, sizeof type);
    long who = jid_index(from);
    if (strcmp(type, "subscribe") == 0) {
        /* Approve every request: both sides ask, so both end with subscription "both". */
        from[strcspn(from, "/")] = '\0';
        snprintf(b, sizeof b, "<presence to='%s' type='subscribed'/>", from);
        lg_send(c, b, strlen(b));
        return;
    }
    if (strcmp(type, "subscribed") == 0) {
        c->counter++;
        ps.sub_approved++;
        return;
    }
    if (ps.phase != 2 || type[0] || who == (long)c->idx) return;
    const char *m = mem_find(st, len, "<status>pc:");
    if (!m) return;
    unsigned long seq = strtoul(m + 11, NULL, 10);
    if (seq >= opt.changes) return;
    change_got(&ps.changes[seq]);
}

/* Subscription requests go out a few users at a time so the server is not flooded. */
static void subscribe_tick(void)
{
    char b[400];
    while (ps.sub_next < ps.users && ps.sub_sent - ps.sub_approved < 2000) {
        lg_conn_t *c = lg_conn(ps.sub_next++);
        /* Contacts left by an earlier run against the same data need no new requests. */
        c->counter = c->roster_both;
        if (c->state != CS_READY || c->counter >= ps.k) continue;
        for (uint32_t d = 1; d <= ps.half; d++) {
            uint32_t js[2] = {(c->idx + d) % ps.users, (c->idx + ps.users - d) % ps.users};
            for (int s = 0; s < 2; s++) {
                int l = snprintf(b, sizeof b, "<presence to='%s%u@%s' type='subscribe'/>",
                                 lg_cfg.user_prefix, js[s], lg_cfg.domain);
                lg_send(c, b, (size_t)l);
                ps.sub_sent++;
            }
        }
    }
}

static int subscribed_all(void)
{
    if (ps.sub_next < ps.users) return 0;
    for (uint32_t i = 0; i < ps.users; i++) {
        lg_conn_t *c = lg_conn(i);
        if (c->state == CS_READY && c->counter < ps.k) return 0;
    }
    return 1;
}

static void change_tick(void)
{
    uint64_t now = now_us();
    /* A change whose fan-out has not finished in 5 s is counted and given up on. */
    while (ps.oldest < ps.next_change && ps.changes[ps.oldest].got >= ps.k)
        ps.oldest++;
    for (uint32_t s = ps.oldest; s < ps.next_change; s++) {
        change_t *ch = &ps.changes[s];
        if (ch->got < ps.k && ch->t_send && now - ch->t_send > 5000000u) {
            ch->got = ps.k;
            ps.timed_out++;
            ps.done_changes++;
            ps.inflight--;
        }
    }
    char b[400];
    while (ps.inflight < opt.presence_inflight && ps.next_change < opt.changes) {
        uint32_t seq = ps.next_change++;
        lg_conn_t *c = lg_conn(seq % ps.users);
        int l = ps.pep ? snprintf(b, sizeof b,
                                  "<iq type='set' id='pub%u'><pubsub xmlns='" NS_PUBSUB "'>"
                                  "<publish node='" PEP_NODE "'><item id='current'><bench "
                                  "xmlns='" PEP_NODE "'>pc:%u</bench></item></publish></pubsub>"
                                  "</iq>", seq, seq)
                       : snprintf(b, sizeof b, "<presence>%s<status>pc:%u</status></presence>",
                                  seq & 1 ? "<show>away</show>" : "", seq);
        ps.changes[seq].t_send = now;
        ps.inflight++;
        if (c->state != CS_READY) {
            ps.changes[seq].got = ps.k;
            ps.timed_out++;
            ps.done_changes++;
            ps.inflight--;
            continue;
        }
        lg_send(c, b, (size_t)l);
    }
}

static int changes_done(void)
{
    return ps.done_changes == opt.changes;
}

/* pep: every client announces (XEP-0115) that it wants notifications of PEP_NODE, and
 * answers the server's disco#info query with what the hash was computed from. */
static char caps_ver[64], caps_answer[1024];

static void caps_setup(void)
{
    static const char *const features[] = {"http://jabber.org/protocol/caps",
                                           "http://jabber.org/protocol/disco#info",
                                           PEP_NODE "+notify"}; /* sorted */
    char s[512];
    int n = snprintf(s, sizeof s, "client/pc//loadgen<");
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
        n += snprintf(s + n, sizeof s - (size_t)n, "%s<", features[i]);
    unsigned char md[20];
    SHA1((const unsigned char *)s, (size_t)n, md);
    b64_encode(md, sizeof md, caps_ver);
    n = snprintf(caps_answer, sizeof caps_answer,
                 "<query xmlns='http://jabber.org/protocol/disco#info' node='" CAPS_NODE "#%s'>"
                 "<identity category='client' type='pc' name='loadgen'/>", caps_ver);
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
        n += snprintf(caps_answer + n, sizeof caps_answer - (size_t)n, "<feature var='%s'/>",
                      features[i]);
    snprintf(caps_answer + n, sizeof caps_answer - (size_t)n, "</query>");
    lg_cfg.disco_info = caps_answer;
}

static void caps_announce(uint32_t from, uint32_t to)
{
    char b[300];
    for (uint32_t i = from; i < to; i++) {
        lg_conn_t *c = lg_conn(i);
        if (c->state != CS_READY) continue;
        int l = snprintf(b, sizeof b, "<presence><c xmlns='http://jabber.org/protocol/caps' "
                         "hash='sha-1' node='" CAPS_NODE "' ver='%s'/></presence>", caps_ver);
        lg_send(c, b, (size_t)l);
    }
}

static int scenario_presence(void)
{
    const char *name = ps.pep ? "pep" : "presence";
    ps.users = opt.presence_users;
    ps.half = opt.contacts / 2;
    ps.k = 2 * ps.half;
    if (ps.k == 0 || ps.users <= ps.k) {
        fprintf(stderr, "loadgen: presence needs --presence-users greater than --contacts\n");
        return 2;
    }
    lg_cfg.roster = 1;
    start_engine(ps.users);
    scen_stanza = presence_stanza;
    /* Probe first: one login that asks for the roster. */
    login_range(0, 1);
    if (lr.ok != 1 || !lg_conn(0)->roster_result) {
        printf("RESULT scenario=%s server=%s status=not-measurable reason=%s\n", name, opt.label,
               lr.ok == 1 ? "rosters-not-built" : "login-failed");
        if (lr.ok == 1)
            printf("presence: not measurable yet (rosters not built)\n");
        else
            print_failures();
        return 0;
    }
    uint32_t first_ok = lr.ok;
    login_range(1, ps.users - 1);
    uint32_t logged = first_ok + lr.ok;
    ps.phase = 1;
    int subs_ok = lg_run(subscribed_all, subscribe_tick, 10000, secs_us(opt.timeout)) == 0;
    lg_run(never, NULL, 0, 1000000); /* let subscription traffic settle */
    if (ps.pep) {
        /* Entity capabilities: one disco#info query for the shared hash, then each session
         * gets the last items it wants (none yet); settle times let that traffic pass. */
        /* One client first, as when the hash is already known from earlier sessions: the
         * others then need no query of their own. */
        caps_announce(0, 1);
        lg_run(never, NULL, 0, 1000000);
        caps_announce(1, ps.users);
        lg_run(never, NULL, 0, 3000000);
    }

    ps.changes = calloc(opt.changes ? opt.changes : 1, sizeof *ps.changes);
    hist_init(&ps.fanout);
    hist_init(&ps.delivery);
    ps.phase = 2;
    double cpu0 = procs_cpu_ms(&opt.procs), self0 = self_cpu_ms();
    uint64_t t0 = now_us();
    lg_run(changes_done, change_tick, 1000, secs_us(opt.timeout));
    double secs = (double)(now_us() - t0) / 1e6;
    double cpu = procs_cpu_ms(&opt.procs) - cpu0, self = self_cpu_ms() - self0;
    uint64_t deliveries = ps.delivery.n;
    double per1000 = deliveries ? cpu * 1000.0 / (double)deliveries : 0;
    printf("RESULT scenario=%s server=%s users=%u contacts=%u changes=%u incomplete=%u "
           "deliveries=%llu fanout_p50_ms=%.2f fanout_p99_ms=%.2f delivery_p99_ms=%.2f "
           "cpu_ms_per_1000_deliveries=%.2f gen_cpu_pct=%.0f\n",
           name, opt.label, ps.users, ps.k, opt.changes, ps.timed_out, (unsigned long long)deliveries,
           hist_ms(&ps.fanout, 0.5), hist_ms(&ps.fanout, 0.99), hist_ms(&ps.delivery, 0.99),
           per1000, pct(self, secs * 1000));
    print_header(name);
    row("users logged in / contacts each", "%u / %u%s", logged, ps.k,
        subs_ok ? "" : " (subscriptions incomplete)");
    row(ps.pep ? "publishes / incomplete" : "changes / incomplete", "%u / %u", opt.changes,
        ps.timed_out);
    row("fan-out to all contacts p50 / p99", "%.2f / %.2f ms", hist_ms(&ps.fanout, 0.5),
        hist_ms(&ps.fanout, 0.99));
    row("one delivery p99", "%.2f ms", hist_ms(&ps.delivery, 0.99));
    row("server CPU per 1000 deliveries", "%.2f ms", per1000);
    print_failures();
    free(ps.changes);
    return ps.timed_out ? 1 : 0;
}

/* ---- muc: rooms of occupants spread over the frontends; each message reaches them all ---- */

static struct {
    uint32_t rooms, per_room, users;
    int phase;          /* 1 joining, 2 measuring */
    uint32_t joined;    /* occupants whose self-presence (status 110) arrived */
    uint32_t next_msg, done_msgs, inflight, timed_out, oldest;
    change_t *msgs;     /* per message: send time, occupants that got it */
    lg_hist_t fanout, delivery;
    char muc_domain[300];
} mu;

/* Occupant i is in room i % rooms, so each room's occupants alternate over the ports. */
static void muc_room_of(uint32_t i, char *out, size_t n)
{
    snprintf(out, n, "benchroom%u@%s", i % mu.rooms, mu.muc_domain);
}

static void muc_join(lg_conn_t *c)
{
    char room[400], b[700];
    muc_room_of(c->idx, room, sizeof room);
    int l = snprintf(b, sizeof b, "<presence to='%s/%s%u'><x xmlns='http://jabber.org/protocol/"
                     "muc'><history maxstanzas='0'/></x></presence>", room, lg_cfg.user_prefix,
                     c->idx);
    lg_send(c, b, (size_t)l);
}

static void muc_stanza(lg_conn_t *c, const char *name, const char *st, size_t len)
{
    char room[400], from[400], b[800];
    if (strcmp(name, "presence") == 0) {
        /* Our own presence in the room (XEP-0045 7.2.2, status 110): joined. A new room
         * (201) stays locked until its owner accepts the defaults (10.1.2). */
        if (c->counter || (!mem_find(st, len, "code='110'") && !mem_find(st, len, "code=\"110\"")))
            return;
        c->counter = 1;
        mu.joined++;
        if (mem_find(st, len, "code='201'") || mem_find(st, len, "code=\"201\"")) {
            muc_room_of(c->idx, room, sizeof room);
            int l = snprintf(b, sizeof b, "<iq type='set' to='%s' id='inst'><query xmlns='http://"
                             "jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
                             "type='submit'/></query></iq>", room);
            lg_send(c, b, (size_t)l);
        }
        return;
    }
    if (mu.phase != 2 || strcmp(name, "message") != 0 ||
        xml_attr(st, len, "from", from, sizeof from) < 0)
        return;
    const char *m = mem_find(st, len, ">mc:");
    if (!m) return;
    unsigned long seq = strtoul(m + 4, NULL, 10);
    if (seq >= opt.changes) return;
    change_t *ch = &mu.msgs[seq];
    if (ch->got >= mu.per_room) return;
    uint64_t now = now_us();
    hist_add(&mu.delivery, now - ch->t_send);
    if (++ch->got == mu.per_room) {
        hist_add(&mu.fanout, now - ch->t_send);
        mu.done_msgs++;
        mu.inflight--;
    }
}

static int muc_all_joined(void)
{
    return mu.joined >= mu.users;
}

static int muc_msgs_done(void)
{
    return mu.done_msgs == opt.changes;
}

static void muc_msg_tick(void)
{
    uint64_t now = now_us();
    while (mu.oldest < mu.next_msg && mu.msgs[mu.oldest].got >= mu.per_room)
        mu.oldest++;
    for (uint32_t s = mu.oldest; s < mu.next_msg; s++) {
        change_t *ch = &mu.msgs[s];
        if (ch->got < mu.per_room && now - ch->t_send > 5000000u) {
            ch->got = mu.per_room; /* given up on after 5 s */
            mu.timed_out++;
            mu.done_msgs++;
            mu.inflight--;
        }
    }
    char room[400], b[700];
    while (mu.inflight < opt.presence_inflight && mu.next_msg < opt.changes) {
        uint32_t seq = mu.next_msg++;
        /* Senders walk over the rooms first, then over the occupants of each. */
        lg_conn_t *c = lg_conn((seq * 7919u) % mu.users);
        mu.msgs[seq].t_send = now;
        mu.inflight++;
        if (c->state != CS_READY) {
            mu.msgs[seq].got = mu.per_room;
            mu.timed_out++;
            mu.done_msgs++;
            mu.inflight--;
            continue;
        }
        muc_room_of(c->idx, room, sizeof room);
        int l = snprintf(b, sizeof b, "<message to='%s' type='groupchat'><body>mc:%u</body>"
                         "</message>", room, seq);
        lg_send(c, b, (size_t)l);
    }
}

static int scenario_muc(void)
{
    mu.rooms = opt.muc_rooms;
    mu.per_room = opt.muc_occupants;
    mu.users = mu.rooms * mu.per_room;
    if (!mu.rooms || !mu.per_room) usage();
    snprintf(mu.muc_domain, sizeof mu.muc_domain, "%s",
             opt.muc_domain ? opt.muc_domain : "");
    if (!opt.muc_domain)
        snprintf(mu.muc_domain, sizeof mu.muc_domain, "conference.%s", lg_cfg.domain);
    start_engine(mu.users);
    scen_stanza = muc_stanza;
    login_range(0, mu.users);
    uint32_t logged = lr.ok;
    mu.phase = 1;
    /* The first occupant of each room creates it (and unlocks it), then the rest join. */
    for (uint32_t i = 0; i < mu.rooms && i < mu.users; i++)
        if (lg_conn(i)->state == CS_READY) muc_join(lg_conn(i));
    uint32_t want = mu.rooms;
    mu.users = want; /* wait for the creators only */
    lg_run(muc_all_joined, NULL, 10000, secs_us(opt.timeout));
    lg_run(never, NULL, 0, 500000); /* the instant-room forms */
    mu.users = mu.rooms * mu.per_room;
    for (uint32_t i = mu.rooms; i < mu.users; i++)
        if (lg_conn(i)->state == CS_READY) muc_join(lg_conn(i));
    int joined_ok = lg_run(muc_all_joined, NULL, 10000, secs_us(opt.timeout)) == 0;
    lg_run(never, NULL, 0, 2000000); /* presence broadcasts of the joins settle */

    mu.msgs = calloc(opt.changes ? opt.changes : 1, sizeof *mu.msgs);
    hist_init(&mu.fanout);
    hist_init(&mu.delivery);
    mu.phase = 2;
    double cpu0 = procs_cpu_ms(&opt.procs), self0 = self_cpu_ms();
    uint64_t t0 = now_us();
    lg_run(muc_msgs_done, muc_msg_tick, 1000, secs_us(opt.timeout));
    double secs = (double)(now_us() - t0) / 1e6;
    double cpu = procs_cpu_ms(&opt.procs) - cpu0, self = self_cpu_ms() - self0;
    uint64_t deliveries = mu.delivery.n;
    double per1000 = deliveries ? cpu * 1000.0 / (double)deliveries : 0;
    printf("RESULT scenario=muc server=%s rooms=%u occupants=%u joined=%u messages=%u "
           "incomplete=%u deliveries=%llu fanout_p50_ms=%.2f fanout_p99_ms=%.2f "
           "delivery_p99_ms=%.2f cpu_ms_per_1000_deliveries=%.2f gen_cpu_pct=%.0f\n",
           opt.label, mu.rooms, mu.per_room, mu.joined, opt.changes, mu.timed_out,
           (unsigned long long)deliveries, hist_ms(&mu.fanout, 0.5), hist_ms(&mu.fanout, 0.99),
           hist_ms(&mu.delivery, 0.99), per1000, pct(self, secs * 1000));
    print_header("muc");
    row("logged in / joined", "%u / %u%s", logged, mu.joined, joined_ok ? "" : " (joins incomplete)");
    row("rooms x occupants", "%u x %u", mu.rooms, mu.per_room);
    row("messages / incomplete", "%u / %u", opt.changes, mu.timed_out);
    row("reflected to all occupants p50 / p99", "%.2f / %.2f ms", hist_ms(&mu.fanout, 0.5),
        hist_ms(&mu.fanout, 0.99));
    row("one delivery p99", "%.2f ms", hist_ms(&mu.delivery, 0.99));
    row("server CPU per 1000 deliveries", "%.2f ms", per1000);
    print_failures();
    free(mu.msgs);
    return mu.timed_out || !joined_ok ? 1 : 0;
}

/* ---- scale: as many concurrent TLS sessions as allowed, up to a target ---- */

static int scenario_scale(void)
{
    uint32_t n = opt.scale_target;
    if (lg_cfg.nsrc == 0)
        lg_cfg.nsrc = (int)(n / 20000 + 1); /* ~28k ephemeral ports per source address */
    long before[32], after[32];
    start_engine(n);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64)
        fprintf(stderr,
                "loadgen: the descriptor limit (%llu) allows about %llu sessions, not %u; a "
                "higher hard limit needs root with CAP_SYS_RESOURCE\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_cur - 64, n);
    snap_rss(before);
    double cpu0 = procs_cpu_ms(&opt.procs);
    double secs = login_range(0, n);
    double login_cpu = procs_cpu_ms(&opt.procs) - cpu0;
    lg_run(never, NULL, 0, 2000000);
    double cpu1 = procs_cpu_ms(&opt.procs);
    lg_run(never, NULL, 0, secs_us(opt.rest));
    double rest_cpu = procs_cpu_ms(&opt.procs) - cpu1;
    snap_rss(after);
    long b = 0, a = 0;
    for (int i = 0; i < opt.procs.n; i++) {
        b += before[i];
        a += after[i];
    }
    uint32_t live = lg_count_state(CS_READY);
    double per = live ? (double)(a - b) / live : 0;
    double rest_pct = pct(rest_cpu, opt.rest * 1000);
    printf("RESULT scenario=scale server=%s target=%u reached=%u fail=%u lost=%u secs=%.1f "
           "logins_per_s=%.0f cpu_ms_per_login=%.3f rss_kib=%ld kib_per_session=%.2f "
           "rest_cpu_pct=%.2f\n",
           opt.label, n, live, lr.fail, lr.lost, secs, secs > 0 ? lr.ok / secs : 0,
           lr.ok ? login_cpu / lr.ok : 0, a, per, rest_pct);
    print_header("scale");
    row("target / reached", "%u / %u", n, live);
    row("failed logins / sessions lost", "%u / %u", lr.fail, lr.lost);
    row("logins per second", "%.0f", secs > 0 ? lr.ok / secs : 0);
    print_procs_rss("after", after);
    row("RSS of all server processes", "%ld -> %ld KiB", b, a);
    row("per session", "%.2f KiB", per);
    row("server CPU at rest", "%.2f %% of one core", rest_pct);
    print_failures();
    return 0;
}

/* ---- hold: log in, report progress, keep the sessions until told to stop ----
 * bench/run.sh's scale100k case runs several of these (one descriptor per session, and one
 * process may have only so many) and measures the server itself. PROGRESS lines carry the
 * wall-clock second they stand for, so the counts of several generators can be added up
 * and set against the server's CPU sampled at the same seconds. */

static volatile sig_atomic_t hold_stop;
static uint64_t hold_next_s; /* wall-clock second of the next PROGRESS line */

static void hold_signal(int sig)
{
    (void)sig;
    hold_stop = 1;
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void hold_tick(void)
{
    login_kick();
    uint64_t ms = unix_ms();
    if (ms / 1000 < hold_next_s) return;
    /* The second boundary just passed, as a multiple of --progress. */
    uint64_t step = (uint64_t)(opt.progress * 1000);
    uint64_t at = ms / step * step;
    printf("PROGRESS unix_s=%llu at_ms=%llu ok=%u fail=%u lost=%u inflight=%u gen_cpu_ms=%.0f\n",
           (unsigned long long)(at / 1000), (unsigned long long)ms, lr.ok, lr.fail, lr.lost,
           lr.inflight, self_cpu_ms());
    hold_next_s = (at + step + 999) / 1000;
}

static int hold_logins_done(void)
{
    return hold_stop || logins_done();
}

static int hold_done(void)
{
    return hold_stop;
}

static int scenario_hold(void)
{
    uint32_t n = opt.clients;
    struct sigaction sa = {.sa_handler = hold_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    start_engine(n);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64)
        fprintf(stderr, "loadgen: the descriptor limit (%llu) allows about %llu sessions, not %u\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_cur - 64, n);
    uint64_t start_ms = unix_ms();
    lr.first = lr.next = 0;
    lr.end = n;
    lr.inflight = lr.ok = lr.fail = 0;
    uint64_t t0 = now_us();
    lr.t_last = t0;
    hold_next_s = 0;
    hold_tick(); /* the first logins, and a PROGRESS line at 0 */
    if (lg_run(hold_logins_done, hold_tick, 10000, secs_us(opt.timeout)) < 0)
        fprintf(stderr, "loadgen: logins did not finish within %.0f s\n", opt.timeout);
    double secs = (double)(lr.t_last - t0) / 1e6;
    uint64_t last_ms = start_ms + (lr.t_last - t0) / 1000;
    uint32_t ok = lr.ok, fail = lr.fail;
    printf("HELD ok=%u fail=%u secs=%.1f start_unix_ms=%llu last_login_unix_ms=%llu "
           "login_p50_ms=%.1f login_p99_ms=%.1f\n",
           ok, fail, secs, (unsigned long long)start_ms, (unsigned long long)last_ms,
           hist_ms(&lr.lat, 0.5), hist_ms(&lr.lat, 0.99));
    /* At rest: only the timeout sweep and a PROGRESS line per interval wake us up. */
    lg_run(hold_done, hold_tick, secs_us(opt.progress), secs_us(opt.timeout));
    uint32_t live = lg_count_state(CS_READY);
    printf("RESULT scenario=hold server=%s tls=%s first=%u n=%u ok=%u fail=%u lost=%u live=%u "
           "secs=%.1f logins_per_s=%.0f login_p50_ms=%.1f login_p99_ms=%.1f gen_cpu_ms=%.0f\n",
           opt.label, transport_name(), lg_cfg.user_first, n, ok, fail, lr.lost, live, secs,
           secs > 0 ? ok / secs : 0, hist_ms(&lr.lat, 0.5), hist_ms(&lr.lat, 0.99), self_cpu_ms());
    print_failures();
    return fail || lr.lost ? 1 : 0;
}

/* ---- sm-resume: sessions waiting for resumption (XEP-0198), then resumed ---- */

static lg_hist_t resume_req; /* <resume/> sent -> <resumed/> */

static void smwait_ready(lg_conn_t *c)
{
    if (c->resuming) hist_add(&resume_req, now_us() - c->t_resume);
}

static int scenario_smwait(void)
{
    uint32_t n = opt.clients;
    int ri = -1;
    for (int i = 0; i < opt.procs.n; i++)
        if (strcmp(opt.procs.names[i], "session-router") == 0) ri = i;
    if (ri < 0) {
        fprintf(stderr, "loadgen: sm-resume measures the session-router: name it in --pids\n");
        return 2;
    }
    pid_t rp = opt.procs.pids[ri];
    lg_cfg.sm = 1;
    start_engine(n);
    hist_init(&resume_req);
    scen_ready = smwait_ready;
    long r0 = proc_rss_kib(rp);
    login_range(0, n);
    uint32_t logged = lr.ok, login_fail = lr.fail;
    lg_run(never, NULL, 0, secs_us(opt.settle));
    long r1 = proc_rss_kib(rp);
    /* Every connection dropped without </stream:stream>: each session waits. */
    uint32_t waiting = 0;
    for (uint32_t i = 0; i < n; i++) {
        lg_conn_t *c = lg_conn(i);
        if (c->state == CS_READY && c->sm_id) {
            lg_close(c);
            waiting++;
        }
    }
    lg_run(never, NULL, 0, secs_us(opt.settle));
    long r2 = proc_rss_kib(rp);
    /* Reconnect and resume each: TCP, TLS, SASL, <resume/> -> <resumed/>. */
    hist_free(&lr.lat);
    hist_init(&lr.lat);
    lr.resume = 1;
    double secs = login_range(0, n);
    uint32_t resumed = lr.ok, resume_fail = lr.fail;
    double burst_p50 = hist_ms(&lr.lat, 0.5), burst_p99 = hist_ms(&lr.lat, 0.99);
    double req_p50 = hist_ms(&resume_req, 0.5), req_p99 = hist_ms(&resume_req, 0.99);
    /* The same one client at a time (a client's own wait, no crowd): up to 500 sessions
     * dropped again and resumed in turn. */
    uint32_t n1 = n < 500 ? n : 500;
    for (uint32_t i = 0; i < n1; i++)
        if (lg_conn(i)->state == CS_READY) lg_close(lg_conn(i));
    lg_run(never, NULL, 0, 1000000);
    hist_free(&lr.lat);
    hist_init(&lr.lat);
    hist_free(&resume_req);
    hist_init(&resume_req);
    uint32_t conc = opt.concurrency;
    opt.concurrency = 1;
    login_range(0, n1);
    opt.concurrency = conc;
    lr.resume = 0;
    uint32_t one_ok = lr.ok, one_fail = lr.fail;
    double per_conn = logged ? (double)(r1 - r0) / logged : 0;
    double per_wait = waiting ? (double)(r2 - r0) / waiting : 0;
    printf("RESULT scenario=sm-resume server=%s n=%u logged_in=%u login_fail=%u waiting=%u "
           "router_rss_before_kib=%ld router_rss_connected_kib=%ld router_rss_waiting_kib=%ld "
           "kib_per_connected_session=%.2f kib_per_waiting_session=%.2f resumed=%u "
           "resume_fail=%u resumes_per_s=%.0f concurrency=%u reconnect_to_resumed_p50_ms=%.2f "
           "reconnect_to_resumed_p99_ms=%.2f resume_to_resumed_p50_ms=%.2f "
           "resume_to_resumed_p99_ms=%.2f one_at_a_time=%u one_fail=%u "
           "one_reconnect_to_resumed_p50_ms=%.2f one_reconnect_to_resumed_p99_ms=%.2f "
           "one_resume_to_resumed_p50_ms=%.2f one_resume_to_resumed_p99_ms=%.2f\n",
           opt.label, n, logged, login_fail, waiting, r0, r1, r2, per_conn, per_wait, resumed,
           resume_fail, secs > 0 ? resumed / secs : 0, opt.concurrency, burst_p50, burst_p99,
           req_p50, req_p99, n1, one_fail, hist_ms(&lr.lat, 0.5), hist_ms(&lr.lat, 0.99),
           hist_ms(&resume_req, 0.5), hist_ms(&resume_req, 0.99));
    print_header("sm-resume");
    row("sessions logged in / waiting", "%u / %u", logged, waiting);
    row("router RSS: none / connected / waiting", "%ld / %ld / %ld KiB", r0, r1, r2);
    row("router KiB per connected SM session", "%.2f", per_conn);
    row("router KiB per session waiting", "%.2f", per_wait);
    row("all at once: resumed / failed", "%u / %u (%u in flight)", resumed, resume_fail,
        opt.concurrency);
    row("all at once: reconnect -> <resumed/>", "p50 %.2f / p99 %.2f ms", burst_p50, burst_p99);
    row("all at once: <resume/> -> <resumed/>", "p50 %.2f / p99 %.2f ms", req_p50, req_p99);
    row("one at a time: resumed / failed", "%u / %u", one_ok, one_fail);
    row("one at a time: reconnect -> <resumed/>", "p50 %.2f / p99 %.2f ms", hist_ms(&lr.lat, 0.5),
        hist_ms(&lr.lat, 0.99));
    row("one at a time: <resume/> -> <resumed/>", "p50 %.2f / p99 %.2f ms",
        hist_ms(&resume_req, 0.5), hist_ms(&resume_req, 0.99));
    print_failures();
    hist_free(&resume_req);
    return login_fail || resume_fail || one_fail ? 1 : 0;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    debug = getenv("LG_DEBUG") != NULL;
    if (opt.procs.n == 0 && strcmp(opt.scenario, "hold") != 0)
        procs_from_names(&opt.procs, "c2s-frontend,session-router,redis-server");
    int rc;
    if (strcmp(opt.scenario, "login") == 0)
        rc = scenario_login();
    else if (strcmp(opt.scenario, "idle") == 0)
        rc = scenario_idle();
    else if (strcmp(opt.scenario, "msg") == 0)
        rc = scenario_msg();
    else if (strcmp(opt.scenario, "presence") == 0)
        rc = scenario_presence();
    else if (strcmp(opt.scenario, "pep") == 0)
        rc = (ps.pep = 1, caps_setup(), scenario_presence());
    else if (strcmp(opt.scenario, "muc") == 0)
        rc = scenario_muc();
    else if (strcmp(opt.scenario, "scale") == 0)
        rc = scenario_scale();
    else if (strcmp(opt.scenario, "sm-resume") == 0)
        rc = scenario_smwait();
    else if (strcmp(opt.scenario, "hold") == 0)
        rc = scenario_hold();
    else
        usage();
    lg_shutdown();
    return rc;
}
