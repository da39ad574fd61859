/* session-router: holds session state and routes stanzas between the frontends' clients;
 * accounts live in Redis. The core (core/) is the link, the session table, routing and
 * storage; every feature is a module (modules/), registered here from one list. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "admin_cmds.h"
#include "config.h"
#include "jid.h"
#include "log.h"
#include "account.h"
#include "authlimit.h"
#include "backoff.h"
#include "curve.h"
#include "dispatch.h"
#include "ipc.h"
#include "redis_tls.h"
#include "registration.h"
#include "scram.h"
#include "zap.h"
#include "link.h"
#include "metrics.h"
#include "metrics_http.h"
#include "module.h"
#include "modules.h"
#include "privdrop.h"
#include "remote.h"
#include "route.h"
#include "router.h"
#include "session.h"
#include "caps.h"
#include "rpresence.h"
#include "iqreq.h"
#include "service.h"
#include "sm.h"
#include "storage.h"
#include "util.h"

router_t rt;

/* The keys the core reads at start (modules declare their own). */
static const config_key_t router_config_keys[] = {
    CONFIG_STR("router_bind", "tcp://127.0.0.1:5555", "ZeroMQ endpoint the router binds"),
    CONFIG_INT("frontend_timeout", "5000", 200, 600000, "ms without a message from a frontend before its sessions are ended"),
    CONFIG_INT("max_resources", "10", 1, 100000, "sessions (resources) one account may have at once"),
    CONFIG_END,
};

static const config_key_t *const config_tables[] = {
    config_base_keys,   privdrop_config_keys, ipc_config_keys,   curve_config_keys,
    backoff_config_keys, redis_config_keys,   router_config_keys, authlimit_config_keys,
    zap_config_keys,    zlink_config_keys,    account_config_keys, metrics_http_config_keys,
    admin_config_keys, register_config_keys, scram_config_keys, sm_config_keys, caps_config_keys,
    remote_config_keys,
};

/* Every feature of the router. Order matters only between hooks of equal priority and
 * between IQ handlers for the same element (the earlier is asked first). */
static module_t *const modules[] = {
    &mod_pep,   /* before disco: it lists an account's nodes in disco#items */
    &mod_disco,
    &mod_ping,
    &mod_version,
    &mod_time,
    &mod_last,
    &mod_roster,
    &mod_presence,
    &mod_blocking,
    &mod_carbons,
    &mod_offline,
    &mod_mam,
    &mod_csi,
    &mod_avatar, /* before vcard: it sees a vCard set first */
    &mod_vcard,
    &mod_bookmarks, /* before private: it mirrors storage:bookmarks sets, then passes */
    &mod_private,
    &mod_register,
    &mod_unregister,
    &mod_extdisco,
    &mod_contact, /* adds XEP-0157 addresses to the server's disco#info */
    &mod_muc,
    &mod_upload,
};

static double count_map(void *ud)
{
    return (double)hmap_count(*(hmap_t **)ud);
}

static double redis_up(void *ud)
{
    (void)ud;
    return rt.redis_ready;
}

/* The router's metrics (README, "Metrics"), registered whether or not they are served;
 * modules register their own in their open function. */
static void register_metrics(void)
{
    static const double redis_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                          0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
    metrics_counters_by(rt.m.stanzas_in, IPC_KINDS, "xmpp_stanzas_in_total", "kind",
                        ipc_kind_names, "stanzas received from the frontends, by kind");
    metrics_counters_by(rt.m.stanzas_out, IPC_KINDS, "xmpp_stanzas_out_total", "kind",
                        ipc_kind_names, "stanzas sent to the frontends for delivery, by kind");
    metrics_gauge_fn("xmpp_sessions", "", "bound sessions (resources) on this router",
                     count_map, &rt.by_jid);
    metrics_gauge_fn("xmpp_router_frontends", "", "frontends connected to this router",
                     count_map, &rt.frontends);
    metrics_gauge_fn("xmpp_router_users", "", "users held in memory (online or being worked on)",
                     count_map, &rt.users);
    zlink_metrics_register(&rt.m.link);
    rt.m.link_send_failed = metrics_counter("xmpp_link_send_failures_total", "",
                                            "sends to a frontend that failed (pipe full or frontend gone)");
    rt.m.redis_duration = metrics_histogram(
        "xmpp_redis_command_duration_seconds", "", "Redis commands, from issue to reply",
        redis_bounds, sizeof redis_bounds / sizeof redis_bounds[0]);
    rt.m.redis_pending = metrics_gauge("xmpp_redis_pending_commands", "",
                                       "Redis commands sent and not answered yet");
    metrics_gauge_fn("xmpp_redis_up", "", "1 while the connection to Redis is ready", redis_up,
                     NULL);
    rt.m.registrations = metrics_counter("xmpp_registrations_total", "",
                                         "accounts created by in-band registration");
    rt.m.account_deletions = metrics_counter("xmpp_account_deletions_total", "",
                                             "accounts deleted");
}

