/* xmppctl: administration from the command line: accounts in Redis (SCRAM credentials
 * only, never the password), and the running router through its admin endpoint
 * (admin_client.c: sessions, kick, stats, user, announce). */
#include <errno.h>
#include <stdarg.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "admin_client.h"
#include "buf.h"
#include "adminproto.h"
#include "cli.h"
#include "config.h"
#include "curve.h"
#include "invite.h"
#include "evloop.h"
#include "jid.h"
#include "keys.h"
#include "log.h"
#include "privdrop.h"
#include "redis_tls.h"
#include "scram.h"
#include "secret.h"

static const char *prefix;

static void usage(void)
{
    fprintf(stderr, "usage: xmppctl [-c CONFIG_FILE] COMMAND [ARGS]\n"
                    "commands:\n"
                    "  adduser [--ignore-tombstone] JID [PASSWORD]\n"
                    "                           create an account (asks for the password);\n"
                    "                           a deleted address needs --ignore-tombstone\n"
                    "  passwd JID [PASSWORD]    change an account's password\n"

                    "  users                    list the accounts\n"
                    "  tombstones [remove JID]  list deleted addresses (kept so that nobody\n"
                    "                           new gets them), or forget one\n"
                    "  invite [--ttl SECONDS]   make a one-time invitation token for in-band\n"
                    "                           registration (default ttl: invite_ttl)\n"
                    "the running router (its admin endpoint, admin_connect):\n"
                    "  sessions [JID]           sessions: full JID, frontend, client address,\n"
                    "                           bound since, TLS version, stream management\n"
                    "  deluser JID              delete an account: contacts told, sessions\n"
                    "                           ended, data removed, a tombstone kept\n"
                    "  kick JID [REASON]        end one session (full JID) or all (bare JID)\n"
                    "  stats                    sessions, frontends, stanzas per second, ...\n"
                    "  user JID                 exists, roster size, offline messages, tombstone\n"
                    "  announce TEXT            a headline message to every online user\n"
                    "  admin COMMAND [ARGS]     any command the router serves (admin help)\n"
                    "  keygen [router|frontend|admin]  print a new CURVE key pair (default\n"
                    "                           frontend) as config lines\n"
                    "  --help-config            every configuration key it reads\n");
    exit(2);
}

/* redis_tls: a child process relays one connection to Redis over TLS (redis_tls.h), and
 * hiredis talks to it through a unix socket. The child ends with that connection. */
static pid_t relay_pid;

static void relay_reap(void)
{
    if (relay_pid > 0) {
        int status;
        if (waitpid(relay_pid, &status, WNOHANG) == 0) {
            kill(relay_pid, SIGTERM);
            waitpid(relay_pid, &status, 0);
        }
        relay_pid = 0;
    }
}

static redisContext *relay_connect(const char *host, int port, struct timeval tv)
{
    if (log_min_level < LOG_LVL_WARN)
        log_min_level = LOG_LVL_WARN; /* the relay's info lines are not for the command line */
    sigset_t mask; /* the loop blocks SIGINT and SIGTERM for its signalfd: not ours */
    sigprocmask(SIG_BLOCK, NULL, &mask);
    evloop_t *loop = evloop_new();
    redis_tls_t *t = redis_tls_new(loop, host, port);
    fflush(NULL);
    relay_pid = fork();
    if (relay_pid < 0)
        die("cannot start the TLS relay: %s", strerror(errno));
    if (relay_pid == 0) {
        redis_tls_once(t, (uint64_t)tv.tv_sec * 1000 + 1000);
        evloop_run(loop);
        redis_tls_destroy(&t);
        _exit(0);
    }
    sigprocmask(SIG_SETMASK, &mask, NULL);
    atexit(relay_reap);
    redisContext *rc = redisConnectUnixWithTimeout(redis_tls_path(t), tv);
    /* The child owns the relay now; only our copy is freed here. */
    redis_tls_release(&t);
    evloop_destroy(&loop);
    return rc;
}

