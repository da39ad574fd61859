/* session-router: holds session state and routes stanzas between the frontends' clients;
 * accounts live in Redis. The core (core/) is the link, the session table, routing and
 * storage; every feature is a module (modules/), registered here from one list. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "jid.h"
#include "log.h"
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
#include "module.h"
#include "modules.h"
#include "privdrop.h"
#include "router.h"
#include "session.h"
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
    zap_config_keys,    zlink_config_keys,  register_config_keys, scram_config_keys,
};

/* Every feature of the router. Order matters only between hooks of equal priority and
 * between IQ handlers for the same element (the earlier is asked first). */
static module_t *const modules[] = {
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
    &mod_vcard,
    &mod_private,
    &mod_register,
};

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
    module_register(modules, sizeof modules / sizeof modules[0]);
    authlimit_open();
    link_open(config_str("router_bind"), dispatch_message, session_end_frontend);
    storage_open(config_str("redis_host"), (int)config_int("redis_port"));
    /* router_bind is bound and the secret files are read: root is not needed any more
     * (README, "Privileges"); glibc switches libzmq's threads too. */
    if (privdrop_apply(config_str("user"), config_str("group"), err, sizeof err) < 0)
        log_fatal("config: %s", err);
    log_info("serving domain %s", rt.domain);

    evloop_run(rt.loop);

    log_info("shutting down");
    storage_close();
    authlimit_close();
    sessions_free_all();
    module_close_all();
    link_close();
    hmap_destroy(&rt.frontends);
    hmap_destroy(&rt.by_conn);
    hmap_destroy(&rt.by_jid);
    hmap_destroy(&rt.users);
    evloop_destroy(&rt.loop);
    config_free();
    return 0;
}