/* SIGHUP: the router holds no certificates and its settings are in use by pointer, so
 * there is nothing to reload; it must not die of the default action either. */
static void on_sighup(evloop_t *loop, int signo, void *ud)
{
    (void)loop;
    (void)signo;
    (void)ud;
    log_info("SIGHUP received: nothing to reload in the router, carrying on");
}

int main(int argc, char **argv)
{
    const char *cfg = NULL;
    int opt;
    /* The Redis connection's output buffer (hiredis) grows by megabytes in a burst of
     * writes (the message archive writes to two archives per message) and is freed once
     * sent: with glibc's defaults each burst maps fresh pages or regrows a trimmed heap and
     * pays a page fault per 4 KiB again. Serving blocks up to 32 MiB from the heap and
     * keeping up to 64 MiB of it freed about halves the router's CPU per archived message
     * (bench/README.md, "Message archive"). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    for (size_t i = 0; i < sizeof config_tables / sizeof config_tables[0]; i++)
        config_register(config_tables[i]);
    module_declare_config(modules, sizeof modules / sizeof modules[0]);
    if (argc == 2 && strcmp(argv[1], "--help-config") == 0) {
        config_print_help(stdout, "session-router");
        return 0;
    }
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        if (opt == 'c') {
            cfg = optarg;
        } else {
            fprintf(stderr, "usage: session-router [-c CONFIG_FILE] | --help-config\n");
            return 2;
        }
    }
    log_init("session-router");
    char err[1200];
    if (config_load(cfg, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    log_level_parse(config_str("log_level"), &log_min_level);
    static char domain[JID_PART_MAX + 1];
    if (jid_prep_domain(domain, config_str("domain")) < 0)
        log_fatal("config: key 'domain': '%s' is not a valid domain", config_str("domain"));
    rt.domain = domain;
    rt.redis_prefix = config_str("redis_prefix");
    /* Frontend liveness (docs/PROTOCOL.md): silent this long means gone. */
    rt.frontend_timeout_ms = (uint64_t)config_int("frontend_timeout");
    random_bytes(&rt.epoch, sizeof rt.epoch);
    rt.started_ms = now_ms();

    rt.loop = evloop_new();
    rt.frontends = hmap_new();
    rt.by_conn = hmap_new();
    rt.by_jid = hmap_new();
    rt.users = hmap_new();
    evloop_on_signal(rt.loop, SIGHUP, on_sighup, NULL);
    rt.max_resources = config_int("max_resources");
    register_metrics();
    sm_open();
    caps_open();
    module_register(modules, sizeof modules / sizeof modules[0]);
    authlimit_open();
    remote_open();
    link_open(config_str("router_bind"), dispatch_message, dispatch_frontend_gone, dispatch_lost);
    admin_cmds_register();
    admin_open();
    storage_open(config_str("redis_host"), (int)config_int("redis_port"));
    metrics_http_t *metrics_http = metrics_http_open(rt.loop, config_str("metrics_listen"), err,
                                                     sizeof err);
    if (!metrics_http && err[0])
        log_fatal("config: %s", err);
    /* router_bind and admin_bind are bound and the secret files are read: root is not
     * needed any more (README, "Privileges"); glibc switches libzmq's threads too. */
    if (privdrop_apply(config_str("user"), config_str("group"), err, sizeof err) < 0)
        log_fatal("config: %s", err);
    log_info("serving domain %s", rt.domain);

    evloop_run(rt.loop);

    log_info("shutting down");
    metrics_http_close(&metrics_http);
    storage_close();
    admin_close();
    authlimit_close();
    iqreq_close(); /* its callbacks still find the sessions */
    sessions_free_all();
    rpresence_close();
    remote_close();
    caps_close();
    sm_close();
    module_close_all();
    service_clear();
    link_close();
    hmap_destroy(&rt.frontends);
    hmap_destroy(&rt.by_conn);
    hmap_destroy(&rt.by_jid);
    hmap_destroy(&rt.users);
    evloop_destroy(&rt.loop);
    metrics_reset();
    config_free();
    return 0;
}