static redisContext *redis_connect(void)
{
    const char *host = config_str("redis_host");
    int port = (int)config_int("redis_port");
    struct timeval tv = {3, 0};
    redisContext *rc = config_bool("redis_tls") ? relay_connect(host, port, tv)
                                                : redisConnectWithTimeout(host, port, tv);
    if (!rc || rc->err)
        die("cannot reach Redis at %s:%d: %s", host, port, rc ? rc->errstr : "out of memory");
    redisSetTimeout(rc, tv);
    char *password = secret_from_config("redis_password");
    if (password) {
        const char *user = config_str("redis_user");
        redisReply *r = *user ? redisCommand(rc, "AUTH %s %s", user, password)
                              : redisCommand(rc, "AUTH %s", password);
        secret_free(&password);
        if (!r)
            die("Redis at %s:%d: %s", host, port, rc->errstr);
        if (r->type == REDIS_REPLY_ERROR)
            die("Redis at %s:%d refused AUTH (check redis_password%s): %s", host, port,
                *user ? " and redis_user" : "", r->str);
        freeReplyObject(r);
    }
    return rc;
}

static redisReply *command(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    if (!r)
        die("Redis at %s:%ld: %s", config_str("redis_host"), config_int("redis_port"),
            rc->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        die("Redis at %s:%ld answered: %s%s", config_str("redis_host"), config_int("redis_port"),
            r->str, strncmp(r->str, "NOAUTH", 6) == 0 ? " (set redis_password)" : "");
    return r;
}

/* Parses a JID that must be a bare JID of the served domain; writes it prepared. */
static void account_jid(const char *arg, char *bare, size_t n)
{
    jid_t j;
    if (jid_parse(&j, arg) < 0 || !j.local[0] || j.resource[0])
        die("invalid JID '%s': expected user@%s", arg, config_str("domain"));
    char dom[JID_PART_MAX + 1];
    if (jid_prep_domain(dom, config_str("domain")) < 0 || strcmp(j.domain, dom) != 0)
        die("invalid JID '%s': this server serves the domain %s", arg, config_str("domain"));
    if (jid_bare(&j, bare, n) < 0)
        die("invalid JID '%s': too long", arg);
}

/* Reads a password: from the terminal without echo (asked twice), or one line of stdin. */
static char *read_password(void)
{
    static char pw[1024], again[1024];
    int tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *dst = attempt ? again : pw;
        if (tty) {
            fprintf(stderr, attempt ? "Repeat password: " : "Password: ");
            tcgetattr(STDIN_FILENO, &old);
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        }
        char *got = fgets(dst, sizeof pw, stdin);
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSANOW, &old);
            fputc('\n', stderr);
        }
        if (!got)
            die("no password given");
        dst[strcspn(dst, "\r\n")] = '\0';
        if (!tty)
            break;
    }
    if (tty && strcmp(pw, again) != 0)
        die("the passwords do not match");
    OPENSSL_cleanse(again, sizeof again);
    return pw;
}

/* Both SCRAM credentials from the password (scram_creds_make, shared with in-band
 * registration and password change). */
static void make_creds(const char *password, char **sha1, char **sha256)
{
    int rc = scram_creds_make(password, (unsigned)config_int("scram_iterations"), sha1, sha256);
    if (rc == -1)
        die("the password is not valid UTF-8 or contains characters SASLprep (RFC 4013) "
            "does not allow (control characters, unassigned code points, mixed "
            "right-to-left text)");
    if (rc == -2)
        die("the password is empty");
    if (rc < 0)
        die("cannot derive SCRAM credentials");
}

static int account_exists(redisContext *rc, const char *key)
{
    redisReply *r = command(rc, "EXISTS %s", key);
    int e = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    return e;
}

/* The deletion time a tombstone holds, as text ("" when there is none). */
static void tombstone_time(redisContext *rc, const char *bare, char *out, size_t n)
{
    char key[JID_MAX + 256];
    keys_user(key, sizeof key, prefix, KEYS_TOMBSTONE, bare);
    redisReply *r = command(rc, "GET %s", key);
    out[0] = '\0';
    if (r->type == REDIS_REPLY_STRING) {
        time_t t = (time_t)strtoll(r->str, NULL, 10);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
            snprintf(out, n, "%s", r->str);
    }
    freeReplyObject(r);
}

static int cmd_setpass(int argc, char **argv, int create)
{
    int ignore_tombstone = 0;
    if (create && argc >= 1 && strcmp(argv[0], "--ignore-tombstone") == 0) {
        ignore_tombstone = 1;
        argc--;
        argv++;
    }
    if (argc < 1 || argc > 2)
        usage();
    char bare[JID_MAX + 1], key[JID_MAX + 256], set[256], tomb[JID_MAX + 256];
    account_jid(argv[0], bare, sizeof bare);
    keys_user(key, sizeof key, prefix, KEYS_ACCOUNT, bare);
    keys_user(tomb, sizeof tomb, prefix, KEYS_TOMBSTONE, bare);
    keys_global(set, sizeof set, prefix, KEYS_ACCOUNTS);
    redisContext *rc = redis_connect();
    int exists = account_exists(rc, key);
    if (create && exists)
        die("account %s exists", bare);
    if (!create && !exists)
        die("no such account: %s", bare);
    char deleted[64];
    tombstone_time(rc, bare, deleted, sizeof deleted);
    /* A deleted address may still be trusted by its old contacts (their rosters, group
     * chats): it goes to someone new only when the operator says so. */
    if (create && deleted[0] && !ignore_tombstone)
        die("%s was deleted (%s) and its tombstone keeps it from being given to someone "
            "new; use adduser --ignore-tombstone to create it anyway",
            bare, deleted);
    char *password = argc == 2 ? argv[1] : read_password();
    char *sha1, *sha256;
    make_creds(password, &sha1, &sha256);
    OPENSSL_cleanse(password, strlen(password));
    /* Both hashes in one HSET, so an account never has one credential without the other. */
    if (create) {
        redisReply *r = command(rc, "HSETNX %s %s %s", key, keys_cred_field(SCRAM_SHA256), sha256);
        int won = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        if (!won)
            die("account %s exists", bare);
    }
    freeReplyObject(command(rc, "HSET %s %s %s %s %s", key, keys_cred_field(SCRAM_SHA1), sha1,
                            keys_cred_field(SCRAM_SHA256), sha256));
    freeReplyObject(command(rc, "SADD %s %s", set, bare));
    if (create && deleted[0])
        freeReplyObject(command(rc, "DEL %s", tomb));
    free(sha1);
    free(sha256);
    redisFree(rc);
    printf("%s %s\n", create ? "created" : "password changed for", bare);
    return 0;
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_users(int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        usage();
    char set[256];
    keys_global(set, sizeof set, prefix, KEYS_ACCOUNTS);
    redisContext *rc = redis_connect();
    redisReply *r = command(rc, "SMEMBERS %s", set);
    char **names = calloc(r->elements ? r->elements : 1, sizeof *names);
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            names[n++] = r->element[i]->str;
    qsort(names, n, sizeof *names, compare_str);
    for (size_t i = 0; i < n; i++)
        printf("%s\n", names[i]);
    free(names);
    freeReplyObject(r);
    redisFree(rc);
    return 0;
}

/* Lists the tombstones (SCAN: the keys are spread over the user hash tags), or removes
 * one so that the address can be registered again. */
static int cmd_tombstones(int argc, char **argv)
{
    if (argc != 0 && !(argc == 2 && strcmp(argv[0], "remove") == 0))
        usage();
    redisContext *rc = redis_connect();
    if (argc == 2) {
        char bare[JID_MAX + 1], key[JID_MAX + 256];
        account_jid(argv[1], bare, sizeof bare);
        keys_user(key, sizeof key, prefix, KEYS_TOMBSTONE, bare);
        redisReply *r = command(rc, "DEL %s", key);
        int gone = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
        freeReplyObject(r);
        redisFree(rc);
        if (!gone)
            die("no tombstone for %s", bare);
        printf("tombstone of %s removed\n", bare);
        return 0;
    }
    char pattern[256];
    keys_user(pattern, sizeof pattern, prefix, KEYS_TOMBSTONE, "*");
    size_t plen = strlen(prefix) + strlen(KEYS_TOMBSTONE) + 2; /* up to and with "{" */
    char cursor[32] = "0";
    do {
        redisReply *r = command(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING)
            die("Redis answered SCAN with something unexpected");
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            size_t kl = strlen(k);
            if (kl <= plen + 1 || k[kl - 1] != '}')
                continue;
            char bare[JID_MAX + 1], when[64];
            snprintf(bare, sizeof bare, "%.*s", (int)(kl - plen - 1), k + plen);
            tombstone_time(rc, bare, when, sizeof when);
            if (when[0])
                printf("%s\t%s\n", bare, when);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(rc);
    return 0;
}

/* A one-time invitation (XEP-0401, XEP-0445): stored with its expiry, printed with the
 * xmpp: URI a client opens to register with it. */
static int cmd_invite(int argc, char **argv)
{
    long ttl = invite_parse_args(argc, argv, config_int("invite_ttl"));
    if (ttl < 0)
        usage();
    char token[32], key[256], dom[JID_PART_MAX + 1];
    invite_token(token, sizeof token);
    keys_global(key, sizeof key, prefix, KEYS_INVITE);
    strcat(key, token);
    if (jid_prep_domain(dom, config_str("domain")) < 0)
        die("config: key 'domain': '%s' is not a valid domain", config_str("domain"));
    redisContext *rc = redis_connect();
    redisReply *r = command(rc, "SET %s %lld EX %ld NX", key, (long long)time(NULL), ttl);
    int stored = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    redisFree(rc);
    if (!stored)
        die("the new token exists already; run the command again");
    printf("%s\nxmpp:%s?register;preauth=%s\n", token, dom, token);
    return 0;
}

/* A new CURVE key pair for the frontend-router link, printed as config lines. The public
 * line may stay beside the secret: each process checks that the two belong together. */
static int cmd_keygen(int argc, char **argv)
{
    const char *role = argc >= 1 ? argv[0] : "frontend";
    if (argc > 1 || (strcmp(role, "router") != 0 && strcmp(role, "frontend") != 0 &&
                     strcmp(role, "admin") != 0))
        usage();
    if (!zmq_has("curve"))
        die("this libzmq has no CURVE support");
    char public[CURVE_Z85_LEN + 1], secret[CURVE_Z85_LEN + 1];
    if (zmq_curve_keypair(public, secret) < 0)
        die("cannot make a key pair: %s", zmq_strerror(errno));
    if (strcmp(role, "admin") == 0)
        admin_client_keygen(public, secret);
    else if (strcmp(role, "router") == 0)
        printf("# session-router key pair (xmppctl keygen router): the secret stays with the\n"
               "# router; every frontend gets the public key as router_curve_public\n"
               "router_curve_public = %s\n"
               "router_curve_secret = %s\n",
               public, secret);
    else
        printf("# c2s-frontend key pair (xmppctl keygen frontend): the secret stays with this\n"
               "# frontend; the router gets the public key in router_curve_allow\n"
               "frontend_curve_public = %s\n"
               "frontend_curve_secret = %s\n",
               public, secret);
    OPENSSL_cleanse(secret, sizeof secret);
    return 0;
}

/* A command for the router: the first `fixed` words as they are, the rest (if any) joined
 * with spaces into one argument (a kick's reason, an announcement's text). */
static int router_command(const char *cmd, int argc, char **argv, int min, int fixed, int rest)
{
    if (argc < min || (!rest && argc > fixed))
        usage();
    const char *args[ADMIN_MAX_ARGS];
    int n = 0;
    args[n++] = cmd;
    for (int i = 0; i < argc && i < fixed; i++)
        args[n++] = argv[i];
    buf_t joined = BUF_INIT;
    if (rest && argc > fixed) {
        for (int i = fixed; i < argc; i++)
            buf_printf(&joined, "%s%s", i > fixed ? " " : "", argv[i]);
        args[n++] = joined.data;
    }
    int rc = admin_client_run(n, args);
    buf_free(&joined);
    return rc;
}

/* xmppctl admin COMMAND [ARGS]: any command the router serves, arguments as given. */
static int cmd_admin(int argc, char **argv)
{
    if (argc < 1)
        usage();
    if (argc > ADMIN_MAX_ARGS)
        die("too many arguments (at most %d after the command)", ADMIN_MAX_ARGS - 1);
    return admin_client_run(argc, (const char *const *)argv);
}

int main(int argc, char **argv)
{
    const char *cfg = NULL;
    int opt;
    config_register(config_base_keys);
    config_register(redis_config_keys);
    config_register(privdrop_config_keys); /* the Redis TLS relay hands its socket to `user` */
    config_register(curve_config_keys);        /* link_curve, router_curve_public */
    config_register(admin_client_config_keys); /* the router's admin endpoint */
    config_register(scram_config_keys);
    config_register(invite_config_keys);
    if (argc == 2 && strcmp(argv[1], "--help-config") == 0) {
        config_print_help(stdout, "xmppctl");
        return 0;
    }
    while ((opt = getopt(argc, argv, "+c:h")) != -1) {
        if (opt == 'c')
            cfg = optarg;
        else
            usage();
    }
    if (optind >= argc)
        usage();
    /* keygen needs no configuration and no Redis. */
    if (strcmp(argv[optind], "keygen") == 0)
        return cmd_keygen(argc - optind - 1, argv + optind + 1);
    log_init("xmppctl");
    char err[1200];
    if (config_load(cfg, err, sizeof err) < 0)
        die("config: %s", err);
    prefix = config_str("redis_prefix");
    const char *cmd = argv[optind];
    int n = argc - optind - 1;
    char **args = argv + optind + 1;
    int rc;
    if (strcmp(cmd, "adduser") == 0)
        rc = cmd_setpass(n, args, 1);
    else if (strcmp(cmd, "passwd") == 0)
        rc = cmd_setpass(n, args, 0);
    else if (strcmp(cmd, "deluser") == 0)
        rc = router_command(cmd, n, args, 1, 1, 0);
    else if (strcmp(cmd, "users") == 0)
        rc = cmd_users(n, args);
    else if (strcmp(cmd, "tombstones") == 0)
        rc = cmd_tombstones(n, args);
    else if (strcmp(cmd, "sessions") == 0)
        rc = router_command(cmd, n, args, 0, 1, 0);
    else if (strcmp(cmd, "kick") == 0)
        rc = router_command(cmd, n, args, 1, 1, 1);
    else if (strcmp(cmd, "stats") == 0)
        rc = router_command(cmd, n, args, 0, 0, 0);
    else if (strcmp(cmd, "user") == 0)
        rc = router_command(cmd, n, args, 1, 1, 0);
    else if (strcmp(cmd, "announce") == 0)
        rc = router_command(cmd, n, args, 1, 0, 1);
    else if (strcmp(cmd, "admin") == 0)
        rc = cmd_admin(n, args);
    else if (strcmp(cmd, "invite") == 0)
        rc = cmd_invite(n, args);
    else
        usage();
    config_free();
    return rc;
}
